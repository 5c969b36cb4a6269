/* serfault.c - `serial` faults (serfault.h). Placeholder until the serial faults land. */
#include <stdio.h>
#include <stdlib.h>

#include "vmodule/serfault.h"
#include "vmodule/module.h"

int vm_serfault_check(int argc, char **argv, char *err, size_t errlen) {
  snprintf(err, errlen, "serial: not available yet");
  return -1;
}

int vm_serfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  return vm_serfault_check(argc, argv, err, errlen);
}

void vm_serfault_status(struct vm_module *m, cJSON *obj) {}

void vm_serfault_free(struct vm_module *m) {}
