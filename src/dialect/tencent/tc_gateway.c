/* tc_gateway.c - the gateway commands of the tencent dialect (reference
 * §3.11, §7.6, §7.7): AT+TCGWONLINE puts a sub-device online or offline and
 * lists the online ones, AT+TCGWBIND binds a sub-device to this gateway
 * (signed with the sub-device's secret over the server's time) or unbinds it,
 * and from v2.2.0 on AT+TCGWBIND? lists the sub-devices the cloud has bound
 * to it (describe_sub_devices).
 *
 * Each command is a short exchange with the cloud over the module's own MQTT
 * connection (tc_mqtt.c's service hooks): subscribe once to the result topic
 * (and, to bind, to $sys/operation/result for the time), publish the request
 * QoS 0, wait for the reply about this sub-device; the command is pending
 * meanwhile, bounded by tencent.gateway_timeout_ms (the SDK polls 100 times
 * 200 ms), after which it fails with -223. Sessions - the SDK's record of
 * which sub-devices are online - live as long as the MQTT client.
 *
 * The sub-device secret (given, or on v2.2.0+ the one tc_subdev.c stored) is
 * used only for the signature and wiped at once. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "vmodule/json.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "tc_replies.h"
#include "tencent.h"


enum gw_kind { GW_NONE, GW_ONLINE, GW_OFFLINE, GW_BIND, GW_UNBIND, GW_LIST };
enum gw_step { STEP_SUB_SYS, STEP_TIME, STEP_SUB_GW, STEP_REPLY };

static const char *const kind_type[] = {"", "online", "offline", "bind", "unbind",
                                        "describe_sub_devices"};

struct gw_session {
  bool used, online;
  unsigned seq; /* when it went online: the query's order */
  char pid[TC_MAX_PID + 1], dn[TC_MAX_DN + 1];
};

struct tc_gateway {
  struct tc_state *s;
  uv_timer_t timer;
  struct gw_session sessions[TC_MAX_GW_SESSIONS];
  unsigned seq;
  /* the pending command */
  enum gw_kind kind;
  enum gw_step step;
  int sub_mid;
  long long time; /* the server's, for the bind signature */
  enum vm_at_result done; /* what the handler returns when it ended at once */
  char pid[TC_MAX_PID + 1], dn[TC_MAX_DN + 1], secret[TC_MAX_DEV_SECRET + 1];
};

static struct tc_gateway *gw_of(struct vm_at *at) { return tc_state_of(at)->gw; }

static const char *name_of(enum gw_kind k) {
  return k == GW_BIND || k == GW_UNBIND || k == GW_LIST ? TC_GWBIND : TC_GWONLINE;
}

static void topic_of(const struct tc_gateway *g, const char *fmt, char *out, size_t cap) {
  const struct tc_devinfo *d = tc_mqtt_device(g->s);
  snprintf(out, cap, fmt, d->pid, d->dn);
}

static struct gw_session *session_find(struct tc_gateway *g, const char *pid, const char *dn) {
  for (int i = 0; i < TC_MAX_GW_SESSIONS; i++) {
    struct gw_session *x = &g->sessions[i];
    if (x->used && !strcmp(x->pid, pid) && !strcmp(x->dn, dn)) return x;
  }
  return NULL;
}

/* ---- ending the command ---------------------------------------------------------- */

/* A set command prints its result line; the list query (its lines printed)
 * ends with the core OK, or on any failure with the core ERROR: the
 * handler returns FAIL [LIB220 at_gw_bind_query]. */
static void finish(struct tc_gateway *g, int code) {
  struct vm_at *at = &g->s->m->at;
  enum gw_kind kind = g->kind;
  uv_timer_stop(&g->timer);
  OPENSSL_cleanse(g->secret, sizeof g->secret);
  g->kind = GW_NONE;
  g->done = VM_AT_DONE;
  if (kind == GW_LIST) g->done = code ? vm_at_fail(at, TC_ERR_EXEC) : VM_AT_OK;
  else if (code) vm_at_printf(at, TC_GW_RESULT_FAIL_FMT, name_of(kind), code);
  else vm_at_printf(at, TC_GW_RESULT_OK_FMT, name_of(kind));
  if (vm_at_is_pending(at)) vm_at_complete(at, g->done); /* else the handler returns it */
}

static void timed_out(uv_timer_t *t) {
  struct tc_gateway *g = t->data;
  if (g->kind == GW_NONE) return;
  vm_log_info(g->s->m->name, "gateway: no %s reply for %s/%s", kind_type[g->kind], g->pid, g->dn);
  /* the list request keeps the SDK's -1001 (it fails either way) */
  finish(g, g->kind == GW_LIST ? TC_RC_FAILURE : TC_RC_GW_SESSION_TIMEOUT);
}

/* The cloud's verdict on the sub-device (result of §7.6). */
static void apply_result(struct tc_gateway *g, int result) {
  struct gw_session *x = session_find(g, g->pid, g->dn);
  int code = 0;
  switch (g->kind) {
  case GW_ONLINE:
  case GW_OFFLINE:
    if (result != 0) {
      code = TC_RC_FAILURE;
    } else if (x) {
      x->online = g->kind == GW_ONLINE;
      x->seq = ++g->seq;
    }
    break;
  case GW_BIND:
    code = result == 0 || result == TC_GW_ALREADY_BOUND ? 0 : result;
    break;
  default:
    code = result;
  }
  vm_log_info(g->s->m->name, "gateway: %s of %s/%s: result %d", kind_type[g->kind], g->pid, g->dn,
              result);
  finish(g, code);
}

/* ---- the exchange ---------------------------------------------------------------- */

static void request_send(struct tc_gateway *g) {
  char topic[TC_MAX_TOPIC + 1], msg[512];
  if (g->kind == GW_BIND) {
    char sig[64];
    unsigned char r[4] = {0};
    RAND_bytes(r, sizeof r); /* the SDK's rand(): any non-negative int */
    long rnd = (long)(((unsigned long)r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]) & 0x7fffffff);
    int rc = vm_tencent_gw_bind_sign(sig, sizeof sig, g->pid, g->dn, g->secret, rnd, g->time);
    OPENSSL_cleanse(g->secret, sizeof g->secret);
    if (rc < 0) {
      finish(g, TC_RC_FAILURE);
      return;
    }
    snprintf(msg, sizeof msg, TC_GW_BIND_FMT, g->pid, g->dn, sig, rnd, g->time);
  } else if (g->kind == GW_LIST) {
    snprintf(msg, sizeof msg, "%s", TC_GW_DESCRIBE);
  } else {
    snprintf(msg, sizeof msg, TC_GW_STATUS_FMT, kind_type[g->kind], g->pid, g->dn);
  }
  topic_of(g, TC_GW_TOPIC_FMT, topic, sizeof topic);
  g->step = STEP_REPLY;
  if (tc_mqtt_svc_publish(g->s, topic, msg, 0) < 0) finish(g, TC_RC_FAILURE);
}

static void time_request(struct tc_gateway *g) {
  char topic[TC_MAX_TOPIC + 1];
  topic_of(g, TC_SYS_TOPIC_FMT, topic, sizeof topic);
  g->step = STEP_TIME;
  if (tc_mqtt_svc_publish(g->s, topic, TC_SYS_TIME_GET, 0) < 0) finish(g, TC_RC_FAILURE);
}

/* After the SUBACK of a step's topic (or at once when already subscribed). */
static void step_ready(struct tc_gateway *g) {
  if (g->step == STEP_SUB_SYS) time_request(g);
  else request_send(g);
}

/* Subscribes to a result topic, then goes on with step_ready(). */
static void subscribe_step(struct tc_gateway *g, enum gw_step step, const char *fmt) {
  char topic[TC_MAX_TOPIC + 1];
  topic_of(g, fmt, topic, sizeof topic);
  g->step = step;
  int rc = tc_mqtt_svc_subscribe(g->s, topic, 0);
  if (rc < 0) {
    finish(g, TC_RC_FAILURE);
    return;
  }
  g->sub_mid = rc;
  if (rc == 0) step_ready(g);
}

/* ---- the cloud's replies (pure, tc_replies.h) ----------------------------------- */

int tc_parse_time_reply(const void *payload, size_t len, long long *time) {
  cJSON *doc = cJSON_ParseWithLength(payload, len);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "time");
  int rc = cJSON_IsString(type) && !strcmp(type->valuestring, "get") &&
                   vm_json_int(t, 0, TC_SERVER_TIME_MAX, time)
               ? 0
               : -1;
  cJSON_Delete(doc);
  return rc;
}

int tc_parse_gw_reply(const void *payload, size_t len, const char *kind, const char *pid,
                      const char *dn, int *result) {
  cJSON *doc = cJSON_ParseWithLength(payload, len);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(doc, "payload");
  const cJSON *dev;
  int found = 0;
  if (!cJSON_IsString(type) || strcmp(type->valuestring, kind)) goto out;
  cJSON_ArrayForEach(dev, cJSON_GetObjectItemCaseSensitive(body, "devices")) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(dev, "product_id");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(dev, "device_name");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(dev, "result");
    long long r;
    if (cJSON_IsString(p) && cJSON_IsString(d) && vm_json_int(res, INT_MIN, INT_MAX, &r) &&
        !strcmp(p->valuestring, pid) && !strcmp(d->valuestring, dn)) {
      *result = (int)r;
      found = 1;
      break;
    }
  }
out:
  cJSON_Delete(doc);
  return found;
}

int tc_parse_gw_list(const void *payload, size_t len, struct tc_gw_subdev *out, size_t cap) {
  if (len > TC_GW_REPLY_BUF) return -1;
  cJSON *doc = cJSON_ParseWithLength(payload, len < TC_GW_REPLY_BUF ? len : TC_GW_REPLY_BUF - 1);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "type");
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(doc, "payload");
  const cJSON *devs = cJSON_GetObjectItemCaseSensitive(body, "devices");
  const cJSON *dev;
  int n = -1;
  if (!cJSON_IsString(type) || strcmp(type->valuestring, kind_type[GW_LIST]) || !devs) goto out;
  n = 0;
  if (!cJSON_IsArray(devs)) goto out;
  cJSON_ArrayForEach(dev, devs) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(dev, "product_id");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(dev, "device_name");
    if (!cJSON_IsString(p) || !cJSON_IsString(d)) continue;
    if ((size_t)n == cap) break;
    snprintf(out[n].pid, sizeof out[n].pid, "%s", p->valuestring);
    snprintf(out[n].dn, sizeof out[n].dn, "%s", d->valuestring);
    n++;
  }
  for (int i = 0, j = n - 1; i < j; i++, j--) { /* last first, as the SDK's list */
    struct tc_gw_subdev t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
out:
  cJSON_Delete(doc);
  return n;
}

/* The list reply: its lines, then OK. Anything else is no reply. */
static void list_reply(struct tc_gateway *g, const void *payload, int len) {
  struct tc_gw_subdev list[TC_GW_LIST_MAX];
  int n = tc_parse_gw_list(payload, (size_t)len, list, TC_GW_LIST_MAX);
  if (n < 0) return;
  for (int i = 0; i < n; i++)
    vm_at_printf(&g->s->m->at, TC_GWBIND_LIST_FMT, list[i].pid, list[i].dn);
  vm_log_info(g->s->m->name, "gateway: %d sub-device(s) bound", n);
  finish(g, 0);
}

void tc_gateway_on_message(struct tc_state *s, const char *topic, const void *payload, int len) {
  struct tc_gateway *g = s->gw;
  char sys[TC_MAX_TOPIC + 1];
  if (!g || g->kind == GW_NONE || len < 0) return;
  topic_of(g, TC_SYS_RESULT_TOPIC_FMT, sys, sizeof sys);
  if (g->step == STEP_TIME && !strcmp(topic, sys)) {
    if (tc_parse_time_reply(payload, (size_t)len, &g->time) == 0)
      subscribe_step(g, STEP_SUB_GW, TC_GW_RESULT_TOPIC_FMT);
    else
      vm_log_info(g->s->m->name, "gateway: malformed server time reply ignored");
  } else if (g->step == STEP_REPLY && strcmp(topic, sys) && g->kind == GW_LIST) {
    list_reply(g, payload, len);
  } else if (g->step == STEP_REPLY && strcmp(topic, sys)) {
    int result;
    if (tc_parse_gw_reply(payload, (size_t)len, kind_type[g->kind], g->pid, g->dn, &result))
      apply_result(g, result);
  }
}

void tc_gateway_on_suback(struct tc_state *s, int mid, bool granted) {
  struct tc_gateway *g = s->gw;
  if (!g || g->kind == GW_NONE || mid != g->sub_mid ||
      (g->step != STEP_SUB_SYS && g->step != STEP_SUB_GW))
    return;
  g->sub_mid = 0;
  if (!granted) finish(g, TC_RC_SUB_REFUSED);
  else step_ready(g);
}

/* Starts the exchange of a validated command (its "OK" printed). */
static enum vm_at_result exchange_start(struct tc_gateway *g) {
  uv_timer_start(&g->timer, timed_out, g->s->cfg->gateway_timeout_ms, 0);
  if (g->kind == GW_BIND) subscribe_step(g, STEP_SUB_SYS, TC_SYS_RESULT_TOPIC_FMT);
  else subscribe_step(g, STEP_SUB_GW, TC_GW_RESULT_TOPIC_FMT);
  return g->kind == GW_NONE ? g->done : VM_AT_PENDING; /* finish() may have run */
}

/* ---- parameters ------------------------------------------------------------------ */

static int str_param(const struct vm_at_args *a, int i, size_t max, char *out) {
  const char *v;
  size_t n;
  if (vm_at_arg_str(a, i, &v, &n) != VM_AT_ARG_OK || n == 0 || n > max) return -1;
  memcpy(out, v, n + 1);
  return 0;
}

/* The sub-device secret of a bind into g->secret: parameter 3; from v2.2.0
 * on, when that is absent or empty, the one AT+TCSUBDEVINFOSET stored for
 * the sub-device [LIB220 at_gw_bind_setup]. *need is the parameter count the
 * command must have. Returns 0, or -1 (204: none, or a bad one). */
static int bind_secret(struct tc_gateway *g, const struct vm_at_args *a, int *need) {
  bool stored = tc_subdev_supported(g->s);
  const char *v = "";
  size_t n = 0;
  *need = stored && a->count == 3 ? 3 : 4;
  if (*need == 4 && vm_at_arg_str(a, 3, &v, &n) != VM_AT_ARG_OK) return -1;
  if (stored && n == 0) return tc_subdev_secret(g->s, g->pid, g->dn, g->secret, sizeof g->secret);
  if (n == 0 || n > TC_MAX_DEV_SECRET) return -1;
  memcpy(g->secret, v, n + 1);
  return 0;
}

/* <mode 0|1>,"<pid>","<dn>" then, for a bind (mode 0 of AT+TCGWBIND), its
 * secret. Returns 0, or -1 with *r the reply (ERROR or +CME ERROR:204). */
static int gw_params(struct vm_at *at, const struct vm_at_args *a, struct tc_gateway *g,
                     bool bind, long *mode, enum vm_at_result *r) {
  if (vm_at_arg_int(a, 0, mode) != VM_AT_ARG_OK) {
    *r = vm_at_fail(at, TC_ERR_TYPE);
    return -1;
  }
  int need = 3;
  if ((*mode != 0 && *mode != 1) || str_param(a, 1, TC_MAX_PID, g->pid) ||
      str_param(a, 2, TC_MAX_DN, g->dn) || (bind && *mode == 0 && bind_secret(g, a, &need)) ||
      a->count != need) {
    OPENSSL_cleanse(g->secret, sizeof g->secret);
    *r = tc_cme(at, TC_E_PARA);
    return -1;
  }
  return 0;
}

/* ---- AT+TCGWONLINE ------------------------------------------------------------------ */

static enum vm_at_result online_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_GWONLINE_TEST);
  return VM_AT_OK;
}

/* The online sub-devices in the order they went online. */
static enum vm_at_result online_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_gateway *g = gw_of(at);
  unsigned last = 0;
  (void)a;
  for (;;) {
    struct gw_session *next = NULL;
    for (int i = 0; i < TC_MAX_GW_SESSIONS; i++) {
      struct gw_session *x = &g->sessions[i];
      if (x->used && x->online && x->seq > last && (!next || x->seq < next->seq)) next = x;
    }
    if (!next) return VM_AT_OK;
    vm_at_printf(at, TC_GWONLINE_LIST_FMT, next->pid, next->dn);
    last = next->seq;
  }
}

/* AT+TCGWONLINE=<mode 0 online|1 offline>,"<pid>","<dn>" */
static enum vm_at_result online_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_gateway *g = gw_of(at);
  enum vm_at_result r;
  long mode;
  if (!tc_mqtt_connected(g->s)) return tc_cme(at, TC_E_STATE);
  if (gw_params(at, a, g, false, &mode, &r)) return r;
  vm_at_puts(at, TC_HANDLER_OK);
  g->kind = mode == 0 ? GW_ONLINE : GW_OFFLINE;
  struct gw_session *x = session_find(g, g->pid, g->dn);
  int code = 0;
  if (g->kind == GW_ONLINE && x && x->online) code = TC_RC_GW_ONLINE;
  else if (g->kind == GW_OFFLINE && !x) code = TC_RC_GW_NO_SESSION;
  else if (g->kind == GW_OFFLINE && !x->online) code = TC_RC_GW_OFFLINE;
  if (!code && !x) { /* the SDK creates the session before asking the cloud */
    for (int i = 0; i < TC_MAX_GW_SESSIONS && !x; i++)
      if (!g->sessions[i].used) x = &g->sessions[i];
    if (!x) code = TC_RC_GW_CREATE_SESSION;
    else *x = (struct gw_session){.used = true};
    if (x) {
      strcpy(x->pid, g->pid);
      strcpy(x->dn, g->dn);
    }
  }
  if (!code) return exchange_start(g);
  vm_at_printf(at, TC_GW_RESULT_FAIL_FMT, TC_GWONLINE, code);
  g->kind = GW_NONE;
  return VM_AT_DONE;
}

/* ---- AT+TCGWBIND -------------------------------------------------------------------- */

static enum vm_at_result bind_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_GWBIND_TEST);
  return VM_AT_OK;
}

/* v2.2.0+: the sub-devices bound to this gateway, from the cloud. The
 * firmware's handler checks no state [LIB220 at_gw_bind_query]: without a
 * connection the SDK's request fails (no client: -220; reconnecting: the
 * publish fails), and any failure, no reply included, is the core ERROR. */
static enum vm_at_result bind_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_gateway *g = gw_of(at);
  (void)a;
  if (!tc_subdev_supported(g->s)) return vm_at_fail(at, TC_ERR_NO_FORM); /* v2.1.1 */
  if (!tc_mqtt_connected(g->s)) return vm_at_fail(at, TC_ERR_EXEC);
  g->kind = GW_LIST;
  g->pid[0] = g->dn[0] = '\0';
  return exchange_start(g);
}

/* AT+TCGWBIND=0,"<pid>","<dn>","<secret>" (bind) / =1,"<pid>","<dn>" (unbind);
 * v2.2.0+ also =0,"<pid>","<dn>"[,""] with the stored secret. */
static enum vm_at_result bind_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_gateway *g = gw_of(at);
  enum vm_at_result r;
  long mode;
  if (!tc_mqtt_connected(g->s)) return tc_cme(at, TC_E_STATE);
  if (gw_params(at, a, g, true, &mode, &r)) return r;
  vm_at_puts(at, TC_HANDLER_OK);
  g->kind = mode == 0 ? GW_BIND : GW_UNBIND;
  return exchange_start(g);
}

/* The sub-device secret (index 3 of TCGWBIND) is redacted in traces. */
const struct vm_at_cmd tc_gateway_cmds[] = {
    {.name = TC_GWBIND, .test = bind_test, .query = bind_query, .set = bind_set,
     .secret_mask = 1u << 3},
    {.name = TC_GWONLINE, .test = online_test, .query = online_query, .set = online_set},
};
const size_t tc_gateway_ncmds = sizeof tc_gateway_cmds / sizeof tc_gateway_cmds[0];

/* ---- life cycle ------------------------------------------------------------------- */

int tc_gateway_init(struct tc_state *s) {
  struct tc_gateway *g = calloc(1, sizeof *g);
  if (!g) return -1;
  g->s = s;
  s->gw = g;
  uv_timer_init(s->m->loop, &g->timer);
  g->timer.data = g;
  return 0;
}

/* A pending command keeps waiting: its reply cannot come, so it times out. */
void tc_gateway_task_end(struct tc_state *s) {
  if (s->gw) memset(s->gw->sessions, 0, sizeof s->gw->sessions);
}

void tc_gateway_power_off(struct tc_state *s) {
  struct tc_gateway *g = s->gw;
  uv_timer_stop(&g->timer);
  g->kind = GW_NONE;
  OPENSSL_cleanse(g->secret, sizeof g->secret);
  memset(g->sessions, 0, sizeof g->sessions);
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

void tc_gateway_destroy(struct tc_state *s) {
  if (!s->gw) return;
  OPENSSL_cleanse(s->gw->secret, sizeof s->gw->secret);
  uv_close((uv_handle_t *)&s->gw->timer, timer_closed);
  s->gw = NULL;
}
