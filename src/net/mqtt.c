/* mqtt.c - one MQTT 3.1.1 session: libmosquitto 2.0.11 driven from libuv.
 *
 * libmosquitto does the protocol; we own the event loop, DNS and TLS setup.
 * The rules below come from platform-and-peers.md §2b; each is there because
 * breaking it hangs, spins or crashes:
 * - DNS runs first in uv_getaddrinfo; libmosquitto only ever sees a numeric
 *   address, because its connect_async does a blocking getaddrinfo(). Port 0
 *   is libmosquitto's unix socket form (the WebSocket relay): no lookup.
 * - Until CONNACK every poll event calls mosquitto_loop_read() first: the TLS
 *   handshake is driven only by read. Then loop_write() if want_write.
 * - The poll mask is recomputed after every libmosquitto call (settle()),
 *   because packets queued inside callbacks only leave when POLLOUT is armed.
 * - The poll handle is stopped before libmosquitto closes the fd, or in its
 *   on_disconnect (it closes first, then calls back): libuv aborts on an
 *   epoll_ctl() for a closed fd.
 * - No automatic reconnect; each attempt gets a fresh struct mosquitto, so a
 *   failed attempt can be torn down at once (the library has no abort call).
 *
 * TLS uses our own SSL_CTX (MOSQ_OPT_SSL_CTX without libmosquitto defaults),
 * shared by every session with the same TLS configuration (mqtt_tls.c).
 * libmosquitto would verify the certificate against the host it was given,
 * which is our numeric address; instead each SSL's verify parameters carry
 * the real host name (or IP, if the user gave one), so OpenSSL itself fails
 * the handshake on a wrong certificate, before CONNECT (and its password) is
 * sent, and its SNI is the name rather than the numeric address.
 * - libmosquitto takes a failed write or read during the TLS handshake
 *   (SSL_ERROR_SYSCALL) for "try again": a refused or reset connect is seen
 *   in the socket's TCP state instead (tcp_state()).
 *
 * Teardown that can happen inside libmosquitto callbacks is deferred until the
 * outermost libmosquitto call returns (depth == 0); notifications raised while
 * the user is inside one of our API calls are deferred to a 0 ms timer. */
#include "vmodule/mqtt.h"

#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <mosquitto.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "vmodule/log.h"
#include "vmodule/memtrim.h"
#include "mosq_pair.h"
#include "mqtt_tls.h"

#define DEFAULT_TIMEOUT_MS 10000
#define UNIX_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define MISC_INTERVAL_MS 1000 /* libmosquitto: "around once per second is sufficient" */

struct vm_mqtt_gai {
  uv_getaddrinfo_t req; /* first member: the callback casts back */
  struct vm_mqtt *m;    /* NULL once detached: the result is dropped */
};

static void settle(struct vm_mqtt *m);
static void poll_cb(uv_poll_t *p, int status, int events);
static void misc_cb(uv_timer_t *t);

/* ---- process-wide setup ---------------------------------------------- */

static void lib_init_once(void) {
  static bool done;
  struct sigaction sa;

  if (done)
    return;
  done = true;
  mosquitto_lib_init();
  /* libmosquitto and OpenSSL's socket BIO use write(2): a broker that resets
   * the connection would otherwise kill the whole daemon with SIGPIPE. */
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
}

/* ---- small helpers ----------------------------------------------------- */

static const char *tls_name(enum vm_mqtt_tls_mode t) {
  return t == VM_MQTT_TLS_PSK ? "tls-psk" : t == VM_MQTT_TLS_CA ? "tls" : "tcp";
}

static bool is_ip_literal(const char *s) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int sock_error(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return errno;
  return err;
}

/* The kernel's TCP state of fd (TCP_ESTABLISHED, TCP_SYN_SENT, TCP_CLOSE...),
 * or -1 for a socket that is not TCP (the unix socket of the WebSocket relay).
 * SO_ERROR alone cannot tell a failed connect once something has written to
 * the socket: the write returns the error and clears it. With TLS,
 * libmosquitto's connect_async sends the ClientHello at once, so on loopback
 * a refused connect leaves SO_ERROR 0 and only the state says TCP_CLOSE. */
static int tcp_state(int fd, bool *synced) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
    return -1;
  /* Options are negotiated by the SYN-ACK: none means it never connected. */
  if (synced)
    *synced = ti.tcpi_options != 0;
  return ti.tcpi_state;
}

static int mosq_errno(int rc, int saved_errno) {
  switch (rc) {
  case MOSQ_ERR_SUCCESS:
    return 0;
  case MOSQ_ERR_NOMEM:
    return -ENOMEM;
  case MOSQ_ERR_NO_CONN:
    return -ENOTCONN;
  case MOSQ_ERR_CONN_LOST:
    return -ECONNRESET;
  case MOSQ_ERR_PAYLOAD_SIZE:
  case MOSQ_ERR_OVERSIZE_PACKET:
    return -EMSGSIZE;
  case MOSQ_ERR_INVAL:
  case MOSQ_ERR_MALFORMED_UTF8:
  case MOSQ_ERR_QOS_NOT_SUPPORTED:
    return -EINVAL;
  case MOSQ_ERR_ERRNO:
    return saved_errno > 0 ? -saved_errno : -EIO;
  default:
    return -EIO;
  }
}

const char *vm_mqtt_strerror(int rc) {
  switch (rc) {
  case 0:
    return "accepted";
  case VM_MQTT_E_DNS:
    return "DNS lookup failed";
  case VM_MQTT_E_TCP:
    return "TCP connect failed";
  case VM_MQTT_E_TLS:
    return "TLS handshake failed";
  case VM_MQTT_E_TIMEOUT:
    return "timed out";
  case VM_MQTT_E_CLOSED:
    return "connection closed before CONNACK";
  case VM_MQTT_E_CANCELED:
    return "canceled";
  }
  return rc > 0 ? mosquitto_connack_string(rc) : "unknown error";
}

/* ---- owned copy of the options ---------------------------------------- */

static void conf_free(struct vm_mqtt *m) {
  if (m->conf.password) {
    OPENSSL_cleanse(m->conf.password, strlen(m->conf.password));
    free(m->conf.password);
  }
  free(m->conf.host);
  free(m->conf.client_id);
  free(m->conf.username);
  free(m->conf.psk_identity);
  free(m->conf.will_topic);
  free(m->conf.will_payload);
  OPENSSL_cleanse(m->conf.psk, sizeof m->conf.psk);
  memset(&m->conf, 0, sizeof m->conf);
  if (m->ssl_ctx) {
    vm_mqtt_tls_put(m->ssl_ctx);
    m->ssl_ctx = NULL;
  }
}

static int dup_opt(char **dst, const char *src) {
  *dst = src ? strdup(src) : NULL;
  return src && !*dst ? -ENOMEM : 0;
}

static bool utf8_ok(const char *s) {
  return !s || mosquitto_validate_utf8(s, (int)strlen(s)) == MOSQ_ERR_SUCCESS;
}

static int opts_check(const struct vm_mqtt_opts *o) {
  if (!o || !o->host || !*o->host || o->port < 0 || o->port > 65535)
    return -EINVAL;
  if (o->port == 0 && (o->host[0] != '/' || strlen(o->host) >= UNIX_PATH_MAX ||
                       o->tls != VM_MQTT_TLS_NONE))
    return -EINVAL;
  if (o->keepalive < 0 || (o->keepalive > 0 && o->keepalive < 5) || o->keepalive > 65535)
    return -EINVAL;
  if ((o->password && !o->username) || (!o->client_id && !o->clean_session))
    return -EINVAL;
  if (!utf8_ok(o->client_id) || !utf8_ok(o->username) || o->connect_timeout_ms < 0)
    return -EINVAL;
  if (o->will_topic &&
      (mosquitto_pub_topic_check(o->will_topic) != MOSQ_ERR_SUCCESS || o->will_qos < 0 ||
       o->will_qos > 2 || o->will_len < 0 || (o->will_len > 0 && !o->will_payload)))
    return -EINVAL;
  switch (o->tls) {
  case VM_MQTT_TLS_NONE:
    return 0;
  case VM_MQTT_TLS_PSK:
    return o->psk_identity && *o->psk_identity && o->psk_key_hex ? 0 : -EINVAL;
  case VM_MQTT_TLS_CA:
    return o->cert_file && !o->key_file ? -EINVAL : 0;
  }
  return -EINVAL;
}

static int conf_set(struct vm_mqtt *m, const struct vm_mqtt_opts *o) {
  size_t n = 0;

  if (dup_opt(&m->conf.host, o->host) || dup_opt(&m->conf.client_id, o->client_id) ||
      dup_opt(&m->conf.username, o->username) || dup_opt(&m->conf.password, o->password) ||
      dup_opt(&m->conf.psk_identity, o->psk_identity) ||
      dup_opt(&m->conf.will_topic, o->will_topic))
    return -ENOMEM;
  if (o->will_topic) {
    m->conf.will_payload = malloc(o->will_len ? (size_t)o->will_len : 1);
    if (!m->conf.will_payload)
      return -ENOMEM;
    if (o->will_len)
      memcpy(m->conf.will_payload, o->will_payload, (size_t)o->will_len);
  }
  if (o->tls == VM_MQTT_TLS_PSK) {
    if (OPENSSL_hexstr2buf_ex(m->conf.psk, sizeof m->conf.psk, &n, o->psk_key_hex, '\0') != 1 ||
        n == 0)
      return -EINVAL;
    m->conf.psk_len = (unsigned)n;
  }
  m->conf.port = o->port;
  m->conf.keepalive = o->keepalive;
  m->conf.clean_session = o->clean_session;
  m->conf.tls = o->tls;
  m->conf.will_len = o->will_len;
  m->conf.will_qos = o->will_qos;
  m->conf.will_retain = o->will_retain;
  m->conf.timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_TIMEOUT_MS;
  m->conf.host_is_ip = is_ip_literal(o->host);
  return 0;
}

/* ---- around libmosquitto calls ------------------------------------------ */

/* Teardown waits until the outermost call has returned (depth 0), and
 * OpenSSL's callbacks inside the call find their session (mqtt_tls.c). */
static void lib_enter(struct vm_mqtt *m) {
  if (m->depth++ == 0)
    m->tls_prev = vm_mqtt_tls_bind(m);
}

static void lib_leave(struct vm_mqtt *m) {
  if (--m->depth == 0)
    vm_mqtt_tls_bind(m->tls_prev);
}

/* ---- poll handle --------------------------------------------------------- */

static void poll_close_cb(uv_handle_t *h) { free(h); }

static void poll_release(struct vm_mqtt *m) {
  if (!m->poll)
    return;
  uv_poll_stop(m->poll);
  m->poll->data = NULL;
  uv_close((uv_handle_t *)m->poll, poll_close_cb);
  m->poll = NULL;
  m->poll_fd = -1;
  m->poll_mask = 0;
}

static bool tls_pending(const struct vm_mqtt *m) {
  return m->conf.tls != VM_MQTT_TLS_NONE && !m->tls_done;
}

/* Watches mosquitto_socket() with the mask the current phase needs. */
static int poll_update(struct vm_mqtt *m) {
  int fd = mosquitto_socket(m->mosq), mask = UV_READABLE, rc;

  if (fd != m->poll_fd) {
    poll_release(m);
    if (fd < 0)
      return 0;
    m->poll = malloc(sizeof *m->poll);
    if (!m->poll)
      return -ENOMEM;
    if ((rc = uv_poll_init_socket(m->loop, m->poll, fd)) < 0) {
      free(m->poll);
      m->poll = NULL;
      return rc;
    }
    m->poll->data = m;
    m->poll_fd = fd;
  }
  if (m->state == VM_MQTT_CONNECTING) {
    mask |= UV_WRITABLE; /* writable = TCP connect finished */
  } else if (tls_pending(m)) {
    /* If the first SSL_connect() met a socket still connecting, libmosquitto
     * keeps want_write() true for the whole handshake, and POLLOUT would fire
     * on every turn while the server thinks. Ask OpenSSL what it waits for. */
    SSL *ssl = mosquitto_ssl_get(m->mosq);
    if (ssl && SSL_want_write(ssl))
      mask |= UV_WRITABLE;
  } else if (mosquitto_want_write(m->mosq)) {
    mask |= UV_WRITABLE;
  }
  if (mask == m->poll_mask && uv_is_active((uv_handle_t *)m->poll))
    return 0;
  m->poll_mask = mask;
  return uv_poll_start(m->poll, mask, poll_cb);
}

/* ---- notifications ---------------------------------------------------- */

static bool pending(const struct vm_mqtt *m) {
  return m->n_mids || m->ev_connect || m->ev_disconnect;
}

static void push_mid(struct vm_mqtt *m, int mid) {
  if (m->n_mids == m->cap_mids) {
    size_t cap = m->cap_mids ? m->cap_mids * 2 : 8;
    int *p = realloc(m->mids, cap * sizeof *p);
    if (!p) {
      vm_log_error(m->who, "mqtt: out of memory, on_publish(%d) lost", mid);
      return;
    }
    m->mids = p;
    m->cap_mids = cap;
  }
  m->mids[m->n_mids++] = mid;
}

/* Delivers what is pending, oldest kind first. Callbacks may re-enter. */
static void deliver(struct vm_mqtt *m) {
  uv_timer_stop(&m->defer_timer);
  for (size_t i = 0; i < m->n_mids && !m->closing; i++)
    if (m->cbs.on_publish)
      m->cbs.on_publish(m->data, m->mids[i]);
  m->n_mids = 0;
  if (!m->closing && m->ev_disconnect) {
    m->ev_disconnect = false;
    if (m->cbs.on_disconnect)
      m->cbs.on_disconnect(m->data, m->ev_disc_reason);
  }
  if (!m->closing && m->ev_connect) {
    m->ev_connect = false;
    if (m->cbs.on_connect)
      m->cbs.on_connect(m->data, m->ev_connect_rc);
  }
}

static void defer_cb(uv_timer_t *t) { deliver(t->data); }

/* ---- attempt / session lifecycle -------------------------------------- */

static void gai_detach(struct vm_mqtt *m) {
  if (!m->gai)
    return;
  m->gai->m = NULL;
  uv_cancel((uv_req_t *)&m->gai->req); /* if it already runs, its callback frees it */
  m->gai = NULL;
}

static void drop_mosq(struct vm_mqtt *m) {
  if (m->relay) { /* still connecting upstream: it ends */
    vm_netrelay_release(m->relay);
    m->relay = NULL;
  }
  poll_release(m); /* before mosquitto_destroy() closes the fd */
  if (m->mosq) {
    mosquitto_destroy(m->mosq);
    m->mosq = NULL;
  }
}

static void drop_addrs(struct vm_mqtt *m) {
  if (m->addrs)
    uv_freeaddrinfo(m->addrs);
  m->addrs = m->addr_next = NULL;
}

static int early_failure(const struct vm_mqtt *m, enum vm_mqtt_state was) {
  if (m->fail)
    return m->fail;
  if (was == VM_MQTT_RESOLVING)
    return VM_MQTT_E_DNS;
  if (was == VM_MQTT_CONNECTING)
    return VM_MQTT_E_TCP;
  return m->conf.tls != VM_MQTT_TLS_NONE && !m->tls_confirmed ? VM_MQTT_E_TLS : VM_MQTT_E_CLOSED;
}

static void log_end(struct vm_mqtt *m, enum vm_mqtt_state was, int rc) {
  const char *e = m->last_err;
  if (was == VM_MQTT_DISCONNECTING)
    vm_log_info(m->who, "mqtt: disconnected from %s:%d", m->conf.host, m->conf.port);
  else if (was == VM_MQTT_CONNECTED)
    vm_log_info(m->who, "mqtt: connection to %s:%d lost: %s", m->conf.host, m->conf.port,
                /* libmosquitto 2.0.11 has no text for this one ("Unknown error.") */
                m->link_rc == MOSQ_ERR_KEEPALIVE ? "keepalive timeout"
                                                 : mosquitto_strerror(m->link_rc));
  else
    vm_log_info(m->who, "mqtt: connect to %s:%d failed: %s%s%s%s", m->conf.host, m->conf.port,
                vm_mqtt_strerror(rc), *e ? " (" : "", e, *e ? ")" : "");
}

/* Ends the attempt or session: frees libmosquitto state and queues the one
 * notification owed. Only at depth 0 (libmosquitto is not on the stack). */
static void finish(struct vm_mqtt *m) {
  enum vm_mqtt_state was = m->state;
  int rc = early_failure(m, was);

  gai_detach(m);
  drop_mosq(m);
  drop_addrs(m);
  uv_timer_stop(&m->op_timer);
  uv_timer_stop(&m->misc_timer);
  m->state = VM_MQTT_IDLE;
  log_end(m, was, rc);
  if (was == VM_MQTT_CONNECTED || was == VM_MQTT_DISCONNECTING) {
    m->ev_disconnect = true;
    m->ev_disc_reason = was == VM_MQTT_DISCONNECTING ? VM_MQTT_DISC_LOCAL : VM_MQTT_DISC_LOST;
  } else {
    m->ev_connect = true;
    m->ev_connect_rc = rc;
  }
}

static void close_resources(struct vm_mqtt *m) {
  gai_detach(m);
  drop_mosq(m);
  drop_addrs(m);
  conf_free(m);
}

/* Runs after every libmosquitto call once it has unwound: ends a dead attempt,
 * re-arms the poll handle, and delivers (or defers) notifications. */
static void settle(struct vm_mqtt *m) {
  if (m->depth > 0)
    return;
  if (m->closing) {
    close_resources(m);
    return;
  }
  if (m->state != VM_MQTT_IDLE && (m->fail || m->link_down)) {
    finish(m);
  } else if (m->mosq && poll_update(m) < 0) {
    vm_log_error(m->who, "mqtt: cannot watch the socket");
    m->link_down = true;
    m->link_rc = MOSQ_ERR_NOMEM;
    finish(m);
  }
  if (m->api > 0) {
    if (pending(m))
      uv_timer_start(&m->defer_timer, defer_cb, 0, 0);
  } else {
    deliver(m);
  }
}

static void link_lost(struct vm_mqtt *m, int rc) {
  poll_release(m); /* libmosquitto may already have closed the fd */
  if (!m->link_down) {
    m->link_down = true;
    m->link_rc = rc;
  }
}

/* ---- libmosquitto callbacks ------------------------------------------- */

static void on_mosq_connect(struct mosquitto *q, void *obj, int rc) {
  struct vm_mqtt *m = obj;
  (void)q;
  if (m->closing || m->state != VM_MQTT_HANDSHAKING)
    return;
  if (rc != 0) {
    if (!m->fail)
      m->fail = rc; /* libmosquitto closes the socket next */
    return;
  }
  m->state = VM_MQTT_CONNECTED;
  uv_timer_stop(&m->op_timer);
  /* Keepalive runs only from CONNACK on: before it, loop_misc() would drop a
   * slow handshake as "keepalive expired"; the connect deadline covers it. */
  uv_timer_start(&m->misc_timer, misc_cb, MISC_INTERVAL_MS, MISC_INTERVAL_MS);
  vm_log_info(m->who, "mqtt: connected to %s:%d (%s, %s)", m->conf.host, m->conf.port, m->ip,
              tls_name(m->conf.tls));
  if (m->conf.tls != VM_MQTT_TLS_NONE)
    vm_memtrim_soon(); /* the handshake's buffers are free now */
  deliver(m);
  if (!m->closing && m->cbs.on_connect)
    m->cbs.on_connect(m->data, 0);
}

static void on_mosq_disconnect(struct mosquitto *q, void *obj, int rc) {
  (void)q;
  link_lost(obj, rc);
}

static void on_mosq_message(struct mosquitto *q, void *obj, const struct mosquitto_message *msg) {
  struct vm_mqtt *m = obj;
  (void)q;
  if (m->closing)
    return;
  deliver(m);
  if (!m->closing && m->cbs.on_message)
    m->cbs.on_message(m->data, msg->topic, msg->payload, msg->payloadlen, msg->qos, msg->retain,
                      msg->mid);
}

static void on_mosq_publish(struct mosquitto *q, void *obj, int mid) {
  struct vm_mqtt *m = obj;
  (void)q;
  if (m->closing)
    return;
  push_mid(m, mid);
  if (m->api == 0)
    deliver(m);
}

static void on_mosq_subscribe(struct mosquitto *q, void *obj, int mid, int count,
                              const int *granted) {
  struct vm_mqtt *m = obj;
  (void)q;
  if (m->closing)
    return;
  deliver(m);
  if (!m->closing && m->cbs.on_subscribe)
    m->cbs.on_subscribe(m->data, mid, count, granted);
}

static void on_mosq_unsubscribe(struct mosquitto *q, void *obj, int mid) {
  struct vm_mqtt *m = obj;
  (void)q;
  if (m->closing)
    return;
  deliver(m);
  if (!m->closing && m->cbs.on_unsubscribe)
    m->cbs.on_unsubscribe(m->data, mid);
}

static void on_mosq_log(struct mosquitto *q, void *obj, int level, const char *str) {
  struct vm_mqtt *m = obj;
  (void)q;
  /* libmosquitto never logs credentials; keep its last error for the
   * one-line INFO report of a failed connect (e.g. the OpenSSL reason). */
  if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
    snprintf(m->last_err, sizeof m->last_err, "%s", str);
  vm_log_debug(m->who, "mqtt: libmosquitto: %s", str);
}

/* ---- one connection attempt ------------------------------------------- */

/* Errors a failed TCP connect leaves in SO_ERROR. Others (EPIPE, ECONNRESET)
 * mean it connected and then broke, which on loopback can all happen inside
 * connect_async, TLS handshake included. */
static bool connect_refused(int err) {
  switch (err) {
  case ECONNREFUSED:
  case ENOENT: /* a unix socket path that is gone */
  case ETIMEDOUT:
  case EHOSTUNREACH:
  case ENETUNREACH:
  case EHOSTDOWN:
  case ENETDOWN:
  case EADDRNOTAVAIL:
  case EACCES:
  case EPERM:
    return true;
  }
  return false;
}

/* After a successful connect_async with TLS: did the TCP connect already fail
 * (its error then went to the ClientHello write, and libmosquitto ignores a
 * failed write during the handshake)? If so the attempt is dropped, to try the
 * next address. saved_errno is errno after connect_async: the error that
 * write got. */
static bool connect_failed_early(struct vm_mqtt *m, int saved_errno) {
  int fd = mosquitto_socket(m->mosq), err;
  bool synced = true;

  if (m->conf.tls == VM_MQTT_TLS_NONE || tcp_state(fd, &synced) != TCP_CLOSE)
    return false;
  err = sock_error(fd);
  if (!err)
    err = saved_errno;
  if (!connect_refused(err)) {
    if (synced)
      return false; /* it connected, then broke: poll_cb reports the loss */
    err = ECONNREFUSED;
  }
  snprintf(m->last_err, sizeof m->last_err, "%s: %s", m->ip, strerror(err));
  vm_log_debug(m->who, "mqtt: TCP connect to %s failed: %s", m->ip, strerror(err));
  drop_mosq(m);
  return true;
}

/* Out of descriptors is not a network failure and must not look like one:
 * the attempt fails as a socket failure (what the firmware reports when its
 * socket() fails) and the log says why, naming the module. */
static bool out_of_fds(struct vm_mqtt *m, int err, const char *what) {
  if (err != EMFILE && err != ENFILE)
    return false;
  vm_log_warn(m->who, "mqtt: %s for %s:%d: %s (%s): raise RLIMIT_NOFILE or run fewer modules",
              what, m->conf.host, m->conf.port, strerror(err), err == EMFILE ? "EMFILE" : "ENFILE");
  snprintf(m->last_err, sizeof m->last_err, "%s", strerror(err));
  m->fail = VM_MQTT_E_TCP;
  return true;
}

static int mosq_create(struct vm_mqtt *m) {
  struct mosquitto *q = vm_mosq_new(m->conf.client_id, m->conf.clean_session, m);

  if (!q)
    return -ENOMEM;
  m->mosq = q;
  mosquitto_threaded_set(q, false);
  mosquitto_int_option(q, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  if (m->conf.port) mosquitto_int_option(q, MOSQ_OPT_TCP_NODELAY, 1);
  if (m->conf.username &&
      mosquitto_username_pw_set(q, m->conf.username, m->conf.password) != MOSQ_ERR_SUCCESS)
    return -ENOMEM;
  if (m->conf.will_topic &&
      mosquitto_will_set(q, m->conf.will_topic, m->conf.will_len, m->conf.will_payload,
                         m->conf.will_qos, m->conf.will_retain) != MOSQ_ERR_SUCCESS)
    return -EINVAL;
  if (m->ssl_ctx) {
    /* Without defaults libmosquitto uses our CTX as is (it takes a reference). */
    mosquitto_void_option(q, MOSQ_OPT_SSL_CTX, m->ssl_ctx);
    mosquitto_int_option(q, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
  }
  mosquitto_connect_callback_set(q, on_mosq_connect);
  mosquitto_disconnect_callback_set(q, on_mosq_disconnect);
  mosquitto_message_callback_set(q, on_mosq_message);
  mosquitto_publish_callback_set(q, on_mosq_publish);
  mosquitto_subscribe_callback_set(q, on_mosq_subscribe);
  mosquitto_unsubscribe_callback_set(q, on_mosq_unsubscribe);
  /* libmosquitto formats a line per packet for its log callback: only
   * install it when debug lines would be printed (about 7% of a flood) */
  if (vm_log_get_level() >= VM_LOG_DEBUG) mosquitto_log_callback_set(q, on_mosq_log);
  return 0;
}

/* Starts libmosquitto's non-blocking connect to host:port (m->ip, or where
 * a net fault sends it). Returns 0 when the attempt is under way (or already
 * over, see below), -1 to try the next address. */
static int attempt_mosq(struct vm_mqtt *m, const char *host, int port) {
  int rc, err;

  m->tls_done = m->tls_confirmed = false;
  if ((rc = mosq_create(m)) < 0) {
    snprintf(m->last_err, sizeof m->last_err, "%s", strerror(-rc));
    m->fail = VM_MQTT_E_TCP;
    drop_mosq(m);
    return -1;
  }
  m->last_err[0] = '\0';
  lib_enter(m);
  rc = mosquitto_connect_bind_async(m->mosq, host, port, m->conf.keepalive, NULL);
  err = errno;
  lib_leave(m);
  if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(m->mosq) >= 0) {
    m->state = VM_MQTT_CONNECTING;
    return connect_failed_early(m, err) ? -1 : 0;
  }
  if (rc == MOSQ_ERR_ERRNO && out_of_fds(m, err, "cannot open a socket")) {
    drop_mosq(m);
    return -1;
  }
  /* Keep the OpenSSL reason libmosquitto may have logged over its generic code. */
  if (!m->last_err[0])
    snprintf(m->last_err, sizeof m->last_err, "%s: %s", m->ip,
             rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc));
  if ((rc == MOSQ_ERR_ERRNO && connect_refused(err)) || rc == MOSQ_ERR_EAI) {
    vm_log_debug(m->who, "mqtt: TCP connect to %s failed: %s", m->ip,
                 rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc));
    drop_mosq(m);
    return -1;
  }
  /* On loopback the socket can connect, run (and fail) the whole TLS handshake
   * or be hung up on inside this one call: classify it like a later loss. */
  m->state = VM_MQTT_HANDSHAKING;
  link_lost(m, rc);
  return 0;
}

static void op_timer_cb(uv_timer_t *t);
static void arm_deadline(struct vm_mqtt *m);
static void try_next_address(struct vm_mqtt *m);

/* The local port of libmosquitto's socket (what the relay will see). */
static int mosq_local_port(struct vm_mqtt *m) {
  struct sockaddr_in a;
  socklen_t len = sizeof a;
  int fd = m->mosq ? mosquitto_socket(m->mosq) : -1;
  if (fd < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.sin_family != AF_INET)
    return 0;
  return ntohs(a.sin_port);
}

/* The relay's upstream connect ended: libmosquitto now connects to the
 * relay, or the next address is tried, exactly as after a direct connect. */
static void relay_cb(void *data, int status) {
  struct vm_mqtt *m = data;
  struct vm_netrelay *r = m->relay;
  m->relay = NULL;
  if (status < 0) { /* the relay is gone */
    snprintf(m->last_err, sizeof m->last_err, "%s: %s", m->ip, strerror(-status));
    vm_log_debug(m->who, "mqtt: TCP connect to %s failed: %s (relayed)", m->ip, strerror(-status));
    try_next_address(m);
    settle(m);
    return;
  }
  int rc = attempt_mosq(m, "127.0.0.1", ntohs(vm_netrelay_local(r)->sin_port));
  if (rc == 0) vm_netrelay_expect(r, mosq_local_port(m));
  vm_netrelay_release(r);
  if (rc == 0) arm_deadline(m);
  else try_next_address(m);
  settle(m);
}

/* The module's faults decide where the attempt goes: the refuser when it is
 * down, its relay when it has one, else straight to ai (NULL: the unix
 * socket). Returns as attempt_mosq(). */
static int attempt_start(struct vm_mqtt *m, const struct addrinfo *ai) {
  struct sockaddr_in refuser;
  if (!ai)
    return attempt_mosq(m, m->conf.host, 0);
  if (vm_netfault_refused(m->net, &refuser)) {
    vm_log_debug(m->who, "mqtt: net down: the connect to %s is refused", m->ip);
    return attempt_mosq(m, "127.0.0.1", ntohs(refuser.sin_port));
  }
  if (!vm_netfault_relayed(m->net))
    return attempt_mosq(m, m->ip, m->conf.port);
  memset(&m->dst, 0, sizeof m->dst);
  memcpy(&m->dst, ai->ai_addr, ai->ai_addrlen);
  /* the lookup had no service: the port is ours to set */
  if (ai->ai_family == AF_INET6)
    ((struct sockaddr_in6 *)&m->dst)->sin6_port = htons((uint16_t)m->conf.port);
  else
    ((struct sockaddr_in *)&m->dst)->sin_port = htons((uint16_t)m->conf.port);
  m->tls_done = m->tls_confirmed = false;
  m->relay = vm_netrelay_open(m->net, (struct sockaddr *)&m->dst, relay_cb, m);
  if (!m->relay) {
    snprintf(m->last_err, sizeof m->last_err, "%s: cannot relay", m->ip);
    return -1;
  }
  m->state = VM_MQTT_CONNECTING;
  return 0;
}

/* Arms the connect deadline. While the TCP connect to one of several
 * addresses is in progress, the timer fires earlier: an address that does not
 * answer gets its share of the time left, so one silent address (a host that
 * is down) cannot use up the whole budget of the ones after it. */
static void arm_deadline(struct vm_mqtt *m) {
  uint64_t now = uv_now(m->loop), left = m->deadline > now ? m->deadline - now : 0;
  unsigned n = 1;

  if (m->state == VM_MQTT_CONNECTING)
    for (const struct addrinfo *ai = m->addr_next; ai; ai = ai->ai_next)
      n++;
  uv_timer_start(&m->op_timer, op_timer_cb, left / n, 0);
}

static void try_next_address(struct vm_mqtt *m) {
  while (m->addr_next && !m->fail) {
    struct addrinfo *ai = m->addr_next;
    m->addr_next = ai->ai_next;
    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, m->ip, sizeof m->ip, NULL, 0, NI_NUMERICHOST))
      continue;
    if (attempt_start(m, ai) == 0) {
      arm_deadline(m);
      return;
    }
  }
  if (!m->fail)
    m->fail = VM_MQTT_E_TCP;
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct vm_mqtt_gai *g = (struct vm_mqtt_gai *)req;
  struct vm_mqtt *m = g->m;

  free(g);
  if (!m) { /* detached: timed out, canceled or closed meanwhile */
    if (res)
      uv_freeaddrinfo(res);
    return;
  }
  m->gai = NULL;
  if (status < 0) {
    if (!out_of_fds(m, -status, "cannot look up the host")) { /* UV_E* are -errno */
      snprintf(m->last_err, sizeof m->last_err, "%s", uv_strerror(status));
      m->fail = VM_MQTT_E_DNS;
    }
  } else {
    m->addrs = m->addr_next = res;
    try_next_address(m);
  }
  settle(m);
}

/* An event on a connecting socket. Returns 0 when connected, 1 when it
 * connected but already broke, 2 when it is still connecting, -1 when the TCP
 * connect failed (the next address is being tried, or the failure is queued). */
static int tcp_result(struct vm_mqtt *m, int status) {
  int err = sock_error(m->poll_fd), st;
  bool synced = true;

  if (status >= 0 && err == 0) {
    st = tcp_state(m->poll_fd, &synced);
    if (st == TCP_SYN_SENT)
      return 2; /* a wake-up before the handshake ended */
    if (st != TCP_CLOSE || synced) {
      m->state = VM_MQTT_HANDSHAKING;
      arm_deadline(m); /* this address answered: the whole rest is its own */
      return st == TCP_CLOSE; /* closed after connecting: a loss */
    }
    err = ECONNREFUSED; /* the error went to a write; see tcp_state() */
  }
  if (m->tls_done || (err && !connect_refused(err))) {
    m->state = VM_MQTT_HANDSHAKING;
    arm_deadline(m);
    return 1;
  }
  err = err ? err : EIO;
  snprintf(m->last_err, sizeof m->last_err, "%s: %s", m->ip, strerror(err));
  vm_log_debug(m->who, "mqtt: TCP connect to %s failed: %s (poll status %d)", m->ip,
               strerror(err), status);
  drop_mosq(m);
  try_next_address(m);
  settle(m);
  return -1;
}

/* Read first until CONNACK (it drives the TLS handshake), then flush writes. */
static void loop_io(struct vm_mqtt *m, int events) {
  bool up = m->state == VM_MQTT_CONNECTED || m->state == VM_MQTT_DISCONNECTING;
  int rc;

  if (!up || (events & UV_READABLE)) {
    rc = mosquitto_loop_read(m->mosq, 1);
    /* libmosquitto takes a failed read during the TLS handshake (a reset:
     * SSL_ERROR_SYSCALL) for "try again" and would spin on the dead socket
     * until the deadline; the TCP state tells. */
    if (rc == MOSQ_ERR_SUCCESS && tls_pending(m) && tcp_state(m->poll_fd, NULL) == TCP_CLOSE)
      rc = MOSQ_ERR_CONN_LOST;
    if (rc != MOSQ_ERR_SUCCESS) {
      link_lost(m, rc);
      return;
    }
  }
  if (m->link_down || m->closing || m->fail || tls_pending(m) || !mosquitto_want_write(m->mosq))
    return;
  rc = mosquitto_loop_write(m->mosq, 1);
  if (rc != MOSQ_ERR_SUCCESS)
    link_lost(m, rc);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  struct vm_mqtt *m = p->data;

  int broken = 0;

  if (!m || m->poll != p || !m->mosq || m->closing)
    return;
  if (m->state == VM_MQTT_CONNECTING && (broken = tcp_result(m, status)) < 0)
    return;
  if (broken == 2)
    return;
  lib_enter(m);
  if (broken || status < 0) /* POLLERR (libuv stopped the handle) is a loss too */
    link_lost(m, MOSQ_ERR_ERRNO);
  else
    loop_io(m, events);
  lib_leave(m);
  settle(m);
}

static void misc_cb(uv_timer_t *t) {
  struct vm_mqtt *m = t->data;

  if (!m->mosq || m->closing)
    return;
  lib_enter(m);
  /* Sends PINGREQ, or closes the link (on_disconnect) when keepalive expired. */
  mosquitto_loop_misc(m->mosq);
  lib_leave(m);
  vm_memtrim_tick();
  settle(m);
}

static void op_timer_cb(uv_timer_t *t) {
  struct vm_mqtt *m = t->data;

  if (m->state == VM_MQTT_DISCONNECTING) {
    vm_log_warn(m->who, "mqtt: DISCONNECT not sent in time, closing the socket");
    m->link_down = true;
  } else if (m->state == VM_MQTT_CONNECTING && m->addr_next && !m->fail &&
             uv_now(m->loop) < m->deadline) {
    vm_log_debug(m->who, "mqtt: no answer from %s in its share of the timeout", m->ip);
    drop_mosq(m);
    try_next_address(m);
  } else if (m->state != VM_MQTT_IDLE && m->state != VM_MQTT_CONNECTED && !m->fail) {
    m->fail = VM_MQTT_E_TIMEOUT;
  }
  settle(m);
}

/* ---- public API --------------------------------------------------------- */

/* Public calls that reach libmosquitto: callbacks it fires meanwhile are
 * queued and delivered on the next loop turn, never inside the caller's call. */
static void api_begin(struct vm_mqtt *m) {
  m->api++;
  lib_enter(m);
}

static void api_end(struct vm_mqtt *m) {
  lib_leave(m);
  settle(m);
  m->api--;
}

static int lookup_start(struct vm_mqtt *m) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_protocol = IPPROTO_TCP};
  struct vm_mqtt_gai *g = calloc(1, sizeof *g);
  int rc;

  if (!g)
    return -ENOMEM;
  /* net dns-fail: the resolver itself answers that the name is not known */
  if (vm_netfault_dns_fails(m->net) && !m->conf.host_is_ip)
    hints.ai_flags |= AI_NUMERICHOST;
  g->m = m;
  if ((rc = uv_getaddrinfo(m->loop, &g->req, gai_cb, m->conf.host, NULL, &hints)) < 0) {
    free(g);
    return rc;
  }
  m->gai = g;
  return 0;
}

/* A unix socket needs no lookup: the attempt starts at once, and what it
 * reports is delivered from the loop, as after a lookup. */
static void local_start(struct vm_mqtt *m) {
  api_begin(m);
  snprintf(m->ip, sizeof m->ip, "%s", m->conf.host); /* for logs; may be cut */
  if (attempt_start(m, NULL) < 0 && !m->fail)
    m->fail = VM_MQTT_E_TCP;
  api_end(m);
}

/* `net reset` reaches the session through its current socket. */
static int link_fd(struct vm_netlink *l) {
  struct vm_mqtt *m = (struct vm_mqtt *)((char *)l - offsetof(struct vm_mqtt, link));
  return m->mosq ? mosquitto_socket(m->mosq) : -1;
}

int vm_mqtt_init(struct vm_mqtt *m, uv_loop_t *loop, const char *who,
                 const struct vm_mqtt_cbs *cbs, void *data) {
  uv_timer_t *timers[3];

  if (!m || !loop)
    return -EINVAL;
  lib_init_once();
  memset(m, 0, sizeof *m);
  m->loop = loop;
  m->who = who ? who : "mqtt";
  if (cbs)
    m->cbs = *cbs;
  m->data = data;
  m->poll_fd = -1;
  timers[0] = &m->misc_timer;
  timers[1] = &m->op_timer;
  timers[2] = &m->defer_timer;
  for (int i = 0; i < 3; i++) {
    uv_timer_init(loop, timers[i]);
    timers[i]->data = m;
  }
  return 0;
}

int vm_mqtt_connect(struct vm_mqtt *m, const struct vm_mqtt_opts *o) {
  int rc;

  if (m->closing)
    return -EINVAL;
  if (m->state == VM_MQTT_CONNECTED || m->state == VM_MQTT_DISCONNECTING)
    return -EISCONN;
  if (m->state != VM_MQTT_IDLE)
    return -EBUSY;
  if ((rc = opts_check(o)) < 0)
    return rc;
  conf_free(m);
  m->net = o->port ? o->net : NULL; /* before the lookup: dns-fail acts on it */
  if (m->net)
    vm_netlink_add(&m->link, m->net, link_fd);
  if ((rc = conf_set(m, o)) < 0 || (o->tls && (rc = vm_mqtt_tls_get(m->who, o, &m->ssl_ctx)) < 0) ||
      (m->conf.port && (rc = lookup_start(m)) < 0)) {
    conf_free(m);
    return rc;
  }
  m->fail = m->link_rc = 0;
  m->link_down = m->tls_done = m->tls_confirmed = false;
  m->last_err[0] = m->ip[0] = '\0';
  m->state = VM_MQTT_RESOLVING;
  m->deadline = uv_now(m->loop) + (uint64_t)m->conf.timeout_ms;
  arm_deadline(m);
  vm_log_info(m->who, "mqtt: connecting to %s:%d (%s) as %s", m->conf.host, m->conf.port,
              tls_name(m->conf.tls), m->conf.client_id ? m->conf.client_id : "(random id)");
  if (!m->conf.port)
    local_start(m);
  return 0;
}

int vm_mqtt_publish(struct vm_mqtt *m, const char *topic, const void *payload, int len, int qos,
                    bool retain) {
  int mid = 0, rc, err;

  if (m->closing || m->state != VM_MQTT_CONNECTED)
    return -ENOTCONN;
  if (!topic || len < 0 || (len > 0 && !payload) || qos < 0 || qos > 2)
    return -EINVAL;
  api_begin(m);
  rc = mosquitto_publish(m->mosq, &mid, topic, len, payload, qos, retain);
  err = errno;
  api_end(m);
  return rc == MOSQ_ERR_SUCCESS ? mid : mosq_errno(rc, err);
}

int vm_mqtt_subscribe(struct vm_mqtt *m, const char *filter, int qos) {
  int mid = 0, rc, err;

  if (m->closing || m->state != VM_MQTT_CONNECTED)
    return -ENOTCONN;
  if (!filter || qos < 0 || qos > 2)
    return -EINVAL;
  api_begin(m);
  rc = mosquitto_subscribe(m->mosq, &mid, filter, qos);
  err = errno;
  api_end(m);
  return rc == MOSQ_ERR_SUCCESS ? mid : mosq_errno(rc, err);
}

int vm_mqtt_unsubscribe(struct vm_mqtt *m, const char *filter) {
  int mid = 0, rc, err;

  if (m->closing || m->state != VM_MQTT_CONNECTED)
    return -ENOTCONN;
  if (!filter)
    return -EINVAL;
  api_begin(m);
  rc = mosquitto_unsubscribe(m->mosq, &mid, filter);
  err = errno;
  api_end(m);
  return rc == MOSQ_ERR_SUCCESS ? mid : mosq_errno(rc, err);
}

int vm_mqtt_disconnect(struct vm_mqtt *m) {
  int rc;

  if (m->closing || m->state == VM_MQTT_IDLE)
    return -ENOTCONN;
  if (m->state == VM_MQTT_DISCONNECTING)
    return -EALREADY;
  api_begin(m);
  if (m->state != VM_MQTT_CONNECTED) {
    if (!m->fail)
      m->fail = VM_MQTT_E_CANCELED;
  } else {
    m->state = VM_MQTT_DISCONNECTING;
    /* A full send buffer could hold DISCONNECT back; do not wait forever. */
    uv_timer_start(&m->op_timer, op_timer_cb, (uint64_t)m->conf.timeout_ms, 0);
    rc = mosquitto_disconnect(m->mosq);
    if (rc != MOSQ_ERR_SUCCESS)
      link_lost(m, rc);
  }
  api_end(m);
  return 0;
}

static void timer_closed(uv_handle_t *h) {
  struct vm_mqtt *m = h->data;

  if (--m->closes_pending > 0)
    return;
  free(m->mids);
  m->mids = NULL;
  m->n_mids = m->cap_mids = 0;
  if (m->close_cb)
    m->close_cb(m);
}

void vm_mqtt_close(struct vm_mqtt *m, void (*close_cb)(struct vm_mqtt *m)) {
  if (m->closing)
    return;
  if (m->state != VM_MQTT_IDLE)
    vm_log_info(m->who, "mqtt: session to %s:%d closed", m->conf.host, m->conf.port);
  m->closing = true;
  m->close_cb = close_cb;
  m->state = VM_MQTT_IDLE;
  vm_netlink_remove(&m->link);
  gai_detach(m);
  poll_release(m);
  m->closes_pending = 3;
  uv_close((uv_handle_t *)&m->misc_timer, timer_closed);
  uv_close((uv_handle_t *)&m->op_timer, timer_closed);
  uv_close((uv_handle_t *)&m->defer_timer, timer_closed);
  settle(m); /* frees libmosquitto now, or when its call on the stack returns */
}

bool vm_mqtt_is_connected(const struct vm_mqtt *m) {
  return !m->closing && m->state == VM_MQTT_CONNECTED;
}
