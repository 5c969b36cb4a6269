/* tc_subdev.c - the sub-device commands of the tencent dialect, firmware
 * v2.2.0 and later (reference §3.12): AT+TCSUBDEVINFOSET keeps a list of
 * sub-device triples, AT+TCSUBDEVPRDSET a list of sub-device product infos,
 * and AT+TCSUBDEVREG registers a sub-device with its product info through
 * the module's registration client (tc_dynreg.c) and adds the triple it
 * gets to the first list. The gateway's bind (tc_gateway.c) signs with a
 * stored secret when the host gives none. v2.1.1 has none of this: its
 * table is off there (tencent.c), so the names are unknown commands.
 *
 * The reference gives only the reply formats; the rest is read from the
 * v2.2.0 objects (espressif/esp-at 4086544f, libesp32c3_qcloud_core.a:
 * at_gw_subdev_*() in qcloud_at_cmd.c, save_subdev_*() in
 * qcloud_at_flash.c), the same code for every chip:
 * - each list is a 20 KiB partition of 5 sectors holding 16 records each:
 *   a new record goes at the end of the first sector with room, so 80
 *   records at most (the 81st fails with 207); queries list sector by
 *   sector, which is the order of this file's store arrays;
 * - adding a record whose product and device names are stored already
 *   replaces that record (no write when it is the same);
 * - deleting (mode 1) removes the first record that matches and is OK when
 *   none does: a device info matches on the product and the first 12
 *   characters of the device name (the firmware's strncmp length), a
 *   product info on product, device name and product secret (so mode 1
 *   takes every parameter, as mode 0);
 * - INFOSET and PRDSET have no state gate (they run while MQTT is up or a
 *   download runs); SUBDEVREG refuses 208 / 200 like AT+TCDEVREG, prints
 *   OK before looking for the product info (none: FAIL,204), and prints its
 *   registration code through a uint8_t (TC_SUBDEVREG_CODE);
 * - the one result code of a failed write is 207; AT+TCRESTORE erases both.
 *
 * The store holds each list as an array of sector arrays; secrets are kept
 * in plain text like the device triple's, and only their BCC is printed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vmodule/log.h"
#include "vmodule/module.h"
#include "tencent.h"

/* One record of either list: a device secret (INFOSET) or a product secret
 * (PRDSET) beside the names and the region. */
struct subdev_rec {
  char pid[TC_MAX_PID + 1], dn[TC_MAX_DN + 1], secret[TC_MAX_DEV_SECRET + 1];
  char region[TC_MAX_REGION + 1];
};

/* How a record to delete is matched: the device info's and the product info's way. */
static bool match_info_del(const struct subdev_rec *a, const struct subdev_rec *b) {
  return !strcmp(a->pid, b->pid) && !strncmp(a->dn, b->dn, TC_SUBDEV_DEL_DN_MATCH);
}

static bool match_prd_del(const struct subdev_rec *a, const struct subdev_rec *b) {
  return !strcmp(a->pid, b->pid) && !strcmp(a->dn, b->dn) && !strcmp(a->secret, b->secret);
}

static bool match_names(const struct subdev_rec *a, const struct subdev_rec *b) {
  return !strcmp(a->pid, b->pid) && !strcmp(a->dn, b->dn);
}

static bool rec_equal(const struct subdev_rec *a, const struct subdev_rec *b) {
  return match_names(a, b) && !strcmp(a->secret, b->secret) && !strcmp(a->region, b->region);
}

/* ---- the lists in the store ------------------------------------------------------ */

static int rec_load(const cJSON *o, struct subdev_rec *r) {
  return tc_load_str(o, "pid", r->pid, sizeof r->pid) ||
                 tc_load_str(o, "dn", r->dn, sizeof r->dn) ||
                 tc_load_str(o, "secret", r->secret, sizeof r->secret) ||
                 tc_load_str(o, "region", r->region, sizeof r->region)
             ? -1
             : 0;
}

static cJSON *rec_json(const struct subdev_rec *r) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "pid", r->pid);
  cJSON_AddStringToObject(o, "dn", r->dn);
  cJSON_AddStringToObject(o, "secret", r->secret);
  cJSON_AddStringToObject(o, "region", r->region);
  return o;
}

/* A cursor over a list in flash order; a damaged record is skipped. */
struct rec_iter {
  const cJSON *sectors, *sector, *item;
  int sector_no, index; /* of the record last returned */
};

static void iter_start(struct rec_iter *it, struct tc_state *s, const char *key) {
  const cJSON *v = vm_store_get(&s->m->store, key);
  *it = (struct rec_iter){.sectors = cJSON_IsArray(v) ? v : NULL, .sector_no = -1};
}

/* The next record into r: true, or false at the end. */
static bool iter_next(struct rec_iter *it, struct subdev_rec *r) {
  for (;;) {
    it->item = it->item ? it->item->next : NULL;
    while (!it->item) { /* the next sector's first record */
      it->sector = it->sector ? it->sector->next : it->sectors ? it->sectors->child : NULL;
      if (!it->sector || ++it->sector_no >= TC_SUBDEV_SECTORS) {
        it->sectors = NULL;
        return false;
      }
      it->index = -1;
      it->item = cJSON_IsArray(it->sector) ? it->sector->child : NULL;
    }
    it->index++;
    if (rec_load(it->item, r) == 0) return true;
  }
}

/* The first record matching want, into found (may be NULL); its sector and
 * index, or -1. */
static int rec_find(struct tc_state *s, const char *key, const struct subdev_rec *want,
                    bool (*match)(const struct subdev_rec *, const struct subdev_rec *),
                    struct subdev_rec *found, int *index) {
  struct rec_iter it;
  struct subdev_rec r;
  iter_start(&it, s, key);
  while (iter_next(&it, &r)) {
    if (!match(&r, want)) continue;
    if (found) *found = r;
    *index = it.index;
    OPENSSL_cleanse(&r, sizeof r);
    return it.sector_no;
  }
  OPENSSL_cleanse(&r, sizeof r);
  return -1;
}

/* A copy of the stored list with TC_SUBDEV_SECTORS sector arrays. */
static cJSON *list_copy(struct tc_state *s, const char *key) {
  const cJSON *v = vm_store_get(&s->m->store, key);
  cJSON *list = cJSON_IsArray(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateArray();
  if (!list) return NULL;
  while (cJSON_GetArraySize(list) < TC_SUBDEV_SECTORS)
    cJSON_AddItemToArray(list, cJSON_CreateArray());
  return list;
}

/* The list with r added (save_subdev_*_add): in place of the record with its
 * names, else at the end of the first sector with room. *same when nothing
 * changes; NULL when full (*same false) or out of memory. */
static cJSON *list_add(struct tc_state *s, const char *key, const struct subdev_rec *r,
                       bool *same) {
  struct subdev_rec old;
  int index, sector = rec_find(s, key, r, match_names, &old, &index);
  *same = sector >= 0 && rec_equal(&old, r);
  OPENSSL_cleanse(&old, sizeof old);
  if (*same) return NULL;
  cJSON *list = list_copy(s, key);
  if (!list) return NULL;
  if (sector >= 0) {
    cJSON_ReplaceItemInArray(cJSON_GetArrayItem(list, sector), index, rec_json(r));
    return list;
  }
  for (int i = 0; i < TC_SUBDEV_SECTORS; i++) {
    cJSON *sec = cJSON_GetArrayItem(list, i);
    if (cJSON_GetArraySize(sec) < TC_SUBDEV_PER_SECTOR) {
      cJSON_AddItemToArray(sec, rec_json(r));
      return list;
    }
  }
  cJSON_Delete(list); /* "have no room" */
  return NULL;
}

/* The list without the first record matching r, or NULL when none does. */
static cJSON *list_del(struct tc_state *s, const char *key, const struct subdev_rec *r,
                       bool (*match)(const struct subdev_rec *, const struct subdev_rec *)) {
  int index, sector = rec_find(s, key, r, match, NULL, &index);
  if (sector < 0) return NULL;
  cJSON *list = list_copy(s, key);
  if (list) cJSON_DeleteItemFromArray(cJSON_GetArrayItem(list, sector), index);
  return list;
}

/* Adds (mode 0) or deletes (mode 1) r, then the result line: ok, or fail_fmt
 * with 207 (full, or the write failed). */
static enum vm_at_result list_set(struct vm_at *at, const char *key, long mode,
                                  const struct subdev_rec *r,
                                  bool (*del_match)(const struct subdev_rec *,
                                                    const struct subdev_rec *),
                                  const char *ok, const char *fail_fmt) {
  struct tc_state *s = tc_state_of(at);
  bool same = false;
  cJSON *list = mode == 0 ? list_add(s, key, r, &same) : list_del(s, key, r, del_match);
  vm_log_info(s->m->name, "%s %s/%s: %s", key, r->pid, r->dn,
              list ? (mode == 0 ? "stored" : "deleted")
                   : mode == 1 ? "not stored" : same ? "unchanged" : "no room");
  if (!list && mode == 0 && !same) {
    vm_at_printf(at, fail_fmt, TC_E_FLASH);
    return VM_AT_DONE;
  }
  return tc_persist(at, key, list, ok, fail_fmt);
}

/* ---- queries ------------------------------------------------------------------------ */

enum list_form { FORM_INFO, FORM_PRD, FORM_REG };

static enum vm_at_result list_print(struct vm_at *at, const char *key, enum list_form form) {
  struct rec_iter it;
  struct subdev_rec r;
  iter_start(&it, tc_state_of(at), key);
  while (iter_next(&it, &r)) {
    if (form == FORM_INFO)
      vm_at_printf(at, TC_SUBDEVINFO_LIST_FMT, r.pid, r.dn, tc_bcc(r.secret), r.region);
    else if (form == FORM_PRD)
      vm_at_printf(at, TC_SUBDEVPRD_LIST_FMT, r.pid, tc_bcc(r.secret), r.dn, r.region);
    else
      vm_at_printf(at, TC_SUBDEVREG_LIST_FMT, r.pid, r.dn);
  }
  OPENSSL_cleanse(&r, sizeof r);
  return VM_AT_OK;
}

static enum vm_at_result info_query(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  return list_print(at, TC_STORE_SUBDEV, FORM_INFO);
}

static enum vm_at_result prd_query(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  return list_print(at, TC_STORE_SUBPRD, FORM_PRD);
}

static enum vm_at_result reg_query(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  return list_print(at, TC_STORE_SUBDEV, FORM_REG);
}

static enum vm_at_result info_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_SUBDEVINFO_TEST);
  return VM_AT_OK;
}

static enum vm_at_result prd_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_SUBDEVPRD_TEST);
  return VM_AT_OK;
}

static enum vm_at_result reg_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_SUBDEVREG_TEST);
  return VM_AT_OK;
}

/* ---- parameters --------------------------------------------------------------------- */

/* String parameter i of 1..max bytes into dst. Returns 0, or -1 (204). */
static int copy_param(const struct vm_at_args *a, int i, size_t max, char *dst) {
  const char *v;
  if (tc_str_param(a, i, max, &v)) return -1;
  strcpy(dst, v);
  return 0;
}

/* <mode 0|1> first: a non-number is the core ERROR, another value 204. */
static int mode_param(struct vm_at *at, const struct vm_at_args *a, long *mode,
                      enum vm_at_result *r) {
  if (vm_at_arg_int(a, 0, mode) != VM_AT_ARG_OK) {
    *r = vm_at_fail(at, TC_ERR_TYPE);
    return -1;
  }
  if (*mode == 0 || *mode == 1) return 0;
  *r = tc_cme(at, TC_E_PARA);
  return -1;
}

/* The optional region at index i: given (1..24), or the default. *need is
 * the parameter count the command must then have. */
static int region_param(const struct vm_at_args *a, int i, char *region, int *need) {
  *need = i;
  strcpy(region, TC_DEFAULT_REGION);
  if (a->count <= i) return 0;
  *need = i + 1;
  return copy_param(a, i, TC_MAX_REGION, region);
}

/* =<mode>,"<pid>","<dn>","<secret>"[,"<region>"]; a delete (mode 1) may stop
 * after the device name. */
static int info_params(const struct vm_at_args *a, long mode, struct subdev_rec *r) {
  int need = 3;
  if (copy_param(a, 1, TC_MAX_PID, r->pid) || copy_param(a, 2, TC_MAX_DN, r->dn)) return -1;
  strcpy(r->region, TC_DEFAULT_REGION);
  if ((a->count > 3 || mode == 0) &&
      (copy_param(a, 3, TC_MAX_DEV_SECRET, r->secret) || region_param(a, 4, r->region, &need)))
    return -1;
  return a->count == need ? 0 : -1;
}

/* =<mode>,"<pid>","<product_secret>","<dn>"[,"<region>"], for either mode. */
static int prd_params(const struct vm_at_args *a, long mode, struct subdev_rec *r) {
  int need;
  (void)mode;
  if (copy_param(a, 1, TC_MAX_PID, r->pid) || copy_param(a, 2, TC_MAX_PRD_SECRET, r->secret) ||
      copy_param(a, 3, TC_MAX_DN, r->dn) || region_param(a, 4, r->region, &need))
    return -1;
  return a->count == need ? 0 : -1;
}

/* ---- AT+TCSUBDEVINFOSET / AT+TCSUBDEVPRDSET ---------------------------------------- */

/* What tells the two setters apart. */
struct list_kind {
  const char *key; /* in the store */
  int (*params)(const struct vm_at_args *a, long mode, struct subdev_rec *r);
  bool (*del_match)(const struct subdev_rec *stored, const struct subdev_rec *given);
  const char *ok, *fail_fmt;
};

static const struct list_kind info_kind = {TC_STORE_SUBDEV, info_params, match_info_del,
                                           TC_SUBDEVINFO_OK, TC_SUBDEVINFO_FAIL_FMT};
static const struct list_kind prd_kind = {TC_STORE_SUBPRD, prd_params, match_prd_del,
                                          TC_SUBDEVPRD_OK, TC_SUBDEVPRD_FAIL_FMT};

static enum vm_at_result kind_set(struct vm_at *at, const struct vm_at_args *a,
                                  const struct list_kind *k) {
  struct subdev_rec r = {0};
  enum vm_at_result res;
  long mode;
  if (mode_param(at, a, &mode, &res)) return res;
  if (k->params(a, mode, &r)) {
    res = tc_cme(at, TC_E_PARA);
  } else {
    vm_at_puts(at, TC_HANDLER_OK);
    res = list_set(at, k->key, mode, &r, k->del_match, k->ok, k->fail_fmt);
  }
  OPENSSL_cleanse(&r, sizeof r);
  return res;
}

static enum vm_at_result info_set(struct vm_at *at, const struct vm_at_args *a) {
  return kind_set(at, a, &info_kind);
}

static enum vm_at_result prd_set(struct vm_at *at, const struct vm_at_args *a) {
  return kind_set(at, a, &prd_kind);
}

/* ---- AT+TCSUBDEVREG ------------------------------------------------------------------ */

static void reg_fail(struct vm_at *at, int code) {
  vm_at_printf(at, TC_SUBDEVREG_FAIL_FMT, TC_SUBDEVREG_CODE(code));
}

/* The registration's end: the new triple joins the sub-device info list
 * with the product info's region. */
static void reg_done(struct tc_state *s, const struct tc_prdinfo *p, int code, const char *psk,
                     void *data) {
  struct vm_at *at = &s->m->at;
  struct subdev_rec r = {0};
  (void)data;
  if (code) {
    reg_fail(at, code);
    vm_at_complete(at, VM_AT_DONE);
    return;
  }
  strcpy(r.pid, p->pid);
  strcpy(r.dn, p->dn);
  strcpy(r.secret, psk);
  strcpy(r.region, p->region);
  if (list_set(at, TC_STORE_SUBDEV, 0, &r, match_info_del, TC_SUBDEVREG_OK,
               TC_SUBDEVREG_FAIL_FMT) != VM_AT_PENDING)
    vm_at_complete(at, VM_AT_DONE);
  OPENSSL_cleanse(&r, sizeof r);
}

/* AT+TCSUBDEVREG="<pid>","<dn>": with the sub-device product info stored for
 * exactly that product and device name. */
static enum vm_at_result reg_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct subdev_rec want = {0}, prd;
  int gate = tc_setter_gate(at), index;
  if (gate) return tc_cme(at, gate);
  if (copy_param(a, 0, TC_MAX_PID, want.pid) || copy_param(a, 1, TC_MAX_DN, want.dn) ||
      a->count != 2)
    return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);
  if (rec_find(s, TC_STORE_SUBPRD, &want, match_names, &prd, &index) < 0) {
    reg_fail(at, TC_E_PARA);
    return VM_AT_DONE;
  }
  struct tc_prdinfo p = {.tls = 1};
  strcpy(p.pid, prd.pid);
  strcpy(p.secret, prd.secret);
  strcpy(p.dn, prd.dn);
  strcpy(p.region, prd.region);
  OPENSSL_cleanse(&prd, sizeof prd);
  int code = tc_dynreg_request(s, &p, reg_done, NULL);
  OPENSSL_cleanse(&p, sizeof p);
  if (!code) return VM_AT_PENDING;
  reg_fail(at, code);
  return VM_AT_DONE;
}

/* Secret parameters (redacted in traces): the device secret of INFOSET
 * (index 3), the product secret of PRDSET (index 2). */
const struct vm_at_cmd tc_subdev_cmds[] = {
    {.name = "+TCSUBDEVINFOSET", .test = info_test, .query = info_query, .set = info_set,
     .secret_mask = 1u << 3},
    {.name = "+TCSUBDEVPRDSET", .test = prd_test, .query = prd_query, .set = prd_set,
     .secret_mask = 1u << 2},
    {.name = "+TCSUBDEVREG", .test = reg_test, .query = reg_query, .set = reg_set},
};
const size_t tc_subdev_ncmds = sizeof tc_subdev_cmds / sizeof tc_subdev_cmds[0];

/* ---- for the gateway and AT+TCRESTORE --------------------------------------------- */

bool tc_subdev_supported(struct tc_state *s) {
  const struct tc_variant *v = tc_fw_variant(s);
  return (v ? v : s->cfg->variant)->subdev;
}

int tc_subdev_secret(struct tc_state *s, const char *pid, const char *dn, char *out, size_t cap) {
  struct subdev_rec want = {0}, found;
  int index;
  snprintf(want.pid, sizeof want.pid, "%s", pid);
  snprintf(want.dn, sizeof want.dn, "%s", dn);
  if (rec_find(s, TC_STORE_SUBDEV, &want, match_names, &found, &index) < 0) return -1;
  int n = snprintf(out, cap, "%s", found.secret);
  OPENSSL_cleanse(&found, sizeof found);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

void tc_subdev_erase(struct tc_state *s) {
  vm_store_put(&s->m->store, TC_STORE_SUBDEV, NULL);
  vm_store_put(&s->m->store, TC_STORE_SUBPRD, NULL);
}
