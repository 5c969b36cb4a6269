/* txq.c - bounded TX queue towards the MCU, paced like a UART at the module's baud.
 *
 * Everything the module prints goes through here. A ring buffer of `cap` bytes
 * holds output the wire has not carried yet; when it is full new bytes are
 * dropped and counted, as a real UART without flow control would lose them.
 *
 * Pacing emulates the wire: at baud B one byte occupies F/B seconds, F being the
 * frame length in bits (10 for 8N1; frame_hb counts half bits for 1.5 stop bits).
 * wire_free_ns is the uv_hrtime() at which the emulated wire becomes idle. A
 * drain writes the bytes whose nominal start time is no later than 2 ms from
 * now, advances wire_free_ns by exactly their wire time and arms the timer for
 * the next chunk. Because every step is computed from wire_free_ns and not from
 * when the timer happened to fire, late timers never accumulate into a slower
 * line. A sink that is full (-EAGAIN) stops the drain until it reports writable;
 * the wire counts as idle meanwhile, like a UART held by flow control.
 *
 * A rate change (AT+UART_CUR) is a mark in the stream: queued_total - len is
 * the position of the oldest queued byte, and a drain never writes across the
 * next mark, so the bytes before it are timed at the old rate and the first
 * byte after it starts, at the new rate, when they have left the wire.
 *
 * A filter (the serial faults drop and corrupt) sees each chunk after pacing,
 * just before the sink: a byte it drops has still taken its wire time, as a
 * byte garbled on a real line has been sent all the same. */
#include "vmodule/txq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/log.h"

#define NS_PER_SEC 1000000000ULL
#define NS_PER_MS 1000000ULL
/* Writing slightly ahead of the wire keeps the sink fed between timer ticks
 * (libuv timers have 1 ms resolution) without visibly beating the baud. */
#define TXQ_LOOKAHEAD_NS (2 * NS_PER_MS)

static void txq_drain(struct vm_txq *q);

static int txq_paced(const struct vm_txq *q) { return q->baud != 0; }

/* Stream position of the oldest queued byte. */
static uint64_t txq_head_pos(const struct vm_txq *q) { return q->queued_total - q->len; }

static void txq_on_timer(uv_timer_t *timer) {
  struct vm_txq *q = timer->data;

  q->timer_armed = 0;
  txq_drain(q);
}

int vm_txq_init(struct vm_txq *q, uv_loop_t *loop, const char *name, unsigned baud, size_t cap) {
  int r;

  memset(q, 0, sizeof *q);
  q->loop = loop;
  q->name = name ? name : "txq";
  q->cap = cap ? cap : VM_TXQ_DEFAULT_CAP;
  q->baud = baud;
  q->frame_hb = VM_TXQ_FRAME_8N1;
  q->buf = malloc(q->cap);
  if (!q->buf)
    return -ENOMEM;
  r = uv_timer_init(loop, &q->timer);
  if (r < 0) {
    free(q->buf);
    q->buf = NULL;
    return r;
  }
  q->timer.data = q;
  return 0;
}

/* Copies what fits behind the queued bytes; returns how much that was. */
static size_t txq_append(struct vm_txq *q, const unsigned char *p, size_t len) {
  size_t room = q->cap - q->len;
  size_t n = len < room ? len : room;
  size_t tail = (q->head + q->len) % q->cap;
  size_t first = q->cap - tail < n ? q->cap - tail : n;

  memcpy(q->buf + tail, p, first);
  memcpy(q->buf, p + first, n - first);
  q->len += n;
  q->queued_total += n;
  return n;
}

static void txq_consume(struct vm_txq *q, size_t n) {
  q->len -= n;
  q->head = q->len ? (q->head + n) % q->cap : 0;
}

/* The wire was idle (nothing queued, no sink, or a sink that could not take
 * bytes): its next byte cannot start before now. */
static void txq_wire_idle(struct vm_txq *q) {
  uint64_t now;

  if (!txq_paced(q))
    return;
  now = uv_hrtime();
  if (q->wire_free_ns < now)
    q->wire_free_ns = now;
}

/* How many bytes may start on the wire by now + lookahead. */
static size_t txq_wire_allowance(const struct vm_txq *q, uint64_t now) {
  uint64_t horizon = now + TXQ_LOOKAHEAD_NS;
  uint64_t span;

  if (q->wire_free_ns > horizon)
    return 0;
  span = horizon - q->wire_free_ns;
  if (span > NS_PER_SEC)
    span = NS_PER_SEC; /* bounds the product below; a second is plenty */
  return (size_t)(span * 2 * q->baud / ((uint64_t)q->frame_hb * NS_PER_SEC)) + 1;
}

/* Wire time of n bytes at the current rate. */
static uint64_t txq_wire_ns(const struct vm_txq *q, size_t n) {
  return (uint64_t)n * q->frame_hb * NS_PER_SEC / (2 * (uint64_t)q->baud);
}

/* Applies the rate changes whose mark the head of the queue has reached (all
 * of them once the queue is empty). The wire stays busy until the bytes
 * already written have left it; the next byte is timed at the new rate. */
static void txq_apply_due_changes(struct vm_txq *q) {
  uint64_t head = txq_head_pos(q);
  int done = 0;

  while (done < q->nchanges && q->changes[done].at <= head) {
    q->baud = q->changes[done].baud;
    q->frame_hb = q->changes[done].frame_hb;
    done++;
  }
  if (!done)
    return;
  q->nchanges -= done;
  memmove(q->changes, q->changes + done, (size_t)q->nchanges * sizeof q->changes[0]);
  txq_wire_idle(q);
}

/* Wakes up when the next queued byte is within the lookahead. */
static void txq_arm_timer(struct vm_txq *q, uint64_t now) {
  uint64_t due = q->wire_free_ns - TXQ_LOOKAHEAD_NS; /* > now: the allowance was 0 */
  uint64_t ms = (due - now + NS_PER_MS - 1) / NS_PER_MS;

  uv_timer_start(&q->timer, txq_on_timer, ms, 0);
  q->timer_armed = 1;
}

static void txq_stop_timer(struct vm_txq *q) {
  if (q->timer_armed) {
    uv_timer_stop(&q->timer);
    q->timer_armed = 0;
  }
}

/* The queue just became empty: nothing to wake for, and an overflow episode
 * (if any) is over because the MCU caught up. */
static void txq_emptied(struct vm_txq *q) {
  txq_stop_timer(q);
  if (q->overflowing) {
    vm_log_info(q->name, "TX overflow ended: %llu bytes dropped (%llu total)",
                (unsigned long long)q->dropped_episode, (unsigned long long)q->dropped_total);
    q->overflowing = 0;
    q->dropped_episode = 0;
  }
}

static void txq_overflow(struct vm_txq *q, size_t dropped) {
  if (!q->overflowing) {
    vm_log_warn(q->name, "TX overflow: the MCU is not reading, dropping output");
    q->overflowing = 1;
  }
  q->dropped_episode += dropped;
  q->dropped_total += dropped;
}

/* A sink that fails for a reason other than "full" will not recover by
 * waiting; keeping the bytes would only fill the queue, so they are dropped. */
static void txq_sink_failed(struct vm_txq *q, int err) {
  if (q->sink_error != err)
    vm_log_error(q->name, "TX write failed (%s): dropping %zu queued bytes", strerror(-err), q->len);
  q->sink_error = err;
  q->dropped_total += q->len;
  q->len = 0;
  q->head = 0;
  txq_apply_due_changes(q);
}

static void txq_wait_writable(struct vm_txq *q) {
  q->waiting_writable = 1;
  q->sink->ops->want_writable(q->sink, 1);
}

/* Hands the chunk of n bytes at the head to the filter; the bytes it drops
 * leave the queue as sent. Returns how many bytes are left to write. */
static size_t txq_filter(struct vm_txq *q, size_t n) {
  size_t dropped = q->filter->apply(q->filter, txq_head_pos(q), q->buf + q->head, n);

  if (dropped) {
    txq_consume(q, dropped);
    if (txq_paced(q))
      q->wire_free_ns += txq_wire_ns(q, dropped);
  }
  return n - dropped;
}

static void txq_drain(struct vm_txq *q) {
  while (q->len > 0 && q->sink && !q->waiting_writable) {
    size_t n = q->cap - q->head < q->len ? q->cap - q->head : q->len;
    ssize_t w;

    txq_apply_due_changes(q);
    if (q->nchanges && q->changes[0].at - txq_head_pos(q) < n)
      n = (size_t)(q->changes[0].at - txq_head_pos(q)); /* not across the next rate change */
    if (txq_paced(q)) {
      uint64_t now = uv_hrtime();
      size_t allowed = txq_wire_allowance(q, now);

      if (!allowed) {
        txq_arm_timer(q, now);
        return;
      }
      if (n > allowed)
        n = allowed;
    }
    if (q->filter && (n = txq_filter(q, n)) == 0)
      continue; /* all of it lost on the line */
    w = q->sink->ops->write(q->sink, q->buf + q->head, n);
    if (w == -EAGAIN || w == 0) {
      txq_wait_writable(q);
      return;
    }
    if (w < 0) {
      txq_sink_failed(q, (int)w);
      break;
    }
    txq_consume(q, (size_t)w);
    q->sent_total += (uint64_t)w;
    q->sink_error = 0;
    if (txq_paced(q))
      q->wire_free_ns += txq_wire_ns(q, (size_t)w);
  }
  if (q->len == 0) {
    txq_apply_due_changes(q);
    txq_emptied(q);
  }
}

void vm_txq_set_sink(struct vm_txq *q, struct vm_sink *sink) {
  if (q->sink)
    q->sink->ops->want_writable(q->sink, 0);
  q->waiting_writable = 0;
  q->sink = sink;
  q->sink_error = 0;
  if (sink)
    sink->txq = q;
  txq_wire_idle(q);
  if (!q->timer_armed)
    txq_drain(q);
}

size_t vm_txq_write(struct vm_txq *q, const void *buf, size_t len) {
  const unsigned char *p = buf;
  size_t done = 0;

  if (!q->buf || len == 0)
    return 0; /* closed */
  if (q->len == 0)
    txq_wire_idle(q);
  /* Drain between appends so that a sink able to take everything now (an
   * unpaced wire) never makes a large write overflow the queue. */
  for (;;) {
    size_t before;

    done += txq_append(q, p + done, len - done);
    before = q->len;
    if (!q->timer_armed)
      txq_drain(q);
    if (done == len || q->len == before)
      break;
  }
  if (done < len)
    txq_overflow(q, len - done);
  return done;
}

void vm_txq_set_rate(struct vm_txq *q, unsigned baud, unsigned frame_hb) {
  struct vm_txq_rate_change c = {q->queued_total, baud, frame_hb ? frame_hb : VM_TXQ_FRAME_8N1};
  int last = q->nchanges - 1;

  if (last >= 0 && (q->changes[last].at == c.at || q->nchanges == VM_TXQ_MAX_RATE_CHANGES))
    q->changes[last] = c; /* nothing between the two, or no room: the newest wins */
  else
    q->changes[q->nchanges++] = c;
  txq_apply_due_changes(q);
}

void vm_txq_on_writable(struct vm_txq *q) {
  if (!q->waiting_writable)
    return;
  q->waiting_writable = 0;
  txq_wire_idle(q);
  if (!q->timer_armed)
    txq_drain(q);
}

void vm_txq_clear(struct vm_txq *q) {
  q->len = 0;
  q->head = 0;
  txq_apply_due_changes(q);
  txq_emptied(q);
}

size_t vm_txq_pending(const struct vm_txq *q) { return q->len; }

void vm_txq_close(struct vm_txq *q) {
  if (!q->buf)
    return; /* never initialised, or already closed */
  if (q->sink && q->waiting_writable)
    q->sink->ops->want_writable(q->sink, 0);
  q->sink = NULL;
  q->waiting_writable = 0;
  q->timer_armed = 0;
  if (!uv_is_closing((uv_handle_t *)&q->timer))
    uv_close((uv_handle_t *)&q->timer, NULL);
  free(q->buf);
  q->buf = NULL;
  q->len = 0;
  q->head = 0;
}
