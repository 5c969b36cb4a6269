/* http.h - HTTP(S) client requests on the libuv loop (libcurl multi
 * interface, platform-and-peers.md §2c): GET and POST with a body and extra
 * headers, a CA file, connect, idle and total timeouts, streaming of the
 * response body with flow control (pause and resume), and one completion
 * callback with the status code and the body. Name resolution runs in libcurl's resolver
 * thread; nothing here blocks the loop.
 *
 * A struct vm_http is a caller-allocated client (one per module that may do
 * HTTP); a struct vm_http_req is one caller-allocated request that must stay
 * valid until its callback has run or vm_http_cancel() returned. The clients
 * of a loop share one libcurl multi handle (with its socketpair, one timer and
 * a uv_poll_t per socket libcurl opens): it is made by the first request of
 * any client and freed when the last client that used it closes, so a client
 * that never sends a request holds no descriptor and no libcurl state. Each
 * request opens its own connection and closes it when it is done, as a
 * module's HTTP client does; no request rides another module's connection.
 *
 * Callback contract: every vm_http_start() that returned 0 produces exactly
 * one done() call unless the request is cancelled (vm_http_cancel(), or
 * vm_http_close() of its client) first; done() never runs inside
 * vm_http_start(). Callbacks may start, cancel or free requests, including
 * their own (it is finished when done() runs), and may close clients. */
#ifndef VMODULE_HTTP_H
#define VMODULE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "vmodule/netfault.h"

struct vm_http;
struct vm_http_req;
struct vm_http_share;
struct curl_slist;

/* result: 0 when an HTTP response arrived (any status, see status), else
 * one code per way of failing, as libcurl tells them apart:
 *   -ETIMEDOUT     the connect or the whole-transfer timeout elapsed
 *                  (CURLE_OPERATION_TIMEDOUT);
 *   -EHOSTUNREACH  the name did not resolve (CURLE_COULDNT_RESOLVE_HOST);
 *   -ECONNREFUSED  no TCP connection to any address of the host: refused,
 *                  or no route (CURLE_COULDNT_CONNECT);
 *   -EMFILE        no descriptor was left for the socket (EMFILE or ENFILE;
 *                  logged as a WARN naming the client);
 *   -EPROTO        the TLS handshake failed: the peer reset or closed the
 *                  connection during it, or its certificate was refused
 *                  (CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION...);
 *   -ECONNRESET    the connection broke after it was made: sending or
 *                  receiving failed, or it closed without an answer
 *                  (CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING);
 *   -EFBIG         the body passed max_body; -ECANCELED on_data asked to stop;
 *   -EIO           anything else.
 * Every failure comes as soon as libcurl sees it; req->error has libcurl's
 * text of it. */
typedef void (*vm_http_done_cb)(struct vm_http_req *req, int result, long status,
                                const char *body, size_t len, void *data);
/* Streaming: receives the body as it arrives (then done() gets no body; a
 * body of any status comes here: vm_http_status() tells which). Return 0
 * when all len bytes were taken, VM_HTTP_PAUSE to take none of them now
 * (the transfer stops reading until vm_http_resume(), and then offers the
 * same bytes again), anything else to abort with -ECANCELED. */
#define VM_HTTP_PAUSE 1
typedef int (*vm_http_data_cb)(struct vm_http_req *req, const void *buf, size_t len, void *data);

struct vm_http_opts {
  const char *method; /* "GET" (default when NULL) or "POST"; other verbs are sent as given */
  const char *url;
  const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
  const void *body;           /* request body (POST); copied */
  size_t body_len;
  const char *ca_file;        /* PEM bundle for https; NULL: the system store */
  bool insecure;              /* no certificate or host name check (lab servers only) */
  unsigned connect_timeout_ms; /* 0: 10000 */
  unsigned timeout_ms;         /* whole transfer; 0: 30000, or none with idle_timeout_ms */
  unsigned idle_timeout_ms;    /* > 0: -ETIMEDOUT once no byte came for this long
                                  (whole seconds, at least 1; paused time not counted) */
  size_t max_body;             /* in-memory body limit; 0: 1 MiB */
  vm_http_data_cb on_data;     /* NULL: the body is collected for done() */
  struct vm_module *net;       /* whose `net` faults apply (netfault.h); NULL: none */
};

/* A relay (netfault.h) one of a request's sockets goes through. */
struct vm_http_relay {
  struct vm_http_req *req;
  struct vm_netrelay *relay; /* NULL once it reported a failure */
};
#define VM_HTTP_MAX_SOCKS 2 /* libcurl may try IPv6 and IPv4 at once */

struct vm_http_req {
  struct vm_http *http;
  void *easy; /* CURL *, NULL when idle */
  struct curl_slist *hdrs;
  char *buf; /* collected response body (NUL-terminated) */
  size_t len, cap, max_body;
  vm_http_data_cb on_data;
  vm_http_done_cb done;
  void *data;
  bool too_big, aborted, paused;
  int sock_errno; /* why socket() failed in the open callback, or 0 */
  char error[256]; /* libcurl's error text of the last failure */
  struct vm_http_req *next;
  /* net faults */
  struct vm_module *net;
  struct vm_netlink link;  /* in the registry while in flight with net set */
  char *unresolved;        /* dns-fail: the host name that must not resolve */
  bool dns_failed;         /* ...and a socket was refused for it */
  int relay_err;           /* a relay's upstream connect failed (-errno) */
  struct { int fd; ino_t ino; } socks[VM_HTTP_MAX_SOCKS]; /* opened, newest last */
  int nsocks;
  struct vm_http_relay relays[VM_HTTP_MAX_SOCKS];
  int nrelays;
};

struct vm_http {
  uv_loop_t *loop;
  const char *who;                /* log prefix, borrowed */
  struct vm_http_share *share;    /* the loop's multi handle; NULL until the first request */
  struct vm_http_req *reqs;       /* in flight */
  bool closing;
  uv_idle_t closer;               /* never started: closing it runs close_cb on the loop */
  void (*close_cb)(struct vm_http *h);
};

/* Prepares h; allocates nothing and opens nothing. Returns 0. */
int vm_http_init(struct vm_http *h, uv_loop_t *loop, const char *who);
/* Starts a request (o and its strings are copied); req must be zeroed or
 * idle. The first request of the loop makes the shared multi handle
 * (curl_global_init once per process). Returns 0, -EINVAL (no url, req in
 * flight, or h closing), -ENOMEM, or -EIO. */
int vm_http_start(struct vm_http *h, struct vm_http_req *req, const struct vm_http_opts *o,
                  vm_http_done_cb done, void *data);
/* Abandons a request in flight; its callback will not run. No-op when idle. */
void vm_http_cancel(struct vm_http_req *req);
bool vm_http_busy(const struct vm_http_req *req);
/* The status of the response being received (0 before its headers): for
 * on_data, to tell a 206 from a 200 or an error page. */
long vm_http_status(const struct vm_http_req *req);
/* Lets a transfer paused by on_data read again; on_data may run inside this
 * call with the bytes it refused. No-op when not paused. */
void vm_http_resume(struct vm_http_req *req);
/* Cancels every request of h and lets go of the shared multi handle (the
 * last client to go frees it); close_cb (may be NULL) runs on the loop after
 * vm_http_close() returned, and h may be freed from there. With no close_cb,
 * h may be freed once the loop has run. */
void vm_http_close(struct vm_http *h, void (*close_cb)(struct vm_http *h));

#endif
