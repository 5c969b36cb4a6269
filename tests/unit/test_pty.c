/* test_pty.c - unit tests of the PTY endpoint (src/serial/pty.c) on a real
 * libuv loop and a real PTY. The test plays the MCU: it opens the symlink like
 * firmware would and talks through it; every wait is on a loop event, bounded
 * by a watchdog timer so a missing event fails the test instead of hanging. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "logcap.h"
#include "uvrun.h"
#include <uv.h>

#include "vmodule/log.h"
#include "vmodule/pty.h"
#include "vmodule/txq.h"

#define WATCHDOG_MS 3000
#define BIG (50 * 1000) /* more than the kernel buffers master->slave (~14-18 KiB) */

struct fixture {
  uv_loop_t loop;
  char dir[64], link[PATH_MAX];
  struct vm_pty p;
  struct vm_txq q;
  int q_open;
  char input[BIG];  /* what on_input received (the MCU's bytes) */
  size_t input_len;
  int client;       /* the test's own fd on the link, -1 when closed */
  uv_poll_t client_poll;
  int client_polling;
  unsigned char at_client[BIG]; /* what the client read */
  size_t at_client_len;
  struct logcap log; /* stderr capture */
};

/* ---- plumbing ----------------------------------------------------------- */

static void on_input(void *data, const char *buf, size_t len) {
  struct fixture *fx = data;

  assert_true(fx->input_len + len <= sizeof fx->input);
  memcpy(fx->input + fx->input_len, buf, len);
  fx->input_len += len;
}

static void on_client_readable(uv_poll_t *handle, int status, int events) {
  struct fixture *fx = handle->data;
  ssize_t n;

  (void)events;
  assert_int_equal(status, 0);
  while ((n = read(fx->client, fx->at_client + fx->at_client_len,
                   sizeof fx->at_client - fx->at_client_len)) > 0)
    fx->at_client_len += (size_t)n;
}

/* Opens the link like firmware does, and reads whatever arrives there. */
static void client_open(struct fixture *fx) {
  fx->client = open(fx->link, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fx->client >= 0);
  assert_int_equal(uv_poll_init(&fx->loop, &fx->client_poll, fx->client), 0);
  fx->client_poll.data = fx;
  assert_int_equal(uv_poll_start(&fx->client_poll, UV_READABLE, on_client_readable), 0);
  fx->client_polling = 1;
}

static void client_close(struct fixture *fx) {
  if (fx->client_polling) {
    uv_close((uv_handle_t *)&fx->client_poll, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT); /* the handle is reused by a later open */
    fx->client_polling = 0;
  }
  if (fx->client >= 0)
    close(fx->client);
  fx->client = -1;
}

static void client_send(struct fixture *fx, const char *s) {
  assert_int_equal(write(fx->client, s, strlen(s)), (ssize_t)strlen(s));
}

static int (*run_done)(struct fixture *); /* the condition run_until waits for */

static int run_done_cb(void *fx) { return run_done(fx); }

/* Runs the loop until done(fx) holds; fails after WATCHDOG_MS. */
static void run_until(struct fixture *fx, int (*done)(struct fixture *)) {
  run_done = done;
  assert_int_equal(uvrun_until(&fx->loop, run_done_cb, fx, WATCHDOG_MS), 0);
}

static size_t want_len; /* the byte count the predicates below wait for */

static int input_has_want(struct fixture *fx) { return fx->input_len >= want_len; }
static int client_has_want(struct fixture *fx) { return fx->at_client_len >= want_len; }
static int one_client(struct fixture *fx) { return fx->p.clients == 1; }
static int no_client(struct fixture *fx) { return fx->p.clients == 0; }

static int setup_dir(void **state) {
  struct fixture *fx = calloc(1, sizeof *fx);

  assert_non_null(fx);
  fx->client = -1;
  logcap_init(&fx->log);
  fx->p.master = -1;
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  snprintf(fx->dir, sizeof fx->dir, "/tmp/test_pty.XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  snprintf(fx->link, sizeof fx->link, "%s/ttyVM0", fx->dir);
  *state = fx;
  return 0;
}

static int setup_open(void **state) {
  struct fixture *fx;

  setup_dir(state);
  fx = *state;
  assert_int_equal(vm_pty_open(&fx->p, &fx->loop, "test", fx->link, on_input, fx), 0);
  return 0;
}

static int teardown(void **state) {
  struct fixture *fx = *state;

  logcap_stop(&fx->log);
  client_close(fx);
  if (fx->q_open)
    vm_txq_close(&fx->q);
  vm_pty_close(&fx->p);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle was closed */
  unlink(fx->link);
  assert_int_equal(rmdir(fx->dir), 0); /* nothing else (no temp link) left behind */
  free(fx);
  return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_pty_link_points_to_the_slave(void **state) {
  struct fixture *fx = *state;
  char target[PATH_MAX];
  ssize_t n = readlink(fx->link, target, sizeof target - 1);

  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, fx->p.slave_path);
  assert_memory_equal(target, "/dev/pts/", 9);
  assert_int_equal(fx->p.clients, 0); /* our own slave fd is not a client */
}

static void test_pty_client_bytes_reach_on_input(void **state) {
  struct fixture *fx = *state;

  client_open(fx);
  client_send(fx, "AT\r");
  want_len = 3;
  run_until(fx, input_has_want);
  assert_int_equal(fx->input_len, 3);
  assert_memory_equal(fx->input, "AT\r", 3);

  client_send(fx, "A\nB"); /* no ONLCR on the way to the daemon */
  want_len = 6;
  run_until(fx, input_has_want);
  assert_int_equal(fx->input_len, 6);
  assert_memory_equal(fx->input, "AT\rA\nB", 6);
}

/* More than the PTY buffers: the queue sees -EAGAIN, waits for the master to
 * become writable as the client reads, and every byte arrives in order. */
static void test_pty_txq_bytes_reach_the_client(void **state) {
  struct fixture *fx = *state;
  static unsigned char data[BIG];

  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char)((i * 131 + 7) % 251);
  assert_int_equal(vm_txq_init(&fx->q, &fx->loop, "test", 0, 64 * 1024), 0);
  fx->q_open = 1;
  vm_txq_set_sink(&fx->q, &fx->p.sink);
  client_open(fx);

  assert_int_equal(vm_txq_write(&fx->q, data, sizeof data), sizeof data);
  assert_true(fx->q.waiting_writable);
  assert_true(vm_txq_pending(&fx->q) > 0);
  want_len = sizeof data;
  run_until(fx, client_has_want);
  assert_int_equal(fx->at_client_len, sizeof data);
  assert_memory_equal(fx->at_client, data, sizeof data);
  assert_int_equal(fx->q.sent_total, sizeof data);
  assert_int_equal(fx->q.dropped_total, 0);
  assert_false(fx->p.poll_events & UV_WRITABLE); /* asked only while needed */
}

/* Raw both ways: no echo back to the daemon, no CR/NL translation. */
static void test_pty_client_side_is_raw(void **state) {
  struct fixture *fx = *state;
  struct termios t;

  client_open(fx);
  assert_int_equal(tcgetattr(fx->client, &t), 0);
  assert_int_equal(t.c_lflag & (ECHO | ICANON | ISIG), 0);
  assert_int_equal(t.c_iflag & (ICRNL | INLCR | IGNCR | IXON), 0);
  assert_int_equal(t.c_oflag & OPOST, 0);

  assert_int_equal(fx->p.sink.ops->write(&fx->p.sink, "\r\n", 2), 2);
  want_len = 2;
  run_until(fx, client_has_want);
  assert_int_equal(fx->at_client_len, 2);
  assert_memory_equal(fx->at_client, "\r\n", 2);

  /* An echo of "\r\n" would reach on_input before this "X". */
  client_send(fx, "X");
  want_len = 1;
  run_until(fx, input_has_want);
  assert_int_equal(fx->input_len, 1);
  assert_memory_equal(fx->input, "X", 1);
}

/* inotify counts the client in and out, the log says so, and the master keeps
 * working after the client left (our held slave fd prevents HUP/EIO). */
static void test_pty_counts_client_open_and_close(void **state) {
  struct fixture *fx = *state;
  char line[PATH_MAX + 32];

  assert_int_equal(logcap_start(&fx->log), 0);
  client_open(fx);
  run_until(fx, one_client);
  client_close(fx);
  run_until(fx, no_client);
  uv_run(&fx->loop, UV_RUN_NOWAIT);

  snprintf(line, sizeof line, "INFO [test] client opened %s\n", fx->link);
  assert_int_equal(logcap_count(&fx->log, line), 1);
  snprintf(line, sizeof line, "INFO [test] client closed %s\n", fx->link);
  assert_int_equal(logcap_count(&fx->log, line), 1);
  assert_int_equal(logcap_count(&fx->log, "ERROR"), 0);
  assert_true(fx->p.poll_events & UV_READABLE);
  assert_int_equal(fx->p.sink.ops->write(&fx->p.sink, "x", 1), 1);

  client_open(fx); /* and a second session is counted the same way */
  run_until(fx, one_client);
  assert_int_equal(fx->p.clients, 1);
}

/* A client that leaves the line cooked gets it raw again at the next open,
 * with the speed and the software flow control it chose kept. */
static void test_pty_reapplies_raw_on_client_open(void **state) {
  struct fixture *fx = *state;
  struct termios t;

  client_open(fx);
  run_until(fx, one_client);
  assert_int_equal(tcgetattr(fx->client, &t), 0);
  t.c_lflag |= ECHO | ICANON;
  t.c_iflag |= ICRNL | IXON;
  t.c_oflag |= OPOST | ONLCR;
  cfsetspeed(&t, B9600);
  assert_int_equal(tcsetattr(fx->client, TCSANOW, &t), 0);
  client_close(fx);
  run_until(fx, no_client);
  assert_int_equal(tcgetattr(fx->p.master, &t), 0);
  assert_true(t.c_lflag & ECHO); /* termios outlives the client: the fix is needed */

  client_open(fx);
  run_until(fx, one_client);
  assert_int_equal(tcgetattr(fx->client, &t), 0);
  assert_int_equal(t.c_lflag & (ECHO | ICANON), 0);
  assert_int_equal(t.c_iflag & ICRNL, 0);
  assert_int_equal(t.c_oflag & OPOST, 0);
  assert_int_equal(cfgetospeed(&t), B9600);
  assert_true(t.c_iflag & IXON);
}

static void test_pty_close_removes_the_link(void **state) {
  struct fixture *fx = *state;
  struct stat st;

  vm_pty_close(&fx->p);
  assert_int_equal(lstat(fx->link, &st), -1);
  assert_int_equal(errno, ENOENT);
}

/* Someone re-pointed the link (another daemon took the name): not ours to delete. */
static void test_pty_close_keeps_a_link_pointing_elsewhere(void **state) {
  struct fixture *fx = *state;
  char other[PATH_MAX + 8], target[PATH_MAX];
  ssize_t n;

  snprintf(other, sizeof other, "%s.other", fx->link);
  assert_int_equal(symlink("/dev/null", other), 0);
  assert_int_equal(rename(other, fx->link), 0);
  vm_pty_close(&fx->p);
  n = readlink(fx->link, target, sizeof target - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, "/dev/null");
}

/* A stale link from an earlier run is replaced, not an error. */
static void test_pty_open_replaces_a_stale_link(void **state) {
  struct fixture *fx = *state;
  char target[PATH_MAX];
  ssize_t n;

  assert_int_equal(symlink("/dev/pts/nonexistent", fx->link), 0);
  assert_int_equal(vm_pty_open(&fx->p, &fx->loop, "test", fx->link, on_input, fx), 0);
  n = readlink(fx->link, target, sizeof target - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, fx->p.slave_path);
}

static void test_pty_open_fails_when_the_directory_is_missing(void **state) {
  struct fixture *fx = *state;
  char link[PATH_MAX + 16], line[2 * PATH_MAX + 128];

  snprintf(link, sizeof link, "%s/missing/ttyVM0", fx->dir);
  assert_int_equal(logcap_start(&fx->log), 0);
  assert_int_equal(vm_pty_open(&fx->p, &fx->loop, "test", link, on_input, fx), -ENOENT);
  assert_int_equal(fx->p.master, -1);
  snprintf(line, sizeof line, "ERROR [test] cannot create symlink %s: directory %s/missing does not exist",
           link, fx->dir);
  assert_int_equal(logcap_count(&fx->log, line), 1);
}

/* ---- many PTYs on one loop: the shared inotify instance ----------------- */

#define FLEET 150 /* enough to grow the watch table twice (64 -> 128 -> 256 slots) */

struct port {
  struct vm_pty p;
  char link[PATH_MAX];
  int presence_calls, last_count; /* what on_presence reported */
};

struct fleet {
  uv_loop_t loop, loop2;
  int loop2_used;
  char dir[64];
  struct port port[FLEET];
  struct logcap log;
};

static void fleet_on_input(void *data, const char *buf, size_t len) {
  (void)data, (void)buf, (void)len;
}

static void fleet_on_presence(void *data, int clients) {
  struct port *pt = data;

  pt->presence_calls++;
  pt->last_count = clients;
}

/* The inotify instances this process holds, as /proc/self/fd shows them. */
static int inotify_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  assert_non_null(d);
  while ((e = readdir(d))) {
    char target[64];
    ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);

    if (len > 0) {
      target[len] = '\0';
      n += strcmp(target, "anon_inode:inotify") == 0;
    }
  }
  closedir(d);
  return n;
}

static void port_open(struct fleet *f, uv_loop_t *loop, int i) {
  struct port *pt = &f->port[i];

  snprintf(pt->link, sizeof pt->link, "%s/tty%d", f->dir, i);
  assert_int_equal(vm_pty_open(&pt->p, loop, "fleet", pt->link, fleet_on_input, pt), 0);
  pt->p.on_presence = fleet_on_presence;
}

static int setup_fleet(void **state) {
  struct fleet *f = calloc(1, sizeof *f);

  assert_non_null(f);
  logcap_init(&f->log);
  for (int i = 0; i < FLEET; i++)
    f->port[i].p.master = -1;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  snprintf(f->dir, sizeof f->dir, "/tmp/test_pty.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  *state = f;
  return 0;
}

static int teardown_fleet(void **state) {
  struct fleet *f = *state;

  logcap_stop(&f->log);
  for (int i = 0; i < FLEET; i++)
    vm_pty_close(&f->port[i].p);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  if (f->loop2_used) {
    uv_run(&f->loop2, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop2), 0);
  }
  assert_int_equal(rmdir(f->dir), 0); /* every link removed */
  free(f);
  return 0;
}

static struct port *awaited; /* the port fleet_run_until waits on */
static int awaited_clients;

static int awaited_count(void *arg) {
  (void)arg;
  return awaited->p.clients == awaited_clients;
}

static void fleet_run_until(uv_loop_t *loop, struct port *pt, int clients) {
  awaited = pt;
  awaited_clients = clients;
  assert_int_equal(uvrun_until(loop, awaited_count, NULL, WATCHDOG_MS), 0);
}

/* Opens and closes the port's link as a client would, and checks that the
 * open and the close were counted for this port and no other. */
static void check_client_seen_by_its_port(struct fleet *f, uv_loop_t *loop, int i) {
  struct port *pt = &f->port[i];
  int calls = pt->presence_calls, fd = open(pt->link, O_RDWR | O_NOCTTY | O_NONBLOCK);

  assert_true(fd >= 0);
  fleet_run_until(loop, pt, 1);
  assert_int_equal(pt->last_count, 1);
  close(fd);
  fleet_run_until(loop, pt, 0);
  assert_int_equal(pt->presence_calls, calls + 2);
  assert_int_equal(pt->last_count, 0);
  for (int j = 0; j < FLEET; j++)
    if (j != i)
      assert_int_equal(f->port[j].p.clients, 0);
}

/* One instance for the loop, whatever the number of PTYs; it goes with the last. */
static void test_pty_ptys_of_a_loop_share_one_inotify_instance(void **state) {
  struct fleet *f = *state;
  int before = inotify_fds();

  for (int i = 0; i < FLEET; i++)
    port_open(f, &f->loop, i);
  assert_int_equal(inotify_fds(), before + 1);
  for (int i = 0; i < FLEET - 1; i++)
    vm_pty_close(&f->port[i].p);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(inotify_fds(), before + 1); /* still used by the last PTY */
  vm_pty_close(&f->port[FLEET - 1].p);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(inotify_fds(), before);
}

/* Every event lands on its own PTY, also after others closed (which removed
 * their entries from the middle of the watch table). */
static void test_pty_client_events_reach_their_own_pty(void **state) {
  struct fleet *f = *state;
  int before = inotify_fds();

  for (int i = 0; i < FLEET; i++)
    port_open(f, &f->loop, i);
  for (int i = 0; i < FLEET; i += 3)
    vm_pty_close(&f->port[i].p);
  assert_int_equal(inotify_fds(), before + 1);
  for (int i = FLEET - 1; i >= 0; i--)
    if (i % 3)
      check_client_seen_by_its_port(f, &f->loop, i);
  for (int i = 0; i < FLEET; i += 3)
    assert_int_equal(f->port[i].presence_calls, 0);
}

/* A client opens and closes port 0, unseen yet; port 0 closes; port 2 gets the
 * same /dev/pts number (the kernel hands out the lowest free one). Returns
 * whether it did: another process may have taken the number in between. */
static int reuse_pts_number_of_port0(struct fleet *f) {
  char old_path[sizeof f->port[0].p.slave_path];
  int fd;

  port_open(f, &f->loop, 0);
  fd = open(f->port[0].link, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fd >= 0);
  close(fd); /* its IN_OPEN and IN_CLOSE wait, unread, in the shared queue */
  memcpy(old_path, f->port[0].p.slave_path, sizeof old_path);
  vm_pty_close(&f->port[0].p);
  port_open(f, &f->loop, 2);
  if (strcmp(f->port[2].p.slave_path, old_path) == 0)
    return 1;
  vm_pty_close(&f->port[2].p);
  return 0;
}

/* The events of a closed PTY's watch, still queued, are dropped rather than
 * given to the PTY that now has its /dev/pts number, which counts its own
 * clients from zero; removing a watch is no "no longer watched" warning. */
static void test_pty_reused_pts_number_starts_a_fresh_count(void **state) {
  struct fleet *f = *state;
  int before = inotify_fds(), tries = 0;

  port_open(f, &f->loop, 1); /* keeps the instance open across port 0's close */
  assert_int_equal(logcap_start(&f->log), 0);
  while (!reuse_pts_number_of_port0(f))
    assert_true(++tries < 10);
  assert_int_equal(inotify_fds(), before + 1);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* delivers what was queued */
  assert_int_equal(f->port[0].presence_calls, 0);
  assert_int_equal(f->port[2].presence_calls, 0);
  assert_int_equal(f->port[2].p.clients, 0);
  check_client_seen_by_its_port(f, &f->loop, 2);
  check_client_seen_by_its_port(f, &f->loop, 1);
  assert_int_equal(logcap_count(&f->log, "WARN"), 0);
}

/* Two loops in one process: an instance each, and no event crosses over. */
static void test_pty_each_loop_has_its_own_inotify_instance(void **state) {
  struct fleet *f = *state;
  int before = inotify_fds();

  assert_int_equal(uv_loop_init(&f->loop2), 0);
  f->loop2_used = 1;
  port_open(f, &f->loop, 0);
  port_open(f, &f->loop2, 1);
  assert_int_equal(inotify_fds(), before + 2);
  check_client_seen_by_its_port(f, &f->loop2, 1);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(f->port[0].presence_calls, 0);
  check_client_seen_by_its_port(f, &f->loop, 0);
  uv_run(&f->loop2, UV_RUN_NOWAIT);
  assert_int_equal(f->port[1].presence_calls, 2);
}

/* fs.inotify.max_queued_events, or -1. */
static long max_queued_events(void) {
  FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
  long n = -1;

  if (f) {
    if (fscanf(f, "%ld", &n) != 1)
      n = -1;
    fclose(f);
  }
  return n;
}

/* More opens and closes than the kernel queues, all unread: one warning for
 * every port, every line raw again (port 1 was left cooked, its open lost),
 * and clients are still seen afterwards. */
static void test_pty_queue_overflow_warns_once_and_makes_every_line_raw(void **state) {
  struct fleet *f = *state;
  long events = max_queued_events();
  struct termios t;

  if (events < 0 || events > 100000)
    skip(); /* too many to flood quickly */
  port_open(f, &f->loop, 0);
  port_open(f, &f->loop, 1);
  assert_int_equal(tcgetattr(f->port[1].p.master, &t), 0);
  t.c_lflag |= ECHO | ICANON;
  assert_int_equal(tcsetattr(f->port[1].p.master, TCSANOW, &t), 0);
  for (long i = 0; i < events / 2 + 16; i++) {
    int fd = open(f->port[0].link, O_RDWR | O_NOCTTY | O_NONBLOCK);

    assert_true(fd >= 0);
    close(fd);
  }
  vm_log_set_level(VM_LOG_WARN); /* not 16384 INFO lines in the capture */
  assert_int_equal(logcap_start(&f->log), 0);
  for (int i = 0; i < 50; i++)
    uv_run(&f->loop, UV_RUN_NOWAIT);
  vm_log_set_level(VM_LOG_INFO);
  assert_int_equal(logcap_count(&f->log, "WARN [vmoduled] inotify queue overflow: client opens and "
                                         "closes were lost; the client counts of 2 serial ports may "
                                         "be wrong\n"),
                   1);
  assert_int_equal(logcap_count(&f->log, "WARN"), 1);
  assert_int_equal(tcgetattr(f->port[1].p.master, &t), 0);
  assert_int_equal(t.c_lflag & (ECHO | ICANON), 0);
  f->port[0].p.clients = 0; /* whatever the lost events left */
  check_client_seen_by_its_port(f, &f->loop, 0);
  check_client_seen_by_its_port(f, &f->loop, 1);
}

/* unplug: the client's fd is hung up (POLLHUP, read returns 0) and the link
 * and /dev/pts/N go; plug: a new /dev/pts/N behind the same link, on the same
 * poll handle, with bytes flowing both ways; close while unplugged leaves no
 * handle and no fd behind (teardown checks the loop). */
static void test_pty_unplug_hangs_up_and_plug_brings_a_new_pty(void **state) {
  struct fixture *fx = *state;
  char old_path[sizeof fx->p.slave_path], target[PATH_MAX];
  struct pollfd pfd;
  char c;
  ssize_t n;

  assert_int_equal(vm_txq_init(&fx->q, &fx->loop, "test", 0, 4096), 0);
  fx->q_open = 1;
  vm_txq_set_sink(&fx->q, &fx->p.sink);
  fx->client = open(fx->link, O_RDWR | O_NOCTTY | O_NONBLOCK);
  assert_true(fx->client >= 0);
  run_until(fx, one_client);
  strcpy(old_path, fx->p.slave_path);

  assert_int_equal(vm_pty_unplug(&fx->p), 0);
  assert_true(vm_pty_unplugged(&fx->p));
  assert_int_equal(vm_pty_unplug(&fx->p), -EALREADY);
  pfd = (struct pollfd){.fd = fx->client, .events = POLLIN};
  assert_int_equal(poll(&pfd, 1, 1000), 1);
  assert_true(pfd.revents & POLLHUP);
  assert_int_equal(read(fx->client, &c, 1), 0);
  assert_int_equal(access(fx->link, F_OK), -1);
  assert_int_equal(access(old_path, F_OK), -1);
  assert_int_equal(fx->p.clients, 0);
  assert_int_equal(vm_txq_write(&fx->q, "lost", 4), 4); /* the sink fails: dropped */
  close(fx->client);
  fx->client = -1;
  uv_run(&fx->loop, UV_RUN_NOWAIT);

  assert_int_equal(vm_pty_plug(&fx->p), 0);
  assert_false(vm_pty_unplugged(&fx->p));
  assert_int_equal(vm_pty_plug(&fx->p), -EALREADY);
  n = readlink(fx->link, target, sizeof target - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_string_equal(target, fx->p.slave_path);
  client_open(fx);
  run_until(fx, one_client);
  client_send(fx, "AT\r\n");
  want_len = 4;
  run_until(fx, input_has_want);
  assert_memory_equal(fx->input, "AT\r\n", 4);
  assert_int_equal(vm_txq_write(&fx->q, "OK\r\n", 4), 4);
  want_len = 4;
  run_until(fx, client_has_want);
  assert_memory_equal(fx->at_client, "OK\r\n", 4);

  assert_int_equal(vm_pty_unplug(&fx->p), 0); /* teardown closes it unplugged */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_pty_link_points_to_the_slave, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_client_bytes_reach_on_input, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_txq_bytes_reach_the_client, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_client_side_is_raw, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_counts_client_open_and_close, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_reapplies_raw_on_client_open, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_close_removes_the_link, setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_unplug_hangs_up_and_plug_brings_a_new_pty,
                                      setup_open, teardown),
      cmocka_unit_test_setup_teardown(test_pty_close_keeps_a_link_pointing_elsewhere, setup_open,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pty_open_replaces_a_stale_link, setup_dir, teardown),
      cmocka_unit_test_setup_teardown(test_pty_open_fails_when_the_directory_is_missing, setup_dir,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_pty_ptys_of_a_loop_share_one_inotify_instance,
                                      setup_fleet, teardown_fleet),
      cmocka_unit_test_setup_teardown(test_pty_client_events_reach_their_own_pty, setup_fleet,
                                      teardown_fleet),
      cmocka_unit_test_setup_teardown(test_pty_reused_pts_number_starts_a_fresh_count, setup_fleet,
                                      teardown_fleet),
      cmocka_unit_test_setup_teardown(test_pty_each_loop_has_its_own_inotify_instance, setup_fleet,
                                      teardown_fleet),
      cmocka_unit_test_setup_teardown(test_pty_queue_overflow_warns_once_and_makes_every_line_raw,
                                      setup_fleet, teardown_fleet),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
