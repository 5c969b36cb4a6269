/* me_cloud.c - the Aliyun MQTT supplementary commands of the me3630 dialect
 * (seed 004, w800-me3630-at.md §8-§10): AT+CLOUDCONN, CLOUDSUB,
 * CLOUDPUB (with the numeric-length form), CLOUDUNSUB, CLOUDDISCONN, the
 * CLOUDSTATE? extension and the +CLOUDPUBLISH URC.
 *
 * CLOUDAUTH, CLOUDSUB and CLOUDUNSUB answer OK as soon as the input is valid
 * ("OK means the input is legal, then the result" [ME-doc §1.1]) and report
 * the outcome later as a URC (+ALIAUTH, +CLOUDSUBACK / +CMD ERROR,
 * +CLOUDUNSUBACK), so a driver that only waits for OK never meets a busy
 * module. CLOUDCONN (CONNACK) and a QoS 1 CLOUDPUB (PUBACK) end with OK or
 * an error, so they stay pending (other lines get ERROR) until the broker
 * answers; URCs arriving meanwhile (the echo of our own publish) are held so
 * they follow the result.
 *
 * CLOUDAUTH and the credentials it yields live in me_auth.c. Everything
 * needs the data call (AT+ZIPCALL=1 or AT+ZECMCALL=1, me_data.c); losing
 * it, or the broker, drops the session (the call's own URC aside, without a
 * URC unless aliyun.conn_lost_urc names one). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/event.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/mqtt.h"
#include "me3630.h"

static const struct vm_mqtt_cbs mqtt_cbs;

/* ---- small helpers ---------------------------------------------------------- */

static struct vm_at *at_of(struct me_state *s) { return &s->m->at; }

static const char *who(struct me_state *s) { return s->m->name; }

static int qos_param(const struct vm_at_args *a, int i, int *out) {
  long q;
  if (vm_at_arg_int(a, i, &q) != VM_AT_ARG_OK || q < 0 || q > 1) return -1;
  *out = (int)q;
  return 0;
}

/* ---- subscription batches ---------------------------------------------------- */

static int sub_find(const struct me_cloud *c, const char *topic) {
  for (int i = 0; i < c->n_subs; i++)
    if (!strcmp(c->subs[i], topic)) return i;
  return -1;
}

static void sub_add(struct me_cloud *c, const char *topic) {
  if (sub_find(c, topic) < 0 && c->n_subs < ME_MAX_SUBS) strcpy(c->subs[c->n_subs++], topic);
}

static void sub_remove(struct me_cloud *c, const char *topic) {
  int i = sub_find(c, topic);
  if (i < 0) return;
  memmove(c->subs[i], c->subs[i + 1], (size_t)(c->n_subs - i - 1) * sizeof c->subs[0]);
  c->n_subs--;
}

static void ack_timer_cb(uv_timer_t *t);

/* Arms the ack timer for the oldest deadline among the open batches. */
static void ack_timer_arm(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  uint64_t first = UINT64_MAX, now = uv_now(s->m->loop);
  for (int i = 0; i < ME_MAX_BATCHES; i++)
    if (c->batches[i].used && c->batches[i].deadline < first) first = c->batches[i].deadline;
  if (first == UINT64_MAX) uv_timer_stop(&c->ack_timer);
  else uv_timer_start(&c->ack_timer, ack_timer_cb, first > now ? first - now : 0, 0);
}

/* Reports a finished batch: +CLOUDSUBACK: <OK> / +CLOUDUNSUBACK: <OK> or
 * +CMD ERROR: <code>. */
static void batch_end(struct me_state *s, struct me_batch *b, int code) {
  struct vm_at *at = at_of(s);
  if (code) vm_at_urcf(at, ME_CMD_ERROR_FMT, code);
  else if (!b->unsub) vm_at_urc(at, ME_SUBACK_OK, strlen(ME_SUBACK_OK));
  else if (s->cfg->unsuback_urc) vm_at_urc(at, ME_UNSUBACK_OK, strlen(ME_UNSUBACK_OK));
  b->used = false;
  ack_timer_arm(s);
}

static void ack_timer_cb(uv_timer_t *t) {
  struct me_state *s = t->data;
  struct me_cloud *c = &s->cloud;
  uint64_t now = uv_now(s->m->loop);
  for (int i = 0; i < ME_MAX_BATCHES; i++) {
    struct me_batch *b = &c->batches[i];
    if (!b->used || b->deadline > now) continue;
    vm_log_info(who(s), "Aliyun MQTT: no %s within %u ms", b->unsub ? "UNSUBACK" : "SUBACK",
                s->cfg->ack_timeout_ms);
    for (int k = 0; !b->unsub && k < b->n; k++) sub_remove(c, b->topics[k]);
    batch_end(s, b, ME_CMD_E_TIMEOUT);
  }
  ack_timer_arm(s);
}

static struct me_batch *batch_new(struct me_state *s, bool unsub) {
  struct me_cloud *c = &s->cloud;
  for (int i = 0; i < ME_MAX_BATCHES; i++) {
    struct me_batch *b = &c->batches[i];
    if (b->used) continue;
    memset(b, 0, sizeof *b);
    b->used = true;
    b->unsub = unsub;
    b->deadline = uv_now(s->m->loop) + s->cfg->ack_timeout_ms;
    return b;
  }
  return NULL;
}

/* The batch and index of an acknowledged mid, or NULL. */
static struct me_batch *batch_of(struct me_cloud *c, int mid, bool unsub, int *index) {
  for (int i = 0; i < ME_MAX_BATCHES; i++) {
    struct me_batch *b = &c->batches[i];
    if (!b->used || b->unsub != unsub) continue;
    for (int k = 0; k < b->n; k++) {
      if (b->mids[k] == mid) {
        *index = k;
        return b;
      }
    }
  }
  return NULL;
}

/* ---- the link ---------------------------------------------------------------- */

static void mq_closed(struct vm_mqtt *mq) { free(mq); }

/* Abrupt end of the connection or attempt: no callback follows. Open
 * batches end with "no MQTT handle" when report is set. */
static void link_close(struct me_state *s, bool report) {
  struct me_cloud *c = &s->cloud;
  if (c->connected) vm_event_state(who(s), "mqtt", "disconnected");
  if (c->mq) vm_mqtt_close(c->mq, mq_closed);
  c->mq = NULL;
  c->connected = false;
  c->n_subs = 0;
  for (int i = 0; i < ME_MAX_BATCHES; i++) {
    if (!c->batches[i].used) continue;
    if (report) batch_end(s, &c->batches[i], ME_CMD_E_NO_HANDLE);
    c->batches[i].used = false;
  }
  uv_timer_stop(&c->ack_timer);
}

/* Ends the pending command: result already printed; held URCs follow. */
static void op_done(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  uv_timer_stop(&c->op_timer);
  c->op = ME_OP_NONE;
  vm_at_hold_urcs(at_of(s), false);
  vm_at_complete(at_of(s), VM_AT_DONE);
}

/* The pending command fails because the link is gone. */
static void op_fail_link(struct me_state *s) {
  struct vm_at *at = at_of(s);
  switch (s->cloud.op) {
  case ME_OP_CONN:
  case ME_OP_PUB:
    me_cme(at, ME_E_SERVER);
    break;
  case ME_OP_DISCONN:
    vm_at_reply_ok(at);
    break;
  case ME_OP_NONE:
    return;
  }
  op_done(s);
}

/* The broker or the data call went away while connected. */
static void link_lost(struct me_state *s, const char *why) {
  struct me_cloud *c = &s->cloud;
  bool was_connected = c->connected;
  vm_log_info(who(s), "Aliyun MQTT: session lost (%s)", why);
  link_close(s, true);
  op_fail_link(s);
  if (was_connected && s->cfg->conn_lost_urc) vm_at_urcf(at_of(s), ME_LINE_FMT, s->cfg->conn_lost_urc);
}

/* ---- AT+CLOUDCONN ---------------------------------------------------------------- */

static int link_open(struct me_state *s) {
  const struct me_config *cfg = s->cfg;
  struct me_cloud *c = &s->cloud;
  struct me_creds k;
  if (me_auth_creds(s, &k) < 0) return -EINVAL;
  struct vm_mqtt_opts o = {
      .host = k.host, .port = k.port, .client_id = k.client_id, .username = k.username,
      .password = k.password, .keepalive = c->keepalive, .clean_session = c->clean,
      .tls = cfg->transport == ME_TRANSPORT_TLS ? VM_MQTT_TLS_CA : VM_MQTT_TLS_NONE,
      .ca_file = cfg->ca_file, .connect_timeout_ms = (int)cfg->connect_timeout_ms, .net = s->m};
  struct vm_mqtt *mq = malloc(sizeof *mq);
  int rc = mq ? vm_mqtt_init(mq, s->m->loop, who(s), &mqtt_cbs, s) : -ENOMEM;
  if (rc == 0) rc = vm_mqtt_connect(mq, &o);
  if (rc == 0) {
    c->mq = mq;
    snprintf(c->mqtt_host, sizeof c->mqtt_host, "%s", k.host);
    c->mqtt_port = k.port;
    vm_log_info(who(s), "Aliyun MQTT: connecting to %s:%d as %s", k.host, k.port, k.client_id);
  } else if (mq && mq->loop) {
    vm_mqtt_close(mq, mq_closed);
  } else {
    free(mq);
  }
  explicit_bzero(&k, sizeof k);
  return rc;
}

static enum vm_at_result conn_start(struct vm_at *at, int keepalive, bool clean) {
  struct me_state *s = me_state_of(at);
  struct me_cloud *c = &s->cloud;
  if (c->mq) return me_cme(at, ME_E_NOT_ALLOWED);
  int e = me_cell_data_ready(s);
  if (e) return me_cme(at, e);
  if (!c->authed) return me_cme(at, ME_E_NOT_ALLOWED);
  c->keepalive = keepalive;
  c->clean = clean;
  int rc = link_open(s);
  if (rc < 0) {
    vm_log_warn(who(s), "Aliyun MQTT: cannot start a connection: %s", strerror(-rc));
    return me_cme(at, ME_E_SERVER);
  }
  c->op = ME_OP_CONN;
  return VM_AT_PENDING;
}

static enum vm_at_result conn_exec(struct vm_at *at, const struct vm_at_args *a) {
  return conn_start(at, me_state_of(at)->cfg->keepalive, true);
}

/* The form other vendors use: AT+CLOUDCONN=<keepalive>,<clean>,<version 3|4>. */
static enum vm_at_result conn_set(struct vm_at *at, const struct vm_at_args *a) {
  long ka, clean, ver;
  if (a->count != 3 || vm_at_arg_int(a, 0, &ka) != VM_AT_ARG_OK || ka < 30 || ka > 1200 ||
      vm_at_arg_int(a, 1, &clean) != VM_AT_ARG_OK || clean < 0 || clean > 1 ||
      vm_at_arg_int(a, 2, &ver) != VM_AT_ARG_OK || (ver != 3 && ver != 4))
    return VM_AT_ERROR;
  return conn_start(at, (int)ka, clean == 1);
}

/* ---- AT+CLOUDSUB / AT+CLOUDUNSUB ----------------------------------------------- */

/* The subscriptions the command adds that are not in the table yet. */
static int sub_new_count(const struct me_cloud *c, const struct vm_at_args *a) {
  int n = 0;
  for (int i = 0; i < a->count; i += 2) {
    const char *t = "", *u = "";
    bool dup = false;
    me_text_param(a, i, ME_MAX_TOPIC, &t);
    for (int j = 0; j < i && !dup; j += 2) dup = !me_text_param(a, j, ME_MAX_TOPIC, &u) && !strcmp(t, u);
    if (!dup && sub_find(c, t) < 0) n++;
  }
  return n;
}

/* Sends the SUBSCRIBEs of a validated CLOUDSUB as one batch; the table
 * holds the topics from now on (a refusal takes them out again). Returns 0,
 * or the +CMD ERROR code to report. */
static int sub_send(struct me_state *s, const struct vm_at_args *a) {
  struct me_cloud *c = &s->cloud;
  if (!c->connected) return ME_CMD_E_NO_HANDLE;
  if (c->n_subs + sub_new_count(c, a) > ME_MAX_SUBS) { /* "at most 8 topics" [ME-doc §1.3] */
    vm_log_info(who(s), "Aliyun MQTT: CLOUDSUB would pass %d subscriptions", ME_MAX_SUBS);
    return ME_CMD_E_FAILED;
  }
  struct me_batch *b = batch_new(s, false);
  if (!b) return ME_CMD_E_FAILED;
  for (int i = 0; i < a->count; i += 2) {
    const char *topic = NULL;
    int qos = 0;
    me_text_param(a, i, ME_MAX_TOPIC, &topic);
    qos_param(a, i + 1, &qos);
    int mid = vm_mqtt_subscribe(c->mq, topic, qos);
    if (mid < 0) {
      vm_log_warn(who(s), "Aliyun MQTT: subscribe %s failed: %s", topic, strerror(-mid));
      b->refused = true;
      continue;
    }
    sub_add(c, topic);
    b->mids[b->n] = mid;
    strcpy(b->topics[b->n++], topic);
  }
  if (b->n == 0) {
    b->used = false;
    return ME_CMD_E_FAILED;
  }
  ack_timer_arm(s);
  return 0;
}

static enum vm_at_result sub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  const char *topic;
  int qos;
  if (a->count < 2 || a->count % 2 || a->count > 2 * ME_MAX_SUBS) return VM_AT_ERROR;
  for (int i = 0; i < a->count; i += 2)
    if (me_text_param(a, i, ME_MAX_TOPIC, &topic) || qos_param(a, i + 1, &qos)) return VM_AT_ERROR;
  vm_at_reply_ok(at);
  int code = sub_send(s, a);
  if (code) vm_at_printf(at, ME_CMD_ERROR_FMT, code);
  return VM_AT_DONE;
}

static enum vm_at_result unsub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  struct me_cloud *c = &s->cloud;
  const char *topic;
  if (a->count != 1 || me_text_param(a, 0, ME_MAX_TOPIC, &topic)) return VM_AT_ERROR;
  vm_at_reply_ok(at);
  struct me_batch *b = c->connected ? batch_new(s, true) : NULL;
  int mid = !c->connected ? -ENOTCONN : b ? vm_mqtt_unsubscribe(c->mq, topic) : -EBUSY;
  if (mid < 0) {
    if (b) b->used = false;
    vm_at_printf(at, ME_CMD_ERROR_FMT, mid == -ENOTCONN ? ME_CMD_E_NO_HANDLE : ME_CMD_E_FAILED);
    return VM_AT_DONE;
  }
  sub_remove(c, topic);
  b->mids[0] = mid;
  strcpy(b->topics[0], topic);
  b->n = 1;
  ack_timer_arm(s);
  return VM_AT_DONE;
}

/* ---- AT+CLOUDPUB --------------------------------------------------------------- */

static void puback_timeout(uv_timer_t *t) {
  struct me_state *s = t->data;
  vm_log_info(who(s), "Aliyun MQTT: no PUBACK within %u ms", s->cfg->ack_timeout_ms);
  me_cme(at_of(s), ME_E_SERVER);
  op_done(s);
}

/* Publishes and either ends the command (QoS 0: OK now) or waits for PUBACK. */
static enum vm_at_result pub_send(struct me_state *s, const char *topic, int qos, const void *msg,
                                  size_t len) {
  struct me_cloud *c = &s->cloud;
  struct vm_at *at = at_of(s);
  if (!c->connected) return me_cme(at, ME_E_NOT_ALLOWED);
  int mid = vm_mqtt_publish(c->mq, topic, msg, (int)len, qos, false);
  if (mid < 0) {
    vm_log_warn(who(s), "Aliyun MQTT: publish to %s failed: %s", topic, strerror(-mid));
    return me_cme(at, ME_E_SERVER);
  }
  if (qos == 0) {
    vm_at_reply_ok(at);
    return VM_AT_DONE;
  }
  c->op = ME_OP_PUB;
  c->pub_mid = mid;
  vm_at_hold_urcs(at, true); /* our own echo must follow the OK */
  uv_timer_start(&c->op_timer, puback_timeout, s->cfg->ack_timeout_ms, 0);
  return VM_AT_PENDING;
}

static void pub_data_done(struct vm_at *at, enum vm_at_data_status st, const unsigned char *data,
                          size_t len, void *ctx) {
  struct me_state *s = ctx;
  struct me_cloud *c = &s->cloud;
  if (st != VM_AT_DATA_OK) {
    vm_log_info(who(s), "Aliyun MQTT: CLOUDPUB data phase ended without %zu bytes", len);
    vm_at_puts(at, ME_ERROR);
    vm_at_complete(at, VM_AT_DONE);
    return;
  }
  enum vm_at_result r = pub_send(s, c->pub_topic, c->pub_qos, data, len);
  if (r != VM_AT_PENDING) vm_at_complete(at, VM_AT_DONE);
}

/* The message field: the rest of the line after "<topic>,<qos>," (the
 * CLOUDPUB row sets max_params = 3; one quoted string loses its quotes). */
static int pub_message(const struct vm_at_args *a, const char **msg, size_t *len) {
  return vm_at_arg_text(a, 2, msg, len) == VM_AT_ARG_OK ? 0 : -1;
}

static enum vm_at_result pub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  struct me_cloud *c = &s->cloud;
  const char *topic, *msg;
  size_t len;
  int qos;
  if (a->count < 3 || me_text_param(a, 0, ME_MAX_FIELD, &topic) || strpbrk(topic, "+#") ||
      qos_param(a, 1, &qos) || pub_message(a, &msg, &len) || len == 0 || len > ME_MAX_MSG)
    return VM_AT_ERROR;
  long want;
  if (a->count == 3 && s->cfg->numeric_length && vm_at_arg_int(a, 2, &want) == VM_AT_ARG_OK) {
    /* "when the message is a number, the user inputs data of that length" */
    if (want < 1 || want > ME_MAX_MSG) return VM_AT_ERROR;
    if (!c->connected) return me_cme(at, ME_E_NOT_ALLOWED);
    strcpy(c->pub_topic, topic);
    c->pub_qos = qos;
    struct vm_at_data_req rq = {.len = (size_t)want, .timeout_ms = s->cfg->pub_data_timeout_ms,
                                .done = pub_data_done, .ctx = s};
    if (vm_at_read_data(at, &rq) < 0) return VM_AT_ERROR;
    vm_at_puts(at, ME_PUB_PROMPT);
    return VM_AT_PENDING;
  }
  strcpy(c->pub_topic, topic);
  return pub_send(s, c->pub_topic, qos, msg, len);
}

/* ---- AT+CLOUDDISCONN, AT+CLOUDSTATE? -------------------------------------------- */

static enum vm_at_result disconn_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  struct me_cloud *c = &s->cloud;
  me_auth_forget(s); /* "then CLOUDAUTH and CLOUDCONN again" [ME-doc §1.6] */
  if (!c->connected || vm_mqtt_disconnect(c->mq) < 0) {
    link_close(s, false);
    return VM_AT_OK;
  }
  c->op = ME_OP_DISCONN;
  return VM_AT_PENDING;
}

static enum vm_at_result state_query(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, ME_CLOUDSTATE_FMT, me_state_of(at)->cloud.connected ? 1 : 0);
  return VM_AT_OK;
}

/* ---- vm_mqtt callbacks ------------------------------------------------------------ */

static void on_connect(void *data, int rc) {
  struct me_state *s = data;
  struct me_cloud *c = &s->cloud;
  if (rc == 0) {
    c->connected = true;
    vm_log_info(who(s), "Aliyun MQTT: connected");
    vm_event_state(who(s), "mqtt", "connected");
    if (c->sessions++ > 0) s->m->stats.reconnects++;
    if (c->op == ME_OP_CONN) {
      vm_at_reply_ok(at_of(s));
      op_done(s);
    }
    return;
  }
  vm_log_info(who(s), "Aliyun MQTT: connection failed: %s", vm_mqtt_strerror(rc));
  link_close(s, false);
  op_fail_link(s);
}

static void on_disconnect(void *data, enum vm_mqtt_disc_reason reason) {
  struct me_state *s = data;
  if (s->cloud.op == ME_OP_DISCONN) {
    link_close(s, false);
    vm_at_reply_ok(at_of(s));
    op_done(s);
    return;
  }
  link_lost(s, reason == VM_MQTT_DISC_LOCAL ? "local" : "the broker link broke");
}

/* +CLOUDPUBLISH:<packId>,<topic>,<len>,<payload> with the payload raw. */
static void on_message(void *data, const char *topic, const void *payload, int len, int qos,
                       bool retain, int mid) {
  struct me_state *s = data;
  (void)retain;
  vm_at_urc_data(at_of(s), len ? payload : "", (size_t)len, ME_PUBLISH_TAIL, ME_PUBLISH_HEAD_FMT,
                 s->cfg->urc_space ? " " : "", qos ? mid : 0, topic, len);
}

static void on_publish(void *data, int mid) {
  struct me_state *s = data;
  struct me_cloud *c = &s->cloud;
  if (c->op != ME_OP_PUB || mid != c->pub_mid) return; /* QoS 0 hand-offs */
  vm_at_reply_ok(at_of(s));
  op_done(s);
}

static void on_subscribe(void *data, int mid, int count, const int *granted) {
  struct me_state *s = data;
  struct me_cloud *c = &s->cloud;
  int i;
  struct me_batch *b = batch_of(c, mid, false, &i);
  if (!b) return;
  if (count < 1 || granted[0] == 0x80) {
    vm_log_info(who(s), "Aliyun MQTT: the broker refused the subscription to %s", b->topics[i]);
    b->refused = true;
    sub_remove(c, b->topics[i]);
  }
  b->mids[i] = 0;
  if (++b->acked < b->n) return;
  batch_end(s, b, b->refused ? ME_CMD_E_FAILED : 0);
}

static void on_unsubscribe(void *data, int mid) {
  struct me_state *s = data;
  int i;
  struct me_batch *b = batch_of(&s->cloud, mid, true, &i);
  if (b) batch_end(s, b, 0);
}

static const struct vm_mqtt_cbs mqtt_cbs = {
    .on_connect = on_connect,
    .on_disconnect = on_disconnect,
    .on_message = on_message,
    .on_publish = on_publish,
    .on_subscribe = on_subscribe,
    .on_unsubscribe = on_unsubscribe,
};

/* ---- the table and life cycle ---------------------------------------------------- */

const struct vm_at_cmd me_cloud_cmds[] = {
    {.name = "+CLOUDCONN", .set = conn_set, .exec = conn_exec},
    {.name = "+CLOUDSUB", .set = sub_set},
    {.name = "+CLOUDPUB", .set = pub_set, .max_params = 3},
    {.name = "+CLOUDUNSUB", .set = unsub_set},
    {.name = "+CLOUDDISCONN", .exec = disconn_exec},
    {.name = "+CLOUDSTATE", .query = state_query},
};
const size_t me_cloud_ncmds = sizeof me_cloud_cmds / sizeof me_cloud_cmds[0];

int me_cloud_init(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  uv_timer_t *timers[] = {&c->op_timer, &c->ack_timer};
  for (int i = 0; i < 2; i++) {
    uv_timer_init(s->m->loop, timers[i]);
    timers[i]->data = s;
  }
  return me_auth_init(s);
}

void me_cloud_on_call_down(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  me_auth_on_call_down(s);
  if (c->mq || c->op != ME_OP_NONE) link_lost(s, "the data call ended");
}

/* "mqtt": the session's state, its broker and the subscriptions made on it. */
void me_cloud_status(struct me_state *s, cJSON *obj) {
  struct me_cloud *c = &s->cloud;
  const char *state = c->connected ? "connected" : c->mq ? "connecting" : "disconnected";
  cJSON *subs = vm_dialect_mqtt_status(obj, state, c->mq ? c->mqtt_host : NULL, c->mqtt_port);
  for (int i = 0; subs && i < c->n_subs; i++) cJSON_AddItemToArray(subs, cJSON_CreateString(c->subs[i]));
}

void me_cloud_power_off(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  me_auth_power_off(s);
  uv_timer_stop(&c->op_timer);
  link_close(s, false);
  c->op = ME_OP_NONE;
  c->sessions = 0;
}

void me_cloud_destroy(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  me_cloud_power_off(s);
  uv_close((uv_handle_t *)&c->op_timer, NULL);
  uv_close((uv_handle_t *)&c->ack_timer, NULL);
  me_auth_destroy(s);
}
