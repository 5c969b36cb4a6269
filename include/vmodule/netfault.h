/* netfault.h - `net` faults on a module's real network connections (MQTT,
 * WebSocket, HTTPS): down, up, reset, blackhole, delay MS, dns-fail, dns-ok.
 * The state lives in m->net, created on first use. */
#ifndef VMODULE_NETFAULT_H
#define VMODULE_NETFAULT_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct vm_module;

/* argv[0] is "net". Returns 0, -1 with err set. */
int vm_netfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen);
/* Checks the words without a module (config validation). */
int vm_netfault_check(int argc, char **argv, char *err, size_t errlen);
/* Adds "net": {...} to a status object (nothing when no net fault was ever set). */
void vm_netfault_status(struct vm_module *m, cJSON *obj);
/* Frees m->net (vm_module_cleanup). */
void vm_netfault_free(struct vm_module *m);

#endif
