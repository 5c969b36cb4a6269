/* tc_dynreg.c - dynamic registration in the tencent dialect (reference §3.3,
 * §3.12, §7.2-§7.4): the module's one registration client, and AT+TCDEVREG.
 *
 * The client (tc_dynreg_request()) asks the cloud for a device secret with
 * a product's info: an HTTPS POST of a signed request, the answer's payload
 * decrypted with the product secret. It speaks the API of
 * tencent.dynreg_api: v1, what the firmware sends (POST /register/dev,
 * §7.2), or v2 (POST /device/register with the X-TC-* headers, §7.3). Its
 * users are AT+TCDEVREG here, which stores the new device triple (what
 * AT+TCDEVINFOSET? then shows), and AT+TCSUBDEVREG (tc_subdev.c), which
 * stores a sub-device; the firmware runs both through IOT_DynReg_Device().
 *
 * The exchange runs on the loop through libcurl (src/net/http.c) within the
 * firmware's 10 s budget (tencent.dynreg_timeout_ms); the command stays
 * pending meanwhile, so other lines get `busy p...`. Failures are the codes
 * the firmware's SDK reports (§6.1), the same for both APIs: the cloud's own
 * code (v1 `code`, v2 `Response.Error.Code`); the HTTP client's -8 for
 * anything that fails while connecting (the name, the TCP connect, the TLS
 * handshake, the certificate: see http_code()), -708 when the connection
 * breaks after the request, -9 for HTTP 403, -10 for 404, -4 for anything
 * else; -1001 for an unusable answer and 202 when the budget runs out. A
 * failure is reported when libcurl sees it, not at the end of the budget.
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
  tc_dynreg_cb done;     /* NULL: no registration in flight */
  void *data;
};

static long random_nonce(void) {
  unsigned char r[4];
  if (RAND_bytes(r, sizeof r) != 1) return (long)(uv_hrtime() & 0x7fffffff) | 1;
  long n = (long)(((unsigned long)r[0] << 24 | r[1] << 16 | r[2] << 8 | r[3]) & 0x7fffffffUL);
  return n ? n : 1; /* the SDK's generator never yields 0 */
}

/* ---- the answer (pure, tc_replies.h) ------------------------------------------- */

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

/* The payload member of either answer (§7.4): 0 with the psk, or TC_RC_FAILURE. */
static int payload_psk(const char *product_secret, const cJSON *payload, char *psk, size_t cap) {
  char plain[512];
  if (!cJSON_IsString(payload) ||
      vm_tencent_dynreg_decrypt(plain, sizeof plain, product_secret, payload->valuestring) < 0)
    return TC_RC_FAILURE;
  int rc = psk_of(plain, psk, cap);
  OPENSSL_cleanse(plain, sizeof plain);
  return rc;
}

/* A cloud code: a whole number in the int range, else TC_RC_FAILURE. */
static int code_of(const cJSON *code, long long *c) {
  return vm_json_int(code, INT_MIN, INT_MAX, c) ? 0 : TC_RC_FAILURE;
}

int tc_parse_dynreg_reply(const char *product_secret, const char *body, char *psk, size_t cap) {
  cJSON *doc = cJSON_Parse(body);
  long long c;
  int rc = code_of(cJSON_GetObjectItemCaseSensitive(doc, "code"), &c);
  if (!rc && c != 0) rc = (int)c;
  else if (!rc)
    rc = payload_psk(product_secret, cJSON_GetObjectItemCaseSensitive(doc, "payload"), psk, cap);
  cJSON_Delete(doc);
  return rc;
}

int tc_parse_dynreg_v2_reply(const char *product_secret, const char *body, char *psk, size_t cap) {
  cJSON *doc = cJSON_Parse(body);
  const cJSON *resp = cJSON_GetObjectItemCaseSensitive(doc, "Response");
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(resp, "Error");
  long long c;
  int rc = TC_RC_FAILURE;
  if (!cJSON_IsObject(resp)) {
    /* not a v2 answer: TC_RC_FAILURE */
  } else if (err) {
    /* an Error whose Code is no nonzero whole number is unusable too */
    if (code_of(cJSON_GetObjectItemCaseSensitive(err, "Code"), &c) == 0 && c != 0) rc = (int)c;
  } else {
    rc = payload_psk(product_secret, cJSON_GetObjectItemCaseSensitive(resp, "Payload"), psk, cap);
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

/* Hands the result to the user and forgets the request. */
static void finish(struct tc_dynreg *d, int code, const char *psk) {
  tc_dynreg_cb done = d->done;
  d->done = NULL;
  done(d->s, &d->prd, code, psk, d->data);
  OPENSSL_cleanse(&d->prd, sizeof d->prd);
}

static void reply_done(struct vm_http_req *req, int result, long status, const char *body,
                       size_t len, void *data) {
  struct tc_dynreg *d = data;
  const struct tc_prdinfo *p = &d->prd;
  char psk[TC_MAX_DEV_SECRET + 1] = "";
  (void)req;
  (void)len;
  int code = http_code(result, status);
  if (!code)
    code = (d->s->cfg->dynreg_api == TC_DYNREG_V2 ? tc_parse_dynreg_v2_reply
                                                  : tc_parse_dynreg_reply)(
        p->secret, body ? body : "", psk, sizeof psk);
  if (code)
    vm_log_info(d->s->m->name, "dynamic registration of %s/%s failed: %d (%s, HTTP %ld)", p->pid,
                p->dn, code, result ? strerror(-result) : "answered", status);
  else
    vm_log_info(d->s->m->name, "dynamic registration: device %s of product %s registered", p->dn,
                p->pid);
  finish(d, code, code ? NULL : psk);
  OPENSSL_cleanse(psk, sizeof psk);
}

/* ---- the request ------------------------------------------------------------------ */

/* The authority ("host[:port]") and the path of url, as the request line and
 * the Host header carry them. Returns 0, or -1 when they do not fit. */
static int url_parts(const char *url, char *host, size_t host_cap, char *path, size_t path_cap) {
  const char *a = strstr(url, "://");
  a = a ? a + 3 : url;
  size_t n = strcspn(a, "/?#");
  const char *at = memchr(a, '@', n); /* user info is not part of the Host header */
  if (at) {
    n -= (size_t)(at + 1 - a);
    a = at + 1;
  }
  size_t plen = strcspn(a + n, "?#");
  int hn = snprintf(host, host_cap, "%.*s", (int)n, a);
  int pn = snprintf(path, path_cap, "%.*s", (int)plen, plen ? a + n : "/");
  return hn < 0 || (size_t)hn >= host_cap || pn < 0 || (size_t)pn >= path_cap ? -1 : 0;
}

/* What one request sends: the body and the header lines (NULL-terminated). */
struct dynreg_msg {
  char body[256];
  size_t len;
  char host[320], algo[32], ts[40], nonce[40], sig[96];
  const char *headers[8];
};

/* §7.2: the form-urlencoded content type of a JSON body (sic), no extra header. */
static int msg_v1(struct dynreg_msg *m, const struct tc_prdinfo *p, const char *url, long nonce,
                  long long ts) {
  char sig[VM_TENCENT_DYNREG_SIGN_LEN + 1];
  (void)url;
  if (vm_tencent_dynreg_sign(sig, sizeof sig, p->secret, p->pid, p->dn, nonce, ts) < 0)
    return -1;
  int n = snprintf(m->body, sizeof m->body,
                   "{\"deviceName\":\"%s\",\"nonce\":%ld,\"productId\":\"%s\",\"timestamp\":%lld,"
                   "\"signature\":\"%s\"}",
                   p->dn, nonce, p->pid, ts, sig);
  m->len = (size_t)n;
  m->headers[0] = TC_DYNREG_V1_ACCEPT;
  m->headers[1] = TC_DYNREG_V1_CONTENT_TYPE;
  m->headers[2] = NULL;
  return 0;
}

/* §7.3: a JSON body, signed with the Host header the request carries (set
 * here, so what is signed is what is sent). */
static int msg_v2(struct dynreg_msg *m, const struct tc_prdinfo *p, const char *url, long nonce,
                  long long ts) {
  char host[256], path[256], sig[64];
  if (url_parts(url, host, sizeof host, path, sizeof path)) return -1;
  m->len = (size_t)snprintf(m->body, sizeof m->body, TC_DYNREG_V2_BODY_FMT, p->pid, p->dn);
  if (vm_tencent_dynreg_v2_sign(sig, sizeof sig, p->secret, VM_TENCENT_HMAC_SHA256, host, path, ts,
                                nonce, m->body, m->len) < 0)
    return -1;
  snprintf(m->host, sizeof m->host, "Host: %s", host);
  snprintf(m->algo, sizeof m->algo, "X-TC-Algorithm: %s", TC_DYNREG_V2_ALGORITHM);
  snprintf(m->ts, sizeof m->ts, "X-TC-Timestamp: %lld", ts);
  snprintf(m->nonce, sizeof m->nonce, "X-TC-Nonce: %ld", nonce);
  snprintf(m->sig, sizeof m->sig, "X-TC-Signature: %s", sig);
  const char *h[] = {TC_DYNREG_V2_ACCEPT, TC_DYNREG_V2_CONTENT_TYPE, m->host, m->algo, m->ts,
                     m->nonce, m->sig, NULL};
  memcpy(m->headers, h, sizeof h);
  return 0;
}

static const char *url_of(const struct tc_state *s, const struct tc_prdinfo *p) {
  if (s->cfg->dynreg_url) return s->cfg->dynreg_url;
  if (s->cfg->dynreg_api == TC_DYNREG_V2) return TC_DYNREG_V2_URL;
  return strcmp(p->region, "na-ashburn") == 0 ? TC_DYNREG_URL_US : TC_DYNREG_URL;
}

/* Sends the signed request of d->prd. Returns 0, or the code to fail with. */
static int request_send(struct tc_dynreg *d) {
  struct tc_state *s = d->s;
  const struct tc_prdinfo *p = &d->prd;
  const char *url = url_of(s, p);
  bool v2 = s->cfg->dynreg_api == TC_DYNREG_V2;
  struct dynreg_msg m;

  if (strlen(p->secret) < TC_DYNREG_MIN_SECRET) return TC_RC_FAILURE; /* the SDK's own check */
  if (!s->esp.connected) { /* no network: the lookup or the connect fails */
    vm_log_info(s->m->name, "dynamic registration without Wi-Fi");
    return TC_RC_HTTP_CONN;
  }
  if ((v2 ? msg_v2 : msg_v1)(&m, p, url, random_nonce(), (long long)time(NULL)))
    return TC_RC_FAILURE;
  struct vm_http_opts o = {
      .method = "POST", .url = url, .headers = m.headers, .body = m.body, .body_len = m.len,
      .ca_file = s->cfg->dynreg_ca_file, .connect_timeout_ms = s->cfg->dynreg_timeout_ms,
      .timeout_ms = s->cfg->dynreg_timeout_ms, .max_body = TC_DYNREG_MAX_REPLY, .net = s->m};
  vm_log_info(s->m->name, "dynamic registration (%s) of %s/%s at %s", v2 ? "v2" : "v1", p->pid,
              p->dn, url);
  int rc = vm_http_start(&d->http, &d->req, &o, reply_done, d);
  if (rc < 0) {
    vm_log_warn(s->m->name, "cannot start the registration request: %s", strerror(-rc));
    return TC_RC_FAILURE;
  }
  return 0;
}

int tc_dynreg_request(struct tc_state *s, const struct tc_prdinfo *p, tc_dynreg_cb done,
                      void *data) {
  struct tc_dynreg *d = s->dynreg;
  if (d->done) return TC_RC_FAILURE; /* one at a time, as the firmware's one task */
  d->prd = *p;
  int code = request_send(d);
  if (code) {
    OPENSSL_cleanse(&d->prd, sizeof d->prd);
    return code;
  }
  d->done = done;
  d->data = data;
  return 0;
}

/* ---- AT+TCDEVREG ------------------------------------------------------------------- */

/* The new device triple: the product info's TLS mode, product, name and
 * region with the secret the cloud gave. */
static void devreg_done(struct tc_state *s, const struct tc_prdinfo *p, int code, const char *psk,
                        void *data) {
  struct vm_at *at = &s->m->at;
  (void)data;
  if (code) {
    vm_at_printf(at, TC_DEVREG_FAIL_FMT, code);
    vm_at_complete(at, VM_AT_DONE);
    return;
  }
  struct tc_devinfo dev = {.tls = p->tls};
  strcpy(dev.pid, p->pid);
  strcpy(dev.dn, p->dn);
  strcpy(dev.secret, psk);
  strcpy(dev.region, p->region);
  if (tc_devinfo_store(at, &dev, TC_DEVREG_OK, TC_DEVREG_FAIL_FMT) != VM_AT_PENDING)
    vm_at_complete(at, VM_AT_DONE);
  OPENSSL_cleanse(&dev, sizeof dev);
}

static enum vm_at_result devreg_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_prdinfo p;
  (void)a;
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  vm_at_puts(at, TC_HANDLER_OK);
  int code = tc_prdinfo_load(s, &p) ? TC_E_FLASH : tc_dynreg_request(s, &p, devreg_done, NULL);
  OPENSSL_cleanse(&p, sizeof p);
  if (!code) return VM_AT_PENDING;
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
  s->dynreg->done = NULL;
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
