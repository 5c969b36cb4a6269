/* mqtt_tls.c - the OpenSSL client contexts of the MQTT sessions (mqtt.c).
 *
 * One SSL_CTX per distinct TLS configuration, shared by every session that
 * uses it and freed with the last one: an SSL_CTX costs about 9 kB, and a CA
 * bundle is parsed once instead of at every connect of every module. The key
 * is the mode (PSK or X.509), the CA, certificate and key files (path, size
 * and mtime, so an edited file gives a new context), the ALPN list and the
 * insecure flag. Nothing that differs between sessions lives in the CTX:
 * - the PSK identity and key, and whether the server's ticket or Finished
 *   confirmed the handshake, belong to the session in the handshake;
 * - the SNI name and the name (or IP) the certificate must match are set on
 *   the SSL itself when its handshake starts (the info callback is the only
 *   hook between libmosquitto's SSL_new() and its first SSL_connect()).
 * OpenSSL calls back from inside libmosquitto calls only, and mqtt.c makes
 * those one session at a time on one thread, so the session in the handshake
 * is the one vm_mqtt_tls_bind() named; the callbacks also check that the SSL
 * is that session's.
 *
 * The PSK suites are exactly the two the firmware's SDK offers
 * (TLS_PSK_WITH_AES_128_CBC_SHA, TLS_PSK_WITH_AES_256_CBC_SHA): OpenSSL's
 * "PSK" list would negotiate DHE-PSK with a 3072-bit group, about 15 ms of
 * our CPU and 9 ms of the broker's per handshake. Idle connections give their
 * 2 x 16 KiB record buffers back (SSL_MODE_RELEASE_BUFFERS). */
#include "mqtt_tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vmodule/log.h"

#define PSK_CIPHERS "PSK-AES128-CBC-SHA:PSK-AES256-CBC-SHA"

struct file_id {
  char *path;
  off_t size;
  struct timespec mtime;
};

struct tls_entry {
  struct tls_entry *next;
  SSL_CTX *ctx;
  int refs;
  enum vm_mqtt_tls_mode mode;
  struct file_id ca, cert, key;
  char *alpn;
  bool insecure;
};

static struct tls_entry *g_entries;
static struct vm_mqtt *g_current; /* the session whose libmosquitto call runs */

struct vm_mqtt *vm_mqtt_tls_bind(struct vm_mqtt *m) {
  struct vm_mqtt *prev = g_current;
  g_current = m;
  return prev;
}

/* The session an OpenSSL callback is about, or NULL. */
static struct vm_mqtt *session_of(const SSL *ssl) {
  struct vm_mqtt *m = g_current;
  return m && m->mosq && mosquitto_ssl_get(m->mosq) == ssl ? m : NULL;
}

/* ---- per-handshake callbacks ---------------------------------------------------- */

static int reject_cb(int ok, X509_STORE_CTX *store) {
  (void)ok, (void)store;
  return 0;
}

/* Names this session's host on its SSL: SNI (RFC 6066: a name, never an IP
 * literal; libmosquitto set the numeric address it was given) and, when the
 * certificate is checked, the name or address it must carry. */
static void name_the_host(SSL *ssl, const struct vm_mqtt *m) {
  X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

  SSL_set_tlsext_host_name(ssl, m->conf.host_is_ip ? NULL : m->conf.host);
  if (!(SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
    return;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if ((m->conf.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, m->conf.host)
                          : X509_VERIFY_PARAM_set1_host(param, m->conf.host, 0)) != 1) {
    /* out of memory: no certificate can be accepted without the name check */
    vm_log_error(m->who, "mqtt: cannot set the name to verify; refusing the certificate");
    SSL_set_verify(ssl, SSL_VERIFY_PEER, reject_cb);
  }
}

static void info_cb(const SSL *ssl, int where, int ret) {
  struct vm_mqtt *m = session_of(ssl);

  (void)ret;
  if (!m)
    return;
  if (where & SSL_CB_HANDSHAKE_START)
    name_the_host((SSL *)ssl, m); /* const only in the callback's signature */
  if (where & SSL_CB_HANDSHAKE_DONE) {
    m->tls_done = true;
    /* Up to TLS 1.2 the server's Finished comes last: it has accepted us. */
    if (SSL_version(ssl) < TLS1_3_VERSION)
      m->tls_confirmed = true;
  }
}

/* TLS 1.3: our side is done before the server has checked our certificate;
 * a session ticket is the first sign that it accepted us (it may instead send
 * an alert and reset, and the alert can be lost with the reset, so alerts are
 * no help). */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
  struct vm_mqtt *m = session_of(ssl);
  (void)sess;
  if (m)
    m->tls_confirmed = true;
  return 0; /* not kept */
}

static unsigned psk_cb(SSL *ssl, const char *hint, char *identity, unsigned max_identity_len,
                       unsigned char *psk, unsigned max_psk_len) {
  struct vm_mqtt *m = session_of(ssl);
  size_t n;

  (void)hint;
  if (!m || !m->conf.psk_identity)
    return 0;
  n = strlen(m->conf.psk_identity);
  if (n + 1 > max_identity_len || m->conf.psk_len > max_psk_len)
    return 0;
  memcpy(identity, m->conf.psk_identity, n + 1);
  memcpy(psk, m->conf.psk, m->conf.psk_len);
  return m->conf.psk_len;
}

/* ---- building a context ------------------------------------------------------- */

static int tls_fail(const char *who, const char *what, const char *file) {
  char reason[128];
  ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
  ERR_clear_error();
  vm_log_error(who, "mqtt: %s %s: %s", what, file ? file : "", reason);
  return -EINVAL;
}

static int setup_psk(SSL_CTX *ctx) {
  /* Brokers with a psk_file (and the Tencent firmware) speak the TLS 1.2 PSK
   * suites; TLS 1.3 external PSKs are a different mechanism. */
  SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_set_cipher_list(ctx, PSK_CIPHERS) != 1)
    return -EINVAL;
  SSL_CTX_set_psk_client_callback(ctx, psk_cb);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  return 0;
}

/* alpn is "name[,name...]"; OpenSSL wants length-prefixed names back to back. */
static int setup_alpn(SSL_CTX *ctx, const char *alpn) {
  unsigned char wire[512];
  size_t used = 0;

  for (const char *p = alpn;; p++) {
    size_t n = strcspn(p, ",");
    if (n == 0 || n > 255 || used + 1 + n > sizeof wire)
      return -EINVAL;
    wire[used++] = (unsigned char)n;
    memcpy(wire + used, p, n);
    used += n;
    p += n;
    if (!*p)
      break;
  }
  return SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)used) == 0 ? 0 : -EINVAL;
}

/* OpenSSL's default would prompt for the pass phrase of an encrypted key on
 * the terminal, blocking the daemon; refuse instead (the load fails, logged). */
static int no_passphrase_cb(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return 0;
}

static int setup_ca(const char *who, SSL_CTX *ctx, const struct vm_mqtt_opts *o) {
  int ok;

  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
  /* Nothing to verify against when nothing is verified: the system store
   * alone takes some 35 ms to load. */
  ok = o->tls_insecure ? 1
       : o->ca_file    ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                       : SSL_CTX_set_default_verify_paths(ctx);
  if (ok != 1)
    return tls_fail(who, "cannot load CA", o->ca_file);
  if (o->cert_file && SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
    return tls_fail(who, "cannot load client certificate", o->cert_file);
  if (o->cert_file && (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
                       SSL_CTX_check_private_key(ctx) != 1))
    return tls_fail(who, "cannot use client key", o->key_file);
  if (o->alpn && setup_alpn(ctx, o->alpn) < 0)
    return -EINVAL;
  /* The peer check itself is armed per SSL (name_the_host()), with the name. */
  SSL_CTX_set_verify(ctx, o->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
  return 0;
}

static int ctx_build(const char *who, const struct vm_mqtt_opts *o, SSL_CTX **out) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  int rc;

  if (!ctx)
    return -ENOMEM;
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_info_callback(ctx, info_cb);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  rc = o->tls == VM_MQTT_TLS_PSK ? setup_psk(ctx) : setup_ca(who, ctx, o);
  if (rc < 0) {
    SSL_CTX_free(ctx);
    return rc;
  }
  *out = ctx;
  return 0;
}

/* ---- the cache ----------------------------------------------------------------------- */

static bool str_eq(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* A missing file gets size -1: the build then fails and nothing is cached. */
static void file_id_read(struct file_id *f, const char *path) {
  struct stat st;

  f->path = (char *)path;
  f->size = -1;
  memset(&f->mtime, 0, sizeof f->mtime);
  if (path && stat(path, &st) == 0) {
    f->size = st.st_size;
    f->mtime = st.st_mtim;
  }
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b) {
  return str_eq(a->path, b->path) && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
         a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void entry_free(struct tls_entry *e) {
  if (e->ctx)
    SSL_CTX_free(e->ctx);
  free(e->ca.path);
  free(e->cert.path);
  free(e->key.path);
  free(e->alpn);
  free(e);
}

/* The key of o; its paths are borrowed from o until entry_own() copies them. */
static void key_of(struct tls_entry *k, const struct vm_mqtt_opts *o) {
  bool x509 = o->tls == VM_MQTT_TLS_CA;

  memset(k, 0, sizeof *k);
  k->mode = o->tls;
  file_id_read(&k->ca, x509 ? o->ca_file : NULL);
  file_id_read(&k->cert, x509 ? o->cert_file : NULL);
  file_id_read(&k->key, x509 ? o->key_file : NULL);
  k->alpn = x509 ? (char *)o->alpn : NULL;
  k->insecure = x509 && o->tls_insecure;
}

static bool key_eq(const struct tls_entry *a, const struct tls_entry *b) {
  return a->mode == b->mode && file_id_eq(&a->ca, &b->ca) && file_id_eq(&a->cert, &b->cert) &&
         file_id_eq(&a->key, &b->key) && str_eq(a->alpn, b->alpn) && a->insecure == b->insecure;
}

static char *dup_or_null(const char *s, bool *oom) {
  char *d = s ? strdup(s) : NULL;
  if (s && !d)
    *oom = true;
  return d;
}

static struct tls_entry *entry_own(const struct tls_entry *k) {
  struct tls_entry *e = malloc(sizeof *e);
  bool oom = false;

  if (!e)
    return NULL;
  *e = *k;
  e->ca.path = dup_or_null(k->ca.path, &oom);
  e->cert.path = dup_or_null(k->cert.path, &oom);
  e->key.path = dup_or_null(k->key.path, &oom);
  e->alpn = dup_or_null(k->alpn, &oom);
  if (oom) {
    entry_free(e);
    return NULL;
  }
  return e;
}

int vm_mqtt_tls_get(const char *who, const struct vm_mqtt_opts *o, struct ssl_ctx_st **out) {
  struct tls_entry k, *e;
  int rc;

  if (o->tls == VM_MQTT_TLS_CA && o->tls_insecure)
    vm_log_warn(who, "mqtt: server certificate of %s will not be verified", o->host);
  key_of(&k, o);
  for (e = g_entries; e; e = e->next)
    if (key_eq(e, &k)) {
      e->refs++;
      *out = e->ctx;
      return 0;
    }
  if (!(e = entry_own(&k)))
    return -ENOMEM;
  if ((rc = ctx_build(who, o, &e->ctx)) < 0) {
    e->ctx = NULL;
    entry_free(e);
    return rc;
  }
  e->refs = 1;
  e->next = g_entries;
  g_entries = e;
  *out = e->ctx;
  return 0;
}

void vm_mqtt_tls_put(struct ssl_ctx_st *ctx) {
  for (struct tls_entry **p = &g_entries; *p; p = &(*p)->next) {
    struct tls_entry *e = *p;
    if (e->ctx != ctx)
      continue;
    if (--e->refs == 0) {
      *p = e->next;
      entry_free(e); /* libmosquitto sessions still using it hold their own reference */
    }
    return;
  }
}

unsigned vm_mqtt_tls_contexts(void) {
  unsigned n = 0;
  for (const struct tls_entry *e = g_entries; e; e = e->next)
    n++;
  return n;
}
