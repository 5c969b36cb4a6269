/* esp_basic.c - ESP-AT basic commands shared by the tencent and w800 dialects:
 * AT, ATE0, ATE1, AT+RST, AT+GMR, AT+RESTORE, plus the ESP-family config keys
 * and power hooks (the Wi-Fi part lives in esp_wifi.c). Reply bytes follow
 * Espressif ESP-AT (shared/reference/w800-me3630-at.md §2-§3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/config.h"
#include "vmodule/esp.h"
#include "vmodule/log.h"
#include "vmodule/module.h"

struct vm_esp *vm_esp_of(struct vm_at *at) {
  return (struct vm_esp *)vm_module_of(at)->dialect_state;
}

/* ---- commands ---------------------------------------------------------- */

static enum vm_at_result rst_exec(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_reply_ok(at);
  vm_module_reboot(vm_module_of(at));
  return VM_AT_DONE;
}

static enum vm_at_result gmr_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  const char *const *lines = esp->cfg->gmr[0] ? (const char *const *)esp->cfg->gmr : esp->gmr_default;
  for (; *lines; lines++) vm_at_printf(at, "%s\r\n", *lines);
  return VM_AT_OK;
}

static void restore_written(void *data, int status) {
  struct vm_at *at = data;
  vm_at_complete(at, VM_AT_OK);
  vm_module_reboot(vm_module_of(at));
}

/* AT+RESTORE: factory reset of what the ESP-AT core keeps in NVS (Wi-Fi
 * station config, CWMODE), then reboot. */
static enum vm_at_result restore_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_module *m = vm_module_of(at);
  vm_store_put(&m->store, "wifi", NULL);
  vm_store_commit(&m->store, restore_written, at);
  return VM_AT_PENDING;
}

const struct vm_at_cmd vm_esp_basic_cmds[] = {
    {.name = "", .exec = vm_at_handle_ok},
    {.name = "E0", .exec = vm_at_handle_echo_off},
    {.name = "E1", .exec = vm_at_handle_echo_on},
    {.name = "+RST", .exec = rst_exec},
    {.name = "+GMR", .exec = gmr_exec},
    {.name = "+RESTORE", .exec = restore_exec},
};
const size_t vm_esp_basic_ncmds = sizeof vm_esp_basic_cmds / sizeof vm_esp_basic_cmds[0];

/* ---- configuration ----------------------------------------------------- */

void vm_esp_config_defaults(struct vm_esp_config *c) {
  memset(c, 0, sizeof *c);
  c->join_ms = 1000;
}

void vm_esp_config_free(struct vm_esp_config *c) {
  for (int i = 0; i < VM_ESP_MAX_GMR; i++) free(c->gmr[i]);
  memset(c->gmr, 0, sizeof c->gmr);
}

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int copy_str(const cJSON *v, char *dst, size_t cap, size_t min, const char *where,
                    const char *key, char *err, size_t errlen) {
  if (!cJSON_IsString(v)) return ERR("%s.%s: must be a string", where, key);
  size_t n = strlen(v->valuestring);
  if (n < min || n >= cap)
    return ERR("%s.%s: must be %zu to %zu characters", where, key, min, cap - 1);
  memcpy(dst, v->valuestring, n + 1);
  return 0;
}

static int parse_int(const cJSON *v, int lo, int hi, int *out, const char *where, const char *key,
                     char *err, size_t errlen) {
  long n;
  if (vm_json_int(v, lo, hi, &n))
    return ERR("%s.%s: must be an integer between %d and %d", where, key, lo, hi);
  *out = (int)n;
  return 0;
}

static int parse_ap(struct vm_wifi_ap *ap, int idx, const cJSON *obj, const char *where, char *err,
                    size_t errlen) {
  char w[128];
  snprintf(w, sizeof w, "%s.wifi.access_points[%d]", where, idx);
  if (!cJSON_IsObject(obj)) return ERR("%s: must be an object", w);
  snprintf(ap->bssid, sizeof ap->bssid, "18:31:bf:4b:2c:%02x", (idx + 1) & 0xff);
  ap->channel = 6;
  ap->rssi = -45;
  snprintf(ap->ip, sizeof ap->ip, "192.168.1.%u", (unsigned)(100 + idx) & 0xffu);
  strcpy(ap->gateway, "192.168.1.1");
  strcpy(ap->netmask, "255.255.255.0");
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    int rc;
    if (!strcmp(k, "ssid")) rc = copy_str(it, ap->ssid, sizeof ap->ssid, 1, w, k, err, errlen);
    else if (!strcmp(k, "password"))
      rc = copy_str(it, ap->password, sizeof ap->password, 0, w, k, err, errlen);
    else if (!strcmp(k, "bssid")) rc = copy_str(it, ap->bssid, sizeof ap->bssid, 17, w, k, err, errlen);
    else if (!strcmp(k, "channel")) rc = parse_int(it, 1, 14, &ap->channel, w, k, err, errlen);
    else if (!strcmp(k, "rssi")) rc = parse_int(it, -100, 0, &ap->rssi, w, k, err, errlen);
    else if (!strcmp(k, "ip")) rc = copy_str(it, ap->ip, sizeof ap->ip, 7, w, k, err, errlen);
    else if (!strcmp(k, "gateway")) rc = copy_str(it, ap->gateway, sizeof ap->gateway, 7, w, k, err, errlen);
    else if (!strcmp(k, "netmask")) rc = copy_str(it, ap->netmask, sizeof ap->netmask, 7, w, k, err, errlen);
    else rc = ERR("%s.%s: unknown key", w, k);
    if (rc) return rc;
  }
  if (!ap->ssid[0]) return ERR("%s.ssid: required", w);
  return 0;
}

static int parse_wifi(struct vm_esp_config *c, const cJSON *obj, const char *where, char *err,
                      size_t errlen) {
  if (!cJSON_IsObject(obj)) return ERR("%s.wifi: must be an object", where);
  const cJSON *it;
  char w[96];
  snprintf(w, sizeof w, "%s.wifi", where);
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    if (!strcmp(k, "access_points")) {
      if (!cJSON_IsArray(it)) return ERR("%s.access_points: must be an array", w);
      if (cJSON_GetArraySize(it) > VM_ESP_MAX_APS)
        return ERR("%s.access_points: at most %d access points", w, VM_ESP_MAX_APS);
      const cJSON *ap;
      c->naps = 0;
      cJSON_ArrayForEach(ap, it) {
        if (parse_ap(&c->aps[c->naps], c->naps, ap, where, err, errlen)) return -1;
        c->naps++;
      }
    } else if (!strcmp(k, "auto_join")) {
      if (copy_str(it, c->auto_join, sizeof c->auto_join, 1, w, k, err, errlen)) return -1;
    } else if (!strcmp(k, "join_ms")) {
      int v;
      if (parse_int(it, 0, 60000, &v, w, k, err, errlen)) return -1;
      c->join_ms = (unsigned)v;
    } else {
      return ERR("%s.%s: unknown key", w, k);
    }
  }
  if (c->auto_join[0]) {
    for (int i = 0; i < c->naps; i++)
      if (!strcmp(c->aps[i].ssid, c->auto_join)) return 0;
    return ERR("%s.auto_join: \"%s\" is not in access_points", w, c->auto_join);
  }
  return 0;
}

static int parse_gmr(struct vm_esp_config *c, const cJSON *arr, const char *where, char *err,
                     size_t errlen) {
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
      cJSON_GetArraySize(arr) >= VM_ESP_MAX_GMR)
    return ERR("%s.gmr: must be an array of 1 to %d strings", where, VM_ESP_MAX_GMR - 1);
  const cJSON *it;
  int i = 0;
  cJSON_ArrayForEach(it, arr) {
    if (!cJSON_IsString(it) || strlen(it->valuestring) > 200 || strpbrk(it->valuestring, "\r\n"))
      return ERR("%s.gmr[%d]: must be a single line of at most 200 characters", where, i);
    c->gmr[i++] = strdup(it->valuestring);
  }
  return 0;
}

int vm_esp_config_key(struct vm_esp_config *c, const cJSON *item, const char *where, char *err,
                      size_t errlen) {
  if (!strcmp(item->string, "wifi")) return parse_wifi(c, item, where, err, errlen) ? -1 : 1;
  if (!strcmp(item->string, "gmr")) return parse_gmr(c, item, where, err, errlen) ? -1 : 1;
  return 0;
}
