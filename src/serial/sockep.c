/* sockep.c - what the stream-socket serial endpoints share (sockep.h): the
 * TCP one (tcp.c, ser2net style, for a daemon in Docker reached through a
 * host-side `socat pty,rawer,link=/tmp/ttyVM0 tcp:127.0.0.1:PORT`) and the
 * unix one (unixsock.c, for fleets). Only binding and naming differ.
 *
 * A UART has one peer, so there is one client at a time; a second one is
 * told so in one line, sees EOF and is closed. While a client is connected
 * the module makes this endpoint its TX sink (on_presence); the sink keeps
 * at most one uv_write in flight per client, from the client's own buffer,
 * and answers -EAGAIN meanwhile, which gives the TX queue the same
 * backpressure as a full PTY. The buffers live with the client, so an
 * endpoint nobody is connected to costs no more than its listener.
 *
 * `serial unplug` closes the client and the listener (new clients are then
 * refused, as by a serial server whose device is gone); `plug` listens again
 * at the same place. The listener is allocated, so that a new one can start
 * while the old handle is still closing. */
#include "vmodule/sockep.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/log.h"
#include "vmodule/txq.h"

#define SOCK_READ_CHUNK 4096
#define SOCK_BACKLOG 4
/* A refused client that does not close after our EOF is cut off after this. */
#define SOCK_REJECT_TIMEOUT_MS 1000

static const char sock_busy_msg[] = "ERROR: serial port busy (another client is connected)\r\n";

/* The connected client; ep->client points to its first member. */
struct sock_conn {
  union vm_sock_handle h;
  struct vm_sockep *ep;
  uv_write_t wreq;
  int writing;
  char peer[64]; /* kept for the disconnect log: getpeername fails after a reset */
  char rbuf[SOCK_READ_CHUNK];
  char wbuf[4096];
};

/* A refused client, alive until its socket and timer are both closed. */
struct sock_reject {
  union vm_sock_handle h;
  uv_timer_t timer;
  uv_write_t wreq;
  uv_shutdown_t sreq;
  int open_handles, closing;
};

static const char *sock_who(const struct vm_sockep *ep) {
  return ep->name ? ep->name : ep->ops->kind;
}

/* ---- refusing a second client ------------------------------------------ */

static void sock_reject_closed(uv_handle_t *handle) {
  struct sock_reject *r = handle->data;

  if (--r->open_handles == 0)
    free(r);
}

static void sock_reject_finish(struct sock_reject *r) {
  if (r->closing)
    return;
  r->closing = 1;
  uv_close(&r->h.handle, sock_reject_closed);
  uv_close((uv_handle_t *)&r->timer, sock_reject_closed);
}

static void sock_reject_timeout(uv_timer_t *timer) { sock_reject_finish(timer->data); }

static void sock_reject_shut(uv_shutdown_t *req, int status) {
  if (status < 0)
    sock_reject_finish(req->data);
}

/* After the message, our FIN; we then wait for the client to close so that
 * unread input on our side cannot turn the close into a RST that might
 * destroy the message before the client reads it. */
static void sock_reject_written(uv_write_t *req, int status) {
  struct sock_reject *r = req->data;

  if (status < 0 || r->closing) {
    sock_reject_finish(r);
    return;
  }
  r->sreq.data = r;
  if (uv_shutdown(&r->sreq, &r->h.stream, sock_reject_shut) < 0)
    sock_reject_finish(r);
}

static void sock_discard_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  static char sink[256]; /* contents are never looked at */

  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(sink, sizeof sink);
}

static void sock_reject_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0)
    sock_reject_finish(stream->data);
}

static void sock_reject(struct vm_sockep *ep) {
  struct sock_reject *r = calloc(1, sizeof *r);
  uv_buf_t msg = uv_buf_init((char *)sock_busy_msg, sizeof sock_busy_msg - 1);
  char peer[64];

  if (!r || ep->ops->init(ep->loop, &r->h) < 0) {
    free(r);
    vm_log_error(sock_who(ep), "cannot refuse a second client: out of memory");
    return; /* the connection stays in the backlog until the client gives up */
  }
  r->h.handle.data = r;
  r->open_handles = 1;
  if (uv_timer_init(ep->loop, &r->timer) == 0) {
    r->timer.data = r;
    r->open_handles++;
  }
  if (r->open_handles < 2 || uv_accept(&ep->server->stream, &r->h.stream) < 0) {
    if (r->open_handles == 2)
      uv_close((uv_handle_t *)&r->timer, sock_reject_closed);
    r->closing = 1;
    uv_close(&r->h.handle, sock_reject_closed);
    return;
  }
  ep->ops->peer(&r->h, peer, sizeof peer);
  vm_log_info(sock_who(ep), "refused client %s: serial port busy", peer);
  r->wreq.data = r;
  if (uv_write(&r->wreq, &r->h.stream, &msg, 1, sock_reject_written) < 0 ||
      uv_read_start(&r->h.stream, sock_discard_alloc, sock_reject_read) < 0 ||
      uv_timer_start(&r->timer, sock_reject_timeout, SOCK_REJECT_TIMEOUT_MS, 0) < 0)
    sock_reject_finish(r);
}

/* ---- the client -------------------------------------------------------- */

static void sock_conn_closed(uv_handle_t *handle) { free(handle); /* struct sock_conn */ }

/* Forgets the client; on_presence(0) unless the endpoint itself is closing. */
static void sock_drop_client(struct vm_sockep *ep, int notify) {
  uv_stream_t *c = ep->client;

  ep->client = NULL;
  uv_read_stop(c);
  uv_close((uv_handle_t *)c, sock_conn_closed);
  if (notify && ep->on_presence)
    ep->on_presence(ep->data, ep, 0);
}

static void sock_client_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  struct sock_conn *c = (struct sock_conn *)handle;

  (void)suggested;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void sock_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  struct sock_conn *c = (struct sock_conn *)stream;
  struct vm_sockep *ep = c->ep;

  if (nread > 0) {
    if (ep->on_input)
      ep->on_input(ep->data, buf->base, (size_t)nread);
    return;
  }
  if (nread == 0)
    return; /* EAGAIN */
  if (nread == UV_EOF)
    vm_log_info(sock_who(ep), "client %s disconnected", c->peer);
  else
    vm_log_info(sock_who(ep), "client %s disconnected: %s", c->peer, uv_strerror((int)nread));
  if (ep->client == stream)
    sock_drop_client(ep, 1);
}

static void sock_on_connection(uv_stream_t *server, int status) {
  struct vm_sockep *ep = server->data;
  struct sock_conn *c;
  int r;

  if (status < 0) {
    vm_log_warn(sock_who(ep), "accept: %s", uv_strerror(status));
    return;
  }
  if (ep->client) {
    sock_reject(ep);
    return;
  }
  c = calloc(1, sizeof *c);
  if (!c || ep->ops->init(ep->loop, &c->h) < 0) {
    free(c);
    vm_log_error(sock_who(ep), "cannot accept a client: out of memory");
    return;
  }
  c->ep = ep;
  r = uv_accept(server, &c->h.stream);
  if (r == 0)
    r = uv_read_start(&c->h.stream, sock_client_alloc, sock_client_read);
  if (r < 0) {
    vm_log_warn(sock_who(ep), "accept: %s", uv_strerror(r));
    uv_close(&c->h.handle, sock_conn_closed);
    return;
  }
  if (c->h.handle.type == UV_TCP)
    uv_tcp_nodelay(&c->h.tcp, 1); /* paced UART bytes must not wait for Nagle */
  ep->ops->peer(&c->h, c->peer, sizeof c->peer);
  ep->client = &c->h.stream;
  vm_log_info(sock_who(ep), "client %s connected", c->peer);
  if (ep->on_presence)
    ep->on_presence(ep->data, ep, 1);
}

/* ---- sink -------------------------------------------------------------- */

static void sock_on_written(uv_write_t *req, int status) {
  struct sock_conn *c = req->data;
  struct vm_sockep *ep = c->ep;

  c->writing = 0;
  if (status < 0 && status != UV_ECANCELED)
    vm_log_debug(sock_who(ep), "write to client: %s", uv_strerror(status));
  if (ep->client != &c->h.stream)
    return; /* a client that has gone: the next one starts afresh */
  if (ep->want_writable) {
    ep->want_writable = 0;
    if (ep->sink.txq)
      vm_txq_on_writable(ep->sink.txq);
  }
}

static ssize_t sock_sink_write(struct vm_sink *sink, const void *buf, size_t len) {
  struct vm_sockep *ep = (struct vm_sockep *)sink;
  struct sock_conn *c = (struct sock_conn *)ep->client;
  uv_buf_t b;
  int r;

  if (!c)
    return -ENOTCONN;
  if (c->writing)
    return -EAGAIN;
  if (len > sizeof c->wbuf)
    len = sizeof c->wbuf;
  memcpy(c->wbuf, buf, len);
  b = uv_buf_init(c->wbuf, (unsigned)len);
  c->wreq.data = c;
  r = uv_write(&c->wreq, &c->h.stream, &b, 1, sock_on_written);
  if (r < 0)
    return r;
  c->writing = 1;
  return (ssize_t)len;
}

/* The only -EAGAIN comes from a write in flight, whose completion reports. */
static void sock_sink_want_writable(struct vm_sink *sink, int on) {
  ((struct vm_sockep *)sink)->want_writable = on;
}

static const struct vm_sink_ops sock_sink_ops = {
    .write = sock_sink_write,
    .want_writable = sock_sink_want_writable,
};

/* ---- listen / close ---------------------------------------------------- */

static void sock_server_closed(uv_handle_t *handle) { free(handle); }

static void sock_server_close(struct vm_sockep *ep) {
  uv_close(&ep->server->handle, sock_server_closed);
  ep->server = NULL;
  if (ep->ops->closed)
    ep->ops->closed(ep);
}

/* A listener in ep->server. Returns 0 or a libuv error. */
static int sock_server_open(struct vm_sockep *ep, uv_loop_t *loop) {
  union vm_sock_handle *server = malloc(sizeof *server);
  int r;

  if (!server)
    return UV_ENOMEM;
  r = ep->ops->init(loop, server);
  if (r < 0) {
    free(server);
    return r;
  }
  server->handle.data = ep;
  ep->server = server;
  r = ep->ops->open(ep, server, sock_on_connection);
  if (r < 0) {
    uv_close(&server->handle, sock_server_closed);
    ep->server = NULL;
  }
  return r;
}

void vm_sockep_init(struct vm_sockep *ep, const struct vm_sockep_ops *ops, const char *name,
                    vm_input_cb on_input, vm_sockep_presence_cb on_presence, void *data) {
  memset(ep, 0, sizeof *ep);
  ep->sink.ops = &sock_sink_ops;
  ep->ops = ops;
  ep->name = name;
  ep->on_input = on_input;
  ep->on_presence = on_presence;
  ep->data = data;
}

int vm_sockep_start(struct vm_sockep *ep, uv_loop_t *loop) {
  int r = sock_server_open(ep, loop);

  if (r < 0) {
    vm_log_error(sock_who(ep), "cannot listen on %s: %s", ep->where, uv_strerror(r));
    return r;
  }
  ep->loop = loop; /* also marks the endpoint open for vm_sockep_close */
  vm_log_info(sock_who(ep), "%s serial endpoint on %s", ep->ops->kind, ep->where);
  return 0;
}

void vm_sockep_close(struct vm_sockep *ep) {
  if (!ep->loop)
    return;
  if (ep->client)
    sock_drop_client(ep, 0);
  ep->want_writable = 0;
  if (ep->server)
    sock_server_close(ep);
  ep->loop = NULL;
}

/* ---- unplug / plug ----------------------------------------------------- */

int vm_sockep_unplug(struct vm_sockep *ep) {
  if (!ep->loop)
    return -EBADF;
  if (!ep->server)
    return -EALREADY;
  if (ep->client) {
    vm_log_info(sock_who(ep), "client %s dropped: serial port unplugged",
                ((struct sock_conn *)ep->client)->peer);
    sock_drop_client(ep, 1);
  }
  sock_server_close(ep);
  vm_log_info(sock_who(ep), "%s serial endpoint on %s unplugged: refusing clients",
              ep->ops->kind, ep->where);
  return 0;
}

int vm_sockep_plug(struct vm_sockep *ep) {
  int r;

  if (!ep->loop)
    return -EBADF;
  if (ep->server)
    return -EALREADY;
  r = sock_server_open(ep, ep->loop);
  if (r < 0) {
    vm_log_error(sock_who(ep), "cannot listen on %s again: %s", ep->where, uv_strerror(r));
    return r;
  }
  vm_log_info(sock_who(ep), "%s serial endpoint on %s plugged: accepting clients", ep->ops->kind,
              ep->where);
  return 0;
}
