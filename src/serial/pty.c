/* pty.c - PTY serial endpoint: the "UART" the MCU firmware opens.
 *
 * Linux PTY facts this file is built around (see the platform reference, 2e):
 * - a fresh slave echoes and translates CR/NL, so raw mode is set at once,
 *   through the master (termios calls on a master act on the slave);
 * - with no slave fd open the master polls POLLHUP and reads EIO, so we hold
 *   our own slave fd for the PTY's whole life; client opens and closes then
 *   cause no event on the master, and are seen with inotify on /dev/pts/N
 *   (one inotify instance for all PTYs of a loop, one watch each);
 * - uv_tty_t on a master falls back to blocking writes, so the master is a
 *   non-blocking fd driven by one uv_poll_t with our own read()/write().
 * The stable path is a symlink replaced atomically (temp link + rename) and
 * removed on close only while it still points to our slave.
 *
 * Unplug and plug (serial faults) replace the PTY under a live poll handle: a
 * uv_poll_t is bound to one fd number for life and cannot be initialised
 * again before its close callback has run, so the handle is only stopped
 * (which makes epoll forget the fd at once), the master's number is kept on
 * /dev/null while unplugged (dup3 over the master releases it, which hangs up
 * the slave), and plug moves the new master onto that same number. */
#include "vmodule/pty.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
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
/* inotify reads (of up to 256 events each) per readable event, as above. */
#define PTY_WATCH_READ_BUDGET 64

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
  if ((mask & PTY_CLIENT_EVENTS) && p->on_presence)
    p->on_presence(p->data, p->clients);
}

/* ---- the loop's inotify instance, shared by its PTYs ------------------- */

/* One inotify instance serves every PTY of a loop, with one watch per
 * /dev/pts/N, because instances are scarce and slow to free:
 * fs.inotify.max_user_instances (128 by default) counts all processes of the
 * user together, so an instance per PTY stopped the daemon near 120 modules,
 * and each close() of an instance waits for an SRCU grace period (7-16 ms),
 * which made SIGTERM with 2000 modules take over 10 s. Removing a watch
 * (inotify_rm_watch) defers that wait to a kernel worker.
 *
 * Events are dispatched by watch descriptor through an open-addressing hash
 * table (linear probing, at most half full, backward-shift deletion): O(1) per
 * event with thousands of PTYs. A watch is removed from the table before it is
 * removed from the kernel, so its events still queued (and the IN_IGNORED the
 * removal itself queues) find no PTY and are dropped: a /dev/pts/N number
 * reused by a later PTY is a new inode with a new watch descriptor. */
struct pty_slot {
  int wd; /* 0: empty (the kernel numbers watches from 1) */
  struct vm_pty *pty;
};

struct vm_pty_watch {
  struct vm_pty_watch *next; /* in pty_watches */
  uv_loop_t *loop;
  int fd;
  uv_poll_t poll;
  unsigned users;         /* open PTYs holding this instance */
  struct pty_slot *slots; /* cap slots, cap a power of two (2^bits) */
  unsigned cap, bits, used;
};

/* The loops that have open PTYs, each with its instance: the file's only
 * mutable static state. It is keyed by loop so that several loops in one
 * process (the unit tests make one per test) never share an instance or see
 * each other's events. Not locked: a loop and its handles belong to one
 * thread, and the daemon has one; PTYs on loops of different threads would
 * need a lock here. */
static struct vm_pty_watch *pty_watches;

static unsigned pty_slot_home(const struct vm_pty_watch *w, int wd) {
  return (unsigned)(((uint32_t)wd * 2654435769u) >> (32 - w->bits)); /* Fibonacci hashing */
}

/* The slot holding wd, or NULL. */
static struct pty_slot *pty_watch_find(struct vm_pty_watch *w, int wd) {
  unsigned i;

  if (!w->cap || wd <= 0)
    return NULL;
  for (i = pty_slot_home(w, wd); w->slots[i].wd; i = (i + 1) & (w->cap - 1))
    if (w->slots[i].wd == wd)
      return &w->slots[i];
  return NULL;
}

static void pty_watch_place(struct vm_pty_watch *w, int wd, struct vm_pty *p) {
  unsigned i = pty_slot_home(w, wd);

  while (w->slots[i].wd)
    i = (i + 1) & (w->cap - 1);
  w->slots[i].wd = wd;
  w->slots[i].pty = p;
  w->used++;
}

/* Doubles the table (64 slots at first) and places every entry again. */
static int pty_watch_grow(struct vm_pty_watch *w) {
  struct pty_slot *old = w->slots;
  unsigned old_cap = w->cap, bits = w->cap ? w->bits + 1 : 6;
  struct pty_slot *slots = calloc((size_t)1 << bits, sizeof *slots);

  if (!slots)
    return -ENOMEM;
  w->slots = slots;
  w->cap = 1u << bits;
  w->bits = bits;
  w->used = 0;
  for (unsigned i = 0; i < old_cap; i++)
    if (old[i].wd)
      pty_watch_place(w, old[i].wd, old[i].pty);
  free(old);
  return 0;
}

static int pty_watch_insert(struct vm_pty_watch *w, int wd, struct vm_pty *p) {
  int r;

  if ((w->used + 1) * 2 > w->cap && (r = pty_watch_grow(w)) < 0)
    return r;
  pty_watch_place(w, wd, p);
  return 0;
}

/* Empties the slot and moves later entries of its probe run back into the
 * hole, so that lookups never need tombstones. */
static void pty_watch_erase(struct vm_pty_watch *w, struct pty_slot *s) {
  unsigned mask = w->cap - 1, hole = (unsigned)(s - w->slots), i = hole;

  for (;;) {
    i = (i + 1) & mask;
    if (!w->slots[i].wd)
      break;
    /* an entry may fill the hole unless its home lies cyclically in (hole, i] */
    if (((i - pty_slot_home(w, w->slots[i].wd)) & mask) >= ((i - hole) & mask)) {
      w->slots[hole] = w->slots[i];
      hole = i;
    }
  }
  w->slots[hole].wd = 0;
  w->slots[hole].pty = NULL;
  w->used--;
}

/* The kernel dropped events (its queue holds fs.inotify.max_queued_events):
 * opens and closes of any PTY may be lost, so every count may be off. Say so
 * once for all of them, and make every line raw again, as each lost open
 * would have. The counts are kept: nothing tells how many clients really hold
 * a port open, and a close seen later is still clamped at zero. */
static void pty_watch_overflowed(struct vm_pty_watch *w) {
  vm_log_warn(NULL, "inotify queue overflow: client opens and closes were lost; the client "
              "counts of %u serial ports may be wrong", w->used);
  for (unsigned i = 0; i < w->cap; i++)
    if (w->slots[i].wd)
      pty_reapply_raw(w->slots[i].pty);
}

/* The kernel dropped the watch by itself (the inode went away or its file
 * system was unmounted): the PTY stays usable but its clients go unseen. */
static void pty_watch_lost(struct vm_pty_watch *w, struct pty_slot *s) {
  struct vm_pty *p = s->pty;

  pty_watch_erase(w, s);
  p->wd = -1;
  vm_log_warn(pty_who(p), "%s is no longer watched: client presence unknown", p->slave_path);
}

/* The PTY is looked up again for every event: a callback may close PTYs
 * (whose remaining events then find nothing) or open new ones. */
static void pty_watch_dispatch(struct vm_pty_watch *w, const struct inotify_event *ev) {
  struct pty_slot *s;

  if (ev->mask & IN_Q_OVERFLOW) {
    pty_watch_overflowed(w);
    return;
  }
  if (!(s = pty_watch_find(w, ev->wd)))
    return; /* a watch removed since: its PTY closed */
  if (ev->mask & IN_IGNORED)
    pty_watch_lost(w, s);
  else
    pty_on_client_event(s->pty, ev->mask);
}

static void pty_watch_on_readable(uv_poll_t *handle, int status, int events) {
  struct vm_pty_watch *w = handle->data;
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

  (void)events;
  if (status < 0) {
    vm_log_error(NULL, "poll on inotify: %s; client presence unknown", uv_strerror(status));
    uv_poll_stop(handle);
    return;
  }
  /* Until EAGAIN or the budget; the poll is level-triggered. The last PTY
   * closing from a callback closes this handle: stop reading then. */
  for (int reads = 0; reads < PTY_WATCH_READ_BUDGET && !uv_is_closing((uv_handle_t *)handle);) {
    ssize_t n = read(w->fd, buf, sizeof buf);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        vm_log_error(NULL, "read inotify: %s; client presence unknown",
                     n == 0 ? "end of file" : strerror(errno));
        uv_poll_stop(handle);
      }
      return;
    }
    reads++;
    for (const char *at = buf; at < buf + n && !uv_is_closing((uv_handle_t *)handle);) {
      const struct inotify_event *ev = (const struct inotify_event *)at;

      pty_watch_dispatch(w, ev);
      at += sizeof *ev + ev->len;
    }
  }
}

static void pty_watch_on_closed(uv_handle_t *handle) {
  struct vm_pty_watch *w = handle->data;

  close(w->fd); /* no watch is left: the last PTY removed its own */
  free(w->slots);
  free(w);
}

/* A new instance for the loop, polled and listed. Returns 0 or -errno. */
static int pty_watch_create(uv_loop_t *loop, struct vm_pty_watch **out) {
  struct vm_pty_watch *w = calloc(1, sizeof *w);
  int r;

  if (!w)
    return -ENOMEM;
  w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (w->fd < 0) {
    r = -errno;
    free(w);
    return r;
  }
  if ((r = uv_poll_init(loop, &w->poll, w->fd)) < 0) {
    close(w->fd);
    free(w);
    return r;
  }
  w->poll.data = w;
  if ((r = uv_poll_start(&w->poll, UV_READABLE, pty_watch_on_readable)) < 0) {
    uv_close((uv_handle_t *)&w->poll, pty_watch_on_closed);
    return r;
  }
  w->loop = loop;
  w->next = pty_watches;
  pty_watches = w;
  *out = w;
  return 0;
}

/* Watches p's slave with the loop's instance, created on first use. On
 * failure p may still hold the instance: pty_watch_release() drops it. */
static int pty_watch_add(struct vm_pty *p) {
  struct vm_pty_watch *w = pty_watches;
  int r, wd;

  while (w && w->loop != p->loop)
    w = w->next;
  if (!w && (r = pty_watch_create(p->loop, &w)) < 0)
    return r;
  w->users++;
  p->watch = w;
  /* IN_MASK_CREATE: fail rather than share a watch (and its descriptor) with
   * another PTY on the same inode, which would hand it that PTY's events. */
  wd = inotify_add_watch(w->fd, p->slave_path, PTY_CLIENT_EVENTS | IN_MASK_CREATE);
  if (wd < 0)
    return -errno;
  if ((r = pty_watch_insert(w, wd, p)) < 0) {
    inotify_rm_watch(w->fd, wd);
    return r;
  }
  p->wd = wd;
  return 0;
}

/* Removes p's watch, and closes the instance with the loop's last PTY. */
static void pty_watch_release(struct vm_pty *p) {
  struct vm_pty_watch *w = p->watch, **pp;
  struct pty_slot *s;

  if (!w)
    return;
  if (p->wd > 0) {
    if ((s = pty_watch_find(w, p->wd)))
      pty_watch_erase(w, s);
    inotify_rm_watch(w->fd, p->wd); /* EINVAL if the kernel dropped it first: fine */
  }
  p->wd = -1;
  p->watch = NULL;
  if (--w->users > 0)
    return;
  for (pp = &pty_watches; *pp != w; pp = &(*pp)->next) {
  }
  *pp = w->next;
  uv_close((uv_handle_t *)&w->poll, pty_watch_on_closed);
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
  if ((r = pty_watch_add(p)) < 0) {
    errno = -r;
    goto fail;
  }
  return 0;
fail:
  r = -errno;
  vm_log_error(pty_who(p), "PTY %s: %s", step, strerror(errno));
  return r;
}

/* The watch goes first, so that our own slave close is not seen either. */
static void pty_close_fds(struct vm_pty *p) {
  pty_watch_release(p);
  if (p->slave >= 0)
    close(p->slave);
  if (p->master >= 0)
    close(p->master);
  p->slave = p->master = -1;
}

static int pty_start_poll(struct vm_pty *p) {
  int r = uv_poll_init(p->loop, &p->poll, p->master);

  if (r < 0)
    return r;
  p->poll.data = p;
  r = uv_poll_start(&p->poll, UV_READABLE, pty_on_master);
  if (r < 0) {
    /* the struct must then live until the loop has run this close (uv_poll_start
     * on a fresh handle does not fail in practice) */
    uv_close((uv_handle_t *)&p->poll, NULL);
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
  p->master = p->slave = p->wd = p->parked = -1;
  if (link && *link && !(p->link = strdup(link)))
    return -ENOMEM;
  r = pty_open_fds(p);
  if (r == 0 && p->link)
    r = pty_link_create(p);
  if (r == 0) {
    r = pty_start_poll(p);
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
  if (!p->loop || (p->master < 0 && p->parked < 0))
    return; /* never opened, or not open */
  uv_close((uv_handle_t *)&p->poll, NULL);
  p->poll_events = 0;
  if (p->parked >= 0) {
    close(p->parked); /* after uv_close: the handle's fd number */
    p->parked = -1;
  } else {
    pty_link_remove(p);
    vm_log_info(pty_who(p), "serial port %s closed", pty_path(p));
  }
  pty_close_fds(p);
  free(p->link);
  p->link = NULL;
  p->clients = 0;
}

/* ---- unplug / plug ----------------------------------------------------- */

int vm_pty_unplug(struct vm_pty *p) {
  int hold;

  if (p->parked >= 0)
    return -EALREADY;
  if (p->master < 0)
    return -EBADF;
  hold = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (hold < 0) {
    int err = errno;

    vm_log_error(pty_who(p), "cannot unplug %s: /dev/null: %s", pty_path(p), strerror(err));
    return -err;
  }
  pty_set_events(p, 0); /* uv_poll_stop: epoll forgets the master before it goes */
  pty_link_remove(p);
  pty_watch_release(p); /* before our slave close, which it must not see */
  close(p->slave);
  p->slave = -1;
  /* Releases the master (the slave is hung up and /dev/pts/N removed) while
   * the number stays ours; dup3 does not fail on two open descriptors. */
  dup3(hold, p->master, O_CLOEXEC);
  close(hold);
  p->parked = p->master;
  p->master = -1;
  p->clients = 0;
  vm_log_info(pty_who(p), "serial port %s unplugged (%s hung up)", pty_path(p), p->slave_path);
  return 0;
}

/* Moves the new master onto the parked number, which the poll handle is bound to. */
static void pty_adopt_parked(struct vm_pty *p) {
  dup3(p->master, p->parked, O_CLOEXEC); /* closes the /dev/null placeholder */
  close(p->master);
  p->master = p->parked;
  p->parked = -1;
}

int vm_pty_plug(struct vm_pty *p) {
  int r;

  if (p->parked < 0)
    return -EALREADY;
  r = pty_open_fds(p);
  if (r == 0 && p->link)
    r = pty_link_create(p);
  if (r < 0) {
    pty_close_fds(p); /* the new fds only: the parked number stays */
    return r;
  }
  pty_adopt_parked(p);
  pty_set_events(p, UV_READABLE);
  vm_log_info(pty_who(p), "serial port plugged: pty %s linked at %s", p->slave_path, pty_path(p));
  return 0;
}
