/* w800.h - the w800 dialect's shared state and, in one place, every fixed
 * reply string it prints (shared/reference/w800-me3630-at.md §2-§6, §10).
 *
 * Reply conventions (ESP-AT v3.x core): information lines and URCs are
 * "text\r\n" with no leading CR LF; the final result carries one
 * ("\r\nOK\r\n", "\r\nERROR\r\n"), so a query reads "+X:...\r\n\r\nOK\r\n". */
#ifndef VMODULE_DIALECT_W800_H
#define VMODULE_DIALECT_W800_H

#include <stdbool.h>
#include <stdint.h>

#include "vmodule/esp.h"

/* ---- framing --------------------------------------------------------------- */
#define W8_OK "\r\nOK\r\n"
#define W8_ERROR "\r\nERROR\r\n"
#define W8_ERR_CODE_FMT "ERR CODE:0x%08x\r\n" /* only after AT+SYSLOG=1 */
#define W8_BUSY "\r\nbusy p...\r\n"
#define W8_BUSY_SYSLOG "ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
#define W8_READY "\r\nready\r\n"
#define W8_FORCE_RESTART "\r\nWill force to restart!!!\r\n" /* AT+RST while busy */
/* w800.error_style "w800": the WinnerMicro framework's texts */
#define W8_CMD_FORMAT_ERR "\r\nCMD FORMAT ERR\r\n" /* no such command */
#define W8_CMD_PARSE_ERR "\r\nCMD PARSE ERR\r\n"   /* parameters not as required */
#define W8_PROMPT "\r\nOK\r\n\r\n>"                /* data-entry commands: no CR LF after '>' */

#define W8_SYSLOG_QUERY_FMT "+SYSLOG:%d\r\n"

/* ---- MQTT lines (§5) ---------------------------------------------------------- */
#define W8_PASSWORD_SHOWN "***" /* what AT+MQTTUSERCFG? prints for a set password */
#define W8_USERCFG_FMT "+MQTTUSERCFG:0,%d,\"%s\",\"%s\",\"%s\",%d,%d,\"%s\"\r\n"
#define W8_CONNCFG_FMT "+MQTTCONNCFG:0,%d,%d,\"%s\",\"%s\",%d,%d\r\n"
#define W8_ALPN_FMT "+MQTTALPN:0,\"%s\"\r\n"
#define W8_CONN_IDLE_FMT "+MQTTCONN:0,%d,%d,\"\",\"\",\"\",0\r\n"
#define W8_CONN_FMT "+MQTTCONN:0,%d,%d,\"%s\",\"%d\",\"%s\",%d\r\n"
#define W8_SUB_IDLE_FMT "+MQTTSUB:0,%d,\"\",0\r\n"
#define W8_SUB_FMT "+MQTTSUB:0,%d,\"%s\",%d\r\n"
#define W8_ALREADY_SUBSCRIBE "ALREADY SUBSCRIBE\r\n"
#define W8_ALREADY_FULL_SUBSCRIBE "ALREADY FULL SUBSCRIBE\r\n"
#define W8_NO_UNSUBSCRIBE "NO UNSUBSCRIBE\r\n"
#define W8_PUB_OK "+MQTTPUB:OK\r\n"
#define W8_PUB_FAIL "+MQTTPUB:FAIL\r\n"
/* URCs; the port is quoted and the WebSocket path carries its '/' (§5.5) */
#define W8_URC_CONNECTED_FMT "+MQTTCONNECTED:0,%d,\"%s\",\"%d\",\"%s\",%d\r\n"
#define W8_URC_DISCONNECTED "+MQTTDISCONNECTED:0\r\n"
#define W8_URC_SUBRECV_HEAD_FMT "+MQTTSUBRECV:0,\"%s\",%zu," /* then the raw payload, then CR LF */
#define W8_URC_SUBRECV_TAIL "\r\n"

/* Usage texts printed for AT+X=? (W800 SDK wm_atcmd_mqtt.h), then OK. */
#define W8_USAGE_USERCFG                                                                        \
  "AT+MQTTUSERCFG?\r\n"                                                                         \
  "AT+MQTTUSERCFG=<LinkID>,<scheme>,<\"client_id\">,<\"username\">,<\"password\">,<cert_key_ID>," \
  "<CA_ID>,<\"path\">\r\n"                                                                      \
  "example:AT+MQTTUSERCFG=0,1,\"test\",\"hello\",\"123456\",0,0,\"\"\r\n"
#define W8_USAGE_LONGCLIENTID \
  "AT+MQTTLONGCLIENTID=<LinkID>,<length>\r\nexample:AT+MQTTLONGCLIENTID=0,10\r\n"
#define W8_USAGE_LONGUSERNAME \
  "AT+MQTTLONGUSERNAME=<LinkID>,<length>\r\nexample:AT+MQTTLONGUSERNAME=0,10\r\n"
#define W8_USAGE_LONGPASSWORD \
  "AT+MQTTLONGPASSWORD=<LinkID>,<length>\r\nexample:AT+MQTTLONGPASSWORD=0,10\r\n"
#define W8_USAGE_CONNCFG                                                                         \
  "AT+MQTTCONNCFG?\r\n"                                                                          \
  "AT+MQTTCONNCFG=<LinkID>,<keepalive>,<disable_clean_session>,<\"lwt_topic\">,<\"lwt_msg\">,"   \
  "<lwt_qos>,<lwt_retain>\r\n"                                                                   \
  "example:AT+MQTTCONNCFG=0,50,0,\"lwtt\",\"lwtm\",0,0\r\n"
#define W8_USAGE_ALPN                                                            \
  "AT+MQTTALPN?\r\n"                                                             \
  "AT+MQTTALPN=<LinkID>,<alpn_counts>[,<\"alpn\">][,<\"alpn\">][,<\"alpn\">]\r\n" \
  "example:AT+MQTTALPN=0,2,\"mqtt-ca.cn\",\"mqtt-ca.us\"\r\n"
#define W8_USAGE_CONN                                      \
  "AT+MQTTCONN?\r\n"                                       \
  "AT+MQTTCONN=<LinkID>,<\"host\">,<port>,<reconnect>\r\n" \
  "example:AT+MQTTCONN=0,\"192.168.200.2\",8883,1\r\n"
#define W8_USAGE_PUB                                              \
  "AT+MQTTPUB=<LinkID>,<\"topic\">,<\"data\">,<qos>,<retain>\r\n" \
  "example:AT+MQTTPUB=0,\"123\",\"Hello\",0,0\r\n"
#define W8_USAGE_PUBRAW                                              \
  "AT+MQTTPUBRAW=<LinkID>,<\"topic\">,<length>,<qos>,<retain>\r\n" \
  "example:AT+MQTTPUBRAW=0,\"123\",25,0,0\r\n"
#define W8_USAGE_SUB                          \
  "AT+MQTTSUB?\r\n"                           \
  "AT+MQTTSUB=<LinkID>,<\"topic\">,<qos>\r\n" \
  "example:AT+MQTTSUB=0,\"123\",0\r\n"
#define W8_USAGE_UNSUB "AT+MQTTUNSUB=<LinkID>,<\"topic\">\r\nexample:AT+MQTTUNSUB=0,\"123\"\r\n"
#define W8_USAGE_CLEAN "AT+MQTTCLEAN=<LinkID>\r\nexample:AT+MQTTCLEAN=0\r\n"

/* ---- ESP-AT MQTT error codes (ERR CODE 0x010a<code>) -------------------------- */
enum w8_mqtt_err {
  W8_E_NO_CONFIGURED = 0x6001,
  W8_E_NOT_IN_CONFIGURED_STATE = 0x6002,
  W8_E_UNINITIATED_OR_ALREADY_CLEAN = 0x6003,
  W8_E_ALREADY_CONNECTED = 0x6004,
  W8_E_MALLOC_FAILED = 0x6005,
  W8_E_NULL_LINK = 0x6006,
  W8_E_NULL_PARAMTER = 0x6007,
  W8_E_PARAMETER_COUNTS_IS_WRONG = 0x6008,
  W8_E_TLS_CONFIG_ERROR = 0x6009,
  W8_E_PARAM_PREPARE_ERROR = 0x600A,
  W8_E_CLIENT_START_FAILED = 0x600B,
  W8_E_CLIENT_PUBLISH_FAILED = 0x600C,
  W8_E_CLIENT_SUBSCRIBE_FAILED = 0x600D,
  W8_E_CLIENT_UNSUBSCRIBE_FAILED = 0x600E,
  W8_E_CLIENT_DISCONNECT_FAILED = 0x600F,
  W8_E_LINK_ID_READ_FAILED = 0x6010,
  W8_E_LINK_ID_VALUE_IS_WRONG = 0x6011,
  W8_E_SCHEME_READ_FAILED = 0x6012,
  W8_E_SCHEME_VALUE_IS_WRONG = 0x6013,
  W8_E_CLIENT_ID_READ_FAILED = 0x6014,
  W8_E_CLIENT_ID_IS_NULL = 0x6015,
  W8_E_CLIENT_ID_IS_OVERLENGTH = 0x6016,
  W8_E_USERNAME_READ_FAILED = 0x6017,
  W8_E_USERNAME_IS_NULL = 0x6018,
  W8_E_USERNAME_IS_OVERLENGTH = 0x6019,
  W8_E_PASSWORD_READ_FAILED = 0x601A,
  W8_E_PASSWORD_IS_NULL = 0x601B,
  W8_E_PASSWORD_IS_OVERLENGTH = 0x601C,
  W8_E_CERT_KEY_ID_READ_FAILED = 0x601D,
  W8_E_CERT_KEY_ID_VALUE_IS_WRONG = 0x601E,
  W8_E_CA_ID_READ_FAILED = 0x601F,
  W8_E_CA_ID_VALUE_IS_WRONG = 0x6020,
  W8_E_CA_LENGTH_ERROR = 0x6021,
  W8_E_CA_READ_FAILED = 0x6022,
  W8_E_CERT_LENGTH_ERROR = 0x6023,
  W8_E_CERT_READ_FAILED = 0x6024,
  W8_E_KEY_LENGTH_ERROR = 0x6025,
  W8_E_KEY_READ_FAILED = 0x6026,
  W8_E_PATH_READ_FAILED = 0x6027,
  W8_E_PATH_IS_NULL = 0x6028,
  W8_E_PATH_IS_OVERLENGTH = 0x6029,
  W8_E_VERSION_READ_FAILED = 0x602A,
  W8_E_KEEPALIVE_READ_FAILED = 0x602B,
  W8_E_KEEPALIVE_IS_NULL = 0x602C,
  W8_E_KEEPALIVE_VALUE_IS_WRONG = 0x602D,
  W8_E_DISABLE_CLEAN_SESSION_READ_FAILED = 0x602E,
  W8_E_DISABLE_CLEAN_SESSION_VALUE_IS_WRONG = 0x602F,
  W8_E_LWT_TOPIC_READ_FAILED = 0x6030,
  W8_E_LWT_TOPIC_IS_NULL = 0x6031,
  W8_E_LWT_TOPIC_IS_OVERLENGTH = 0x6032,
  W8_E_LWT_MSG_READ_FAILED = 0x6033,
  W8_E_LWT_MSG_IS_NULL = 0x6034,
  W8_E_LWT_MSG_IS_OVERLENGTH = 0x6035,
  W8_E_LWT_QOS_READ_FAILED = 0x6036,
  W8_E_LWT_QOS_VALUE_IS_WRONG = 0x6037,
  W8_E_LWT_RETAIN_READ_FAILED = 0x6038,
  W8_E_LWT_RETAIN_VALUE_IS_WRONG = 0x6039,
  W8_E_HOST_READ_FAILED = 0x603A,
  W8_E_HOST_IS_NULL = 0x603B,
  W8_E_HOST_IS_OVERLENGTH = 0x603C,
  W8_E_PORT_READ_FAILED = 0x603D,
  W8_E_PORT_VALUE_IS_WRONG = 0x603E,
  W8_E_RECONNECT_READ_FAILED = 0x603F,
  W8_E_RECONNECT_VALUE_IS_WRONG = 0x6040,
  W8_E_TOPIC_READ_FAILED = 0x6041,
  W8_E_TOPIC_IS_NULL = 0x6042,
  W8_E_TOPIC_IS_OVERLENGTH = 0x6043,
  W8_E_DATA_READ_FAILED = 0x6044,
  W8_E_DATA_IS_NULL = 0x6045,
  W8_E_DATA_IS_OVERLENGTH = 0x6046,
  W8_E_QOS_READ_FAILED = 0x6047,
  W8_E_QOS_VALUE_IS_WRONG = 0x6048,
  W8_E_RETAIN_READ_FAILED = 0x6049,
  W8_E_RETAIN_VALUE_IS_WRONG = 0x604A,
  W8_E_PUBLISH_LENGTH_READ_FAILED = 0x604B,
  W8_E_PUBLISH_LENGTH_VALUE_IS_WRONG = 0x604C,
  W8_E_RECV_LENGTH_IS_WRONG = 0x604D,
  W8_E_CREATE_SEMA_FAILED = 0x604E,
  W8_E_CREATE_EVENT_GROUP_FAILED = 0x604F,
  W8_E_URI_PARSE_FAILED = 0x6050,
  W8_E_IN_DISCONNECTED_STATE = 0x6051,
  W8_E_HOSTNAME_VERIFY_FAILED = 0x6052,
};
/* The ERR CODE of an MQTT handler failure: subcategory 0x0A + the MQTT code. */
#define W8_ERR(mqtt_code) VM_AT_ERR_EXEC_FAIL(mqtt_code)

/* ---- limits (§5) ---------------------------------------------------------------- */
#define W8_MAX_CLIENT_ID 256
#define W8_MAX_USERNAME 64
#define W8_MAX_PASSWORD 64
#define W8_MAX_LONG 1024 /* AT+MQTTLONG* */
#define W8_MAX_PATH 32
#define W8_MAX_HOST 128
#define W8_MAX_TOPIC 128
#define W8_MAX_LWT_MSG 128 /* doc value (the v3.2 code says 64; §10 decision: 128) */
#define W8_MAX_KEEPALIVE 7200
#define W8_DEFAULT_KEEPALIVE 120 /* keepalive 0 means this */
#define W8_MAX_PUB_DATA 256
#define W8_MAX_PUBRAW 5760 /* W800 doc */
#define W8_MAX_ALPN 5
#define W8_MAX_ALPN_LEN 255 /* an ALPN protocol name (RFC 7301) */
#define W8_MAX_SUBS 10
#define W8_TIMEOUT_MIN_MS 3000 /* optional 5th MQTTCONN parameter (newer ESP-AT) */
#define W8_TIMEOUT_MAX_MS 60000

/* ---- configuration (the module's "w800" object) --------------------------------- */
enum w8_error_style { W8_STYLE_ESP = 0, W8_STYLE_W800 };

struct w8_config {
  struct vm_esp_config esp;
  enum w8_error_style error_style; /* "esp-at" (default; "esp" too) | "w800" */
  char *ca_file, *client_cert, *client_key; /* CA_ID 0 / cert_key_ID 0 */
  unsigned reconnect_interval_ms; /* esp-mqtt's reconnect_timeout_ms (10 s) */
  unsigned connect_timeout_ms;    /* MQTTCONN without its 5th parameter (15 s) */
  unsigned command_timeout_ms;    /* QoS>0 PUB/SUB/UNSUB waiting for the ack (10 s) */
  unsigned data_timeout_ms;       /* LONG* / PUBRAW data phase; 0 = wait forever (ESP-AT) */
  bool clean_idle_ok;             /* MQTTCLEAN in state 0: OK (W800 doc) instead of ERROR */
  bool full_subscribe_refuse;     /* 11th topic: refuse (ERROR) instead of subscribe anyway */
  bool require_sntp;              /* verifying schemes fail until SNTP has set the clock */
  unsigned subrecv_chunk;         /* split +MQTTSUBRECV payloads (esp-mqtt buffer); 0 = whole */
};

/* ---- runtime state ------------------------------------------------------------------- */
enum w8_op {
  W8_OP_NONE,
  W8_OP_CONN,   /* MQTTCONN waiting for CONNACK */
  W8_OP_DATA,   /* LONG* / PUBRAW data phase */
  W8_OP_PUB,    /* MQTTPUB QoS>0 waiting for PUBACK/PUBCOMP */
  W8_OP_PUBRAW, /* MQTTPUBRAW QoS>0 waiting for PUBACK/PUBCOMP */
  W8_OP_SUB,    /* MQTTSUB QoS>0 waiting for SUBACK */
  W8_OP_UNSUB,  /* MQTTUNSUB waiting for UNSUBACK */
  W8_OP_CLEAN,  /* MQTTCLEAN waiting for the DISCONNECT to leave */
};

struct w8_sub {
  bool used;
  int qos;
  char topic[W8_MAX_TOPIC + 1];
};

struct vm_mqtt;
struct vm_ws;

/* Link 0: its configuration (what the queries print), the tracked topics,
 * the current connection and the pending command. */
struct w8_mqtt {
  struct w8_state *s;
  int state; /* 0..6 (§4) */
  /* AT+MQTTUSERCFG, overridden by AT+MQTTLONG* */
  int scheme, cert_key_id, ca_id;
  char client_id[W8_MAX_LONG + 1], username[W8_MAX_LONG + 1], password[W8_MAX_LONG + 1];
  char path[W8_MAX_PATH + 1];
  /* AT+MQTTCONNCFG */
  int keepalive, lwt_qos;
  bool disable_clean, lwt_retain;
  char lwt_topic[W8_MAX_TOPIC + 1], lwt_msg[W8_MAX_LWT_MSG + 1];
  /* AT+MQTTALPN */
  char alpn[W8_MAX_ALPN][W8_MAX_ALPN_LEN + 1];
  int nalpn;
  /* AT+MQTTCONN */
  char host[W8_MAX_HOST + 1];
  int port;
  bool reconnect;
  unsigned timeout_ms;
  struct w8_sub subs[W8_MAX_SUBS];

  /* the connection: libmosquitto, behind a WebSocket relay for schemes 6-10 */
  struct vm_mqtt *mq;
  struct vm_ws *ws;
  bool connected;
  bool attempting; /* a connection attempt is under way */
  uv_timer_t recon_timer, op_timer;
  int closes;

  /* the pending command */
  enum w8_op op;
  int op_mid;
  int op_qos;
  bool op_retain;
  const char *op_note; /* MQTTSUB: line printed before OK once acknowledged (or NULL) */
  char op_topic[W8_MAX_TOPIC + 1];
  bool data_disc; /* the link dropped while PUBRAW data was being typed */
};

struct w8_state {
  struct vm_esp esp; /* first: the ESP-family commands find it there */
  struct vm_module *m;
  const struct w8_config *cfg;
  bool syslog; /* AT+SYSLOG: ERR CODE lines before ERROR */
  struct w8_mqtt *mqtt;
};

/* w800.c */
struct w8_state *w8_state_of(struct vm_at *at);

/* w8_cmds.c: the AT+MQTT* table */
extern const struct vm_at_cmd w8_mqtt_cmds[];
extern const size_t w8_mqtt_ncmds;

/* w8_session.c: state machine, link (TCP/TLS via vm_mqtt, WebSocket via
 * vm_ws) and URCs. */
int w8_mqtt_init(struct w8_state *s);
void w8_mqtt_on_wifi(struct w8_state *s, bool up);
/* The "mqtt" member of `status` (dialect.h). */
void w8_mqtt_status(struct w8_state *s, cJSON *obj);
void w8_mqtt_power_off(struct w8_state *s);
void w8_mqtt_destroy(struct w8_state *s);
/* Forgets link 0 entirely (MQTTCLEAN, power-off): state 0. */
void w8_mqtt_reset(struct w8_mqtt *t);

/* Back ends of the commands, called once the parameters are valid; each
 * returns what the handler returns. */
enum vm_at_result w8_conn_start(struct vm_at *at, struct w8_mqtt *t);
/* raw: AT+MQTTPUBRAW (prints +MQTTPUB:OK/FAIL, no final OK). */
enum vm_at_result w8_publish(struct vm_at *at, struct w8_mqtt *t, const char *topic,
                             const void *payload, size_t len, int qos, bool retain, bool raw);
enum vm_at_result w8_subscribe(struct vm_at *at, struct w8_mqtt *t, const char *topic, int qos);
enum vm_at_result w8_unsubscribe(struct vm_at *at, struct w8_mqtt *t, const char *topic);
enum vm_at_result w8_clean(struct vm_at *at, struct w8_mqtt *t);

#endif
