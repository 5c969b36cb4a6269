/* tcp.c - raw TCP serial endpoint (ser2net style) for hosts that cannot open
 * the PTY, e.g. a daemon in Docker reached through a host-side
 * `socat pty,rawer,link=/tmp/ttyVM0 tcp:127.0.0.1:PORT`.
 *
 * The byte stream is the same as on the PTY, with no framing or telnet
 * options. A UART has one peer, so there is one client at a time; a second one
 * is told so in one line, sees EOF and is closed. While a client is connected
 * the module makes this endpoint its TX sink (on_presence); the sink keeps at
 * most one uv_write in flight, from wbuf, and answers -EAGAIN meanwhile, which
 * gives the TX queue the same backpressure as a full PTY.
 *
 * `serial unplug` closes the client and the listener (new clients are then
 * refused, as by a serial server whose device is gone); `plug` listens again
 * on the same address and port. The listener is allocated, so that a new one
 * can start while the old handle is still closing. */
#include "vmodule/tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/log.h"
#include "vmodule/txq.h"

#define TCP_READ_CHUNK 4096
#define TCP_BACKLOG 4
/* A refused client that does not close after our EOF is cut off after this. */
#define TCP_REJECT_TIMEOUT_MS 1000

static const char tcp_busy_msg[] = "ERROR: serial port busy (another client is connected)\r\n";

/* The connected client; t->client points to its first member. */
struct tcp_conn {
  uv_tcp_t tcp;
  char peer[64]; /* kept for the disconnect log: getpeername fails after a reset */
  char rbuf[TCP_READ_CHUNK];
};

/* A refused client, alive until its socket and timer are both closed. */
struct tcp_reject {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  int open_handles, closing;
};

static const char *tcp_who(const struct vm_tcp *t) { return t->name ? t->name : "tcp"; }

/* "1.2.3.4:5678" or "[::1]:5678" ("unknown" for another family). */
static void tcp_addr_name(const struct sockaddr_storage *ss, char *out, size_t cap) {
  char ip[48];

  snprintf(out, cap, "unknown");
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

    if (uv_ip6_name(a, ip, sizeof ip) == 0)
      snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

    if (uv_ip4_name(a, ip, sizeof ip) == 0)
      snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
  }
}

/* The peer's name; "unknown" when it reset before accept. */
static void tcp_peer_name(const uv_tcp_t *tcp, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof ss;

  snprintf(out, cap, "unknown");
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0)
    tcp_addr_name(&ss, out, cap);
}

/* ---- refusing a second client ------------------------------------------ */

static void tcp_reject_closed(uv_handle_t *handle) {
  struct tcp_reject *r = handle->data;

  if (--r->open_handles == 0)
    free(r);
}

static void tcp_reject_finish(struct tcp_reject *r) {
  if (r->closing)
    return;
  r->closing = 1;
  uv_close((uv_handle_t *)&r->tcp, tcp_reject_closed);
  uv_close((uv_handle_t *)&r->timer, tcp_reject_closed);
}

static void tcp_reject_timeout(uv_timer_t *timer) { tcp_reject_finish(timer->data); }

static void tcp_reject_shut(uv_shutdown_t *req, int status) {
  if (status < 0)
    tcp_reject_finish(req->data);
}

/* After the message, our FIN; we then wait for the client to close so that
 * unread input on our side cannot turn the close into a RST that might
 * destroy the message before the client reads it. */
static void tcp_reject_written(uv_write_t *req, int status) {
  struct tcp_reject *r = req->data;

  if (status < 0 || r->closing) {
    tcp_reject_finish(r);
    return;
  }
  r->sreq.data = r;
  if (uv_shutdown(&r->sreq, (uv_stream_t *)&r->tcp, tcp_reject_shut) < 0)
    tcp_reject_finish(r);
}

static void tcp_discard_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  static char sink[256]; /* contents are never looked at */

  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(sink, sizeof sink);
}

static void tcp_reject_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0)
    tcp_reject_finish(stream->data);
}

static void tcp_reject(struct vm_tcp *t) {
  struct tcp_reject *r = calloc(1, sizeof *r);
  uv_buf_t msg = uv_buf_init((char *)tcp_busy_msg, sizeof tcp_busy_msg - 1);
  char peer[64];

  if (!r || uv_tcp_init(t->loop, &r->tcp) < 0) {
    free(r);
    vm_log_error(tcp_who(t), "cannot refuse a second client: out of memory");
    return; /* the connection stays in the backlog until the client gives up */
  }
  r->tcp.data = r;
  r->open_handles = 1;
  if (uv_timer_init(t->loop, &r->timer) == 0) {
    r->timer.data = r;
    r->open_handles++;
  }
  if (r->open_handles < 2 || uv_accept((uv_stream_t *)t->server, (uv_stream_t *)&r->tcp) < 0) {
    if (r->open_handles == 2)
      uv_close((uv_handle_t *)&r->timer, tcp_reject_closed);
    r->closing = 1;
    uv_close((uv_handle_t *)&r->tcp, tcp_reject_closed);
    return;
  }
  tcp_peer_name(&r->tcp, peer, sizeof peer);
  vm_log_info(tcp_who(t), "refused client %s: serial port busy", peer);
  r->wreq.data = r;
  if (uv_write(&r->wreq, (uv_stream_t *)&r->tcp, &msg, 1, tcp_reject_written) < 0 ||
      uv_read_start((uv_stream_t *)&r->tcp, tcp_discard_alloc, tcp_reject_read) < 0 ||
      uv_timer_start(&r->timer, tcp_reject_timeout, TCP_REJECT_TIMEOUT_MS, 0) < 0)
    tcp_reject_finish(r);
}

/* ---- the client -------------------------------------------------------- */

static void tcp_conn_closed(uv_handle_t *handle) { free(handle); /* struct tcp_conn */ }

/* Forgets the client; on_presence(0) unless the endpoint itself is closing. */
static void tcp_drop_client(struct vm_tcp *t, int notify) {
  uv_tcp_t *c = t->client;

  t->client = NULL;
  uv_read_stop((uv_stream_t *)c);
  uv_close((uv_handle_t *)c, tcp_conn_closed);
  if (notify && t->on_presence)
    t->on_presence(t->data, 0);
}

static void tcp_client_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  struct tcp_conn *c = (struct tcp_conn *)handle;

  (void)suggested;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void tcp_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct vm_tcp *t = stream->data;
  struct tcp_conn *c = (struct tcp_conn *)stream;

  if (nread > 0) {
    if (t->on_input)
      t->on_input(t->data, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0)
    return; /* EAGAIN */
  if (nread == UV_EOF)
    vm_log_info(tcp_who(t), "client %s disconnected", c->peer);
  else
    vm_log_info(tcp_who(t), "client %s disconnected: %s", c->peer, uv_strerror((int)nread));
  if (t->client == &c->tcp)
    tcp_drop_client(t, 1);
}

static void tcp_on_connection(uv_stream_t *server, int status) {
  struct vm_tcp *t = server->data;
  struct tcp_conn *c;
  int r;

  if (status < 0) {
    vm_log_warn(tcp_who(t), "accept: %s", uv_strerror(status));
    return;
  }
  if (t->client) {
    tcp_reject(t);
    return;
  }
  c = calloc(1, sizeof *c);
  if (!c || uv_tcp_init(t->loop, &c->tcp) < 0) {
    free(c);
    vm_log_error(tcp_who(t), "cannot accept a client: out of memory");
    return;
  }
  c->tcp.data = t;
  r = uv_accept(server, (uv_stream_t *)&c->tcp);
  if (r == 0)
    r = uv_read_start((uv_stream_t *)&c->tcp, tcp_client_alloc, tcp_client_read);
  if (r < 0) {
    vm_log_warn(tcp_who(t), "accept: %s", uv_strerror(r));
    uv_close((uv_handle_t *)&c->tcp, tcp_conn_closed);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1); /* paced UART bytes must not wait for Nagle */
  tcp_peer_name(&c->tcp, c->peer, sizeof c->peer);
  t->client = &c->tcp;
  vm_log_info(tcp_who(t), "client %s connected", c->peer);
  if (t->on_presence)
    t->on_presence(t->data, 1);
}

/* ---- sink -------------------------------------------------------------- */

static void tcp_on_written(uv_write_t *req, int status) {
  struct vm_tcp *t = req->data;

  t->writing = 0;
  if (status < 0 && status != UV_ECANCELED)
    vm_log_debug(tcp_who(t), "write to client: %s", uv_strerror(status));
  if (t->want_writable) {
    t->want_writable = 0;
    if (t->sink.txq)
      vm_txq_on_writable(t->sink.txq);
  }
}

static ssize_t tcp_sink_write(struct vm_sink *sink, const void *buf, size_t len) {
  struct vm_tcp *t = (struct vm_tcp *)sink;
  uv_buf_t b;
  int r;

  if (!t->client)
    return -ENOTCONN;
  if (t->writing)
    return -EAGAIN;
  if (len > sizeof t->wbuf)
    len = sizeof t->wbuf;
  memcpy(t->wbuf, buf, len);
  b = uv_buf_init(t->wbuf, (unsigned)len);
  t->wreq.data = t;
  r = uv_write(&t->wreq, (uv_stream_t *)t->client, &b, 1, tcp_on_written);
  if (r < 0)
    return r;
  t->writing = 1;
  return (ssize_t)len;
}

/* The only -EAGAIN comes from a write in flight, whose completion reports. */
static void tcp_sink_want_writable(struct vm_sink *sink, int on) {
  ((struct vm_tcp *)sink)->want_writable = on;
}

static const struct vm_sink_ops tcp_sink_ops = {
    .write = tcp_sink_write,
    .want_writable = tcp_sink_want_writable,
};

/* ---- listen / close ---------------------------------------------------- */

static int tcp_parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1"; /* resolving would block the loop; this one is certain */
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return -EINVAL;
}

/* Keeps the bound address (with the port chosen for port 0) for plug. */
static int tcp_bound_port(struct vm_tcp *t) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int r = uv_tcp_getsockname(t->server, (struct sockaddr *)&ss, &len);

  if (r < 0)
    return r;
  t->addr = ss;
  t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

static void tcp_server_closed(uv_handle_t *handle) { free(handle); }

/* A listener on t->addr, in t->server. Returns 0 or a libuv error. */
static int tcp_server_open(struct vm_tcp *t, uv_loop_t *loop) {
  uv_tcp_t *server = malloc(sizeof *server);
  int r;

  if (!server)
    return UV_ENOMEM;
  r = uv_tcp_init(loop, server);
  if (r < 0) {
    free(server);
    return r;
  }
  server->data = t;
  t->server = server;
  r = uv_tcp_bind(server, (const struct sockaddr *)&t->addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)server, TCP_BACKLOG, tcp_on_connection);
  if (r == 0)
    r = tcp_bound_port(t);
  if (r < 0) {
    uv_close((uv_handle_t *)server, tcp_server_closed);
    t->server = NULL;
  }
  return r;
}

int vm_tcp_listen(struct vm_tcp *t, uv_loop_t *loop, const char *name, const char *host,
                  int port, vm_input_cb on_input, vm_tcp_presence_cb on_presence, void *data) {
  int r;

  memset(t, 0, sizeof *t);
  t->sink.ops = &tcp_sink_ops;
  t->name = name;
  t->on_input = on_input;
  t->on_presence = on_presence;
  t->data = data;
  if (!host || !*host)
    host = "127.0.0.1";
  if (port < 0 || port > 65535 || tcp_parse_addr(host, port, &t->addr) < 0) {
    vm_log_error(tcp_who(t), "invalid TCP listen address %s:%d", host, port);
    return -EINVAL;
  }
  r = tcp_server_open(t, loop);
  if (r < 0) {
    vm_log_error(tcp_who(t), "cannot listen on %s:%d: %s", host, port, uv_strerror(r));
    return r;
  }
  t->loop = loop; /* also marks the endpoint open for vm_tcp_close */
  vm_log_info(tcp_who(t), "tcp serial endpoint on %s:%d", host, t->port);
  return 0;
}

/* Closes the client without on_presence: the module is going away. t must
 * live until the loop has run the closes (a cancelled write still reports to
 * it). A refused client still being told "busy" finishes on its own within a
 * second. */
void vm_tcp_close(struct vm_tcp *t) {
  if (!t->loop)
    return;
  if (t->client)
    tcp_drop_client(t, 0);
  t->want_writable = 0;
  if (t->server)
    uv_close((uv_handle_t *)t->server, tcp_server_closed);
  t->server = NULL;
  t->loop = NULL;
}

/* ---- unplug / plug ----------------------------------------------------- */

int vm_tcp_unplug(struct vm_tcp *t) {
  char where[64];

  if (!t->loop)
    return -EBADF;
  if (!t->server)
    return -EALREADY;
  if (t->client) {
    vm_log_info(tcp_who(t), "client %s dropped: serial port unplugged",
                ((struct tcp_conn *)t->client)->peer);
    tcp_drop_client(t, 1);
  }
  uv_close((uv_handle_t *)t->server, tcp_server_closed);
  t->server = NULL;
  tcp_addr_name(&t->addr, where, sizeof where);
  vm_log_info(tcp_who(t), "tcp serial endpoint on %s unplugged: refusing clients", where);
  return 0;
}

int vm_tcp_plug(struct vm_tcp *t) {
  char where[64];
  int r;

  if (!t->loop)
    return -EBADF;
  if (t->server)
    return -EALREADY;
  tcp_addr_name(&t->addr, where, sizeof where);
  r = tcp_server_open(t, t->loop);
  if (r < 0) {
    vm_log_error(tcp_who(t), "cannot listen on %s again: %s", where, uv_strerror(r));
    return r;
  }
  vm_log_info(tcp_who(t), "tcp serial endpoint on %s plugged: accepting clients", where);
  return 0;
}
