/* w800.c - the "w800" dialect: a WinnerMicro W800 running the ESP-AT-derived
 * MQTT AT command set (seed 002), with ESP-AT v3.x behaviour. This file holds
 * the framing (`\r\nERROR\r\n`, an `ERR CODE:` line only after AT+SYSLOG=1, or
 * the W800 framework's `CMD FORMAT ERR` / `CMD PARSE ERR` with
 * w800.error_style "w800"), AT+SYSLOG, the configuration and the power hooks.
 * The MQTT commands are in w8_cmds.c, the session behind them in
 * w8_session.c. Ground truth: shared/reference/w800-me3630-at.md §1-§6, §10. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmodule/json.h"
#include "vmodule/esp.h"
#include "vmodule/module.h"
#include "w800.h"

static const char *const gmr_default[] = {
    "AT version:2.4.0.0(w800sim - W800 - Nov 21 2026 00:00:00)",
    "SDK version:wm_iot_sdk v2.2.1",
    "compile time(w800sim):Nov 21 2026 00:00:00",
    "Bin version:2.4.0(W800)",
    NULL,
};

#define DEFAULT_RECONNECT_MS 10000 /* esp-mqtt MQTT_RECON_DEFAULT_MS */
#define DEFAULT_CONNECT_MS 15000   /* ESP-AT MQTTCONN <timeout_ms> default */
#define DEFAULT_COMMAND_MS 10000   /* "commands answer within 10 s" (seed 002) */

struct w8_state *w8_state_of(struct vm_at *at) {
  return (struct w8_state *)vm_module_of(at)->dialect_state;
}

/* ---- framing ---------------------------------------------------------------- */

/* W800 style: which framework text replaces ERROR. */
static const char *w800_error_text(uint32_t code) {
  uint32_t sub = (code >> 16) & 0xff, ext = code & 0xffff;
  if (sub == 0x03 || sub == 0x09) return W8_CMD_FORMAT_ERR; /* no such command */
  if (sub >= 0x04 && sub <= 0x08) return W8_CMD_PARSE_ERR;
  if (sub == 0x0C) return W8_CMD_PARSE_ERR; /* form the command does not take */
  /* MQTT parameter validation (counts, READ_FAILED, out of range, too long) */
  if (sub == 0x0A && (ext == W8_E_PARAMETER_COUNTS_IS_WRONG ||
                      (ext >= W8_E_LINK_ID_READ_FAILED && ext <= W8_E_CA_ID_VALUE_IS_WRONG) ||
                      (ext >= W8_E_PATH_READ_FAILED && ext <= W8_E_PUBLISH_LENGTH_VALUE_IS_WRONG) ||
                      ext == W8_E_HOSTNAME_VERIFY_FAILED))
    return W8_CMD_PARSE_ERR;
  return W8_ERROR;
}

static void w8_error(struct vm_at *at, uint32_t code) {
  struct w8_state *s = w8_state_of(at);
  if (s->syslog) vm_at_printf(at, W8_ERR_CODE_FMT, code);
  vm_at_puts(at, s->cfg->error_style == W8_STYLE_W800 ? w800_error_text(code) : W8_ERROR);
}

static const struct vm_at_style w8_style = {
    .framing = VM_AT_FRAME_ESP,
    .ok = W8_OK,
    .busy = W8_BUSY,
    .ready = W8_READY,
    .force_restart = W8_FORCE_RESTART,
    .error = w8_error,
};

/* With AT+SYSLOG=1 the busy reply carries its ERR CODE line too. */
static const struct vm_at_style w8_style_syslog = {
    .framing = VM_AT_FRAME_ESP,
    .ok = W8_OK,
    .busy = W8_BUSY_SYSLOG,
    .ready = W8_READY,
    .force_restart = W8_FORCE_RESTART,
    .error = w8_error,
};

static void set_syslog(struct w8_state *s, bool on) {
  s->syslog = on;
  s->m->at.style = on ? &w8_style_syslog : &w8_style;
}

/* ---- AT+SYSLOG (ESP-AT; W800 lacks it, ESP-AT libraries spin on it) ----------- */

static enum vm_at_result syslog_query(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, W8_SYSLOG_QUERY_FMT, w8_state_of(at)->syslog ? 1 : 0);
  return VM_AT_OK;
}

static enum vm_at_result syslog_set(struct vm_at *at, const struct vm_at_args *a) {
  long v;
  if (a->count != 1) return vm_at_fail(at, VM_AT_ERR_PARA_NUM(1, a->count));
  int r = vm_at_arg_int(a, 0, &v);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (r != VM_AT_ARG_OK || v < 0 || v > 1) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  set_syslog(w8_state_of(at), v == 1);
  return VM_AT_OK;
}

static const struct vm_at_cmd w8_sys_cmds[] = {
    {.name = "+SYSLOG", .query = syslog_query, .set = syslog_set},
};

/* ---- configuration ------------------------------------------------------------ */

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int cfg_file(const cJSON *v, char **dst, const char *where, char *err, size_t errlen) {
  if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 4095)
    return ERR("%s.%s: must be a file path", where, v->string);
  if (access(v->valuestring, R_OK) != 0)
    return ERR("%s.%s: cannot read %s", where, v->string, v->valuestring);
  free(*dst);
  *dst = strdup(v->valuestring);
  return *dst ? 0 : ERR("%s: out of memory", where);
}

static int cfg_ms(const cJSON *v, unsigned lo, unsigned hi, unsigned *out, const char *where,
                  char *err, size_t errlen) {
  long long n;
  if (!vm_json_int(v, lo, hi, &n))
    return ERR("%s.%s: must be an integer between %u and %u", where, v->string, lo, hi);
  *out = (unsigned)n;
  return 0;
}

static int cfg_bool(const cJSON *v, bool *out, const char *where, char *err, size_t errlen) {
  if (!cJSON_IsBool(v)) return ERR("%s.%s: must be true or false", where, v->string);
  *out = cJSON_IsTrue(v);
  return 0;
}

static int cfg_key(struct w8_config *c, const cJSON *it, const char *where, char *err,
                   size_t errlen) {
  const char *k = it->string;
  if (!strcmp(k, "error_style")) {
    const char *s = cJSON_IsString(it) ? it->valuestring : "";
    if (!strcmp(s, "esp-at") || !strcmp(s, "esp")) c->error_style = W8_STYLE_ESP;
    else if (!strcmp(s, "w800")) c->error_style = W8_STYLE_W800;
    else return ERR("%s.error_style: must be \"esp-at\" or \"w800\"", where);
    return 0;
  }
  if (!strcmp(k, "ca_file")) return cfg_file(it, &c->ca_file, where, err, errlen);
  if (!strcmp(k, "client_cert")) return cfg_file(it, &c->client_cert, where, err, errlen);
  if (!strcmp(k, "client_key")) return cfg_file(it, &c->client_key, where, err, errlen);
  if (!strcmp(k, "reconnect_interval_ms"))
    return cfg_ms(it, 100, 3600000, &c->reconnect_interval_ms, where, err, errlen);
  if (!strcmp(k, "connect_timeout_ms"))
    return cfg_ms(it, 100, 120000, &c->connect_timeout_ms, where, err, errlen);
  if (!strcmp(k, "command_timeout_ms"))
    return cfg_ms(it, 100, 120000, &c->command_timeout_ms, where, err, errlen);
  if (!strcmp(k, "data_timeout_ms"))
    return cfg_ms(it, 0, 3600000, &c->data_timeout_ms, where, err, errlen);
  if (!strcmp(k, "subrecv_chunk"))
    return cfg_ms(it, 0, 65536, &c->subrecv_chunk, where, err, errlen);
  if (!strcmp(k, "clean_idle_ok")) return cfg_bool(it, &c->clean_idle_ok, where, err, errlen);
  if (!strcmp(k, "full_subscribe_refuse"))
    return cfg_bool(it, &c->full_subscribe_refuse, where, err, errlen);
  if (!strcmp(k, "require_sntp")) return cfg_bool(it, &c->require_sntp, where, err, errlen);
  return ERR("%s.%s: unknown key", where, k);
}

static void w8_free_config(void *conf) {
  struct w8_config *c = conf;
  if (!c) return;
  vm_esp_config_free(&c->esp);
  free(c->ca_file);
  free(c->client_cert);
  free(c->client_key);
  free(c);
}

static int w8_parse_config(const cJSON *obj, const char *where, void **out, char *err,
                           size_t errlen) {
  struct w8_config *c = calloc(1, sizeof *c);
  if (!c) return ERR("%s: out of memory", where);
  *out = c;
  vm_esp_config_defaults(&c->esp);
  c->reconnect_interval_ms = DEFAULT_RECONNECT_MS;
  c->connect_timeout_ms = DEFAULT_CONNECT_MS;
  c->command_timeout_ms = DEFAULT_COMMAND_MS;
  c->require_sntp = true;
  if (obj && !cJSON_IsObject(obj)) return ERR("%s: must be an object", where);
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    int r = vm_esp_config_key(&c->esp, it, where, err, errlen);
    if (r < 0) return -1;
    if (r == 0 && cfg_key(c, it, where, err, errlen) < 0) return -1;
  }
  if (!c->client_cert != !c->client_key)
    return ERR("%s.%s: client_cert and client_key go together", where,
               c->client_cert ? "client_key" : "client_cert");
  return 0;
}

/* ---- life cycle ------------------------------------------------------------------ */

static void w8_on_wifi(struct vm_esp *esp, bool up) {
  w8_mqtt_on_wifi((struct w8_state *)esp, up);
}

static int w8_init(struct vm_module *m) {
  struct w8_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  m->dialect_state = s;
  s->m = m;
  s->cfg = m->cfg->dialect_conf;
  m->at.style = &w8_style;
  vm_esp_init(&s->esp, m, &s->cfg->esp, gmr_default, w8_on_wifi);
  s->esp.chip = VM_ESP_CHIP_W800;
  s->esp.core = 240; /* its AT+GMR claims an esp-at 2.4.0.0 core */
  vm_at_add_table(&m->at, w8_sys_cmds, sizeof w8_sys_cmds / sizeof w8_sys_cmds[0]);
  vm_at_add_table(&m->at, w8_mqtt_cmds, w8_mqtt_ncmds);
  return w8_mqtt_init(s);
}

static void w8_power_on(struct vm_module *m) {
  struct w8_state *s = m->dialect_state;
  set_syslog(s, false);
  vm_esp_power_on(&s->esp);
}

static void w8_power_off(struct vm_module *m) {
  struct w8_state *s = m->dialect_state;
  w8_mqtt_power_off(s);
  vm_esp_power_off(&s->esp);
}

static void w8_destroy(struct vm_module *m) {
  struct w8_state *s = m->dialect_state;
  w8_mqtt_destroy(s);
  vm_esp_destroy(&s->esp);
}

/* `status`: the station, then link 0. */
static void w8_status(struct vm_module *m, cJSON *obj) {
  struct w8_state *s = m->dialect_state;
  vm_esp_status(&s->esp, obj);
  w8_mqtt_status(s, obj);
}

const struct vm_dialect vm_dialect_w800 = {
    .name = "w800",
    .parse_config = w8_parse_config,
    .free_config = w8_free_config,
    .init = w8_init,
    .power_on = w8_power_on,
    .power_off = w8_power_off,
    .destroy = w8_destroy,
    .fault = vm_esp_fault, /* `wifi down|up` (esp_wifi.c) */
    .fault_check = vm_esp_fault_check,
    .status = w8_status,
};
