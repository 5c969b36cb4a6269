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

/* A namespace of values: a name is unique among names; a path among the
 * PTY links and the unix sockets both (one file cannot be both). */
struct unique_space {
  int nkeys;
  const char *keys[2];   /* for the message */
  size_t offsets[2];     /* of the char * in struct vm_module_config */
};

static const struct unique_space unique_spaces[] = {
    {1, {"name"}, {offsetof(struct vm_module_config, name)}},
    {2, {"pty_link", "unix_listen"},
     {offsetof(struct vm_module_config, pty_link), offsetof(struct vm_module_config, unix_path)}},
};

struct unique_ctx {
  const struct vm_config *cfg;
  const struct unique_space *sp;
};

/* Item i is key i % nkeys of module i / nkeys: items in configuration order. */
static const char *unique_value(const struct unique_ctx *c, int item) {
  const struct vm_module_config *m = &c->cfg->modules[item / c->sp->nkeys];
  return *(char *const *)((const char *)m + c->sp->offsets[item % c->sp->nkeys]);
}

/* By value (absent ones first), then by position. */
static int unique_cmp(const void *a, const void *b, void *arg) {
  const struct unique_ctx *c = arg;
  int i = *(const int *)a, j = *(const int *)b;
  const char *x = unique_value(c, i), *y = unique_value(c, j);
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

/* The error for items later and first (of the same value). */
static void unique_error(const struct unique_ctx *c, int later, int first, char *err,
                         size_t errlen) {
  const struct vm_module_config *m = &c->cfg->modules[later / c->sp->nkeys];
  const char *key = c->sp->keys[later % c->sp->nkeys], *its = c->sp->keys[first % c->sp->nkeys];
  char who[96], other[96];
  unique_who(m, who, sizeof who);
  unique_who(&c->cfg->modules[first / c->sp->nkeys], other, sizeof other);
  /* "modules[1].name: ..." or "module \"tc1\" (modules[1], n=1): name: ..." */
  snprintf(err, errlen, "%s%s%s: \"%s\" is already used by %s%s%s", who,
           m->tmpl_n < 0 ? "." : ": ", key, unique_value(c, later), other,
           strcmp(key, its) ? " as its " : "", strcmp(key, its) ? its : "");
}

int vm_config_check_unique(const struct vm_config *cfg, char *err, size_t errlen) {
  int n = cfg->nmodules * 2;
  int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
  if (!order) return snprintf(err, errlen, "modules: out of memory"), -1;
  int rc = 0;
  for (size_t k = 0; k < sizeof unique_spaces / sizeof unique_spaces[0] && !rc; k++) {
    struct unique_ctx ctx = {cfg, &unique_spaces[k]};
    int items = cfg->nmodules * ctx.sp->nkeys;
    for (int i = 0; i < items; i++) order[i] = i;
    qsort_r(order, (size_t)items, sizeof *order, unique_cmp, &ctx);
    int first = -1, later = -1, start = 0; /* the pair to report; the run's start */
    for (int i = 1; i < items; i++) {
      const char *a = unique_value(&ctx, order[i - 1]), *b = unique_value(&ctx, order[i]);
      if (!a || strcmp(a, b)) {
        start = i;
        continue;
      }
      /* in a run positions ascend: its first two are its pair */
      if (i == start + 1 && (later < 0 || order[i] < later)) first = order[start], later = order[i];
    }
    if (later < 0) continue;
    unique_error(&ctx, later, first, err, errlen);
    rc = -1;
  }
  free(order);
  return rc;
}
