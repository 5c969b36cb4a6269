/* store.c - the module's persistent "flash" (see store.h).
 *
 * A write is a chain of uv_fs requests on the threadpool: open temp ->
 * write -> fsync -> close -> rename over state.json -> open dir -> fsync dir
 * -> close dir. A kill -9 at any point leaves either the old or the new
 * document under the real name; a stale temp file is simply overwritten by
 * the next write. Commits that arrive during a write are coalesced: when the
 * write ends, one more write with the newest contents starts. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmodule/log.h"
#include "vmodule/store.h"

enum {
  ST_IDLE = 0,
  ST_OPEN,
  ST_WRITE,
  ST_FSYNC,
  ST_CLOSE,
  ST_RENAME,
  ST_DIR_OPEN,
  ST_DIR_FSYNC,
  ST_DIR_CLOSE,
};

static char *str_printf(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + (b ? strlen(b) : 0) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, a, b);
  return s;
}

static int mkdir_p(const char *path) {
  char *tmp = strdup(path);
  if (!tmp) return -ENOMEM;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
      int e = -errno;
      free(tmp);
      return e;
    }
    *p = '/';
  }
  int rc = (mkdir(tmp, 0700) < 0 && errno != EEXIST) ? -errno : 0;
  free(tmp);
  return rc;
}

static void store_load(struct vm_store *s) {
  FILE *f = fopen(s->path, "rb");
  if (!f) {
    if (errno != ENOENT) vm_log_warn(s->name, "store %s unreadable (%s): starting with empty flash",
                                     s->path, strerror(errno));
    return;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap ? cap * 2 : 8192;
      char *nb = realloc(buf, cap);
      if (!nb) break;
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
  }
  fclose(f);
  if (!buf) return;
  buf[len] = '\0';
  cJSON *doc = cJSON_ParseWithLength(buf, len);
  free(buf);
  if (!doc || !cJSON_IsObject(doc)) {
    vm_log_warn(s->name, "store %s is damaged: starting with empty flash", s->path);
    cJSON_Delete(doc);
    return;
  }
  cJSON_Delete(s->doc);
  s->doc = doc;
}

int vm_store_open(struct vm_store *s, uv_loop_t *loop, const char *state_dir, const char *module) {
  memset(s, 0, sizeof *s);
  s->loop = loop;
  s->name = module;
  s->fd = -1;
  s->doc = cJSON_CreateObject();
  s->dir = str_printf("%s/%s", state_dir, module);
  if (!s->doc || !s->dir) return -ENOMEM;
  s->path = str_printf("%s/%s", s->dir, "state.json");
  s->tmp = str_printf("%s/%s", s->dir, ".state.json.tmp");
  if (!s->path || !s->tmp) return -ENOMEM;
  int rc = mkdir_p(s->dir);
  if (rc < 0) {
    vm_log_error(module, "cannot create state directory %s: %s", s->dir, strerror(-rc));
    return rc;
  }
  store_load(s);
  return 0;
}

cJSON *vm_store_get(struct vm_store *s, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(s->doc, key);
}

void vm_store_put(struct vm_store *s, const char *key, cJSON *val) {
  if (val) {
    if (!cJSON_ReplaceItemInObjectCaseSensitive(s->doc, key, val))
      cJSON_AddItemToObject(s->doc, key, val);
  } else
    cJSON_DeleteItemFromObjectCaseSensitive(s->doc, key);
}

int vm_store_busy(const struct vm_store *s) { return s->step != ST_IDLE || s->dirty; }

static void store_step(uv_fs_t *req);
static void store_start(struct vm_store *s);

static void store_done(struct vm_store *s) {
  struct vm_store_waiter *w = s->inflight;
  int status = s->status;
  s->inflight = NULL;
  s->step = ST_IDLE;
  free(s->out);
  s->out = NULL;
  s->writes++;
  if (status < 0) vm_log_error(s->name, "store write failed: %s", uv_strerror(status));
  while (w) {
    struct vm_store_waiter *next = w->next;
    if (w->cb) w->cb(w->data, status);
    free(w);
    w = next;
  }
  if (s->dirty) store_start(s);
}

/* Moves to the next step; on error skips to closing what is open. */
static void store_next(struct vm_store *s, int result) {
  uv_fs_t *req = &s->req;
  int rc = 0;
  if (result < 0 && s->status == 0) s->status = result;
  switch (s->step) {
  case ST_OPEN:
    if (result < 0) return store_done(s);
    s->fd = result;
    s->step = ST_WRITE;
    {
      uv_buf_t b = uv_buf_init(s->out, (unsigned)s->out_len);
      rc = uv_fs_write(s->loop, req, s->fd, &b, 1, 0, store_step);
    }
    break;
  case ST_WRITE:
    if (result >= 0 && (size_t)result != s->out_len && s->status == 0) s->status = UV_EIO;
    s->step = ST_FSYNC;
    if (s->status == 0) {
      rc = uv_fs_fsync(s->loop, req, s->fd, store_step);
      break;
    }
    /* fall through: close without fsync */
    s->step = ST_CLOSE;
    rc = uv_fs_close(s->loop, req, s->fd, store_step);
    break;
  case ST_FSYNC:
    s->step = ST_CLOSE;
    rc = uv_fs_close(s->loop, req, s->fd, store_step);
    break;
  case ST_CLOSE:
    s->fd = -1;
    if (s->status < 0) return store_done(s);
    s->step = ST_RENAME;
    rc = uv_fs_rename(s->loop, req, s->tmp, s->path, store_step);
    break;
  case ST_RENAME:
    if (result < 0) return store_done(s);
    s->step = ST_DIR_OPEN;
    rc = uv_fs_open(s->loop, req, s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, store_step);
    break;
  case ST_DIR_OPEN:
    if (result < 0) return store_done(s);
    s->fd = result;
    s->step = ST_DIR_FSYNC;
    rc = uv_fs_fsync(s->loop, req, s->fd, store_step);
    break;
  case ST_DIR_FSYNC:
    s->step = ST_DIR_CLOSE;
    rc = uv_fs_close(s->loop, req, s->fd, store_step);
    break;
  case ST_DIR_CLOSE:
    s->fd = -1;
    return store_done(s);
  default:
    return;
  }
  if (rc < 0) {
    if (s->status == 0) s->status = rc;
    if (s->fd >= 0) close(s->fd); /* cannot even queue the request: give up synchronously */
    s->fd = -1;
    store_done(s);
  }
}

static void store_step(uv_fs_t *req) {
  struct vm_store *s = req->data;
  int result = (int)req->result;
  uv_fs_req_cleanup(req);
  store_next(s, result);
}

static void store_start(struct vm_store *s) {
  s->dirty = 0;
  s->inflight = s->queued;
  s->queued = NULL;
  s->status = 0;
  s->out = cJSON_PrintUnformatted(s->doc);
  if (!s->out) {
    s->status = UV_ENOMEM;
    s->step = ST_OPEN;
    return store_done(s);
  }
  s->out_len = strlen(s->out);
  s->req.data = s;
  s->step = ST_OPEN;
  int rc = uv_fs_open(s->loop, &s->req, s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600,
                      store_step);
  if (rc < 0) {
    s->status = rc;
    store_done(s);
  }
}

void vm_store_commit(struct vm_store *s, vm_store_cb cb, void *data) {
  if (cb) {
    struct vm_store_waiter *w = calloc(1, sizeof *w);
    if (!w) {
      cb(data, UV_ENOMEM);
      return;
    }
    w->cb = cb;
    w->data = data;
    struct vm_store_waiter **pp = &s->queued;
    while (*pp) pp = &(*pp)->next;
    *pp = w;
  }
  s->dirty = 1;
  if (s->step == ST_IDLE) store_start(s);
}

void vm_store_close(struct vm_store *s) {
  /* Called after the loop has finished every write (the daemon runs the loop
   * until no request is active). Pending waiters are dropped. */
  for (struct vm_store_waiter *w = s->queued; w;) {
    struct vm_store_waiter *n = w->next;
    free(w);
    w = n;
  }
  s->queued = NULL;
  cJSON_Delete(s->doc);
  s->doc = NULL;
  free(s->dir);
  free(s->path);
  free(s->tmp);
  free(s->out);
  s->dir = s->path = s->tmp = s->out = NULL;
}
