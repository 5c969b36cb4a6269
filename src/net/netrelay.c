/* netrelay.c - the relay that `net blackhole` and `net delay` need
 * (netfault.h): one TCP connection of a module carried through the daemon,
 * only on modules whose config enables faults.
 *
 * The transport (libmosquitto, libcurl, the WebSocket transport) connects
 * to a loopback listener of the relay; the relay connects to the real
 * destination. What one side sends is read at once and kept as a chunk
 * stamped with its arrival; a chunk leaves for the other side once the
 * module's delay has passed since it arrived, and not at all while the
 * module is blackholed. That is TCP over a lossy path as the endpoints see
 * it: a lost segment is retransmitted, so the stream stalls rather than
 * loses bytes, and flows again when the path comes back (unless a keepalive
 * gave up first). The ends travel the same way: EOF as a FIN (shutdown),
 * a read error as an RST (SO_LINGER 0 close), each after the bytes before it.
 * The upstream connect is a packet exchange too: it starts only while the
 * path is up, and its result is reported one round trip (2 x delay) after
 * it completed.
 *
 * Memory is bounded: a side is no longer read while more than HIGH_WATER
 * bytes from it wait, which, as a full TCP window would, stops its writer.
 *
 * Descriptors: the listener until the client is accepted (then closed), the
 * client's accepted socket and the upstream socket. */
#include "vmodule/netfault.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "vmodule/log.h"
#include "vmodule/module.h"

#define CHUNK_CAP 16384
#define HIGH_WATER (256u << 10)
#define LOW_WATER (64u << 10)

enum kind { K_DATA, K_EOF, K_RST };
enum { CL2UP = 0, UP2CL = 1 };

struct chunk {
  uv_write_t req; /* while it is written */
  struct chunk *next;
  struct vm_netrelay *r;
  int dir;
  enum kind kind;
  uint64_t at; /* uv_now() when it arrived */
  size_t len;
  unsigned char data[];
};

struct dir {
  struct chunk *head, *tail;
  size_t held;  /* bytes queued or being written */
  bool reading; /* uv_read_start on its source */
  bool ended;   /* its source gave EOF or an error: no more reading */
  bool shut;    /* the EOF was passed on (shutdown issued) */
};

struct vm_netrelay {
  struct vm_module *m;
  uv_loop_t *loop;
  struct sockaddr_storage dst;
  struct sockaddr_in local;
  uv_tcp_t listener, up;
  uv_tcp_t *cl; /* heap: a stranger that connects is closed on its own */
  bool listener_open, up_open, cl_open;
  uv_timer_t timer;
  bool timer_open;
  uv_connect_t creq;
  uv_shutdown_t sreq[2];
  int expect_port;
  bool expecting, up_started, up_connected;
  bool report_pending; /* the upstream connect's result waits for its time */
  int up_status;
  uint64_t report_at;
  vm_netrelay_cb cb;
  void *data;
  bool dead;
  int closes_pending, writes_pending, shutdowns_pending;
  struct dir d[2];
  struct vm_netrelay *prev, *next;
};

static struct vm_netrelay *relays; /* every live relay of the daemon */

static void pump(struct vm_netrelay *r);

/* ---- the module's fault state ---------------------------------------------- */

static bool blackholed(const struct vm_netrelay *r) { return r->m->net && r->m->net->blackhole; }
static uint64_t delay_ms(const struct vm_netrelay *r) { return r->m->net ? r->m->net->delay_ms : 0; }

/* ---- closing --------------------------------------------------------------------- */

static void chunks_free(struct dir *d) {
  while (d->head) {
    struct chunk *c = d->head;
    d->head = c->next;
    free(c);
  }
  d->tail = NULL;
}

static void maybe_free(struct vm_netrelay *r) {
  if (r->dead && r->closes_pending == 0 && r->writes_pending == 0) {
    chunks_free(&r->d[CL2UP]);
    chunks_free(&r->d[UP2CL]);
    free(r);
  }
}

static void relay_handle_closed(uv_handle_t *h) {
  struct vm_netrelay *r = h->data;
  r->closes_pending--;
  maybe_free(r);
}

static void heap_closed(uv_handle_t *h) {
  relay_handle_closed(h);
  free(h);
}

static void close_one(struct vm_netrelay *r, uv_handle_t *h, bool *open, bool rst) {
  if (!*open) return;
  *open = false;
  r->closes_pending++;
  uv_close_cb cb = h == (uv_handle_t *)r->cl ? heap_closed : relay_handle_closed;
  if (!rst || uv_tcp_close_reset((uv_tcp_t *)h, cb) < 0) uv_close(h, cb);
}

static void unlink_relay(struct vm_netrelay *r) {
  if (r->prev) r->prev->next = r->next;
  else if (relays == r) relays = r->next;
  if (r->next) r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

/* Ends the relay; rst: the sockets still open are closed with an RST. */
static void relay_end(struct vm_netrelay *r, bool rst) {
  if (r->dead) return;
  r->dead = true;
  r->cb = NULL;
  unlink_relay(r);
  close_one(r, (uv_handle_t *)&r->timer, &r->timer_open, false);
  close_one(r, (uv_handle_t *)&r->listener, &r->listener_open, false);
  close_one(r, (uv_handle_t *)r->cl, &r->cl_open, rst);
  close_one(r, (uv_handle_t *)&r->up, &r->up_open, rst);
  maybe_free(r);
}

/* Both directions passed their EOF on and everything was written. */
static void maybe_done(struct vm_netrelay *r) {
  for (int i = 0; i < 2; i++)
    if (!r->d[i].shut || r->d[i].head) return;
  if (r->writes_pending == 0 && r->shutdowns_pending == 0) relay_end(r, false);
}

/* ---- reading ----------------------------------------------------------------------- */

static uv_stream_t *src_of(struct vm_netrelay *r, int dir) {
  return dir == CL2UP ? (uv_stream_t *)r->cl : (uv_stream_t *)&r->up;
}

static uv_stream_t *dst_of(struct vm_netrelay *r, int dir) {
  return dir == CL2UP ? (uv_stream_t *)&r->up : (uv_stream_t *)r->cl;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct chunk *c = malloc(sizeof *c + CHUNK_CAP);
  (void)h;
  (void)suggested;
  *buf = c ? uv_buf_init((char *)c->data, CHUNK_CAP) : uv_buf_init(NULL, 0);
}

static void read_set(struct vm_netrelay *r, int dir, bool on) {
  struct dir *d = &r->d[dir];
  if (on == d->reading || (on && d->ended)) return;
  d->reading = on;
  if (on) uv_read_start(src_of(r, dir), alloc_cb, on_read);
  else uv_read_stop(src_of(r, dir));
}

static void push(struct vm_netrelay *r, int dir, struct chunk *c, enum kind kind, size_t len) {
  struct dir *d = &r->d[dir];
  c->next = NULL;
  c->r = r;
  c->dir = dir;
  c->kind = kind;
  c->len = len;
  c->at = uv_now(r->loop);
  if (d->tail) d->tail->next = c;
  else d->head = c;
  d->tail = c;
  d->held += len;
}

static struct chunk *marker(void) { return malloc(sizeof(struct chunk)); }

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct vm_netrelay *r = s->data;
  int dir = s == (uv_stream_t *)r->cl ? CL2UP : UP2CL;
  struct chunk *c = buf->base ? (struct chunk *)(buf->base - offsetof(struct chunk, data)) : NULL;
  if (nread > 0) {
    struct chunk *small = realloc(c, sizeof *c + (size_t)nread);
    push(r, dir, small ? small : c, K_DATA, (size_t)nread);
    if (r->d[dir].held > HIGH_WATER) read_set(r, dir, false);
  } else {
    free(c);
    if (nread == 0) return;
    /* EOF is a FIN to pass on; any other end (ECONNRESET, ENOBUFS) an RST */
    struct chunk *m = marker();
    read_set(r, dir, false);
    r->d[dir].ended = true;
    if (!m) {
      relay_end(r, true);
      return;
    }
    push(r, dir, m, nread == UV_EOF ? K_EOF : K_RST, 0);
  }
  pump(r);
}

/* ---- writing ------------------------------------------------------------------------- */

static void write_done(uv_write_t *req, int status) {
  struct chunk *c = (struct chunk *)req;
  struct vm_netrelay *r = c->r;
  int dir = c->dir;
  struct dir *d = &r->d[dir];
  (void)status; /* a broken destination reports itself through its own read */
  r->writes_pending--;
  d->held -= c->len;
  free(c);
  if (r->dead) {
    maybe_free(r);
    return;
  }
  if (d->held < LOW_WATER) read_set(r, dir, true);
  maybe_done(r);
}

static void shutdown_done(uv_shutdown_t *req, int status) {
  struct vm_netrelay *r = req->data;
  (void)status;
  r->shutdowns_pending--;
  if (!r->dead) maybe_done(r);
}

static bool dst_ready(const struct vm_netrelay *r, int dir) {
  if (dir == CL2UP) return r->up_connected && !r->report_pending;
  return r->cl_open;
}

/* Passes on every chunk of dir whose time has come. Returns false when the
 * relay ended (an RST went through). */
static bool forward(struct vm_netrelay *r, int dir, uint64_t now, uint64_t delay) {
  struct dir *d = &r->d[dir];
  while (d->head && d->head->at + delay <= now) {
    struct chunk *c = d->head;
    d->head = c->next;
    if (!d->head) d->tail = NULL;
    if (c->kind == K_RST) {
      free(c);
      vm_log_debug(r->m->name, "net relay: %s reset the connection", dir == CL2UP ? "module" : "peer");
      relay_end(r, true);
      return false;
    }
    if (c->kind == K_EOF) {
      free(c);
      d->shut = true;
      r->sreq[dir].data = r;
      if (uv_shutdown(&r->sreq[dir], dst_of(r, dir), shutdown_done) == 0) r->shutdowns_pending++;
      continue;
    }
    uv_buf_t b = uv_buf_init((char *)c->data, (unsigned)c->len);
    if (uv_write(&c->req, dst_of(r, dir), &b, 1, write_done) < 0) {
      d->held -= c->len;
      free(c);
      relay_end(r, true);
      return false;
    }
    r->writes_pending++;
  }
  return true;
}

/* ---- the upstream connect ---------------------------------------------------------- */

static void on_up_connect(uv_connect_t *req, int status) {
  struct vm_netrelay *r = req->data;
  if (r->dead || status == UV_ECANCELED) return;
  r->up_status = status;
  r->report_pending = true;
  r->report_at = uv_now(r->loop) + 2 * delay_ms(r);
  if (status == 0) {
    r->up_connected = true;
    uv_tcp_nodelay(&r->up, 1);
    read_set(r, UP2CL, true);
  }
  pump(r);
}

static void up_start(struct vm_netrelay *r) {
  r->up_started = true;
  int rc = uv_tcp_init(r->loop, &r->up);
  if (rc == 0) {
    r->up.data = r;
    r->up_open = true;
    r->creq.data = r;
    rc = uv_tcp_connect(&r->creq, &r->up, (const struct sockaddr *)&r->dst, on_up_connect);
  }
  if (rc < 0) { /* refused or unreachable inside connect(2): reported as later ones */
    r->up_status = rc;
    r->report_pending = true;
    r->report_at = uv_now(r->loop) + 2 * delay_ms(r);
  }
}

/* The connect's result reaches the owner. Returns false when the relay ended. */
static bool report(struct vm_netrelay *r) {
  vm_netrelay_cb cb = r->cb;
  int status = r->up_status;
  r->report_pending = false;
  if (status < 0) {
    vm_log_debug(r->m->name, "net relay: connect failed: %s", uv_strerror(status));
    r->cb = NULL;
    if (cb) cb(r->data, status);
    relay_end(r, true); /* a client already connected (libcurl) sees the refusal as an RST */
    return false;
  }
  if (cb) cb(r->data, 0);
  return !r->dead;
}

/* ---- the clock ------------------------------------------------------------------------ */

static void timer_cb(uv_timer_t *t) { pump(t->data); }

static void arm(struct vm_netrelay *r, uint64_t now, uint64_t delay, bool bh) {
  uint64_t next = UINT64_MAX;
  if (!bh) {
    if (r->report_pending) next = r->report_at;
    for (int i = 0; i < 2; i++)
      if (r->d[i].head && dst_ready(r, i) && r->d[i].head->at + delay < next)
        next = r->d[i].head->at + delay;
  }
  if (next == UINT64_MAX) uv_timer_stop(&r->timer);
  else uv_timer_start(&r->timer, timer_cb, next > now ? next - now : 0, 0);
}

/* Moves everything that is due, then sleeps until the next thing is. */
static void pump(struct vm_netrelay *r) {
  if (r->dead) return;
  uint64_t now = uv_now(r->loop), delay = delay_ms(r);
  bool bh = blackholed(r);
  if (!bh) {
    if (!r->up_started) up_start(r);
    if (r->report_pending && r->report_at <= now && !report(r)) return;
    for (int i = 0; i < 2; i++)
      if (dst_ready(r, i) && !forward(r, i, now, delay)) return;
  }
  arm(r, now, delay, bh);
  maybe_done(r);
}

/* ---- the client ------------------------------------------------------------------------- */

static int peer_port(uv_tcp_t *t) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) < 0 || ss.ss_family != AF_INET) return -1;
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void on_client(uv_stream_t *server, int status) {
  struct vm_netrelay *r = server->data;
  if (status < 0 || r->dead || r->cl_open) return;
  uv_tcp_t *t = malloc(sizeof *t);
  if (!t) return;
  uv_tcp_init(r->loop, t);
  t->data = r;
  r->cl = t;
  r->cl_open = true;
  if (uv_accept(server, (uv_stream_t *)t) < 0 || !r->expecting ||
      (r->expect_port > 0 && peer_port(t) != r->expect_port)) {
    vm_log_warn(r->m->name, "net relay: a connection that is not the module's was refused");
    close_one(r, (uv_handle_t *)t, &r->cl_open, false);
    return;
  }
  close_one(r, (uv_handle_t *)&r->listener, &r->listener_open, false);
  uv_tcp_nodelay(t, 1);
  read_set(r, CL2UP, true);
  pump(r);
}

static int listen_local(struct vm_netrelay *r) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int len = sizeof r->local, rc = uv_tcp_init(r->loop, &r->listener);
  if (rc < 0) return rc;
  r->listener.data = r;
  r->listener_open = true;
  if ((rc = uv_tcp_bind(&r->listener, (struct sockaddr *)&a, 0)) < 0 ||
      (rc = uv_listen((uv_stream_t *)&r->listener, 4, on_client)) < 0 ||
      (rc = uv_tcp_getsockname(&r->listener, (struct sockaddr *)&r->local, &len)) < 0)
    return rc;
  return 0;
}

/* ---- API ------------------------------------------------------------------------------------ */

struct vm_netrelay *vm_netrelay_open(struct vm_module *m, const struct sockaddr *dst,
                                     vm_netrelay_cb cb, void *data) {
  struct vm_netrelay *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->m = m;
  r->loop = m->loop;
  r->cb = cb;
  r->data = data;
  memcpy(&r->dst, dst, dst->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in));
  uv_timer_init(r->loop, &r->timer);
  r->timer.data = r;
  r->timer_open = true;
  r->next = relays;
  if (relays) relays->prev = r;
  relays = r;
  int rc = listen_local(r);
  if (rc < 0) {
    vm_log_warn(m->name, "net relay: cannot listen on 127.0.0.1: %s", uv_strerror(rc));
    relay_end(r, false);
    return NULL;
  }
  /* the connect starts from the loop, so cb cannot run inside this call */
  uv_timer_start(&r->timer, timer_cb, 0, 0);
  return r;
}

const struct sockaddr_in *vm_netrelay_local(const struct vm_netrelay *r) { return &r->local; }

void vm_netrelay_expect(struct vm_netrelay *r, int port) {
  r->expecting = true;
  r->expect_port = port;
}

void vm_netrelay_release(struct vm_netrelay *r) {
  r->cb = NULL;
  if (!r->expecting && !r->cl_open) relay_end(r, true);
}

void vm_netrelay_kick(struct vm_module *m) {
  /* from the loop: a kick must not run owners' callbacks inside a fault verb */
  for (struct vm_netrelay *r = relays; r; r = r->next)
    if (r->m == m) uv_timer_start(&r->timer, timer_cb, 0, 0);
}

void vm_netrelay_stop_all(struct vm_module *m) {
  struct vm_netrelay *r = relays, *next;
  for (; r; r = next) {
    next = r->next;
    if (r->m == m) relay_end(r, false);
  }
}
