/* w8_session.c - link 0 of the w800 dialect: the MQTT state machine of §4,
 * the connection behind it and the URCs it prints (reference §5.5-§5.11).
 *
 * One connection attempt = one struct vm_mqtt (libmosquitto on the loop);
 * for WebSocket schemes (6-10) a struct vm_ws relay comes first and
 * libmosquitto talks to its unix-socket end. Both are closed abruptly when the
 * link dies (the broker then publishes the will, as for a real module that
 * lost power or Wi-Fi) and gracefully only for AT+MQTTCLEAN.
 *
 * esp-mqtt semantics kept here: every failed attempt (first or automatic)
 * is a DISCONNECTED event, so an automatic reconnect that keeps failing
 * prints +MQTTDISCONNECTED:0 once per try; after each CONNECTED event the
 * tracked topics are subscribed again; the first SUBACK moves the state to 6.
 *
 * The link needs the simulated Wi-Fi, and the verifying schemes (3, 5, 8, 10)
 * need the clock SNTP sets (w800.require_sntp), as on the module whose mbedtls
 * checks certificate dates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/mqtt.h"
#include "vmodule/ws.h"
#include "w800.h"

static const struct vm_mqtt_cbs mq_cbs;
static const struct vm_ws_cbs ws_cbs;
static void link_lost(struct w8_mqtt *t);
static void link_failed(struct w8_mqtt *t);

/* ---- helpers ---------------------------------------------------------------- */

static struct vm_at *at_of(struct w8_mqtt *t) { return &t->s->m->at; }
static const char *who(struct w8_mqtt *t) { return t->s->m->name; }
static const struct w8_config *cfg_of(struct w8_mqtt *t) { return t->s->cfg; }

static bool scheme_ws(int s) { return s >= 6; }
static bool scheme_tls(int s) { return s >= 2 && s != 6; }
static bool scheme_verify(int s) { return s == 3 || s == 5 || s == 8 || s == 10; }
static bool scheme_cert(int s) { return s == 4 || s == 5 || s == 9 || s == 10; }

/* The path as the URI slice shows it: "/<path>" for WebSocket, else "". */
static const char *uri_path(const struct w8_mqtt *t, char *buf, size_t cap) {
  if (!scheme_ws(t->scheme)) return "";
  snprintf(buf, cap, "/%s", t->path);
  return buf;
}

static void print_connected(struct w8_mqtt *t, bool urc) {
  char path[W8_MAX_PATH + 2];
  const char *p = uri_path(t, path, sizeof path);
  if (urc)
    vm_at_urcf(at_of(t), W8_URC_CONNECTED_FMT, t->scheme, t->host, t->port, p, t->reconnect);
  else
    vm_at_printf(at_of(t), W8_URC_CONNECTED_FMT, t->scheme, t->host, t->port, p, t->reconnect);
}

/* A DISCONNECTED event as a URC. ESP-AT drops these while PUBRAW data is being
 * typed and prints one (its quirk) before the publish; the quirk line stands
 * for all of them (§5.7). */
static void urc_disconnected(struct w8_mqtt *t) {
  if (t->op == W8_OP_DATA) {
    t->data_disc = true;
    return;
  }
  vm_at_urc(at_of(t), W8_URC_DISCONNECTED, strlen(W8_URC_DISCONNECTED));
}

static void op_timer_start(struct w8_mqtt *t, unsigned ms);

/* Ends the pending command (its lines already printed). */
static void op_done(struct w8_mqtt *t, enum vm_at_result r) {
  uv_timer_stop(&t->op_timer);
  t->op = W8_OP_NONE;
  t->op_mid = 0;
  t->op_note = NULL;
  vm_at_complete(at_of(t), r);
}

static enum vm_at_result fail_code(struct w8_mqtt *t, int mqtt_code) {
  return vm_at_fail(at_of(t), mqtt_code ? W8_ERR((uint32_t)mqtt_code) : 0);
}

/* ---- tracked topics (10 slots) ------------------------------------------------ */

static struct w8_sub *sub_find(struct w8_mqtt *t, const char *topic) {
  for (int i = 0; i < W8_MAX_SUBS; i++)
    if (t->subs[i].used && !strcmp(t->subs[i].topic, topic)) return &t->subs[i];
  return NULL;
}

static struct w8_sub *sub_free_slot(struct w8_mqtt *t) {
  for (int i = 0; i < W8_MAX_SUBS; i++)
    if (!t->subs[i].used) return &t->subs[i];
  return NULL;
}

static bool sub_any(const struct w8_mqtt *t) {
  for (int i = 0; i < W8_MAX_SUBS; i++)
    if (t->subs[i].used) return true;
  return false;
}

/* Adds the topic unless the command found it present or the table full. */
static void sub_track(struct w8_mqtt *t, const char *topic, int qos, const char *note) {
  struct w8_sub *sub = note ? NULL : sub_free_slot(t);
  if (!sub) return;
  sub->used = true;
  sub->qos = qos;
  snprintf(sub->topic, sizeof sub->topic, "%s", topic);
}

static void resubscribe(struct w8_mqtt *t) {
  for (int i = 0; i < W8_MAX_SUBS; i++) {
    if (!t->subs[i].used) continue;
    if (vm_mqtt_subscribe(t->mq, t->subs[i].topic, t->subs[i].qos) < 0)
      vm_log_warn(who(t), "MQTT: re-subscribing %s failed", t->subs[i].topic);
  }
}

/* ---- the link ------------------------------------------------------------------ */

static void mq_closed(struct vm_mqtt *mq) { free(mq); }
static void ws_closed(struct vm_ws *ws) { free(ws); }

/* Ends the current connection or attempt; no callback follows. graceful only
 * matters for the WebSocket relay: libmosquitto's last bytes (DISCONNECT)
 * still reach the broker. */
static void link_close(struct w8_mqtt *t, bool graceful) {
  if (t->mq) {
    vm_mqtt_close(t->mq, mq_closed);
    t->mq = NULL;
  }
  if (t->ws) {
    vm_ws_close(t->ws, graceful, ws_closed);
    t->ws = NULL;
  }
  t->connected = t->attempting = false;
  vm_esp_net_session(&t->s->esp, false, false);
}

/* The AT+MQTTALPN names as vm_mqtt takes them: "a,b,c". A name holding a
 * comma cannot travel that way; it is left out (logged). NULL: none. */
static const char *alpn_list(struct w8_mqtt *t, char *buf, size_t cap) {
  size_t n = 0;
  for (int i = 0; i < t->nalpn; i++) {
    size_t l = strlen(t->alpn[i]);
    if (strchr(t->alpn[i], ',') || n + l + 2 > cap) {
      vm_log_warn(who(t), "MQTT: ALPN name \"%s\" left out of the TLS handshake", t->alpn[i]);
      continue;
    }
    if (n) buf[n++] = ',';
    memcpy(buf + n, t->alpn[i], l + 1);
    n += l;
  }
  return n ? buf : NULL;
}

/* libmosquitto towards host:port; through the relay when via_ws. */
static int mq_start(struct w8_mqtt *t, const char *host, int port, bool via_ws) {
  const struct w8_config *c = cfg_of(t);
  char alpn[W8_MAX_ALPN * (W8_MAX_ALPN_LEN + 1) + 1];
  int ka = t->keepalive ? t->keepalive : W8_DEFAULT_KEEPALIVE;
  if (ka < 5) ka = 5; /* libmosquitto's minimum; esp-mqtt would take 1..4 */
  struct vm_mqtt_opts o = {
      .host = host,
      .port = port,
      .client_id = t->client_id[0] ? t->client_id : NULL,
      /* MQTT 3.1.1 has no password without a user name: send an empty one */
      .username = t->username[0] || t->password[0] ? t->username : NULL,
      .password = t->password[0] ? t->password : NULL,
      .keepalive = ka,
      .clean_session = !t->disable_clean,
      /* The same budget as our op timer (which bounds the relay too): a
       * silent address's share of it is then the share of the command's. */
      .connect_timeout_ms = (int)t->timeout_ms,
      .net = t->s->m, /* not applied to the WebSocket relay's local socket (port 0) */
  };
  if (t->lwt_topic[0]) {
    o.will_topic = t->lwt_topic;
    o.will_payload = t->lwt_msg;
    o.will_len = (int)strlen(t->lwt_msg);
    o.will_qos = t->lwt_qos;
    o.will_retain = t->lwt_retain;
  }
  if (!via_ws && scheme_tls(t->scheme)) {
    o.tls = VM_MQTT_TLS_CA;
    o.tls_insecure = !scheme_verify(t->scheme);
    o.ca_file = c->ca_file;
    if (scheme_cert(t->scheme) && c->client_cert) {
      o.cert_file = c->client_cert;
      o.key_file = c->client_key;
    }
    o.alpn = alpn_list(t, alpn, sizeof alpn);
  }
  struct vm_mqtt *mq = calloc(1, sizeof *mq);
  if (!mq) return -ENOMEM;
  int rc = vm_mqtt_init(mq, t->s->m->loop, who(t), &mq_cbs, t);
  if (rc < 0) {
    if (mq->loop) vm_mqtt_close(mq, mq_closed); /* partly set up: let it close its timers */
    else free(mq);
    return rc;
  }
  t->mq = mq;
  rc = vm_mqtt_connect(mq, &o);
  if (rc < 0) vm_log_warn(who(t), "MQTT: cannot start a connection to %s:%d: %s", host, port,
                          strerror(-rc));
  return rc;
}

static int ws_start(struct w8_mqtt *t) {
  const struct w8_config *c = cfg_of(t);
  char path[W8_MAX_PATH + 2];
  const char *alpn[W8_MAX_ALPN];
  bool tls = scheme_tls(t->scheme);
  for (int i = 0; i < t->nalpn; i++) alpn[i] = t->alpn[i];
  snprintf(path, sizeof path, "/%s", t->path);
  struct vm_ws_opts o = {
      .host = t->host,
      .port = t->port,
      .path = path,
      .protocol = "mqtt",
      .tls = tls,
      .verify = scheme_verify(t->scheme),
      .ca_file = c->ca_file,
      .cert_file = scheme_cert(t->scheme) ? c->client_cert : NULL,
      .key_file = scheme_cert(t->scheme) ? c->client_key : NULL,
      .alpn = alpn,
      .nalpn = tls ? t->nalpn : 0,
      .timeout_ms = (int)t->timeout_ms,
      .net = t->s->m,
  };
  struct vm_ws *ws = calloc(1, sizeof *ws);
  if (!ws) return -ENOMEM;
  int rc = vm_ws_connect(ws, t->s->m->loop, who(t), &o, &ws_cbs, t);
  if (rc < 0) {
    vm_log_warn(who(t), "MQTT: cannot start a WebSocket to %s:%d: %s", t->host, t->port,
                strerror(-rc));
    free(ws);
    return rc;
  }
  t->ws = ws;
  return 0;
}

/* Starts an attempt. Returns 0 (link_up or link_failed follows) or <0 for a
 * failure known at once. */
static int link_open(struct w8_mqtt *t) {
  const struct w8_state *s = t->s;
  if (!s->esp.connected) {
    vm_log_info(who(t), "MQTT: cannot reach %s: Wi-Fi is not connected", t->host);
    return -ENETUNREACH;
  }
  if (scheme_verify(t->scheme) && s->cfg->require_sntp && !s->esp.sntp_synced) {
    /* mbedtls with MBEDTLS_HAVE_TIME_DATE sees a 1970 clock: every
     * certificate is "not yet valid" (seed 002, AT+MQTTUSERCFG note) */
    vm_log_warn(who(t), "MQTT: scheme %d verifies the server certificate but the module has no "
                        "time yet: sync SNTP first (AT+CIPSNTPCFG)", t->scheme);
    return -EKEYEXPIRED;
  }
  if (scheme_cert(t->scheme) && !s->cfg->client_cert)
    vm_log_info(who(t), "MQTT: scheme %d but no w800.client_cert configured: no certificate "
                        "is presented", t->scheme);
  t->attempting = true;
  int rc = scheme_ws(t->scheme) ? ws_start(t) : mq_start(t, t->host, t->port, false);
  if (rc < 0) link_close(t, false);
  return rc;
}

static void recon_cb(uv_timer_t *h);

static void recon_schedule(struct w8_mqtt *t) {
  uv_timer_start(&t->recon_timer, recon_cb, cfg_of(t)->reconnect_interval_ms, 0);
}

/* esp-mqtt's automatic reconnect, one attempt per interval. */
static void recon_cb(uv_timer_t *h) {
  struct w8_mqtt *t = h->data;
  if (t->state != 3 || !t->reconnect || t->attempting || t->connected) return;
  vm_log_debug(who(t), "MQTT: reconnecting to %s:%d", t->host, t->port);
  if (link_open(t) < 0) {
    urc_disconnected(t);
    recon_schedule(t);
  }
}

/* CONNACK accepted. */
static void link_up(struct w8_mqtt *t) {
  t->attempting = false;
  t->connected = true;
  vm_esp_net_session(&t->s->esp, true, scheme_tls(t->scheme));
  t->state = 4;
  uv_timer_stop(&t->recon_timer);
  vm_log_info(who(t), "MQTT: connected to %s:%d (scheme %d)", t->host, t->port, t->scheme);
  if (t->op == W8_OP_CONN) {
    print_connected(t, false); /* the URC first, then OK (§5.5 decision) */
    op_done(t, VM_AT_OK);
  } else {
    print_connected(t, true);
  }
  resubscribe(t);
}

/* An attempt failed (DNS, TCP, TLS, Upgrade, CONNACK refusal, timeout). */
static void link_failed(struct w8_mqtt *t) {
  link_close(t, false);
  if (t->op == W8_OP_CONN) {
    t->state = 2;
    vm_at_puts(at_of(t), W8_URC_DISCONNECTED);
    fail_code(t, W8_E_CLIENT_START_FAILED);
    op_done(t, VM_AT_ERROR);
    return;
  }
  urc_disconnected(t);
  if (t->state == 3 && t->reconnect) recon_schedule(t);
}

/* AT+MQTTCLEAN's DISCONNECT has left (or the link died meanwhile). */
static void clean_finish(struct w8_mqtt *t) {
  link_close(t, true);
  w8_mqtt_reset(t);
  op_done(t, VM_AT_OK);
}

/* An established connection broke (broker, keepalive, Wi-Fi). */
static void link_lost(struct w8_mqtt *t) {
  if (t->op == W8_OP_CLEAN) {
    clean_finish(t);
    return;
  }
  vm_log_info(who(t), "MQTT: connection to %s:%d lost", t->host, t->port);
  link_close(t, false);
  t->state = 3;
  struct vm_at *at = at_of(t);
  switch (t->op) {
  case W8_OP_PUB:
  case W8_OP_SUB:
  case W8_OP_UNSUB:
    vm_at_puts(at, W8_URC_DISCONNECTED);
    fail_code(t, 0);
    op_done(t, VM_AT_ERROR);
    break;
  case W8_OP_PUBRAW:
    vm_at_puts(at, W8_URC_DISCONNECTED);
    vm_at_puts(at, W8_PUB_FAIL);
    op_done(t, VM_AT_DONE);
    break;
  default:
    urc_disconnected(t);
    break;
  }
  if (t->reconnect) recon_schedule(t);
}

/* ---- callbacks -------------------------------------------------------------------- */

static void on_ws_open(struct vm_ws *ws, int rc) {
  struct w8_mqtt *t = ws->data;
  if (rc == 0) rc = mq_start(t, vm_ws_local_path(ws), 0, true);
  if (rc < 0) link_failed(t);
}

static void on_ws_close(struct vm_ws *ws, enum vm_ws_end why) {
  struct w8_mqtt *t = ws->data;
  /* libmosquitto sees its socket close and reports through its callbacks */
  vm_log_debug(who(t), "MQTT: WebSocket relay ended (%d)", (int)why);
}

static const struct vm_ws_cbs ws_cbs = {.on_open = on_ws_open, .on_close = on_ws_close};

static void on_connect(void *data, int rc) {
  struct w8_mqtt *t = data;
  if (rc == 0) {
    link_up(t);
    return;
  }
  vm_log_info(who(t), "MQTT: connect to %s:%d failed: %s", t->host, t->port, vm_mqtt_strerror(rc));
  link_failed(t);
}

static void on_disconnect(void *data, enum vm_mqtt_disc_reason reason) {
  struct w8_mqtt *t = data;
  if (t->op == W8_OP_CLEAN) {
    clean_finish(t);
    return;
  }
  link_lost(t);
}

/* +MQTTSUBRECV:0,"<topic>",<len>,<raw payload>\r\n for every message
 * (esp-mqtt does not filter by the tracked table). */
static void on_message(void *data, const char *topic, const void *payload, int len, int qos,
                       bool retain, int mid) {
  struct w8_mqtt *t = data;
  size_t total = (size_t)len, chunk = cfg_of(t)->subrecv_chunk ? cfg_of(t)->subrecv_chunk : total;
  size_t off = 0;
  do {
    size_t n = total - off < chunk ? total - off : chunk;
    /* payload is NULL when empty */
    vm_at_urc_data(at_of(t), n ? (const char *)payload + off : "", n, W8_URC_SUBRECV_TAIL,
                   W8_URC_SUBRECV_HEAD_FMT, topic, n);
    off += n;
  } while (off < total);
}

static void on_publish(void *data, int mid) {
  struct w8_mqtt *t = data;
  if ((t->op != W8_OP_PUB && t->op != W8_OP_PUBRAW) || mid != t->op_mid) return;
  if (t->op == W8_OP_PUBRAW) {
    vm_at_puts(at_of(t), W8_PUB_OK);
    op_done(t, VM_AT_DONE);
  } else {
    op_done(t, VM_AT_OK);
  }
}

static void on_subscribe(void *data, int mid, int count, const int *granted) {
  struct w8_mqtt *t = data;
  bool ok = count > 0 && granted[0] != 0x80;
  if (ok && (t->state == 4 || t->state == 5)) t->state = 6; /* the SUBSCRIBED event */
  if (t->op != W8_OP_SUB || mid != t->op_mid) return;        /* QoS 0 or re-subscriptions */
  if (!ok) {
    vm_log_info(who(t), "MQTT: the broker refused the subscription to %s", t->op_topic);
    fail_code(t, W8_E_CLIENT_SUBSCRIBE_FAILED);
    op_done(t, VM_AT_ERROR);
    return;
  }
  sub_track(t, t->op_topic, t->op_qos, t->op_note);
  if (t->op_note) vm_at_puts(at_of(t), t->op_note);
  op_done(t, VM_AT_OK);
}

static void on_unsubscribe(void *data, int mid) {
  struct w8_mqtt *t = data;
  if (t->op != W8_OP_UNSUB || mid != t->op_mid) return;
  struct w8_sub *sub = sub_find(t, t->op_topic);
  if (!sub) {
    vm_at_puts(at_of(t), W8_NO_UNSUBSCRIBE);
  } else {
    memset(sub, 0, sizeof *sub);
    if (!sub_any(t) && t->state == 6) t->state = 5;
  }
  op_done(t, VM_AT_OK);
}

static const struct vm_mqtt_cbs mq_cbs = {
    .on_connect = on_connect,
    .on_disconnect = on_disconnect,
    .on_message = on_message,
    .on_publish = on_publish,
    .on_subscribe = on_subscribe,
    .on_unsubscribe = on_unsubscribe,
};

/* ---- command timeouts ------------------------------------------------------------------ */

static void op_timeout(uv_timer_t *h) {
  struct w8_mqtt *t = h->data;
  switch (t->op) {
  case W8_OP_CONN:
    vm_log_info(who(t), "MQTT: no connection to %s:%d within %u ms", t->host, t->port,
                t->timeout_ms);
    link_failed(t);
    break;
  case W8_OP_PUB:
  case W8_OP_SUB:
  case W8_OP_UNSUB:
    vm_log_info(who(t), "MQTT: no acknowledgement within %u ms", cfg_of(t)->command_timeout_ms);
    fail_code(t, 0);
    op_done(t, VM_AT_ERROR);
    break;
  case W8_OP_PUBRAW:
    vm_at_puts(at_of(t), W8_PUB_FAIL);
    op_done(t, VM_AT_DONE);
    break;
  case W8_OP_CLEAN:
    clean_finish(t);
    break;
  default:
    break;
  }
}

static void op_timer_start(struct w8_mqtt *t, unsigned ms) {
  uv_timer_start(&t->op_timer, op_timeout, ms, 0);
}

/* ---- command back ends ------------------------------------------------------------------ */

enum vm_at_result w8_conn_start(struct vm_at *at, struct w8_mqtt *t) {
  uv_timer_stop(&t->recon_timer);
  link_close(t, false); /* from state 3 (reconnect 0): the old client goes */
  if (link_open(t) < 0) {
    t->state = 2;
    vm_at_puts(at, W8_URC_DISCONNECTED);
    return fail_code(t, W8_E_CLIENT_START_FAILED);
  }
  t->op = W8_OP_CONN;
  op_timer_start(t, t->timeout_ms);
  return VM_AT_PENDING;
}

enum vm_at_result w8_publish(struct vm_at *at, struct w8_mqtt *t, const char *topic,
                             const void *payload, size_t len, int qos, bool retain, bool raw) {
  if (raw && t->data_disc) {
    t->data_disc = false;
    vm_at_puts(at, W8_URC_DISCONNECTED);
  }
  int rc = t->connected && t->mq ? vm_mqtt_publish(t->mq, topic, payload, (int)len, qos, retain)
                                 : -ENOTCONN;
  if (rc < 0) {
    vm_log_info(who(t), "MQTT: publish to %s failed: %s", topic, strerror(-rc));
    if (!raw) return fail_code(t, W8_E_CLIENT_PUBLISH_FAILED);
    vm_at_puts(at, W8_PUB_FAIL);
    return VM_AT_DONE;
  }
  if (qos == 0) {
    if (!raw) return VM_AT_OK;
    vm_at_puts(at, W8_PUB_OK);
    return VM_AT_DONE;
  }
  t->op = raw ? W8_OP_PUBRAW : W8_OP_PUB;
  t->op_mid = rc;
  op_timer_start(t, cfg_of(t)->command_timeout_ms);
  return VM_AT_PENDING;
}

enum vm_at_result w8_subscribe(struct vm_at *at, struct w8_mqtt *t, const char *topic, int qos) {
  const char *note = NULL;
  if (sub_find(t, topic)) {
    note = W8_ALREADY_SUBSCRIBE;
  } else if (!sub_free_slot(t)) {
    if (cfg_of(t)->full_subscribe_refuse) {
      vm_at_puts(at, W8_ALREADY_FULL_SUBSCRIBE);
      return fail_code(t, W8_E_CLIENT_SUBSCRIBE_FAILED);
    }
    note = W8_ALREADY_FULL_SUBSCRIBE; /* subscribed at the broker, not tracked */
  }
  int rc = vm_mqtt_subscribe(t->mq, topic, qos);
  if (rc < 0) {
    vm_log_info(who(t), "MQTT: subscribe to %s failed: %s", topic, strerror(-rc));
    return fail_code(t, W8_E_CLIENT_SUBSCRIBE_FAILED);
  }
  if (qos == 0) { /* QoS 0: OK once queued, no wait for SUBACK */
    sub_track(t, topic, qos, note);
    if (note) vm_at_puts(at, note);
    return VM_AT_OK;
  }
  t->op = W8_OP_SUB;
  t->op_mid = rc;
  t->op_qos = qos;
  t->op_note = note;
  snprintf(t->op_topic, sizeof t->op_topic, "%s", topic);
  op_timer_start(t, cfg_of(t)->command_timeout_ms);
  return VM_AT_PENDING;
}

enum vm_at_result w8_unsubscribe(struct vm_at *at, struct w8_mqtt *t, const char *topic) {
  int rc = vm_mqtt_unsubscribe(t->mq, topic);
  if (rc < 0) {
    vm_log_info(who(t), "MQTT: unsubscribe from %s failed: %s", topic, strerror(-rc));
    return fail_code(t, W8_E_CLIENT_UNSUBSCRIBE_FAILED);
  }
  t->op = W8_OP_UNSUB;
  t->op_mid = rc;
  snprintf(t->op_topic, sizeof t->op_topic, "%s", topic);
  op_timer_start(t, cfg_of(t)->command_timeout_ms);
  return VM_AT_PENDING;
}

enum vm_at_result w8_clean(struct vm_at *at, struct w8_mqtt *t) {
  uv_timer_stop(&t->recon_timer);
  if (t->connected && t->mq && vm_mqtt_disconnect(t->mq) == 0) {
    t->op = W8_OP_CLEAN; /* OK once the DISCONNECT has left */
    op_timer_start(t, cfg_of(t)->command_timeout_ms);
    return VM_AT_PENDING;
  }
  link_close(t, false);
  w8_mqtt_reset(t);
  return VM_AT_OK;
}

/* ---- `status` ----------------------------------------------------------------------- */

/* "mqtt": link 0's state, its broker and the tracked topics. An attempt,
 * MQTTCONN waiting, or state 3 with auto-reconnect on are "connecting". */
void w8_mqtt_status(struct w8_state *s, cJSON *obj) {
  struct w8_mqtt *t = s->mqtt;
  bool trying = t->attempting || t->op == W8_OP_CONN || (t->state == 3 && t->reconnect);
  const char *state = t->connected ? "connected" : trying ? "connecting" : "disconnected";
  cJSON *subs = vm_dialect_mqtt_status(obj, state, t->host, t->port);
  for (int i = 0; subs && i < W8_MAX_SUBS; i++)
    if (t->subs[i].used) cJSON_AddItemToArray(subs, cJSON_CreateString(t->subs[i].topic));
}

/* ---- life cycle ----------------------------------------------------------------------- */

void w8_mqtt_reset(struct w8_mqtt *t) {
  struct w8_state *s = t->s;
  uv_timer_stop(&t->recon_timer);
  t->state = 0;
  t->scheme = t->cert_key_id = t->ca_id = 0;
  explicit_bzero(t->client_id, sizeof t->client_id);
  explicit_bzero(t->username, sizeof t->username);
  explicit_bzero(t->password, sizeof t->password);
  memset(t->path, 0, sizeof t->path);
  t->keepalive = t->lwt_qos = 0;
  t->disable_clean = t->lwt_retain = false;
  memset(t->lwt_topic, 0, sizeof t->lwt_topic);
  memset(t->lwt_msg, 0, sizeof t->lwt_msg);
  memset(t->alpn, 0, sizeof t->alpn);
  t->nalpn = 0;
  memset(t->host, 0, sizeof t->host);
  t->port = 0;
  t->reconnect = false;
  t->timeout_ms = s->cfg->connect_timeout_ms;
  memset(t->subs, 0, sizeof t->subs);
  t->data_disc = false;
}

int w8_mqtt_init(struct w8_state *s) {
  struct w8_mqtt *t = calloc(1, sizeof *t);
  if (!t) return -1;
  t->s = s;
  uv_timer_init(s->m->loop, &t->recon_timer);
  uv_timer_init(s->m->loop, &t->op_timer);
  t->recon_timer.data = t->op_timer.data = t;
  w8_mqtt_reset(t);
  s->mqtt = t;
  return 0;
}

/* Wi-Fi lost: the link dies with it. Back: the reconnect timer (if any)
 * finds it at its next attempt. */
void w8_mqtt_on_wifi(struct w8_state *s, bool up) {
  struct w8_mqtt *t = s->mqtt;
  if (up || !t) return;
  if (t->connected) {
    vm_log_info(who(t), "MQTT: Wi-Fi lost");
    link_lost(t);
  } else if (t->attempting) {
    link_failed(t);
  }
}

/* Reset or power cut: RAM is gone, nothing is said on the line. */
void w8_mqtt_power_off(struct w8_state *s) {
  struct w8_mqtt *t = s->mqtt;
  link_close(t, false);
  uv_timer_stop(&t->op_timer);
  t->op = W8_OP_NONE;
  t->op_mid = 0;
  t->op_note = NULL;
  w8_mqtt_reset(t);
}

static void timer_closed(uv_handle_t *h) {
  struct w8_mqtt *t = h->data;
  if (--t->closes == 0) free(t);
}

void w8_mqtt_destroy(struct w8_state *s) {
  struct w8_mqtt *t = s->mqtt;
  if (!t) return;
  link_close(t, false);
  t->closes = 2;
  uv_close((uv_handle_t *)&t->recon_timer, timer_closed);
  uv_close((uv_handle_t *)&t->op_timer, timer_closed);
  s->mqtt = NULL;
}
