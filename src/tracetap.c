/* tracetap.c - the in-memory serial trace of the control socket (tracetap.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/trace.h"
#include "vmodule/tracetap.h"

#define MAX_FOLLOWERS 16
#define ENTRY_BYTES 256 /* data bytes per entry: a longer chunk makes several */

struct vm_trace_tap {
  char *ring[VM_TRACETAP_KEEP];
  size_t head, count;
  struct {
    vm_tracetap_cb cb;
    void *ctx;
  } followers[MAX_FOLLOWERS];
  int nfollowers;
};

int vm_tracetap_open(struct vm_module *m) {
  if (!m->taps && !(m->taps = calloc(1, sizeof *m->taps))) return -1;
  return 0;
}

static void keep(struct vm_trace_tap *t, char *line) {
  for (int i = 0; i < t->nfollowers; i++) t->followers[i].cb(t->followers[i].ctx, line);
  if (t->count == VM_TRACETAP_KEEP) {
    free(t->ring[t->head]);
    t->ring[t->head] = line;
    t->head = (t->head + 1) % VM_TRACETAP_KEEP;
    return;
  }
  t->ring[(t->head + t->count++) % VM_TRACETAP_KEEP] = line;
}

void vm_tracetap_feed(struct vm_module *m, char dir, const void *buf, size_t len) {
  struct vm_trace_tap *t = m->taps;
  const char *p = buf;
  char when[48];
  if (!t) return;
  vm_log_time(when, sizeof when, 6);
  while (len > 0) {
    size_t n = len < ENTRY_BYTES ? len : ENTRY_BYTES;
    size_t cap = strlen(when) + 4 + n * 4 + 1;
    char *line = malloc(cap);
    if (!line) return;
    size_t o = (size_t)snprintf(line, cap, "%s %c ", when, dir);
    vm_trace_escape(p, n, line + o, cap - o);
    keep(t, line);
    p += n;
    len -= n;
  }
}

void vm_tracetap_replay(struct vm_module *m, vm_tracetap_cb cb, void *ctx) {
  struct vm_trace_tap *t = m->taps;
  for (size_t i = 0; t && i < t->count; i++) cb(ctx, t->ring[(t->head + i) % VM_TRACETAP_KEEP]);
}

int vm_tracetap_follow(struct vm_module *m, vm_tracetap_cb cb, void *ctx) {
  if (vm_tracetap_open(m) < 0 || m->taps->nfollowers == MAX_FOLLOWERS) return -1;
  m->taps->followers[m->taps->nfollowers].cb = cb;
  m->taps->followers[m->taps->nfollowers].ctx = ctx;
  m->taps->nfollowers++;
  return 0;
}

void vm_tracetap_unfollow(struct vm_module *m, vm_tracetap_cb cb, void *ctx) {
  struct vm_trace_tap *t = m->taps;
  for (int i = 0; t && i < t->nfollowers; i++) {
    if (t->followers[i].cb != cb || t->followers[i].ctx != ctx) continue;
    memmove(&t->followers[i], &t->followers[i + 1],
            (size_t)(t->nfollowers - i - 1) * sizeof t->followers[0]);
    t->nfollowers--;
    return;
  }
}

void vm_tracetap_free(struct vm_module *m) {
  struct vm_trace_tap *t = m->taps;
  if (!t) return;
  for (size_t i = 0; i < t->count; i++) free(t->ring[(t->head + i) % VM_TRACETAP_KEEP]);
  free(t);
  m->taps = NULL;
}
