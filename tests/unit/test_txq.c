/* test_txq.c - unit tests of the TX queue (src/serial/txq.c) on a real libuv
 * loop, draining into a fake sink that records every byte and can play a full
 * device (-EAGAIN, then writable a millisecond later) or a broken one; and of
 * the filter the serial faults (src/serial/serfault.c) put on a queue. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "logcap.h"
#include "uvrun.h"
#include <uv.h>

#include "vmodule/module.h"
#include "vmodule/serfault.h"
#include "vmodule/txq.h"

#define FAKE_CAP (64 * 1024)
#define FAKE_MAX_WRITES 4096
#define UNLIMITED SIZE_MAX
#define WATCHDOG_MS 3000

struct fake_sink {
  struct vm_sink sink; /* first member */
  unsigned char got[FAKE_CAP];
  size_t got_len;
  size_t room;   /* bytes taken before -EAGAIN; UNLIMITED never fills */
  size_t refill; /* room once it has "drained" after an -EAGAIN */
  int error;     /* negative errno returned by every write when set */
  int writes, want_on, want_off;
  uv_timer_t wake; /* plays the device draining: writable 1 ms after want_writable(1) */
  uint64_t write_at[FAKE_MAX_WRITES];
  size_t total_at[FAKE_MAX_WRITES];
};

struct fixture {
  uv_loop_t loop;
  struct vm_txq q;
  struct fake_sink f;
  struct logcap log; /* stderr capture */
};

/* ---- fake sink ---------------------------------------------------------- */

static ssize_t fake_write(struct vm_sink *sink, const void *buf, size_t len) {
  struct fake_sink *f = (struct fake_sink *)sink;
  size_t n = len;

  f->writes++;
  if (f->error)
    return f->error;
  if (f->room == 0)
    return -EAGAIN;
  if (f->room != UNLIMITED && n > f->room)
    n = f->room;
  assert_true(f->got_len + n <= FAKE_CAP);
  memcpy(f->got + f->got_len, buf, n);
  f->got_len += n;
  if (f->room != UNLIMITED)
    f->room -= n;
  if (f->writes <= FAKE_MAX_WRITES) {
    f->write_at[f->writes - 1] = uv_hrtime();
    f->total_at[f->writes - 1] = f->got_len;
  }
  return (ssize_t)n;
}

static void fake_on_wake(uv_timer_t *timer) {
  struct fake_sink *f = timer->data;

  f->room = f->refill;
  vm_txq_on_writable(f->sink.txq);
}

static void fake_want_writable(struct vm_sink *sink, int on) {
  struct fake_sink *f = (struct fake_sink *)sink;

  if (on) {
    f->want_on++;
    uv_timer_start(&f->wake, fake_on_wake, 1, 0);
  } else {
    f->want_off++;
    uv_timer_stop(&f->wake);
  }
}

static const struct vm_sink_ops fake_ops = {fake_write, fake_want_writable};

/* ---- helpers ------------------------------------------------------------ */

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed) {
  for (size_t i = 0; i < len; i++)
    buf[i] = (unsigned char)((i * 131 + seed) % 251);
}

static int drained(struct fixture *fx) {
  return !vm_txq_pending(&fx->q) && !fx->q.timer_armed && !fx->q.waiting_writable;
}

static int drained_cb(void *fx) { return drained(fx); }

/* Runs the loop until the queue is empty with no timer armed and the sink is
 * not waiting; fails after WATCHDOG_MS instead of hanging. */
static void run_until_drained(struct fixture *fx) {
  int rc = uvrun_until(&fx->loop, drained_cb, fx, WATCHDOG_MS);
  if (rc)
    print_message("stuck: pending %zu timer_armed %d waiting_writable %d sink got %zu\n",
                  vm_txq_pending(&fx->q), fx->q.timer_armed, fx->q.waiting_writable,
                  fx->f.got_len);
  assert_int_equal(rc, 0);
}

static int fixture_setup(void **state, unsigned baud, size_t cap) {
  struct fixture *fx = calloc(1, sizeof *fx);

  assert_non_null(fx);
  logcap_init(&fx->log);
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(vm_txq_init(&fx->q, &fx->loop, "test", baud, cap), 0);
  fx->f.sink.ops = &fake_ops;
  fx->f.room = fx->f.refill = UNLIMITED;
  uv_timer_init(&fx->loop, &fx->f.wake);
  fx->f.wake.data = &fx->f;
  *state = fx;
  return 0;
}

static int teardown(void **state) {
  struct fixture *fx = *state;

  logcap_stop(&fx->log);
  vm_txq_close(&fx->q);
  uv_close((uv_handle_t *)&fx->f.wake, NULL);
  uv_run(&fx->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&fx->loop), 0); /* every handle was closed */
  free(fx);
  return 0;
}

static int setup_unpaced_4k(void **state) { return fixture_setup(state, 0, 4096); }
static int setup_unpaced_100(void **state) { return fixture_setup(state, 0, 100); }
static int setup_unpaced_16(void **state) { return fixture_setup(state, 0, 16); }
static int setup_115200(void **state) { return fixture_setup(state, 115200, VM_TXQ_DEFAULT_CAP); }

/* ---- tests -------------------------------------------------------------- */

/* Unpaced: each write reaches the sink before vm_txq_write returns, in order,
 * and more than the queue holds is not dropped when the sink takes it all. */
static void test_txq_unpaced_passes_everything_in_order(void **state) {
  struct fixture *fx = *state;
  static unsigned char data[9000];
  const size_t sizes[] = {1000, 3000, 5000};
  size_t off = 0;

  fill_pattern(data, sizeof data, 1);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(vm_txq_write(&fx->q, data + off, sizes[i]), sizes[i]);
    off += sizes[i];
    assert_int_equal(fx->f.got_len, off);
  }
  assert_memory_equal(fx->f.got, data, sizeof data);
  assert_int_equal(vm_txq_pending(&fx->q), 0);
  assert_int_equal(fx->q.sent_total, sizeof data);
  assert_int_equal(fx->q.dropped_total, 0);
  assert_false(fx->q.timer_armed);
}

/* With nothing draining, a 100-byte queue keeps the first 100 bytes and drops
 * exactly the rest; one warning per episode, one summary when it drains. */
static void test_txq_overflow_drops_exactly_the_excess_and_counts_it(void **state) {
  struct fixture *fx = *state;
  unsigned char a[60], b[70], c[5], d[101], want[100];

  fill_pattern(a, sizeof a, 2);
  fill_pattern(b, sizeof b, 3);
  fill_pattern(c, sizeof c, 4);
  fill_pattern(d, sizeof d, 5);
  assert_int_equal(logcap_start(&fx->log), 0);
  assert_int_equal(vm_txq_write(&fx->q, a, sizeof a), 60);
  assert_false(fx->q.overflowing);
  assert_int_equal(vm_txq_write(&fx->q, b, sizeof b), 40);
  assert_int_equal(vm_txq_write(&fx->q, c, sizeof c), 0);
  assert_true(fx->q.overflowing);
  assert_int_equal(fx->q.dropped_episode, 35);
  assert_int_equal(fx->q.dropped_total, 35);
  assert_int_equal(vm_txq_pending(&fx->q), 100);
  assert_int_equal(logcap_count(&fx->log, "WARN [test] TX overflow: the MCU is not reading, dropping output"), 1);
  assert_int_equal(logcap_count(&fx->log, "TX overflow ended"), 0);

  vm_txq_set_sink(&fx->q, &fx->f.sink);
  memcpy(want, a, 60);
  memcpy(want + 60, b, 40);
  assert_int_equal(fx->f.got_len, 100);
  assert_memory_equal(fx->f.got, want, 100);
  assert_false(fx->q.overflowing);
  assert_int_equal(fx->q.dropped_episode, 0);
  assert_int_equal(fx->q.dropped_total, 35);
  assert_int_equal(fx->q.sent_total, 100);
  assert_int_equal(logcap_count(&fx->log, "INFO [test] TX overflow ended: 35 bytes dropped (35 total)"), 1);

  /* A second episode is reported again, with the running total. */
  vm_txq_set_sink(&fx->q, NULL);
  assert_int_equal(vm_txq_write(&fx->q, d, sizeof d), 100);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(fx->f.got_len, 200);
  assert_memory_equal(fx->f.got + 100, d, 100);
  assert_int_equal(logcap_count(&fx->log, "TX overflow: the MCU is not reading, dropping output"), 2);
  assert_int_equal(logcap_count(&fx->log, "TX overflow ended: 1 bytes dropped (36 total)"), 1);
}

/* vm_txq_clear empties the queue, which also ends an overflow episode. */
static void test_txq_clear_drops_pending_and_ends_episode(void **state) {
  struct fixture *fx = *state;
  unsigned char data[150];

  fill_pattern(data, sizeof data, 6);
  assert_int_equal(logcap_start(&fx->log), 0);
  assert_int_equal(vm_txq_write(&fx->q, data, sizeof data), 100);
  vm_txq_clear(&fx->q);
  assert_int_equal(vm_txq_pending(&fx->q), 0);
  assert_int_equal(logcap_count(&fx->log, "TX overflow ended: 50 bytes dropped (50 total)"), 1);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(fx->f.got_len, 0);
  assert_int_equal(vm_txq_write(&fx->q, data, 3), 3);
  assert_int_equal(fx->f.got_len, 3);
  assert_memory_equal(fx->f.got, data, 3);
}

/* 2304 bytes at 115200 8N1 (11520 B/s) take 0.2 s end to end, and at no
 * moment has the sink received a byte whose wire slot is more than the 2 ms
 * lookahead away. */
static void test_txq_paced_2304_bytes_at_115200_takes_200ms(void **state) {
  struct fixture *fx = *state;
  static unsigned char data[2304];
  uint64_t t0, elapsed;

  fill_pattern(data, sizeof data, 7);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  t0 = uv_hrtime();
  assert_int_equal(vm_txq_write(&fx->q, data, sizeof data), sizeof data);
  run_until_drained(fx);
  elapsed = uv_hrtime() - t0;

  assert_int_equal(fx->f.got_len, sizeof data);
  assert_memory_equal(fx->f.got, data, sizeof data);
  /* never faster than the wire (that is what pacing guarantees); a loaded
   * machine may deliver the last timer late, so the upper bound is looser
   * here than in the end-to-end test of 10 KiB (test_foundation.py, +-5%) */
  assert_in_range(elapsed, 190000000, 260000000);
  assert_true(fx->f.writes > 20); /* spread over the 0.2 s, not one burst */
  for (int i = 0; i < fx->f.writes && i < FAKE_MAX_WRITES; i++) {
    uint64_t since = fx->f.write_at[i] - t0 + 2000000;
    size_t allowed = (size_t)(since * 11520 / 1000000000) + 2;

    assert_true(fx->f.total_at[i] <= allowed);
  }
}

/* A full sink stops the drain (no write attempts while waiting, even when
 * more bytes arrive and wrap the ring); its writable event resumes it. */
static void test_txq_eagain_stops_and_resumes_on_writable(void **state) {
  struct fixture *fx = *state;
  unsigned char data[20];
  int writes;

  fill_pattern(data, sizeof data, 8);
  fx->f.room = 6;
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(vm_txq_write(&fx->q, data, 10), 10);
  assert_int_equal(fx->f.got_len, 6);
  assert_int_equal(fx->f.want_on, 1);
  assert_true(fx->q.waiting_writable);
  writes = fx->f.writes;

  assert_int_equal(vm_txq_write(&fx->q, data + 10, 10), 10); /* wraps the 16-byte ring */
  assert_int_equal(fx->f.writes, writes);
  assert_int_equal(vm_txq_pending(&fx->q), 14);

  run_until_drained(fx);
  assert_int_equal(fx->f.got_len, 20);
  assert_memory_equal(fx->f.got, data, 20);
  assert_int_equal(fx->f.want_on, 1);
  assert_int_equal(fx->q.sent_total, 20);
  assert_int_equal(fx->q.dropped_total, 0);
}

/* Detaching a sink that was asked for a writable event cancels the request. */
static void test_txq_set_sink_cancels_want_writable(void **state) {
  struct fixture *fx = *state;
  unsigned char data[8];

  fill_pattern(data, sizeof data, 9);
  fx->f.room = 0;
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  vm_txq_write(&fx->q, data, sizeof data);
  assert_int_equal(fx->f.want_on, 1);
  vm_txq_set_sink(&fx->q, NULL);
  assert_true(fx->f.want_off >= 1);
  assert_false(fx->q.waiting_writable);
  assert_int_equal(vm_txq_pending(&fx->q), 8);
}

/* A sink failing with anything but -EAGAIN loses the queued bytes; the error
 * is logged once, not once per write. */
static void test_txq_sink_error_drops_queue_and_logs_once(void **state) {
  struct fixture *fx = *state;
  unsigned char data[10];

  fill_pattern(data, sizeof data, 10);
  fx->f.error = -EIO;
  assert_int_equal(logcap_start(&fx->log), 0);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(vm_txq_write(&fx->q, data, 10), 10);
  assert_int_equal(vm_txq_pending(&fx->q), 0);
  assert_int_equal(vm_txq_write(&fx->q, data, 5), 5);
  assert_int_equal(fx->q.dropped_total, 15);
  assert_int_equal(fx->q.sent_total, 0);
  assert_int_equal(logcap_count(&fx->log, "TX write failed (Input/output error)"), 1);
  assert_int_equal(fx->f.want_on, 0);
}

/* The time at which the sink had received at least `total` bytes. */
static uint64_t time_of_byte(const struct fixture *fx, size_t total) {
  for (int i = 0; i < fx->f.writes && i < FAKE_MAX_WRITES; i++)
    if (fx->f.total_at[i] >= total)
      return fx->f.write_at[i];
  fail_msg("byte %zu never arrived", total);
  return 0;
}

/* A rate change waits for the bytes queued before it: 1152 bytes at 115200
 * (100 ms) then 96 bytes at 9600 (100 ms). The first slow byte is written only
 * when the fast ones have left the wire, and no slow byte is ahead of its
 * 9600-baud slot. */
static void test_txq_rate_change_applies_after_queued_bytes(void **state) {
  struct fixture *fx = *state;
  static unsigned char data[1152 + 96];
  uint64_t t0, first_slow, elapsed;

  fill_pattern(data, sizeof data, 11);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  t0 = uv_hrtime();
  assert_int_equal(vm_txq_write(&fx->q, data, 1152), 1152);
  vm_txq_set_rate(&fx->q, 9600, VM_TXQ_FRAME_8N1);
  assert_int_equal(fx->q.baud, 115200); /* not yet */
  assert_int_equal(fx->q.nchanges, 1);
  assert_int_equal(vm_txq_write(&fx->q, data + 1152, 96), 96);
  run_until_drained(fx);
  elapsed = uv_hrtime() - t0;

  assert_int_equal(fx->q.baud, 9600);
  assert_int_equal(fx->q.nchanges, 0);
  assert_int_equal(fx->f.got_len, sizeof data);
  assert_memory_equal(fx->f.got, data, sizeof data);
  assert_in_range(elapsed, 195000000, 300000000);
  assert_true(time_of_byte(fx, 1152) - t0 < 150000000); /* the fast part was fast */
  first_slow = time_of_byte(fx, 1153) - t0;
  assert_true(first_slow + 2000000 >= 98000000); /* the fast bytes had left (lookahead 2 ms) */
  for (int i = 0; i < fx->f.writes && i < FAKE_MAX_WRITES; i++) {
    uint64_t since;
    if (fx->f.total_at[i] <= 1152)
      continue;
    since = fx->f.write_at[i] - t0 + 2000000;
    assert_true(since > 100000000);
    assert_true(fx->f.total_at[i] - 1152 <= (size_t)((since - 100000000) * 960 / 1000000000) + 2);
  }
}

/* With nothing queued a change applies at once; the frame length counts:
 * 8E2 (12 bits, 24 half bits) at 9600 carries 800 B/s, so 80 bytes take 100 ms. */
static void test_txq_rate_change_when_idle_and_frame_length(void **state) {
  struct fixture *fx = *state;
  unsigned char data[80];
  uint64_t t0, elapsed;

  fill_pattern(data, sizeof data, 12);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  vm_txq_set_rate(&fx->q, 9600, 24);
  assert_int_equal(fx->q.baud, 9600);
  assert_int_equal(fx->q.frame_hb, 24);
  assert_int_equal(fx->q.nchanges, 0);
  t0 = uv_hrtime();
  assert_int_equal(vm_txq_write(&fx->q, data, sizeof data), sizeof data);
  run_until_drained(fx);
  elapsed = uv_hrtime() - t0;
  assert_memory_equal(fx->f.got, data, sizeof data);
  assert_in_range(elapsed, 95000000, 160000000);
}

/* Unpaced to paced and back: bytes before the mark pass at once, the next are
 * paced (48 bytes at 9600 = 50 ms), and after a switch back to 0 everything
 * queued behind that mark goes in one write once the paced bytes are out. */
static void test_txq_rate_change_unpaced_and_back(void **state) {
  struct fixture *fx = *state;
  unsigned char data[200];
  uint64_t t0, elapsed;
  int writes;

  fill_pattern(data, sizeof data, 13);
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(vm_txq_write(&fx->q, data, 100), 100);
  assert_int_equal(fx->f.got_len, 100);
  vm_txq_set_rate(&fx->q, 9600, VM_TXQ_FRAME_8N1);
  t0 = uv_hrtime();
  assert_int_equal(vm_txq_write(&fx->q, data + 100, 48), 48);
  assert_true(fx->f.got_len < 148); /* paced now */
  vm_txq_set_rate(&fx->q, 0, VM_TXQ_FRAME_8N1);
  assert_int_equal(fx->q.baud, 9600);
  assert_int_equal(vm_txq_write(&fx->q, data + 148, 52), 52);
  run_until_drained(fx);
  elapsed = uv_hrtime() - t0;
  assert_int_equal(fx->q.baud, 0);
  assert_memory_equal(fx->f.got, data, sizeof data);
  assert_in_range(elapsed, 45000000, 120000000);
  writes = fx->f.writes;
  assert_int_equal(fx->f.total_at[writes - 1], 200);
  assert_true(fx->f.total_at[writes - 2] <= 148); /* the 52 unpaced bytes in one write */
}

/* vm_txq_clear drops the bytes a change was waiting for: it applies at once.
 * Changes beyond VM_TXQ_MAX_RATE_CHANGES replace the newest one waiting. */
static void test_txq_rate_changes_clear_and_overflow(void **state) {
  struct fixture *fx = *state;
  unsigned char data[10];

  fill_pattern(data, sizeof data, 14);
  for (int i = 0; i < VM_TXQ_MAX_RATE_CHANGES + 2; i++) {
    assert_int_equal(vm_txq_write(&fx->q, data, 1), 1); /* no sink: stays queued */
    vm_txq_set_rate(&fx->q, 1200 * (unsigned)(i + 1), VM_TXQ_FRAME_8N1);
  }
  assert_int_equal(fx->q.nchanges, VM_TXQ_MAX_RATE_CHANGES);
  assert_int_equal(fx->q.changes[VM_TXQ_MAX_RATE_CHANGES - 1].baud,
                   1200 * (VM_TXQ_MAX_RATE_CHANGES + 2));
  assert_int_equal(fx->q.changes[VM_TXQ_MAX_RATE_CHANGES - 1].at, VM_TXQ_MAX_RATE_CHANGES + 2);
  /* two changes at the same position: the second replaces the first */
  vm_txq_set_rate(&fx->q, 4800, VM_TXQ_FRAME_8N1);
  assert_int_equal(fx->q.nchanges, VM_TXQ_MAX_RATE_CHANGES);
  vm_txq_clear(&fx->q);
  assert_int_equal(fx->q.nchanges, 0);
  assert_int_equal(fx->q.baud, 4800);
}

/* ---- the serial faults' filter (serfault.c) ----------------------------- */

/* The filter vm_serfault_apply() puts on a module's queue, moved onto the
 * fixture's queue (the module is only its holder). */
static void serfault_on_queue(struct fixture *fx, struct vm_module *m, const char *action,
                              const char *ppm) {
  char *argv[] = {"serial", (char *)action, (char *)ppm};
  char err[128] = "";

  m->name = "test";
  assert_int_equal(vm_serfault_apply(m, 3, argv, err, sizeof err), 0);
  fx->q.filter = m->txq.filter;
}

static double serfault_counter(struct vm_module *m, const char *key) {
  cJSON *o = cJSON_CreateObject();
  double v;

  vm_serfault_status(m, o);
  v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "serial"), key)->valuedouble;
  cJSON_Delete(o);
  return v;
}

/* A sink taking 7 bytes at a time sees chunks again after partial writes:
 * every byte is still flipped exactly once (twice would restore it). */
static void test_txq_filter_corrupts_each_byte_once_across_partial_writes(void **state) {
  struct fixture *fx = *state;
  static struct vm_module m;
  static unsigned char data[3000];

  fill_pattern(data, sizeof data, 11);
  serfault_on_queue(fx, &m, "corrupt", "1000000");
  fx->f.room = fx->f.refill = 7;
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(vm_txq_write(&fx->q, data, sizeof data), sizeof data);
  run_until_drained(fx);
  assert_int_equal(fx->f.got_len, sizeof data);
  for (size_t i = 0; i < sizeof data; i++)
    assert_int_equal(__builtin_popcount(fx->f.got[i] ^ data[i]), 1);
  assert_true(serfault_counter(&m, "corrupted") == sizeof data);
  vm_serfault_free(&m);
}

/* Half dropped, across partial writes: the kept bytes are the output in
 * order, and kept + dropped is every byte once. */
static void test_txq_filter_drops_each_byte_once_across_partial_writes(void **state) {
  struct fixture *fx = *state;
  static struct vm_module m;
  static unsigned char data[3000];
  size_t j = 0;
  double dropped;

  fill_pattern(data, sizeof data, 12);
  serfault_on_queue(fx, &m, "drop", "500000");
  fx->f.room = fx->f.refill = 7;
  vm_txq_set_sink(&fx->q, &fx->f.sink);
  assert_int_equal(vm_txq_write(&fx->q, data, sizeof data), sizeof data);
  run_until_drained(fx);
  dropped = serfault_counter(&m, "dropped");
  assert_true(fx->f.got_len + dropped == sizeof data);
  assert_true(dropped > 1200 && dropped < 1800);
  for (size_t i = 0; i < fx->f.got_len; i++, j++) {
    while (j < sizeof data && data[j] != fx->f.got[i])
      j++;
    assert_true(j < sizeof data); /* got[i] follows got[i-1] in data */
  }
  assert_int_equal(fx->q.sent_total, fx->f.got_len);
  vm_serfault_free(&m);
}

/* clear takes the filter off the queue: the TX path is as without faults. */
static void test_txq_filter_goes_with_clear(void **state) {
  struct fixture *fx = *state;
  static struct vm_module m;
  char *argv[] = {"serial", "clear"};
  char err[128];

  serfault_on_queue(fx, &m, "drop", "10");
  assert_non_null(m.txq.filter);
  assert_int_equal(vm_serfault_apply(&m, 2, argv, err, sizeof err), 0);
  assert_null(m.txq.filter);
  vm_serfault_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_txq_unpaced_passes_everything_in_order,
                                      setup_unpaced_4k, teardown),
      cmocka_unit_test_setup_teardown(test_txq_overflow_drops_exactly_the_excess_and_counts_it,
                                      setup_unpaced_100, teardown),
      cmocka_unit_test_setup_teardown(test_txq_clear_drops_pending_and_ends_episode,
                                      setup_unpaced_100, teardown),
      cmocka_unit_test_setup_teardown(test_txq_paced_2304_bytes_at_115200_takes_200ms,
                                      setup_115200, teardown),
      cmocka_unit_test_setup_teardown(test_txq_eagain_stops_and_resumes_on_writable,
                                      setup_unpaced_16, teardown),
      cmocka_unit_test_setup_teardown(test_txq_set_sink_cancels_want_writable,
                                      setup_unpaced_16, teardown),
      cmocka_unit_test_setup_teardown(test_txq_sink_error_drops_queue_and_logs_once,
                                      setup_unpaced_16, teardown),
      cmocka_unit_test_setup_teardown(test_txq_rate_change_applies_after_queued_bytes,
                                      setup_115200, teardown),
      cmocka_unit_test_setup_teardown(test_txq_rate_change_when_idle_and_frame_length,
                                      setup_115200, teardown),
      cmocka_unit_test_setup_teardown(test_txq_rate_change_unpaced_and_back, setup_unpaced_4k,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_txq_rate_changes_clear_and_overflow, setup_unpaced_16,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_txq_filter_corrupts_each_byte_once_across_partial_writes,
                                      setup_unpaced_4k, teardown),
      cmocka_unit_test_setup_teardown(test_txq_filter_drops_each_byte_once_across_partial_writes,
                                      setup_unpaced_4k, teardown),
      cmocka_unit_test_setup_teardown(test_txq_filter_goes_with_clear, setup_unpaced_4k, teardown),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
