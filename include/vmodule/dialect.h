/* dialect.h - what a dialect (tencent, w800, me3630) plugs into a module. */
#ifndef VMODULE_DIALECT_H
#define VMODULE_DIALECT_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct vm_module;

struct vm_dialect {
  const char *name;
  /* Validates the dialect's config object (obj may be NULL = all defaults)
   * into *conf. On error writes one line naming the key below `where`
   * (e.g. "modules[0].tencent") and returns -1. */
  int (*parse_config)(const cJSON *obj, const char *where, void **conf, char *err, size_t errlen);
  void (*free_config)(void *conf);
  /* Creates the dialect state (m->dialect_state) and registers its command
   * tables and style with m->at. Returns 0 or -1. */
  int (*init)(struct vm_module *m);
  /* Power-on after boot: state restored from m->store, banner printed by
   * the module, then this runs (auto-join, etc.). */
  void (*power_on)(struct vm_module *m);
  /* Power-off or reset: drops network sessions and RAM state. */
  void (*power_off)(struct vm_module *m);
  /* Closes the dialect's handles; m->dialect_state itself is free()d by
   * vm_module_cleanup() after the loop has finished closing them. */
  void (*destroy)(struct vm_module *m);
  /* Optional. The fault verbs only this dialect has ("wifi" on the ESP
   * family, "cell" on the ME3630; fault.h): argv[0] is the verb. Returns 0
   * (done), -1 with one line in err, or VM_FAULT_UNSUPPORTED. */
  int (*fault)(struct vm_module *m, int argc, char **argv, char *err, size_t errlen);
  /* Optional. The same check without a module, for the config's scheduled
   * faults (conf is the dialect's parsed config). */
  int (*fault_check)(const void *conf, int argc, char **argv, char *err, size_t errlen);
  /* Optional. Adds the dialect's state to `vmodulectl status`: "wifi" or
   * "cell" {...}, "mqtt": {"state", "subscriptions": [...]}. */
  void (*status)(struct vm_module *m, cJSON *obj);
};

const struct vm_dialect *vm_dialect_find(const char *name);
/* "tencent, w800, me3630" */
const char *vm_dialect_names(void);

/* For status hooks: adds "mqtt": {"state": state ("disconnected",
 * "connecting" or "connected"), "broker": "host:port" (null without a
 * host), "subscriptions": []} to obj and returns the (empty) array for the
 * caller's topics, or NULL when out of memory. */
cJSON *vm_dialect_mqtt_status(cJSON *obj, const char *state, const char *host, int port);

extern const struct vm_dialect vm_dialect_tencent;
extern const struct vm_dialect vm_dialect_w800;
extern const struct vm_dialect vm_dialect_me3630;

#endif
