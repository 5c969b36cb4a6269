/* tc_prov_msg.c - the messages of Wi-Fi provisioning (reference §3.13), pure:
 * the phone app's datagrams on the module's UDP port, the cloud's answer to
 * app_bind_token, and the module's cmdType 2 device reply. Read and written
 * as the firmware's qcloud_wifi_config.c does (cJSON, its buffer sizes);
 * tc_prov.c runs the flow around them, the fuzzer and the unit tests call
 * them directly (tc_replies.h says what each returns). */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tc_replies.h"

/* cJSON's valueint of a number (cJSON_SetNumberHelper's clamp); 0 for others. */
static int value_int(const cJSON *v) {
  if (!cJSON_IsNumber(v)) return 0;
  double d = v->valuedouble;
  if (d >= INT_MAX) return INT_MAX;
  if (d <= (double)INT_MIN) return INT_MIN;
  return (int)d;
}

/* strncpy(dst, member, max) of a string member; 0, or -1 when missing. */
static int member_str(const cJSON *root, const char *name, char *dst, size_t max) {
  const cJSON *v = cJSON_GetObjectItem(root, name);
  if (!cJSON_IsString(v) || !v->valuestring) return -1;
  snprintf(dst, max + 1, "%s", v->valuestring);
  return 0;
}

static cJSON *parse_text(const void *data, size_t len, size_t max) {
  char buf[TC_PROV_APP_MAX + 1];
  char *text = buf;
  cJSON *root;
  if (len > max) len = max;
  if (len > TC_PROV_APP_MAX) { /* the bind reply: the payload's own length */
    text = malloc(len + 1);
    if (!text) return NULL;
  }
  memcpy(text, data, len);
  text[len] = '\0';
  root = cJSON_Parse(text);
  if (text != buf) free(text);
  return root;
}

enum tc_prov_app_kind tc_parse_prov_app(const void *data, size_t len, struct tc_prov_app *out) {
  memset(out, 0, sizeof *out);
  cJSON *root = parse_text(data, len, TC_PROV_APP_MAX);
  const cJSON *cmd = cJSON_GetObjectItem(root, "cmdType");
  if (!root || !cmd) {
    cJSON_Delete(root);
    return TC_PROV_APP_BAD_JSON;
  }
  out->has_region = member_str(root, "region", out->region, TC_PROV_MAX_REGION) == 0;
  out->cmd = value_int(cmd);
  enum tc_prov_app_kind kind = TC_PROV_APP_UNKNOWN;
  bool token = member_str(root, "token", out->token, TC_PROV_MAX_TOKEN) == 0;
  if (out->cmd == 0) {
    kind = token ? TC_PROV_APP_TOKEN : TC_PROV_APP_MISSING;
  } else if (out->cmd == 1) {
    bool ssid = member_str(root, "ssid", out->ssid, TC_PROV_MAX_SSID) == 0;
    bool pwd = member_str(root, "password", out->password, TC_PROV_MAX_PASSWORD) == 0;
    kind = ssid && pwd && token ? TC_PROV_APP_AP : TC_PROV_APP_MISSING;
  } else if (out->cmd == 3) {
    kind = TC_PROV_APP_LOG;
  }
  cJSON_Delete(root);
  return kind;
}

int tc_parse_prov_bind_reply(const void *payload, size_t len, int *code) {
  cJSON *root = parse_text(payload, len, len);
  const cJSON *c = cJSON_GetObjectItem(root, "code");
  int found = c != NULL;
  if (found) *code = value_int(c);
  cJSON_Delete(root);
  return found;
}

#define REPLY_FMT \
  "{\"cmdType\":2,\"productId\":\"%s\",\"deviceName\":\"%s\",\"productRegion\":\"%s\"," \
  "\"protoVersion\":\"2.0\"}"

int tc_prov_device_reply(char *buf, size_t cap, const char *pid, const char *dn,
                         const char *region, int printf_style) {
  char json[TC_PROV_REPLY_MAX];
  if (printf_style) {
    int n = snprintf(json, sizeof json, REPLY_FMT, pid, dn, region);
    if (n < 0 || (size_t)n >= sizeof json) return -1;
  } else {
    cJSON *o = cJSON_CreateObject();
    bool ok = o && cJSON_AddNumberToObject(o, "cmdType", 2) &&
              cJSON_AddStringToObject(o, "productId", pid) &&
              cJSON_AddStringToObject(o, "deviceName", dn) &&
              cJSON_AddStringToObject(o, "productRegion", region) &&
              cJSON_AddStringToObject(o, "protoVersion", "2.0") &&
              cJSON_PrintPreallocated(o, json, (int)sizeof json, 0);
    cJSON_Delete(o);
    if (!ok) return -1;
  }
  int n = snprintf(buf, cap, "%s\r\n", json);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}
