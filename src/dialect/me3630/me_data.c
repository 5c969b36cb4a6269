/* me_data.c - packet data and the data call of the me3630 dialect
 * (shared/reference/me3630-data.md, w800-me3630-at.md §7.2): AT+CGATT,
 * AT+CGDCONT, AT+CGACT, AT+CGPADDR, and the data call that the CLOUD*
 * commands need, dialled by AT+ZIPCALL=1 (the module's own IP stack) or
 * AT+ZECMCALL=1 (USB ECM).
 *
 * There is one data call, on context 1, whichever command dialled it: both
 * queries show its address, AT+CGACT? shows cid 1 active and AT+CGPADDR its
 * address while it is up, and hanging up with either command, AT+CGACT=0,1,
 * AT+CGATT=0 or radio off ends it for both. A command that asked for the
 * call learns of an end it did not cause from its URC (+ZIPCALL: 0,0.0.0.0
 * or +ZECMCALL: DISCONNECT); the CLOUD* session goes with the call.
 *
 * The context definitions (AT+CGDCONT) live in the module's flash, as the
 * real module keeps its PDP profiles in NVM (drivers set the APN once and
 * cycle AT+CFUN to apply it): they survive AT+CFUN=1,1 and a daemon restart.
 * A fresh module has context 1 "IPV4V6" with an empty APN (the network's
 * default). Only IPv4 is simulated: every active context has an IPv4
 * address, network.ip for context 1 and the addresses after it for the
 * others. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vmodule/event.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "me3630.h"

static const char *const pdp_types[] = {"IP", "IPV6", "IPV4V6"};
#define N_PDP_TYPES 3

static struct vm_at *at_of(struct me_state *s) { return &s->m->at; }

static int pdp_type_of(const char *name) {
  for (int i = 0; i < N_PDP_TYPES; i++)
    if (!strcasecmp(name, pdp_types[i])) return i;
  return -1;
}

/* The address of context cid: network.ip, plus cid - 1 in the last byte. */
static void pdp_addr(const struct me_state *s, int cid, char *buf, size_t cap) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  sscanf(s->cfg->ip, "%u.%u.%u.%u", &a, &b, &c, &d);
  snprintf(buf, cap, "%u.%u.%u.%u", a, b, c, (d + (unsigned)cid - 1) % 256);
}

/* <cid> parameter i: 1..16, else -1. */
static int cid_param(const struct vm_at_args *a, int i) {
  long cid;
  if (vm_at_arg_int(a, i, &cid) != VM_AT_ARG_OK || cid < 1 || cid > ME_MAX_CID) return -1;
  return (int)cid;
}

/* Before each line of a list reply: ME_LIST_START before the first. */
static void list_next(struct vm_at *at, bool *first) {
  if (*first) vm_at_puts(at, ME_LIST_START);
  *first = false;
}

/* ---- the data call -------------------------------------------------------------- */

/* What stops a dial: SIM, registration, an undefined context 1 (I). */
static int call_check(const struct me_state *s) {
  int e = me_cell_sim_error(s);
  if (e) return e;
  if (!me_cell_registered(s)) return ME_E_NO_NETWORK;
  if (!s->pdp[ME_CALL_CID].defined) return ME_E_NOT_ALLOWED;
  return 0;
}

/* Ends the call or the dial in progress; the users in `report` that asked
 * for it are told by their URC. A pending AT+ZECMCALL=1 fails. */
static void call_end(struct me_state *s, unsigned report) {
  struct vm_at *at = at_of(s);
  bool was_up = s->call == ME_CALL_UP;
  uv_timer_stop(&s->call_timer);
  if (s->call == ME_CALL_DOWN) return;
  unsigned told = s->call_users & report;
  s->call = ME_CALL_DOWN;
  s->call_users = 0;
  s->pdp[ME_CALL_CID].active = false;
  vm_log_info(s->m->name, "data call down");
  if (was_up) vm_event_state(s->m->name, "datacall", "down");
  if (s->ecm_waiting) {
    s->ecm_waiting = false;
    me_cme(at, ME_E_NO_NETWORK);
    vm_at_complete(at, VM_AT_DONE);
  }
  if (told & ME_CALL_BY_ZIP) vm_at_urc(at, ME_ZIPCALL_LOST, strlen(ME_ZIPCALL_LOST));
  if (told & ME_CALL_BY_ECM) vm_at_urc(at, ME_ZECMCALL_DISCONNECT, strlen(ME_ZECMCALL_DISCONNECT));
  if (was_up) me_cloud_on_call_down(s);
}

static void call_connected(uv_timer_t *t) {
  struct me_state *s = t->data;
  struct vm_at *at = at_of(s);
  if (!me_cell_registered(s)) { /* lost the network while dialling */
    call_end(s, ME_CALL_BY_ZIP);
    return;
  }
  s->call = ME_CALL_UP;
  s->pdp[ME_CALL_CID].active = true;
  vm_log_info(s->m->name, "data call up (%s)", s->cfg->ip);
  vm_event_state(s->m->name, "datacall", "up");
  if (s->ecm_waiting) { /* the pending command's result, then the URC */
    s->ecm_waiting = false;
    vm_at_puts(at, ME_ZECMCALL_CONNECT);
    vm_at_reply_ok(at);
    vm_at_complete(at, VM_AT_DONE);
  }
  if (s->call_users & ME_CALL_BY_ZIP) vm_at_urcf(at, ME_ZIPCALL_UP_FMT, s->cfg->ip);
}

/* Dials for `user` unless a dial runs or the call is up; activating a
 * context attaches first (27.007 §10.1.10). */
static void call_dial(struct me_state *s, unsigned user) {
  s->call_users |= user;
  s->detached = false;
  if (s->call != ME_CALL_DOWN) return;
  s->call = ME_CALL_CONNECTING;
  uv_timer_start(&s->call_timer, call_connected, s->cfg->call_ms, 0);
}

/* Deactivates context cid (the call's context takes the call along). */
static void pdp_deactivate(struct me_state *s, int cid) {
  if (cid == ME_CALL_CID) call_end(s, ME_CALL_BY_ZIP | ME_CALL_BY_ECM);
  s->pdp[cid].active = false;
}

static void pdp_deactivate_all(struct me_state *s) {
  for (int cid = 1; cid <= ME_MAX_CID; cid++) pdp_deactivate(s, cid);
}

/* The network ends the call's context (`cell datacall-drop`): both
 * commands' users are told by their URC, as for any end they did not cause. */
int me_data_call_drop(struct me_state *s) {
  if (s->call == ME_CALL_DOWN) return -1;
  vm_log_info(s->m->name, "cell: fault: the network drops the data call");
  pdp_deactivate(s, ME_CALL_CID);
  return 0;
}

const char *me_data_call_state(const struct me_state *s) {
  return s->call == ME_CALL_UP ? "up" : s->call == ME_CALL_CONNECTING ? "connecting" : "down";
}

/* ---- AT+ZIPCALL ------------------------------------------------------------------- */

static int on_off_param(const struct vm_at_args *a, long *on) {
  if (a->count != 1 || vm_at_arg_int(a, 0, on) != VM_AT_ARG_OK || *on < 0 || *on > 1) return -1;
  return 0;
}

/* =1: OK, then +ZIPCALL: 1,<ip> once the call is up (again at once when it
 * already is: I). =0: OK. */
static enum vm_at_result zipcall_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  long on;
  if (on_off_param(a, &on)) return VM_AT_ERROR;
  if (!on) {
    vm_at_reply_ok(at);
    call_end(s, ME_CALL_BY_ECM);
    return VM_AT_DONE;
  }
  int e = call_check(s);
  if (e) return me_cme(at, e);
  bool up = s->call == ME_CALL_UP;
  vm_at_reply_ok(at);
  call_dial(s, ME_CALL_BY_ZIP);
  if (up) vm_at_urcf(at, ME_ZIPCALL_UP_FMT, s->cfg->ip);
  return VM_AT_DONE;
}

static enum vm_at_result zipcall_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  if (s->call == ME_CALL_UP) vm_at_printf(at, ME_ZIPCALL_UP_FMT, s->cfg->ip);
  else vm_at_printf(at, ME_ZIPCALL_STATE_FMT, (int)s->call);
  return VM_AT_OK;
}

/* ---- AT+ZECMCALL -------------------------------------------------------------------- */

static enum vm_at_result zecmcall_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  long on;
  if (on_off_param(a, &on)) return VM_AT_ERROR;
  if (!on) { /* the reply first: what the hang-up causes follows as URCs */
    vm_at_puts(at, ME_ZECMCALL_DISCONNECT);
    vm_at_reply_ok(at);
    call_end(s, ME_CALL_BY_ZIP);
    return VM_AT_DONE;
  }
  int e = call_check(s);
  if (e) return me_cme(at, e);
  if (s->call == ME_CALL_UP) {
    s->call_users |= ME_CALL_BY_ECM;
    vm_at_puts(at, ME_ZECMCALL_CONNECT);
    return VM_AT_OK;
  }
  s->ecm_waiting = true;
  call_dial(s, ME_CALL_BY_ECM);
  return VM_AT_PENDING;
}

static enum vm_at_result zecmcall_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  const struct me_config *c = s->cfg;
  if (s->call == ME_CALL_UP) vm_at_printf(at, ME_ZECMCALL_QUERY_FMT, c->ip, c->gateway, c->dns1, c->dns2);
  else vm_at_puts(at, ME_ZECMCALL_DISCONNECT);
  return VM_AT_OK;
}

/* ---- AT+CGATT --------------------------------------------------------------------- */

static enum vm_at_result cgatt_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  vm_at_printf(at, ME_CGATT_FMT, me_cell_registered(s) && !s->detached);
  return VM_AT_OK;
}

static enum vm_at_result cgatt_test(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, ME_CGATT_TEST);
  return VM_AT_OK;
}

/* =1 attaches when registered (else +CME ERROR: 30 at once: I); =0
 * detaches: every context and the call end. */
static enum vm_at_result cgatt_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  long on;
  if (on_off_param(a, &on)) return VM_AT_ERROR;
  if (on) {
    int e = me_cell_sim_error(s);
    if (e) return me_cme(at, e);
    if (!me_cell_registered(s)) return me_cme(at, ME_E_NO_NETWORK);
    s->detached = false;
    return VM_AT_OK;
  }
  vm_at_reply_ok(at);
  s->detached = true;
  pdp_deactivate_all(s);
  return VM_AT_DONE;
}

/* ---- AT+CGDCONT and the flash ---------------------------------------------------------- */

static cJSON *pdp_json(const struct me_state *s) {
  cJSON *arr = cJSON_CreateArray();
  for (int cid = 1; arr && cid <= ME_MAX_CID; cid++) {
    const struct me_pdp *p = &s->pdp[cid];
    cJSON *o = p->defined ? cJSON_CreateObject() : NULL;
    if (!o) continue;
    cJSON_AddNumberToObject(o, "cid", cid);
    cJSON_AddStringToObject(o, "type", pdp_types[p->type]);
    cJSON_AddStringToObject(o, "apn", p->apn);
    cJSON_AddItemToArray(arr, o);
  }
  return arr;
}

static void pdp_defaults(struct me_state *s) {
  memset(s->pdp, 0, sizeof s->pdp);
  s->pdp[1].defined = true;
  s->pdp[1].type = ME_PDP_IPV4V6;
}

/* The stored definitions (a damaged entry is skipped), or the defaults. */
static void pdp_load(struct me_state *s) {
  const cJSON *arr = vm_store_get(&s->m->store, ME_STORE_PDP), *o;
  pdp_defaults(s);
  if (!cJSON_IsArray(arr)) return;
  memset(s->pdp, 0, sizeof s->pdp);
  cJSON_ArrayForEach(o, arr) {
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(o, "cid");
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "type"));
    const char *apn = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "apn"));
    int t = type ? pdp_type_of(type) : -1;
    if (!cJSON_IsNumber(cid) || cid->valueint < 1 || cid->valueint > ME_MAX_CID || t < 0 || !apn ||
        strlen(apn) > ME_MAX_APN) {
      vm_log_warn(s->m->name, "stored PDP context ignored: damaged");
      continue;
    }
    struct me_pdp *p = &s->pdp[cid->valueint];
    p->defined = true;
    p->type = (enum me_pdp_type)t;
    strcpy(p->apn, apn);
  }
}

/* A CGDCONT waiting for its flash write: OK only once it is durable. */
struct pdp_commit {
  struct me_state *s;
  unsigned gen;
};

static void pdp_written(void *data, int status) {
  struct pdp_commit *c = data;
  struct me_state *s = c->s;
  struct vm_at *at = at_of(s);
  if (c->gen == s->gen && vm_at_is_pending(at)) {
    if (status < 0) {
      vm_log_error(s->m->name, "flash write failed: %s", strerror(-status));
      me_cme(at, ME_E_UNKNOWN);
    } else {
      vm_at_reply_ok(at);
    }
    vm_at_complete(at, VM_AT_DONE);
  }
  free(c);
}

static enum vm_at_result pdp_persist(struct vm_at *at, struct me_state *s) {
  struct pdp_commit *c = malloc(sizeof *c);
  cJSON *val = c ? pdp_json(s) : NULL;
  if (!val) {
    free(c);
    return me_cme(at, ME_E_UNKNOWN);
  }
  *c = (struct pdp_commit){.s = s, .gen = s->gen};
  vm_store_put(&s->m->store, ME_STORE_PDP, val);
  vm_store_commit(&s->m->store, pdp_written, c);
  return VM_AT_PENDING;
}

/* The optional 27.007 fields after the APN: <PDP_addr>,<d_comp 0-3>,<h_comp
 * 0-4>; accepted and not kept. 0 or -1. */
static int pdp_extra_params(const struct vm_at_args *a) {
  const char *addr;
  long d = 0, h = 0;
  if (vm_at_arg_text(a, 3, &addr, NULL) == VM_AT_ARG_INVALID) return -1;
  if (vm_at_arg_int(a, 4, &d) == VM_AT_ARG_INVALID || d < 0 || d > 3) return -1;
  if (vm_at_arg_int(a, 5, &h) == VM_AT_ARG_INVALID || h < 0 || h > 4) return -1;
  return 0;
}

/* AT+CGDCONT=<cid>[,<type>[,<apn>[,<addr>[,<d_comp>[,<h_comp>]]]]]; <cid>
 * alone undefines the context (not while it is active: +CME ERROR: 3, I). */
static enum vm_at_result cgdcont_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  int cid = cid_param(a, 0);
  if (a->count < 1 || a->count > 6 || cid < 0) return VM_AT_ERROR;
  struct me_pdp *p = &s->pdp[cid];
  struct me_pdp def = {.defined = true, .active = p->active};
  if (a->count == 1) {
    if (!p->defined) return VM_AT_OK;
    if (p->active || (cid == ME_CALL_CID && s->call != ME_CALL_DOWN))
      return me_cme(at, ME_E_NOT_ALLOWED);
    p->defined = false;
    return pdp_persist(at, s);
  }
  const char *type, *apn = "";
  size_t len = 0;
  int t = vm_at_arg_text(a, 1, &type, NULL) == VM_AT_ARG_OK ? pdp_type_of(type) : -1;
  int ra = vm_at_arg_text(a, 2, &apn, &len);
  if (t < 0 || ra == VM_AT_ARG_INVALID || len > ME_MAX_APN || pdp_extra_params(a)) return VM_AT_ERROR;
  def.type = (enum me_pdp_type)t;
  if (ra == VM_AT_ARG_OK) memcpy(def.apn, apn, len);
  if (p->defined && p->type == def.type && !strcmp(p->apn, def.apn)) return VM_AT_OK;
  *p = def; /* an active context keeps running; the change applies to its next activation */
  return pdp_persist(at, s);
}

static enum vm_at_result cgdcont_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  bool first = true;
  for (int cid = 1; cid <= ME_MAX_CID; cid++) {
    if (!s->pdp[cid].defined) continue;
    list_next(at, &first);
    vm_at_printf(at, ME_CGDCONT_FMT, cid, pdp_types[s->pdp[cid].type], s->pdp[cid].apn);
  }
  return VM_AT_OK;
}

/* ---- AT+CGACT ------------------------------------------------------------------------ */

/* AT+CGACT=<state>[,<cid>]: without a cid, every defined context. An
 * undefined cid: +CME ERROR: 3 (I). Activation needs the SIM and the
 * network, attaches, and is immediate (drivers allow 1 s). */
static enum vm_at_result cgact_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  long on;
  int cid = a->count == 2 ? cid_param(a, 1) : 0;
  if (a->count < 1 || a->count > 2 || vm_at_arg_int(a, 0, &on) != VM_AT_ARG_OK || on < 0 || on > 1 ||
      cid < 0)
    return VM_AT_ERROR;
  if (cid && !s->pdp[cid].defined) return me_cme(at, ME_E_NOT_ALLOWED);
  if (on) {
    int e = me_cell_sim_error(s);
    if (e) return me_cme(at, e);
    if (!me_cell_registered(s)) return me_cme(at, ME_E_NO_NETWORK);
    s->detached = false;
  } else {
    vm_at_reply_ok(at); /* what the deactivation ends follows as URCs */
  }
  for (int c = cid ? cid : 1; c <= (cid ? cid : ME_MAX_CID); c++) {
    if (!s->pdp[c].defined) continue;
    if (on) s->pdp[c].active = true;
    else pdp_deactivate(s, c);
  }
  return on ? VM_AT_OK : VM_AT_DONE;
}

static enum vm_at_result cgact_query(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  bool first = true;
  for (int cid = 1; cid <= ME_MAX_CID; cid++) {
    if (!s->pdp[cid].defined) continue;
    list_next(at, &first);
    vm_at_printf(at, ME_CGACT_FMT, cid, s->pdp[cid].active);
  }
  return VM_AT_OK;
}

/* ---- AT+CGPADDR -------------------------------------------------------------------------- */

static void cgpaddr_line(struct me_state *s, bool *first, int cid) {
  char addr[16] = ME_NO_ADDR;
  if (s->pdp[cid].active) pdp_addr(s, cid, addr, sizeof addr);
  list_next(at_of(s), first);
  vm_at_printf(at_of(s), ME_CGPADDR_FMT, cid, addr);
}

/* Every defined context, one line each. */
static enum vm_at_result cgpaddr_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  bool first = true;
  for (int cid = 1; cid <= ME_MAX_CID; cid++)
    if (s->pdp[cid].defined) cgpaddr_line(s, &first, cid);
  return VM_AT_OK;
}

/* AT+CGPADDR=<cid>[,<cid>...]: those contexts; an undefined one gives
 * +CME ERROR: 3 (I) and nothing else. */
static enum vm_at_result cgpaddr_set(struct vm_at *at, const struct vm_at_args *a) {
  struct me_state *s = me_state_of(at);
  bool first = true;
  if (a->count < 1 || a->count > ME_MAX_CID) return VM_AT_ERROR;
  for (int i = 0; i < a->count; i++) {
    int cid = cid_param(a, i);
    if (cid < 0) return VM_AT_ERROR;
    if (!s->pdp[cid].defined) return me_cme(at, ME_E_NOT_ALLOWED);
  }
  for (int i = 0; i < a->count; i++) cgpaddr_line(s, &first, cid_param(a, i));
  return VM_AT_OK;
}

/* ---- the table and life cycle ---------------------------------------------------------- */

const struct vm_at_cmd me_data_cmds[] = {
    {.name = "+CGATT", .test = cgatt_test, .query = cgatt_query, .set = cgatt_set},
    {.name = "+CGDCONT", .query = cgdcont_query, .set = cgdcont_set},
    {.name = "+CGACT", .query = cgact_query, .set = cgact_set},
    {.name = "+CGPADDR", .exec = cgpaddr_exec, .set = cgpaddr_set},
    {.name = "+ZIPCALL", .query = zipcall_query, .set = zipcall_set},
    {.name = "+ZECMCALL", .query = zecmcall_query, .set = zecmcall_set},
};
const size_t me_data_ncmds = sizeof me_data_cmds / sizeof me_data_cmds[0];

int me_data_init(struct me_state *s) {
  uv_timer_init(s->m->loop, &s->call_timer);
  s->call_timer.data = s;
  pdp_load(s);
  return 0;
}

/* The definitions stay (flash); activity and the call start from nothing. */
static void data_reset(struct me_state *s) {
  uv_timer_stop(&s->call_timer);
  for (int cid = 1; cid <= ME_MAX_CID; cid++) s->pdp[cid].active = false;
  s->call = ME_CALL_DOWN;
  s->call_users = 0;
  s->ecm_waiting = false;
  s->detached = false;
}

void me_data_power_on(struct me_state *s) { data_reset(s); }

void me_data_radio_off(struct me_state *s) {
  pdp_deactivate_all(s);
  s->detached = false; /* radio on again attaches with the registration */
}

void me_data_power_off(struct me_state *s) { data_reset(s); }

void me_data_destroy(struct me_state *s) {
  data_reset(s);
  uv_close((uv_handle_t *)&s->call_timer, NULL);
}
