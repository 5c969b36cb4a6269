/* store.h - a module's persistent "flash": one JSON document per module at
 * <state_dir>/<module>/state.json, replaced atomically (temp file, fsync,
 * rename, fsync of the directory), mode 0600. Writes run on the libuv
 * threadpool (uv_fs_*), never blocking the loop; commits made while a write
 * is in flight are coalesced into the next write. A damaged or missing
 * document is reported and treated as empty flash. */
#ifndef VMODULE_STORE_H
#define VMODULE_STORE_H

#include <cjson/cJSON.h>
#include <uv.h>

typedef void (*vm_store_cb)(void *data, int status); /* status 0 or negative errno */

struct vm_store_waiter {
  vm_store_cb cb;
  void *data;
  struct vm_store_waiter *next;
};

struct vm_store {
  uv_loop_t *loop;
  const char *name;
  char *dir, *path, *tmp;
  cJSON *doc; /* the current contents, always an object */
  /* write pipeline */
  uv_fs_t req;
  int fd;
  int step;     /* 0 = idle */
  int dirty;    /* a commit arrived during the write in flight */
  char *out;    /* serialized snapshot being written */
  size_t out_len;
  int status;
  struct vm_store_waiter *inflight, *queued; /* callbacks for this write / the next */
  unsigned long writes;
};

/* Creates the directory if needed and loads the document. Returns 0, or a
 * negative errno when the directory cannot be made (the document itself
 * never fails: damage is logged and ignored). */
int vm_store_open(struct vm_store *s, uv_loop_t *loop, const char *state_dir, const char *module);
/* The value stored under key, or NULL. Owned by the store. */
cJSON *vm_store_get(struct vm_store *s, const char *key);
/* Replaces key with val (ownership passes to the store); NULL removes key. */
void vm_store_put(struct vm_store *s, const char *key, cJSON *val);
/* Writes the document durably; cb (may be NULL) runs once it is on disk. */
void vm_store_commit(struct vm_store *s, vm_store_cb cb, void *data);
/* Non-zero while a write is in flight or queued. */
int vm_store_busy(const struct vm_store *s);
void vm_store_close(struct vm_store *s);

#endif
