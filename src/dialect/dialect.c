/* dialect.c - the list of dialects a module can speak. */
#include <string.h>

#include "vmodule/dialect.h"

static const struct vm_dialect *const dialects[] = {
    &vm_dialect_tencent,
    &vm_dialect_w800,
    &vm_dialect_me3630,
};

const struct vm_dialect *vm_dialect_find(const char *name) {
  for (size_t i = 0; i < sizeof dialects / sizeof dialects[0]; i++)
    if (!strcmp(dialects[i]->name, name)) return dialects[i];
  return NULL;
}

const char *vm_dialect_names(void) { return "tencent, w800, me3630"; }
