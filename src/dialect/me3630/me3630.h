/* me3630.h - the me3630 dialect's shared state and, in one place, every
 * fixed reply string it prints (shared/reference/w800-me3630-at.md §7-§10,
 * me3630-data.md).
 *
 * Framing is 3GPP TS 27.007 / V.250 with verbose result codes: every
 * information line and every final result is wrapped as "\r\n<text>\r\n";
 * URCs likewise; a list of lines is framed like ATI (ME_LIST_START). The
 * files beside this one: me3630.c (framing, config, power hooks), me_cell.c
 * (cellular basics, SIM, registration), me_data.c (packet data: contexts,
 * attach, the data call of ZIPCALL and ZECMCALL), me_auth.c (AT+CLOUDAUTH
 * and the MQTT credentials), me_cloud.c (the other Aliyun CLOUD* commands
 * and the MQTT session). */
#ifndef VMODULE_DIALECT_ME3630_H
#define VMODULE_DIALECT_ME3630_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "vmodule/aliyun_sign.h"
#include "vmodule/at.h"
#include "vmodule/http.h"

struct vm_module;
struct vm_mqtt;

/* ---- framing -------------------------------------------------------------- */
#define ME_OK "\r\nOK\r\n"
#define ME_ERROR "\r\nERROR\r\n"
#define ME_BUSY ME_ERROR /* a line sent while a command still runs */
#define ME_LINE_FMT "\r\n%s\r\n"
#define ME_CME_FMT "\r\n+CME ERROR: %d\r\n"      /* AT+CMEE=1 (default) */
#define ME_CME_TEXT_FMT "\r\n+CME ERROR: %s\r\n" /* AT+CMEE=2 */

/* +CME ERROR codes (27.007 §9.2) */
#define ME_E_NOT_ALLOWED 3
#define ME_E_NOT_SUPPORTED 4
#define ME_E_SIM_NOT_INSERTED 10
#define ME_E_SIM_PIN 11
#define ME_E_BAD_PASSWORD 16
#define ME_E_NO_NETWORK 30
#define ME_E_BAD_PARAM 50
#define ME_E_UNKNOWN 100
/* Decisions (§8, §10): the data call is down -> "operation not allowed";
 * any server or transfer failure of CLOUDAUTH/CLOUDCONN -> "unknown". No
 * ME3630 table tells connect failures apart (me3630-data.md "CME errors":
 * drivers match the prefix only; §8.2 names 100 for a refusal and a
 * timeout alike), so an HTTPS CLOUDAUTH that cannot reach its server (no
 * name, refused, no route, reset, TLS, certificate, timeout) and one that
 * breaks later, and a CLOUDCONN that is refused, reset, unreachable or
 * timed out, all print 100, each as soon as it fails. */
#define ME_E_NO_DATA_CALL ME_E_NOT_ALLOWED
#define ME_E_SERVER ME_E_UNKNOWN

/* ---- identity ------------------------------------------------------------- */
#define ME_ATI_FMT                 \
  "\r\nManufacturer: %s\r\n"       \
  "Model: %s\r\n"                  \
  "Revision: %s\r\n"               \
  "IMEI: %s\r\n"                   \
  "+GCAP: +CGSM,+DS,+ES\r\n"
#define ME_ICCID_FMT "\r\n+ZGETICCID: %s\r\n"
#define ME_CCID_FMT "\r\n+CCID: %s\r\n"
#define ME_DEFAULT_MANUFACTURER "GOSUNCNWELINK"
#define ME_DEFAULT_MODEL "ME3630"
#define ME_DEFAULT_REVISION "AL_ME3630C1CV1.0B01"
#define ME_DEFAULT_IMEI "869012034567891"
#define ME_DEFAULT_ICCID "89860117851012345678"
#define ME_DEFAULT_IMSI "460011234567890"

/* ---- SIM, registration, signal ----------------------------------------- */
#define ME_CPIN_READY "\r\n+CPIN: READY\r\n"
#define ME_CPIN_PIN "\r\n+CPIN: SIM PIN\r\n"
#define ME_CSQ_FMT "\r\n+CSQ: %d,99\r\n"
#define ME_CFUN_FMT "\r\n+CFUN: %d\r\n"
#define ME_CFUN_TEST "\r\n+CFUN: (0,1,4),(0-1)\r\n"
#define ME_CMEE_FMT "\r\n+CMEE: %d\r\n"
#define ME_CMEE_TEST "\r\n+CMEE: (0-2)\r\n"
/* +CREG / +CGREG / +CEREG: "<name>" is the command without "AT" */
#define ME_REG_QUERY_FMT "\r\n%s: %d,%d\r\n"
#define ME_REG_QUERY_LOC_FMT "\r\n%s: %d,%d,\"%s\",\"%s\",%d\r\n"
#define ME_REG_URC_FMT "\r\n%s: %d\r\n"
#define ME_REG_URC_LOC_FMT "\r\n%s: %d,\"%s\",\"%s\",%d\r\n"
#define ME_REG_TEST_FMT "\r\n%s: (0-2)\r\n"
#define ME_COPS_FMT "\r\n+COPS: 0,0,\"%s\",%d\r\n"
#define ME_COPS_NONE "\r\n+COPS: 0\r\n"
/* +ZPAS: "<network>","<service domain>"[,"<duplex>"] (§7.2) */
#define ME_ZPAS_LTE_FMT "\r\n+ZPAS: \"LTE\",\"CS_PS\",\"%s\"\r\n"
#define ME_ZPAS_FMT "\r\n+ZPAS: \"%s\",\"CS_PS\"\r\n"
#define ME_ZPAS_NONE "\r\n+ZPAS: \"No Service\",\"CAMPED\"\r\n" /* decision: not documented */
#define ME_SYSINFO_FMT "\r\n^SYSINFO: %d,%d,%d,%d,%d\r\n"

/* ---- data call (ECM) ------------------------------------------------------- */
#define ME_ZECMCALL_CONNECT "\r\n+ZECMCALL: CONNECT\r\n"
#define ME_ZECMCALL_DISCONNECT "\r\n+ZECMCALL: DISCONNECT\r\n" /* decision (§7.2) */
#define ME_ZECMCALL_QUERY_FMT "\r\n+ZECMCALL: IPV4, %s, %s, %s, %s\r\n"

/* ---- packet data and the data call (me3630-data.md) ------------------------ */
/* A list (one line per context) is framed like ATI: "\r\n" before the first
 * line only, each line ending "\r\n". */
#define ME_LIST_START "\r\n"
#define ME_CGATT_FMT "\r\n+CGATT: %d\r\n"
#define ME_CGATT_TEST "\r\n+CGATT: (0,1)\r\n"                 /* 27.007 (I) */
#define ME_CGDCONT_FMT "+CGDCONT: %d,\"%s\",\"%s\",\"0.0.0.0\",0,0\r\n" /* after the APN: I */
#define ME_CGACT_FMT "+CGACT: %d,%d\r\n"
#define ME_CGPADDR_FMT "+CGPADDR: %d,%s\r\n" /* unquoted (I) */
#define ME_NO_ADDR "0.0.0.0"                   /* an inactive context's address (I) */
#define ME_ZIPCALL_UP_FMT "\r\n+ZIPCALL: 1,%s\r\n"
#define ME_ZIPCALL_STATE_FMT "\r\n+ZIPCALL: %d\r\n" /* 0 down, 2 connecting (I) */
#define ME_ZIPCALL_LOST "\r\n+ZIPCALL: 0,0.0.0.0\r\n" /* the link-loss URC [MLS] */
#define ME_MAX_CID 16
#define ME_MAX_APN 99          /* 27.007 names no limit; 99 (I) */
#define ME_CALL_CID 1          /* the data call's context */
#define ME_STORE_PDP "pdp"     /* the context definitions in the module's flash */

/* ---- Aliyun CLOUD* (§8) ----------------------------------------------------- */
#define ME_ALIAUTH_OK "\r\n+ALIAUTH: OK\r\n"
#define ME_ALIAUTH_FAIL "\r\n+ALIAUTH: FAIL\r\n"
#define ME_SUBACK_OK "\r\n+CLOUDSUBACK: <OK>\r\n"
#define ME_UNSUBACK_OK "\r\n+CLOUDUNSUBACK: <OK>\r\n"
#define ME_CMD_ERROR_FMT "\r\n+CMD ERROR: <%d>\r\n" /* note CMD, not CME */
#define ME_PUB_PROMPT "\r\n>"                      /* numeric-length CLOUDPUB (a guess, §10) */
#define ME_CLOUDSTATE_FMT "\r\n+CLOUDSTATE: %d\r\n"
/* the URC is built by hand (binary payload): head, payload, tail */
#define ME_PUBLISH_HEAD_FMT "\r\n+CLOUDPUBLISH:%s%d,%s,%d,"
#define ME_PUBLISH_TAIL "\r\n"

/* +CMD ERROR codes (the N58 list the reference adopts, §8.3) */
#define ME_CMD_E_NO_HANDLE (-1) /* not connected */
#define ME_CMD_E_FAILED (-2)    /* refused by the broker, or the table is full */
#define ME_CMD_E_TIMEOUT (-3)   /* no SUBACK/UNSUBACK in time */

/* limits [ME-doc] */
#define ME_MAX_FIELD 64   /* pkey, dname, dsrt; CLOUDPUB topic */
#define ME_MAX_TOPIC 128  /* CLOUDSUB/UNSUB topic (decision: the doc gives none) */
#define ME_MAX_SUBS 8
/* Command line limit including CR: the seed names none; eight 64-byte
 * topic/qos pairs in one AT+CLOUDSUB (as the seed allows) need ~540 bytes. */
#define ME_MAX_LINE 1024
#define ME_MAX_MSG 255    /* "each message shorter than 256 bytes" */

/* ---- configuration (the module's "me3630" object) ------------------------- */
enum me_rat { ME_RAT_LTE, ME_RAT_UMTS, ME_RAT_GSM };
enum me_auth_mode { ME_AUTH_DIRECT, ME_AUTH_HTTPS };
enum me_transport { ME_TRANSPORT_TCP, ME_TRANSPORT_TLS };

#define ME_MAX_BOOT_URCS 4

struct me_config {
  char manufacturer[32], model[32], revision[48], imei[16];
  int cmee; /* AT+CMEE after power-on */
  char boot_urcs[ME_MAX_BOOT_URCS][64];
  int n_boot_urcs;
  /* sim */
  bool sim_present;
  char pin[9]; /* "" = no PIN lock */
  char iccid[21], imsi[16];
  /* network */
  unsigned registration_ms; /* after power-on / CFUN=1 / PIN */
  bool net_available;       /* false: searching forever */
  bool roaming;
  char operator_name[32];
  int csq;
  enum me_rat rat;
  bool tdd;
  char lac[9], cell_id[9];
  char ip[16], gateway[16], dns1[16], dns2[16];
  unsigned call_ms; /* AT+ZIPCALL=1 / AT+ZECMCALL=1 set-up time */
  /* aliyun */
  enum me_auth_mode auth_mode;
  char *auth_url, *auth_ca_file;
  unsigned auth_ms;         /* direct mode: delay before +ALIAUTH */
  unsigned auth_timeout_ms; /* https mode */
  char *mqtt_host;          /* NULL: <pk>.iot-as-mqtt.<region>.aliyuncs.com */
  int mqtt_port;
  char region[32];
  enum me_transport transport;
  char *ca_file;
  enum vm_aliyun_signmethod signmethod;
  int securemode; /* ME_SECUREMODE_AUTO: 2 for tls, 3 for tcp (direct) */
  char *client_id; /* NULL: <pk>.<dn> */
  char timestamp[24]; /* "" = none */
  int keepalive;
  unsigned connect_timeout_ms, ack_timeout_ms, pub_data_timeout_ms;
  bool urc_space, unsuback_urc, numeric_length;
  char *conn_lost_urc; /* NULL: the module says nothing when the broker goes */
};

#define ME_SECUREMODE_AUTO (-100)

/* ---- runtime state ------------------------------------------------------------ */
enum me_sim { ME_SIM_ABSENT, ME_SIM_LOCKED, ME_SIM_READY };
/* <stat> of +CREG and friends */
enum me_reg { ME_REG_NONE = 0, ME_REG_HOME = 1, ME_REG_SEARCHING = 2, ME_REG_ROAMING = 5 };

/* Commands that stay pending until the network answers (their final
 * result depends on it). CLOUDAUTH, CLOUDSUB and CLOUDUNSUB answer OK at once
 * and report the outcome later as a URC (see struct me_batch). */
enum me_op { ME_OP_NONE, ME_OP_CONN, ME_OP_PUB, ME_OP_DISCONN };

/* One CLOUDSUB or CLOUDUNSUB waiting for its SUBACKs / UNSUBACK. */
#define ME_MAX_BATCHES 4
struct me_batch {
  bool used, unsub, refused;
  int n, acked;
  int mids[ME_MAX_SUBS];
  char topics[ME_MAX_SUBS][ME_MAX_TOPIC + 1];
  uint64_t deadline; /* uv_now() */
};

struct me_cloud {
  struct vm_mqtt *mq; /* current connection or attempt */
  bool connected;
  struct vm_http http;
  struct vm_http_req req;
  uv_timer_t auth_timer; /* direct mode: delay before +ALIAUTH */
  uv_timer_t op_timer;   /* PUBACK of the pending CLOUDPUB */
  uv_timer_t ack_timer;  /* the oldest batch's deadline */
  /* CLOUDAUTH: in progress, then its result kept until CLOUDDISCONN */
  bool auth_busy, authed;
  char pk[ME_MAX_FIELD + 1], dn[ME_MAX_FIELD + 1], ds[ME_MAX_FIELD + 1];
  bool have_token; /* https mode: iotId/iotToken and the broker it named */
  char iot_id[128], iot_token[128], host[256];
  int port;
  /* CLOUDCONN parameters */
  int keepalive;
  bool clean;
  /* subscriptions made (or being made) on this connection */
  char subs[ME_MAX_SUBS][ME_MAX_TOPIC + 1];
  int n_subs;
  struct me_batch batches[ME_MAX_BATCHES];
  /* the pending command */
  enum me_op op;
  int pub_mid, pub_qos;
  char pub_topic[ME_MAX_FIELD + 1];
  /* for `status` and the counters */
  char mqtt_host[256]; /* the broker of the current connection or attempt */
  int mqtt_port;
  unsigned sessions; /* established since power-on: the later ones are reconnects */
};

/* The data call: its values are the +ZIPCALL <state>s. */
enum me_call { ME_CALL_DOWN = 0, ME_CALL_UP = 1, ME_CALL_CONNECTING = 2 };
#define ME_CALL_BY_ZIP 0x1u
#define ME_CALL_BY_ECM 0x2u

enum me_pdp_type { ME_PDP_IP, ME_PDP_IPV6, ME_PDP_IPV4V6 };
struct me_pdp {
  bool defined, active;
  enum me_pdp_type type;
  char apn[ME_MAX_APN + 1];
};

struct me_state {
  struct vm_module *m;
  const struct me_config *cfg;
  unsigned gen; /* bumped at every power-off: stale callbacks check it */
  /* the radio world (network.csq and sim.present, then the `cell` faults):
   * not the module's RAM, so resets keep them */
  bool net_gone;     /* `cell deregister`: no network to register with */
  bool sim_inserted; /* `cell sim-out` / `sim-in` */
  int csq;           /* `cell signal N`: the rssi AT+CSQ reports */
  int cmee, cfun;
  enum me_sim sim;
  enum me_reg reg;
  int reg_n[3]; /* AT+CREG= / +CGREG= / +CEREG= <n> */
  /* packet data (me_data.c) */
  struct me_pdp pdp[ME_MAX_CID + 1]; /* [1..16]; definitions survive resets (flash) */
  bool detached;                     /* AT+CGATT=0 */
  enum me_call call;
  unsigned call_users; /* ME_CALL_BY_*: the commands that asked for the call */
  bool ecm_waiting;    /* AT+ZECMCALL=1 pending until the dial ends */
  uv_timer_t reg_timer, call_timer;
  struct me_cloud cloud;
};

/* me3630.c: helpers shared by the command files */
struct me_state *me_state_of(struct vm_at *at);
/* The error reply for a 27.007 code as AT+CMEE selects; returns VM_AT_DONE. */
enum vm_at_result me_cme(struct vm_at *at, int code);
/* The same bytes as a URC (a result reported after the command's OK). */
void me_cme_urc(struct vm_at *at, int code);
/* "\r\n<text>\r\n" */
void me_line(struct vm_at *at, const char *text);

/* "Text" parameter i (quoted or bare) of 1..max bytes: 0, or -1. */
int me_text_param(const struct vm_at_args *a, int i, size_t max, const char **out);

/* me_cell.c */
extern const struct vm_at_cmd me_cell_cmds[];
extern const size_t me_cell_ncmds;
int me_cell_init(struct me_state *s);
void me_cell_power_on(struct me_state *s);
void me_cell_power_off(struct me_state *s);
void me_cell_destroy(struct me_state *s);
/* 0 when the data path is usable, else the +CME code that says why not:
 * SIM absent, PIN, no registration, no data call. */
int me_cell_data_ready(const struct me_state *s);
bool me_cell_registered(const struct me_state *s);
/* 0 when the SIM is present and unlocked, else its +CME code. */
int me_cell_sim_error(const struct me_state *s);
/* `cell deregister|register|signal N|sim-out|sim-in|datacall-drop`
 * (fault.h; argv[0] is "cell"): 0, or -1 with one line in err. The check
 * needs no module (the config's scheduled faults). */
int me_cell_fault(struct me_state *s, int argc, char **argv, char *err, size_t errlen);
int me_cell_fault_check(int argc, char **argv, char *err, size_t errlen);
/* The "cell" member of `status`. */
void me_cell_status(struct me_state *s, cJSON *obj);

/* me_data.c */
extern const struct vm_at_cmd me_data_cmds[];
extern const size_t me_data_ncmds;
int me_data_init(struct me_state *s);
void me_data_power_on(struct me_state *s);
/* Radio off (CFUN=0/4) or the network gone: every context and the call end,
 * with their URCs. */
void me_data_radio_off(struct me_state *s);
/* The network drops the data call (`cell datacall-drop`): its URCs, the
 * session over it ends. -1 when no call is up or being dialled. */
int me_data_call_drop(struct me_state *s);
/* "up", "connecting" or "down" (`status`). */
const char *me_data_call_state(const struct me_state *s);
void me_data_power_off(struct me_state *s);
void me_data_destroy(struct me_state *s);

/* me_auth.c */
struct me_creds {
  char client_id[256], username[160], password[160], host[256];
  int port;
};
extern const struct vm_at_cmd me_auth_cmds[];
extern const size_t me_auth_ncmds;
int me_auth_init(struct me_state *s);
/* The CONNECT fields and broker of the authenticated device: 0, or -1. */
int me_auth_creds(struct me_state *s, struct me_creds *k);
/* Drops the triple and any token (CLOUDDISCONN, reset). */
void me_auth_forget(struct me_state *s);
void me_auth_on_call_down(struct me_state *s);
void me_auth_power_off(struct me_state *s);
void me_auth_destroy(struct me_state *s);

/* me_cloud.c */
extern const struct vm_at_cmd me_cloud_cmds[];
extern const size_t me_cloud_ncmds;
int me_cloud_init(struct me_state *s);
/* The data call went down (ZIPCALL=0, ZECMCALL=0, CGACT=0, CGATT=0, CFUN=0):
 * the MQTT link goes with it. */
void me_cloud_on_call_down(struct me_state *s);
/* The "mqtt" member of `status`. */
void me_cloud_status(struct me_state *s, cJSON *obj);
void me_cloud_power_off(struct me_state *s);
void me_cloud_destroy(struct me_state *s);

#endif
