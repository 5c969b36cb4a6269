/* serfault.h - `serial` faults on a module's line towards the MCU: drop PPM,
 * corrupt PPM, clear, unplug, plug. The state lives in m->serial_fault,
 * created on first use. */
#ifndef VMODULE_SERFAULT_H
#define VMODULE_SERFAULT_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct vm_module;

/* argv[0] is "serial". Returns 0, -1 with err set. */
int vm_serfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen);
int vm_serfault_check(int argc, char **argv, char *err, size_t errlen);
/* Adds "serial": {...} to a status object. */
void vm_serfault_status(struct vm_module *m, cJSON *obj);
void vm_serfault_free(struct vm_module *m);

#endif
