/* tcp.h - raw TCP serial endpoint (ser2net style) carrying the module's byte
 * stream, for hosts that cannot open the PTY (Docker). One client at a time; a
 * second one is told so in one line and closed. While a client is connected it
 * is the module's output sink; input from it is treated like PTY input. */
#ifndef VMODULE_TCP_H
#define VMODULE_TCP_H

#include <uv.h>

#include "vmodule/sink.h"

typedef void (*vm_tcp_presence_cb)(void *data, int connected);

struct vm_tcp {
  struct vm_sink sink; /* first member */
  uv_loop_t *loop;
  const char *name;
  uv_tcp_t *server; /* the listener; NULL while unplugged */
  struct sockaddr_storage addr; /* where it listens (the bound port) */
  uv_tcp_t *client; /* NULL when none */
  uv_write_t wreq;
  char wbuf[4096];
  int writing, want_writable;
  vm_input_cb on_input;
  vm_tcp_presence_cb on_presence;
  void *data;
  int port; /* the bound port (useful with port 0) */
};

int vm_tcp_listen(struct vm_tcp *t, uv_loop_t *loop, const char *name, const char *host,
                  int port, vm_input_cb on_input, vm_tcp_presence_cb on_presence, void *data);
void vm_tcp_close(struct vm_tcp *t);

/* `serial unplug`: drops the client (on_presence(0)) and stops listening, so
 * new clients are refused (ECONNREFUSED) as by a serial server whose device
 * has gone. -EALREADY when unplugged. */
int vm_tcp_unplug(struct vm_tcp *t);
/* Listens again on the same address and port. Returns 0 or a negative errno
 * (logged; the endpoint stays unplugged). */
int vm_tcp_plug(struct vm_tcp *t);

#endif
