/* unixsock.c - unix stream socket serial endpoint (unixsock.h): the byte
 * stream of the PTY on a socket path, for fleets that the kernel's PTY pool
 * (kernel.pty.max) or a container's /dev/pts would not hold. Everything but
 * binding and naming is sockep.c's.
 *
 * Binding: a path that is already there is probed first. A socket nobody
 * accepts on (ECONNREFUSED: left by a killed run) is stale and replaced; a
 * socket that accepts belongs to a live process and is left alone, as is
 * anything that is not a socket. The file gets mode 0600 before listen, so
 * no other user can connect even for a moment; it goes when the listener
 * closes (exit, `serial unplug`). */
#include "vmodule/unixsock.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmodule/log.h"

#define UNIX_BACKLOG 4

static int unix_init(uv_loop_t *loop, union vm_sock_handle *h) {
  return uv_pipe_init(loop, &h->pipe, 0);
}

/* "pid 1234" of the connecting process (SO_PEERCRED). */
static void unix_peer(union vm_sock_handle *client, char *out, size_t cap) {
  uv_os_fd_t fd;
  struct ucred cred;
  socklen_t len = sizeof cred;

  snprintf(out, cap, "unknown");
  if (uv_fileno(&client->handle, &fd) == 0 &&
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
    snprintf(out, cap, "pid %ld", (long)cred.pid);
}

/* Whether a process accepts on the socket at path (a non-blocking connect:
 * refused means stale). Returns 1 live, 0 stale, or a negative errno. */
static int unix_probe(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int r;

  if (fd < 0)
    return -errno;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  r = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 1
      : errno == EAGAIN || errno == EINPROGRESS          ? 1 /* live, its backlog full */
      : errno == ECONNREFUSED                            ? 0
                                                         : -errno;
  close(fd);
  return r;
}

/* Whether the directory the socket goes into exists. */
static bool unix_dir_exists(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[sizeof ((struct sockaddr_un *)0)->sun_path];
  struct stat st;

  if (!slash)
    return true; /* the working directory */
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  return !dir[0] || (stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
}

/* Clears the way for bind: 0, or a libuv error (logged). */
static int unix_clear_path(struct vm_sockep *u) {
  const char *who = u->name ? u->name : "unix";
  struct stat st;
  int live;

  if (lstat(u->path, &st) < 0) {
    if (errno != ENOENT)
      return uv_translate_sys_error(errno);
    return unix_dir_exists(u->path) ? 0 : UV_ENOENT; /* libuv's bind says EACCES */
  }
  if (!S_ISSOCK(st.st_mode)) {
    vm_log_error(who, "%s exists and is not a socket: left alone", u->path);
    return UV_EEXIST;
  }
  live = unix_probe(u->path);
  if (live < 0)
    return uv_translate_sys_error(-live);
  if (live) {
    vm_log_error(who, "%s: another process accepts on this socket", u->path);
    return UV_EADDRINUSE;
  }
  if (unlink(u->path) < 0 && errno != ENOENT)
    return uv_translate_sys_error(errno);
  vm_log_info(who, "replaced the stale socket %s", u->path);
  return 0;
}

static int unix_open(struct vm_sockep *u, union vm_sock_handle *server, uv_connection_cb cb) {
  int r = unix_clear_path(u);

  if (r == 0)
    r = uv_pipe_bind(&server->pipe, u->path);
  if (r < 0)
    return r; /* nothing of ours at the path */
  if (chmod(u->path, 0600) < 0)
    r = uv_translate_sys_error(errno);
  if (r == 0)
    r = uv_listen(&server->stream, UNIX_BACKLOG, cb);
  if (r < 0)
    unlink(u->path);
  return r;
}

static void unix_closed(struct vm_sockep *u) {
  if (unlink(u->path) < 0 && errno != ENOENT)
    vm_log_warn(u->name ? u->name : "unix", "cannot remove %s: %s", u->path, strerror(errno));
}

static const struct vm_sockep_ops unix_ops = {
    .kind = "unix",
    .init = unix_init,
    .open = unix_open,
    .closed = unix_closed,
    .peer = unix_peer,
};

int vm_unix_listen(struct vm_sockep *u, uv_loop_t *loop, const char *name, const char *path,
                   vm_input_cb on_input, vm_sockep_presence_cb on_presence, void *data) {
  vm_sockep_init(u, &unix_ops, name, on_input, on_presence, data);
  u->path = path;
  if (!path || !*path || strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
    vm_log_error(name ? name : "unix", "invalid unix socket path");
    return -EINVAL;
  }
  snprintf(u->where, sizeof u->where, "%s", path);
  return vm_sockep_start(u, loop);
}
