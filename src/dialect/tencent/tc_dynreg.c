/* tc_dynreg.c - AT+TCDEVREG, dynamic registration of the tencent dialect
 * (reference §3.3, §7.2, §7.4): with the product info of AT+TCPRDINFOSET the
 * module asks the cloud for its device secret (HTTPS POST of a signed request
 * to /register/dev), decrypts the answer with the product secret and stores
 * the new device triple, which AT+TCDEVINFOSET? then shows.
 *
 * The exchange runs on the loop through libcurl (src/net/http.c) within the
 * firmware's 10 s budget (tencent.dynreg_timeout_ms); the command stays
 * pending meanwhile, so other lines get `busy p...`. Failures are reported as
 * the firmware's SDK reports them (§6.1): the cloud's own `code`; the HTTP
 * client's -8 for anything that fails while connecting (the name, the TCP
 * connect, the TLS handshake, the certificate: see http_code()), -708 when
 * the connection breaks after the request, -9 for HTTP 403, -10 for 404, -4
 * for anything else; -1001 for an unusable answer, 202 when the budget runs
 * out and 207 when the flash write fails. A failure is reported when libcurl
 * sees it, not at the end of the budget.
 *
 * Neither secret is logged: the request carries only the signature, and the
 * answer's payload is the encrypted device secret. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "vmodule/http.h"
#include "vmodule/json.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "tc_replies.h"
#include "tencent.h"


struct tc_dynreg {
  struct tc_state *s;
  struct vm_http http;
  struct vm_http_req req;
  struct tc_prdinfo prd; /* the product info the request was signed with; wiped after */
};

static const char *url_of(const struct tc_state *s, const struct tc_prdinfo *p) {
  if (s->cfg->dynreg_url) return s->cfg->dynreg_url;
  return strcmp(p->region, "na-ashburn") == 0 ? TC_DYNREG_URL_US : TC_DYNREG_URL;
}

static long random_nonce(void) {
  unsigned char r[4];
  if (RAND_bytes(r, sizeof r) != 1) return (long)(uv_hrtime() & 0x7fffffff) | 1;
  long n = (long)(((unsigned long)r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]) & 0x7fffffffUL);
  return n ? n : 1; /* the SDK's generator never yields 0 */
}

/* ---- the answer ------------------------------------------------------------------ */

/* The device secret in the decrypted payload, {"encryptionType":2,"psk":"..."}.
 * Returns 0, or TC_RC_FAILURE (a certificate device, or no usable key). */
static int psk_of(const char *plain, char *psk, size_t cap) {
  cJSON *doc = cJSON_Parse(plain);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "encryptionType");
  const cJSON *key = cJSON_GetObjectItemCaseSensitive(doc, "psk");
  int rc = TC_RC_FAILURE;
  if (vm_json_int(type, TC_DYNREG_PSK_TYPE, TC_DYNREG_PSK_TYPE, NULL) && cJSON_IsString(key) &&
      key->valuestring[0] && strlen(key->valuestring) < cap) {
    strcpy(psk, key->valuestring);
    rc = 0;
  }
  if (cJSON_IsString(key)) OPENSSL_cleanse(key->valuestring, strlen(key->valuestring));
  cJSON_Delete(doc);
  return rc;
}

int tc_parse_dynreg_reply(const char *product_secret, const char *body, char *psk, size_t cap) {
  cJSON *doc = cJSON_Parse(body);
  const cJSON *code = cJSON_GetObjectItemCaseSensitive(doc, "code");
  const cJSON *payload = cJSON_GetObjectItemCaseSensitive(doc, "payload");
  char plain[512];
  long long c;
  int rc = TC_RC_FAILURE;
  if (!vm_json_int(code, INT_MIN, INT_MAX, &c)) {
    /* no usable code: TC_RC_FAILURE */
  } else if (c != 0) {
    rc = (int)c;
  } else if (cJSON_IsString(payload) &&
             vm_tencent_dynreg_decrypt(plain, sizeof plain, product_secret, payload->valuestring) >= 0) {
    rc = psk_of(plain, psk, cap);
    OPENSSL_cleanse(plain, sizeof plain);
  }
  cJSON_Delete(doc);
  return rc;
}

/* An HTTP-level failure as the SDK's HTTP client reports it (utils_httpc.c
 * of the 3.1.x and 3.2.x C SDKs). Its connect step returns
 * QCLOUD_ERR_HTTP_CONN for any failure of network_stack.connect, which is
 * HAL_TLS_Connect: the lookup, the TCP connect, the handshake and the
 * certificate check all end there. A read after the request that fails
 * (reset, or closed without an answer) is HAL_TLS_Read's QCLOUD_ERR_SSL_READ.
 * Its blocking connect outlasts the AT command's budget, so a timeout is
 * the budget's 202. */
static int http_code(int result, long status) {
  switch (result) {
  case 0: break;
  case -ETIMEDOUT: return TC_E_TIMEOUT; /* the AT command's budget ran out first */
  case -EHOSTUNREACH:
  case -ECONNREFUSED:
  case -EMFILE: /* the firmware's socket() failed: its connect step failed */
  case -EPROTO: return TC_RC_HTTP_CONN;
  case -ECONNRESET: return TC_RC_SSL_READ;
  case -EFBIG: return TC_RC_FAILURE; /* does not fit the SDK's buffer either */
  default: return TC_RC_HTTP_UNKNOWN;
  }
  if (status == 403) return TC_RC_HTTP_AUTH;
  if (status == 404) return TC_RC_HTTP_NOT_FOUND;
  return 0; /* any other status: the body decides */
}

static void finish(struct tc_dynreg *d, int code) {
  struct vm_at *at = &d->s->m->at;
  vm_at_printf(at, TC_DEVREG_FAIL_FMT, code);
  vm_at_complete(at, VM_AT_DONE);
}

static void reply_done(struct vm_http_req *req, int result, long status, const char *body,
                       size_t len, void *data) {
  struct tc_dynreg *d = data;
  struct tc_state *s = d->s;
  struct tc_devinfo dev = {.tls = d->prd.tls};
  (void)req;
  (void)len;
  int code = http_code(result, status);
  if (!code)
    code = tc_parse_dynreg_reply(d->prd.secret, body ? body : "", dev.secret, sizeof dev.secret);
  if (code) {
    vm_log_info(s->m->name, "dynamic registration of %s/%s failed: %d (%s, HTTP %ld)", d->prd.pid,
                d->prd.dn, code, result ? strerror(-result) : "answered", status);
    OPENSSL_cleanse(&d->prd, sizeof d->prd);
    finish(d, code);
    return;
  }
  strcpy(dev.pid, d->prd.pid);
  strcpy(dev.dn, d->prd.dn);
  strcpy(dev.region, d->prd.region);
  OPENSSL_cleanse(&d->prd, sizeof d->prd);
  vm_log_info(s->m->name, "dynamic registration: device %s of product %s registered", dev.dn,
              dev.pid);
  if (tc_devinfo_store(&s->m->at, &dev, TC_DEVREG_OK, TC_DEVREG_FAIL_FMT) != VM_AT_PENDING)
    vm_at_complete(&s->m->at, VM_AT_DONE);
  OPENSSL_cleanse(&dev, sizeof dev);
}

/* ---- AT+TCDEVREG ------------------------------------------------------------------- */

/* Sends the signed request of §7.2. Returns 0, or the code to fail with. */
static int request_start(struct tc_dynreg *d) {
  struct tc_state *s = d->s;
  const struct tc_prdinfo *p = &d->prd;
  const char *url = url_of(s, p);
  char sig[VM_TENCENT_DYNREG_SIGN_LEN + 1], body[256];
  long nonce = random_nonce();
  long long ts = (long long)time(NULL);

  if (strlen(p->secret) < TC_DYNREG_MIN_SECRET) return TC_RC_FAILURE; /* the SDK's own check */
  if (!s->esp.connected) { /* no network: the lookup or the connect fails */
    vm_log_info(s->m->name, "dynamic registration without Wi-Fi");
    return TC_RC_HTTP_CONN;
  }
  if (vm_tencent_dynreg_sign(sig, sizeof sig, p->secret, p->pid, p->dn, nonce, ts) < 0)
    return TC_RC_FAILURE;
  int n = snprintf(body, sizeof body,
                   "{\"deviceName\":\"%s\",\"nonce\":%ld,\"productId\":\"%s\",\"timestamp\":%lld,"
                   "\"signature\":\"%s\"}",
                   p->dn, nonce, p->pid, ts, sig);
  static const char *const headers[] = {"Accept: text/xml,application/json;*/*",
                                        "Content-Type: application/x-www-form-urlencoded", NULL};
  struct vm_http_opts o = {
      .method = "POST", .url = url, .headers = headers, .body = body, .body_len = (size_t)n,
      .ca_file = s->cfg->dynreg_ca_file, .connect_timeout_ms = s->cfg->dynreg_timeout_ms,
      .timeout_ms = s->cfg->dynreg_timeout_ms, .max_body = TC_DYNREG_MAX_REPLY, .net = s->m};
  vm_log_info(s->m->name, "dynamic registration of %s/%s at %s", p->pid, p->dn, url);
  int rc = vm_http_start(&d->http, &d->req, &o, reply_done, d);
  if (rc < 0) {
    vm_log_warn(s->m->name, "cannot start the registration request: %s", strerror(-rc));
    return TC_RC_FAILURE;
  }
  return 0;
}

static enum vm_at_result devreg_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_dynreg *d = s->dynreg;
  (void)a;
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  vm_at_puts(at, TC_HANDLER_OK);
  int code = tc_prdinfo_load(s, &d->prd) ? TC_E_FLASH : request_start(d);
  if (!code) return VM_AT_PENDING;
  OPENSSL_cleanse(&d->prd, sizeof d->prd);
  vm_at_printf(at, TC_DEVREG_FAIL_FMT, code);
  return VM_AT_DONE;
}

const struct vm_at_cmd tc_dynreg_cmds[] = {
    {.name = "+TCDEVREG", .test = vm_at_handle_ok, .exec = devreg_exec},
};
const size_t tc_dynreg_ncmds = sizeof tc_dynreg_cmds / sizeof tc_dynreg_cmds[0];

/* ---- life cycle ------------------------------------------------------------------- */

int tc_dynreg_init(struct tc_state *s) {
  struct tc_dynreg *d = calloc(1, sizeof *d);
  if (!d) return -1;
  d->s = s;
  s->dynreg = d;
  return vm_http_init(&d->http, s->m->loop, s->m->name) < 0 ? -1 : 0;
}

void tc_dynreg_power_off(struct tc_state *s) {
  if (!s->dynreg) return;
  vm_http_cancel(&s->dynreg->req); /* the reset loses the request and its answer */
  OPENSSL_cleanse(&s->dynreg->prd, sizeof s->dynreg->prd);
}

static void http_closed(struct vm_http *h) {
  free((char *)h - offsetof(struct tc_dynreg, http));
}

void tc_dynreg_destroy(struct tc_state *s) {
  struct tc_dynreg *d = s->dynreg;
  if (!d) return;
  s->dynreg = NULL;
  OPENSSL_cleanse(&d->prd, sizeof d->prd);
  vm_http_close(&d->http, http_closed);
}
