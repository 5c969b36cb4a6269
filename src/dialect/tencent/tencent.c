/* tencent.c - the "tencent" dialect: Tencent Cloud IoT "QCloud AT" firmware
 * on an ESP8266, ESP32 or ESP32-C3 (v2.x; the builds and what differs
 * between them: tc_variant.c). This file holds the dialect's framing (the
 * esp-at v2 core of that firmware prints an `ERR CODE:` line before every
 * ERROR), its configuration and its power hooks; the TC command families
 * live beside it (tc_info.c: identity and module information, tc_mqtt.c: MQTT,
 * tc_dynreg.c: dynamic registration, tc_gateway.c: the gateway, tc_subdev.c:
 * the sub-device lists of v2.2.0, tc_diag.c: AT+TCLOG and AT+NTP).
 * Ground truth: shared/reference/tencent-at.md, tencent-variants.md. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/json.h"
#include "vmodule/esp.h"
#include "vmodule/fault.h"
#include "vmodule/module.h"
#include "tencent.h"

/* ---- helpers shared by the command files ------------------------------- */

struct tc_state *tc_state_of(struct vm_at *at) {
  return (struct tc_state *)vm_module_of(at)->dialect_state;
}

enum vm_at_result tc_cme(struct vm_at *at, int code) {
  vm_at_mark_error(at);
  vm_at_printf(at, TC_CME_FMT, code);
  return VM_AT_DONE;
}

int tc_bcc(const char *s) {
  int r = 0;
  for (; *s; s++) r ^= (unsigned char)*s;
  return r;
}

/* ---- framing ------------------------------------------------------------ */

static void tc_error(struct vm_at *at, uint32_t code) {
  vm_at_printf(at, TC_ERR_CODE_FMT TC_ERROR, code);
}

/* The ESP8266 core splits parameters at every bare ',' even inside quotes
 * (reference §1.8: hosts escape ',' for this firmware); nothing shows the
 * ESP32 cores do (tencent-variants.md), so they parse quotes normally. The
 * two styles differ only in parse_flags. */
static const struct vm_at_style tc_style_esp8266 = {
    .framing = VM_AT_FRAME_ESP,
    .ok = TC_OK,
    .busy = TC_BUSY,
    .ready = TC_READY,
    .force_restart = TC_FORCE_RESTART,
    .parse_flags = VM_AT_PARSE_COMMA_SPLITS_QUOTES,
    .error = tc_error,
};

static const struct vm_at_style tc_style_esp32 = {
    .framing = VM_AT_FRAME_ESP,
    .ok = TC_OK,
    .busy = TC_BUSY,
    .ready = TC_READY,
    .force_restart = TC_FORCE_RESTART,
    .parse_flags = 0,
    .error = tc_error,
};

/* ---- configuration ------------------------------------------------------ */

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int cfg_string(const cJSON *v, char *dst, size_t cap, size_t min, const char *where,
                      char *err, size_t errlen) {
  if (!cJSON_IsString(v)) return ERR("%s.%s: must be a string", where, v->string);
  size_t n = strlen(v->valuestring);
  if (n < min || n >= cap)
    return ERR("%s.%s: must be %zu to %zu characters", where, v->string, min, cap - 1);
  if (strpbrk(v->valuestring, "\r\n"))
    return ERR("%s.%s: must be a single line", where, v->string);
  memcpy(dst, v->valuestring, n + 1);
  return 0;
}

static int cfg_int(const cJSON *v, int lo, int hi, int *out, const char *where, char *err,
                   size_t errlen) {
  long long n;
  if (!vm_json_int(v, lo, hi, &n))
    return ERR("%s.%s: must be an integer between %d and %d", where, v->string, lo, hi);
  *out = (int)n;
  return 0;
}

/* "xx:xx:xx:xx:xx:xx", printed lower-case as the firmware's %02x does. */
static int cfg_mac(const cJSON *v, char *dst, const char *where, char *err, size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  bool ok = strlen(s) == 17;
  for (int i = 0; ok && i < 17; i++)
    ok = i % 3 == 2 ? s[i] == ':' : isxdigit((unsigned char)s[i]) != 0;
  if (!ok) return ERR("%s.%s: must be a MAC address like \"84:f3:eb:56:0e:e9\"", where, v->string);
  for (int i = 0; i < 17; i++) dst[i] = (char)tolower((unsigned char)s[i]);
  dst[17] = '\0';
  return 0;
}

static int cfg_transport(const cJSON *v, struct tc_config *c, const char *where, char *err,
                         size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  if (!strcmp(s, "tls-psk")) c->transport = TC_TRANSPORT_TLS_PSK;
  else if (!strcmp(s, "tcp")) c->transport = TC_TRANSPORT_TCP;
  else if (!strcmp(s, "tls")) c->transport = TC_TRANSPORT_TLS;
  else return ERR("%s.%s: must be \"tls-psk\", \"tcp\" or \"tls\"", where, v->string);
  return 0;
}

static int cfg_sign(const cJSON *v, struct tc_config *c, const char *where, char *err,
                    size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  if (!strcmp(s, "hmacsha256")) c->sign = VM_TENCENT_HMAC_SHA256;
  else if (!strcmp(s, "hmacsha1")) c->sign = VM_TENCENT_HMAC_SHA1;
  else return ERR("%s.%s: must be \"hmacsha256\" or \"hmacsha1\"", where, v->string);
  return 0;
}

static int cfg_dynreg_api(const cJSON *v, struct tc_config *c, const char *where, char *err,
                          size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  if (!strcmp(s, "v1")) c->dynreg_api = TC_DYNREG_V1;
  else if (!strcmp(s, "v2")) c->dynreg_api = TC_DYNREG_V2;
  else return ERR("%s.%s: must be \"v1\" or \"v2\"", where, v->string);
  return 0;
}

static int cfg_dup(const cJSON *v, char **dst, const char *where, char *err, size_t errlen) {
  if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 255)
    return ERR("%s.%s: must be a string of 1 to 255 characters", where, v->string);
  free(*dst);
  *dst = strdup(v->valuestring);
  return *dst ? 0 : ERR("%s.%s: out of memory", where, v->string);
}

static int cfg_connid(const cJSON *v, char *dst, const char *where, char *err, size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  bool ok = strlen(s) == VM_TENCENT_CONNID_LEN;
  for (const char *p = s; ok && *p; p++) ok = isalnum((unsigned char)*p) != 0;
  if (!ok) return ERR("%s.%s: must be %d characters of [A-Za-z0-9]", where, v->string, VM_TENCENT_CONNID_LEN);
  strcpy(dst, s);
  return 0;
}

static int cfg_sdkappid(const cJSON *v, char *dst, const char *where, char *err, size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  bool ok = *s && strlen(s) < 16;
  for (const char *p = s; ok && *p; p++) ok = isdigit((unsigned char)*p) != 0;
  if (!ok) return ERR("%s.%s: must be a string of 1 to 15 digits", where, v->string);
  strcpy(dst, s);
  return 0;
}

/* tencent.chip: checked at once; tencent.firmware once the chip is known. */
static int cfg_chip(const cJSON *v, char *dst, const char *where, char *err, size_t errlen) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  if (!tc_variant_chip_known(s))
    return ERR("%s.%s: must be \"esp8266\", \"esp32\" or \"esp32c3\"", where, v->string);
  strcpy(dst, s);
  return 0;
}

/* Any other value becomes "?", which no variant has: cfg_variant() names the
 * chip's versions. */
static void cfg_firmware(const cJSON *v, char *dst, size_t cap) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  snprintf(dst, cap, "%s", *s && strlen(s) < cap ? s : "?");
}

/* Picks the variant and fills what the config left unset from it. */
static int cfg_variant(struct tc_config *c, const char *where, char *err, size_t errlen) {
  const char *chip = c->chip[0] ? c->chip : "esp8266";
  c->variant = tc_variant_find(chip, c->firmware[0] ? c->firmware : NULL);
  if (!c->variant) {
    char list[64];
    tc_variant_firmwares(chip, list, sizeof list);
    return ERR("%s.firmware: must be %s for %s", where, list, chip);
  }
  const struct tc_variant *v = c->variant;
  if (!c->flash_mb) c->flash_mb = v->flash_mb;
  if (!c->module_name[0]) {
    if (v->module_name) snprintf(c->module_name, sizeof c->module_name, "%s", v->module_name);
    else snprintf(c->module_name, sizeof c->module_name, TC_DEFAULT_MODULE_NAME_FMT, c->flash_mb);
  }
  if (!c->fw_version[0]) snprintf(c->fw_version, sizeof c->fw_version, "%s", v->fw_version);
  if (!c->sdk_version[0]) snprintf(c->sdk_version, sizeof c->sdk_version, "%s", v->sdk_version);
  if (!c->compile_time[0])
    snprintf(c->compile_time, sizeof c->compile_time, "%s", v->compile_time);
  return 0;
}

/* Module name, flash size and versions stay unset here: cfg_variant() fills
 * them once the chip and firmware are known. */
static void cfg_defaults(struct tc_config *c) {
  vm_esp_config_defaults(&c->esp);
  strcpy(c->mac, "84:f3:eb:56:0e:e9");
  c->transport = TC_TRANSPORT_TLS_PSK;
  strcpy(c->sdkappid, VM_TENCENT_SDKAPPID);
  c->sign = VM_TENCENT_HMAC_SHA256;
  c->publ_timeout_ms = 20000;
  c->reconnect_max_ms = 60000;
  c->dynreg_timeout_ms = 10000;
  c->gateway_timeout_ms = 20000;
  c->ota_read_timeout_ms = 20000;
  c->softap_udp_port = 8266;
  c->log_udp_port = 9876;
  c->provision_timeout_ms = 300000;
  c->provision_retry_timeout_ms = 50000;
  c->provision_step_ms = 1000;
  c->provision_settle_ms = 5000;
  c->provision_token_wait_ms = 20000;
}

/* The provisioning knobs: ports (0 = the kernel's pick) and times. */
static int cfg_prov_key(struct tc_config *c, const cJSON *it, const char *where, char *err,
                        size_t errlen) {
  static const struct {
    const char *key;
    int lo, hi;
    size_t off;
    bool port;
  } keys[] = {
      {"softap_udp_port", 0, 65535, offsetof(struct tc_config, softap_udp_port), true},
      {"log_udp_port", 0, 65535, offsetof(struct tc_config, log_udp_port), true},
      {"provision_timeout_ms", 100, 3600000, offsetof(struct tc_config, provision_timeout_ms), false},
      {"provision_retry_timeout_ms", 100, 3600000,
       offsetof(struct tc_config, provision_retry_timeout_ms), false},
      {"provision_step_ms", 10, 10000, offsetof(struct tc_config, provision_step_ms), false},
      {"provision_settle_ms", 0, 60000, offsetof(struct tc_config, provision_settle_ms), false},
      {"provision_token_wait_ms", 10, 600000, offsetof(struct tc_config, provision_token_wait_ms),
       false},
  };
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (strcmp(it->string, keys[i].key)) continue;
    int v;
    if (cfg_int(it, keys[i].lo, keys[i].hi, &v, where, err, errlen)) return -1;
    if (keys[i].port) *(int *)((char *)c + keys[i].off) = v;
    else *(unsigned *)((char *)c + keys[i].off) = (unsigned)v;
    return 0;
  }
  return 1;
}

/* One key of the tencent object. Returns 0, or -1 with err set. */
static int cfg_key(struct tc_config *c, const cJSON *it, const char *where, char *err,
                   size_t errlen) {
  const char *k = it->string;
  int v = cfg_prov_key(c, it, where, err, errlen);
  if (v <= 0) return v;
  if (!strcmp(k, "module_name"))
    return cfg_string(it, c->module_name, sizeof c->module_name, 1, where, err, errlen);
  if (!strcmp(k, "flash_mb")) {
    if (cfg_int(it, 2, 4, &v, where, err, errlen) || (v != 2 && v != 4))
      return ERR("%s.%s: must be 2 or 4", where, k);
    c->flash_mb = v;
    return 0;
  }
  if (!strcmp(k, "chip")) return cfg_chip(it, c->chip, where, err, errlen);
  if (!strcmp(k, "firmware")) return cfg_firmware(it, c->firmware, sizeof c->firmware), 0;
  if (!strcmp(k, "mac")) return cfg_mac(it, c->mac, where, err, errlen);
  if (!strcmp(k, "fw_version"))
    return cfg_string(it, c->fw_version, sizeof c->fw_version, 1, where, err, errlen);
  if (!strcmp(k, "sdk_version"))
    return cfg_string(it, c->sdk_version, sizeof c->sdk_version, 1, where, err, errlen);
  if (!strcmp(k, "compile_time"))
    return cfg_string(it, c->compile_time, sizeof c->compile_time, 1, where, err, errlen);
  if (!strcmp(k, "mqtt_transport")) return cfg_transport(it, c, where, err, errlen);
  if (!strcmp(k, "mqtt_host")) return cfg_dup(it, &c->mqtt_host, where, err, errlen);
  if (!strcmp(k, "mqtt_port")) return cfg_int(it, 1, 65535, &c->mqtt_port, where, err, errlen);
  if (!strcmp(k, "sdkappid")) return cfg_sdkappid(it, c->sdkappid, where, err, errlen);
  if (!strcmp(k, "ca_file")) return cfg_dup(it, &c->ca_file, where, err, errlen);
  if (!strcmp(k, "sign_method")) return cfg_sign(it, c, where, err, errlen);
  if (!strcmp(k, "connid")) return cfg_connid(it, c->connid, where, err, errlen);
  if (!strcmp(k, "publ_timeout_ms")) {
    if (cfg_int(it, 100, 600000, &v, where, err, errlen)) return -1;
    c->publ_timeout_ms = (unsigned)v;
    return 0;
  }
  if (!strcmp(k, "reconnect_max_ms")) {
    if (cfg_int(it, 1000, 3600000, &v, where, err, errlen)) return -1;
    c->reconnect_max_ms = (unsigned)v;
    return 0;
  }
  if (!strcmp(k, "dynreg_url")) {
    if (cfg_dup(it, &c->dynreg_url, where, err, errlen)) return -1;
    if (strncmp(c->dynreg_url, "https://", 8) && strncmp(c->dynreg_url, "http://", 7))
      return ERR("%s.%s: must be an http:// or https:// URL", where, k);
    return 0;
  }
  if (!strcmp(k, "dynreg_ca_file")) return cfg_dup(it, &c->dynreg_ca_file, where, err, errlen);
  if (!strcmp(k, "dynreg_api")) return cfg_dynreg_api(it, c, where, err, errlen);
  if (!strcmp(k, "ota_ca_file")) return cfg_dup(it, &c->ota_ca_file, where, err, errlen);
  if (!strcmp(k, "ota_read_timeout_ms")) {
    if (cfg_int(it, 1000, 120000, &v, where, err, errlen)) return -1;
    c->ota_read_timeout_ms = (unsigned)v;
    return 0;
  }
  if (!strcmp(k, "gateway_timeout_ms")) {
    if (cfg_int(it, 1000, 60000, &v, where, err, errlen)) return -1;
    c->gateway_timeout_ms = (unsigned)v;
    return 0;
  }
  if (!strcmp(k, "dynreg_timeout_ms")) {
    if (cfg_int(it, 1000, 60000, &v, where, err, errlen)) return -1;
    c->dynreg_timeout_ms = (unsigned)v;
    return 0;
  }
  return ERR("%s.%s: unknown key", where, k);
}

static int tc_parse_config(const cJSON *obj, const char *where, void **out, char *err, size_t errlen) {
  struct tc_config *c = calloc(1, sizeof *c);
  if (!c) return snprintf(err, errlen, "%s: out of memory", where), -1;
  *out = c;
  cfg_defaults(c);
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    int r = vm_esp_config_key(&c->esp, it, where, err, errlen);
    if (r < 0) return -1;
    if (r == 0 && cfg_key(c, it, where, err, errlen)) return -1;
  }
  if (cfg_variant(c, where, err, errlen)) return -1;
  if (c->transport == TC_TRANSPORT_TLS && !c->ca_file)
    return ERR("%s.ca_file: required when mqtt_transport is \"tls\"", where);
  return 0;
}

static void tc_free_config(void *conf) {
  struct tc_config *c = conf;
  vm_esp_config_free(&c->esp);
  free(c->mqtt_host);
  free(c->ca_file);
  free(c->dynreg_url);
  free(c->dynreg_ca_file);
  free(c->ota_ca_file);
  free(c);
}

/* ---- life cycle --------------------------------------------------------- */

static void tc_on_wifi(struct vm_esp *esp, bool up) {
  tc_mqtt_on_wifi((struct tc_state *)esp, up);
}

static int tc_init(struct vm_module *m) {
  struct tc_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  m->dialect_state = s;
  s->m = m;
  s->cfg = m->cfg->dialect_conf;
  const struct tc_variant *v = s->cfg->variant;
  m->at.style = v->comma_splits_quotes ? &tc_style_esp8266 : &tc_style_esp32;
  /* TC tables first (earlier tables win on a duplicate name) */
  vm_at_add_table(&m->at, tc_info_cmds, tc_info_ncmds);
  vm_at_add_table(&m->at, tc_mqtt_cmds, tc_mqtt_ncmds);
  vm_at_add_table(&m->at, tc_dynreg_cmds, tc_dynreg_ncmds);
  vm_at_add_table(&m->at, tc_diag_cmds, tc_diag_ncmds);
  vm_at_add_table(&m->at, tc_gateway_cmds, tc_gateway_ncmds);
  vm_at_add_table(&m->at, tc_subdev_cmds, tc_subdev_ncmds); /* v2.2.0+: tc_power_on() */
  vm_at_add_table(&m->at, tc_ota_cmds, tc_ota_ncmds);
  vm_at_add_table(&m->at, tc_prov_cmds, tc_prov_ncmds);
  vm_esp_init(&s->esp, m, &s->cfg->esp, v->gmr, tc_on_wifi);
  s->esp.chip = v->chip;
  s->esp.core = v->core;
  bool ok = tc_mqtt_init(s) == 0 && tc_dynreg_init(s) == 0 && tc_diag_init(s) == 0 &&
            tc_gateway_init(s) == 0 && tc_ota_init(s) == 0 && tc_prov_init(s) == 0;
  return ok ? 0 : -1;
}

static void tc_power_on(struct vm_module *m) {
  struct tc_state *s = m->dialect_state;
  tc_diag_power_on(s);
  const struct tc_variant *iv = tc_fw_variant(s); /* a self-update may have installed another */
  s->esp.gmr_default = (iv ? iv : s->cfg->variant)->gmr;
  vm_at_enable_table(&m->at, tc_subdev_cmds, tc_subdev_supported(s));
  vm_esp_power_on(&s->esp);
  tc_prov_power_on(s);
}

/* Reset or power loss: what lives in RAM goes (MQTT session, TCMQTTSRV). */
static void tc_power_off(struct vm_module *m) {
  struct tc_state *s = m->dialect_state;
  s->gen++;
  tc_mqtt_power_off(s);
  tc_dynreg_power_off(s);
  tc_diag_power_off(s);
  tc_gateway_power_off(s);
  tc_ota_power_off(s);
  tc_prov_power_off(s);
  vm_esp_power_off(&s->esp);
  s->mqtt_srv[0] = '\0';
  s->fw_downloading = false;
}

static void tc_destroy(struct vm_module *m) {
  struct tc_state *s = m->dialect_state;
  s->gen++;
  tc_mqtt_destroy(s);
  tc_dynreg_destroy(s);
  tc_diag_destroy(s);
  tc_gateway_destroy(s);
  tc_ota_destroy(s);
  tc_prov_destroy(s);
  vm_esp_destroy(&s->esp); /* the module frees s once the loop has closed the handles */
}

/* `status`: the station, the MQTT task, then Wi-Fi provisioning. */
static void tc_status(struct vm_module *m, cJSON *obj) {
  struct tc_state *s = m->dialect_state;
  vm_esp_status(&s->esp, obj);
  tc_mqtt_status(s, obj);
  tc_prov_status(s, obj);
}

/* The dialect's verbs: `smartconfig` (tc_prov.c), then the ESP family's `wifi`. */
static int tc_fault(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  int rc = tc_prov_fault(m->dialect_state, argc, argv, err, errlen);
  return rc == VM_FAULT_UNSUPPORTED ? vm_esp_fault(m, argc, argv, err, errlen) : rc;
}

static int tc_fault_check(const void *conf, int argc, char **argv, char *err, size_t errlen) {
  int rc = tc_prov_fault_check(argc, argv, err, errlen);
  return rc == VM_FAULT_UNSUPPORTED ? vm_esp_fault_check(conf, argc, argv, err, errlen) : rc;
}

const struct vm_dialect vm_dialect_tencent = {
    .name = "tencent",
    .parse_config = tc_parse_config,
    .free_config = tc_free_config,
    .init = tc_init,
    .power_on = tc_power_on,
    .power_off = tc_power_off,
    .destroy = tc_destroy,
    .fault = tc_fault, /* `smartconfig ...`, `wifi down|up` (esp_wifi.c) */
    .fault_check = tc_fault_check,
    .status = tc_status,
};
