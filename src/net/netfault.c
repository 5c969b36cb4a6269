/* netfault.c - `net` faults (netfault.h). Placeholder until the relay lands. */
#include <stdio.h>
#include <stdlib.h>

#include "vmodule/netfault.h"
#include "vmodule/module.h"

int vm_netfault_check(int argc, char **argv, char *err, size_t errlen) {
  snprintf(err, errlen, "net: not available yet");
  return -1;
}

int vm_netfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  return vm_netfault_check(argc, argv, err, errlen);
}

void vm_netfault_status(struct vm_module *m, cJSON *obj) {}

void vm_netfault_free(struct vm_module *m) {}
