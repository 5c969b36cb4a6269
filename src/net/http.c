/* http.c - HTTP(S) requests with the libcurl multi interface driven by the
 * libuv loop (the curl docs/examples/multi-uv.c pattern, with the fixes
 * platform-and-peers.md §2c lists):
 *
 * - CURLMOPT_SOCKETFUNCTION keeps one uv_poll_t per socket libcurl watches;
 *   CURL_POLL_REMOVE stops and closes it;
 * - CURLOPT_CLOSESOCKETFUNCTION stops any poll still on a socket before the
 *   socket is closed, so libuv never polls a closed (or reused) descriptor;
 * - CURLMOPT_TIMERFUNCTION only (re)arms one uv timer: libcurl is never
 *   called from inside its own callbacks;
 * - a poll error (negative status) is passed on as CURL_CSELECT_ERR;
 * - completed transfers are collected after every curl_multi_socket_action
 *   with curl_multi_info_read, outside libcurl.
 *
 * One multi handle serves every client of a loop (struct vm_http_share, in
 * the list `shares`): a multi costs a socketpair and about 6 KB, which a
 * fleet of idle modules should not pay each. The first request of any
 * client makes it; each client that sent a request holds a reference until
 * it closes; the last one frees it, after any result being delivered. A
 * request still belongs to its client (req->http): its result goes to its
 * own callback, and closing a client cancels its requests only. */
#include "vmodule/http.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "vmodule/log.h"

#define DEFAULT_CONNECT_MS 10000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_BODY (1024 * 1024)

struct vm_http_share {
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;
  struct vm_http_sock *socks;
  int running;
  int clients;        /* clients holding it (they sent a request and are not closed) */
  int busy;           /* inside socket_action: freeing waits until it returns */
  int closes_pending; /* its uv handles that are still closing */
  bool released;      /* the last client has gone: freed once they are closed */
  struct vm_http_share *next;
};

struct vm_http_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct vm_http_share *sh;
  struct vm_http_sock *next;
};

static bool global_done;
static struct vm_http_share *shares; /* one per loop that has sent a request */

/* ---- sockets -------------------------------------------------------------- */

static void share_closed(struct vm_http_share *sh) {
  if (--sh->closes_pending == 0 && sh->released) free(sh);
}

static void sock_closed(uv_handle_t *handle) {
  struct vm_http_sock *s = handle->data;
  struct vm_http_share *sh = s->sh;
  free(s);
  share_closed(sh);
}

/* Stops watching s (before its descriptor is closed) and frees it later. */
static void sock_release(struct vm_http_share *sh, struct vm_http_sock *s) {
  for (struct vm_http_sock **pp = &sh->socks; *pp; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  }
  uv_poll_stop(&s->poll);
  sh->closes_pending++;
  uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static struct vm_http_sock *sock_find(struct vm_http_share *sh, curl_socket_t fd) {
  for (struct vm_http_sock *s = sh->socks; s; s = s->next)
    if (s->fd == fd) return s;
  return NULL;
}

/* ---- completion --------------------------------------------------------- */

static int map_result(const struct vm_http_req *r, CURLcode rc) {
  /* net faults: what a module whose lookup failed, or whose connect was
   * refused behind the relay (libcurl saw the relay accept), reports */
  if (r->dns_failed) return -EHOSTUNREACH;
  if (r->relay_err && rc != CURLE_OK && rc != CURLE_OPERATION_TIMEDOUT) return -ECONNREFUSED;
  switch (rc) {
  case CURLE_OK: return 0;
  case CURLE_WRITE_ERROR:
    if (r->too_big) return -EFBIG;
    if (r->aborted) return -ECANCELED;
    return -EIO;
  case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return -EHOSTUNREACH;
  case CURLE_COULDNT_CONNECT: return r->sock_errno ? -EMFILE : -ECONNREFUSED;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER: return -EPROTO;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING: return -ECONNRESET;
  default: return -EIO;
  }
}

static void req_unlink(struct vm_http_req *r) {
  struct vm_http *h = r->http;
  for (struct vm_http_req **pp = &h->reqs; *pp; pp = &(*pp)->next) {
    if (*pp == r) {
      *pp = r->next;
      break;
    }
  }
  r->next = NULL;
}

/* Detaches r from libcurl and frees everything but the collected body. */
static void req_teardown(struct vm_http_req *r) {
  if (r->easy) {
    curl_multi_remove_handle(r->http->share->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
  }
  curl_slist_free_all(r->hdrs);
  r->hdrs = NULL;
  req_unlink(r);
  vm_netlink_remove(&r->link);
  for (int i = 0; i < r->nrelays; i++) /* a connected relay lives on with its connection */
    if (r->relays[i].relay) vm_netrelay_release(r->relays[i].relay);
  r->nrelays = 0;
  free(r->unresolved);
  r->unresolved = NULL;
}

/* The outcome in the log: who answered, or libcurl's reason. */
static void req_log(const struct vm_http_req *r, int result, long status) {
  const char *method = NULL, *url = NULL, *ip = NULL;
  long port = 0;
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_METHOD, &method);
  curl_easy_getinfo(r->easy, CURLINFO_EFFECTIVE_URL, &url);
  curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_IP, &ip);
  curl_easy_getinfo(r->easy, CURLINFO_PRIMARY_PORT, &port);
  if (result == 0)
    vm_log_debug(r->http->who, "http: %s %s: HTTP %ld from %s port %ld", method ? method : "?",
                 url ? url : "?", status, ip && *ip ? ip : "?", port);
  else
    vm_log_debug(r->http->who, "http: %s %s failed: %s (%s)", method ? method : "?",
                 url ? url : "?", strerror(-result), r->error);
}

static void req_finish(struct vm_http_req *r, CURLcode rc) {
  long status = 0;
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
  int result = map_result(r, rc);
  if (r->dns_failed) snprintf(r->error, sizeof r->error, "Could not resolve host: %s", r->unresolved);
  else if (result == -ECONNREFUSED && r->relay_err)
    snprintf(r->error, sizeof r->error, "Failed to connect: %s", strerror(-r->relay_err));
  if (result < 0 && !r->error[0]) snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
  req_log(r, result, status);
  req_teardown(r);
  /* the callback may restart r: hand it the body and forget it first */
  char *body = r->buf;
  size_t len = r->len;
  r->buf = NULL;
  r->len = r->cap = 0;
  r->done(r, result, status, body ? body : "", body ? len : 0, r->data);
  free(body);
}

/* Delivers every finished transfer. The callbacks may cancel other requests
 * (libcurl then drops their messages) or close clients, even the last one:
 * the share stays until socket_action returns. */
static void check_done(struct vm_http_share *sh) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(sh->multi, &left))) {
    if (msg->msg != CURLMSG_DONE) continue;
    struct vm_http_req *r = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
    if (r) req_finish(r, msg->data.result);
  }
}

/* ---- freeing the shared multi handle ------------------------------------- */

static void share_timer_closed(uv_handle_t *handle) { share_closed(handle->data); }

/* Unlisted at once (the next request makes a new one); freed once libuv
 * has closed its timer and its polls. */
static void share_free_later(struct vm_http_share *sh) {
  for (struct vm_http_share **pp = &shares; *pp; pp = &(*pp)->next) {
    if (*pp == sh) {
      *pp = sh->next;
      break;
    }
  }
  sh->released = true;
  sh->closes_pending++; /* the timer's; polls add theirs in sock_release */
  curl_multi_cleanup(sh->multi); /* closes cached connections through closesocket_fn */
  sh->multi = NULL;
  while (sh->socks) sock_release(sh, sh->socks);
  uv_timer_stop(&sh->timer);
  uv_close((uv_handle_t *)&sh->timer, share_timer_closed);
}

static void share_release(struct vm_http_share *sh) {
  if (--sh->clients == 0 && sh->busy == 0) share_free_later(sh);
}

/* ---- libuv -> libcurl ---------------------------------------------------- */

static void socket_action(struct vm_http_share *sh, curl_socket_t fd, int flags) {
  sh->busy++;
  curl_multi_socket_action(sh->multi, fd, flags, &sh->running);
  check_done(sh);
  if (--sh->busy == 0 && sh->clients == 0) share_free_later(sh);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
  struct vm_http_sock *s = p->data;
  int flags = 0;
  if (status < 0) {
    flags = CURL_CSELECT_ERR;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  socket_action(s->sh, s->fd, flags);
}

static void timer_cb(uv_timer_t *t) {
  struct vm_http_share *sh = t->data;
  socket_action(sh, CURL_SOCKET_TIMEOUT, 0);
}

/* ---- libcurl -> libuv ---------------------------------------------------- */

static int socket_fn(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  struct vm_http_share *sh = userp;
  struct vm_http_sock *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s && sock_find(sh, fd) == s) sock_release(sh, s);
    curl_multi_assign(sh->multi, fd, NULL);
    return 0;
  }
  if (!s || sock_find(sh, fd) != s) {
    s = calloc(1, sizeof *s);
    if (!s) return -1;
    if (uv_poll_init_socket(sh->loop, &s->poll, fd) < 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->sh = sh;
    s->poll.data = s;
    s->next = sh->socks;
    sh->socks = s;
    curl_multi_assign(sh->multi, fd, s);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
  uv_poll_start(&s->poll, events, poll_cb);
  return 0;
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp) {
  struct vm_http_share *sh = userp;
  (void)multi;
  if (timeout_ms < 0) uv_timer_stop(&sh->timer);
  else uv_timer_start(&sh->timer, timer_cb, (uint64_t)timeout_ms, 0);
  return 0;
}

static void relay_cb(void *data, int status) {
  struct vm_http_relay *slot = data;
  if (status == 0) return;
  slot->relay = NULL; /* gone: it resets libcurl's connection next */
  slot->req->relay_err = status;
}

/* Where a socket of r connects, as its module's faults decide: a->addr is
 * rewritten (libcurl connects to what the callback leaves there) to the
 * refuser when the module is down, or to a new relay's listener. Returns
 * the relay, NULL when there is none; *fail when the socket must not open. */
static struct vm_netrelay *route(struct vm_http_req *r, struct curl_sockaddr *a, bool *fail) {
  struct sockaddr_in to;
  struct vm_netrelay *relay = NULL;
  *fail = false;
  if (!vm_netfault_refused(r->net, &to)) {
    if (!vm_netfault_relayed(r->net)) return NULL;
    struct vm_http_relay *slot = &r->relays[r->nrelays];
    if (r->nrelays == VM_HTTP_MAX_SOCKS ||
        !(relay = vm_netrelay_open(r->net, &a->addr, relay_cb, slot))) {
      *fail = true;
      return NULL;
    }
    slot->req = r;
    slot->relay = relay;
    r->nrelays++;
    to = *vm_netrelay_local(relay);
  }
  a->family = AF_INET;
  a->addrlen = sizeof to;
  memcpy(&a->addr, &to, sizeof to);
  return relay;
}

/* The relay accepts only the socket it was told of: bind it now to learn its port. */
static void relay_expect(struct vm_netrelay *relay, curl_socket_t fd) {
  struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof me;
  int port = 0;
  if (bind(fd, (struct sockaddr *)&me, sizeof me) == 0 &&
      getsockname(fd, (struct sockaddr *)&me, &len) == 0)
    port = ntohs(me.sin_port);
  vm_netrelay_expect(relay, port);
}

/* Remembers a socket of r for `net reset` (its inode tells a reused number). */
static void sock_note(struct vm_http_req *r, curl_socket_t fd) {
  struct stat st;
  if (fstat(fd, &st) < 0) return;
  if (r->nsocks == VM_HTTP_MAX_SOCKS) {
    memmove(&r->socks[0], &r->socks[1], sizeof r->socks[0] * (VM_HTTP_MAX_SOCKS - 1));
    r->nsocks--;
  }
  r->socks[r->nsocks].fd = fd;
  r->socks[r->nsocks].ino = st.st_ino;
  r->nsocks++;
}

/* libcurl opens a socket. Only here is errno still known when socket()
 * fails: libcurl reports any failure as "could not connect", and a daemon
 * out of descriptors must say so, naming the module. Here too the module's
 * net faults route the connection (route()); under dns-fail no socket is
 * opened, and the result is that of a name that did not resolve. */
static curl_socket_t opensocket_fn(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
  struct vm_http_req *r = clientp;
  bool fail;

  (void)purpose;
  if (r->unresolved) {
    r->dns_failed = true;
    return CURL_SOCKET_BAD;
  }
  struct vm_netrelay *relay = route(r, a, &fail);
  if (fail) return CURL_SOCKET_BAD;
  curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
  if (fd == CURL_SOCKET_BAD && (errno == EMFILE || errno == ENFILE)) {
    r->sock_errno = errno;
    vm_log_warn(r->http->who, "http: cannot open a socket: %s (%s): raise RLIMIT_NOFILE or run "
                "fewer modules", strerror(errno), errno == EMFILE ? "EMFILE" : "ENFILE");
  }
  if (fd == CURL_SOCKET_BAD) return fd;
  if (relay) relay_expect(relay, fd);
  if (r->net) sock_note(r, fd);
  return fd;
}

/* libcurl closes a socket: stop any poll on it first (curl #14976). */
static int closesocket_fn(void *clientp, curl_socket_t fd) {
  struct vm_http_share *sh = clientp;
  struct vm_http_sock *s = sock_find(sh, fd);
  if (s) sock_release(sh, s);
  return close(fd);
}

/* ---- making the shared multi handle -------------------------------------- */

static struct vm_http_share *share_new(uv_loop_t *loop) {
  if (!global_done) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return NULL;
    global_done = true;
  }
  struct vm_http_share *sh = calloc(1, sizeof *sh);
  if (!sh) return NULL;
  sh->multi = curl_multi_init();
  if (!sh->multi) {
    free(sh);
    return NULL;
  }
  sh->loop = loop;
  uv_timer_init(loop, &sh->timer);
  sh->timer.data = sh;
  curl_multi_setopt(sh->multi, CURLMOPT_SOCKETFUNCTION, socket_fn);
  curl_multi_setopt(sh->multi, CURLMOPT_SOCKETDATA, sh);
  curl_multi_setopt(sh->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
  curl_multi_setopt(sh->multi, CURLMOPT_TIMERDATA, sh);
  sh->next = shares;
  shares = sh;
  return sh;
}

/* The loop's share, made on first use; h holds it until it closes. */
static int http_attach(struct vm_http *h) {
  struct vm_http_share *sh = shares;
  while (sh && sh->loop != h->loop) sh = sh->next;
  if (!sh && !(sh = share_new(h->loop))) return -ENOMEM;
  sh->clients++;
  h->share = sh;
  return 0;
}

static size_t write_fn(char *ptr, size_t size, size_t nmemb, void *userp) {
  struct vm_http_req *r = userp;
  size_t n = size * nmemb;
  if (r->on_data) {
    int rc = r->on_data(r, ptr, n, r->data);
    if (rc == VM_HTTP_PAUSE) {
      r->paused = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    if (rc != 0) {
      r->aborted = true;
      return 0;
    }
    return n;
  }
  if (r->len + n > r->max_body) {
    r->too_big = true;
    return 0;
  }
  if (r->len + n + 1 > r->cap) {
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < r->len + n + 1) cap *= 2;
    char *nb = realloc(r->buf, cap);
    if (!nb) return 0;
    r->buf = nb;
    r->cap = cap;
  }
  memcpy(r->buf + r->len, ptr, n);
  r->len += n;
  r->buf[r->len] = '\0';
  return n;
}

/* ---- public API ---------------------------------------------------------- */

int vm_http_init(struct vm_http *h, uv_loop_t *loop, const char *who) {
  memset(h, 0, sizeof *h);
  h->loop = loop;
  h->who = who;
  return 0;
}

/* At log level debug: libcurl's progress lines ("Trying [::1]:443...",
 * "connect to ::1 port 443 failed: Connection refused", the certificate).
 * Only its text, never headers or data, which carry signatures and secrets;
 * not its line per TLS handshake message either. */
static int debug_fn(CURL *e, curl_infotype type, char *text, size_t len, void *userp) {
  const struct vm_http_req *r = userp;
  (void)e;
  while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--;
  if (type == CURLINFO_TEXT && len && strncmp(text, "TLSv", 4) != 0)
    vm_log_debug(r->http->who, "http: curl: %.*s", (int)len, text);
  return 0;
}

static int req_headers(struct vm_http_req *r, const struct vm_http_opts *o, bool has_body) {
  for (const char *const *p = o->headers; p && *p; p++) {
    struct curl_slist *n = curl_slist_append(r->hdrs, *p);
    if (!n) return -ENOMEM;
    r->hdrs = n;
  }
  if (has_body) { /* no "Expect: 100-continue" round trip for larger bodies */
    struct curl_slist *n = curl_slist_append(r->hdrs, "Expect:");
    if (!n) return -ENOMEM;
    r->hdrs = n;
  }
  return 0;
}

static int req_setup(struct vm_http_req *r, const struct vm_http_opts *o) {
  CURL *e = r->easy;
  const char *method = o->method ? o->method : "GET";
  bool has_body = o->body_len > 0 || strcmp(method, "POST") == 0;
  int ok = curl_easy_setopt(e, CURLOPT_URL, o->url) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->error) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_fn) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_WRITEDATA, r) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_fn) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, closesocket_fn) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, r->http->share) == CURLE_OK;
  /* its own connection, closed after it: a module's HTTP client does not
   * keep one, and the shared cache must not lend one module another's */
  ok = ok && curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L) == CURLE_OK;
  ok = ok && curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                              (long)(o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS)) == CURLE_OK;
  long total = o->timeout_ms ? (long)o->timeout_ms : o->idle_timeout_ms ? 0 : DEFAULT_TIMEOUT_MS;
  ok = ok && curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, total) == CURLE_OK;
  if (o->idle_timeout_ms) { /* under 1 byte/s for that long: nothing came */
    long secs = o->idle_timeout_ms < 1000 ? 1 : (long)(o->idle_timeout_ms / 1000);
    ok = ok && curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, secs) == CURLE_OK;
  }
  if (vm_log_get_level() >= VM_LOG_DEBUG) {
    ok = ok && curl_easy_setopt(e, CURLOPT_DEBUGFUNCTION, debug_fn) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_DEBUGDATA, r) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_VERBOSE, 1L) == CURLE_OK;
  }
  if (o->ca_file) ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file) == CURLE_OK;
  if (o->insecure) {
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
  }
  if (has_body) {
    ok = ok && curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len) == CURLE_OK;
    ok = ok && curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, o->body ? (const char *)o->body : "") == CURLE_OK;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
    ok = ok && curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
  if (!ok) return -EIO;
  if (req_headers(r, o, has_body) < 0) return -ENOMEM;
  if (r->hdrs && curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs) != CURLE_OK) return -EIO;
  return 0;
}

/* `net reset` reaches the request through its newest socket still open. */
static int link_fd(struct vm_netlink *l) {
  struct vm_http_req *r = (struct vm_http_req *)((char *)l - offsetof(struct vm_http_req, link));
  for (int i = r->nsocks - 1; i >= 0; i--) {
    struct stat st;
    if (fstat(r->socks[i].fd, &st) == 0 && st.st_ino == r->socks[i].ino) return r->socks[i].fd;
  }
  return -1;
}

/* dns-fail: the URL's host, when it is a name (an address is not looked up). */
static char *name_to_fail(const char *url) {
  CURLU *u = curl_url();
  char *host = NULL, *copy = NULL;
  unsigned char buf[sizeof(struct in6_addr)];
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host[0] != '[' &&
      inet_pton(AF_INET, host, buf) != 1)
    copy = strdup(host);
  curl_free(host);
  curl_url_cleanup(u);
  return copy;
}

/* The module's faults that act on a request from its start. */
static void req_net(struct vm_http_req *r, const struct vm_http_opts *o) {
  r->net = o->net;
  if (!r->net) return;
  if (vm_netfault_dns_fails(r->net)) r->unresolved = name_to_fail(o->url);
  vm_netlink_add(&r->link, r->net, link_fd);
}

int vm_http_start(struct vm_http *h, struct vm_http_req *req, const struct vm_http_opts *o,
                  vm_http_done_cb done, void *data) {
  if (!h->loop || h->closing || !o || !o->url || !done || vm_http_busy(req)) return -EINVAL;
  if (!h->share && http_attach(h) < 0) return -ENOMEM;
  memset(req, 0, sizeof *req);
  req->http = h;
  req->done = done;
  req->data = data;
  req->on_data = o->on_data;
  req->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
  req->easy = curl_easy_init();
  if (!req->easy) return -ENOMEM;
  int rc = req_setup(req, o);
  if (rc == 0) req_net(req, o);
  if (rc == 0 && curl_multi_add_handle(h->share->multi, req->easy) != CURLM_OK) rc = -EIO;
  if (rc < 0) {
    vm_netlink_remove(&req->link);
    free(req->unresolved);
    req->unresolved = NULL;
    curl_easy_cleanup(req->easy);
    req->easy = NULL;
    curl_slist_free_all(req->hdrs);
    req->hdrs = NULL;
    return rc;
  }
  req->next = h->reqs;
  h->reqs = req;
  return 0;
}

bool vm_http_busy(const struct vm_http_req *req) { return req->easy != NULL; }

long vm_http_status(const struct vm_http_req *req) {
  long status = 0;
  if (req->easy) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

void vm_http_resume(struct vm_http_req *req) {
  if (!req->easy || !req->paused) return;
  req->paused = false;
  /* may deliver the held bytes to on_data at once, and arms the timer */
  curl_easy_pause(req->easy, CURLPAUSE_CONT);
}

void vm_http_cancel(struct vm_http_req *req) {
  if (!req->easy) return;
  req_teardown(req);
  free(req->buf);
  req->buf = NULL;
  req->len = req->cap = 0;
}

static void closer_closed(uv_handle_t *handle) {
  struct vm_http *h = handle->data;
  h->close_cb(h);
}

void vm_http_close(struct vm_http *h, void (*close_cb)(struct vm_http *h)) {
  if (h->closing) return;
  h->closing = true;
  while (h->reqs) vm_http_cancel(h->reqs);
  if (h->share) share_release(h->share);
  h->share = NULL;
  if (!close_cb) return;
  h->close_cb = close_cb; /* from the loop, as libuv runs close callbacks */
  uv_idle_init(h->loop, &h->closer);
  h->closer.data = h;
  uv_close((uv_handle_t *)&h->closer, closer_closed);
}
