/* tc_ota.c - the OTA commands of the tencent dialect (reference §3.10):
 * AT+TCOTASET, AT+TCFWINFO and AT+TCREADFWDATA.
 *
 * This first increment holds the command forms and their gates: TCOTASET
 * (test, query with the "flag set before the connection check" quirk, set
 * with 0..3 accepted, 208/200 gates, the $ota/update subscription and the
 * version report of §7.5), and the test forms and error paths of TCFWINFO /
 * TCREADFWDATA on the stored firmware record (TC_STORE_FWINFO). The
 * download itself (update_firmware, HTTP(S) with Range, the image file, the
 * URCs) is not implemented yet: without a record both answer 207. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/module.h"
#include "vmodule/store.h"
#include "tencent.h"

struct tc_ota {
  bool enabled;                           /* the query's flag (RAM only, §5) */
  char version[TC_MAX_OTA_VERSION + 1];   /* last version set */
};

/* ---- AT+TCOTASET --------------------------------------------------------- */

static enum vm_at_result otaset_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_OTASET_TEST);
  return VM_AT_OK;
}

static enum vm_at_result otaset_query(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_ota *o = tc_state_of(at)->ota;
  (void)a;
  vm_at_printf(at, TC_OTASET_QUERY_FMT, o->enabled ? 1 : 0, o->version);
  return VM_AT_OK;
}

/* Subscribes $ota/update and reports the version. 0, or the FAIL code. */
static int ota_enable(struct tc_state *s, const char *version) {
  const struct tc_devinfo *d = tc_mqtt_device(s);
  char topic[TC_MAX_TOPIC + 1], msg[128];
  snprintf(topic, sizeof topic, TC_OTA_UPDATE_TOPIC_FMT, d->pid, d->dn);
  if (tc_mqtt_svc_subscribe(s, topic) < 0) return TC_E_EXEC;
  snprintf(topic, sizeof topic, TC_OTA_REPORT_TOPIC_FMT, d->pid, d->dn);
  snprintf(msg, sizeof msg, TC_OTA_REPORT_VERSION_FMT, version);
  return tc_mqtt_svc_publish(s, topic, msg) < 0 ? TC_E_EXEC : 0;
}

static enum vm_at_result otaset_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  struct tc_ota *o = s->ota;
  long mode;
  const char *ver;
  size_t n;
  if (a->count != 2 || vm_at_arg_int(a, 0, &mode) != VM_AT_ARG_OK || mode < 0 || mode > 3 ||
      vm_at_arg_str(a, 1, &ver, &n) != VM_AT_ARG_OK || n == 0 || n > TC_MAX_OTA_VERSION)
    return tc_cme(at, TC_E_PARA);
  o->enabled = mode != 0; /* set before the connection check (quirk, §3.10) */
  memcpy(o->version, ver, n + 1);
  if (mode != 0) {
    if (!tc_mqtt_connected(s)) return tc_cme(at, TC_E_STATE);
    if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  }
  vm_at_puts(at, TC_HANDLER_OK);
  int code = mode != 0 ? ota_enable(s, o->version) : 0;
  if (code) vm_at_printf(at, TC_OTASET_FAIL_FMT, code);
  else vm_at_puts(at, TC_OTASET_OK);
  return VM_AT_DONE;
}

/* ---- AT+TCFWINFO / AT+TCREADFWDATA ---------------------------------------- */

static enum vm_at_result fwinfo_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_FWINFO_TEST);
  return VM_AT_OK;
}

/* The record gate shared by both: 200 downloading, 207 no record. */
static int record_gate(struct tc_state *s) {
  if (s->fw_downloading) return TC_E_DEALING;
  if (!cJSON_IsObject(vm_store_get(&s->m->store, TC_STORE_FWINFO))) return TC_E_FLASH;
  return TC_E_STATE; /* only MCU_VALID records can be read: none are made yet */
}

static enum vm_at_result fwinfo_query(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  return tc_cme(at, record_gate(tc_state_of(at)));
}

static enum vm_at_result readfw_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_READFW_TEST);
  return VM_AT_OK;
}

static enum vm_at_result readfw_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_state *s = tc_state_of(at);
  long len;
  if (s->fw_downloading) return tc_cme(at, TC_E_DEALING);
  if (vm_at_arg_int(a, 0, &len) != VM_AT_ARG_OK) return tc_cme(at, TC_E_PARA);
  int gate = record_gate(s);
  if (gate != TC_E_STATE || len <= TC_MAX_READFW) return tc_cme(at, gate);
  return tc_cme(at, TC_E_PARA);
}

const struct vm_at_cmd tc_ota_cmds[] = {
    {.name = "+TCOTASET", .test = otaset_test, .query = otaset_query, .set = otaset_set},
    {.name = "+TCFWINFO", .test = fwinfo_test, .query = fwinfo_query},
    {.name = "+TCREADFWDATA", .test = readfw_test, .set = readfw_set},
};
const size_t tc_ota_ncmds = sizeof tc_ota_cmds / sizeof tc_ota_cmds[0];

/* ---- life cycle ------------------------------------------------------------ */

int tc_ota_init(struct tc_state *s) {
  s->ota = calloc(1, sizeof *s->ota);
  return s->ota ? 0 : -1;
}

void tc_ota_power_off(struct tc_state *s) {
  if (s->ota) memset(s->ota, 0, sizeof *s->ota); /* OTASET flag and version are RAM only */
}

void tc_ota_destroy(struct tc_state *s) {
  free(s->ota);
  s->ota = NULL;
}
