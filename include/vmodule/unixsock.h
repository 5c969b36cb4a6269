/* unixsock.h - unix stream socket serial endpoint: a stream-socket endpoint
 * (sockep.h) at a path, for fleets larger than the kernel's PTY pool. The
 * socket file has mode 0600, in a directory that must exist; a stale socket
 * left by a killed run is replaced (a live one, or a file that is not a
 * socket, is an error); the file is removed when the endpoint closes or is
 * unplugged. */
#ifndef VMODULE_UNIXSOCK_H
#define VMODULE_UNIXSOCK_H

#include "vmodule/sockep.h"

/* path must outlive the endpoint (the module's config). Returns 0 or a
 * negative errno (logged). */
int vm_unix_listen(struct vm_sockep *u, uv_loop_t *loop, const char *name, const char *path,
                   vm_input_cb on_input, vm_sockep_presence_cb on_presence, void *data);

#endif
