/* tcp.h - raw TCP serial endpoint (ser2net style) for hosts that cannot open
 * the PTY (Docker): a stream-socket endpoint (sockep.h) on HOST:PORT. */
#ifndef VMODULE_TCP_H
#define VMODULE_TCP_H

#include "vmodule/sockep.h"

/* Listens on host:port (port 0: any free port, then in t->port). Returns 0
 * or a negative errno (logged). */
int vm_tcp_listen(struct vm_sockep *t, uv_loop_t *loop, const char *name, const char *host,
                  int port, vm_input_cb on_input, vm_sockep_presence_cb on_presence, void *data);

#endif
