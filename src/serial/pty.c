/* pty.c - PTY serial endpoint: the "UART" the MCU firmware opens.
 *
 * Linux PTY facts this file is built around (see the platform reference, 2e):
 * - a fresh slave echoes and translates CR/NL, so raw mode is set at once,
 *   through the master (termios calls on a master act on the slave);
 * - with no slave fd open the master polls POLLHUP and reads EIO, so we hold
 *   our own slave fd for the PTY's whole life; client opens and closes then
 *   cause no event on the master, and are seen with inotify on /dev/pts/N;
 * - uv_tty_t on a master falls back to blocking writes, so the master is a
 *   non-blocking fd driven by one uv_poll_t with our own read()/write().
 * The stable path is a symlink replaced atomically (temp link + rename) and
 * removed on close only while it still points to our slave. */
#include "vmodule/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <termios.h>
#include <unistd.h>

#include "vmodule/log.h"
#include "vmodule/txq.h"

#define PTY_READ_CHUNK 4096
/* Bytes read per readable event before yielding to the rest of the loop; the
 * poll is level-triggered, so whatever is left is read on the next turn. */
#define PTY_READ_BUDGET (64 * 1024)
#define PTY_CLIENT_EVENTS (IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)

static const char *pty_who(const struct vm_pty *p) { return p->name ? p->name : "pty"; }

/* The path clients use: the symlink if there is one. */
static const char *pty_path(const struct vm_pty *p) { return p->link ? p->link : p->slave_path; }

/* ---- termios ---------------------------------------------------------- */

static int pty_make_raw(int master) {
  struct termios t;

  if (tcgetattr(master, &t) < 0)
    return -errno;
  cfmakeraw(&t);
  return tcsetattr(master, TCSANOW, &t) < 0 ? -errno : 0;
}

/* A client may have left the line cooked (echo, ICANON, ICRNL, OPOST...), so
 * every client open makes it raw again. What a client sets as serial-port
 * parameters is kept: speed, character size and parity (c_cflag and
 * INPCK/ISTRIP), read timing (VMIN/VTIME) and software flow control
 * (IXON/IXOFF/IXANY); pyserial, for one, sets these on purpose right after its
 * open. This runs whenever the inotify event arrives, before or after the
 * client's own tcsetattr, so it only clears what a serial client has no reason
 * to set; the outcome then does not depend on who came last. Nothing is
 * written when the line is already raw. */
static void pty_reapply_raw(struct vm_pty *p) {
  struct termios cur, raw;

  if (tcgetattr(p->master, &cur) < 0) {
    vm_log_warn(pty_who(p), "tcgetattr on %s: %s", pty_path(p), strerror(errno));
    return;
  }
  raw = cur;
  cfmakeraw(&raw);
  raw.c_cflag = cur.c_cflag;
  raw.c_iflag |= cur.c_iflag & (IXON | IXOFF | IXANY | INPCK | ISTRIP);
  raw.c_cc[VMIN] = cur.c_cc[VMIN];
  raw.c_cc[VTIME] = cur.c_cc[VTIME];
  if (raw.c_iflag == cur.c_iflag && raw.c_oflag == cur.c_oflag && raw.c_lflag == cur.c_lflag)
    return;
  if (tcsetattr(p->master, TCSANOW, &raw) < 0)
    vm_log_warn(pty_who(p), "cannot make %s raw again: %s", pty_path(p), strerror(errno));
  else
    vm_log_debug(pty_who(p), "%s was left cooked; raw mode applied again", pty_path(p));
}

/* ---- master poll: input and writability -------------------------------- */

static void pty_on_master(uv_poll_t *handle, int status, int events);

/* Changes the master's poll mask; 0 stops polling. */
static void pty_set_events(struct vm_pty *p, int events) {
  int r;

  if (p->master < 0 || events == p->poll_events)
    return;
  r = events ? uv_poll_start(&p->poll, events, pty_on_master) : uv_poll_stop(&p->poll);
  if (r < 0)
    vm_log_error(pty_who(p), "poll on %s: %s", pty_path(p), uv_strerror(r));
  p->poll_events = events;
}

/* Reads until EAGAIN (or the budget) and hands each chunk to on_input. */
static void pty_read(struct vm_pty *p) {
  char buf[PTY_READ_CHUNK];
  size_t budget = PTY_READ_BUDGET;

  while (budget > 0) {
    ssize_t n = read(p->master, buf, sizeof buf);

    if (n > 0) {
      budget = (size_t)n < budget ? budget - (size_t)n : 0;
      if (p->on_input)
        p->on_input(p->data, buf, (size_t)n);
      if (p->master < 0)
        return; /* on_input closed us */
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    /* EOF or EIO: cannot happen while we hold the slave; stop reading rather
     * than spin on a master that stays readable. */
    vm_log_error(pty_who(p), "read from %s master: %s; input stopped", pty_path(p),
                 n == 0 ? "end of file" : strerror(errno));
    pty_set_events(p, p->poll_events & ~UV_READABLE);
    return;
  }
}

static void pty_on_master(uv_poll_t *handle, int status, int events) {
  struct vm_pty *p = handle->data;

  if (status < 0) {
    vm_log_error(pty_who(p), "poll on %s master: %s", pty_path(p), uv_strerror(status));
    pty_set_events(p, 0);
    return;
  }
  if (events & UV_READABLE) {
    pty_read(p);
    if (p->master < 0)
      return;
  }
  if ((events & UV_WRITABLE) && (p->poll_events & UV_WRITABLE)) {
    pty_set_events(p, p->poll_events & ~UV_WRITABLE);
    if (p->sink.txq && p->sink.txq->sink == &p->sink)
      vm_txq_on_writable(p->sink.txq);
  }
}

/* ---- sink -------------------------------------------------------------- */

static ssize_t pty_sink_write(struct vm_sink *sink, const void *buf, size_t len) {
  struct vm_pty *p = (struct vm_pty *)sink;

  if (p->master < 0)
    return -EBADF;
  for (;;) {
    ssize_t n = write(p->master, buf, len);

    if (n >= 0)
      return n;
    if (errno != EINTR)
      return -errno;
  }
}

static void pty_sink_want_writable(struct vm_sink *sink, int on) {
  struct vm_pty *p = (struct vm_pty *)sink;

  if (p->master < 0)
    return; /* closed: nothing will ever become writable */
  pty_set_events(p, on ? p->poll_events | UV_WRITABLE : p->poll_events & ~UV_WRITABLE);
}

static const struct vm_sink_ops pty_sink_ops = {
    .write = pty_sink_write,
    .want_writable = pty_sink_want_writable,
};

/* ---- client presence (inotify on /dev/pts/N) --------------------------- */

static void pty_on_client_event(struct vm_pty *p, uint32_t mask) {
  if (mask & IN_OPEN) {
    p->clients++;
    vm_log_info(pty_who(p), "client opened %s", pty_path(p));
    pty_reapply_raw(p);
  }
  if (mask & (IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) {
    if (p->clients > 0)
      p->clients--;
    vm_log_info(pty_who(p), "client closed %s", pty_path(p));
  }
  if ((mask & (IN_OPEN | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE)) && p->on_presence)
    p->on_presence(p->data, p->clients);
  if (mask & IN_Q_OVERFLOW)
    vm_log_warn(pty_who(p), "inotify queue overflow: client count of %s may be wrong", pty_path(p));
  if (mask & IN_IGNORED)
    vm_log_warn(pty_who(p), "%s is no longer watched: client presence unknown", p->slave_path);
}

static void pty_on_inotify(uv_poll_t *handle, int status, int events) {
  struct vm_pty *p = handle->data;
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

  (void)events;
  if (status < 0) {
    vm_log_error(pty_who(p), "poll on inotify: %s", uv_strerror(status));
    uv_poll_stop(handle);
    return;
  }
  for (;;) {
    ssize_t n = read(p->inotify_fd, buf, sizeof buf);
    const char *at = buf;

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        vm_log_error(pty_who(p), "read inotify: %s", n == 0 ? "end of file" : strerror(errno));
        uv_poll_stop(handle);
      }
      return;
    }
    while (at < buf + n) {
      const struct inotify_event *ev = (const struct inotify_event *)at;

      pty_on_client_event(p, ev->mask);
      at += sizeof *ev + ev->len;
    }
  }
}

/* ---- symlink ----------------------------------------------------------- */

static void pty_log_link_error(const struct vm_pty *p, const char *what, int err) {
  if (err == ENOENT) {
    char dir[PATH_MAX];
    const char *slash = strrchr(p->link, '/');
    size_t len = slash ? (size_t)(slash - p->link) : 1;

    if (len >= sizeof dir)
      len = sizeof dir - 1;
    memcpy(dir, slash ? p->link : ".", len);
    dir[len] = '\0';
    vm_log_error(pty_who(p), "cannot create symlink %s: directory %s does not exist", p->link,
                 len ? dir : "/");
    return;
  }
  vm_log_error(pty_who(p), "cannot create symlink %s (%s): %s", p->link, what, strerror(err));
}

/* symlink() a temp name next to the link, then rename() it over the link: a
 * client never sees the path missing or pointing half-way. */
static int pty_link_create(struct vm_pty *p) {
  char tmp[PATH_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p->link, (long)getpid());

  if (n < 0 || (size_t)n >= sizeof tmp) {
    vm_log_error(pty_who(p), "symlink path too long: %s", p->link);
    return -ENAMETOOLONG;
  }
  unlink(tmp); /* left over by a crashed process with the same pid */
  if (symlink(p->slave_path, tmp) < 0) {
    int err = errno;

    pty_log_link_error(p, "symlink", err);
    return -err;
  }
  if (rename(tmp, p->link) < 0) {
    int err = errno;

    unlink(tmp);
    pty_log_link_error(p, "rename", err);
    return -err;
  }
  return 0;
}

/* Removes the link unless someone has since pointed it elsewhere. */
static void pty_link_remove(const struct vm_pty *p) {
  char target[sizeof p->slave_path];
  ssize_t n;

  if (!p->link)
    return;
  n = readlink(p->link, target, sizeof target - 1);
  if (n < 0)
    return;
  target[n] = '\0';
  if (strcmp(target, p->slave_path) != 0) {
    vm_log_info(pty_who(p), "%s now points to %s; left in place", p->link, target);
    return;
  }
  if (unlink(p->link) < 0)
    vm_log_warn(pty_who(p), "cannot remove %s: %s", p->link, strerror(errno));
}

/* ---- open / close ------------------------------------------------------ */

/* Master, raw mode, held slave, inotify watch. Logs and returns -errno. */
static int pty_open_fds(struct vm_pty *p) {
  const char *step = "posix_openpt";
  int r;

  p->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p->master < 0)
    goto fail;
  step = "grantpt";
  if (grantpt(p->master) < 0)
    goto fail;
  step = "unlockpt";
  if (unlockpt(p->master) < 0)
    goto fail;
  step = "ptsname_r";
  if ((r = ptsname_r(p->master, p->slave_path, sizeof p->slave_path)) != 0) {
    errno = r;
    goto fail;
  }
  step = "raw mode";
  if ((r = pty_make_raw(p->master)) < 0) {
    errno = -r;
    goto fail;
  }
  step = "open slave";
  p->slave = open(p->slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p->slave < 0)
    goto fail;
  step = "O_NONBLOCK";
  if ((r = fcntl(p->master, F_GETFL)) < 0 || fcntl(p->master, F_SETFL, r | O_NONBLOCK) < 0)
    goto fail;
  /* The watch comes after our own slave open, so that open is not counted. */
  step = "inotify";
  p->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (p->inotify_fd < 0 || inotify_add_watch(p->inotify_fd, p->slave_path, PTY_CLIENT_EVENTS) < 0)
    goto fail;
  return 0;
fail:
  r = -errno;
  vm_log_error(pty_who(p), "PTY %s: %s", step, strerror(errno));
  return r;
}

static void pty_close_fds(struct vm_pty *p) {
  if (p->inotify_fd >= 0)
    close(p->inotify_fd);
  if (p->slave >= 0)
    close(p->slave);
  if (p->master >= 0)
    close(p->master);
  p->inotify_fd = p->slave = p->master = -1;
}

/* If the second init fails, the first handle is closed and the struct must
 * live until the loop has run that close (uv_poll_init on a PTY or inotify fd
 * does not fail in practice). */
static int pty_start_polls(struct vm_pty *p) {
  int r = uv_poll_init(p->loop, &p->poll, p->master);

  if (r < 0)
    return r;
  p->poll.data = p;
  r = uv_poll_init(p->loop, &p->ino_poll, p->inotify_fd);
  if (r < 0) {
    uv_close((uv_handle_t *)&p->poll, NULL);
    return r;
  }
  p->ino_poll.data = p;
  r = uv_poll_start(&p->ino_poll, UV_READABLE, pty_on_inotify);
  if (r == 0)
    r = uv_poll_start(&p->poll, UV_READABLE, pty_on_master);
  if (r < 0) {
    uv_close((uv_handle_t *)&p->poll, NULL);
    uv_close((uv_handle_t *)&p->ino_poll, NULL);
    return r;
  }
  p->poll_events = UV_READABLE;
  return 0;
}

int vm_pty_open(struct vm_pty *p, uv_loop_t *loop, const char *name, const char *link,
                vm_input_cb on_input, void *data) {
  int r;

  memset(p, 0, sizeof *p);
  p->sink.ops = &pty_sink_ops;
  p->loop = loop;
  p->name = name;
  p->on_input = on_input;
  p->data = data;
  p->master = p->slave = p->inotify_fd = -1;
  if (link && *link && !(p->link = strdup(link)))
    return -ENOMEM;
  r = pty_open_fds(p);
  if (r == 0 && p->link)
    r = pty_link_create(p);
  if (r == 0) {
    r = pty_start_polls(p);
    if (r < 0) {
      vm_log_error(pty_who(p), "PTY poll: %s", uv_strerror(r));
      pty_link_remove(p);
    }
  }
  if (r < 0) {
    pty_close_fds(p);
    free(p->link);
    p->link = NULL;
    return r;
  }
  vm_log_info(pty_who(p), "pty %s linked at %s", p->slave_path, pty_path(p));
  return 0;
}

void vm_pty_close(struct vm_pty *p) {
  if (p->master < 0)
    return; /* not open */
  uv_close((uv_handle_t *)&p->poll, NULL);
  uv_close((uv_handle_t *)&p->ino_poll, NULL);
  p->poll_events = 0;
  pty_link_remove(p);
  vm_log_info(pty_who(p), "serial port %s closed", pty_path(p));
  pty_close_fds(p);
  free(p->link);
  p->link = NULL;
  p->clients = 0;
}
