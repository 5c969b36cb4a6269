/* w8_cmds.c - the MQTT AT commands of the w800 dialect (seed 002): parameter
 * validation in ESP-AT v3.2's order with its error codes, the state checks of
 * §4, the query forms W800 adds, the usage texts printed for `=?`, and the
 * data phases (AT+MQTTLONG*, AT+MQTTPUBRAW). What happens on the network is in
 * w8_session.c.
 *
 * ESP-AT parses every parameter before it counts them, so a missing
 * parameter reports that parameter's READ_FAILED code and an extra one
 * reports PARAMETER_COUNTS_IS_WRONG (reference §5). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/log.h"
#include "vmodule/module.h"
#include "w800.h"

static struct w8_mqtt *mqtt_of(struct vm_at *at) { return w8_state_of(at)->mqtt; }

/* ---- parameter checks: 0, or the ERR CODE to fail with ---------------------------- */

#define TRY(expr)                                  \
  do {                                             \
    uint32_t e_ = (expr);                          \
    if (e_) return vm_at_fail(at, e_);             \
  } while (0)

#define FAIL(mqtt_code) vm_at_fail(at, W8_ERR(mqtt_code))

static uint32_t p_link(const struct vm_at_args *a) {
  long v;
  if (vm_at_arg_int(a, 0, &v) != VM_AT_ARG_OK) return W8_ERR(W8_E_LINK_ID_READ_FAILED);
  return v == 0 ? 0 : W8_ERR(W8_E_LINK_ID_VALUE_IS_WRONG);
}

static uint32_t p_int(const struct vm_at_args *a, int i, long lo, long hi, int read_code,
                      int value_code, long *out) {
  if (vm_at_arg_int(a, i, out) != VM_AT_ARG_OK) return W8_ERR((uint32_t)read_code);
  return *out < lo || *out > hi ? W8_ERR((uint32_t)value_code) : 0;
}

/* null_code 0: an empty string is accepted. */
static uint32_t p_str(const struct vm_at_args *a, int i, size_t max, int read_code, int null_code,
                      int over_code, const char **s, size_t *n) {
  if (vm_at_arg_str(a, i, s, n) != VM_AT_ARG_OK) return W8_ERR((uint32_t)read_code);
  if (*n == 0 && null_code) return W8_ERR((uint32_t)null_code);
  return *n > max ? W8_ERR((uint32_t)over_code) : 0;
}

static uint32_t p_count(const struct vm_at_args *a, int n) {
  return a->count == n ? 0 : W8_ERR(W8_E_PARAMETER_COUNTS_IS_WRONG);
}

static uint32_t p_topic(const struct vm_at_args *a, int i, const char **s) {
  size_t n;
  return p_str(a, i, W8_MAX_TOPIC, W8_E_TOPIC_READ_FAILED, W8_E_TOPIC_IS_NULL,
               W8_E_TOPIC_IS_OVERLENGTH, s, &n);
}

static void copy_field(char *dst, size_t cap, const void *src, size_t n) {
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  memset(dst + n, 0, cap - n);
}

#define USAGE(fn, text)                                                         \
  static enum vm_at_result fn(struct vm_at *at, const struct vm_at_args *a) { \
    vm_at_puts(at, text);                                                       \
    return VM_AT_OK;                                                            \
  }

USAGE(usercfg_test, W8_USAGE_USERCFG)
USAGE(longclientid_test, W8_USAGE_LONGCLIENTID)
USAGE(longusername_test, W8_USAGE_LONGUSERNAME)
USAGE(longpassword_test, W8_USAGE_LONGPASSWORD)
USAGE(conncfg_test, W8_USAGE_CONNCFG)
USAGE(alpn_test, W8_USAGE_ALPN)
USAGE(conn_test, W8_USAGE_CONN)
USAGE(pub_test, W8_USAGE_PUB)
USAGE(pubraw_test, W8_USAGE_PUBRAW)
USAGE(sub_test, W8_USAGE_SUB)
USAGE(unsub_test, W8_USAGE_UNSUB)
USAGE(clean_test, W8_USAGE_CLEAN)

/* ---- AT+MQTTUSERCFG ------------------------------------------------------------ */

static enum vm_at_result usercfg_query(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  /* the password never appears in a reply (project rule); ESP-AT v2 printed it */
  vm_at_printf(at, W8_USERCFG_FMT, t->scheme, t->client_id, t->username,
               t->password[0] ? W8_PASSWORD_SHOWN : "", t->cert_key_id, t->ca_id, t->path);
  return VM_AT_OK;
}

/* AT+MQTTUSERCFG=<LinkID>,<scheme>,<"client_id">,<"username">,<"password">,
 *                <cert_key_ID>,<CA_ID>,<"path"> */
static enum vm_at_result usercfg_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  long scheme, cert, ca;
  const char *cid, *user, *pwd, *path;
  size_t cl, ul, pl, pal;
  TRY(p_link(a));
  if (t->state > 2) return FAIL(W8_E_NOT_IN_CONFIGURED_STATE);
  TRY(p_int(a, 1, 1, 10, W8_E_SCHEME_READ_FAILED, W8_E_SCHEME_VALUE_IS_WRONG, &scheme));
  TRY(p_str(a, 2, W8_MAX_CLIENT_ID, W8_E_CLIENT_ID_READ_FAILED, 0, W8_E_CLIENT_ID_IS_OVERLENGTH,
            &cid, &cl));
  TRY(p_str(a, 3, W8_MAX_USERNAME, W8_E_USERNAME_READ_FAILED, 0, W8_E_USERNAME_IS_OVERLENGTH,
            &user, &ul));
  TRY(p_str(a, 4, W8_MAX_PASSWORD, W8_E_PASSWORD_READ_FAILED, 0, W8_E_PASSWORD_IS_OVERLENGTH,
            &pwd, &pl));
  /* W800 has one certificate set (0); ESP-AT also takes 1 */
  TRY(p_int(a, 5, 0, 1, W8_E_CERT_KEY_ID_READ_FAILED, W8_E_CERT_KEY_ID_VALUE_IS_WRONG, &cert));
  TRY(p_int(a, 6, 0, 1, W8_E_CA_ID_READ_FAILED, W8_E_CA_ID_VALUE_IS_WRONG, &ca));
  TRY(p_str(a, 7, W8_MAX_PATH, W8_E_PATH_READ_FAILED, 0, W8_E_PATH_IS_OVERLENGTH, &path, &pal));
  TRY(p_count(a, 8));
  if (cl == 0) vm_log_debug(at->name, "MQTT: empty client id (ESP-AT only warns)");
  t->scheme = (int)scheme;
  copy_field(t->client_id, sizeof t->client_id, cid, cl);
  copy_field(t->username, sizeof t->username, user, ul);
  copy_field(t->password, sizeof t->password, pwd, pl);
  t->cert_key_id = (int)cert;
  t->ca_id = (int)ca;
  copy_field(t->path, sizeof t->path, path, pal);
  t->state = 1;
  return VM_AT_OK;
}

/* ---- AT+MQTTLONGCLIENTID / LONGUSERNAME / LONGPASSWORD --------------------------- */

struct long_kind {
  size_t offset; /* of the field in struct w8_mqtt */
  int read_code, over_code;
  bool secret;   /* the value is redacted in traces */
};

static const struct long_kind long_client_id = {offsetof(struct w8_mqtt, client_id),
                                                W8_E_CLIENT_ID_READ_FAILED,
                                                W8_E_CLIENT_ID_IS_OVERLENGTH, false};
static const struct long_kind long_username = {offsetof(struct w8_mqtt, username),
                                               W8_E_USERNAME_READ_FAILED,
                                               W8_E_USERNAME_IS_OVERLENGTH, false};
static const struct long_kind long_password = {offsetof(struct w8_mqtt, password),
                                               W8_E_PASSWORD_READ_FAILED,
                                               W8_E_PASSWORD_IS_OVERLENGTH, true};

static void long_data(struct vm_at *at, enum vm_at_data_status st, const unsigned char *data,
                      size_t len, void *ctx) {
  if (st != VM_AT_DATA_OK) { /* only with w800.data_timeout_ms */
    vm_log_info(at->name, "MQTT: long value not received in time");
    vm_at_complete(at, vm_at_fail(at, VM_AT_ERR_COMMON));
    return;
  }
  /* exactly <length> raw bytes: CR and LF are part of the value */
  copy_field(ctx, W8_MAX_LONG + 1, data, len);
  vm_at_complete(at, VM_AT_OK);
}

/* AT+MQTTLONG<X>=<LinkID>,<length>: OK and '>', then exactly length bytes. */
static enum vm_at_result long_set(struct vm_at *at, const struct vm_at_args *a,
                                  const struct long_kind *k) {
  struct w8_mqtt *t = mqtt_of(at);
  long len;
  TRY(p_link(a));
  /* ESP-AT: state 1 only; W800: "after USERCFG" (§10: 1 or 2) */
  if (t->state < 1 || t->state > 2) return FAIL(W8_E_NOT_IN_CONFIGURED_STATE);
  TRY(p_int(a, 1, 1, W8_MAX_LONG, k->read_code, k->over_code, &len));
  TRY(p_count(a, 2));
  struct vm_at_data_req req = {
      .len = (size_t)len,
      .timeout_ms = w8_state_of(at)->cfg->data_timeout_ms,
      .secret = k->secret,
      .done = long_data,
      .ctx = (char *)t + k->offset,
  };
  if (vm_at_read_data(at, &req) < 0) return FAIL(W8_E_MALLOC_FAILED);
  vm_at_puts(at, W8_PROMPT);
  return VM_AT_PENDING;
}

static enum vm_at_result longclientid_set(struct vm_at *at, const struct vm_at_args *a) {
  return long_set(at, a, &long_client_id);
}
static enum vm_at_result longusername_set(struct vm_at *at, const struct vm_at_args *a) {
  return long_set(at, a, &long_username);
}
static enum vm_at_result longpassword_set(struct vm_at *at, const struct vm_at_args *a) {
  return long_set(at, a, &long_password);
}

/* Legacy ESP-AT v2 string forms, still registered in the ESP-AT core and
 * used by some libraries: AT+MQTTCLIENTID=<LinkID>,<"client_id"> (§5.11). */
static enum vm_at_result legacy_set(struct vm_at *at, const struct vm_at_args *a,
                                    const struct long_kind *k) {
  struct w8_mqtt *t = mqtt_of(at);
  const char *s;
  size_t n;
  TRY(p_link(a));
  if (t->state < 1 || t->state > 2) return FAIL(W8_E_NOT_IN_CONFIGURED_STATE);
  TRY(p_str(a, 1, W8_MAX_LONG, k->read_code, 0, k->over_code, &s, &n));
  TRY(p_count(a, 2));
  copy_field((char *)t + k->offset, W8_MAX_LONG + 1, s, n);
  return VM_AT_OK;
}

static enum vm_at_result clientid_set(struct vm_at *at, const struct vm_at_args *a) {
  return legacy_set(at, a, &long_client_id);
}
static enum vm_at_result username_set(struct vm_at *at, const struct vm_at_args *a) {
  return legacy_set(at, a, &long_username);
}
static enum vm_at_result password_set(struct vm_at *at, const struct vm_at_args *a) {
  return legacy_set(at, a, &long_password);
}

/* ---- AT+MQTTCONNCFG ---------------------------------------------------------------- */

static enum vm_at_result conncfg_query(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  /* the keepalive as stored: 0 stays 0 (§5.3 decision) */
  vm_at_printf(at, W8_CONNCFG_FMT, t->keepalive, t->disable_clean, t->lwt_topic, t->lwt_msg,
               t->lwt_qos, t->lwt_retain);
  return VM_AT_OK;
}

/* AT+MQTTCONNCFG=<LinkID>,<keepalive>,<disable_clean_session>,<"lwt_topic">,
 *                <"lwt_msg">,<lwt_qos>,<lwt_retain> */
static enum vm_at_result conncfg_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  long ka, dcs, qos, retain;
  const char *topic, *msg;
  size_t tl, ml;
  TRY(p_link(a));
  if (t->state == 0) return FAIL(W8_E_NO_CONFIGURED);
  if (t->state >= 3) return FAIL(W8_E_NOT_IN_CONFIGURED_STATE);
  TRY(p_int(a, 1, 0, W8_MAX_KEEPALIVE, W8_E_KEEPALIVE_READ_FAILED, W8_E_KEEPALIVE_VALUE_IS_WRONG,
            &ka));
  TRY(p_int(a, 2, 0, 1, W8_E_DISABLE_CLEAN_SESSION_READ_FAILED,
            W8_E_DISABLE_CLEAN_SESSION_VALUE_IS_WRONG, &dcs));
  TRY(p_str(a, 3, W8_MAX_TOPIC, W8_E_LWT_TOPIC_READ_FAILED, 0, W8_E_LWT_TOPIC_IS_OVERLENGTH, &topic,
            &tl));
  TRY(p_str(a, 4, W8_MAX_LWT_MSG, W8_E_LWT_MSG_READ_FAILED, 0, W8_E_LWT_MSG_IS_OVERLENGTH, &msg,
            &ml));
  TRY(p_int(a, 5, 0, 2, W8_E_LWT_QOS_READ_FAILED, W8_E_LWT_QOS_VALUE_IS_WRONG, &qos));
  TRY(p_int(a, 6, 0, 1, W8_E_LWT_RETAIN_READ_FAILED, W8_E_LWT_RETAIN_VALUE_IS_WRONG, &retain));
  TRY(p_count(a, 7));
  t->keepalive = (int)ka;
  t->disable_clean = dcs;
  copy_field(t->lwt_topic, sizeof t->lwt_topic, topic, tl);
  copy_field(t->lwt_msg, sizeof t->lwt_msg, msg, ml);
  t->lwt_qos = (int)qos;
  t->lwt_retain = retain;
  t->state = 2;
  return VM_AT_OK;
}

/* ---- AT+MQTTALPN --------------------------------------------------------------------- */

static enum vm_at_result alpn_query(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  for (int i = 0; i < t->nalpn; i++) vm_at_printf(at, W8_ALPN_FMT, t->alpn[i]);
  return VM_AT_OK;
}

/* AT+MQTTALPN=<LinkID>,<alpn_counts>[,<"alpn">]... (0 clears). ESP-AT's codes
 * for this command are not known; the core's generic ones are used. */
static enum vm_at_result alpn_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  long n;
  TRY(p_link(a));
  if (t->state < 1 || t->state > 2) return FAIL(W8_E_NOT_IN_CONFIGURED_STATE);
  int r = vm_at_arg_int(a, 1, &n);
  if (r != VM_AT_ARG_OK) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (n < 0 || n > W8_MAX_ALPN) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  if (a->count != 2 + n) return FAIL(W8_E_PARAMETER_COUNTS_IS_WRONG);
  const char *names[W8_MAX_ALPN];
  size_t lens[W8_MAX_ALPN];
  for (int i = 0; i < n; i++) {
    if (vm_at_arg_str(a, 2 + i, &names[i], &lens[i]) != VM_AT_ARG_OK)
      return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
    if (lens[i] == 0 || lens[i] > W8_MAX_ALPN_LEN) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  }
  memset(t->alpn, 0, sizeof t->alpn);
  for (int i = 0; i < n; i++) copy_field(t->alpn[i], sizeof t->alpn[i], names[i], lens[i]);
  t->nalpn = (int)n;
  return VM_AT_OK;
}

/* ---- AT+MQTTCONN ----------------------------------------------------------------------- */

static enum vm_at_result conn_query(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  if (t->state <= 2) {
    vm_at_printf(at, W8_CONN_IDLE_FMT, t->state, t->scheme);
    return VM_AT_OK;
  }
  char path[W8_MAX_PATH + 2] = "";
  if (t->scheme >= 6) snprintf(path, sizeof path, "/%s", t->path);
  vm_at_printf(at, W8_CONN_FMT, t->state, t->scheme, t->host, t->port, path, t->reconnect);
  return VM_AT_OK;
}

/* What esp-mqtt could put in a URI authority. */
static bool host_ok(const char *h) {
  for (; *h; h++) {
    unsigned char c = (unsigned char)*h;
    if (c <= 0x20 || c >= 0x7f || strchr("/?#@\"'\\<>%", c)) return false;
  }
  return true;
}

/* AT+MQTTCONN=<LinkID>,<"host">,<port>,<reconnect>[,<timeout_ms>] */
static enum vm_at_result conn_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  const struct w8_config *cfg = w8_state_of(at)->cfg;
  const char *host;
  size_t hl;
  long port, rec, timeout = cfg->connect_timeout_ms;
  TRY(p_link(a));
  if (t->state == 0) return FAIL(W8_E_NO_CONFIGURED);
  if (t->state >= 4) return FAIL(W8_E_ALREADY_CONNECTED);
  if (t->state == 3 && t->reconnect) return FAIL(W8_E_IN_DISCONNECTED_STATE);
  TRY(p_str(a, 1, W8_MAX_HOST, W8_E_HOST_READ_FAILED, W8_E_HOST_IS_NULL, W8_E_HOST_IS_OVERLENGTH,
            &host, &hl));
  if (!host_ok(host)) return FAIL(W8_E_HOSTNAME_VERIFY_FAILED);
  TRY(p_int(a, 2, 0, 65535, W8_E_PORT_READ_FAILED, W8_E_PORT_VALUE_IS_WRONG, &port));
  TRY(p_int(a, 3, 0, 1, W8_E_RECONNECT_READ_FAILED, W8_E_RECONNECT_VALUE_IS_WRONG, &rec));
  if (a->count == 5 && (vm_at_arg_int(a, 4, &timeout) != VM_AT_ARG_OK ||
                        timeout < W8_TIMEOUT_MIN_MS || timeout > W8_TIMEOUT_MAX_MS))
    return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  if (a->count != 4 && a->count != 5) return FAIL(W8_E_PARAMETER_COUNTS_IS_WRONG);
  copy_field(t->host, sizeof t->host, host, hl);
  t->port = (int)port;
  t->reconnect = rec;
  t->timeout_ms = (unsigned)timeout;
  return w8_conn_start(at, t);
}

/* ---- AT+MQTTPUB / AT+MQTTPUBRAW ----------------------------------------------------------- */

/* AT+MQTTPUB=<LinkID>,<"topic">,<"data">,<qos>,<retain> */
static enum vm_at_result pub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  const char *topic, *data;
  size_t dl;
  long qos, retain;
  TRY(p_link(a));
  if (t->state <= 3) return FAIL(W8_E_NULL_LINK);
  TRY(p_topic(a, 1, &topic));
  TRY(p_str(a, 2, W8_MAX_PUB_DATA, W8_E_DATA_READ_FAILED, 0, W8_E_DATA_IS_OVERLENGTH, &data, &dl));
  TRY(p_int(a, 3, 0, 2, W8_E_QOS_READ_FAILED, W8_E_QOS_VALUE_IS_WRONG, &qos));
  TRY(p_int(a, 4, 0, 1, W8_E_RETAIN_READ_FAILED, W8_E_RETAIN_VALUE_IS_WRONG, &retain));
  TRY(p_count(a, 5));
  return w8_publish(at, t, topic, data, dl, (int)qos, retain, false);
}

static void pubraw_data(struct vm_at *at, enum vm_at_data_status st, const unsigned char *data,
                        size_t len, void *ctx) {
  struct w8_mqtt *t = ctx;
  t->op = W8_OP_NONE;
  if (st != VM_AT_DATA_OK) { /* only with w800.data_timeout_ms */
    vm_log_info(at->name, "MQTT: PUBRAW data not received in time");
    t->data_disc = false;
    vm_at_puts(at, W8_PUB_FAIL);
    vm_at_complete(at, VM_AT_DONE);
    return;
  }
  enum vm_at_result r = w8_publish(at, t, t->op_topic, data, len, t->op_qos, t->op_retain, true);
  if (r != VM_AT_PENDING) vm_at_complete(at, r);
}

/* AT+MQTTPUBRAW=<LinkID>,<"topic">,<length>,<qos>,<retain>: OK and '>', then
 * exactly length raw bytes, then +MQTTPUB:OK or +MQTTPUB:FAIL (no final OK). */
static enum vm_at_result pubraw_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  const char *topic;
  long len, qos, retain;
  TRY(p_link(a));
  if (t->state <= 3) return FAIL(W8_E_NULL_LINK);
  TRY(p_topic(a, 1, &topic));
  TRY(p_int(a, 2, 1, W8_MAX_PUBRAW, W8_E_PUBLISH_LENGTH_READ_FAILED,
            W8_E_PUBLISH_LENGTH_VALUE_IS_WRONG, &len));
  TRY(p_int(a, 3, 0, 2, W8_E_QOS_READ_FAILED, W8_E_QOS_VALUE_IS_WRONG, &qos));
  TRY(p_int(a, 4, 0, 1, W8_E_RETAIN_READ_FAILED, W8_E_RETAIN_VALUE_IS_WRONG, &retain));
  TRY(p_count(a, 5));
  snprintf(t->op_topic, sizeof t->op_topic, "%s", topic);
  t->op_qos = (int)qos;
  t->op_retain = retain;
  struct vm_at_data_req req = {
      .len = (size_t)len,
      .timeout_ms = w8_state_of(at)->cfg->data_timeout_ms,
      .done = pubraw_data,
      .ctx = t,
  };
  if (vm_at_read_data(at, &req) < 0) return FAIL(W8_E_MALLOC_FAILED);
  t->op = W8_OP_DATA;
  t->data_disc = false;
  vm_at_puts(at, W8_PROMPT);
  return VM_AT_PENDING;
}

/* ---- AT+MQTTSUB / AT+MQTTUNSUB ------------------------------------------------------------ */

static enum vm_at_result sub_query(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  if (t->state <= 2) {
    vm_at_printf(at, W8_SUB_IDLE_FMT, t->state);
    return VM_AT_OK;
  }
  for (int i = 0; i < W8_MAX_SUBS; i++)
    if (t->subs[i].used) vm_at_printf(at, W8_SUB_FMT, t->state, t->subs[i].topic, t->subs[i].qos);
  return VM_AT_OK;
}

/* AT+MQTTSUB=<LinkID>,<"topic">,<qos> */
static enum vm_at_result sub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  const char *topic;
  long qos;
  TRY(p_link(a));
  if (t->state <= 3) return FAIL(W8_E_NULL_LINK);
  TRY(p_topic(a, 1, &topic));
  TRY(p_int(a, 2, 0, 2, W8_E_QOS_READ_FAILED, W8_E_QOS_VALUE_IS_WRONG, &qos));
  TRY(p_count(a, 3));
  return w8_subscribe(at, t, topic, (int)qos);
}

/* AT+MQTTUNSUB=<LinkID>,<"topic"> */
static enum vm_at_result unsub_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  const char *topic;
  TRY(p_link(a));
  if (t->state <= 3) return FAIL(W8_E_NULL_LINK);
  TRY(p_topic(a, 1, &topic));
  TRY(p_count(a, 2));
  return w8_unsubscribe(at, t, topic);
}

/* ---- AT+MQTTCLEAN --------------------------------------------------------------------------- */

/* AT+MQTTCLEAN=<LinkID> */
static enum vm_at_result clean_set(struct vm_at *at, const struct vm_at_args *a) {
  struct w8_mqtt *t = mqtt_of(at);
  TRY(p_link(a));
  TRY(p_count(a, 1));
  if (t->state == 0) {
    if (w8_state_of(at)->cfg->clean_idle_ok) return VM_AT_OK; /* the W800 document's reading */
    return FAIL(W8_E_UNINITIATED_OR_ALREADY_CLEAN);
  }
  return w8_clean(at, t);
}

/* ---- the table ------------------------------------------------------------------------------- */

const struct vm_at_cmd w8_mqtt_cmds[] = {
    {.name = "+MQTTUSERCFG", .test = usercfg_test, .query = usercfg_query, .set = usercfg_set,
     .secret_mask = 1u << 4},
    {.name = "+MQTTLONGCLIENTID", .test = longclientid_test, .set = longclientid_set},
    {.name = "+MQTTLONGUSERNAME", .test = longusername_test, .set = longusername_set},
    {.name = "+MQTTLONGPASSWORD", .test = longpassword_test, .set = longpassword_set},
    {.name = "+MQTTCONNCFG", .test = conncfg_test, .query = conncfg_query, .set = conncfg_set},
    {.name = "+MQTTALPN", .test = alpn_test, .query = alpn_query, .set = alpn_set},
    {.name = "+MQTTCONN", .test = conn_test, .query = conn_query, .set = conn_set},
    {.name = "+MQTTPUB", .test = pub_test, .set = pub_set},
    {.name = "+MQTTPUBRAW", .test = pubraw_test, .set = pubraw_set},
    {.name = "+MQTTSUB", .test = sub_test, .query = sub_query, .set = sub_set},
    {.name = "+MQTTUNSUB", .test = unsub_test, .set = unsub_set},
    {.name = "+MQTTCLEAN", .test = clean_test, .set = clean_set},
    /* legacy ESP-AT aliases (not registered by W800, accepted for libraries) */
    {.name = "+MQTTCLIENTID", .set = clientid_set},
    {.name = "+MQTTUSERNAME", .set = username_set},
    {.name = "+MQTTPASSWORD", .set = password_set, .secret_mask = 1u << 1},
};
const size_t w8_mqtt_ncmds = sizeof w8_mqtt_cmds / sizeof w8_mqtt_cmds[0];
