/* sockep.h - a stream-socket serial endpoint carrying the module's byte
 * stream: TCP (tcp.h, ser2net style) or a unix socket (unixsock.h). The
 * byte stream is the PTY's, without framing. One client at a time; a second
 * one is told so in one line and closed. While a client is connected the
 * module makes the endpoint its output sink; input from it is treated like
 * PTY input. The kind of socket is a small table of operations (struct
 * vm_sockep_ops); everything else is shared (sockep.c). */
#ifndef VMODULE_SOCKEP_H
#define VMODULE_SOCKEP_H

#include <uv.h>

#include "vmodule/sink.h"

struct vm_sockep;

typedef void (*vm_sockep_presence_cb)(void *data, struct vm_sockep *ep, int connected);

/* A listener's or a client's handle, whichever the kind. */
union vm_sock_handle {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
};

struct vm_sockep_ops {
  const char *kind; /* "tcp", "unix": names the log lines */
  int (*init)(uv_loop_t *loop, union vm_sock_handle *h);
  /* Binds and listens (libuv error or 0); may fill ep->where. */
  int (*open)(struct vm_sockep *ep, union vm_sock_handle *server, uv_connection_cb cb);
  /* Optional: the listener has been closed (unix: the path is removed). */
  void (*closed)(struct vm_sockep *ep);
  /* The client, for the log ("127.0.0.1:40312", "pid 1234"). */
  void (*peer)(union vm_sock_handle *client, char *out, size_t cap);
};

struct vm_sockep {
  struct vm_sink sink; /* first member */
  const struct vm_sockep_ops *ops;
  uv_loop_t *loop;     /* NULL when closed */
  const char *name;
  union vm_sock_handle *server; /* the listener; NULL while unplugged */
  uv_stream_t *client;          /* NULL when none */
  int want_writable;
  vm_input_cb on_input;
  vm_sockep_presence_cb on_presence;
  void *data;
  char where[112]; /* "127.0.0.1:5555", "[::1]:5555", "/run/vmodule/tc0.sock" */
  /* tcp */
  struct sockaddr_storage addr; /* where it listens (the bound port) */
  int port;                     /* the bound port (useful with port 0) */
  /* unix */
  const char *path;
};

/* For the constructors (vm_tcp_listen, vm_unix_listen): init clears ep and
 * sets what every kind has; the constructor then sets its own fields, and
 * start listens and logs. start returns 0 or a negative errno (logged). */
void vm_sockep_init(struct vm_sockep *ep, const struct vm_sockep_ops *ops, const char *name,
                    vm_input_cb on_input, vm_sockep_presence_cb on_presence, void *data);
int vm_sockep_start(struct vm_sockep *ep, uv_loop_t *loop);

/* Closes the client without on_presence: the module is going away. ep must
 * live until the loop has run the closes (a cancelled write still reports
 * to its connection). A refused client still being told "busy" finishes on
 * its own within a second. */
void vm_sockep_close(struct vm_sockep *ep);

/* `serial unplug`: drops the client (on_presence(0)) and stops listening, so
 * new clients are refused (TCP: ECONNREFUSED; unix: the path is gone) as by a
 * serial server whose device has gone. -EALREADY when unplugged. */
int vm_sockep_unplug(struct vm_sockep *ep);
/* Listens again at the same place. Returns 0 or a negative errno (logged;
 * the endpoint stays unplugged). */
int vm_sockep_plug(struct vm_sockep *ep);

static inline int vm_sockep_connected(const struct vm_sockep *ep) { return ep && ep->client; }

#endif
