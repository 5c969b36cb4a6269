/* tc_mqtt.c - the MQTT commands and URCs of the tencent dialect:
 * AT+TCMQTTCONN, DISCONN, PUB, PUBL, PUBRAW, SUB, UNSUB, STATE and the URCs
 * +TCMQTTRCVPUB, +TCMQTTDISCON, +TCMQTTRECONNECTING, +TCMQTTRECONNECTED
 * (reference §2, §3.5-§3.9, §4, §7.1).
 *
 * The firmware runs an "MQTT task" from TCMQTTCONN until DISCONN, a
 * reconnect give-up or (with reconnect=0) a link loss; while it runs the
 * setters answer 208. Here the task is a state machine on the module's loop:
 * each connection attempt gets its own struct vm_mqtt (closed abruptly when
 * the link or the task ends), the subscription table survives link losses
 * and is re-subscribed after a reconnect, like the SDK's handler table.
 *
 * Reconnect timing follows the SDK: the first wait is random in 1..2 s and
 * doubles after every failed attempt; once it would exceed 60 s the task
 * gives up (+TCMQTTDISCON,-106). The firmware's task alternates 500 ms
 * "yield" windows (where attempts happen) with 1 s sleeps and prints
 * +TCMQTTRECONNECTING at the end of every window that ends still
 * disconnected; that rhythm is reproduced.
 *
 * The MQTT link needs the simulated Wi-Fi: without it a connect fails as
 * the firmware's DNS/TCP would, and a Wi-Fi drop drops the link.
 *
 * SDK services beside the user's topics (the gateway, tc_gateway.c) subscribe
 * and publish through tc_mqtt_svc_*(): their subscriptions are renewed after
 * a reconnect like the user's but neither listed nor counted (one the broker
 * refuses is forgotten, so the service asks again), and their messages and
 * SUBACKs go to them, never to +TCMQTTRCVPUB. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/mqtt.h"
#include "vmodule/tencent_sign.h"
#include "tencent.h"

#define WINDOW_MS 500 /* the task's qcloud_iot_mqtt_yield(client, 500) */
#define SLEEP_MS 1000 /* HAL_SleepMs(1000) after +TCMQTTRECONNECTING */
#define PUBL_TRAILER_MS 1000

/* SDK defaults shown by AT+TCMQTTCONN? before the first connection */
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_KEEPALIVE 240

enum tc_op { OP_NONE, OP_CONN, OP_PUB, OP_SUB, OP_UNSUB, OP_DISCONN };

struct tc_sub {
  bool used;
  int qos;
  char filter[TC_MAX_TOPIC + 1];
};

struct tc_params {
  unsigned timeout_ms, keepalive;
  bool clean, reconnect;
};

struct tc_mqtt {
  struct tc_state *s;
  struct vm_mqtt *mq;    /* current connection or attempt; NULL between attempts */
  uv_timer_t cmd_timer;  /* cmdtimeout of the pending command */
  uv_timer_t recon_timer;
  int closes;

  /* the task */
  bool running, connected, first; /* first: the TCMQTTCONN attempt is pending */
  struct tc_params p;             /* of the running task */
  struct tc_params shown;         /* AT+TCMQTTCONN? (updated on success) */
  struct tc_devinfo dev;          /* copy taken at TCMQTTCONN; wiped at the end */
  char connid[VM_TENCENT_CONNID_LEN + 1];
  struct tc_sub subs[TC_MAX_SUBS];
  char svc_subs[TC_MAX_SVC_SUBS][TC_MAX_TOPIC + 1]; /* the SDK services' own ("" = free) */
  int svc_mids[TC_MAX_SVC_SUBS];                     /* their SUBACK awaited (0: none) */
  int svc_qos[TC_MAX_SVC_SUBS];

  /* the pending command */
  enum tc_op op;
  int op_mid; /* 0: its connection is gone, only the timeout can end it */
  const char *op_name;
  int op_qos;
  char op_topic[TC_MAX_TOPIC + 1];

  /* reconnect cycle */
  unsigned interval_ms;
  uint64_t next_attempt, window_start, window_end;
  bool in_window, attempting;
};

static const struct vm_mqtt_cbs mqtt_cbs;
static void recon_step(struct tc_mqtt *t);

/* ---- small helpers --------------------------------------------------------- */

static struct tc_mqtt *mqtt_of(struct vm_at *at) { return tc_state_of(at)->mqtt; }

static struct vm_at *at_of(struct tc_mqtt *t) { return &t->s->m->at; }

static const char *who(struct tc_mqtt *t) { return t->s->m->name; }

/* The broker: AT+TCMQTTSRV, then the config, then the product's host. */
static void broker_host(const struct tc_state *s, const struct tc_devinfo *d, char *out, size_t cap) {
  if (s->mqtt_srv[0]) snprintf(out, cap, "%s", s->mqtt_srv);
  else if (s->cfg->mqtt_host) snprintf(out, cap, "%s", s->cfg->mqtt_host);
  else if (!strcmp(d->region, "na-ashburn"))
    snprintf(out, cap, "%s.us-east.iotcloud.tencentdevices.com", d->pid);
  else snprintf(out, cap, "%s.iotcloud.tencentdevices.com", d->pid);
}

static int broker_port(const struct tc_config *c) {
  if (c->mqtt_port) return c->mqtt_port;
  return c->transport == TC_TRANSPORT_TCP ? 1883 : 8883;
}

/* SDK code for a failed vm_mqtt connect (§3.5, §6.1; TC_RC_SSL_CONNECT). */
int tc_mqtt_connect_code(const struct tc_state *s, int rc) {
  bool tls = s->cfg->transport != TC_TRANSPORT_TCP;
  switch (rc) {
  case VM_MQTT_E_DNS:
  case VM_MQTT_E_TCP: return tls ? TC_RC_SSL_CONNECT : TC_RC_TCP_CONNECT_FAILED;
  case VM_MQTT_E_TLS: return TC_RC_SSL_CONNECT;
  case VM_MQTT_E_TIMEOUT: return TC_E_TIMEOUT;
  case VM_MQTT_E_CLOSED: return tls ? TC_RC_SSL_READ : TC_RC_TCP_PEER_SHUTDOWN;
  case 1: return TC_RC_BAD_PROTOCOL;
  case 2: return TC_RC_ID_REJECTED;
  case 3: return TC_RC_SERVER_UNAVAILABLE;
  case 4: return TC_RC_BAD_USERPASS;
  case 5: return TC_RC_NOT_AUTHORIZED;
  }
  return rc > 0 ? TC_RC_CONNACK_UNKNOWN : TC_RC_FAILURE;
}

/* SDK code for a failed publish/subscribe/unsubscribe call. */
static int call_code(int rc) {
  switch (rc) {
  case -ENOTCONN: return TC_RC_NO_CONN;
  case -EMSGSIZE: return TC_RC_BUF_TOO_SHORT;
  case -EINVAL: return TC_RC_INVAL;
  }
  return TC_RC_FAILURE;
}

static void urc_code(struct tc_mqtt *t, const char *fmt, int code) {
  vm_at_urcf(at_of(t), fmt, code);
}

/* ---- subscription table (the SDK's sub_handles[10]) ---------------------- */

static struct tc_sub *sub_find(struct tc_mqtt *t, const char *filter) {
  for (int i = 0; i < TC_MAX_SUBS; i++)
    if (t->subs[i].used && !strcmp(t->subs[i].filter, filter)) return &t->subs[i];
  return NULL;
}

static struct tc_sub *sub_free_slot(struct tc_mqtt *t) {
  for (int i = 0; i < TC_MAX_SUBS; i++)
    if (!t->subs[i].used) return &t->subs[i];
  return NULL;
}

static bool sub_matches(struct tc_mqtt *t, const char *topic) {
  for (int i = 0; i < TC_MAX_SUBS; i++) {
    bool match = false;
    if (t->subs[i].used && mosquitto_topic_matches_sub(t->subs[i].filter, topic, &match) ==
                               MOSQ_ERR_SUCCESS && match)
      return true;
  }
  return false;
}

/* Whether topic is one of the services' subscriptions (exact: no wildcards). */
static bool svc_topic(struct tc_mqtt *t, const char *topic) {
  for (int i = 0; i < TC_MAX_SVC_SUBS; i++)
    if (t->svc_subs[i][0] && !strcmp(t->svc_subs[i], topic)) return true;
  return false;
}

/* ---- the link ---------------------------------------------------------------- */

static void mq_closed(struct vm_mqtt *mq) { free(mq); }

/* Abrupt end of the current connection or attempt (no callback follows). */
static void link_close(struct tc_mqtt *t) {
  if (!t->mq) return;
  vm_mqtt_close(t->mq, mq_closed);
  t->mq = NULL;
  t->connected = false;
  vm_esp_net_session(&t->s->esp, false, false);
  if (t->op == OP_PUB || t->op == OP_SUB || t->op == OP_UNSUB) t->op_mid = 0;
}

int tc_mqtt_opts(struct tc_state *s, const struct tc_devinfo *d, const char *connid,
                 const struct tc_mqtt_link *l, struct vm_mqtt_opts *o, struct tc_mqtt_creds *c) {
  const struct tc_config *cfg = s->cfg;
  snprintf(c->client_id, sizeof c->client_id, "%s%s", d->pid, d->dn);
  if (vm_tencent_username(c->username, sizeof c->username, d->pid, d->dn, cfg->sdkappid, connid,
                          VM_TENCENT_EXPIRY_NEVER) < 0)
    return -1;
  broker_host(s, d, c->host, sizeof c->host);
  *o = (struct vm_mqtt_opts){
      .host = c->host,
      .port = broker_port(cfg),
      .client_id = c->client_id,
      .username = c->username,
      .keepalive = l->keepalive,
      .clean_session = l->clean,
      .connect_timeout_ms = l->timeout_ms,
      .net = s->m,
  };
  if (cfg->transport == TC_TRANSPORT_TLS_PSK) {
    char identity[TC_MAX_PID + TC_MAX_DN + 1];
    if (vm_tencent_psk(identity, sizeof identity, c->psk_hex, sizeof c->psk_hex, d->pid, d->dn,
                       d->secret) < 0)
      return -1;
    o->tls = VM_MQTT_TLS_PSK;
    o->psk_identity = c->client_id; /* the same "<pid><dn>" */
    o->psk_key_hex = c->psk_hex;
    return 0;
  }
  if (vm_tencent_password(c->password, sizeof c->password, c->username, d->secret, cfg->sign) < 0)
    return -1;
  o->password = c->password;
  if (cfg->transport == TC_TRANSPORT_TLS) {
    o->tls = VM_MQTT_TLS_CA;
    o->ca_file = cfg->ca_file;
  }
  return 0;
}

static int build_opts(struct tc_mqtt *t, struct vm_mqtt_opts *o, struct tc_mqtt_creds *c) {
  /* the command's own timer ends the first attempt; this bounds reconnects */
  struct tc_mqtt_link l = {.keepalive = (int)t->p.keepalive, .clean = t->p.clean,
                           .timeout_ms = (int)t->p.timeout_ms + (t->first ? 1000 : 0)};
  return tc_mqtt_opts(t->s, &t->dev, t->connid, &l, o, c);
}

/* Starts a connection attempt. Returns 0 (on_connect follows) or the SDK
 * code of an immediate failure. */
static int link_open(struct tc_mqtt *t) {
  struct vm_mqtt_opts o;
  struct tc_mqtt_creds c;
  int code = 0;
  if (build_opts(t, &o, &c) < 0) {
    vm_log_warn(who(t), "MQTT: the stored device secret is not valid base64");
    code = TC_RC_FAILURE;
  } else if (!t->s->esp.connected) {
    /* no Wi-Fi: the firmware's getaddrinfo / connect fail at once */
    vm_log_info(who(t), "MQTT: cannot reach %s:%d: Wi-Fi is not connected", c.host, o.port);
    code = tc_mqtt_connect_code(t->s, VM_MQTT_E_TCP);
  } else if (!(t->mq = malloc(sizeof *t->mq))) {
    code = TC_RC_FAILURE;
  } else {
    /* a fresh session per attempt: a dead one is simply closed */
    int rc = vm_mqtt_init(t->mq, t->s->m->loop, who(t), &mqtt_cbs, t);
    if (rc == 0) rc = vm_mqtt_connect(t->mq, &o);
    if (rc < 0) {
      vm_log_warn(who(t), "MQTT: cannot start a connection: %s", strerror(-rc));
      vm_mqtt_close(t->mq, mq_closed);
      t->mq = NULL;
      code = TC_RC_FAILURE;
    }
  }
  explicit_bzero(&c, sizeof c);
  return code;
}

/* ---- the task ------------------------------------------------------------ */

/* The MQTT task exits: the client is destroyed with its subscriptions. */
static void task_end(struct tc_mqtt *t) {
  link_close(t);
  uv_timer_stop(&t->recon_timer);
  t->running = t->connected = t->first = t->attempting = false;
  memset(t->subs, 0, sizeof t->subs);
  memset(t->svc_subs, 0, sizeof t->svc_subs);
  memset(t->svc_mids, 0, sizeof t->svc_mids);
  explicit_bzero(&t->dev, sizeof t->dev);
  tc_gateway_task_end(t->s); /* the gateway's sessions belong to the client */
  tc_ota_task_end(t->s);
}

static void cmd_timer_start(struct tc_mqtt *t, void (*cb)(uv_timer_t *)) {
  uv_timer_start(&t->cmd_timer, cb, t->p.timeout_ms, 0);
}

/* Ends the pending command with its result line already printed. */
static void op_done(struct tc_mqtt *t, enum vm_at_result r) {
  uv_timer_stop(&t->cmd_timer);
  t->op = OP_NONE;
  t->op_mid = 0;
  vm_at_complete(at_of(t), r);
}

static void resubscribe(struct tc_mqtt *t) {
  for (int i = 0; i < TC_MAX_SUBS; i++) {
    if (!t->subs[i].used) continue;
    int rc = vm_mqtt_subscribe(t->mq, t->subs[i].filter, t->subs[i].qos);
    if (rc < 0) vm_log_warn(who(t), "MQTT: re-subscribing %s failed", t->subs[i].filter);
  }
  for (int i = 0; i < TC_MAX_SVC_SUBS; i++) {
    if (!t->svc_subs[i][0]) continue;
    t->svc_mids[i] = vm_mqtt_subscribe(t->mq, t->svc_subs[i], t->svc_qos[i]);
    if (t->svc_mids[i] < 0) vm_log_warn(who(t), "MQTT: re-subscribing %s failed", t->svc_subs[i]);
  }
}

/* A service's SUBACK: a refused filter leaves the table, as the SDK keeps
 * NACKed filters out of its handlers, so the service subscribes again next
 * time instead of waiting for replies that cannot come. */
static void svc_suback(struct tc_mqtt *t, int mid, bool granted) {
  for (int i = 0; i < TC_MAX_SVC_SUBS; i++) {
    if (!t->svc_subs[i][0] || t->svc_mids[i] != mid) continue;
    t->svc_mids[i] = 0;
    if (granted) continue;
    vm_log_info(who(t), "MQTT: the broker refused the subscription to %s", t->svc_subs[i]);
    t->svc_subs[i][0] = '\0';
  }
}

/* ---- reconnect cycle ------------------------------------------------------ */

static void recon_timer_cb(uv_timer_t *h) { recon_step(h->data); }

static void recon_start(struct tc_mqtt *t) {
  uint64_t now = uv_now(t->s->m->loop);
  /* SDK _get_random_interval(): 1000..1990 ms in 10 ms steps */
  t->interval_ms = 1000 + (unsigned)(uv_hrtime() / 1000 % 100) * 10;
  t->next_attempt = now + t->interval_ms;
  t->in_window = true;
  t->window_end = now + WINDOW_MS;
  t->attempting = false;
  recon_step(t);
}

static void recon_failed(struct tc_mqtt *t) {
  t->attempting = false;
  t->interval_ms *= 2;
  if (t->interval_ms > t->s->cfg->reconnect_max_ms) {
    vm_log_info(who(t), "MQTT: reconnect gave up (back-off above %u ms)", t->s->cfg->reconnect_max_ms);
    urc_code(t, TC_URC_DISCON_FMT, TC_RC_RECONNECT_TIMEOUT);
    task_end(t);
    return;
  }
  t->next_attempt = uv_now(t->s->m->loop) + t->interval_ms;
  recon_step(t);
}

static void recon_attempt(struct tc_mqtt *t) {
  t->attempting = true;
  vm_log_debug(who(t), "MQTT: reconnect attempt (interval %u ms)", t->interval_ms);
  int code = link_open(t);
  if (code) recon_failed(t);
}

/* Advances the window/sleep rhythm; arms the timer for the next event. */
static void recon_step(struct tc_mqtt *t) {
  if (!t->running || t->connected || t->attempting) return;
  uint64_t now = uv_now(t->s->m->loop);
  for (;;) {
    if (!t->in_window) {
      if (now < t->window_start) {
        uv_timer_start(&t->recon_timer, recon_timer_cb, t->window_start - now, 0);
        return;
      }
      t->in_window = true;
      t->window_end = now + WINDOW_MS;
    }
    if (now >= t->window_end) { /* the yield returned "attempting reconnect" */
      vm_at_urc(at_of(t), TC_URC_RECONNECTING, strlen(TC_URC_RECONNECTING));
      t->in_window = false;
      t->window_start = now + SLEEP_MS;
      continue;
    }
    if (now >= t->next_attempt) {
      recon_attempt(t);
      return;
    }
    uint64_t until = t->next_attempt < t->window_end ? t->next_attempt : t->window_end;
    uv_timer_start(&t->recon_timer, recon_timer_cb, until - now, 0);
    return;
  }
}

/* The connection broke (peer, keepalive, Wi-Fi): §4 URCs, then reconnect. */
static void link_lost(struct tc_mqtt *t) {
  link_close(t);
  urc_code(t, TC_URC_DISCON_FMT, TC_RC_NO_CONN);
  if (!t->p.reconnect) {
    /* the disconnect event, then the task's exit with the same code */
    urc_code(t, TC_URC_DISCON_FMT, TC_RC_NO_CONN);
    task_end(t);
    return;
  }
  recon_start(t);
}

/* ---- vm_mqtt callbacks ------------------------------------------------------ */

static void on_connect(void *data, int rc) {
  struct tc_mqtt *t = data;
  struct vm_at *at = at_of(t);
  if (rc == 0) {
    t->connected = true;
    vm_esp_net_session(&t->s->esp, true, t->s->cfg->transport != TC_TRANSPORT_TCP);
    if (t->first) {
      t->first = false;
      t->shown = t->p;
      vm_at_puts(at, TC_CONN_OK);
      op_done(t, VM_AT_DONE);
    } else {
      t->attempting = false;
      uv_timer_stop(&t->recon_timer);
      resubscribe(t);
      vm_at_urc(at, TC_URC_RECONNECTED, strlen(TC_URC_RECONNECTED));
    }
    return;
  }
  int code = tc_mqtt_connect_code(t->s, rc);
  link_close(t);
  if (t->first) {
    vm_at_printf(at, TC_CONN_FAIL_FMT, code);
    task_end(t);
    op_done(t, VM_AT_DONE);
  } else {
    recon_failed(t);
  }
}

static void on_disconnect(void *data, enum vm_mqtt_disc_reason reason) {
  struct tc_mqtt *t = data;
  if (t->op == OP_DISCONN) {
    task_end(t);
    vm_at_printf(at_of(t), TC_URC_DISCON_FMT, TC_RC_MANUALLY_DISCONNECTED);
    op_done(t, VM_AT_OK);
    return;
  }
  link_lost(t);
}

/* +TCMQTTRCVPUB:"<topic>",<len>,"<payload>": the payload raw, binary-safe. */
static void on_message(void *data, const char *topic, const void *payload, int len, int qos,
                       bool retain, int mid) {
  struct tc_mqtt *t = data;
  if (svc_topic(t, topic)) { /* an SDK service's reply, never shown as RCVPUB */
    if (!strncmp(topic, TC_OTA_UPDATE_PREFIX, strlen(TC_OTA_UPDATE_PREFIX)))
      tc_ota_on_message(t->s, topic, payload, len);
    else
      tc_gateway_on_message(t->s, topic, payload, len);
    return;
  }
  if (!sub_matches(t, topic)) { /* the SDK drops messages without a handler */
    vm_log_debug(who(t), "MQTT: message on %s without a subscription dropped", topic);
    return;
  }
  vm_at_urc_data(at_of(t), len ? payload : "", (size_t)len, TC_URC_RCVPUB_TAIL, TC_URC_RCVPUB_HEAD_FMT, topic,
                 (size_t)len);
}

static void on_publish(void *data, int mid) {
  struct tc_mqtt *t = data;
  if (t->op != OP_PUB || mid != t->op_mid) return; /* QoS 0 hand-offs */
  vm_at_printf(at_of(t), TC_PUB_RESULT_OK_FMT, t->op_name);
  op_done(t, VM_AT_DONE);
}

static void on_subscribe(void *data, int mid, int count, const int *granted) {
  struct tc_mqtt *t = data;
  bool ok = count >= 1 && granted[0] != 0x80;
  if (t->op != OP_SUB || mid != t->op_mid) { /* a service's, or a re-subscription */
    svc_suback(t, mid, ok);
    tc_gateway_on_suback(t->s, mid, ok);
    return;
  }
  if (!ok) {
    vm_at_printf(at_of(t), TC_SUB_FAIL_FMT, TC_RC_SUB_REFUSED);
  } else {
    struct tc_sub *sub = sub_find(t, t->op_topic);
    if (!sub) sub = sub_free_slot(t);
    if (sub) {
      sub->used = true;
      sub->qos = t->op_qos;
      strcpy(sub->filter, t->op_topic);
    }
    vm_at_puts(at_of(t), TC_SUB_OK);
  }
  op_done(t, VM_AT_DONE);
}

static void on_unsubscribe(void *data, int mid) {
  struct tc_mqtt *t = data;
  if (t->op != OP_UNSUB || mid != t->op_mid) return;
  vm_at_puts(at_of(t), TC_UNSUB_OK);
  op_done(t, VM_AT_DONE);
}

static const struct vm_mqtt_cbs mqtt_cbs = {
    .on_connect = on_connect,
    .on_disconnect = on_disconnect,
    .on_message = on_message,
    .on_publish = on_publish,
    .on_subscribe = on_subscribe,
    .on_unsubscribe = on_unsubscribe,
};

/* ---- command timeouts ------------------------------------------------------- */

static void cmd_timeout(uv_timer_t *h) {
  struct tc_mqtt *t = h->data;
  struct vm_at *at = at_of(t);
  switch (t->op) {
  case OP_CONN:
    vm_log_info(who(t), "MQTT: no CONNACK within %u ms", t->p.timeout_ms);
    task_end(t);
    vm_at_printf(at, TC_CONN_FAIL_FMT, TC_E_TIMEOUT);
    break;
  case OP_PUB:
    vm_at_printf(at, TC_PUB_RESULT_FAIL_FMT, t->op_name, TC_E_TIMEOUT);
    break;
  case OP_SUB:
    vm_at_printf(at, TC_SUB_FAIL_FMT, TC_E_TIMEOUT);
    break;
  case OP_UNSUB:
    vm_at_printf(at, TC_UNSUB_FAIL_FMT, TC_E_TIMEOUT);
    break;
  default:
    return;
  }
  op_done(t, VM_AT_DONE);
}

/* ---- parameter helpers --------------------------------------------------- */

static int topic_param(const struct vm_at_args *a, int i, const char **out) {
  size_t n;
  if (vm_at_arg_str(a, i, out, &n) != VM_AT_ARG_OK || n == 0 || n > TC_MAX_TOPIC) return -1;
  return 0;
}

/* A number in [lo, hi]: 0, or -1 when absent, not a number or out of range. */
static int num_param(const struct vm_at_args *a, int i, long lo, long hi, long *out) {
  if (vm_at_arg_int(a, i, out) != VM_AT_ARG_OK || *out < lo || *out > hi) return -1;
  return 0;
}

/* ---- AT+TCMQTTCONN ----------------------------------------------------------- */

static enum vm_at_result conn_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, TC_CONN_TEST_FMT, TC_CMD_TIMEOUT_MIN,
               tc_state_of(at)->cfg->variant->cmd_timeout_max);
  return VM_AT_OK;
}

static enum vm_at_result conn_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_mqtt *t = mqtt_of(at);
  vm_at_printf(at, TC_CONN_QUERY_FMT, t->shown.timeout_ms, t->shown.keepalive, t->shown.clean,
               t->shown.reconnect);
  return VM_AT_OK;
}

/* AT+TCMQTTCONN=<tls 1>,<cmdtimeout ms>,<keepalive s>,<clean 0|1>,<reconnect 0|1> */
static enum vm_at_result conn_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_mqtt *t = s->mqtt;
  if (t->running) return tc_cme(at, TC_E_STATE);
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  long tls, timeout, keepalive, clean, reconnect;
  if (vm_at_arg_int(a, 0, &tls) != VM_AT_ARG_OK) return vm_at_fail(at, TC_ERR_TYPE);
  long timeout_max = s->cfg->variant->cmd_timeout_max;
  if (tls != 1 || num_param(a, 1, TC_CMD_TIMEOUT_MIN, timeout_max, &timeout) ||
      num_param(a, 2, TC_KEEPALIVE_MIN, TC_KEEPALIVE_MAX, &keepalive) ||
      num_param(a, 3, 0, 1, &clean) || num_param(a, 4, 0, 1, &reconnect) || a->count != 5)
    return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);
  if (tc_devinfo_load(s, &t->dev)) {
    vm_at_printf(at, TC_CONN_FAIL_FMT, TC_E_FLASH);
    return VM_AT_DONE;
  }
  t->p = (struct tc_params){.timeout_ms = (unsigned)timeout, .keepalive = (unsigned)keepalive,
                            .clean = clean, .reconnect = reconnect};
  if (s->cfg->connid[0]) strcpy(t->connid, s->cfg->connid);
  else vm_tencent_connid(t->connid, sizeof t->connid);
  t->running = t->first = true;
  int code = link_open(t);
  if (code) {
    task_end(t);
    vm_at_printf(at, TC_CONN_FAIL_FMT, code);
    return VM_AT_DONE;
  }
  t->op = OP_CONN;
  cmd_timer_start(t, cmd_timeout);
  return VM_AT_PENDING;
}

/* ---- AT+TCMQTTDISCONN ------------------------------------------------------- */

static enum vm_at_result disconn_test(struct vm_at *at, const struct vm_at_args *a) {
  return VM_AT_OK;
}

static enum vm_at_result disconn_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_mqtt *t = mqtt_of(at);
  if (!t->running) return tc_cme(at, TC_E_STATE);
  if (t->connected && vm_mqtt_disconnect(t->mq) == 0) {
    t->op = OP_DISCONN; /* on_disconnect() prints the URC and OK */
    return VM_AT_PENDING;
  }
  task_end(t); /* reconnecting: nothing to say goodbye to */
  vm_at_printf(at, TC_URC_DISCON_FMT, TC_RC_MANUALLY_DISCONNECTED);
  return VM_AT_OK;
}

/* ---- publishing ---------------------------------------------------------------- */

static int publish_send(struct tc_mqtt *t, const char *topic, const void *payload, size_t len,
                        int qos) {
  if (!t->mq || !t->connected) return -ENOTCONN;
  return vm_mqtt_publish(t->mq, topic, payload, (int)len, qos, false);
}

/* Prints the result of publish_send() (mid or -errno), or leaves the command
 * pending for the PUBACK of a QoS 1 message. */
static enum vm_at_result publish_result(struct tc_mqtt *t, const char *name, int rc, int qos) {
  struct vm_at *at = at_of(t);
  if (rc < 0) {
    vm_at_printf(at, TC_PUB_RESULT_FAIL_FMT, name, call_code(rc));
    return VM_AT_DONE;
  }
  if (qos == 0) {
    vm_at_printf(at, TC_PUB_RESULT_OK_FMT, name);
    return VM_AT_DONE;
  }
  t->op = OP_PUB;
  t->op_mid = rc;
  t->op_name = name;
  cmd_timer_start(t, cmd_timeout);
  return VM_AT_PENDING;
}

static enum vm_at_result pub_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_PUB_TEST);
  return VM_AT_OK;
}

/* AT+TCMQTTPUB="<topic>",<qos>,"<payload>" (allowed while OTA downloads) */
static enum vm_at_result pub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_mqtt *t = mqtt_of(at);
  if (!t->connected) return tc_cme(at, TC_E_STATE);
  if (a->count != 3) return vm_at_fail(at, TC_ERR_COUNT(3, a->count));
  const char *topic, *payload;
  size_t len;
  long qos;
  if (topic_param(a, 0, &topic) || num_param(a, 1, 0, 1, &qos) ||
      vm_at_arg_str(a, 2, &payload, &len) != VM_AT_ARG_OK || len == 0)
    return tc_cme(at, TC_E_PARA);
  /* The PUBLISH leaves before "OK" is written: same bytes on the serial line,
   * but the MCU's wake-up on "OK" no longer delays the packet. */
  int rc = publish_send(t, topic, payload, len, (int)qos);
  vm_at_puts(at, TC_HANDLER_OK);
  return publish_result(t, "+TCMQTTPUB", rc, (int)qos);
}

/* The firmware's JSON escape workaround for PUBL (clean_escapes): up to the
 * first NUL, "\," becomes " ," and "\"" becomes " \"" for the 1st, 3rd, ...
 * occurrence and "\" " for the 2nd, 4th, ...; the length never changes. */
static void clean_escapes(unsigned char *b, size_t len) {
  size_t i = 0;
  unsigned quotes = 0;
  while (i + 1 < len && b[i]) {
    if (b[i] == '\\' && (b[i + 1] == '"' || b[i + 1] == ',')) {
      b[i] = ' ';
      if (b[i + 1] == '"' && ++quotes % 2 == 0) {
        b[i] = '"';
        b[i + 1] = ' ';
      }
      i += 2;
    } else {
      i++;
    }
  }
}

static void publ_data(struct vm_at *at, enum vm_at_data_status st, const unsigned char *data,
                      size_t len, void *ctx) {
  struct tc_mqtt *t = ctx;
  if (st != VM_AT_DATA_OK) {
    static const char *why[] = {"ok", "aborted by +++", "timed out", "short", "bad terminator"};
    vm_log_info(who(t), "%s: payload rejected (%s)", t->op_name, why[st]);
    tc_cme(at, TC_E_PARA);
    vm_at_complete(at, VM_AT_DONE);
    return;
  }
  unsigned char *buf = malloc(len);
  if (!buf) {
    tc_cme(at, TC_E_MEM);
    vm_at_complete(at, VM_AT_DONE);
    return;
  }
  memcpy(buf, data, len);
  if (!strcmp(t->op_name, "+TCMQTTPUBL")) clean_escapes(buf, len);
  int rc = publish_send(t, t->op_topic, buf, len, t->op_qos);
  enum vm_at_result r = publish_result(t, t->op_name, rc, t->op_qos);
  free(buf);
  if (r != VM_AT_PENDING) vm_at_complete(at, VM_AT_DONE);
}

static enum vm_at_result publ_test_named(struct vm_at *at, const char *name) {
  vm_at_printf(at, TC_PUBL_TEST_FMT, name);
  return VM_AT_OK;
}

static enum vm_at_result publ_test(struct vm_at *at, const struct vm_at_args *a) {
  return publ_test_named(at, "+TCMQTTPUBL");
}

static enum vm_at_result pubraw_test(struct vm_at *at, const struct vm_at_args *a) {
  return publ_test_named(at, "+TCMQTTPUBRAW");
}

/* AT+TCMQTTPUBL / PUBRAW="<topic>",<qos>,<len>: OK, '>', then len raw bytes
 * and CR LF (abort: "+++\r\n", an early CR LF, or the data timeout). */
static enum vm_at_result publ_begin(struct vm_at *at, const struct vm_at_args *a, const char *name) {
  struct tc_state *s = tc_state_of(at);
  struct tc_mqtt *t = s->mqtt;
  if (!t->connected) return tc_cme(at, TC_E_STATE);
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  if (a->count != 3) return vm_at_fail(at, TC_ERR_COUNT(3, a->count));
  const char *topic;
  long qos, len;
  if (topic_param(a, 0, &topic) || num_param(a, 1, 0, 1, &qos) ||
      num_param(a, 2, 1, TC_MAX_PUBL, &len))
    return tc_cme(at, TC_E_PARA);
  strcpy(t->op_topic, topic);
  t->op_qos = (int)qos;
  t->op_name = name;
  struct vm_at_data_req req = {
      .len = (size_t)len,
      .timeout_ms = s->cfg->publ_timeout_ms,
      .abort_seq = "+++\r\n",
      .trailer = "\r\n",
      .trailer_ms = PUBL_TRAILER_MS,
      .crlf_ends_early = true,
      .done = publ_data,
      .ctx = t,
  };
  vm_at_puts(at, TC_HANDLER_OK);
  vm_at_puts(at, TC_PROMPT);
  if (vm_at_read_data(at, &req) < 0) return tc_cme(at, TC_E_MEM);
  return VM_AT_PENDING;
}

static enum vm_at_result publ_set(struct vm_at *at, const struct vm_at_args *a) {
  return publ_begin(at, a, "+TCMQTTPUBL");
}

static enum vm_at_result pubraw_set(struct vm_at *at, const struct vm_at_args *a) {
  return publ_begin(at, a, "+TCMQTTPUBRAW");
}

/* ---- AT+TCMQTTSUB / AT+TCMQTTUNSUB ---------------------------------------- */

static enum vm_at_result sub_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_SUB_TEST);
  return VM_AT_OK;
}

/* One line per filter held by the client (none when there is no client). */
static enum vm_at_result sub_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_mqtt *t = mqtt_of(at);
  for (int i = 0; t->running && i < TC_MAX_SUBS; i++)
    if (t->subs[i].used) vm_at_printf(at, TC_SUB_LIST_FMT, t->subs[i].filter, t->subs[i].qos);
  return VM_AT_OK;
}

/* AT+TCMQTTSUB="<filter>",<qos> */
static enum vm_at_result sub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_mqtt *t = s->mqtt;
  if (!t->connected) return tc_cme(at, TC_E_STATE);
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  if (a->count != 2) return vm_at_fail(at, TC_ERR_COUNT(2, a->count));
  const char *topic;
  long qos;
  if (topic_param(a, 0, &topic) || num_param(a, 1, 0, 1, &qos)) return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);
  if (!sub_find(t, topic) && !sub_free_slot(t)) {
    vm_at_printf(at, TC_SUB_FAIL_FMT, TC_RC_MAX_SUBS);
    return VM_AT_DONE;
  }
  int rc = vm_mqtt_subscribe(t->mq, topic, (int)qos);
  if (rc < 0) {
    vm_at_printf(at, TC_SUB_FAIL_FMT, call_code(rc));
    return VM_AT_DONE;
  }
  t->op = OP_SUB;
  t->op_mid = rc;
  t->op_qos = (int)qos;
  strcpy(t->op_topic, topic);
  cmd_timer_start(t, cmd_timeout);
  return VM_AT_PENDING;
}

static enum vm_at_result unsub_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_UNSUB_TEST);
  return VM_AT_OK;
}

static enum vm_at_result unsub_query(struct vm_at *at, const struct vm_at_args *a) {
  return VM_AT_OK;
}

/* AT+TCMQTTUNSUB="<filter>": the handler goes at once (SDK), then UNSUBACK. */
static enum vm_at_result unsub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_mqtt *t = s->mqtt;
  if (!t->connected) return tc_cme(at, TC_E_STATE);
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  const char *topic;
  if (topic_param(a, 0, &topic) || a->count != 1) return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);
  struct tc_sub *sub = sub_find(t, topic);
  if (!sub) {
    vm_at_printf(at, TC_UNSUB_FAIL_FMT, TC_RC_UNSUB_FAIL);
    return VM_AT_DONE;
  }
  memset(sub, 0, sizeof *sub);
  int rc = vm_mqtt_unsubscribe(t->mq, topic);
  if (rc < 0) {
    vm_at_printf(at, TC_UNSUB_FAIL_FMT, call_code(rc));
    return VM_AT_DONE;
  }
  t->op = OP_UNSUB;
  t->op_mid = rc;
  cmd_timer_start(t, cmd_timeout);
  return VM_AT_PENDING;
}

/* ---- AT+TCMQTTSTATE ------------------------------------------------------------ */

static enum vm_at_result state_test(struct vm_at *at, const struct vm_at_args *a) {
  return VM_AT_OK;
}

static enum vm_at_result state_query(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, TC_STATE_FMT, mqtt_of(at)->connected ? 1 : 0);
  return VM_AT_OK;
}

const struct vm_at_cmd tc_mqtt_cmds[] = {
    {.name = "+TCMQTTCONN", .test = conn_test, .query = conn_query, .set = conn_set},
    {.name = "+TCMQTTDISCONN", .test = disconn_test, .exec = disconn_exec},
    {.name = "+TCMQTTPUB", .test = pub_test, .set = pub_set},
    {.name = "+TCMQTTPUBL", .test = publ_test, .set = publ_set},
    {.name = "+TCMQTTPUBRAW", .test = pubraw_test, .set = pubraw_set},
    {.name = "+TCMQTTSUB", .test = sub_test, .query = sub_query, .set = sub_set},
    {.name = "+TCMQTTUNSUB", .test = unsub_test, .query = unsub_query, .set = unsub_set},
    {.name = "+TCMQTTSTATE", .test = state_test, .query = state_query},
};
const size_t tc_mqtt_ncmds = sizeof tc_mqtt_cmds / sizeof tc_mqtt_cmds[0];

/* ---- SDK services ------------------------------------------------------------------ */

bool tc_mqtt_connected(const struct tc_state *s) { return s->mqtt->connected; }

const struct tc_devinfo *tc_mqtt_device(const struct tc_state *s) { return &s->mqtt->dev; }

int tc_mqtt_svc_subscribe(struct tc_state *s, const char *topic, int qos) {
  struct tc_mqtt *t = s->mqtt;
  int slot = -1;
  if (!t->connected) return -ENOTCONN;
  for (int i = 0; i < TC_MAX_SVC_SUBS; i++) {
    if (!strcmp(t->svc_subs[i], topic)) return 0;
    if (!t->svc_subs[i][0] && slot < 0) slot = i;
  }
  if (slot < 0 || strlen(topic) > TC_MAX_TOPIC) return -ENOSPC;
  int rc = vm_mqtt_subscribe(t->mq, topic, qos);
  if (rc > 0) {
    strcpy(t->svc_subs[slot], topic);
    t->svc_mids[slot] = rc;
    t->svc_qos[slot] = qos;
  }
  return rc;
}

int tc_mqtt_svc_publish(struct tc_state *s, const char *topic, const char *payload, int qos) {
  return publish_send(s->mqtt, topic, payload, strlen(payload), qos);
}

/* ---- `status` ------------------------------------------------------------------ */

/* "mqtt": the task's state, its broker and the user's subscriptions (the SDK
 * services' own are not the MCU's and stay out, as in AT+TCMQTTSUB?). */
void tc_mqtt_status(struct tc_state *s, cJSON *obj) {
  struct tc_mqtt *t = s->mqtt;
  char host[256] = "";
  if (t->running) broker_host(t->s, &t->dev, host, sizeof host);
  const char *state = t->connected ? "connected" : t->running ? "connecting" : "disconnected";
  cJSON *subs = vm_dialect_mqtt_status(obj, state, host, broker_port(s->cfg));
  for (int i = 0; subs && i < TC_MAX_SUBS; i++)
    if (t->subs[i].used) cJSON_AddItemToArray(subs, cJSON_CreateString(t->subs[i].filter));
}

/* ---- life cycle ------------------------------------------------------------------ */

int tc_mqtt_init(struct tc_state *s) {
  struct tc_mqtt *t = calloc(1, sizeof *t);
  if (!t) return -1;
  t->s = s;
  t->shown = (struct tc_params){.timeout_ms = DEFAULT_TIMEOUT_MS, .keepalive = DEFAULT_KEEPALIVE,
                                .clean = true, .reconnect = true};
  uv_timer_init(s->m->loop, &t->cmd_timer);
  uv_timer_init(s->m->loop, &t->recon_timer);
  t->cmd_timer.data = t->recon_timer.data = t;
  s->mqtt = t;
  return 0;
}

bool tc_mqtt_task_running(const struct tc_state *s) { return s->mqtt->running; }

/* Wi-Fi lost: the link dies with it, as on the module. Wi-Fi back: the
 * reconnect cycle (if any) finds it at its next attempt. */
void tc_mqtt_on_wifi(struct tc_state *s, bool up) {
  struct tc_mqtt *t = s->mqtt;
  if (up || !t || !t->running) return;
  vm_log_info(who(t), "MQTT: Wi-Fi lost");
  if (t->op == OP_CONN) {
    task_end(t);
    vm_at_printf(at_of(t), TC_CONN_FAIL_FMT, tc_mqtt_connect_code(t->s, VM_MQTT_E_TCP));
    op_done(t, VM_AT_DONE);
  } else if (t->op == OP_DISCONN) {
    task_end(t);
    vm_at_printf(at_of(t), TC_URC_DISCON_FMT, TC_RC_MANUALLY_DISCONNECTED);
    op_done(t, VM_AT_OK);
  } else if (t->connected) {
    link_lost(t);
  } else if (t->attempting) {
    link_close(t);
    recon_failed(t);
  }
}

/* Reset / power cut: everything in RAM goes, without a word on the line. */
void tc_mqtt_power_off(struct tc_state *s) {
  struct tc_mqtt *t = s->mqtt;
  task_end(t);
  uv_timer_stop(&t->cmd_timer);
  t->op = OP_NONE;
  t->op_mid = 0;
  t->shown = (struct tc_params){.timeout_ms = DEFAULT_TIMEOUT_MS, .keepalive = DEFAULT_KEEPALIVE,
                                .clean = true, .reconnect = true};
}

static void timer_closed(uv_handle_t *h) {
  struct tc_mqtt *t = h->data;
  if (--t->closes == 0) free(t);
}

void tc_mqtt_destroy(struct tc_state *s) {
  struct tc_mqtt *t = s->mqtt;
  if (!t) return;
  task_end(t);
  t->closes = 2;
  uv_close((uv_handle_t *)&t->cmd_timer, timer_closed);
  uv_close((uv_handle_t *)&t->recon_timer, timer_closed);
  s->mqtt = NULL;
}
