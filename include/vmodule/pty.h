/* pty.h - PTY serial endpoint: the "UART" the MCU firmware opens.
 *
 * posix_openpt -> grantpt/unlockpt -> raw mode through the master -> the daemon
 * holds its own slave fd (the master then never reports HUP/EIO) -> a symlink at
 * the configured path, replaced atomically and removed on close. Client open and
 * close are detected with inotify on /dev/pts/N, logged, and raw mode is applied
 * again on each open; all PTYs of a loop share one inotify instance (one watch
 * each). The master is driven with one uv_poll_t, never uv_tty_t. */
#ifndef VMODULE_PTY_H
#define VMODULE_PTY_H

#include <uv.h>

#include "vmodule/sink.h"

struct vm_pty_watch; /* the loop's inotify instance, private to pty.c */

struct vm_pty {
  struct vm_sink sink; /* first member: the TX queue drains into it */
  uv_loop_t *loop;
  const char *name; /* module name, for logs */
  char *link;       /* symlink path */
  char slave_path[64];
  int master, slave;
  int wd;                     /* inotify watch on slave_path, -1 when none */
  int parked;                 /* unplugged: the master's fd number, kept on /dev/null; else -1 */
  struct vm_pty_watch *watch; /* shared with the loop's other PTYs; NULL when closed */
  uv_poll_t poll;             /* on the master */
  int poll_events;
  int clients; /* opens seen minus closes seen (our own slave fd excluded) */
  vm_input_cb on_input;
  /* optional: called after each client open/close with the new count */
  void (*on_presence)(void *data, int clients);
  void *data;
};

/* Creates the PTY and the symlink; returns 0 or a negative errno (logged). */
int vm_pty_open(struct vm_pty *p, uv_loop_t *loop, const char *name, const char *link,
                vm_input_cb on_input, void *data);
/* Stops reading, removes the symlink, closes handles and fds. The loop's
 * inotify instance is closed with its last PTY. */
void vm_pty_close(struct vm_pty *p);

/* The USB serial device disappears (`serial unplug`): the master is closed,
 * so every client fd on the slave is hung up (read returns 0, write EIO,
 * poll POLLHUP) and /dev/pts/N goes; the held slave, the watch and the
 * symlink go too. Writes to the sink fail (-EBADF) until vm_pty_plug().
 * Returns 0 or a negative errno (logged); -EALREADY when unplugged. */
int vm_pty_unplug(struct vm_pty *p);
/* It comes back: a new PTY (a new /dev/pts/N) behind the same symlink.
 * Returns 0 or a negative errno (logged; the port stays unplugged). */
int vm_pty_plug(struct vm_pty *p);
static inline int vm_pty_unplugged(const struct vm_pty *p) { return p->loop && p->parked >= 0; }

#endif
