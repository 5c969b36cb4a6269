/* tc_prov.c - Wi-Fi provisioning in the tencent dialect (reference §3.13,
 * §4, §6.3): AT+TCSTARTSMART, AT+TCSTOPSMART, AT+TCSAP, AT+TCSTOPSAP, the
 * phone app's UDP server, the token sent through MQTT, and the ESP-LOG-QUERY
 * diagnostic log server, as the firmware's qcloud_wifi_config.c runs them
 * (strings and control flow read in the v2.1.1 image [FW211] and the
 * qcloud-esp-at source; line numbers of its log below are that source's).
 *
 * The firmware runs three tasks; here each is a state on the module's loop:
 * - the configuration task ("mqtt task"): waits up to 300 s
 *   (tencent.provision_timeout_ms) for the station to get an address,
 *   50 s more after a failed join (provision_retry_timeout_ms); then, with
 *   that wait suspended, the token exchange: dynamic registration when only
 *   the product secret is stored, an MQTT client of its own with the stored
 *   triple, $thing/down/service subscribed, the region compared, the
 *   app_bind_token published QoS 1 and its PUBACK awaited (3 attempts), the
 *   client destroyed, 5 s (provision_settle_ms), then
 *   +TCxxx:WIFI_CONNECT_SUCCESS or WIFI_CONNECT_FAILED,<type>,<sub>;
 * - the app's UDP server on 127.0.0.1:tencent.softap_udp_port (the real one
 *   is 192.168.4.1:8266): ONE datagram is handled, then it closes, as the
 *   firmware's loop breaks; cmdType 1 joins the AP the app names in the
 *   simulated list (esp_wifi.c), cmdType 0 gives SmartConfig its token;
 * - after any failure, the log server on 127.0.0.1:tencent.log_udp_port
 *   (the ESP-LOG-QUERY softAP, 9876) answering {"cmdType":3} with the
 *   newest ten log lines, twice 500 ms apart.
 * The app_bind_token_reply's code does not decide the outcome: the firmware
 * only logs a nonzero one as error (24, code), posted to the app at its
 * next datagram. SmartConfig's radio part (ESP-TOUCH) comes through the
 * control verb `smartconfig SSID PASSWORD` / `smartconfig stop`.
 *
 * Wi-Fi passwords never reach a log, a trace or the app's log lines (they
 * show TC_PROV_SECRET_MASK, where the firmware prints them). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vmodule/event.h"
#include "vmodule/json.h"
#include "vmodule/fault.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/mqtt.h"
#include "tc_replies.h"
#include "tencent.h"

enum prov_mode { PM_NONE, PM_SMART, PM_SAP };

enum prov_phase {
  P_IDLE,     /* no configuration task */
  P_STARTING, /* the start failed: the handler's 3 s before FAIL */
  P_WAIT,     /* waiting for the station's address */
  P_DYNREG,   /* registering the device */
  P_PAUSE,    /* 500 ms after storing it */
  P_CONNECT,  /* MQTT connect attempt (or the pause before the second) */
  P_SUB,      /* yields waiting for the SUBACK */
  P_TOKEN,    /* yields waiting for the app's token */
  P_PUBLISH,  /* the publish's retry pause */
  P_PUBACK,   /* yields waiting for the PUBACK */
  P_YIELD,    /* the yield after an attempt */
  P_SETTLE,   /* the 5 s before SUCCESS */
};

static const char *const phase_names[] = {"idle",    "starting", "waiting_wifi", "registering",
                                          "registering", "connecting", "subscribing", "waiting_token",
                                          "publishing", "publishing", "publishing", "settling"};

struct prov_udp {
  uv_udp_t h;
  struct tc_prov *p;
  int port;
  bool log; /* the log server */
};

struct prov_err {
  bool previous; /* PRE_ERR: loaded from the store at the start */
  int id, sub;
};

struct tc_prov {
  struct tc_state *s;
  unsigned gen;
  /* the configuration task */
  enum prov_mode mode; /* PM_NONE: none runs */
  enum prov_phase phase;
  bool running;        /* sg_mqtt_task_run: cleared by a stop */
  bool success;        /* sg_wifi_config_success */
  bool token_received;
  char token[TC_PROV_MAX_TOKEN + 1];
  char region[TC_PROV_MAX_REGION + 1]; /* sg_region_str: RAM, kept until reboot */
  struct tc_devinfo dev;               /* sg_device_info */
  struct tc_prdinfo prd;               /* when registering */
  bool need_dynreg;
  char ap_ssid[TC_MAX_SSID + 1];       /* AT+TCSAP's access point */
  uv_timer_t deadline, step;
  int count;                           /* the current wait's remaining yields */
  int attempts_left, publish_left, connect_tries, result;
  /* its MQTT client */
  struct vm_mqtt *mq;
  int sub_mid, pub_mid;
  bool sub_ready, send_ready;
  char connid[VM_TENCENT_CONNID_LEN + 1];
  /* the app's UDP server */
  struct prov_udp *comm;
  uv_timer_t comm_timer;
  struct sockaddr_in peer;
  int comm_left;                       /* device replies still to send */
  enum tc_prov_app_kind comm_kind;
  char ssid[TC_PROV_MAX_SSID + 1], pwd[TC_PROV_MAX_PASSWORD + 1]; /* cmdType 1's AP */
  char reply[TC_PROV_REPLY_MAX + 4];
  int reply_len;
  char *comm_log; /* a log query's answer while it is sent */
  /* the log server */
  struct prov_udp *logsrv;
  bool log_task;                       /* sg_log_task_run */
  uv_timer_t log_timer;
  int log_left;
  char *log_buf;
  struct sockaddr_in log_peer;
  /* the logs */
  bool lines_on, errs_on;              /* the queues exist */
  char lines[TC_PROV_LOG_LINES][TC_PROV_LOG_ITEM];
  int nlines;
  struct prov_err errs[TC_PROV_ERR_LOGS];
  int nerrs;
  int closing; /* timers still to close at destroy */
};

static const char *const err_text[] = {
    "Everything OK!",        "MQTT connect error!",     "APP command error!",
    "WIFI boarding stop!",   "RTOS task error!",        "RTOS queue error!",
    "WIFI STA init error!",  "WIFI AP init error!",     "WIFI start error!",
    "WIFI config error!",    "WIFI connect error!",     "WIFI disconnect error!",
    "WIFI AP STA error!",    "ESP smartconfig start error!", "ESP smartconfig data error!",
    "SRV socket open error!", "SRV socket bind error!",  "SRV socket listen error!",
    "SRV socket fcntl error!", "SRV socket accept error!", "SRV socket recv error!",
    "SRV socket select error!", "SRV socket send error!", "MQTT Token send error!",
    "MQTT Token reply error!", "MQTT Token recv timeout!", "Product Region fault error!",
    "Device Info error!",
};

static void log_server_start(struct tc_prov *p);
static void attempt_start(struct tc_prov *p);
static void task_finish(struct tc_prov *p, int ret);

/* ---- small helpers ------------------------------------------------------- */

static const char *who(const struct tc_prov *p) { return p->s->m->name; }

static struct vm_at *at_of(struct tc_prov *p) { return &p->s->m->at; }

static struct tc_prov *prov_of(struct vm_at *at) { return tc_state_of(at)->prov; }

/* HAL_GetTimeMs(): a uint32_t of milliseconds since boot */
static unsigned now_ms(const struct tc_prov *p) {
  return (unsigned)(uv_now(p->s->m->loop) - p->s->esp.boot_ms);
}

static const char *head(const struct tc_prov *p) { return p->mode == PM_SMART ? TC_STARTSMART : TC_SAP; }

static void set_phase(struct tc_prov *p, enum prov_phase ph) {
  if (p->phase == ph) return;
  p->phase = ph;
  vm_event_state(who(p), "provision", phase_names[ph]);
}

/* push_dev_log(): "<ms>|<function>(<line>): <text>\r\n", the newest ten,
 * each cut to the firmware's 128-byte item. */
static void devlog(struct tc_prov *p, const char *func, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void devlog(struct tc_prov *p, const char *func, int line, const char *fmt, ...) {
  if (!p->lines_on) return;
  if (p->nlines == TC_PROV_LOG_LINES) {
    memmove(p->lines[0], p->lines[1], sizeof p->lines[0] * (TC_PROV_LOG_LINES - 1));
    p->nlines--;
  }
  char *b = p->lines[p->nlines++];
  int n = snprintf(b, TC_PROV_LOG_ITEM, TC_PROV_LOG_LINE_FMT, now_ms(p), func, line);
  if (n < 0 || n > TC_PROV_LOG_ITEM - 4) n = TC_PROV_LOG_ITEM - 4;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, (size_t)(TC_PROV_LOG_ITEM - 3 - n), fmt, ap);
  va_end(ap);
  strcat(b, "\r\n");
}

/* push_error_log() */
static void push_err(struct tc_prov *p, int id, int sub) {
  vm_log_info(who(p), "provision: boarding error: %s (%d, %d)", err_text[id], id, sub);
  if (!p->errs_on || p->nerrs == TC_PROV_ERR_LOGS) return;
  p->errs[p->nerrs++] = (struct prov_err){.id = id, .sub = sub};
}

/* ---- the persisted error log (save_error_log / handle_saved_error_log) ---- */

static void errs_load(struct tc_prov *p) {
  p->nerrs = 0;
  p->errs_on = true;
  const cJSON *a = vm_store_get(&p->s->m->store, TC_STORE_PROV_ERRLOG), *e;
  cJSON_ArrayForEach(e, a) {
    const cJSON *id = cJSON_GetArrayItem(e, 0), *sub = cJSON_GetArrayItem(e, 1);
    long long i, su;
    if (p->nerrs < TC_PROV_ERR_LOGS && vm_json_int(id, 0, 27, &i) &&
        vm_json_int(sub, -2147483647LL - 1, 2147483647LL, &su))
      p->errs[p->nerrs++] = (struct prov_err){.previous = true, .id = (int)i, .sub = (int)su};
  }
  if (a) { /* clear_err_log() */
    vm_store_put(&p->s->m->store, TC_STORE_PROV_ERRLOG, NULL);
    vm_store_commit(&p->s->m->store, NULL, NULL);
  }
}

/* Only the current errors the app has not been sent survive. */
static void errs_save(struct tc_prov *p) {
  if (!p->errs_on) return;
  p->errs_on = false;
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a && i < p->nerrs; i++) {
    if (p->errs[i].previous) continue;
    cJSON *e = cJSON_CreateArray();
    cJSON_AddItemToArray(e, cJSON_CreateNumber(p->errs[i].id));
    cJSON_AddItemToArray(e, cJSON_CreateNumber(p->errs[i].sub));
    cJSON_AddItemToArray(a, e);
  }
  p->nerrs = 0;
  if (!a || cJSON_GetArraySize(a) == 0) {
    cJSON_Delete(a);
    return;
  }
  vm_store_put(&p->s->m->store, TC_STORE_PROV_ERRLOG, a);
  vm_store_commit(&p->s->m->store, NULL, NULL);
}

/* ---- UDP ------------------------------------------------------------------- */

static void udp_closed(uv_handle_t *h) { free(h); }

static void udp_close(struct prov_udp **u) {
  if (!*u) return;
  uv_close((uv_handle_t *)&(*u)->h, udp_closed);
  *u = NULL;
}

static void udp_send(struct prov_udp *u, const struct sockaddr_in *to, const void *data, size_t len) {
  if (!u) return;
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(&u->h, &b, 1, (const struct sockaddr *)to);
  if (rc < 0) vm_log_warn(who(u->p), "provision: UDP send failed: %s", uv_strerror(rc));
}

/* One buffer for every module's datagrams: the loop reads one at a time. */
static char udp_buf[65536];

static void udp_alloc(uv_handle_t *h, size_t want, uv_buf_t *b) {
  (void)h;
  (void)want;
  *b = uv_buf_init(udp_buf, sizeof udp_buf);
}

static void comm_datagram(struct tc_prov *p, const char *data, size_t len,
                          const struct sockaddr_in *from);
static void log_datagram(struct tc_prov *p, const char *data, size_t len,
                         const struct sockaddr_in *from);

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags) {
  struct prov_udp *u = (struct prov_udp *)h;
  if (n <= 0 || !from || from->sa_family != AF_INET) return;
  const struct sockaddr_in *in = (const struct sockaddr_in *)from;
  if (u->log) log_datagram(u->p, b->base, (size_t)n, in);
  else comm_datagram(u->p, b->base, (size_t)n, in);
}

/* A UDP server on 127.0.0.1:port (0: the kernel picks). NULL with *err set. */
static struct prov_udp *udp_open(struct tc_prov *p, int port, bool log, int *err) {
  struct prov_udp *u = calloc(1, sizeof *u);
  if (!u) return *err = ENOMEM, NULL;
  u->p = p;
  u->log = log;
  uv_udp_init(p->s->m->loop, &u->h);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", port, &a);
  int rc = uv_udp_bind(&u->h, (const struct sockaddr *)&a, 0);
  if (rc == 0) rc = uv_udp_recv_start(&u->h, udp_alloc, udp_recv);
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (rc == 0) rc = uv_udp_getsockname(&u->h, (struct sockaddr *)&ss, &sl);
  if (rc < 0) {
    *err = -rc;
    vm_log_warn(who(p), "provision: cannot bind the %s UDP server to 127.0.0.1:%d: %s",
                log ? "log" : "softap", port, uv_strerror(rc));
    uv_close((uv_handle_t *)&u->h, udp_closed);
    return NULL;
  }
  u->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  vm_log_info(who(p), "%s udp port %d", log ? "log" : "softap", u->port);
  return u;
}

/* ---- the error and log replies to the app ------------------------------- */

/* app_send_error_log(): {"cmdType":2,"deviceReply":"...","log":"<text> (id, sub)"} */
static void send_error(struct tc_prov *p, const struct sockaddr_in *to, bool previous, int id, int sub) {
  char msg[64], json[TC_PROV_LOG_ITEM + 2];
  snprintf(msg, sizeof msg, "%s (%d, %d)", err_text[id], id, sub);
  cJSON *o = cJSON_CreateObject();
  bool ok = o && cJSON_AddNumberToObject(o, "cmdType", 2) &&
            cJSON_AddStringToObject(o, "deviceReply", previous ? "Previous_Error" : "Current_Error") &&
            cJSON_AddStringToObject(o, "log", msg) &&
            cJSON_PrintPreallocated(o, json, TC_PROV_LOG_ITEM, 0);
  cJSON_Delete(o);
  if (!ok) return;
  strcat(json, "\r\n");
  udp_send(p->comm, to, json, strlen(json));
}

/* get_and_post_error_log(): the queue, drained. */
static void post_errors(struct tc_prov *p, const struct sockaddr_in *to) {
  for (int i = 0; p->errs_on && i < p->nerrs; i++)
    send_error(p, to, p->errs[i].previous, p->errs[i].id, p->errs[i].sub);
  p->nerrs = 0;
}

/* app_send_dev_log()'s text: the lines, drained (NULL when there are none). */
static char *take_lines(struct tc_prov *p) {
  if (!p->lines_on || !p->nlines) return NULL;
  char *b = malloc((size_t)p->nlines * TC_PROV_LOG_ITEM + 32);
  if (!b) return NULL;
  b[0] = '\0';
  for (int i = 0; i < p->nlines; i++) strcat(b, p->lines[i]);
  p->nlines = 0;
  return b;
}

/* The datagram as the log shows it: a Wi-Fi password masked. */
static void masked_copy(char *dst, size_t cap, const char *data, size_t len, const char *pwd) {
  snprintf(dst, cap, "%.*s", (int)len, data);
  if (!pwd || !pwd[0]) return;
  for (char *at = strstr(dst, pwd); at; at = strstr(at + 1, pwd)) memset(at, '*', strlen(pwd));
}

/* ---- the MQTT client ---------------------------------------------------------- */

static void mq_freed(struct vm_mqtt *mq) { free(mq); }

static void mq_destroy(struct tc_prov *p) {
  if (!p->mq) return;
  vm_mqtt_close(p->mq, mq_freed);
  p->mq = NULL;
}

static void step_after(struct tc_prov *p, enum prov_phase ph, unsigned ms, uv_timer_cb cb) {
  set_phase(p, ph);
  uv_timer_start(&p->step, cb, ms, 0);
}

static unsigned step_ms(const struct tc_prov *p) { return p->s->cfg->provision_step_ms; }

static void topic_of(const struct tc_prov *p, const char *fmt, char *out, size_t cap) {
  snprintf(out, cap, fmt, p->dev.pid, p->dev.dn);
}

static void settled(uv_timer_t *t) { task_finish(t->data, 0); }

/* _send_token_wait_reply()'s end, then IOT_MQTT_Yield(client, 1000). */
static void after_yield(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  int ret = p->result;
  if (ret && ret != TC_PROV_E_REGION && p->attempts_left-- > 0 && p->running) {
    attempt_start(p);
    return;
  }
  if (ret == TC_PROV_E_TOKEN_RECV || ret == TC_PROV_E_REGION) push_err(p, ret, TC_RC_INVAL);
  else if (ret) push_err(p, TC_PROV_E_TOKEN_SEND, ret);
  mq_destroy(p);
  if (ret) task_finish(p, ret);
  else step_after(p, P_SETTLE, p->s->cfg->provision_settle_ms, settled);
}

static void attempt_end(struct tc_prov *p, int ret) {
  p->result = ret;
  step_after(p, P_YIELD, step_ms(p), after_yield);
}

static void puback_window(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (!p->send_ready && p->count-- > 0) {
    uv_timer_start(&p->step, puback_window, step_ms(p), 0);
    return;
  }
  if (!p->send_ready) {
    devlog(p, TC_PLOG_PUB_TIMEOUT);
    attempt_end(p, TC_RC_MQTT_UNKNOWN);
    return;
  }
  attempt_end(p, 0);
}

static int publish_token(struct tc_prov *p) {
  char topic[TC_MAX_TOPIC + 1], payload[256];
  topic_of(p, TC_PROV_UP_TOPIC_FMT, topic, sizeof topic);
  int n = snprintf(payload, sizeof payload, TC_PROV_BIND_TOKEN_FMT, p->dev.dn, now_ms(p), p->token);
  if (n < 0 || (size_t)n >= sizeof payload) return TC_RC_FAILURE - 3; /* QCLOUD_ERR_MALLOC */
  int rc = p->mq ? vm_mqtt_publish(p->mq, topic, payload, n, 1, false) : -ENOTCONN;
  if (rc < 0) return rc == -ENOTCONN ? TC_RC_NO_CONN : TC_RC_FAILURE;
  p->pub_mid = rc;
  return 0;
}

static void publish_step(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  int rc = publish_token(p);
  if (rc < 0 && p->publish_left-- > 0) {
    vm_log_info(who(p), "provision: publishing the token failed: %d", rc);
    bool up = p->s->esp.connected && p->mq && p->mq->state == VM_MQTT_CONNECTED;
    step_after(p, P_PUBLISH, up ? step_ms(p) / 2 : 2 * step_ms(p), publish_step);
    return;
  }
  if (rc < 0) {
    devlog(p, TC_PLOG_PUB_FAILED, rc);
    attempt_end(p, rc);
    return;
  }
  p->count = TC_PROV_PUBACK_WINDOWS;
  set_phase(p, P_PUBACK);
  puback_window(t);
}

static void token_window(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (!p->token_received && p->count-- > 0) {
    uv_timer_start(&p->step, token_window, step_ms(p), 0);
    return;
  }
  if (!p->token_received) {
    devlog(p, TC_PLOG_TOKEN_WAIT_TIMEOUT);
    attempt_end(p, TC_PROV_E_TOKEN_RECV);
    return;
  }
  if (strncmp(p->dev.region, p->region, TC_PROV_MAX_REGION)) {
    devlog(p, TC_PLOG_REGION_FAULT, p->dev.region, p->region);
    attempt_end(p, TC_PROV_E_REGION);
    return;
  }
  p->publish_left = TC_PROV_PUBLISH_TRIES - 1;
  publish_step(t);
}

/* One _send_token_wait_reply(). */
static void attempt_start(struct tc_prov *p) {
  unsigned step = step_ms(p);
  p->count = (int)((p->s->cfg->provision_token_wait_ms + step - 1) / step);
  set_phase(p, P_TOKEN);
  p->step.data = p;
  token_window(&p->step);
}

static void sub_window(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (!p->sub_ready && p->count-- > 0) {
    uv_timer_start(&p->step, sub_window, step_ms(p), 0);
    return;
  }
  if (p->count <= 0) devlog(p, TC_PLOG_SUB_FAILED, TC_RC_FAILURE);
  p->attempts_left = TC_PROV_TOKEN_ATTEMPTS - 1;
  attempt_start(p);
}

static void connect_attempt(uv_timer_t *t);

static void connect_failed(struct tc_prov *p, int code) {
  mq_destroy(p);
  if (p->connect_tries++ == 0) { /* _setup_mqtt_connect(): one more try */
    step_after(p, P_CONNECT, p->s->esp.connected ? step_ms(p) : 2 * step_ms(p), connect_attempt);
    return;
  }
  devlog(p, TC_PLOG_CONNECT_FAILED, p->dev.pid, p->dev.dn, code);
  push_err(p, TC_PROV_E_MQTT, code);
  task_finish(p, code);
}

static void on_connect(void *data, int rc) {
  struct tc_prov *p = data;
  if (rc) {
    connect_failed(p, tc_mqtt_connect_code(p->s, rc));
    return;
  }
  devlog(p, TC_PLOG_CONNECT_OK, p->dev.pid, p->dev.dn);
  char topic[TC_MAX_TOPIC + 1];
  topic_of(p, TC_PROV_DOWN_TOPIC_FMT, topic, sizeof topic);
  p->sub_mid = vm_mqtt_subscribe(p->mq, topic, 0);
  p->count = TC_PROV_SUB_WINDOWS;
  set_phase(p, P_SUB);
  p->step.data = p;
  sub_window(&p->step);
}

static void on_disconnect(void *data, enum vm_mqtt_disc_reason reason) {
  struct tc_prov *p = data;
  devlog(p, TC_PLOG_MQTT_DISCONNECT);
}

/* _on_message_callback(): any message on the topic with a code */
static void on_message(void *data, const char *topic, const void *payload, int len, int qos,
                       bool retain, int mid) {
  struct tc_prov *p = data;
  int code;
  if (!tc_parse_prov_bind_reply(payload, (size_t)len, &code)) {
    push_err(p, TC_PROV_E_TOKEN_REPLY, TC_PROV_S_JSON);
    return;
  }
  vm_log_info(who(p), "provision: token reply code %d", code);
  if (code) {
    devlog(p, TC_PLOG_TOKEN_REPLY_ERROR, code);
    push_err(p, TC_PROV_E_TOKEN_REPLY, code);
  }
}

static void on_publish(void *data, int mid) {
  struct tc_prov *p = data;
  if (mid == p->pub_mid) p->send_ready = true;
}

static void on_subscribe(void *data, int mid, int count, const int *granted) {
  struct tc_prov *p = data;
  if (mid == p->sub_mid) p->sub_ready = count >= 1 && granted[0] != 0x80;
}

static const struct vm_mqtt_cbs mqtt_cbs = {
    .on_connect = on_connect,
    .on_disconnect = on_disconnect,
    .on_message = on_message,
    .on_publish = on_publish,
    .on_subscribe = on_subscribe,
};

static void connect_attempt(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  struct vm_mqtt_opts o;
  struct tc_mqtt_creds c;
  struct tc_mqtt_link l = {.keepalive = TC_PROV_KEEPALIVE, .clean = true,
                           .timeout_ms = TC_PROV_CONNECT_MS};
  set_phase(p, P_CONNECT);
  if (p->s->cfg->connid[0]) strcpy(p->connid, p->s->cfg->connid);
  else vm_tencent_connid(p->connid, sizeof p->connid);
  int code = 0;
  if (tc_mqtt_opts(p->s, &p->dev, p->connid, &l, &o, &c) < 0) {
    code = TC_RC_FAILURE;
  } else if (!p->s->esp.connected) {
    code = tc_mqtt_connect_code(p->s, VM_MQTT_E_TCP);
  } else if (!(p->mq = malloc(sizeof *p->mq))) {
    code = TC_RC_FAILURE;
  } else if (vm_mqtt_init(p->mq, p->s->m->loop, who(p), &mqtt_cbs, p) < 0) {
    free(p->mq);
    p->mq = NULL;
    code = TC_RC_FAILURE;
  } else if (vm_mqtt_connect(p->mq, &o) < 0) {
    code = TC_RC_FAILURE;
  }
  OPENSSL_cleanse(&c, sizeof c);
  if (code) connect_failed(p, code);
}

static void mqtt_start(struct tc_prov *p) {
  p->connect_tries = 0;
  p->sub_ready = p->send_ready = false;
  p->step.data = p;
  connect_attempt(&p->step);
}

static void paused(uv_timer_t *t) { mqtt_start(t->data); }

static void dynreg_done(struct tc_state *s, const struct tc_prdinfo *prd, int code, const char *psk,
                        void *data) {
  struct tc_prov *p = data;
  if (code) {
    devlog(p, TC_PLOG_DYNREG_FAILED, code);
    devlog(p, TC_PLOG_DEVINFO_FAILED, code);
    push_err(p, TC_PROV_E_DEVICE_INFO, code);
    task_finish(p, code);
    return;
  }
  snprintf(p->dev.secret, sizeof p->dev.secret, "%s", psk);
  p->dev.tls = 1;
  p->need_dynreg = false;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "tls", 1);
  cJSON_AddStringToObject(o, "pid", p->dev.pid);
  cJSON_AddStringToObject(o, "dn", p->dev.dn);
  cJSON_AddStringToObject(o, "secret", p->dev.secret);
  cJSON_AddStringToObject(o, "region", p->dev.region);
  vm_store_put(&s->m->store, TC_STORE_DEVINFO, o);
  vm_store_commit(&s->m->store, NULL, NULL);
  vm_log_info(who(p), "provision: device %s/%s registered and stored", p->dev.pid, p->dev.dn);
  step_after(p, P_PAUSE, TC_PROV_DYNREG_PAUSE_MS, paused);
}

/* mqtt_send_token(): the station has its address. */
static void token_task_start(struct tc_prov *p) {
  uv_timer_stop(&p->deadline);
  if (!p->need_dynreg) {
    mqtt_start(p);
    return;
  }
  set_phase(p, P_DYNREG);
  int code = tc_dynreg_request(p->s, &p->prd, dynreg_done, p);
  if (code) dynreg_done(p->s, &p->prd, code, NULL, p);
}

/* ---- the configuration task ---------------------------------------------- */

/* The app's UDP server goes (sg_comm_task_run cleared), with what it was sending. */
static void comm_close(struct tc_prov *p) {
  udp_close(&p->comm);
  uv_timer_stop(&p->comm_timer);
  free(p->comm_log);
  p->comm_log = NULL;
}

/* wifi_stop_softap() / wifi_stop_smartconfig(): back to station mode. */
static void radio_stop(struct tc_prov *p) { p->s->esp.mode = 1; }

/* The end of the task's loop (with the URC already printed). */
static void task_end(struct tc_prov *p) {
  uv_timer_stop(&p->deadline);
  uv_timer_stop(&p->step);
  mq_destroy(p);
  radio_stop(p);
  errs_save(p);
  /* sg_comm_task_run cleared: the UDP task sees it at its loop's top, so
   * replies it is sending (app_reply_dev_info()'s three) still go out */
  if (!uv_is_active((uv_handle_t *)&p->comm_timer)) comm_close(p);
  p->running = false;
  p->mode = PM_NONE;
  OPENSSL_cleanse(&p->prd, sizeof p->prd);
  OPENSSL_cleanse(p->pwd, sizeof p->pwd);
  set_phase(p, P_IDLE);
  if (!p->success) log_server_start(p);
}

static void task_finish(struct tc_prov *p, int ret) {
  bool smart = p->mode == PM_SMART;
  if (ret) {
    vm_at_urcf(at_of(p), TC_URC_PROV_FAILED_FMT, head(p), TC_PROV_E_MQTT, ret);
    if (smart) devlog(p, TC_PLOG_SC_MQTT_FAILED, ret);
    else devlog(p, TC_PLOG_SAP_MQTT_FAILED, ret);
  } else {
    if (smart) devlog(p, TC_PLOG_SC_MQTT_OK);
    else devlog(p, TC_PLOG_SAP_MQTT_OK);
    p->success = true;
    vm_at_urcf(at_of(p), TC_URC_PROV_SUCCESS_FMT, head(p));
  }
  task_end(p);
}

/* The task's loop gave up: timeout, the app's stop, the UDP task's end. */
static void task_fail(struct tc_prov *p, int type, int sub) {
  vm_at_urcf(at_of(p), TC_URC_PROV_FAILED_FMT, head(p), (unsigned)type, sub);
  task_end(p);
}

static void deadline_hit(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (p->phase != P_WAIT) return;
  bool smart = p->mode == PM_SMART;
  if (smart) devlog(p, TC_PLOG_SC_TIMEOUT);
  else devlog(p, TC_PLOG_SAP_TIMEOUT);
  push_err(p, TC_PROV_E_STOP, TC_PROV_S_TIMEOUT);
  task_fail(p, TC_PROV_E_STOP, TC_PROV_S_TIMEOUT);
}

/* The UDP task ended without a token: the task's next look at it. */
static void comm_lost(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (p->phase != P_WAIT || p->token_received) return;
  bool smart = p->mode == PM_SMART;
  if (smart) devlog(p, TC_PLOG_SC_COMM_ERROR);
  else devlog(p, TC_PLOG_SAP_COMM_ERROR);
  task_fail(p, TC_PROV_E_TASK, TC_PROV_S_COMM_TASK);
}

static unsigned tick_ms(const struct tc_prov *p) {
  return p->mode == PM_SMART ? TC_PROV_SMART_TICK_MS : TC_PROV_SAP_TICK_MS;
}

static void comm_end(struct tc_prov *p) {
  comm_close(p);
  if (p->phase == P_WAIT && !p->token_received) step_after(p, P_WAIT, tick_ms(p), comm_lost);
}

/* The station's join for the task (esp_wifi.c): the event handler's lines. */
static void joined(struct vm_esp *esp, int fail, void *data) {
  struct tc_prov *p = data;
  const struct vm_wifi_ap *ap = fail ? NULL : &esp->cfg->aps[esp->ap];
  if (fail) {
    devlog(p, TC_PLOG_STA_DISCONNECTED, esp->join_ssid,
           fail == 2 ? TC_PROV_REASON_HANDSHAKE : TC_PROV_REASON_NO_AP);
    if (p->phase == P_WAIT)
      uv_timer_start(&p->deadline, deadline_hit, p->s->cfg->provision_retry_timeout_ms, 0);
    return;
  }
  devlog(p, TC_PLOG_STA_CONNECTED, ap->ssid,
         (unsigned)ap->channel);
  devlog(p, TC_PLOG_STA_GOT_IP, ap->ip);
  if (p->phase == P_WAIT && p->running) token_task_start(p);
}

static void join(struct tc_prov *p, const char *ssid, const char *pwd) {
  vm_log_info(who(p), "provision: joining \"%s\"", ssid);
  vm_esp_station_join(&p->s->esp, ssid, pwd, joined, p);
}

/* ---- the app's UDP server (udp_server_task / app_handle_recv_data) ------- */

static void comm_next(uv_timer_t *t);

static void comm_done(struct tc_prov *p, bool finished) {
  if (finished) devlog(p, TC_PLOG_APP_DONE);
  comm_end(p);
}

/* app_reply_dev_info(): three sends a step apart; then cmdType 1 sleeps a
 * step and joins. */
static void comm_next(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (p->comm_left > 0) {
    udp_send(p->comm, &p->peer, p->reply, (size_t)p->reply_len);
    if (--p->comm_left > 0 || p->comm_kind == TC_PROV_APP_AP) {
      uv_timer_start(&p->comm_timer, comm_next, step_ms(p), 0);
      return;
    }
  } else if (p->comm_kind == TC_PROV_APP_AP) {
    devlog(p, TC_PLOG_APP_AP, p->ssid, TC_PROV_SECRET_MASK,
           p->token);
    if (p->running) join(p, p->ssid, p->pwd); /* else the task ended while it replied */
    OPENSSL_cleanse(p->pwd, sizeof p->pwd);
  }
  comm_done(p, true);
}

/* Sends the device reply (or logs why not) and then finishes as comm_next does. */
static void reply_dev_info(struct tc_prov *p) {
  p->reply_len = tc_prov_device_reply(p->reply, sizeof p->reply, p->dev.pid, p->dev.dn,
                                      p->dev.region, p->s->cfg->variant->prov_reply_printf);
  p->comm_left = TC_PROV_REPLIES;
  if (p->reply_len < 0) {
    devlog(p, TC_PLOG_REPLY_PRINT_FAILED);
    push_err(p, TC_PROV_E_APP_CMD, TC_PROV_S_JSON_PRINT);
    p->comm_left = 0;
  }
  p->comm_timer.data = p;
  comm_next(&p->comm_timer);
}

/* app_send_dev_log() on the provisioning port: the lines twice, 500 ms apart. */
static void comm_log_next(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (p->comm_left-- > 0) {
    udp_send(p->comm, &p->peer, p->comm_log, strlen(p->comm_log));
    if (p->comm_left > 0) {
      uv_timer_start(&p->comm_timer, comm_log_next, TC_PROV_LOG_RESEND_MS, 0);
      return;
    }
  }
  free(p->comm_log);
  p->comm_log = NULL;
  comm_done(p, true);
}

static void comm_datagram(struct tc_prov *p, const char *data, size_t len,
                          const struct sockaddr_in *from) {
  struct tc_prov_app app;
  char shown[TC_PROV_APP_MAX + 1];
  enum tc_prov_app_kind kind = tc_parse_prov_app(data, len, &app);
  uv_udp_recv_stop(&p->comm->h); /* one round only: the firmware's loop breaks after it */
  vm_log_info(who(p), "provision: %zu bytes from the app", len);
  masked_copy(shown, sizeof shown, data, len < TC_PROV_APP_MAX ? len : TC_PROV_APP_MAX,
              kind == TC_PROV_APP_AP ? app.password : NULL);
  devlog(p, TC_PLOG_APP_DATAGRAM, shown);
  p->peer = *from;
  post_errors(p, from);
  if (app.has_region) strcpy(p->region, app.region);
  p->comm_kind = kind;
  switch (kind) {
  case TC_PROV_APP_TOKEN:
  case TC_PROV_APP_AP:
    strcpy(p->token, app.token);
    p->token_received = true;
    if (kind == TC_PROV_APP_AP) {
      strcpy(p->ssid, app.ssid);
      strcpy(p->pwd, app.password);
    }
    OPENSSL_cleanse(&app, sizeof app);
    reply_dev_info(p);
    return;
  case TC_PROV_APP_LOG:
    p->comm_log = take_lines(p);
    p->comm_left = p->comm_log ? 2 : 0;
    p->comm_timer.data = p;
    comm_log_next(&p->comm_timer);
    return;
  case TC_PROV_APP_MISSING:
    if (app.cmd == 0) devlog(p, TC_PLOG_APP_BAD_TOKEN, shown);
    else devlog(p, TC_PLOG_APP_BAD_AP);
    send_error(p, from, false, TC_PROV_E_APP_CMD, TC_PROV_S_AP_INFO);
    break;
  case TC_PROV_APP_BAD_JSON:
    devlog(p, TC_PLOG_APP_BAD_JSON, shown);
    send_error(p, from, false, TC_PROV_E_APP_CMD, TC_PROV_S_JSON);
    break;
  case TC_PROV_APP_UNKNOWN:
    devlog(p, TC_PLOG_APP_BAD_CMD, shown);
    send_error(p, from, false, TC_PROV_E_APP_CMD, TC_PROV_S_JSON);
    break;
  }
  OPENSSL_cleanse(&app, sizeof app);
  comm_done(p, false);
}

/* ---- the log server (start_log_softAP / log_server_task) ---------------- */

static void log_server_close(struct tc_prov *p) {
  bool was = p->log_task;
  udp_close(&p->logsrv);
  uv_timer_stop(&p->log_timer);
  free(p->log_buf);
  p->log_buf = NULL;
  p->log_task = false;
  if (was) vm_event_state(who(p), "provision_log", "stopped");
}

/* The log server's task ends: without a configuration task, the log goes. */
static void log_server_end(struct tc_prov *p) {
  log_server_close(p);
  if (!p->running) {
    radio_stop(p);
    p->lines_on = false; /* delete_dev_log_queue() */
    p->nlines = 0;
  }
}

static void log_timer_cb(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  if (p->log_buf && p->log_left-- > 0) {
    udp_send(p->logsrv, &p->log_peer, p->log_buf, strlen(p->log_buf));
    if (p->log_left > 0) {
      uv_timer_start(&p->log_timer, log_timer_cb, TC_PROV_LOG_RESEND_MS, 0);
      return;
    }
  }
  log_server_end(p);
}

static void log_datagram(struct tc_prov *p, const char *data, size_t len,
                         const struct sockaddr_in *from) {
  if (p->log_buf || len < TC_PROV_LOG_QUERY_CMP || memcmp(data, TC_PROV_LOG_QUERY, TC_PROV_LOG_QUERY_CMP))
    return; /* anything else: the server keeps waiting */
  uv_udp_recv_stop(&p->logsrv->h);
  p->log_peer = *from;
  p->log_buf = take_lines(p);
  p->log_left = 2;
  log_timer_cb(&p->log_timer);
}

static void log_server_start(struct tc_prov *p) {
  int err;
  log_server_close(p);
  p->lines_on = true; /* the queue lives on until the server ends */
  vm_esp_station_reset(&p->s->esp); /* wifi_ap_init(): the station leaves its AP */
  p->s->esp.mode = 2;
  p->log_task = true;
  p->logsrv = udp_open(p, p->s->cfg->log_udp_port, true, &err);
  uv_timer_start(&p->log_timer, log_timer_cb, TC_PROV_LOG_SERVER_MS, 0);
  vm_event_state(who(p), "provision_log", "listening");
}

/* ---- start and stop ------------------------------------------------------ */

/* _load_device_info(): the triple, else the product info (to register). */
static int load_device(struct tc_prov *p) {
  struct tc_state *s = p->s;
  memset(&p->dev, 0, sizeof p->dev);
  p->need_dynreg = false;
  if (tc_devinfo_load(s, &p->dev) == 0) return 0;
  if (tc_prdinfo_load(s, &p->prd)) return -1;
  p->dev.tls = p->prd.tls;
  strcpy(p->dev.pid, p->prd.pid);
  strcpy(p->dev.dn, p->prd.dn);
  strcpy(p->dev.region, p->prd.region);
  p->need_dynreg = true;
  return 0;
}

/* The previous configuration's tasks end first ("Wait for last config
 * finish"); here they are dropped at once, without a URC. */
static void stop_all(struct tc_prov *p) {
  uv_timer_stop(&p->deadline);
  uv_timer_stop(&p->step);
  mq_destroy(p);
  comm_close(p);
  if (p->phase == P_DYNREG) tc_dynreg_power_off(p->s);
  log_server_end(p);
  p->running = false;
  p->mode = PM_NONE;
  set_phase(p, P_IDLE);
}

static void start_fail_done(uv_timer_t *t) {
  struct tc_prov *p = t->data;
  const char *h = p->mode == PM_SMART ? TC_STARTSMART : TC_SAP;
  p->mode = PM_NONE;
  set_phase(p, P_IDLE);
  if (!p->success) log_server_start(p);
  vm_at_printf(at_of(p), TC_PROV_FAIL_FMT, h, TC_PROV_E_DEVICE_INFO);
  vm_at_complete(at_of(p), VM_AT_DONE);
}

/* start_softAP() / start_smartconfig() after the handler's OK. */
static enum vm_at_result task_start(struct vm_at *at, enum prov_mode mode, const char *ssid) {
  struct tc_prov *p = prov_of(at);
  bool smart = mode == PM_SMART;
  stop_all(p);
  p->lines_on = true; /* init_dev_log_queue() */
  p->nlines = 0;
  errs_load(p);       /* init_error_log_queue() */
  if (smart) devlog(p, TC_PLOG_SC_START);
  else devlog(p, TC_PLOG_SAP_START, ssid);
  p->success = p->token_received = false;
  memset(p->token, 0, sizeof p->token);
  p->mode = mode;
  if (load_device(p)) {
    if (smart) devlog(p, TC_PLOG_SC_NO_DEVICE, -1);
    else devlog(p, TC_PLOG_SAP_NO_DEVICE, -1);
    push_err(p, TC_PROV_E_DEVICE_INFO, -1);
    radio_stop(p);
    errs_save(p);
    /* err_exit: HAL_SleepMs(3000) inside the handler, then the log softAP */
    step_after(p, P_STARTING, TC_PROV_START_FAIL_LOG_MS, start_fail_done);
    return VM_AT_PENDING;
  }
  vm_esp_station_reset(&p->s->esp); /* wifi_ap_init() / wifi_sta_init() */
  p->s->esp.mode = smart ? 1 : 2;
  if (!smart) snprintf(p->ap_ssid, sizeof p->ap_ssid, "%s", ssid);
  int err = 0;
  p->comm = udp_open(p, p->s->cfg->softap_udp_port, false, &err);
  p->running = true;
  set_phase(p, P_WAIT);
  if (!p->comm) { /* the UDP task's bind failed: it ends at once */
    push_err(p, TC_PROV_E_SOCKET_BIND, err);
    uv_timer_start(&p->step, comm_lost, tick_ms(p), 0);
  }
  uv_timer_start(&p->deadline, deadline_hit, p->s->cfg->provision_timeout_ms, 0);
  vm_at_printf(at, TC_PROV_OK_FMT, smart ? TC_STARTSMART : TC_SAP);
  return VM_AT_DONE;
}

/* stop_softAP() / stop_smartconfig(): the task's loop ends at its next
 * look (nothing printed but the OK); a token exchange under way finishes. */
static void task_stop(struct tc_prov *p, bool smart) {
  if (!p->success && p->errs_on) {
    push_err(p, TC_PROV_E_STOP, TC_PROV_S_AT_STOP);
    if (smart) devlog(p, TC_PLOG_SC_STOPPED);
    else devlog(p, TC_PLOG_SAP_STOPPED);
  }
  bool waiting = p->phase == P_WAIT;
  p->running = false;
  comm_close(p);
  if (p->log_task) log_server_end(p);
  radio_stop(p);
  if (waiting) task_end(p);
}

/* ---- the commands ---------------------------------------------------------- */

static enum vm_at_result startsmart_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_STARTSMART_TEST);
  return VM_AT_OK;
}

static enum vm_at_result startsmart_exec(struct vm_at *at, const struct vm_at_args *a) {
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  vm_at_puts(at, TC_HANDLER_OK);
  return task_start(at, PM_SMART, NULL);
}

static enum vm_at_result stopsmart_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_STOPSMART_TEST);
  return VM_AT_OK;
}

static enum vm_at_result stop_exec(struct vm_at *at, bool smart) {
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  task_stop(prov_of(at), smart);
  return VM_AT_OK;
}

static enum vm_at_result stopsmart_exec(struct vm_at *at, const struct vm_at_args *a) {
  return stop_exec(at, true);
}

static enum vm_at_result sap_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_SAP_TEST);
  return VM_AT_OK;
}

/* AT+TCSAP="<ssid>"[,"<pwd>"[,<ch>]] */
static enum vm_at_result sap_set(struct vm_at *at, const struct vm_at_args *a) {
  const char *ssid, *pwd;
  size_t sl, pl;
  long ch;
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  int r = vm_at_arg_str(a, 0, &ssid, &sl);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, TC_ERR_TYPE);
  if (r != VM_AT_ARG_OK || sl == 0 || sl > TC_MAX_SSID || a->count > 3) return tc_cme(at, TC_E_PARA);
  if (a->count > 1 && (vm_at_arg_str(a, 1, &pwd, &pl) != VM_AT_ARG_OK || pl < TC_MIN_SAP_PWD ||
                       pl > TC_MAX_SAP_PWD))
    return tc_cme(at, TC_E_PARA);
  if (a->count > 2 && (vm_at_arg_int(a, 2, &ch) != VM_AT_ARG_OK || ch < 0 || ch > TC_MAX_SAP_CH))
    return tc_cme(at, TC_E_PARA);
  vm_at_reply_ok(at); /* esp_at_response_result(): the core's OK first */
  return task_start(at, PM_SAP, ssid);
}

static enum vm_at_result stopsap_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_STOPSAP_TEST);
  return VM_AT_OK;
}

static enum vm_at_result stopsap_exec(struct vm_at *at, const struct vm_at_args *a) {
  return stop_exec(at, false);
}

const struct vm_at_cmd tc_prov_cmds[] = {
    {.name = "+TCSTARTSMART", .test = startsmart_test, .exec = startsmart_exec},
    {.name = "+TCSTOPSMART", .test = stopsmart_test, .exec = stopsmart_exec},
    {.name = "+TCSAP", .test = sap_test, .set = sap_set, .secret_mask = 0x2},
    {.name = "+TCSTOPSAP", .test = stopsap_test, .exec = stopsap_exec},
};
const size_t tc_prov_ncmds = sizeof tc_prov_cmds / sizeof tc_prov_cmds[0];

/* ---- `smartconfig` (the phone's ESP-TOUCH) ------------------------------- */

#define SC_USAGE "smartconfig: expected SSID PASSWORD or stop"

int tc_prov_fault_check(int argc, char **argv, char *err, size_t errlen) {
  if (argc < 1 || strcmp(argv[0], "smartconfig")) return VM_FAULT_UNSUPPORTED;
  if (argc == 2 && !strcmp(argv[1], "stop")) return 0;
  if (argc != 3) return snprintf(err, errlen, SC_USAGE), -1;
  if (!argv[1][0] || strlen(argv[1]) > TC_PROV_MAX_SSID)
    return snprintf(err, errlen, "smartconfig: SSID must be 1 to %d bytes", TC_PROV_MAX_SSID), -1;
  if (strlen(argv[2]) > TC_PROV_MAX_PASSWORD)
    return snprintf(err, errlen, "smartconfig: PASSWORD must be at most %d bytes",
                    TC_PROV_MAX_PASSWORD), -1;
  return 0;
}

int tc_prov_fault(struct tc_state *s, int argc, char **argv, char *err, size_t errlen) {
  struct tc_prov *p = s->prov;
  int rc = tc_prov_fault_check(argc, argv, err, errlen);
  if (rc) return rc;
  if (p->mode != PM_SMART || p->phase != P_WAIT)
    return snprintf(err, errlen, "smartconfig: %s is not in smartconfig", s->m->name), -1;
  if (argc == 2) { /* the app ended ESP-TOUCH before the station got its address */
    devlog(p, TC_PLOG_SC_OVER);
    push_err(p, TC_PROV_E_STOP, TC_PROV_S_APP_STOP);
    task_fail(p, TC_PROV_E_STOP, TC_PROV_S_APP_STOP);
    return 0;
  }
  devlog(p, TC_PLOG_SC_GOT_AP, argv[1], TC_PROV_SECRET_MASK);
  join(p, argv[1], argv[2]);
  return 0;
}

/* ---- status and life cycle ------------------------------------------------------ */

static void add_port(cJSON *o, const char *key, const struct prov_udp *u) {
  if (u) cJSON_AddNumberToObject(o, key, u->port);
  else cJSON_AddNullToObject(o, key);
}

/* "provision": {"mode", "state", "udp_port", "log_server", "log_udp_port"} */
void tc_prov_status(struct tc_state *s, cJSON *obj) {
  struct tc_prov *p = s->prov;
  cJSON *o = cJSON_AddObjectToObject(obj, "provision");
  if (!o) return;
  if (p->mode == PM_NONE) cJSON_AddNullToObject(o, "mode");
  else cJSON_AddStringToObject(o, "mode", p->mode == PM_SMART ? "smartconfig" : "softap");
  cJSON_AddStringToObject(o, "state", phase_names[p->phase]);
  if (p->mode == PM_SAP) cJSON_AddStringToObject(o, "softap_ssid", p->ap_ssid);
  add_port(o, "udp_port", p->comm);
  cJSON_AddBoolToObject(o, "log_server", p->log_task);
  add_port(o, "log_udp_port", p->logsrv);
}

int tc_prov_init(struct tc_state *s) {
  struct tc_prov *p = calloc(1, sizeof *p);
  if (!p) return -1;
  p->s = s;
  s->prov = p;
  uv_timer_t *timers[] = {&p->deadline, &p->step, &p->comm_timer, &p->log_timer};
  for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
    uv_timer_init(s->m->loop, timers[i]);
    timers[i]->data = p;
  }
  strcpy(p->region, TC_DEFAULT_REGION);
  return 0;
}

void tc_prov_power_on(struct tc_state *s) {
  struct tc_prov *p = s->prov;
  strcpy(p->region, TC_DEFAULT_REGION);
  p->success = false;
}

void tc_prov_power_off(struct tc_state *s) {
  struct tc_prov *p = s->prov;
  if (!p) return;
  stop_all(p);
  p->lines_on = p->errs_on = false;
  p->nlines = p->nerrs = 0;
  OPENSSL_cleanse(&p->dev, sizeof p->dev);
  OPENSSL_cleanse(&p->prd, sizeof p->prd);
  OPENSSL_cleanse(p->pwd, sizeof p->pwd);
}

static void timer_closed(uv_handle_t *h) {
  struct tc_prov *p = h->data;
  if (--p->closing == 0) free(p); /* the last of the four (libuv's order is its own) */
}

void tc_prov_destroy(struct tc_state *s) {
  struct tc_prov *p = s->prov;
  if (!p) return;
  tc_prov_power_off(s);
  s->prov = NULL;
  uv_timer_t *timers[] = {&p->deadline, &p->step, &p->comm_timer, &p->log_timer};
  p->closing = (int)(sizeof timers / sizeof timers[0]);
  for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
    uv_close((uv_handle_t *)timers[i], timer_closed);
}
