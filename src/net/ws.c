/* ws.c - the WebSocket(+TLS) client transport for MQTT (W800 schemes 6-10).
 *
 * libmosquitto 2.0.11 cannot speak WebSocket, so it talks plain MQTT to a
 * unix-domain listener owned by this relay, and the relay speaks RFC 6455 to the
 * broker: HTTP/1.1 Upgrade with `Sec-WebSocket-Protocol: mqtt` and a checked
 * Sec-WebSocket-Accept, then every chunk libmosquitto writes goes out as one
 * masked binary frame, and the payload of the broker's binary frames (whole or
 * fragmented) is written back to libmosquitto. Pings get pongs; a close frame
 * is answered and ends the relay.
 *
 * TLS runs over memory BIOs: bytes read from the uv_tcp_t go into the read
 * BIO, OpenSSL's output is drained from the write BIO into uv_write(), so the
 * handshake and records never block the loop and need no poll juggling.
 *
 * Connecting walks the resolver's addresses in order on one uv_tcp_t (a
 * fresh one per address) under one deadline: a refused or unreachable
 * address moves on at once; a silent one is abandoned once its share of the
 * time left (time left / addresses left) is up, as in mqtt.c.
 *
 * Life cycle: the conn struct holds every handle; vm_ws_close() (always
 * called by the owner, even after a failure) closes what is still open and
 * frees the struct from the last close callback. Internal failures close the
 * network side at once but leave the struct for vm_ws_close().
 *
 * The local side is a unix stream socket, not loopback TCP: it spares every
 * message a second trip through the TCP stack (and its ACKs), and no other
 * user can connect to it. It lives in a fresh 0700 directory (mkdtemp under
 * $TMPDIR or /tmp); socket file and directory are removed as soon as
 * libmosquitto's connection is accepted.
 *
 * Flow control: a side stops reading while the other side's write queue holds
 * more than HIGH_WATER bytes, so a slow broker or a slow libmosquitto cannot
 * make the relay buffer without bound. */
#include "vmodule/ws.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/un.h>
#include <arpa/inet.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "vmodule/log.h"
#include "vmodule/netfault.h"

#define DEFAULT_TIMEOUT_MS 10000
#define CLOSE_DEADLINE_MS 1000 /* graceful end: flush, close frame, FIN */
#define READ_CHUNK 65536
#define HIGH_WATER (1u << 20)
#define LOW_WATER (256u << 10)
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define UNIX_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* ======================================================================
 * Protocol helpers (pure)
 * ====================================================================== */

static void b64(const unsigned char *in, size_t n, char *out) {
  EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

void vm_ws_key(const unsigned char nonce[16], char out[VM_WS_KEY_LEN + 1]) { b64(nonce, 16, out); }

void vm_ws_accept(const char *key, char out[VM_WS_ACCEPT_LEN + 1]) {
  unsigned char md[SHA_DIGEST_LENGTH];
  char buf[128 + sizeof WS_GUID];
  int n = snprintf(buf, sizeof buf, "%.128s%s", key, WS_GUID);
  EVP_Digest(buf, (size_t)n, md, NULL, EVP_sha1(), NULL);
  b64(md, sizeof md, out);
}

int vm_ws_request(char *buf, size_t cap, const char *host, int port, bool tls, const char *path,
                  const char *key, const char *protocol) {
  char hostport[300];
  bool v6 = strchr(host, ':') != NULL;
  bool dflt = port == (tls ? 443 : 80);
  if (dflt)
    snprintf(hostport, sizeof hostport, v6 ? "[%s]" : "%s", host);
  else
    snprintf(hostport, sizeof hostport, v6 ? "[%s]:%d" : "%s:%d", host, port);
  int n = snprintf(buf, cap,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "%s%s%s"
                   "\r\n",
                   path, hostport, key, protocol ? "Sec-WebSocket-Protocol: " : "",
                   protocol ? protocol : "", protocol ? "\r\n" : "");
  if (n < 0 || (size_t)n >= cap) return -ENOSPC;
  return n;
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static bool has_token(const char *v, size_t n, const char *token) {
  size_t tl = strlen(token), i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
    size_t s = i;
    while (i < n && v[i] != ',') i++;
    size_t e = i;
    while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
    if (e - s == tl && strncasecmp(v + s, token, tl) == 0) return true;
  }
  return false;
}

static const char *find_crlfcrlf(const char *buf, size_t len) {
  for (size_t i = 0; i + 3 < len; i++)
    if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n')
      return buf + i;
  return NULL;
}

int vm_ws_parse_reply(const char *buf, size_t len, const char *accept, const char *protocol,
                      int *status) {
  *status = 0;
  const char *eol = memchr(buf, '\n', len);
  if (eol) {
    /* "HTTP/1.1 101 Switching Protocols" */
    if (eol - buf < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0) return VM_WS_HS_MALFORMED;
    const char *p = buf + 9;
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9' || p[2] < '0' || p[2] > '9' ||
        (p[3] != ' ' && p[3] != '\r'))
      return VM_WS_HS_MALFORMED;
    *status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
  }
  const char *end = find_crlfcrlf(buf, len);
  if (!end) return len >= VM_WS_MAX_REPLY ? VM_WS_HS_TOO_LONG : 0;
  if (*status != 101) return VM_WS_HS_STATUS;
  bool upgrade = false, connection = false, accepted = false, proto_ok = protocol == NULL;
  const char *line = eol + 1;
  while (line < end + 2) {
    const char *le = memchr(line, '\n', (size_t)(end + 2 - line));
    if (!le) break;
    size_t ll = (size_t)(le - line);
    if (ll && line[ll - 1] == '\r') ll--;
    const char *colon = memchr(line, ':', ll);
    if (!colon) {
      if (ll) return VM_WS_HS_MALFORMED;
      line = le + 1;
      continue;
    }
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = ll - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
#define IS(name) (nl == strlen(name) && strncasecmp(line, name, nl) == 0)
    if (IS("Upgrade")) upgrade = has_token(v, vl, "websocket");
    else if (IS("Connection")) connection = has_token(v, vl, "upgrade");
    else if (IS("Sec-WebSocket-Accept"))
      accepted = vl == VM_WS_ACCEPT_LEN && memcmp(v, accept, vl) == 0;
    else if (IS("Sec-WebSocket-Protocol")) {
      /* the server may only pick what we offered (RFC 6455 4.1) */
      if (!protocol || vl != strlen(protocol) || memcmp(v, protocol, vl) != 0)
        return VM_WS_HS_PROTOCOL;
      proto_ok = true;
    }
#undef IS
    line = le + 1;
  }
  if (!upgrade || !connection) return VM_WS_HS_UPGRADE;
  if (!accepted) return VM_WS_HS_ACCEPT;
  (void)proto_ok; /* a server that names no subprotocol is tolerated */
  return (int)(end + 4 - buf);
}

size_t vm_ws_frame_header(unsigned char out[VM_WS_MAX_HEADER], int opcode, bool fin, uint64_t len,
                          const unsigned char *mask) {
  size_t n = 0;
  out[n++] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 0x0f));
  unsigned char m = mask ? 0x80 : 0;
  if (len < 126) {
    out[n++] = (unsigned char)(m | len);
  } else if (len <= 0xffff) {
    out[n++] = m | 126;
    out[n++] = (unsigned char)(len >> 8);
    out[n++] = (unsigned char)len;
  } else {
    out[n++] = m | 127;
    for (int i = 7; i >= 0; i--) out[n++] = (unsigned char)(len >> (8 * i));
  }
  if (mask) {
    memcpy(out + n, mask, 4);
    n += 4;
  }
  return n;
}

/* dst = src ^ mask, eight bytes at a time where possible (dst may be src). */
static void mask_copy(unsigned char *dst, const unsigned char *src, size_t len,
                      const unsigned char mask[4], size_t phase) {
  size_t i = 0;
  for (; i < len && ((phase + i) & 3); i++) dst[i] = src[i] ^ mask[(phase + i) & 3];
  if (len - i >= 8) {
    uint64_t m8;
    unsigned char mb[8];
    for (int k = 0; k < 8; k++) mb[k] = mask[k & 3];
    memcpy(&m8, mb, 8);
    for (; len - i >= 8; i += 8) {
      uint64_t w;
      memcpy(&w, src + i, 8);
      w ^= m8;
      memcpy(dst + i, &w, 8);
    }
  }
  for (; i < len; i++) dst[i] = src[i] ^ mask[(phase + i) & 3];
}

void vm_ws_mask(unsigned char *buf, size_t len, const unsigned char mask[4], size_t phase) {
  mask_copy(buf, buf, len, mask, phase & 3);
}

enum { PS_HEAD = 0, PS_PAYLOAD };

void vm_ws_parser_init(struct vm_ws_parser *p) {
  memset(p, 0, sizeof *p);
  p->state = PS_HEAD;
  p->hdr_need = 2;
}

/* The header is complete in p->hdr: checks it and prepares the payload. */
static int parse_header(struct vm_ws_parser *p) {
  unsigned char b0 = p->hdr[0], b1 = p->hdr[1];
  p->fin = b0 & 0x80;
  p->opcode = b0 & 0x0f;
  p->masked = b1 & 0x80;
  if (b0 & 0x70) return VM_WS_PE_PROTOCOL; /* no extension was negotiated */
  if (p->masked) return VM_WS_PE_PROTOCOL; /* servers must not mask (RFC 6455 5.1) */
  uint64_t len = b1 & 0x7f;
  size_t off = 2;
  if (len == 126) {
    len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
    off = 4;
  } else if (len == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = (len << 8) | p->hdr[2 + i];
    off = 10;
    if (len >> 63) return VM_WS_PE_TOO_BIG;
  }
  (void)off;
  bool control = p->opcode & 0x08;
  if (control) {
    if (p->opcode > VM_WS_OP_PONG || !p->fin || len > 125) return VM_WS_PE_PROTOCOL;
  } else if (p->opcode == VM_WS_OP_TEXT) {
    return VM_WS_PE_DATA;
  } else if (p->opcode == VM_WS_OP_BINARY) {
    if (p->in_message) return VM_WS_PE_PROTOCOL; /* a new message inside a fragmented one */
    p->in_message = !p->fin;
  } else if (p->opcode == VM_WS_OP_CONT) {
    if (!p->in_message) return VM_WS_PE_PROTOCOL;
    p->in_message = !p->fin;
  } else {
    return VM_WS_PE_PROTOCOL; /* reserved data opcode */
  }
  p->remaining = len;
  p->done = 0;
  p->ctl_len = 0;
  return 0;
}

/* Bytes of header still needed once the first two are known. */
static size_t header_size(const unsigned char *h) {
  size_t n = 2;
  unsigned l = h[1] & 0x7f;
  if (l == 126) n += 2;
  else if (l == 127) n += 8;
  if (h[1] & 0x80) n += 4;
  return n;
}

int vm_ws_parse(struct vm_ws_parser *p, const unsigned char *in, size_t n,
                const struct vm_ws_parse_cbs *cb, void *ctx) {
  size_t i = 0;
  for (;;) {
    if (p->state == PS_HEAD) {
      while (p->hdr_len < p->hdr_need && i < n) {
        p->hdr[p->hdr_len++] = in[i++];
        if (p->hdr_len == 2) p->hdr_need = header_size(p->hdr);
      }
      if (p->hdr_len < p->hdr_need) return 0;
      int rc = parse_header(p);
      if (rc) return rc;
      p->state = PS_PAYLOAD;
    }
    /* PS_PAYLOAD (possibly empty) */
    size_t take = (size_t)((uint64_t)(n - i) < p->remaining ? (uint64_t)(n - i) : p->remaining);
    if (p->opcode & 0x08) {
      memcpy(p->ctl + p->ctl_len, in + i, take);
      p->ctl_len += take;
    } else if (take && cb->data) {
      cb->data(ctx, in + i, take);
    }
    i += take;
    p->remaining -= take;
    p->done += take;
    if (p->remaining) return 0;
    p->state = PS_HEAD;
    p->hdr_len = 0;
    p->hdr_need = 2;
    if ((p->opcode & 0x08) && cb->control && cb->control(ctx, p->opcode, p->ctl, p->ctl_len))
      return 1;
    if (i == n) return 0;
  }
}

/* ======================================================================
 * The relay
 * ====================================================================== */

enum conn_state {
  ST_RESOLVING,
  ST_CONNECTING,
  ST_TLS,
  ST_UPGRADE,
  ST_OPEN,
  ST_ENDING, /* close frame sent / shutting down with flush */
  ST_DEAD,   /* network side closed; waiting for vm_ws_close() */
};

enum side { UP = 0, LOCAL = 1 };

struct gai_req {
  uv_getaddrinfo_t req; /* first: the callback casts back */
  struct vm_ws_conn *c; /* NULL once detached */
};

/* What a side's socket did not take at once. One uv_write() is in flight
 * from `fly`; bytes sent meanwhile gather in `next`, which goes out when it
 * completes. Both buffers are kept for reuse: a flood that outruns
 * libmosquitto would otherwise allocate (and page-fault) one per read. */
struct outq {
  uv_write_t req;
  enum side side;
  unsigned char *fly, *next;
  size_t fly_len, next_len, fly_cap, next_cap;
  bool busy;
};

struct vm_ws_conn {
  struct vm_ws *ws;
  uv_loop_t *loop;
  const char *who;
  struct vm_ws_cbs cbs;
  enum conn_state st;

  /* options */
  char *host, *path, *protocol;
  int port, timeout_ms;
  bool tls, verify, host_is_ip;

  /* net faults */
  struct vm_module *net;
  struct vm_netlink link;    /* in the registry while net is set */
  struct vm_netrelay *relay; /* connecting upstream for the address being tried */

  /* TLS */
  SSL_CTX *ctx;
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl once set */
  bool hs_done;

  /* handles (each *_open flag: initialised and not yet uv_close()d) */
  uv_tcp_t up;
  uv_pipe_t listener, local; /* unix-domain: libmosquitto's side */
  bool up_open, listener_open, local_open, timer_open;
  uv_timer_t timer;
  uv_connect_t creq;
  uv_shutdown_t up_sreq, local_sreq;
  int closes_pending;

  struct gai_req *gai;
  struct addrinfo *addrs, *addr_next;
  char ip[INET6_ADDRSTRLEN]; /* the address being tried (numeric) */
  uint64_t deadline;         /* uv_now() at which the connect attempt times out */
  char local_path[UNIX_PATH_MAX]; /* local_dir + "/mqtt" */
  char local_dir[UNIX_PATH_MAX - 5]; /* the listener's private directory; "" once removed */

  /* handshake */
  char key[VM_WS_KEY_LEN + 1], accept[VM_WS_ACCEPT_LEN + 1];
  char reply[VM_WS_MAX_REPLY];
  size_t reply_len;

  /* relay */
  struct vm_ws_parser parser;
  bool local_connected, local_eof, up_eof;
  unsigned char *early; /* broker payload that arrived before libmosquitto connected */
  size_t early_len;
  size_t queued[2];  /* bytes in each side's write queue (out[side]) */
  struct outq out[2];
  bool reading[2];   /* uv_read_start active */
  bool paused[2];    /* reading stopped by flow control */
  unsigned char *acc; /* downstream payload gathered from one read */
  size_t acc_len, acc_cap;
  unsigned char rnd[256];
  size_t rnd_pos;
  bool close_sent;
  int shutdowns_pending;

  /* owner */
  bool opened;       /* on_open() ran */
  bool notified_end; /* on_close() ran (or must not run) */
  bool user_closed;  /* vm_ws_close() was called */
  bool graceful;
  void (*close_cb)(struct vm_ws *ws);

  unsigned char rbuf[2][READ_CHUNK]; /* read buffers, one per side */
  unsigned char plain[16384 + 64];   /* SSL_read output */
  unsigned char fbuf[READ_CHUNK + VM_WS_MAX_HEADER]; /* an outgoing frame */
  unsigned char wbuf[READ_CHUNK];    /* TLS records on their way out */
};

static void conn_teardown(struct vm_ws_conn *c);
static void listener_close(struct vm_ws_conn *c);
static void relay_end(struct vm_ws_conn *c, enum vm_ws_end why, int close_code);
static void up_plain_in(struct vm_ws_conn *c, const unsigned char *p, size_t n);
static void flow_update(struct vm_ws_conn *c);

const char *vm_ws_strerror(int rc) {
  switch (rc) {
  case 0: return "open";
  case VM_WS_E_DNS: return "DNS lookup failed";
  case VM_WS_E_TCP: return "TCP connect failed";
  case VM_WS_E_TLS: return "TLS handshake failed";
  case VM_WS_E_HTTP: return "WebSocket upgrade refused";
  case VM_WS_E_TIMEOUT: return "timed out";
  case VM_WS_E_CLOSED: return "closed by the server during the handshake";
  }
  return "unknown error";
}

/* ---- small helpers ------------------------------------------------------ */

static uv_stream_t *side_stream(struct vm_ws_conn *c, enum side s) {
  return s == UP ? (uv_stream_t *)&c->up : (uv_stream_t *)&c->local;
}

static void outq_free(struct outq *q) {
  free(q->fly);
  free(q->next);
  q->fly = q->next = NULL;
  q->fly_cap = q->next_cap = q->fly_len = q->next_len = 0;
}

static bool is_ip_literal(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void random_bytes(struct vm_ws_conn *c, unsigned char *out, size_t n) {
  if (c->rnd_pos + n > sizeof c->rnd) {
    if (RAND_bytes(c->rnd, sizeof c->rnd) != 1) {
      /* the mask only has to be unpredictable to page scripts (RFC 6455
       * 10.3); a failing DRBG still must not stop the relay */
      for (size_t i = 0; i < sizeof c->rnd; i++) c->rnd[i] = (unsigned char)(uv_hrtime() >> (i & 31));
    }
    c->rnd_pos = 0;
  }
  memcpy(out, c->rnd + c->rnd_pos, n);
  c->rnd_pos += n;
}

static void log_ssl_errors(struct vm_ws_conn *c, const char *what) {
  char line[200] = "";
  unsigned long e;
  while ((e = ERR_get_error()) != 0) ERR_error_string_n(e, line, sizeof line);
  long v = c->ssl ? SSL_get_verify_result(c->ssl) : X509_V_OK;
  if (v != X509_V_OK)
    vm_log_warn(c->who, "ws: %s: certificate of %s: %s", what, c->host,
                X509_verify_cert_error_string(v));
  else
    vm_log_warn(c->who, "ws: %s with %s:%d%s%s", what, c->host, c->port, line[0] ? ": " : "", line);
}

/* ---- handle closing ----------------------------------------------------- */

static void conn_free(struct vm_ws_conn *c) {
  struct vm_ws *ws = c->ws; /* NULL: detached after a failed vm_ws_connect() */
  void (*cb)(struct vm_ws *) = c->close_cb;
  vm_netlink_remove(&c->link);
  if (c->ssl) SSL_free(c->ssl);
  if (c->ctx) SSL_CTX_free(c->ctx);
  if (c->addrs) uv_freeaddrinfo(c->addrs);
  free(c->host);
  free(c->path);
  free(c->protocol);
  free(c->early);
  free(c->acc);
  outq_free(&c->out[UP]);
  outq_free(&c->out[LOCAL]);
  OPENSSL_cleanse(c->reply, sizeof c->reply);
  free(c);
  if (!ws) return;
  ws->c = NULL;
  if (cb) cb(ws);
}

static void maybe_free(struct vm_ws_conn *c) {
  if (c->user_closed && c->st == ST_DEAD && c->closes_pending == 0) conn_free(c);
}

static void handle_closed(uv_handle_t *h) {
  struct vm_ws_conn *c = h->data;
  c->closes_pending--;
  maybe_free(c);
}

static void close_handle(struct vm_ws_conn *c, uv_handle_t *h, bool *open) {
  if (!*open) return;
  *open = false;
  c->closes_pending++;
  uv_close(h, handle_closed);
}

/* Closes every network handle now (pending writes are cancelled). The conn
 * stays until vm_ws_close() and the last close callback. */
static void conn_teardown(struct vm_ws_conn *c) {
  c->st = ST_DEAD;
  if (c->relay) {
    vm_netrelay_release(c->relay);
    c->relay = NULL;
  }
  if (c->gai) { /* a lookup cannot be cancelled reliably: detach it */
    c->gai->c = NULL;
    uv_cancel((uv_req_t *)&c->gai->req);
    c->gai = NULL;
  }
  close_handle(c, (uv_handle_t *)&c->timer, &c->timer_open);
  listener_close(c);
  close_handle(c, (uv_handle_t *)&c->local, &c->local_open);
  close_handle(c, (uv_handle_t *)&c->up, &c->up_open);
  maybe_free(c);
}

/* ---- notifications ------------------------------------------------------ */

static void notify_open(struct vm_ws_conn *c, int rc) {
  if (c->opened) return;
  c->opened = true;
  if (rc) c->notified_end = true; /* a failed open has no on_close */
  if (!c->user_closed && c->cbs.on_open) c->cbs.on_open(c->ws, rc);
}

static void notify_end(struct vm_ws_conn *c, enum vm_ws_end why) {
  if (c->notified_end || !c->opened) return;
  c->notified_end = true;
  if (!c->user_closed && c->cbs.on_close) c->cbs.on_close(c->ws, why);
}

/* The attempt failed before the relay opened. */
static void connect_failed(struct vm_ws_conn *c, int rc) {
  if (c->st == ST_DEAD) return;
  vm_log_info(c->who, "ws: %s:%d: %s", c->host, c->port, vm_ws_strerror(rc));
  conn_teardown(c);
  notify_open(c, rc);
}

/* ---- writing ------------------------------------------------------------ */

#define OUTQ_KEEP (256u << 10) /* larger buffers are freed once drained */

static int grow(unsigned char **buf, size_t *cap, size_t need) {
  if (need <= *cap) return 0;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  unsigned char *p = realloc(*buf, n);
  if (!p) return -ENOMEM;
  *buf = p;
  *cap = n;
  return 0;
}

static void write_done(uv_write_t *req, int status);

/* Puts `next` in flight. */
static int outq_start(struct vm_ws_conn *c, struct outq *q) {
  unsigned char *b = q->fly;
  size_t cap = q->fly_cap;
  q->fly = q->next;
  q->fly_cap = q->next_cap;
  q->fly_len = q->next_len;
  q->next = b;
  q->next_cap = cap;
  q->next_len = 0;
  uv_buf_t ub = uv_buf_init((char *)q->fly, (unsigned)q->fly_len);
  q->req.data = c;
  int rc = uv_write(&q->req, side_stream(c, q->side), &ub, 1, write_done);
  q->busy = rc == 0;
  return rc;
}

static void write_done(uv_write_t *req, int status) {
  struct vm_ws_conn *c = req->data;
  struct outq *q = (struct outq *)req;
  c->queued[q->side] -= q->fly_len;
  q->fly_len = 0;
  q->busy = false;
  if (q->fly_cap > OUTQ_KEEP) {
    free(q->fly);
    q->fly = NULL;
    q->fly_cap = 0;
  }
  if (c->st == ST_DEAD) return;
  if (status < 0) {
    vm_log_info(c->who, "ws: write to %s failed: %s", q->side == UP ? "the broker" : "libmosquitto",
                uv_strerror(status));
    relay_end(c, VM_WS_END_ERROR, 0);
    return;
  }
  if (q->next_len && outq_start(c, q) < 0) {
    relay_end(c, VM_WS_END_ERROR, 0);
    return;
  }
  flow_update(c);
}

/* Sends p[0..n) on a side: written at once when the socket takes it and
 * nothing is queued before it (the common case: no copy), the rest queued. */
static int stream_send(struct vm_ws_conn *c, enum side side, const unsigned char *p, size_t n) {
  struct outq *q = &c->out[side];
  if (!n) return 0;
  if (c->queued[side] == 0) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int done = uv_try_write(side_stream(c, side), &b, 1);
    if (done < 0 && done != UV_EAGAIN) return done;
    if (done > 0) {
      p += done;
      n -= (size_t)done;
    }
    if (!n) return 0;
  }
  if (grow(&q->next, &q->next_cap, q->next_len + n) < 0) return -ENOMEM;
  memcpy(q->next + q->next_len, p, n);
  q->next_len += n;
  c->queued[side] += n;
  if (!q->busy) {
    int rc = outq_start(c, q);
    if (rc < 0) return rc;
  }
  return 0;
}

/* Moves what OpenSSL produced to the network. */
static int tls_flush(struct vm_ws_conn *c) {
  for (;;) {
    int n = BIO_read(c->wbio, c->wbuf, (int)sizeof c->wbuf);
    if (n <= 0) return 0;
    int rc = stream_send(c, UP, c->wbuf, (size_t)n);
    if (rc < 0) return rc;
  }
}

/* Sends bytes to the broker (through TLS when enabled). */
static int up_send(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  if (!c->tls) return stream_send(c, UP, p, n);
  ERR_clear_error();
  while (n) {
    int r = SSL_write(c->ssl, p, (int)(n > 1u << 30 ? 1u << 30 : n));
    if (r <= 0) {
      log_ssl_errors(c, "TLS write failed");
      return -EIO;
    }
    p += r;
    n -= (size_t)r;
  }
  return tls_flush(c);
}

/* One masked frame carrying p[0..n), built in wbuf (or a heap buffer when
 * larger than one read). */
static int send_frame(struct vm_ws_conn *c, int opcode, const unsigned char *p, size_t n) {
  unsigned char mask[4], hdr[VM_WS_MAX_HEADER];
  random_bytes(c, mask, 4);
  size_t h = vm_ws_frame_header(hdr, opcode, true, n, mask);
  unsigned char *buf = h + n <= sizeof c->fbuf ? c->fbuf : malloc(h + n);
  if (!buf) return -ENOMEM;
  memcpy(buf, hdr, h);
  mask_copy(buf + h, p, n, mask, 0);
  int rc = up_send(c, buf, h + n);
  if (buf != c->fbuf) free(buf);
  return rc;
}

static int send_close(struct vm_ws_conn *c, int code) {
  if (c->close_sent) return 0;
  c->close_sent = true;
  unsigned char body[2] = {(unsigned char)(code >> 8), (unsigned char)code};
  return send_frame(c, VM_WS_OP_CLOSE, body, code ? 2 : 0);
}

static int local_send(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  return stream_send(c, LOCAL, p, n);
}

/* ---- ending ----------------------------------------------------------------- */

static void end_deadline(uv_timer_t *t) {
  struct vm_ws_conn *c = t->data;
  if (c->st != ST_DEAD) conn_teardown(c);
}

static void shutdown_done(uv_shutdown_t *req, int status) {
  struct vm_ws_conn *c = req->data;
  (void)status;
  if (--c->shutdowns_pending == 0 && c->st != ST_DEAD) conn_teardown(c);
}

/* Flushes both directions (pending writes go out), sends FIN, then closes;
 * bounded by CLOSE_DEADLINE_MS. */
static void finish(struct vm_ws_conn *c) {
  if (c->st == ST_ENDING || c->st == ST_DEAD) return;
  c->st = ST_ENDING;
  if (c->tls && c->ssl && c->hs_done) {
    SSL_shutdown(c->ssl); /* close_notify */
    tls_flush(c);
  }
  for (int s = 0; s < 2; s++) {
    uv_stream_t *st = side_stream(c, (enum side)s);
    bool open = s == UP ? c->up_open : c->local_open && c->local_connected;
    if (c->reading[s]) {
      uv_read_stop(st);
      c->reading[s] = false;
    }
    uv_shutdown_t *req = s == UP ? &c->up_sreq : &c->local_sreq;
    req->data = c;
    if (open && uv_shutdown(req, st, shutdown_done) == 0) c->shutdowns_pending++;
  }
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, end_deadline, CLOSE_DEADLINE_MS, 0);
  if (c->shutdowns_pending == 0) conn_teardown(c);
}

/* The relay ends: tell the owner, answer/send a close frame when the
 * protocol allows, and close. */
static void relay_end(struct vm_ws_conn *c, enum vm_ws_end why, int close_code) {
  if (c->st == ST_ENDING || c->st == ST_DEAD) return;
  if (why != VM_WS_END_ERROR || close_code) send_close(c, close_code ? close_code : 1000);
  if (why == VM_WS_END_ERROR && !close_code) conn_teardown(c);
  else finish(c);
  notify_end(c, why);
}

/* ---- flow control ---------------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct vm_ws_conn *c = h->data;
  int side = h == (uv_handle_t *)&c->up ? UP : LOCAL;
  (void)suggested;
  *buf = uv_buf_init((char *)c->rbuf[side], READ_CHUNK);
}

static void read_set(struct vm_ws_conn *c, enum side s, bool on) {
  uv_stream_t *st = side_stream(c, (enum side)s);
  if (on == c->reading[s]) return;
  if (on && uv_read_start(st, alloc_cb, on_read) < 0) return;
  if (!on) uv_read_stop(st);
  c->reading[s] = on;
}

/* Reading a side stops while the other side has too much queued. */
static void flow_update(struct vm_ws_conn *c) {
  if (c->st != ST_OPEN) return;
  for (int s = 0; s < 2; s++) {
    int other = 1 - s;
    bool eof = s == UP ? c->up_eof : c->local_eof;
    if (!c->paused[s] && c->queued[other] > HIGH_WATER) c->paused[s] = true;
    else if (c->paused[s] && c->queued[other] < LOW_WATER) c->paused[s] = false;
    bool can = !eof && !c->paused[s] && (s == UP || c->local_connected);
    read_set(c, (enum side)s, can);
  }
}

/* ---- downstream: broker -> libmosquitto ---------------------------------------- */

static void acc_data(void *ctx, const unsigned char *p, size_t n) {
  struct vm_ws_conn *c = ctx;
  memcpy(c->acc + c->acc_len, p, n); /* frames_parse made room for its whole input */
  c->acc_len += n;
}

static void deliver(struct vm_ws_conn *c, const unsigned char *p, size_t n);
static void acc_flush(struct vm_ws_conn *c);

static int on_control(void *ctx, int opcode, const unsigned char *p, size_t n) {
  struct vm_ws_conn *c = ctx;
  /* data that came before this frame goes first: a close below shuts the
   * local side for writing */
  acc_flush(c);
  if (c->st != ST_OPEN) return 1;
  if (opcode == VM_WS_OP_PING) {
    if (send_frame(c, VM_WS_OP_PONG, p, n) < 0) relay_end(c, VM_WS_END_ERROR, 0);
    return c->st != ST_OPEN;
  }
  if (opcode == VM_WS_OP_CLOSE) {
    int code = n >= 2 ? (p[0] << 8 | p[1]) : 0;
    vm_log_info(c->who, "ws: the broker closed the WebSocket (code %d)", code);
    /* echo the status code, as RFC 6455 5.5.1 suggests */
    relay_end(c, VM_WS_END_PEER, code ? code : 1000);
    return 1;
  }
  return 0; /* pong: nothing to do */
}

static const struct vm_ws_parse_cbs parse_cbs = {.data = acc_data, .control = on_control};

static void deliver(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  if (!n) return;
  if (!c->local_connected) { /* keep it until libmosquitto is there */
    unsigned char *nb = realloc(c->early, c->early_len + n);
    if (!nb) {
      relay_end(c, VM_WS_END_ERROR, 1011);
      return;
    }
    memcpy(nb + c->early_len, p, n);
    c->early = nb;
    c->early_len += n;
    return;
  }
  if (local_send(c, p, n) < 0) relay_end(c, VM_WS_END_ERROR, 1011);
}

/* Parses frames and appends their payload to acc without delivering it, so
 * that everything one network read yields (over TLS: many records, one per
 * message with small publishes) reaches libmosquitto in a single write. A
 * protocol error delivers what came before it and ends the relay. */
static void frames_parse(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  if (c->acc_cap - c->acc_len < n) { /* payload never exceeds its input */
    size_t cap = c->acc_cap * 2 > c->acc_len + n ? c->acc_cap * 2 : c->acc_len + n;
    unsigned char *nb = realloc(c->acc, cap);
    if (!nb) {
      relay_end(c, VM_WS_END_ERROR, 1011);
      return;
    }
    c->acc = nb;
    c->acc_cap = cap;
  }
  int rc = vm_ws_parse(&c->parser, p, n, &parse_cbs, c);
  if (rc < 0) {
    acc_flush(c);
    vm_log_warn(c->who, "ws: protocol error from the broker (closing with %d)", -rc);
    relay_end(c, VM_WS_END_ERROR, -rc);
  }
}

/* Hands the gathered payload to libmosquitto (dropped once the relay is
 * torn down). */
static void acc_flush(struct vm_ws_conn *c) {
  size_t n = c->acc_len;
  c->acc_len = 0;
  if (n && (c->st == ST_OPEN || c->st == ST_ENDING)) deliver(c, c->acc, n);
}

static void frames_in(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  frames_parse(c, p, n);
  acc_flush(c);
}

/* ---- the Upgrade --------------------------------------------------------------- */

static void send_request(struct vm_ws_conn *c) {
  unsigned char nonce[16];
  char req[1024];
  random_bytes(c, nonce, sizeof nonce);
  vm_ws_key(nonce, c->key);
  vm_ws_accept(c->key, c->accept);
  int n = vm_ws_request(req, sizeof req, c->host, c->port, c->tls, c->path, c->key, c->protocol);
  c->st = ST_UPGRADE;
  if (n < 0 || up_send(c, (unsigned char *)req, (size_t)n) < 0) connect_failed(c, VM_WS_E_TCP);
}

static void upgrade_in(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  size_t room = sizeof c->reply - c->reply_len;
  size_t take = n < room ? n : room;
  memcpy(c->reply + c->reply_len, p, take);
  c->reply_len += take;
  int status;
  int rc = vm_ws_parse_reply(c->reply, c->reply_len, c->accept, c->protocol, &status);
  if (rc == 0) return;
  if (rc < 0) {
    static const char *why[] = {"", "malformed reply", "status is not 101",
                                "no Upgrade/Connection header", "wrong Sec-WebSocket-Accept",
                                "unexpected subprotocol", "reply too long"};
    vm_log_warn(c->who, "ws: upgrade to ws%s://%s:%d%s refused: %s (HTTP status %d)",
                c->tls ? "s" : "", c->host, c->port, c->path, why[-rc], status);
    connect_failed(c, VM_WS_E_HTTP);
    return;
  }
  /* bytes after the header block are frames already */
  size_t hdr = (size_t)rc, prev = c->reply_len - take;
  size_t rest_off = hdr > prev ? hdr - prev : 0;
  c->st = ST_OPEN;
  uv_timer_stop(&c->timer);
  vm_log_debug(c->who, "ws: ws%s://%s:%d%s open (%s)", c->tls ? "s" : "", c->host, c->port,
               c->path, c->ip);
  notify_open(c, 0);
  if (c->st != ST_OPEN) return;
  if (rest_off < n) frames_in(c, p + rest_off, n - rest_off);
  flow_update(c);
}

static void up_plain_in(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  if (c->st == ST_UPGRADE) upgrade_in(c, p, n);
  else if (c->st == ST_OPEN) frames_in(c, p, n);
}

/* ---- TLS ---------------------------------------------------------------------- */

static int tls_start(struct vm_ws_conn *c) {
  c->ssl = SSL_new(c->ctx);
  c->rbio = BIO_new(BIO_s_mem());
  c->wbio = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->rbio || !c->wbio) {
    BIO_free(c->rbio);
    BIO_free(c->wbio);
    return -ENOMEM;
  }
  BIO_set_mem_eof_return(c->rbio, -1); /* empty: "retry", not EOF */
  SSL_set_bio(c->ssl, c->rbio, c->wbio);
  SSL_set_connect_state(c->ssl);
  /* RFC 6066: SNI carries names only */
  if (!c->host_is_ip) SSL_set_tlsext_host_name(c->ssl, c->host);
  if (c->verify) {
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    int ok = c->host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->host)
                           : X509_VERIFY_PARAM_set1_host(vp, c->host, 0);
    if (ok != 1) return -EINVAL;
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
  } else {
    SSL_set_verify(c->ssl, SSL_VERIFY_NONE, NULL);
  }
  c->st = ST_TLS;
  return 0;
}

static void tls_handshake(struct vm_ws_conn *c) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (tls_flush(c) < 0) {
    connect_failed(c, VM_WS_E_TCP);
    return;
  }
  if (r == 1) {
    c->hs_done = true;
    const unsigned char *alpn;
    unsigned alen;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    vm_log_debug(c->who, "ws: TLS with %s up (%s%s%.*s)", c->host, SSL_get_version(c->ssl),
                 alen ? ", ALPN " : "", (int)alen, alen ? (const char *)alpn : "");
    send_request(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ) return;
  log_ssl_errors(c, "TLS handshake failed");
  connect_failed(c, VM_WS_E_TLS);
}

/* Decrypts every record the read BIO holds. Once open, their frames'
 * payload is only gathered (tls_in delivers it in one write). */
static void tls_read_all(struct vm_ws_conn *c) {
  for (;;) {
    ERR_clear_error();
    int r = SSL_read(c->ssl, c->plain, sizeof c->plain);
    if (r > 0) {
      if (c->st == ST_OPEN) frames_parse(c, c->plain, (size_t)r);
      else up_plain_in(c, c->plain, (size_t)r);
      if (c->st != ST_UPGRADE && c->st != ST_OPEN) return;
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    tls_flush(c); /* post-handshake messages may want an answer */
    if (e == SSL_ERROR_WANT_READ) return;
    acc_flush(c); /* what came before goes out before the local side is shut */
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: the broker is done */
      c->up_eof = true;
      if (c->st == ST_UPGRADE) connect_failed(c, VM_WS_E_CLOSED);
      else relay_end(c, VM_WS_END_PEER, 0);
      return;
    }
    /* a fatal alert after our side finished the handshake: with TLS 1.3 the
     * server rejects a missing or bad client certificate only now */
    log_ssl_errors(c, "TLS error");
    if (c->st == ST_UPGRADE) connect_failed(c, VM_WS_E_TLS);
    else relay_end(c, VM_WS_END_ERROR, 0);
    return;
  }
}

/* Ciphertext arrived (the whole read at once): run the handshake or read
 * records. */
static void tls_in(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  if (BIO_write(c->rbio, p, (int)n) != (int)n) {
    relay_end(c, VM_WS_END_ERROR, 0);
    return;
  }
  if (!c->hs_done) {
    tls_handshake(c);
    if (!c->hs_done) return;
  }
  tls_read_all(c);
  acc_flush(c);
}

/* ---- reading ---------------------------------------------------------------------- */

static void up_eof(struct vm_ws_conn *c) {
  c->up_eof = true;
  switch (c->st) {
  case ST_TLS:
  case ST_UPGRADE:
    /* a server that drops the handshake because of our certificate, or a
     * TLS port spoken to in clear */
    connect_failed(c, c->st == ST_TLS || (c->tls && ERR_peek_error()) ? VM_WS_E_TLS
                                                                        : VM_WS_E_CLOSED);
    break;
  case ST_OPEN:
    vm_log_info(c->who, "ws: the broker closed the connection");
    relay_end(c, VM_WS_END_PEER, 0);
    break;
  default:
    break;
  }
}

static void local_in(struct vm_ws_conn *c, const unsigned char *p, size_t n) {
  if (c->close_sent) return; /* nothing may follow a close frame */
  if (send_frame(c, VM_WS_OP_BINARY, p, n) < 0) relay_end(c, VM_WS_END_ERROR, 0);
  else flow_update(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct vm_ws_conn *c = s->data;
  bool up = s == (uv_stream_t *)&c->up;
  if (nread == 0 || c->st == ST_DEAD) return;
  if (nread < 0) {
    if (up) {
      if (nread == UV_EOF) up_eof(c);
      else if (c->st == ST_OPEN) {
        vm_log_info(c->who, "ws: read from the broker failed: %s", uv_strerror((int)nread));
        relay_end(c, VM_WS_END_ERROR, 0);
      } else {
        connect_failed(c, c->st == ST_TLS ? VM_WS_E_TLS : VM_WS_E_CLOSED);
      }
      return;
    }
    /* libmosquitto closed its socket: after its DISCONNECT, or abruptly */
    c->local_eof = true;
    read_set(c, LOCAL, false);
    relay_end(c, nread == UV_EOF ? VM_WS_END_LOCAL : VM_WS_END_ERROR, 1000);
    return;
  }
  const unsigned char *p = (const unsigned char *)buf->base;
  if (!up) {
    local_in(c, p, (size_t)nread);
    return;
  }
  if (c->tls) tls_in(c, p, (size_t)nread);
  else up_plain_in(c, p, (size_t)nread);
}

/* ---- the local side (libmosquitto) ------------------------------------------------- */

/* Closes the listener (libuv unlinks its socket file in uv_close()) and
 * removes the private directory. */
static void listener_close(struct vm_ws_conn *c) {
  close_handle(c, (uv_handle_t *)&c->listener, &c->listener_open);
  if (c->local_dir[0] && rmdir(c->local_dir) < 0 && errno != ENOENT)
    vm_log_warn(c->who, "ws: cannot remove %s: %s", c->local_dir, strerror(errno));
  c->local_dir[0] = '\0';
}

static void on_local_connection(uv_stream_t *server, int status) {
  struct vm_ws_conn *c = server->data;
  if (status < 0 || c->st == ST_DEAD || c->local_connected) return;
  uv_pipe_init(c->loop, &c->local, 0);
  c->local.data = c;
  c->local_open = true;
  if (uv_accept(server, (uv_stream_t *)&c->local) < 0) {
    close_handle(c, (uv_handle_t *)&c->local, &c->local_open);
    return;
  }
  c->local_connected = true;
  /* one client only: nobody else may join the relay */
  listener_close(c);
  if (c->early_len) {
    int rc = local_send(c, c->early, c->early_len);
    free(c->early);
    c->early = NULL;
    c->early_len = 0;
    if (rc < 0) {
      relay_end(c, VM_WS_END_ERROR, 1011);
      return;
    }
  }
  flow_update(c);
}

/* A fresh 0700 directory under $TMPDIR, else /tmp. */
static int private_dir(struct vm_ws_conn *c) {
  const char *env = getenv("TMPDIR"), *dirs[2] = {env, "/tmp"};
  int err = 0;
  for (int i = 0; i < 2; i++) {
    const char *d = dirs[i];
    if (!d || d[0] != '/') continue;
    if (snprintf(c->local_dir, sizeof c->local_dir, "%s/vmoduled-ws.XXXXXX", d) >=
        (int)sizeof c->local_dir)
      err = ENAMETOOLONG; /* a socket path holds 107 bytes */
    else if (mkdtemp(c->local_dir))
      return 0;
    else
      err = errno;
    vm_log_warn(c->who, "ws: cannot create a directory in %s: %s", d, strerror(err));
  }
  c->local_dir[0] = '\0';
  return err ? -err : -EACCES;
}

static int listener_start(struct vm_ws_conn *c) {
  int rc = private_dir(c);
  if (rc < 0) return rc;
  snprintf(c->local_path, sizeof c->local_path, "%s/mqtt", c->local_dir);
  rc = uv_pipe_init(c->loop, &c->listener, 0);
  if (rc < 0) {
    rmdir(c->local_dir);
    c->local_dir[0] = '\0';
    return rc;
  }
  c->listener.data = c;
  c->listener_open = true;
  if ((rc = uv_pipe_bind(&c->listener, c->local_path)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&c->listener, 1, on_local_connection)) < 0)
    return rc; /* the caller's teardown closes the listener and the directory */
  return 0;
}

/* ---- connecting -------------------------------------------------------------------- */

static void try_next_address(struct vm_ws_conn *c);
static void connect_timeout(uv_timer_t *t);

/* Addresses after the current one that try_next_address() would try. */
static unsigned addrs_left(const struct vm_ws_conn *c) {
  unsigned n = 0;
  for (const struct addrinfo *ai = c->addr_next; ai; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) n++;
  return n;
}

/* Arms the connect deadline. While the TCP connect to one of several
 * addresses is in progress (shared), the timer fires earlier: an address
 * that does not answer gets an equal share of the time left, so one silent
 * address (a host that is down) cannot use up the budget of the ones after
 * it. Once an address answered, the whole rest is its own. */
static void deadline_arm(struct vm_ws_conn *c, bool shared) {
  uint64_t now = uv_now(c->loop), left = c->deadline > now ? c->deadline - now : 0;
  unsigned n = shared ? 1 + addrs_left(c) : 1;
  uv_timer_start(&c->timer, connect_timeout, left / n, 0);
}

static void on_connect(uv_connect_t *req, int status) {
  struct vm_ws_conn *c = req->data;
  if (c->st != ST_CONNECTING) return; /* torn down meanwhile */
  if (status == UV_ECANCELED) return; /* abandoned (silent): its close callback moves on */
  if (status < 0) {
    vm_log_debug(c->who, "ws: TCP connect to %s port %d failed: %s", c->ip, c->port,
                 uv_strerror(status));
    try_next_address(c);
    return;
  }
  deadline_arm(c, false);
  uv_tcp_nodelay(&c->up, 1);
  read_set(c, UP, true);
  if (!c->tls) {
    send_request(c);
    return;
  }
  if (tls_start(c) < 0) {
    connect_failed(c, VM_WS_E_TLS);
    return;
  }
  tls_handshake(c);
}

static void up_closed_retry(uv_handle_t *h) {
  struct vm_ws_conn *c = h->data;
  c->closes_pending--;
  if (c->st == ST_CONNECTING) try_next_address(c);
  else maybe_free(c);
}

/* Starts the TCP connect of `up` to sa. Returns 0, or -1 when it failed
 * inside connect(2): the next address is then tried from the close callback. */
static int connect_up(struct vm_ws_conn *c, const struct sockaddr *sa) {
  uv_tcp_init(c->loop, &c->up);
  c->up.data = c;
  c->up_open = true;
  c->creq.data = c;
  int rc = uv_tcp_connect(&c->creq, &c->up, sa, on_connect);
  if (rc == 0) return 0;
  /* refused or unreachable inside connect(2) (ENETUNREACH): the next one;
   * out of descriptors is said as such (every address fails the same) */
  if (rc == UV_EMFILE || rc == UV_ENFILE)
    vm_log_warn(c->who, "ws: cannot open a socket for %s port %d: %s (%s): raise "
                "RLIMIT_NOFILE or run fewer modules", c->ip, c->port, uv_strerror(rc),
                rc == UV_EMFILE ? "EMFILE" : "ENFILE");
  else
    vm_log_debug(c->who, "ws: TCP connect to %s port %d failed: %s", c->ip, c->port,
                 uv_strerror(rc));
  c->up_open = false;
  c->closes_pending++;
  uv_close((uv_handle_t *)&c->up, up_closed_retry);
  return -1;
}

/* The relay's upstream connect ended: `up` now connects to the relay, or
 * the next address is tried, as after a direct connect. */
static void relay_cb(void *data, int status) {
  struct vm_ws_conn *c = data;
  struct vm_netrelay *r = c->relay;
  c->relay = NULL;
  if (status < 0) { /* the relay is gone */
    vm_log_debug(c->who, "ws: TCP connect to %s port %d failed: %s (relayed)", c->ip, c->port,
                 uv_strerror(status));
    try_next_address(c);
    return;
  }
  if (connect_up(c, (const struct sockaddr *)vm_netrelay_local(r)) == 0) {
    struct sockaddr_in a;
    int len = sizeof a;
    uv_tcp_getsockname(&c->up, (struct sockaddr *)&a, &len);
    vm_netrelay_expect(r, a.sin_family == AF_INET ? ntohs(a.sin_port) : 0);
  }
  vm_netrelay_release(r);
}

enum attempt { ATTEMPT_STARTED, ATTEMPT_CLOSING /* the next follows from a close callback */,
               ATTEMPT_SKIPPED /* nothing started: try the next now */ };

/* Where the attempt on sa goes: the refuser when the module is down, its
 * relay when it has one, else sa itself. */
static enum attempt attempt_start(struct vm_ws_conn *c, const struct sockaddr *sa) {
  struct sockaddr_in refuser;
  const struct sockaddr *to = sa;
  if (vm_netfault_refused(c->net, &refuser)) {
    vm_log_debug(c->who, "ws: net down: the connect to %s port %d is refused", c->ip, c->port);
    to = (const struct sockaddr *)&refuser;
  } else if (vm_netfault_relayed(c->net)) {
    if ((c->relay = vm_netrelay_open(c->net, sa, relay_cb, c))) return ATTEMPT_STARTED;
    vm_log_warn(c->who, "ws: cannot relay the connect to %s port %d", c->ip, c->port);
    return ATTEMPT_SKIPPED;
  }
  return connect_up(c, to) == 0 ? ATTEMPT_STARTED : ATTEMPT_CLOSING;
}

static void try_next_address(struct vm_ws_conn *c) {
  if (c->up_open) { /* a failed attempt: a fresh handle for the next address */
    c->up_open = false;
    c->reading[UP] = false;
    c->closes_pending++;
    uv_close((uv_handle_t *)&c->up, up_closed_retry);
    return;
  }
  while (c->addr_next) {
    struct addrinfo *ai = c->addr_next;
    c->addr_next = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)c->port);
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, c->ip, sizeof c->ip, NULL, 0, NI_NUMERICHOST))
      snprintf(c->ip, sizeof c->ip, "?");
    enum attempt a = attempt_start(c, ai->ai_addr);
    if (a == ATTEMPT_STARTED) deadline_arm(c, true);
    if (a != ATTEMPT_SKIPPED) return;
  }
  connect_failed(c, VM_WS_E_TCP);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct gai_req *g = (struct gai_req *)req;
  struct vm_ws_conn *c = g->c;
  free(g);
  if (!c) { /* detached: the relay is gone */
    if (res) uv_freeaddrinfo(res);
    return;
  }
  c->gai = NULL;
  if (status < 0 || !res) {
    vm_log_info(c->who, "ws: cannot resolve %s: %s", c->host, uv_strerror(status));
    connect_failed(c, VM_WS_E_DNS);
    return;
  }
  c->addrs = c->addr_next = res;
  c->st = ST_CONNECTING;
  try_next_address(c);
}

/* The deadline, or the share of it the address being tried had. */
static void connect_timeout(uv_timer_t *t) {
  struct vm_ws_conn *c = t->data;
  bool early = uv_now(c->loop) < c->deadline;
  if (c->st == ST_CONNECTING && early && !c->up_open && !c->relay)
    return; /* between two addresses: the next attempt arms its own share */
  if (c->st == ST_CONNECTING && early && c->relay && addrs_left(c)) {
    vm_log_debug(c->who, "ws: no answer from %s port %d in its share of the timeout", c->ip,
                 c->port);
    vm_netrelay_release(c->relay);
    c->relay = NULL;
    try_next_address(c);
    return;
  }
  if (c->st == ST_CONNECTING && early && addrs_left(c)) {
    vm_log_debug(c->who, "ws: no answer from %s port %d in its share of the timeout", c->ip,
                 c->port);
    try_next_address(c); /* closes this attempt; the next starts from the close callback */
    return;
  }
  if (c->st < ST_OPEN) connect_failed(c, VM_WS_E_TIMEOUT);
}

/* ---- setup ------------------------------------------------------------------------- */

static int ctx_fail(const char *who, const char *what, const char *file) {
  char reason[160];
  ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
  ERR_clear_error();
  vm_log_error(who, "ws: %s %s: %s", what, file ? file : "", reason);
  return -EINVAL;
}

static int ctx_build(struct vm_ws_conn *c, const struct vm_ws_opts *o) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) return -ENOMEM;
  c->ctx = ctx;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (o->verify) {
    int ok = o->ca_file ? SSL_CTX_load_verify_locations(ctx, o->ca_file, NULL)
                        : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) return ctx_fail(c->who, "cannot load CA", o->ca_file);
  }
  if (o->cert_file && SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
    return ctx_fail(c->who, "cannot load client certificate", o->cert_file);
  if (o->cert_file && (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
                       SSL_CTX_check_private_key(ctx) != 1))
    return ctx_fail(c->who, "cannot use client key", o->key_file);
  if (o->nalpn > 0) {
    unsigned char wire[VM_WS_MAX_ALPN * 256];
    size_t n = 0;
    for (int i = 0; i < o->nalpn; i++) {
      size_t l = strlen(o->alpn[i]);
      wire[n++] = (unsigned char)l;
      memcpy(wire + n, o->alpn[i], l);
      n += l;
    }
    if (SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)n) != 0) return -EINVAL;
  }
  return 0;
}

static int opts_check(const struct vm_ws_opts *o) {
  if (!o || !o->host || !*o->host || strlen(o->host) > 255 || o->port < 1 || o->port > 65535)
    return -EINVAL;
  if (!o->path || o->path[0] != '/' || strlen(o->path) > 512 || strpbrk(o->path, " \r\n"))
    return -EINVAL;
  if (o->protocol && (!*o->protocol || strpbrk(o->protocol, " \r\n,")))
    return -EINVAL;
  if (o->nalpn < 0 || o->nalpn > VM_WS_MAX_ALPN || (o->nalpn && !o->alpn)) return -EINVAL;
  for (int i = 0; i < o->nalpn; i++)
    if (!o->alpn[i] || !*o->alpn[i] || strlen(o->alpn[i]) > 255) return -EINVAL;
  if (o->cert_file && !o->key_file) return -EINVAL;
  return o->timeout_ms < 0 ? -EINVAL : 0;
}

/* `net reset` reaches the relay's broker link through its socket. */
static int link_fd(struct vm_netlink *l) {
  struct vm_ws_conn *c = (struct vm_ws_conn *)((char *)l - offsetof(struct vm_ws_conn, link));
  uv_os_fd_t fd;
  if (!c->up_open || uv_fileno((uv_handle_t *)&c->up, &fd) < 0) return -1;
  return fd;
}

int vm_ws_connect(struct vm_ws *ws, uv_loop_t *loop, const char *who, const struct vm_ws_opts *o,
                  const struct vm_ws_cbs *cbs, void *data) {
  int rc = opts_check(o);
  if (rc) return rc;
  struct vm_ws_conn *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  ws->c = c;
  ws->data = data;
  c->ws = ws;
  c->loop = loop;
  c->who = who;
  if (cbs) c->cbs = *cbs;
  c->st = ST_RESOLVING;
  c->rnd_pos = sizeof c->rnd; /* refill on first use */
  c->out[UP].side = UP;
  c->out[LOCAL].side = LOCAL;
  c->host = strdup(o->host);
  c->path = strdup(o->path);
  c->protocol = o->protocol ? strdup(o->protocol) : NULL;
  c->port = o->port;
  c->tls = o->tls;
  c->verify = o->verify;
  c->host_is_ip = is_ip_literal(o->host);
  c->timeout_ms = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
  c->net = o->net;
  vm_netlink_add(&c->link, c->net, link_fd);
  vm_ws_parser_init(&c->parser);
  if (!c->host || !c->path || (o->protocol && !c->protocol)) rc = -ENOMEM;
  if (!rc && c->tls) rc = ctx_build(c, o);
  if (!rc) rc = listener_start(c);
  if (!rc) rc = uv_timer_init(loop, &c->timer);
  if (!rc) {
    c->timer_open = true;
    c->timer.data = c;
    c->gai = calloc(1, sizeof *c->gai);
    if (!c->gai) rc = -ENOMEM;
  }
  if (!rc) {
    char port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    /* net dns-fail: the resolver itself answers that the name is not known */
    if (vm_netfault_dns_fails(o->net) && !c->host_is_ip) hints.ai_flags |= AI_NUMERICHOST;
    snprintf(port, sizeof port, "%d", c->port);
    c->gai->c = c;
    rc = uv_getaddrinfo(loop, &c->gai->req, on_resolved, c->host, port, &hints);
    if (rc < 0) {
      free(c->gai);
      c->gai = NULL;
    }
  }
  if (rc) {
    /* nothing was reported: undo quietly; handles close asynchronously */
    c->opened = c->notified_end = c->user_closed = true;
    c->ws = NULL;
    ws->c = NULL;
    conn_teardown(c);
    return rc;
  }
  c->deadline = uv_now(loop) + (uint64_t)c->timeout_ms;
  deadline_arm(c, false);
  vm_log_debug(who, "ws: connecting to ws%s://%s:%d%s via %s", c->tls ? "s" : "", c->host,
               c->port, c->path, c->local_path);
  return 0;
}

const char *vm_ws_local_path(const struct vm_ws *ws) { return ws->c ? ws->c->local_path : NULL; }

void vm_ws_close(struct vm_ws *ws, bool graceful, void (*close_cb)(struct vm_ws *ws)) {
  struct vm_ws_conn *c = ws->c;
  if (!c) {
    if (close_cb) close_cb(ws);
    return;
  }
  if (c->user_closed) return;
  c->user_closed = true;
  c->close_cb = close_cb;
  if (graceful && c->st == ST_OPEN && c->local_connected && !c->local_eof) {
    /* forward what libmosquitto still writes (its DISCONNECT) until it
     * closes its side; then the usual close frame and FIN */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, end_deadline, CLOSE_DEADLINE_MS, 0);
    return;
  }
  if (graceful && c->st == ST_OPEN) {
    send_close(c, 1000);
    finish(c);
    return;
  }
  if (c->st != ST_DEAD && c->st != ST_ENDING) conn_teardown(c);
  else maybe_free(c);
}
