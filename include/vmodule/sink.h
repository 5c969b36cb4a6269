/* sink.h - the byte sink a TX queue drains into (PTY master, TCP client).
 *
 * A sink writes without blocking and tells its queue when it can take more:
 * write() returns the number of bytes taken, or a negative errno (-EAGAIN when
 * it is full). want_writable(1) asks the sink to call vm_txq_on_writable() on
 * its queue once it can take bytes again; want_writable(0) cancels that. */
#ifndef VMODULE_SINK_H
#define VMODULE_SINK_H

#include <stddef.h>
#include <sys/types.h>

struct vm_txq;
struct vm_sink;

struct vm_sink_ops {
  ssize_t (*write)(struct vm_sink *sink, const void *buf, size_t len);
  void (*want_writable)(struct vm_sink *sink, int on);
};

struct vm_sink {
  const struct vm_sink_ops *ops;
  struct vm_txq *txq; /* set by vm_txq_set_sink() */
};

/* Input from an endpoint (bytes the MCU sent). */
typedef void (*vm_input_cb)(void *data, const char *buf, size_t len);

#endif
