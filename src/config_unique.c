/* config_unique.c - the configuration's uniqueness rules: no two modules
 * share a name, a pty_link or a unix_listen path. With templates there can be
 * 100000 modules, so the check sorts (n log n) instead of comparing every
 * pair. Names are checked first, then links, then sockets; of each the pair
 * reported is the one whose later module comes first in the configuration,
 * as a module-by-module check would find it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/config.h"

struct unique_key {
  const char *key; /* for the message */
  size_t offset;   /* of the char * in struct vm_module_config */
};

static const struct unique_key unique_keys[] = {
    {"name", offsetof(struct vm_module_config, name)},
    {"pty_link", offsetof(struct vm_module_config, pty_link)},
    {"unix_listen", offsetof(struct vm_module_config, unix_path)},
};

static const char *unique_value(const struct vm_module_config *m, size_t offset) {
  return *(char *const *)((const char *)m + offset);
}

struct unique_ctx {
  const struct vm_config *cfg;
  size_t offset;
};

/* By value (absent ones first), then by position. */
static int unique_cmp(const void *a, const void *b, void *arg) {
  const struct unique_ctx *c = arg;
  int i = *(const int *)a, j = *(const int *)b;
  const char *x = unique_value(&c->cfg->modules[i], c->offset);
  const char *y = unique_value(&c->cfg->modules[j], c->offset);
  int r = !x || !y ? (x != NULL) - (y != NULL) : strcmp(x, y);
  return r ? r : (i > j) - (i < j);
}

/* "module \"tc7\" (modules[0], n=7)" or "modules[2]". */
static void unique_who(const struct vm_module_config *m, char *out, size_t cap) {
  if (m->tmpl_n < 0)
    snprintf(out, cap, "modules[%d]", m->entry);
  else
    snprintf(out, cap, "module \"%s\" (modules[%d], n=%ld)", m->name, m->entry, m->tmpl_n);
}

int vm_config_check_unique(const struct vm_config *cfg, char *err, size_t errlen) {
  int n = cfg->nmodules;
  int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
  if (!order) return snprintf(err, errlen, "modules: out of memory"), -1;
  int rc = 0;
  for (size_t k = 0; k < sizeof unique_keys / sizeof unique_keys[0] && !rc; k++) {
    struct unique_ctx ctx = {cfg, unique_keys[k].offset};
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, unique_cmp, &ctx);
    int first = -1, later = -1, start = 0; /* the pair to report; the run's start */
    for (int i = 1; i < n; i++) {
      const char *a = unique_value(&cfg->modules[order[i - 1]], ctx.offset);
      const char *b = unique_value(&cfg->modules[order[i]], ctx.offset);
      if (!a || strcmp(a, b)) {
        start = i;
        continue;
      }
      /* in a run positions ascend: its first two are its pair */
      if (i == start + 1 && (later < 0 || order[i] < later)) first = order[start], later = order[i];
    }
    if (later < 0) continue;
    const struct vm_module_config *m = &cfg->modules[later];
    char who[96], other[96];
    unique_who(m, who, sizeof who);
    unique_who(&cfg->modules[first], other, sizeof other);
    /* "modules[1].name: ..." or "module \"tc1\" (modules[1], n=1): name: ..." */
    snprintf(err, errlen, "%s%s%s: \"%s\" is already used by %s", who, m->tmpl_n < 0 ? "." : ": ",
             unique_keys[k].key, unique_value(m, ctx.offset), other);
    rc = -1;
  }
  free(order);
  return rc;
}
