/* ctl.h - the control socket: a unix stream socket per daemon speaking one
 * JSON object per line each way (README "Control socket"). */
#ifndef VMODULE_CTL_H
#define VMODULE_CTL_H

#include <uv.h>

struct vm_module;

/* Listens on path (its directory is created 0700 if missing, the socket is
 * 0600; a stale socket is replaced, a live one refused). Returns 0 or -1
 * (logged). */
int vm_ctl_start(uv_loop_t *loop, const char *path, struct vm_module *modules, int n);
/* Closes the listener and every client; removes the socket. */
void vm_ctl_stop(void);

#endif
