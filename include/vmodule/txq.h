/* txq.h - bounded TX queue towards the MCU, paced at the module's baud rate.
 *
 * Bytes are appended with vm_txq_write() and drained into the current sink at
 * the line rate (baud/10 bytes per second for 8N1; vm_txq_set_rate() changes
 * the rate and the frame length), or as fast as the sink takes them when the
 * baud is 0. When the queue is full, new bytes are dropped (a UART without
 * flow control loses them too): the drop is counted, a warning is logged once
 * at the start of each overflow episode and a summary when it ends. */
#ifndef VMODULE_TXQ_H
#define VMODULE_TXQ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "vmodule/sink.h"

#define VM_TXQ_DEFAULT_CAP (64 * 1024)
#define VM_TXQ_FRAME_8N1 20 /* frame length in half bits: start + 8 data + 1 stop */
#define VM_TXQ_MAX_RATE_CHANGES 4

/* A mutator of the bytes leaving the queue (the serial faults, serfault.c).
 * apply() gets each chunk about to be written to the sink, len bytes at buf
 * whose first byte is at stream position pos; it may change bytes in place
 * and drop some by moving the kept ones, in order, to the end of the chunk.
 * It returns how many bytes it dropped (the chunk's first ones after the
 * move): those leave the queue as if written, taking their wire time. A chunk
 * the sink took only part of comes again, so apply() must not decide a
 * position twice. NULL in every queue that has no such fault: the TX path
 * then costs one pointer check. */
struct vm_txq_filter {
  size_t (*apply)(struct vm_txq_filter *f, uint64_t pos, unsigned char *buf, size_t len);
};

/* A rate change waiting for the bytes queued before it to leave. */
struct vm_txq_rate_change {
  uint64_t at;  /* stream position (queued_total) from which it applies */
  unsigned baud, frame_hb;
};

struct vm_txq {
  uv_loop_t *loop;
  uv_timer_t timer;
  const char *name;       /* module name, for logs */
  struct vm_sink *sink;   /* may be NULL: bytes wait in the queue */
  unsigned char *buf;     /* ring buffer */
  size_t cap, head, len;
  unsigned baud;          /* line rate; 0 = unpaced */
  unsigned frame_hb;      /* bits per byte on the wire, in half bits (20 = 8N1) */
  uint64_t queued_total;  /* bytes ever accepted: the stream position of the tail */
  struct vm_txq_rate_change changes[VM_TXQ_MAX_RATE_CHANGES];
  int nchanges;
  uint64_t wire_free_ns;  /* uv_hrtime() at which the emulated wire is idle */
  int waiting_writable;   /* asked the sink for a writable event */
  int timer_armed;
  int overflowing;        /* inside an overflow episode */
  uint64_t dropped_episode, dropped_total, sent_total;
  int sink_error;          /* last sink failure (negative errno), logged once; 0 after a write */
  struct vm_txq_filter *filter; /* NULL unless a serial fault mutates the output */
};

int vm_txq_init(struct vm_txq *q, uv_loop_t *loop, const char *name, unsigned baud, size_t cap);
/* Switches the sink (NULL detaches). Queued bytes go to the new sink. */
void vm_txq_set_sink(struct vm_txq *q, struct vm_sink *sink);
/* Appends bytes; returns how many were accepted (the rest were dropped). */
size_t vm_txq_write(struct vm_txq *q, const void *buf, size_t len);
/* Changes the line rate (baud 0 = unpaced) and the frame length in half bits
 * (VM_TXQ_FRAME_8N1; 1.5 stop bits make it odd). Bytes queued before the call
 * still go out at the old rate; the new one applies from the first byte queued
 * after it, whose wire slot starts when the earlier bytes have left the wire
 * (a UART switched once its TX FIFO has drained). Up to
 * VM_TXQ_MAX_RATE_CHANGES changes wait; one more replaces the newest. */
void vm_txq_set_rate(struct vm_txq *q, unsigned baud, unsigned frame_hb);
/* Called by the sink when it can take bytes again. */
void vm_txq_on_writable(struct vm_txq *q);
/* Drops everything queued (module reset keeps the wire, not the queue). */
void vm_txq_clear(struct vm_txq *q);
size_t vm_txq_pending(const struct vm_txq *q);
/* Stops the timer handle; the struct must live until the loop has run the close. */
void vm_txq_close(struct vm_txq *q);

#endif
