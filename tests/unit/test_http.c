/* test_http.c - the life of the libcurl multi handle that the vm_http
 * clients of a loop share (src/net/http.c): a client costs no descriptor
 * until it sends a request, the first request makes the one multi handle
 * (its socketpair), every client still gets its own results, and the last
 * client to close frees it, also from inside a callback. Requests go to a
 * loopback port nobody listens on, so each fails at once with -ECONNREFUSED;
 * tests/integration/test_http_faults.py covers the ways of failing. */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "uvrun.h"
#include <uv.h>

#include "vmodule/http.h"

#define WATCHDOG_MS 5000

struct client {
  struct vm_http http;
  struct vm_http_req req;
  int done, result, closed;
  bool close_in_done; /* the done() callback closes the client */
};

static char refused_url[64];

/* A loopback port that was free a moment ago: connecting is refused. */
static void pick_refused_url(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  snprintf(refused_url, sizeof refused_url, "http://127.0.0.1:%u/x", ntohs(a.sin_port));
  close(s);
}

static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static void walk_count(uv_handle_t *h, void *arg) {
  (void)h;
  (*(int *)arg)++;
}

static int loop_handles(uv_loop_t *loop) {
  int n = 0;
  uv_walk(loop, walk_count, &n);
  return n;
}

static void on_closed(struct vm_http *h) { ((struct client *)h)->closed++; }

static void on_done(struct vm_http_req *req, int result, long status, const char *body, size_t len,
                    void *data) {
  struct client *c = data;
  (void)req, (void)status, (void)body, (void)len;
  c->done++;
  c->result = result;
  if (c->close_in_done) vm_http_close(&c->http, on_closed);
}

static void start(struct client *c) {
  struct vm_http_opts o = {.url = refused_url, .connect_timeout_ms = 3000};
  assert_int_equal(vm_http_start(&c->http, &c->req, &o, on_done, c), 0);
  assert_int_equal(c->done, 0); /* never inside vm_http_start() */
}

static int both_done(void *arg) {
  struct client *c = arg;
  return c[0].done && c[1].done;
}

static int both_closed(void *arg) {
  struct client *c = arg;
  return c[0].closed && c[1].closed;
}

static int setup(void **state) {
  pick_refused_url();
  *state = uv_default_loop();
  return 0;
}

/* Whatever a test left open must close; the loop then has nothing. */
static int teardown(void **state) {
  uv_loop_t *loop = *state;
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(loop_handles(loop), 0);
  return 0;
}

static void test_idle_clients_open_nothing(void **state) {
  uv_loop_t *loop = *state;
  struct client c[2] = {0};
  int fds = open_fds();
  for (int i = 0; i < 2; i++) assert_int_equal(vm_http_init(&c[i].http, loop, "t"), 0);
  assert_int_equal(open_fds(), fds);
  assert_int_equal(loop_handles(loop), 0);
  for (int i = 0; i < 2; i++) vm_http_close(&c[i].http, on_closed);
  assert_int_equal(c[0].closed + c[1].closed, 0); /* from the loop, not from vm_http_close */
  assert_int_equal(uvrun_until(loop, both_closed, c, WATCHDOG_MS), 0);
  assert_int_equal(open_fds(), fds);
}

static void test_first_request_makes_one_multi_for_all_clients(void **state) {
  uv_loop_t *loop = *state;
  struct client c[2] = {0};
  int fds = open_fds();
  for (int i = 0; i < 2; i++) vm_http_init(&c[i].http, loop, "t");
  start(&c[0]);
  int one = open_fds() - fds; /* the multi's socketpair, maybe the socket too */
  start(&c[1]);
  assert_in_range(one, 2, 3);
  assert_int_equal(uvrun_until(loop, both_done, c, WATCHDOG_MS), 0);
  assert_int_equal(c[0].result, -ECONNREFUSED);
  assert_int_equal(c[1].result, -ECONNREFUSED);
  uv_run(loop, UV_RUN_NOWAIT); /* the closed sockets' polls */
  assert_int_equal(open_fds(), fds + 2); /* one socketpair for both */
  vm_http_close(&c[0].http, on_closed);
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(open_fds(), fds + 2); /* c[1] still holds it */
  vm_http_close(&c[1].http, on_closed);
  assert_int_equal(uvrun_until(loop, both_closed, c, WATCHDOG_MS), 0);
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(open_fds(), fds); /* the last client freed it */
}

static void test_cancelled_request_never_calls_back(void **state) {
  uv_loop_t *loop = *state;
  struct client c[2] = {0};
  for (int i = 0; i < 2; i++) vm_http_init(&c[i].http, loop, "t");
  start(&c[0]);
  start(&c[1]);
  vm_http_cancel(&c[0].req);
  assert_false(vm_http_busy(&c[0].req));
  c[0].done = 1; /* both_done: only c[1] is awaited */
  assert_int_equal(uvrun_until(loop, both_done, c, WATCHDOG_MS), 0);
  assert_int_equal(c[1].result, -ECONNREFUSED);
  assert_int_equal(c[0].result, 0);
  for (int i = 0; i < 2; i++) vm_http_close(&c[i].http, on_closed);
  assert_int_equal(uvrun_until(loop, both_closed, c, WATCHDOG_MS), 0);
}

static void test_last_client_closes_inside_its_callback(void **state) {
  uv_loop_t *loop = *state;
  struct client c[2] = {0};
  int fds = open_fds();
  for (int i = 0; i < 2; i++) {
    vm_http_init(&c[i].http, loop, "t");
    c[i].close_in_done = true;
  }
  start(&c[0]);
  start(&c[1]);
  assert_int_equal(uvrun_until(loop, both_closed, c, WATCHDOG_MS), 0);
  assert_int_equal(c[0].done + c[1].done, 2);
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(open_fds(), fds);
  /* a new request afterwards makes a new multi */
  struct client d = {0};
  vm_http_init(&d.http, loop, "t");
  start(&d);
  assert_int_equal(open_fds(), fds + 2);
  vm_http_close(&d.http, on_closed);
  assert_false(vm_http_busy(&d.req)); /* closing cancels it */
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(d.done, 0);
  assert_int_equal(d.closed, 1);
  uv_run(loop, UV_RUN_NOWAIT);
  assert_int_equal(open_fds(), fds);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_idle_clients_open_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_request_makes_one_multi_for_all_clients, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_cancelled_request_never_calls_back, setup, teardown),
      cmocka_unit_test_setup_teardown(test_last_client_closes_inside_its_callback, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
