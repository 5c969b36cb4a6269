/* tc_fwfile.c - the OTA image file of a tencent module on the libuv
 * threadpool (tc_fwfile.h): a small job runner (one uv_work_t, one job at a
 * time) with a double write buffer. */
#include "tc_fwfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#define FW_BUF (32 * 1024) /* each of the two write buffers */
#define MD5_CHUNK (64 * 1024)

enum fw_op { OP_BEGIN, OP_WRITE, OP_FLUSH, OP_READ, OP_CLOSE };

struct tc_fwfile {
  uv_loop_t *loop;
  uv_work_t work;
  char *path;
  int fd;           /* open from tc_fw_begin() to the flush; only jobs touch it */
  bool busy, orphan, abandoned;
  /* the job in flight */
  enum fw_op op;
  long long off, trunc;
  void *buf;
  size_t len;
  long long status;
  EVP_MD_CTX *md;
  tc_fw_cb cb; /* of begin, flush or read */
  void *data;
  /* the write pipeline */
  char *fill, *flight;
  char *rbuf; /* of the read in flight */
  size_t fill_len;
  long long pos; /* file offset of fill[0] */
  int werr;      /* first write error of this download */
  bool flush_wanted;
  long long flush_size;
  void (*room_cb)(void *data);
  void *room_data;
};

/* ---- jobs (threadpool) ---------------------------------------------------- */

static long long job_begin(struct tc_fwfile *f) {
  f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (f->fd < 0) return -errno;
  if (f->off == 0) return ftruncate(f->fd, 0) < 0 ? -errno : 0; /* the erase */
  char *b = malloc(MD5_CHUNK);
  if (!b) return -ENOMEM;
  long long done = 0, rc = 0;
  while (done < f->off && rc == 0) {
    size_t want = f->off - done < MD5_CHUNK ? (size_t)(f->off - done) : MD5_CHUNK;
    ssize_t n = pread(f->fd, b, want, done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) rc = n < 0 ? -errno : -EIO; /* the file holds fewer bytes */
    else if (EVP_DigestUpdate(f->md, b, (size_t)n) != 1) rc = -EIO;
    else done += n;
  }
  free(b);
  return rc;
}

static long long job_write(struct tc_fwfile *f) {
  size_t done = 0;
  while (done < f->len) {
    ssize_t n = pwrite(f->fd, (char *)f->buf + done, f->len - done, f->off + (long long)done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -errno;
    done += (size_t)n;
  }
  return 0;
}

static long long job_flush(struct tc_fwfile *f) {
  long long rc = 0;
  if (f->trunc >= 0 && ftruncate(f->fd, f->trunc) < 0) rc = -errno;
  if (fsync(f->fd) < 0 && rc == 0) rc = -errno;
  close(f->fd);
  f->fd = -1;
  return rc;
}

static long long job_read(struct tc_fwfile *f) {
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  ssize_t n;
  do n = pread(fd, f->buf, f->len, f->off);
  while (n < 0 && errno == EINTR);
  long long rc = n < 0 ? -errno : n;
  close(fd);
  return rc;
}

static void work_cb(uv_work_t *w) {
  struct tc_fwfile *f = w->data;
  switch (f->op) {
  case OP_BEGIN: f->status = job_begin(f); break;
  case OP_WRITE: f->status = job_write(f); break;
  case OP_FLUSH: f->status = job_flush(f); break;
  case OP_READ: f->status = job_read(f); break;
  case OP_CLOSE:
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    f->status = 0;
    break;
  }
}

/* ---- the loop side -------------------------------------------------------- */

static void buffers_free(struct tc_fwfile *f) {
  free(f->fill);
  free(f->flight);
  free(f->rbuf);
  f->fill = f->flight = f->rbuf = NULL;
  f->fill_len = 0;
}

static void free_now(struct tc_fwfile *f) {
  if (f->fd >= 0) close(f->fd); /* only when a job was abandoned mid-download */
  buffers_free(f);
  free(f->path);
  free(f);
}

static void after_work(uv_work_t *w, int status);

static void submit(struct tc_fwfile *f, enum fw_op op) {
  f->op = op;
  f->busy = true;
  f->work.data = f;
  if (uv_queue_work(f->loop, &f->work, work_cb, after_work) != 0) {
    work_cb(&f->work); /* cannot happen with a live loop; keep the state consistent */
    after_work(&f->work, 0);
  }
}

/* Starts the next write, or the flush once everything is written. */
static void kick(struct tc_fwfile *f) {
  if (f->busy || f->fd < 0) return;
  if (f->fill_len) {
    char *t = f->flight;
    f->flight = f->fill;
    f->fill = t;
    f->buf = f->flight;
    f->len = f->fill_len;
    f->off = f->pos;
    f->pos += (long long)f->fill_len;
    f->fill_len = 0;
    submit(f, OP_WRITE);
  } else if (f->flush_wanted) {
    f->flush_wanted = false;
    f->trunc = f->flush_size;
    submit(f, OP_FLUSH);
  }
}

static void after_work(uv_work_t *w, int status) {
  struct tc_fwfile *f = w->data;
  (void)status;
  f->busy = false;
  if (f->orphan) {
    free_now(f);
    return;
  }
  if (f->abandoned) {
    f->abandoned = false;
    if (f->fd >= 0) submit(f, OP_CLOSE);
    else buffers_free(f);
    return;
  }
  tc_fw_cb cb = f->cb;
  void *data = f->data;
  long long st = f->status;
  switch (f->op) {
  case OP_WRITE:
    if (st < 0 && !f->werr) f->werr = (int)st;
    kick(f);
    if (f->room_cb) {
      void (*room)(void *) = f->room_cb;
      f->room_cb = NULL;
      room(f->room_data);
    }
    return;
  case OP_FLUSH:
    buffers_free(f);
    if (st == 0 && f->werr) st = f->werr;
    break;
  case OP_BEGIN:
    if (st < 0 && f->fd >= 0) {
      f->cb = NULL;
      submit(f, OP_CLOSE);
      if (cb) cb(data, st);
      return;
    }
    break;
  case OP_CLOSE: buffers_free(f); break;
  case OP_READ:
    f->cb = NULL;
    if (cb) cb(data, st);
    free(f->rbuf);
    f->rbuf = NULL;
    return;
  }
  f->cb = NULL;
  if (cb && f->op != OP_CLOSE) cb(data, st);
}

struct tc_fwfile *tc_fw_new(uv_loop_t *loop, const char *path) {
  struct tc_fwfile *f = calloc(1, sizeof *f);
  if (!f || !(f->path = strdup(path))) {
    free(f);
    return NULL;
  }
  f->loop = loop;
  f->fd = -1;
  return f;
}

int tc_fw_busy(const struct tc_fwfile *f) { return f->busy || f->fd >= 0; }

int tc_fw_begin(struct tc_fwfile *f, long long offset, struct evp_md_ctx_st *md, tc_fw_cb cb,
                void *data) {
  if (f->busy || f->fd >= 0) return -EBUSY;
  if (!f->fill) f->fill = malloc(FW_BUF);
  if (!f->flight) f->flight = malloc(FW_BUF);
  if (!f->fill || !f->flight) {
    buffers_free(f);
    return -ENOMEM;
  }
  f->fill_len = 0;
  f->pos = offset;
  f->werr = 0;
  f->abandoned = false;
  f->flush_wanted = false;
  f->room_cb = NULL;
  f->off = offset;
  f->md = md;
  f->cb = cb;
  f->data = data;
  submit(f, OP_BEGIN);
  return 0;
}

int tc_fw_write(struct tc_fwfile *f, const void *buf, size_t n) {
  if (f->werr) return f->werr;
  if (!f->fill || f->flush_wanted) return -EINVAL;
  if (n > FW_BUF - f->fill_len) return -EAGAIN;
  memcpy(f->fill + f->fill_len, buf, n);
  f->fill_len += n;
  if (f->fill_len >= FW_BUF / 2) kick(f); /* small writes gather while one is in flight */
  return 0;
}

void tc_fw_on_room(struct tc_fwfile *f, void (*room_cb)(void *data), void *data) {
  f->room_cb = room_cb;
  f->room_data = data;
  kick(f);
}

void tc_fw_seek(struct tc_fwfile *f, long long pos) {
  if (!f->fill_len) f->pos = pos;
}

int tc_fw_flush(struct tc_fwfile *f, long long size, tc_fw_cb cb, void *data) {
  if (f->fd < 0 && !f->busy) return -EINVAL;
  f->flush_wanted = true;
  f->flush_size = size;
  f->cb = cb;
  f->data = data;
  f->room_cb = NULL;
  kick(f);
  return 0;
}

void tc_fw_abandon(struct tc_fwfile *f) {
  f->fill_len = 0;
  f->flush_wanted = false;
  f->room_cb = NULL;
  f->cb = NULL;
  if (f->busy) f->abandoned = true; /* after_work closes it */
  else if (f->fd >= 0) submit(f, OP_CLOSE);
}

int tc_fw_read(struct tc_fwfile *f, long long off, size_t len, tc_fw_cb cb, void *data) {
  if (f->busy || f->fd >= 0) return -EBUSY;
  if (!(f->rbuf = malloc(len ? len : 1))) return -ENOMEM;
  f->off = off;
  f->buf = f->rbuf;
  f->len = len;
  f->cb = cb;
  f->data = data;
  submit(f, OP_READ);
  return 0;
}

const void *tc_fw_read_data(const struct tc_fwfile *f) { return f->rbuf; }

void tc_fw_free(struct tc_fwfile *f) {
  if (!f) return;
  if (f->busy) f->orphan = true;
  else free_now(f);
}
