/* me_auth.c - AT+CLOUDAUTH of the me3630 dialect and the MQTT credentials it
 * yields (w800-me3630-at.md §8.1, §9).
 *
 * Two modes (me3630.aliyun.auth_mode): "direct" computes the §9 credentials
 * locally (client id "<cid>|securemode=..,signmethod=..[,timestamp=..]|",
 * username "<dn>&<pk>", HMAC password) and reports +ALIAUTH: OK after
 * aliyun.auth_ms; "https" posts the signed device triple to the guider URL,
 * as the 2017 firmware did, and keeps the iotId/iotToken and the broker the
 * server returns for CLOUDCONN. Either way the command answers OK as soon as
 * its input is valid and reports the outcome as a URC: +ALIAUTH: OK, +ALIAUTH:
 * FAIL (the server refused), +CME ERROR: <n> (no data path, server or
 * transfer error). The triple stays in RAM until CLOUDDISCONN or a reset. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vmodule/json.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "me3630.h"
#include "me_auth_reply.h"

static struct vm_at *at_of(struct me_state *s) { return &s->m->at; }

static const char *who(struct me_state *s) { return s->m->name; }

/* ---- credentials (§9) --------------------------------------------------------- */

static struct vm_aliyun_device device_of(const struct me_state *s) {
  const struct me_cloud *c = &s->cloud;
  return (struct vm_aliyun_device){
      .product_key = c->pk, .device_name = c->dn, .device_secret = c->ds,
      .client_id = s->cfg->client_id,
      .timestamp = s->cfg->timestamp[0] ? s->cfg->timestamp : NULL};
}

/* securemode: 2 TLS direct, 3 TCP direct; the guider flow -1 TLS, 0 TCP. */
static int securemode_of(const struct me_state *s) {
  const struct me_config *cfg = s->cfg;
  bool tls = cfg->transport == ME_TRANSPORT_TLS;
  if (cfg->securemode != ME_SECUREMODE_AUTO) return cfg->securemode;
  if (s->cloud.have_token) return tls ? -1 : 0;
  return tls ? 2 : 3;
}

int me_auth_creds(struct me_state *s, struct me_creds *k) {
  const struct me_config *cfg = s->cfg;
  const struct me_cloud *c = &s->cloud;
  struct vm_aliyun_device d = device_of(s);
  if (vm_aliyun_mqtt_client_id(k->client_id, sizeof k->client_id, &d, cfg->signmethod,
                               securemode_of(s)) < 0)
    return -1;
  if (c->have_token) { /* the guider's answer names the broker and the login */
    snprintf(k->host, sizeof k->host, "%s", c->host);
    k->port = c->port;
    snprintf(k->username, sizeof k->username, "%s", c->iot_id);
    snprintf(k->password, sizeof k->password, "%s", c->iot_token);
    return 0;
  }
  if (vm_aliyun_mqtt_username(k->username, sizeof k->username, &d) < 0 ||
      vm_aliyun_sign(k->password, sizeof k->password, &d, cfg->signmethod) < 0)
    return -1;
  if (cfg->mqtt_host) snprintf(k->host, sizeof k->host, "%s", cfg->mqtt_host);
  else if (vm_aliyun_mqtt_host(k->host, sizeof k->host, c->pk, cfg->region) < 0) return -1;
  k->port = cfg->mqtt_port;
  return 0;
}

/* ---- AT+CLOUDAUTH ---------------------------------------------------------------- */

void me_auth_forget(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  c->authed = c->have_token = false;
  explicit_bzero(c->ds, sizeof c->ds);
  explicit_bzero(c->iot_token, sizeof c->iot_token);
}

/* +ALIAUTH: OK / FAIL, or (code > 0) +CME ERROR: <code>. */
static void auth_result(struct me_state *s, bool ok, int code) {
  struct me_cloud *c = &s->cloud;
  struct vm_at *at = at_of(s);
  c->auth_busy = false;
  c->authed = ok && !code;
  if (code) me_cme_urc(at, code);
  else if (ok) vm_at_urc(at, ME_ALIAUTH_OK, strlen(ME_ALIAUTH_OK));
  else vm_at_urc(at, ME_ALIAUTH_FAIL, strlen(ME_ALIAUTH_FAIL));
}

static void auth_direct_done(uv_timer_t *t) {
  struct me_state *s = t->data;
  struct me_creds k;
  int rc = me_auth_creds(s, &k);
  explicit_bzero(&k, sizeof k);
  if (rc < 0) vm_log_warn(who(s), "Aliyun: the device triple does not give valid credentials");
  auth_result(s, rc == 0, 0);
}

int me_auth_parse_reply(long status, const char *body, struct me_auth_reply *out) {
  cJSON *doc = cJSON_Parse(body);
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
  const cJSON *mqtt = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(data, "resources"), "mqtt");
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "iotId");
  const cJSON *token = cJSON_GetObjectItemCaseSensitive(data, "iotToken");
  const cJSON *host = cJSON_GetObjectItemCaseSensitive(mqtt, "host");
  const cJSON *port = cJSON_GetObjectItemCaseSensitive(mqtt, "port");
  long long c = 0, p;
  bool have_code = vm_json_int(code, INT_MIN, INT_MAX, &c);
  int r;
  memset(out, 0, sizeof *out);
  out->code = (int)c;
  if (status == 200 && have_code && c == 200 && cJSON_IsString(id) && cJSON_IsString(token) &&
      cJSON_IsString(host) && vm_json_int(port, 1, 65535, &p) &&
      strlen(id->valuestring) < sizeof out->iot_id &&
      strlen(token->valuestring) < sizeof out->iot_token &&
      strlen(host->valuestring) < sizeof out->host) {
    strcpy(out->iot_id, id->valuestring);
    strcpy(out->iot_token, token->valuestring);
    strcpy(out->host, host->valuestring);
    out->port = (int)p;
    r = 1;
  } else if ((status >= 400 && status < 500) || (cJSON_IsNumber(code) && c != 200)) {
    r = 0;
  } else {
    r = -1;
  }
  if (cJSON_IsString(token)) explicit_bzero(token->valuestring, strlen(token->valuestring));
  cJSON_Delete(doc);
  return r;
}

/* The guider's answer into the cloud state. Returns 1 success, 0 refusal,
 * -1 not an answer (me_auth_parse_reply). */
static int auth_parse(struct me_state *s, long status, const char *body) {
  struct me_cloud *c = &s->cloud;
  struct me_auth_reply a;
  int r = me_auth_parse_reply(status, body, &a);
  if (r == 1) {
    strcpy(c->iot_id, a.iot_id);
    strcpy(c->iot_token, a.iot_token);
    strcpy(c->host, a.host);
    c->port = a.port;
    c->have_token = true;
  } else if (r == 0) {
    vm_log_info(who(s), "Aliyun: the auth server refused the device (HTTP %ld, code %d)", status,
                a.code);
  } else {
    vm_log_warn(who(s), "Aliyun: unusable answer from the auth server (HTTP %ld)", status);
  }
  explicit_bzero(&a, sizeof a);
  return r;
}

static void auth_http_done(struct vm_http_req *req, int result, long status, const char *body,
                           size_t len, void *data) {
  struct me_state *s = data;
  (void)len;
  if (result < 0) { /* every way of failing is ME_E_SERVER (me3630.h) */
    vm_log_warn(who(s), "Aliyun: auth request to %s failed: %s (%s)", s->cfg->auth_url,
                strerror(-result), req->error);
    auth_result(s, false, ME_E_SERVER);
    return;
  }
  int r = auth_parse(s, status, body);
  auth_result(s, r == 1, r < 0 ? ME_E_SERVER : 0);
}

static int auth_https_start(struct me_state *s) {
  const struct me_config *cfg = s->cfg;
  struct vm_aliyun_device d = device_of(s);
  char form[1024];
  if (!d.timestamp) d.timestamp = VM_ALIYUN_SDK_TIMESTAMP; /* the guider needs one */
  int n = vm_aliyun_auth_form(form, sizeof form, &d, cfg->signmethod);
  if (n < 0) return n;
  static const char *const headers[] = {
      "Content-Type: application/x-www-form-urlencoded;charset=utf-8",
      "Accept: text/xml,text/javascript,text/html,application/json", NULL};
  struct vm_http_opts o = {
      .method = "POST", .url = cfg->auth_url, .headers = headers, .body = form,
      .body_len = (size_t)n, .ca_file = cfg->auth_ca_file, .timeout_ms = cfg->auth_timeout_ms,
      .connect_timeout_ms = cfg->auth_timeout_ms, .max_body = 4096, .net = s->m};
  int rc = vm_http_start(&s->cloud.http, &s->cloud.req, &o, auth_http_done, s);
  explicit_bzero(form, sizeof form);
  return rc;
}

static enum vm_at_result auth_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  struct me_cloud *c = &s->cloud;
  const char *pk, *dn, *ds;
  if (a->count != 3 || me_text_param(a, 0, ME_MAX_FIELD, &pk) || me_text_param(a, 1, ME_MAX_FIELD, &dn) ||
      me_text_param(a, 2, ME_MAX_FIELD, &ds))
    return VM_AT_ERROR;
  if (c->mq || c->auth_busy) return me_cme(at, ME_E_NOT_ALLOWED); /* CLOUDDISCONN first */
  vm_at_reply_ok(at); /* "OK means the input is valid" [ME-doc §1.1] */
  int e = me_cell_data_ready(s);
  if (e) { /* the authentication cannot reach any server */
    vm_log_info(who(s), "Aliyun: CLOUDAUTH without a data path (+CME ERROR: %d)", e);
    return me_cme(at, e);
  }
  me_auth_forget(s);
  strcpy(c->pk, pk);
  strcpy(c->dn, dn);
  strcpy(c->ds, ds);
  if (s->cfg->auth_mode == ME_AUTH_HTTPS) {
    int rc = auth_https_start(s);
    if (rc < 0) {
      vm_log_warn(who(s), "Aliyun: cannot start the auth request: %s", strerror(-rc));
      return me_cme(at, ME_E_SERVER);
    }
  } else {
    uv_timer_start(&c->auth_timer, auth_direct_done, s->cfg->auth_ms, 0);
  }
  c->auth_busy = true;
  return VM_AT_DONE;
}

/* ---- life cycle ------------------------------------------------------------------- */

const struct vm_at_cmd me_auth_cmds[] = {
    {.name = "+CLOUDAUTH", .set = auth_set, .secret_mask = 0x4}, /* <dsrt> */
};
const size_t me_auth_ncmds = sizeof me_auth_cmds / sizeof me_auth_cmds[0];

int me_auth_init(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  uv_timer_init(s->m->loop, &c->auth_timer);
  c->auth_timer.data = s;
  return vm_http_init(&c->http, s->m->loop, s->m->name) < 0 ? -1 : 0;
}

void me_auth_on_call_down(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  if (!c->auth_busy) return;
  vm_http_cancel(&c->req); /* the authentication loses its server */
  uv_timer_stop(&c->auth_timer);
  auth_result(s, false, ME_E_SERVER);
}

void me_auth_power_off(struct me_state *s) {
  struct me_cloud *c = &s->cloud;
  vm_http_cancel(&c->req);
  uv_timer_stop(&c->auth_timer);
  c->auth_busy = false;
  me_auth_forget(s);
}

void me_auth_destroy(struct me_state *s) {
  uv_close((uv_handle_t *)&s->cloud.auth_timer, NULL);
  vm_http_close(&s->cloud.http, NULL);
}
