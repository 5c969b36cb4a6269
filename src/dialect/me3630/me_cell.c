/* me_cell.c - the cellular basics of the me3630 dialect (w800-me3630-at.md
 * §7): V.250 basics and identity (AT, ATE, ATI, +CGMI/+CGMM/+CGMR/+CGSN,
 * +CIMI, +CCID/+ZGETICCID), error style (+CMEE), the simulated SIM (+CPIN)
 * and network (+CSQ, +CREG/+CGREG/+CEREG with their URCs, +COPS, +CFUN,
 * +ZPAS, ^SYSINFO). Packet data and the data call (+CGATT, +CGDCONT,
 * +CGACT, +CGPADDR, +ZIPCALL, +ZECMCALL) live in me_data.c.
 *
 * The SIM and the network come from the config: at power-on (and after
 * AT+CFUN=1 or a correct AT+CPIN=) a ready SIM starts a registration that
 * completes after network.registration_ms, as a real module camps and
 * attaches some seconds after boot. Registration changes are reported with
 * the 27.007 URCs when AT+CREG=1|2 (etc.) asked for them.
 *
 * The `cell` faults (fault.h) change that world: `deregister` takes the
 * network away (registration falls to 2, "not registered, searching", as a
 * module that lost coverage keeps searching; the data call ends with its
 * URC and the CLOUD* session with it), `register` gives it back (camped
 * again after registration_ms; the MCU re-dials, as nothing in the module
 * redials a ZIPCALL or reconnects CLOUDCONN by itself), `signal N` sets the
 * rssi of AT+CSQ, `sim-out` pulls the SIM (registration 0, "not searching";
 * +CPIN? and the SIM reads answer +CME ERROR: 10), `sim-in` puts it back
 * (locked again when sim.pin is set), `datacall-drop` is the network ending
 * the PDP context (me_data.c). Where the reference names no URC for such an
 * event (a SIM leaving, a signal change) none is printed: the 27.007
 * registration URCs come first, then the data call's, as the module learns
 * of the lost network before its stack reports the call down (inferred). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/event.h"
#include "vmodule/fault.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "me3630.h"

enum { REG_CREG, REG_CGREG, REG_CEREG };
static const char *const reg_names[] = {"+CREG", "+CGREG", "+CEREG"};

static bool registered(const struct me_state *s) {
  return s->reg == ME_REG_HOME || s->reg == ME_REG_ROAMING;
}

bool me_cell_registered(const struct me_state *s) { return registered(s); }

/* 27.007 <AcT>: 7 E-UTRAN, 2 UTRAN, 0 GSM. */
static int act_of(const struct me_config *c) {
  return c->rat == ME_RAT_LTE ? 7 : c->rat == ME_RAT_UMTS ? 2 : 0;
}

/* <stat> as each registration command reports it: EPS registration only
 * exists on LTE. */
static int reg_stat(const struct me_state *s, int which) {
  if (which == REG_CEREG && s->cfg->rat != ME_RAT_LTE && registered(s)) return ME_REG_NONE;
  return (int)s->reg;
}

int me_cell_data_ready(const struct me_state *s) {
  if (s->sim == ME_SIM_ABSENT) return ME_E_SIM_NOT_INSERTED;
  if (s->sim == ME_SIM_LOCKED) return ME_E_SIM_PIN;
  if (!registered(s)) return ME_E_NO_NETWORK;
  if (s->call != ME_CALL_UP) return ME_E_NO_DATA_CALL;
  return 0;
}

/* ---- registration ------------------------------------------------------------ */

static void reg_urcs(struct me_state *s) {
  struct vm_at *at = &s->m->at;
  for (int w = 0; w < 3; w++) {
    int n = s->reg_n[w], stat = reg_stat(s, w);
    if (n == 0) continue;
    if (n == 2 && (stat == ME_REG_HOME || stat == ME_REG_ROAMING))
      vm_at_urcf(at, ME_REG_URC_LOC_FMT, reg_names[w], stat, s->cfg->lac, s->cfg->cell_id,
                 act_of(s->cfg));
    else
      vm_at_urcf(at, ME_REG_URC_FMT, reg_names[w], stat);
  }
}

static const char *reg_state_name(enum me_reg reg) {
  switch (reg) {
  case ME_REG_HOME: return "registered";
  case ME_REG_ROAMING: return "roaming";
  case ME_REG_SEARCHING: return "searching";
  default: return "not registered";
  }
}

static void reg_set(struct me_state *s, enum me_reg reg) {
  if (s->reg == reg) return;
  s->reg = reg;
  vm_log_debug(s->m->name, "network registration: %d", (int)reg);
  vm_event_state(s->m->name, "registration", reg_state_name(reg));
  reg_urcs(s);
}

static void reg_done(uv_timer_t *t) {
  struct me_state *s = t->data;
  if (!s->cfg->net_available || s->net_gone) return; /* keeps searching */
  reg_set(s, s->cfg->roaming ? ME_REG_ROAMING : ME_REG_HOME);
}

/* Camps and registers after registration_ms (at once when it is 0). */
static void reg_start(struct me_state *s) {
  if (s->cfun != 1 || s->sim != ME_SIM_READY || registered(s)) return;
  reg_set(s, ME_REG_SEARCHING);
  if (s->cfg->registration_ms == 0) reg_done(&s->reg_timer);
  else uv_timer_start(&s->reg_timer, reg_done, s->cfg->registration_ms, 0);
}

static void reg_stop(struct me_state *s) {
  uv_timer_stop(&s->reg_timer);
  me_data_radio_off(s);
  reg_set(s, ME_REG_NONE);
}

/* ---- V.250 basics and identity ------------------------------------------------ */

static enum vm_at_result ati_exec(struct vm_at *at, const struct vm_at_args *a) {
  const struct me_config *c = me_state_of(at)->cfg;
  vm_at_printf(at, ME_ATI_FMT, c->manufacturer, c->model, c->revision, c->imei);
  return VM_AT_OK;
}

static enum vm_at_result cgmi_exec(struct vm_at *at, const struct vm_at_args *a) {
  me_line(at, me_state_of(at)->cfg->manufacturer);
  return VM_AT_OK;
}

static enum vm_at_result cgmm_exec(struct vm_at *at, const struct vm_at_args *a) {
  me_line(at, me_state_of(at)->cfg->model);
  return VM_AT_OK;
}

static enum vm_at_result cgmr_exec(struct vm_at *at, const struct vm_at_args *a) {
  me_line(at, me_state_of(at)->cfg->revision);
  return VM_AT_OK;
}

static enum vm_at_result cgsn_exec(struct vm_at *at, const struct vm_at_args *a) {
  me_line(at, me_state_of(at)->cfg->imei);
  return VM_AT_OK;
}

/* SIM-dependent reads: the SIM must be present and unlocked. */
int me_cell_sim_error(const struct me_state *s) {
  if (s->sim == ME_SIM_ABSENT) return ME_E_SIM_NOT_INSERTED;
  if (s->sim == ME_SIM_LOCKED) return ME_E_SIM_PIN;
  return 0;
}

static enum vm_at_result cimi_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  int e = me_cell_sim_error(s);
  if (e) return me_cme(at, e);
  me_line(at, s->cfg->imsi);
  return VM_AT_OK;
}

/* The ICCID is readable behind a PIN lock; only an absent SIM fails. */
static enum vm_at_result iccid_print(struct vm_at *at, const char *fmt) {
  struct me_state *s = me_state_of(at);
  if (s->sim == ME_SIM_ABSENT) return me_cme(at, ME_E_SIM_NOT_INSERTED);
  vm_at_printf(at, fmt, s->cfg->iccid);
  return VM_AT_OK;
}

static enum vm_at_result zgeticcid_exec(struct vm_at *at, const struct vm_at_args *a) {
  return iccid_print(at, ME_ICCID_FMT);
}

static enum vm_at_result ccid_exec(struct vm_at *at, const struct vm_at_args *a) {
  return iccid_print(at, ME_CCID_FMT);
}

/* ---- +CMEE ------------------------------------------------------------------- */

static enum vm_at_result cmee_query(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, ME_CMEE_FMT, me_state_of(at)->cmee);
  return VM_AT_OK;
}

static enum vm_at_result cmee_set(struct vm_at *at, const struct vm_at_args *a) {
  long n;
  if (a->count != 1 || vm_at_arg_int(a, 0, &n) != VM_AT_ARG_OK || n < 0 || n > 2)
    return VM_AT_ERROR;
  me_state_of(at)->cmee = (int)n;
  return VM_AT_OK;
}

static enum vm_at_result cmee_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, ME_CMEE_TEST);
  return VM_AT_OK;
}

/* ---- +CPIN -------------------------------------------------------------------- */

static enum vm_at_result cpin_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  if (s->sim == ME_SIM_ABSENT) return me_cme(at, ME_E_SIM_NOT_INSERTED);
  vm_at_puts(at, s->sim == ME_SIM_LOCKED ? ME_CPIN_PIN : ME_CPIN_READY);
  return VM_AT_OK;
}

static enum vm_at_result cpin_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  const char *pin;
  if (a->count < 1 || a->count > 2 || vm_at_arg_text(a, 0, &pin, NULL) != VM_AT_ARG_OK)
    return VM_AT_ERROR;
  if (s->sim == ME_SIM_ABSENT) return me_cme(at, ME_E_SIM_NOT_INSERTED);
  if (s->sim == ME_SIM_READY) return me_cme(at, ME_E_NOT_ALLOWED);
  if (strcmp(pin, s->cfg->pin) != 0) return me_cme(at, ME_E_BAD_PASSWORD);
  s->sim = ME_SIM_READY;
  vm_log_info(s->m->name, "SIM unlocked");
  vm_at_reply_ok(at);
  reg_start(s); /* its URCs follow the OK */
  return VM_AT_DONE;
}

static enum vm_at_result cpin_test(struct vm_at *at, const struct vm_at_args *a) {
  return VM_AT_OK;
}

/* ---- +CSQ, +COPS, +ZPAS, ^SYSINFO -------------------------------------------- */

/* The rssi AT+CSQ shows: 99 (unknown) with the radio off, no SIM or not
 * even searching. */
static int csq_now(const struct me_state *s) {
  return s->cfun == 1 && s->sim != ME_SIM_ABSENT && s->reg != ME_REG_NONE ? s->csq : 99;
}

static enum vm_at_result csq_exec(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, ME_CSQ_FMT, csq_now(me_state_of(at)));
  return VM_AT_OK;
}

static enum vm_at_result cops_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  if (registered(s)) vm_at_printf(at, ME_COPS_FMT, s->cfg->operator_name, act_of(s->cfg));
  else vm_at_puts(at, ME_COPS_NONE);
  return VM_AT_OK;
}

static enum vm_at_result zpas_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  if (!registered(s)) vm_at_puts(at, ME_ZPAS_NONE);
  else if (s->cfg->rat == ME_RAT_LTE) vm_at_printf(at, ME_ZPAS_LTE_FMT, s->cfg->tdd ? "TDD" : "FDD");
  else vm_at_printf(at, ME_ZPAS_FMT, s->cfg->rat == ME_RAT_UMTS ? "UMTS" : "GSM");
  return VM_AT_OK;
}

/* ^SYSINFO: <srv_status>,<srv_domain>,<roam>,<sys_mode>,<sim_state> as the
 * Kura driver reads it (sim_state 1 valid, 255 absent or locked). */
static enum vm_at_result sysinfo_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  int sim = s->sim == ME_SIM_READY ? 1 : 255;
  if (registered(s)) {
    int mode = s->cfg->rat == ME_RAT_LTE ? 17 : s->cfg->rat == ME_RAT_UMTS ? 5 : 3;
    vm_at_printf(at, ME_SYSINFO_FMT, 2, 3, s->reg == ME_REG_ROAMING, mode, sim);
  } else {
    vm_at_printf(at, ME_SYSINFO_FMT, 0, 0, 0, 0, sim);
  }
  return VM_AT_OK;
}

/* ---- +CREG / +CGREG / +CEREG ------------------------------------------------- */

static int reg_which(struct vm_at *at) {
  const char *name = at->current ? at->current->name : "";
  for (int w = 0; w < 3; w++)
    if (!strcasecmp(name, reg_names[w])) return w;
  return REG_CREG;
}

static enum vm_at_result reg_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  int w = reg_which(at), n = s->reg_n[w], stat = reg_stat(s, w);
  if (n == 2 && (stat == ME_REG_HOME || stat == ME_REG_ROAMING))
    vm_at_printf(at, ME_REG_QUERY_LOC_FMT, reg_names[w], n, stat, s->cfg->lac, s->cfg->cell_id,
                 act_of(s->cfg));
  else
    vm_at_printf(at, ME_REG_QUERY_FMT, reg_names[w], n, stat);
  return VM_AT_OK;
}

static enum vm_at_result reg_setn(struct vm_at *at, const struct vm_at_args *a) {
  long n;
  if (a->count != 1 || vm_at_arg_int(a, 0, &n) != VM_AT_ARG_OK || n < 0 || n > 2)
    return VM_AT_ERROR;
  me_state_of(at)->reg_n[reg_which(at)] = (int)n;
  return VM_AT_OK;
}

static enum vm_at_result reg_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, ME_REG_TEST_FMT, reg_names[reg_which(at)]);
  return VM_AT_OK;
}

/* ---- +CFUN ----------------------------------------------------------------- */

static enum vm_at_result cfun_query(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, ME_CFUN_FMT, me_state_of(at)->cfun);
  return VM_AT_OK;
}

static enum vm_at_result cfun_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, ME_CFUN_TEST);
  return VM_AT_OK;
}

/* AT+CFUN=<fun>[,<rst>]: 0 minimum and 4 flight mode drop the radio, 1 brings
 * it back (registration after registration_ms); rst=1 resets the module. */
static enum vm_at_result cfun_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  long fun, rst = 0;
  if (a->count < 1 || a->count > 2 || vm_at_arg_int(a, 0, &fun) != VM_AT_ARG_OK ||
      (fun != 0 && fun != 1 && fun != 4))
    return VM_AT_ERROR;
  if (vm_at_arg_int(a, 1, &rst) == VM_AT_ARG_INVALID || rst < 0 || rst > 1) return VM_AT_ERROR;
  if (rst == 1) {
    if (fun != 1) return me_cme(at, ME_E_NOT_ALLOWED);
    vm_at_reply_ok(at);
    vm_module_reboot(s->m);
    return VM_AT_DONE;
  }
  vm_at_reply_ok(at);
  s->cfun = (int)fun;
  if (fun == 1) reg_start(s);
  else reg_stop(s);
  return VM_AT_DONE;
}

/* ---- the table ---------------------------------------------------------------- */

const struct vm_at_cmd me_cell_cmds[] = {
    {.name = "", .exec = vm_at_handle_ok},
    {.name = "E0", .exec = vm_at_handle_echo_off},
    {.name = "E1", .exec = vm_at_handle_echo_on},
    {.name = "I", .exec = ati_exec},
    {.name = "+CGMI", .exec = cgmi_exec},
    {.name = "+GMI", .exec = cgmi_exec},
    {.name = "+CGMM", .exec = cgmm_exec},
    {.name = "+GMM", .exec = cgmm_exec},
    {.name = "+CGMR", .exec = cgmr_exec},
    {.name = "+GMR", .exec = cgmr_exec},
    {.name = "+CGSN", .exec = cgsn_exec},
    {.name = "+GSN", .exec = cgsn_exec},
    {.name = "+CIMI", .exec = cimi_exec},
    {.name = "+ZGETICCID", .exec = zgeticcid_exec},
    {.name = "+CCID", .exec = ccid_exec},
    {.name = "+CMEE", .test = cmee_test, .query = cmee_query, .set = cmee_set},
    {.name = "+CPIN", .test = cpin_test, .query = cpin_query, .set = cpin_set, .secret_mask = 0x1},
    {.name = "+CSQ", .exec = csq_exec},
    {.name = "+CREG", .test = reg_test, .query = reg_query, .set = reg_setn},
    {.name = "+CGREG", .test = reg_test, .query = reg_query, .set = reg_setn},
    {.name = "+CEREG", .test = reg_test, .query = reg_query, .set = reg_setn},
    {.name = "+COPS", .query = cops_query},
    {.name = "+CFUN", .test = cfun_test, .query = cfun_query, .set = cfun_set},
    {.name = "+ZPAS", .query = zpas_query},
    {.name = "^SYSINFO", .exec = sysinfo_exec},
};
const size_t me_cell_ncmds = sizeof me_cell_cmds / sizeof me_cell_cmds[0];

/* ---- `cell` faults and `status` ------------------------------------------------ */

enum cell_verb { CV_DEREGISTER, CV_REGISTER, CV_SIGNAL, CV_SIM_OUT, CV_SIM_IN, CV_DATACALL_DROP, CV_N };
static const char *const cell_verbs[CV_N] = {"deregister", "register", "signal",
                                             "sim-out",    "sim-in",   "datacall-drop"};
#define CELL_USAGE "cell: expected deregister, register, signal N, sim-out, sim-in or datacall-drop"
#define CELL_SIGNAL_USAGE "cell signal: N must be 0..31 or 99"

static int fail(char *err, size_t errlen, const char *msg) {
  snprintf(err, errlen, "%s", msg);
  return -1;
}

/* "cell <verb> [N]": the verb (and the rssi of `signal`), or -1 with err. */
static int cell_parse(int argc, char **argv, int *csq, char *err, size_t errlen) {
  int v = -1;
  for (int i = 0; argc >= 2 && i < CV_N; i++)
    if (!strcmp(argv[1], cell_verbs[i])) v = i;
  if (v < 0 || argc > (v == CV_SIGNAL ? 3 : 2)) return fail(err, errlen, CELL_USAGE);
  if (v != CV_SIGNAL) return v;
  const char *n = argc == 3 ? argv[2] : "";
  long rssi = *n && strlen(n) <= 2 && strspn(n, "0123456789") == strlen(n) ? strtol(n, NULL, 10) : -1;
  if (rssi < 0 || (rssi > 31 && rssi != 99)) return fail(err, errlen, CELL_SIGNAL_USAGE);
  *csq = (int)rssi;
  return v;
}

int me_cell_fault_check(int argc, char **argv, char *err, size_t errlen) {
  int csq;
  return cell_parse(argc, argv, &csq, err, errlen) < 0 ? -1 : 0;
}

/* The network or the SIM went: registration falls to reg, then the data
 * call and what runs over it end. */
static void net_lost(struct me_state *s, enum me_reg reg) {
  uv_timer_stop(&s->reg_timer);
  reg_set(s, reg);
  me_data_radio_off(s);
}

static int cell_deregister(struct me_state *s, char *err, size_t errlen) {
  if (s->net_gone) return fail(err, errlen, "cell deregister: the network is already gone");
  s->net_gone = true;
  vm_log_info(s->m->name, "cell: fault: the network is gone");
  if (s->reg != ME_REG_NONE) net_lost(s, ME_REG_SEARCHING);
  return 0;
}

static int cell_register(struct me_state *s, char *err, size_t errlen) {
  if (!s->net_gone) return fail(err, errlen, "cell register: the module is not deregistered");
  s->net_gone = false;
  vm_log_info(s->m->name, "cell: fault lifted: the network is back");
  if (s->m->powered) reg_start(s);
  return 0;
}

static int cell_sim_out(struct me_state *s, char *err, size_t errlen) {
  if (!s->sim_inserted) return fail(err, errlen, "cell sim-out: there is no SIM in the module");
  s->sim_inserted = false;
  vm_log_info(s->m->name, "cell: fault: SIM removed");
  vm_event_state(s->m->name, "sim", "absent");
  if (!s->m->powered) return 0;
  s->sim = ME_SIM_ABSENT;
  net_lost(s, ME_REG_NONE);
  return 0;
}

static int cell_sim_in(struct me_state *s, char *err, size_t errlen) {
  if (s->sim_inserted) return fail(err, errlen, "cell sim-in: a SIM is already in the module");
  s->sim_inserted = true;
  vm_log_info(s->m->name, "cell: fault lifted: SIM inserted");
  vm_event_state(s->m->name, "sim", s->cfg->pin[0] ? "locked" : "ready");
  if (!s->m->powered) return 0;
  s->sim = s->cfg->pin[0] ? ME_SIM_LOCKED : ME_SIM_READY;
  reg_start(s);
  return 0;
}

int me_cell_fault(struct me_state *s, int argc, char **argv, char *err, size_t errlen) {
  int csq = 0;
  switch (cell_parse(argc, argv, &csq, err, errlen)) {
  case CV_DEREGISTER: return cell_deregister(s, err, errlen);
  case CV_REGISTER: return cell_register(s, err, errlen);
  case CV_SIGNAL:
    s->csq = csq;
    vm_log_info(s->m->name, "cell: fault: signal rssi %d", csq);
    return 0;
  case CV_SIM_OUT: return cell_sim_out(s, err, errlen);
  case CV_SIM_IN: return cell_sim_in(s, err, errlen);
  case CV_DATACALL_DROP:
    if (me_data_call_drop(s) < 0) return fail(err, errlen, "cell datacall-drop: no data call is up");
    return 0;
  default: return -1;
  }
}

/* "cell": {"registered", "stat" (of +CREG), "csq" (as AT+CSQ shows it),
 * "sim": "ready"|"pin"|"absent", "datacall", "network": "up"|"gone"}. */
void me_cell_status(struct me_state *s, cJSON *obj) {
  cJSON *c = cJSON_AddObjectToObject(obj, "cell");
  if (!c) return;
  cJSON_AddBoolToObject(c, "registered", registered(s));
  cJSON_AddNumberToObject(c, "stat", (int)s->reg);
  cJSON_AddNumberToObject(c, "csq", csq_now(s));
  cJSON_AddStringToObject(c, "sim", s->sim == ME_SIM_READY ? "ready" : s->sim == ME_SIM_LOCKED ? "pin" : "absent");
  cJSON_AddStringToObject(c, "datacall", me_data_call_state(s));
  cJSON_AddStringToObject(c, "network", s->net_gone ? "gone" : "up");
}

/* ---- life cycle ------------------------------------------------------------------ */

int me_cell_init(struct me_state *s) {
  uv_timer_init(s->m->loop, &s->reg_timer);
  s->reg_timer.data = s;
  s->sim_inserted = s->cfg->sim_present;
  s->csq = s->cfg->csq;
  return 0;
}

void me_cell_power_on(struct me_state *s) {
  const struct me_config *c = s->cfg;
  s->cmee = c->cmee;
  s->cfun = 1;
  s->reg = ME_REG_NONE;
  memset(s->reg_n, 0, sizeof s->reg_n);
  s->sim = !s->sim_inserted ? ME_SIM_ABSENT : c->pin[0] ? ME_SIM_LOCKED : ME_SIM_READY;
  for (int i = 0; i < c->n_boot_urcs; i++) vm_at_urcf(&s->m->at, ME_LINE_FMT, c->boot_urcs[i]);
  reg_start(s);
}

void me_cell_power_off(struct me_state *s) {
  uv_timer_stop(&s->reg_timer);
  s->reg = ME_REG_NONE;
}

void me_cell_destroy(struct me_state *s) {
  me_cell_power_off(s);
  uv_close((uv_handle_t *)&s->reg_timer, NULL);
}
