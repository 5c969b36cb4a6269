/* esp_cli.c - the ESP family's options of the one-module command line:
 * `--wifi SSID:PASSWORD` becomes an entry of the dialect object's
 * wifi.access_points, which the dialect's own config parser then checks as
 * it checks a configuration file's (esp_basic.c). The password never goes
 * into an error message or a log line. */
#include <stdio.h>
#include <string.h>

#include "vmodule/dialect.h"
#include "vmodule/esp.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

bool vm_esp_dialect(const struct vm_dialect *d) {
  return d == &vm_dialect_tencent || d == &vm_dialect_w800;
}

/* obj.wifi.access_points, made on first use. */
static cJSON *access_points(cJSON **obj) {
  if (!*obj && !(*obj = cJSON_CreateObject())) return NULL;
  cJSON *wifi = cJSON_GetObjectItemCaseSensitive(*obj, "wifi");
  if (!wifi && !(wifi = cJSON_AddObjectToObject(*obj, "wifi"))) return NULL;
  cJSON *aps = cJSON_GetObjectItemCaseSensitive(wifi, "access_points");
  return aps ? aps : cJSON_AddArrayToObject(wifi, "access_points");
}

int vm_esp_cli_wifi(cJSON **obj, const char *arg, char *err, size_t errlen) {
  const struct vm_wifi_ap *ap = NULL;
  const char *colon = strchr(arg, ':');
  if (!colon) return ERR("--wifi: expected SSID:PASSWORD (PASSWORD may be empty)");
  size_t ssid_len = (size_t)(colon - arg);
  if (ssid_len == 0 || ssid_len >= sizeof ap->ssid)
    return ERR("--wifi: the SSID must be 1 to %zu characters", sizeof ap->ssid - 1);
  if (strlen(colon + 1) >= sizeof ap->password)
    return ERR("--wifi: the password must be at most %zu characters", sizeof ap->password - 1);
  cJSON *aps = access_points(obj), *e;
  if (!aps) return ERR("--wifi: out of memory");
  if (cJSON_GetArraySize(aps) >= VM_ESP_MAX_APS)
    return ERR("--wifi: at most %d access points", VM_ESP_MAX_APS);
  char ssid[sizeof ap->ssid];
  memcpy(ssid, arg, ssid_len);
  ssid[ssid_len] = '\0';
  cJSON_ArrayForEach(e, aps) {
    if (!strcmp(cJSON_GetObjectItemCaseSensitive(e, "ssid")->valuestring, ssid))
      return ERR("--wifi: \"%s\" is given twice", ssid);
  }
  if (!(e = cJSON_CreateObject()) || !cJSON_AddItemToArray(aps, e) ||
      !cJSON_AddStringToObject(e, "ssid", ssid) ||
      !cJSON_AddStringToObject(e, "password", colon + 1))
    return ERR("--wifi: out of memory");
  return 0;
}
