/* me3630.c - the "me3630" dialect: a Gosuncn ME3630 LTE module (Qualcomm
 * based, ZTE Welink lineage) with the Aliyun MQTT supplementary commands of
 * seed 004. This file holds the framing (27.007 verbose result codes, the
 * AT+CMEE error styles), the configuration and the power hooks; the command
 * families live beside it (me_cell.c, me_data.c, me_auth.c, me_cloud.c).
 * Ground truth: shared/reference/w800-me3630-at.md §7-§10. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/fault.h"
#include "vmodule/json.h"
#include "vmodule/module.h"
#include "me3630.h"

/* ---- helpers shared by the command files -------------------------------- */

struct me_state *me_state_of(struct vm_at *at) {
  return (struct me_state *)vm_module_of(at)->dialect_state;
}

void me_line(struct vm_at *at, const char *text) { vm_at_printf(at, ME_LINE_FMT, text); }

static const char *cme_text(int code) {
  switch (code) {
  case ME_E_NOT_ALLOWED: return "operation not allowed";
  case ME_E_NOT_SUPPORTED: return "operation not supported";
  case ME_E_SIM_NOT_INSERTED: return "SIM not inserted";
  case ME_E_SIM_PIN: return "SIM PIN required";
  case ME_E_BAD_PASSWORD: return "incorrect password";
  case ME_E_NO_NETWORK: return "no network service";
  case ME_E_BAD_PARAM: return "incorrect parameters";
  default: return "unknown";
  }
}

static void cme_format(struct vm_at *at, int code, char *buf, size_t cap) {
  int mode = me_state_of(at)->cmee;
  if (mode == 0) snprintf(buf, cap, "%s", ME_ERROR);
  else if (mode == 2) snprintf(buf, cap, ME_CME_TEXT_FMT, cme_text(code));
  else snprintf(buf, cap, ME_CME_FMT, code);
}

enum vm_at_result me_cme(struct vm_at *at, int code) {
  char buf[64];
  cme_format(at, code, buf, sizeof buf);
  vm_at_puts(at, buf);
  return VM_AT_DONE;
}

void me_cme_urc(struct vm_at *at, int code) {
  char buf[64];
  cme_format(at, code, buf, sizeof buf);
  vm_at_urc(at, buf, strlen(buf));
}

int me_text_param(const struct vm_at_args *a, int i, size_t max, const char **out) {
  size_t n;
  if (vm_at_arg_text(a, i, out, &n) != VM_AT_ARG_OK || n == 0 || n > max) return -1;
  return 0;
}

/* ---- framing --------------------------------------------------------------- */

/* Unknown commands, wrong forms and syntax errors are a plain ERROR on
 * Qualcomm-based modules whatever AT+CMEE says (§7.1, §8). */
static void me_error(struct vm_at *at, uint32_t code) {
  (void)code;
  vm_at_puts(at, ME_ERROR);
}

static const struct vm_at_style me_style = {
    .framing = VM_AT_FRAME_V250,
    .ok = ME_OK,
    .busy = ME_BUSY,
    .ready = NULL, /* no boot banner: drivers wait, then poll with AT (§7); see boot_urcs */
    .case_insensitive = true,
    .max_line = ME_MAX_LINE,
    .error = me_error,
};

/* ---- configuration --------------------------------------------------------- */

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

struct cfg_ctx {
  const char *where;
  char *err;
  size_t errlen;
};

static int cfg_fail(const struct cfg_ctx *x, const cJSON *v, const char *what) {
  snprintf(x->err, x->errlen, "%s.%s: %s", x->where, v->string, what);
  return -1;
}

static int cfg_str(const struct cfg_ctx *x, const cJSON *v, char *dst, size_t cap, size_t min) {
  if (!cJSON_IsString(v) || strpbrk(v->valuestring, "\r\n") || strlen(v->valuestring) < min ||
      strlen(v->valuestring) >= cap) {
    char what[64];
    snprintf(what, sizeof what, "must be a single-line string of %zu to %zu characters", min, cap - 1);
    return cfg_fail(x, v, what);
  }
  strcpy(dst, v->valuestring);
  return 0;
}

static int cfg_digits(const struct cfg_ctx *x, const cJSON *v, char *dst, size_t min, size_t max) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  size_t n = strlen(s);
  bool ok = n >= min && n <= max && strspn(s, "0123456789") == n;
  if (!ok) {
    char what[64];
    snprintf(what, sizeof what, "must be a string of %zu to %zu digits", min, max);
    return cfg_fail(x, v, what);
  }
  strcpy(dst, s);
  return 0;
}

static int cfg_dup(const struct cfg_ctx *x, const cJSON *v, char **dst) {
  if (cJSON_IsNull(v)) {
    free(*dst);
    *dst = NULL;
    return 0;
  }
  if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) > 255 ||
      strpbrk(v->valuestring, "\r\n"))
    return cfg_fail(x, v, "must be a single-line string of 1 to 255 characters (or null)");
  free(*dst);
  *dst = strdup(v->valuestring);
  return *dst ? 0 : cfg_fail(x, v, "out of memory");
}

static int cfg_int(const struct cfg_ctx *x, const cJSON *v, int lo, int hi, int *out) {
  long long n;
  if (!vm_json_int(v, lo, hi, &n)) {
    char what[80];
    snprintf(what, sizeof what, "must be an integer between %d and %d", lo, hi);
    return cfg_fail(x, v, what);
  }
  *out = (int)n;
  return 0;
}

static int cfg_ms(const struct cfg_ctx *x, const cJSON *v, int lo, unsigned *out) {
  int n;
  if (cfg_int(x, v, lo, 3600000, &n)) return -1;
  *out = (unsigned)n;
  return 0;
}

static int cfg_bool(const struct cfg_ctx *x, const cJSON *v, bool *out) {
  if (!cJSON_IsBool(v)) return cfg_fail(x, v, "must be true or false");
  *out = cJSON_IsTrue(v);
  return 0;
}

/* One of names[] (NULL-terminated); its index in *out. */
static int cfg_enum(const struct cfg_ctx *x, const cJSON *v, const char *const *names, int *out) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  char what[160] = "must be one of";
  for (int i = 0; names[i]; i++) {
    if (!strcmp(s, names[i])) {
      *out = i;
      return 0;
    }
    size_t n = strlen(what);
    snprintf(what + n, sizeof what - n, "%s \"%s\"", i ? "," : "", names[i]);
  }
  return cfg_fail(x, v, what);
}

static bool is_ipv4(const char *s) {
  unsigned a, b, c, d;
  char tail;
  return strlen(s) <= 15 && sscanf(s, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4 && a < 256 &&
         b < 256 && c < 256 && d < 256;
}

static int cfg_ipv4(const struct cfg_ctx *x, const cJSON *v, char *dst) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  if (!is_ipv4(s)) return cfg_fail(x, v, "must be an IPv4 address");
  strcpy(dst, s);
  return 0;
}

static int cfg_hex(const struct cfg_ctx *x, const cJSON *v, char *dst, size_t max) {
  const char *s = cJSON_IsString(v) ? v->valuestring : "";
  size_t n = strlen(s);
  if (n < 1 || n > max || strspn(s, "0123456789ABCDEFabcdef") != n)
    return cfg_fail(x, v, "must be a string of hex digits");
  strcpy(dst, s);
  return 0;
}

static int cfg_boot_urcs(const struct cfg_ctx *x, const cJSON *v, struct me_config *c) {
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > ME_MAX_BOOT_URCS)
    return cfg_fail(x, v, "must be an array of at most 4 strings");
  c->n_boot_urcs = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, v) {
    const char *s = cJSON_IsString(it) ? it->valuestring : NULL;
    if (!s || !*s || strlen(s) >= sizeof c->boot_urcs[0] || strpbrk(s, "\r\n"))
      return cfg_fail(x, v, "must hold single-line strings of 1 to 63 characters");
    strcpy(c->boot_urcs[c->n_boot_urcs++], s);
  }
  return 0;
}

static int cfg_sim(const struct cfg_ctx *x, const cJSON *obj, struct me_config *c) {
  if (!cJSON_IsObject(obj)) return cfg_fail(x, obj, "must be an object");
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    int r;
    if (!strcmp(k, "present")) r = cfg_bool(x, it, &c->sim_present);
    else if (!strcmp(k, "pin")) r = cJSON_IsNull(it) ? (c->pin[0] = '\0', 0) : cfg_digits(x, it, c->pin, 4, 8);
    else if (!strcmp(k, "iccid")) r = cfg_digits(x, it, c->iccid, 19, 20);
    else if (!strcmp(k, "imsi")) r = cfg_digits(x, it, c->imsi, 15, 15);
    else r = cfg_fail(x, it, "unknown key");
    if (r) return -1;
  }
  return 0;
}

static int cfg_dns(const struct cfg_ctx *x, const cJSON *v, struct me_config *c) {
  const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, 1);
  if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b) ||
      !is_ipv4(a->valuestring) || !is_ipv4(b->valuestring))
    return cfg_fail(x, v, "must be an array of two IPv4 addresses");
  strcpy(c->dns1, a->valuestring);
  strcpy(c->dns2, b->valuestring);
  return 0;
}

static int cfg_network(const struct cfg_ctx *x, const cJSON *obj, struct me_config *c) {
  static const char *const rats[] = {"LTE", "UMTS", "GSM", NULL};
  static const char *const duplex[] = {"FDD", "TDD", NULL};
  if (!cJSON_IsObject(obj)) return cfg_fail(x, obj, "must be an object");
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    int r, n = 0;
    if (!strcmp(k, "registration_ms")) r = cfg_ms(x, it, 0, &c->registration_ms);
    else if (!strcmp(k, "available")) r = cfg_bool(x, it, &c->net_available);
    else if (!strcmp(k, "roaming")) r = cfg_bool(x, it, &c->roaming);
    else if (!strcmp(k, "operator")) r = cfg_str(x, it, c->operator_name, sizeof c->operator_name, 1);
    else if (!strcmp(k, "csq")) r = cfg_int(x, it, 0, 31, &c->csq);
    else if (!strcmp(k, "rat")) r = cfg_enum(x, it, rats, &n), c->rat = (enum me_rat)n;
    else if (!strcmp(k, "duplex")) r = cfg_enum(x, it, duplex, &n), c->tdd = n == 1;
    else if (!strcmp(k, "lac")) r = cfg_hex(x, it, c->lac, 4);
    else if (!strcmp(k, "cell_id")) r = cfg_hex(x, it, c->cell_id, 8);
    else if (!strcmp(k, "ip")) r = cfg_ipv4(x, it, c->ip);
    else if (!strcmp(k, "gateway")) r = cfg_ipv4(x, it, c->gateway);
    else if (!strcmp(k, "dns")) r = cfg_dns(x, it, c);
    else if (!strcmp(k, "call_ms")) r = cfg_ms(x, it, 0, &c->call_ms);
    else r = cfg_fail(x, it, "unknown key");
    if (r) return -1;
  }
  return 0;
}

static int cfg_signmethod(const struct cfg_ctx *x, const cJSON *v, struct me_config *c) {
  const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
  if (vm_aliyun_signmethod_parse(s, &c->signmethod) < 0)
    return cfg_fail(x, v, "must be \"hmacsha1\", \"hmacsha256\" or \"hmacmd5\"");
  return 0;
}

static int cfg_timestamp(const struct cfg_ctx *x, const cJSON *v, struct me_config *c) {
  if (cJSON_IsNull(v)) {
    c->timestamp[0] = '\0';
    return 0;
  }
  return cfg_digits(x, v, c->timestamp, 1, 20);
}

/* Keys of the "aliyun" object that are strings or numbers. */
static int cfg_aliyun_key(const struct cfg_ctx *x, const cJSON *it, struct me_config *c) {
  static const char *const modes[] = {"direct", "https", NULL};
  static const char *const transports[] = {"tcp", "tls", NULL};
  const char *k = it->string;
  int n = 0, r;
  if (!strcmp(k, "auth_mode")) r = cfg_enum(x, it, modes, &n), c->auth_mode = (enum me_auth_mode)n;
  else if (!strcmp(k, "auth_url")) r = cfg_dup(x, it, &c->auth_url);
  else if (!strcmp(k, "auth_ca_file")) r = cfg_dup(x, it, &c->auth_ca_file);
  else if (!strcmp(k, "auth_ms")) r = cfg_ms(x, it, 0, &c->auth_ms);
  else if (!strcmp(k, "auth_timeout_ms")) r = cfg_ms(x, it, 100, &c->auth_timeout_ms);
  else if (!strcmp(k, "mqtt_host")) r = cfg_dup(x, it, &c->mqtt_host);
  else if (!strcmp(k, "mqtt_port")) r = cfg_int(x, it, 1, 65535, &c->mqtt_port);
  else if (!strcmp(k, "region")) r = cfg_str(x, it, c->region, sizeof c->region, 1);
  else if (!strcmp(k, "transport")) r = cfg_enum(x, it, transports, &n), c->transport = (enum me_transport)n;
  else if (!strcmp(k, "ca_file")) r = cfg_dup(x, it, &c->ca_file);
  else if (!strcmp(k, "signmethod")) r = cfg_signmethod(x, it, c);
  else if (!strcmp(k, "securemode")) r = cJSON_IsNull(it) ? (c->securemode = ME_SECUREMODE_AUTO, 0)
                                                           : cfg_int(x, it, -1, 8, &c->securemode);
  else if (!strcmp(k, "client_id")) r = cfg_dup(x, it, &c->client_id);
  else if (!strcmp(k, "timestamp")) r = cfg_timestamp(x, it, c);
  else if (!strcmp(k, "keepalive")) r = cfg_int(x, it, 30, 1200, &c->keepalive);
  else if (!strcmp(k, "connect_timeout_ms")) r = cfg_ms(x, it, 100, &c->connect_timeout_ms);
  else if (!strcmp(k, "ack_timeout_ms")) r = cfg_ms(x, it, 100, &c->ack_timeout_ms);
  else if (!strcmp(k, "pub_data_timeout_ms")) r = cfg_ms(x, it, 100, &c->pub_data_timeout_ms);
  else if (!strcmp(k, "urc_space")) r = cfg_bool(x, it, &c->urc_space);
  else if (!strcmp(k, "unsuback_urc")) r = cfg_bool(x, it, &c->unsuback_urc);
  else if (!strcmp(k, "numeric_length")) r = cfg_bool(x, it, &c->numeric_length);
  else if (!strcmp(k, "conn_lost_urc")) r = cfg_dup(x, it, &c->conn_lost_urc);
  else r = cfg_fail(x, it, "unknown key");
  return r;
}

static int cfg_aliyun(const struct cfg_ctx *x, const cJSON *obj, struct me_config *c) {
  if (!cJSON_IsObject(obj)) return cfg_fail(x, obj, "must be an object");
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    if (cfg_aliyun_key(x, it, c)) return -1;
  }
  return 0;
}

static void cfg_defaults(struct me_config *c) {
  strcpy(c->manufacturer, ME_DEFAULT_MANUFACTURER);
  strcpy(c->model, ME_DEFAULT_MODEL);
  strcpy(c->revision, ME_DEFAULT_REVISION);
  strcpy(c->imei, ME_DEFAULT_IMEI);
  c->cmee = 1;
  c->sim_present = true;
  strcpy(c->iccid, ME_DEFAULT_ICCID);
  strcpy(c->imsi, ME_DEFAULT_IMSI);
  c->registration_ms = 3000;
  c->net_available = true;
  strcpy(c->operator_name, "CHN-UNICOM");
  c->csq = 24;
  c->rat = ME_RAT_LTE;
  strcpy(c->lac, "2A5F");
  strcpy(c->cell_id, "0B7C1D2");
  strcpy(c->ip, "10.64.12.34");
  strcpy(c->gateway, "10.64.12.35");
  strcpy(c->dns1, "210.21.196.6");
  strcpy(c->dns2, "221.5.88.88");
  c->call_ms = 500;
  c->auth_mode = ME_AUTH_DIRECT;
  c->auth_ms = 200;
  c->auth_timeout_ms = 10000;
  c->mqtt_port = 1883;
  strcpy(c->region, VM_ALIYUN_DEFAULT_REGION);
  c->transport = ME_TRANSPORT_TLS;
  c->signmethod = VM_ALIYUN_HMACSHA256;
  c->securemode = ME_SECUREMODE_AUTO;
  strcpy(c->timestamp, VM_ALIYUN_SDK_TIMESTAMP);
  c->keepalive = 120;
  c->connect_timeout_ms = 30000;
  c->ack_timeout_ms = 10000;
  c->pub_data_timeout_ms = 10000;
  c->unsuback_urc = true;
  c->numeric_length = true;
}

static int cfg_top_key(const struct cfg_ctx *x, const cJSON *it, struct me_config *c) {
  const char *k = it->string;
  if (!strcmp(k, "manufacturer")) return cfg_str(x, it, c->manufacturer, sizeof c->manufacturer, 1);
  if (!strcmp(k, "model")) return cfg_str(x, it, c->model, sizeof c->model, 1);
  if (!strcmp(k, "revision")) return cfg_str(x, it, c->revision, sizeof c->revision, 1);
  if (!strcmp(k, "imei")) return cfg_digits(x, it, c->imei, 15, 15);
  if (!strcmp(k, "cmee")) return cfg_int(x, it, 0, 2, &c->cmee);
  if (!strcmp(k, "boot_urcs")) return cfg_boot_urcs(x, it, c);
  struct cfg_ctx sub = *x;
  char where[160];
  snprintf(where, sizeof where, "%s.%s", x->where, k);
  sub.where = where;
  if (!strcmp(k, "sim")) return cfg_sim(&sub, it, c);
  if (!strcmp(k, "network")) return cfg_network(&sub, it, c);
  if (!strcmp(k, "aliyun")) return cfg_aliyun(&sub, it, c);
  return cfg_fail(x, it, "unknown key");
}

static void me_free_config(void *conf) {
  struct me_config *c = conf;
  if (!c) return;
  free(c->auth_url);
  free(c->auth_ca_file);
  free(c->mqtt_host);
  free(c->ca_file);
  free(c->client_id);
  free(c->conn_lost_urc);
  free(c);
}

static int me_parse_config(const cJSON *obj, const char *where, void **out, char *err, size_t errlen) {
  struct me_config *c = calloc(1, sizeof *c);
  if (!c) return ERR("%s: out of memory", where);
  *out = c;
  cfg_defaults(c);
  if (obj && !cJSON_IsObject(obj)) return ERR("%s: must be an object", where);
  struct cfg_ctx x = {.where = where, .err = err, .errlen = errlen};
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    if (cfg_top_key(&x, it, c)) return -1;
  }
  if (c->auth_mode == ME_AUTH_HTTPS && !c->auth_url) {
    c->auth_url = strdup("https://iot-auth.cn-shanghai.aliyuncs.com/auth/devicename");
    if (!c->auth_url) return ERR("%s: out of memory", where);
  }
  return 0;
}

/* ---- life cycle ------------------------------------------------------------ */

static int me_init(struct vm_module *m) {
  struct me_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  m->dialect_state = s;
  s->m = m;
  s->cfg = m->cfg->dialect_conf;
  m->at.style = &me_style;
  vm_at_add_table(&m->at, me_cell_cmds, me_cell_ncmds);
  vm_at_add_table(&m->at, me_data_cmds, me_data_ncmds);
  vm_at_add_table(&m->at, me_auth_cmds, me_auth_ncmds);
  vm_at_add_table(&m->at, me_cloud_cmds, me_cloud_ncmds);
  if (me_cell_init(s) < 0 || me_data_init(s) < 0) return -1;
  return me_cloud_init(s);
}

static void me_power_on(struct vm_module *m) {
  me_data_power_on(m->dialect_state);
  me_cell_power_on(m->dialect_state);
}

/* Reset or power loss: registration, data call and the Aliyun session go. */
static void me_power_off(struct vm_module *m) {
  struct me_state *s = m->dialect_state;
  s->gen++;
  me_cloud_power_off(s);
  me_data_power_off(s);
  me_cell_power_off(s);
}

static void me_destroy(struct vm_module *m) {
  struct me_state *s = m->dialect_state;
  s->gen++;
  me_cloud_destroy(s);
  me_data_destroy(s);
  me_cell_destroy(s); /* the module frees s once the loop has closed the handles */
}

/* ---- the control plane (dialect.h) ------------------------------------------ */

static int me_fault(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  if (argc < 1 || strcmp(argv[0], "cell")) return VM_FAULT_UNSUPPORTED;
  return me_cell_fault(m->dialect_state, argc, argv, err, errlen);
}

static int me_fault_check(const void *conf, int argc, char **argv, char *err, size_t errlen) {
  if (argc < 1 || strcmp(argv[0], "cell")) return VM_FAULT_UNSUPPORTED;
  return me_cell_fault_check(argc, argv, err, errlen);
}

static void me_status(struct vm_module *m, cJSON *obj) {
  me_cell_status(m->dialect_state, obj);
  me_cloud_status(m->dialect_state, obj);
}

const struct vm_dialect vm_dialect_me3630 = {
    .name = "me3630",
    .parse_config = me_parse_config,
    .free_config = me_free_config,
    .init = me_init,
    .power_on = me_power_on,
    .power_off = me_power_off,
    .destroy = me_destroy,
    .fault = me_fault,
    .fault_check = me_fault_check,
    .status = me_status,
};
