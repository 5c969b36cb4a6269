/* tc_info.c - identity and module information commands of the tencent
 * dialect: AT+TCDEVINFOSET, AT+TCPRDINFOSET (the secrets are stored, only
 * their BCC checksums are ever printed), AT+TCMODULE, AT+TCVER,
 * AT+TCMODINFOSET, AT+TCRESTORE and AT+TCMQTTSRV (reference §3.1, §3.2,
 * §3.4, §5). Validation order and codes follow the firmware's handlers:
 * state checks first, a non-numeric number is the core ERROR, every other
 * invalid parameter is +CME ERROR:204, and a handler that accepts its
 * parameters prints "OK\r\n" before doing the work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/json.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "tencent.h"

/* ---- persistence --------------------------------------------------------- */

struct tc_modinfo {
  char name[TC_MAX_MODULE_NAME + 1];
  int flash_mb, gpio;
  long base, max, connid;
};

/* Copies the string member key of o into dst (1..cap-1 chars). */
static int load_str(const cJSON *o, const char *key, char *dst, size_t cap) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= cap) return -1;
  strcpy(dst, v->valuestring);
  return 0;
}

static int load_num(const cJSON *o, const char *key, long *dst) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  long long n;
  if (!vm_json_int(v, -VM_JSON_INT_MAX, VM_JSON_INT_MAX, &n)) return -1; /* a damaged flash is not UB */
  *dst = (long)n;
  return 0;
}

int tc_devinfo_load(struct tc_state *s, struct tc_devinfo *d) {
  const cJSON *o = vm_store_get(&s->m->store, TC_STORE_DEVINFO);
  long tls;
  if (!cJSON_IsObject(o) || load_num(o, "tls", &tls) || load_str(o, "pid", d->pid, sizeof d->pid) ||
      load_str(o, "dn", d->dn, sizeof d->dn) || load_str(o, "secret", d->secret, sizeof d->secret) ||
      load_str(o, "region", d->region, sizeof d->region))
    return -1;
  d->tls = (int)tls;
  return 0;
}

static cJSON *devinfo_json(const struct tc_devinfo *d) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "tls", d->tls);
  cJSON_AddStringToObject(o, "pid", d->pid);
  cJSON_AddStringToObject(o, "dn", d->dn);
  cJSON_AddStringToObject(o, "secret", d->secret);
  cJSON_AddStringToObject(o, "region", d->region);
  return o;
}

int tc_prdinfo_load(struct tc_state *s, struct tc_prdinfo *p) {
  const cJSON *o = vm_store_get(&s->m->store, TC_STORE_PRDINFO);
  long tls;
  if (!cJSON_IsObject(o) || load_num(o, "tls", &tls) || load_str(o, "pid", p->pid, sizeof p->pid) ||
      load_str(o, "secret", p->secret, sizeof p->secret) || load_str(o, "dn", p->dn, sizeof p->dn) ||
      load_str(o, "region", p->region, sizeof p->region))
    return -1;
  p->tls = (int)tls;
  return 0;
}

static cJSON *prdinfo_json(const struct tc_prdinfo *p) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "tls", p->tls);
  cJSON_AddStringToObject(o, "pid", p->pid);
  cJSON_AddStringToObject(o, "secret", p->secret);
  cJSON_AddStringToObject(o, "dn", p->dn);
  cJSON_AddStringToObject(o, "region", p->region);
  return o;
}

/* The stored module info, or the firmware defaults (name and flash size
 * from the config, the MCU OTA area from the variant) when none was ever
 * written. */
static void modinfo_load(struct tc_state *s, struct tc_modinfo *mi) {
  snprintf(mi->name, sizeof mi->name, "%s", s->cfg->module_name);
  mi->flash_mb = s->cfg->flash_mb;
  mi->gpio = 5;
  mi->base = s->cfg->variant->ota_base;
  mi->max = s->cfg->variant->ota_max;
  mi->connid = 1;
  const cJSON *o = vm_store_get(&s->m->store, TC_STORE_MODINFO);
  struct tc_modinfo t;
  long flash, gpio;
  if (!cJSON_IsObject(o) || load_str(o, "name", t.name, sizeof t.name) ||
      load_num(o, "flash", &flash) || load_num(o, "gpio", &gpio) || load_num(o, "base", &t.base) ||
      load_num(o, "max", &t.max) || load_num(o, "connid", &t.connid))
    return;
  t.flash_mb = (int)flash;
  t.gpio = (int)gpio;
  *mi = t;
}

long tc_ota_area_max(struct tc_state *s) {
  struct tc_modinfo mi;
  modinfo_load(s, &mi);
  return mi.max;
}

static cJSON *modinfo_json(const struct tc_modinfo *mi) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", mi->name);
  cJSON_AddNumberToObject(o, "flash", mi->flash_mb);
  cJSON_AddNumberToObject(o, "gpio", mi->gpio);
  cJSON_AddNumberToObject(o, "base", (double)mi->base);
  cJSON_AddNumberToObject(o, "max", (double)mi->max);
  cJSON_AddNumberToObject(o, "connid", (double)mi->connid);
  return o;
}

/* A set command waiting for its flash write: the result line is printed only
 * once the write is durable (or failed: FAIL,207). */
struct tc_commit {
  struct tc_state *s;
  unsigned gen;
  const char *ok, *fail_fmt;
};

static void commit_done(void *data, int status) {
  struct tc_commit *c = data;
  struct tc_state *s = c->s;
  struct vm_at *at = &s->m->at;
  if (c->gen == s->gen && vm_at_is_pending(at)) {
    if (status < 0) {
      vm_log_error(s->m->name, "flash write failed: %s", strerror(-status));
      vm_at_printf(at, c->fail_fmt, TC_E_FLASH);
    } else {
      vm_at_puts(at, c->ok);
    }
    vm_at_complete(at, VM_AT_DONE);
  }
  free(c);
}

/* Stores val under key (NULL when unchanged: nothing to write) and finishes
 * the command with ok / fail_fmt. */
static enum vm_at_result persist(struct vm_at *at, const char *key, cJSON *val, const char *ok,
                                 const char *fail_fmt) {
  struct tc_state *s = tc_state_of(at);
  if (!val) {
    vm_at_puts(at, ok);
    return VM_AT_DONE;
  }
  struct tc_commit *c = malloc(sizeof *c);
  if (!c) {
    cJSON_Delete(val);
    vm_at_printf(at, fail_fmt, TC_E_MEM);
    return VM_AT_DONE;
  }
  *c = (struct tc_commit){.s = s, .gen = s->gen, .ok = ok, .fail_fmt = fail_fmt};
  vm_store_put(&s->m->store, key, val);
  vm_store_commit(&s->m->store, commit_done, c);
  return VM_AT_PENDING;
}

enum vm_at_result tc_devinfo_store(struct vm_at *at, const struct tc_devinfo *d, const char *ok,
                                   const char *fail_fmt) {
  return persist(at, TC_STORE_DEVINFO, devinfo_json(d), ok, fail_fmt);
}

/* ---- parameter helpers ----------------------------------------------------- */

/* String parameter i of 1..max bytes. Returns 0 or -1 (the firmware's 204). */
static int str_param(const struct vm_at_args *a, int i, size_t max, const char **out) {
  size_t n;
  if (vm_at_arg_str(a, i, out, &n) != VM_AT_ARG_OK || n == 0 || n > max) return -1;
  return 0;
}

/* <tls_mode 1>,"<a>","<b>","<c>"[,"<region>"], the shape DEVINFOSET and
 * PRDINFOSET share (max: the limits of a, b, c). Returns 0 when valid, or -1
 * with *r set to the firmware's reply (core ERROR or +CME ERROR:204). */
static int identity_params(struct vm_at *at, const struct vm_at_args *a, const size_t max[3],
                           const char *v[3], const char **region, enum vm_at_result *r) {
  long tls;
  *region = TC_DEFAULT_REGION;
  if (vm_at_arg_int(a, 0, &tls) != VM_AT_ARG_OK) {
    *r = vm_at_fail(at, TC_ERR_TYPE);
    return -1;
  }
  int cnt = 1;
  bool ok = tls == 1;
  for (; ok && cnt < 4; cnt++) ok = str_param(a, cnt, max[cnt - 1], &v[cnt - 1]) == 0;
  if (ok && cnt < a->count) ok = str_param(a, cnt++, TC_MAX_REGION, region) == 0;
  if (!ok || cnt != a->count) {
    *r = tc_cme(at, TC_E_PARA);
    return -1;
  }
  return 0;
}

/* Common state gate of the setters: MQTT task running 208, downloading 200. */
int tc_setter_gate(struct vm_at *at) {
  struct tc_state *s = tc_state_of(at);
  if (tc_mqtt_task_running(s)) return TC_E_STATE;
  if (s->fw_downloading) return TC_E_DEALING;
  return 0;
}

/* ---- AT+TCDEVINFOSET ----------------------------------------------------- */

static enum vm_at_result devinfo_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_DEVINFO_TEST);
  return VM_AT_OK;
}

static enum vm_at_result devinfo_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_devinfo d;
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  if (tc_devinfo_load(s, &d)) return tc_cme(at, TC_E_FLASH);
  vm_at_printf(at, TC_DEVINFO_QUERY_FMT, d.tls, d.pid, d.dn, tc_bcc(d.secret), d.region);
  return VM_AT_OK;
}

/* AT+TCDEVINFOSET=<tls_mode>,"<pid>","<dn>","<secret>"[,"<region>"] */
static enum vm_at_result devinfo_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  static const size_t max[3] = {TC_MAX_PID, TC_MAX_DN, TC_MAX_DEV_SECRET};
  const char *v[3], *region;
  enum vm_at_result r;
  if (identity_params(at, a, max, v, &region, &r)) return r;
  vm_at_puts(at, TC_HANDLER_OK);

  struct tc_devinfo d = {.tls = 1}, old;
  strcpy(d.pid, v[0]);
  strcpy(d.dn, v[1]);
  strcpy(d.secret, v[2]);
  strcpy(d.region, region);
  bool same = tc_devinfo_load(s, &old) == 0 && old.tls == d.tls && !strcmp(old.pid, d.pid) &&
              !strcmp(old.dn, d.dn) && !strcmp(old.secret, d.secret) && !strcmp(old.region, d.region);
  vm_log_info(s->m->name, "device info %s: product %s, device %s, region %s",
              same ? "unchanged" : "stored", d.pid, d.dn, d.region);
  r = persist(at, TC_STORE_DEVINFO, same ? NULL : devinfo_json(&d), TC_DEVINFO_SET_OK,
              TC_DEVINFO_SET_FAIL_FMT);
  memset(&d, 0, sizeof d);
  memset(&old, 0, sizeof old);
  return r;
}

/* ---- AT+TCPRDINFOSET ----------------------------------------------------- */

static enum vm_at_result prdinfo_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_PRDINFO_TEST);
  return VM_AT_OK;
}

static enum vm_at_result prdinfo_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_prdinfo p;
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  if (tc_prdinfo_load(s, &p)) return tc_cme(at, TC_E_FLASH);
  vm_at_printf(at, TC_PRDINFO_QUERY_FMT, p.tls, p.pid, tc_bcc(p.secret), p.dn, p.region);
  return VM_AT_OK;
}

/* AT+TCPRDINFOSET=<tls_mode>,"<pid>","<product_secret>","<dn>"[,"<region>"] */
static enum vm_at_result prdinfo_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  static const size_t max[3] = {TC_MAX_PID, TC_MAX_PRD_SECRET, TC_MAX_DN};
  const char *v[3], *region;
  enum vm_at_result r;
  if (identity_params(at, a, max, v, &region, &r)) return r;
  vm_at_puts(at, TC_HANDLER_OK);

  struct tc_prdinfo p = {.tls = 1}, old;
  strcpy(p.pid, v[0]);
  strcpy(p.secret, v[1]);
  strcpy(p.dn, v[2]);
  strcpy(p.region, region);
  bool same = tc_prdinfo_load(s, &old) == 0 && old.tls == p.tls && !strcmp(old.pid, p.pid) &&
              !strcmp(old.secret, p.secret) && !strcmp(old.dn, p.dn) && !strcmp(old.region, p.region);
  vm_log_info(s->m->name, "product info %s: product %s, device %s, region %s",
              same ? "unchanged" : "stored", p.pid, p.dn, p.region);
  r = persist(at, TC_STORE_PRDINFO, same ? NULL : prdinfo_json(&p), TC_PRDINFO_SET_OK,
              TC_PRDINFO_SET_FAIL_FMT);
  memset(&p, 0, sizeof p);
  memset(&old, 0, sizeof old);
  return r;
}

/* ---- AT+TCMODULE / AT+TCVER ------------------------------------------------ */

static enum vm_at_result module_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_modinfo mi;
  modinfo_load(s, &mi);
  vm_at_printf(at, TC_MODULE_FMT, mi.name, tc_fw_version(s), s->cfg->mac, s->cfg->compile_time,
               mi.flash_mb);
  return VM_AT_OK;
}

static enum vm_at_result ver_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  const struct tc_config *c = s->cfg;
  const struct tc_variant *iv = tc_fw_variant(s);
  bool own = !iv || iv == c->variant; /* explicit config strings count for the configured build */
  const char *hash = own ? c->variant->fw_hash : iv->fw_hash;
  const char *sdk = own ? c->sdk_version : iv->sdk_version;
  const char *compiled = own ? c->compile_time : iv->compile_time;
  if (hash)
    vm_at_printf(at, TC_VER_FMT, tc_fw_version(s), hash, sdk, compiled);
  else
    vm_at_printf(at, TC_VER_V21_FMT, tc_fw_version(s), sdk, compiled);
  return VM_AT_OK;
}

/* ---- AT+TCMODINFOSET ------------------------------------------------------- */

static enum vm_at_result modinfo_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_MODINFO_TEST);
  return VM_AT_OK;
}

static enum vm_at_result modinfo_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_modinfo mi;
  modinfo_load(tc_state_of(at), &mi);
  vm_at_printf(at, TC_MODINFO_QUERY_FMT, mi.name, mi.flash_mb, mi.gpio, mi.base, mi.max, mi.connid);
  return VM_AT_OK;
}

/* AT+TCMODINFOSET="<name>",<flash 2|4>,<gpio>,<fw base>,<fw max>,<connid> */
static enum vm_at_result modinfo_set(struct vm_at *at, const struct vm_at_args *a) {
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  if (a->count != 6) return vm_at_fail(at, TC_ERR_COUNT(6, a->count));
  const char *name;
  long flash, gpio, base, max, connid;
  if (str_param(a, 0, TC_MAX_MODULE_NAME, &name)) return tc_cme(at, TC_E_PARA);
  if (vm_at_arg_int(a, 1, &flash) != VM_AT_ARG_OK) return vm_at_fail(at, TC_ERR_TYPE);
  if (flash != 2 && flash != 4) return tc_cme(at, TC_E_PARA);
  if (vm_at_arg_int(a, 2, &gpio) != VM_AT_ARG_OK) return vm_at_fail(at, TC_ERR_TYPE);
  if (gpio < 0 || gpio > 16) return tc_cme(at, TC_E_PARA); /* ESP8266 GPIO 0..16 */
  if (vm_at_arg_int(a, 3, &base) != VM_AT_ARG_OK) return vm_at_fail(at, TC_ERR_TYPE);
  if (base % TC_FLASH_SECTOR || base < TC_OTA_FW_START || base > 0x7fffffffL)
    return tc_cme(at, TC_E_PARA);
  if (vm_at_arg_int(a, 4, &max) != VM_AT_ARG_OK) return vm_at_fail(at, TC_ERR_TYPE);
  if (max < 0 || max > 0x7fffffffL || (flash == 2 && max > TC_OTA_FW_MAX_2MB))
    return tc_cme(at, TC_E_PARA);
  if (vm_at_arg_int(a, 5, &connid) != VM_AT_ARG_OK) return vm_at_fail(at, TC_ERR_TYPE);
  if (connid < 0 || connid > 0x7fffffffL) return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);

  struct tc_modinfo mi = {.flash_mb = (int)flash, .gpio = (int)gpio, .base = base, .max = max,
                          .connid = connid};
  strcpy(mi.name, name);
  return persist(at, TC_STORE_MODINFO, modinfo_json(&mi), TC_MODINFO_SET_OK, TC_MODINFO_SET_FAIL_FMT);
}

/* ---- AT+TCRESTORE ----------------------------------------------------------- */

static enum vm_at_result restore_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_RESTORE_TEST);
  return VM_AT_OK;
}

struct tc_restore {
  struct tc_state *s;
  unsigned gen;
};

static void restore_written(void *data, int status) {
  struct tc_restore *r = data;
  struct tc_state *s = r->s;
  if (r->gen == s->gen && vm_at_is_pending(&s->m->at)) {
    if (status < 0) vm_log_error(s->m->name, "flash erase failed: %s", strerror(-status));
    vm_at_complete(&s->m->at, VM_AT_DONE);
    vm_module_reboot(s->m);
  }
  free(r);
}

/* Erases device info, product info, the OTA firmware record and the
 * sub-device lists, then reboots. Module info and the Wi-Fi NVS stay (§3.4). */
static enum vm_at_result restore_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  int gate = tc_setter_gate(at);
  if (gate) return tc_cme(at, gate);
  struct tc_restore *r = malloc(sizeof *r);
  if (!r) return tc_cme(at, TC_E_MEM);
  vm_at_puts(at, TC_HANDLER_OK);
  *r = (struct tc_restore){.s = s, .gen = s->gen};
  vm_log_info(s->m->name, "TCRESTORE: device, product and firmware info erased; rebooting");
  vm_store_put(&s->m->store, TC_STORE_DEVINFO, NULL);
  vm_store_put(&s->m->store, TC_STORE_PRDINFO, NULL);
  vm_store_put(&s->m->store, TC_STORE_FWINFO, NULL);
  tc_subdev_erase(s); /* v2.2.0: the sub-device lists too */
  vm_store_commit(&s->m->store, restore_written, r);
  return VM_AT_PENDING;
}

/* ---- AT+TCMQTTSRV ----------------------------------------------------------- */

static enum vm_at_result mqttsrv_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, TC_MQTTSRV_TEST);
  return VM_AT_OK;
}

static enum vm_at_result mqttsrv_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  vm_at_printf(at, TC_MQTTSRV_QUERY_FMT, s->mqtt_srv[0] ? s->mqtt_srv : TC_MQTTSRV_UNSET);
  return VM_AT_OK;
}

/* AT+TCMQTTSRV="<host or IP>": RAM only; the firmware keeps at most 63 chars. */
static enum vm_at_result mqttsrv_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  if (tc_mqtt_task_running(s)) return tc_cme(at, TC_E_STATE);
  const char *host;
  if (vm_at_arg_str(a, 0, &host, NULL) != VM_AT_ARG_OK || a->count != 1) return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);
  if (!host[0]) {
    vm_at_puts(at, TC_MQTTSRV_SET_FAIL);
    return VM_AT_DONE;
  }
  snprintf(s->mqtt_srv, sizeof s->mqtt_srv, "%s", host);
  vm_log_info(s->m->name, "MQTT server set to %s", s->mqtt_srv);
  vm_at_puts(at, TC_MQTTSRV_SET_OK);
  return VM_AT_DONE;
}

/* Secret parameters (redacted in traces): TCDEVINFOSET's device secret
 * (index 3), TCPRDINFOSET's product secret (index 2). */
const struct vm_at_cmd tc_info_cmds[] = {
    {.name = "+TCMODULE", .exec = module_exec},
    {.name = "+TCVER", .exec = ver_exec},
    {.name = "+TCRESTORE", .test = restore_test, .exec = restore_exec},
    {.name = "+TCMODINFOSET", .test = modinfo_test, .query = modinfo_query, .set = modinfo_set},
    {.name = "+TCMQTTSRV", .test = mqttsrv_test, .query = mqttsrv_query, .set = mqttsrv_set},
    {.name = "+TCPRDINFOSET", .test = prdinfo_test, .query = prdinfo_query, .set = prdinfo_set,
     .secret_mask = 1u << 2},
    {.name = "+TCDEVINFOSET", .test = devinfo_test, .query = devinfo_query, .set = devinfo_set,
     .secret_mask = 1u << 3},
};
const size_t tc_info_ncmds = sizeof tc_info_cmds / sizeof tc_info_cmds[0];

/* ---- for the other command files (tencent.h) -------------------------------- */

int tc_load_str(const cJSON *o, const char *key, char *dst, size_t cap) {
  return load_str(o, key, dst, cap);
}

int tc_str_param(const struct vm_at_args *a, int i, size_t max, const char **out) {
  return str_param(a, i, max, out);
}

enum vm_at_result tc_persist(struct vm_at *at, const char *key, cJSON *val, const char *ok,
                             const char *fail_fmt) {
  return persist(at, key, val, ok, fail_fmt);
}
