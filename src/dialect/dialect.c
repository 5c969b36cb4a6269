/* dialect.c - the list of dialects a module can speak, and what their
 * `status` hooks share. */
#include <stdio.h>
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

cJSON *vm_dialect_mqtt_status(cJSON *obj, const char *state, const char *host, int port) {
  cJSON *mq = cJSON_AddObjectToObject(obj, "mqtt");
  if (!mq) return NULL;
  cJSON_AddStringToObject(mq, "state", state);
  if (host && host[0]) {
    char broker[300];
    snprintf(broker, sizeof broker, "%s:%d", host, port);
    cJSON_AddStringToObject(mq, "broker", broker);
  } else {
    cJSON_AddNullToObject(mq, "broker");
  }
  return cJSON_AddArrayToObject(mq, "subscriptions");
}
