/* tc_diag.c - the diagnostic commands the QCloud firmware registers beside
 * the TC set (reference §3.14): AT+TCLOG, the SDK's log level, and AT+NTP,
 * the module's clock.
 *
 * AT+TCLOG only changes what the SDK would print on the ESP's debug UART,
 * which a virtual module does not have: the level is kept (RAM, ERROR after
 * every boot) and reported, exactly as the firmware parses and checks it.
 *
 * AT+NTP starts SNTP and waits for the clock the way the firmware's
 * setup_sntp() does: one-second sleeps, the clock checked after each, nine at
 * most (its loop sleeps once even when the clock is already set). The
 * emulated SNTP has answered by the first check when Wi-Fi is up (the clock
 * then follows the host's); without Wi-Fi all nine pass and the module
 * reports its unset clock, which counts seconds since boot as an ESP8266's
 * does. The command is pending meanwhile (other lines get busy). */
#include <stdlib.h>
#include <time.h>

#include "vmodule/module.h"
#include "tencent.h"


struct tc_diag {
  struct tc_state *s;
  int log_level;
  bool clock_set;     /* set by AT+NTP (the esp-at SNTP client counts too) */
  uint64_t boot_ms;   /* uv_now() at power-on: the unset clock's zero */
  uv_timer_t poll;
  int polls;
};

static struct tc_diag *diag_of(struct vm_at *at) { return tc_state_of(at)->diag; }

static bool clock_is_set(const struct tc_diag *d) { return d->clock_set || d->s->esp.sntp_synced; }

/* time() of the ESP: UTC once set, else seconds since boot. */
static long long module_time(const struct tc_diag *d) {
  if (clock_is_set(d)) return (long long)time(NULL);
  return (long long)((uv_now(d->s->m->loop) - d->boot_ms) / 1000);
}

/* ---- AT+TCLOG ---------------------------------------------------------------------- */

static enum vm_at_result log_test(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_puts(at, TC_LOG_TEST);
  return VM_AT_OK;
}

static enum vm_at_result log_query(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_printf(at, TC_LOG_QUERY_FMT, diag_of(at)->log_level);
  return VM_AT_OK;
}

/* AT+TCLOG=<password>,<level> */
static enum vm_at_result log_set(struct vm_at *at, const struct vm_at_args *a) {
  struct tc_diag *d = diag_of(at);
  long psw, level;
  if (vm_at_arg_int(a, 0, &psw) != VM_AT_ARG_OK || vm_at_arg_int(a, 1, &level) != VM_AT_ARG_OK)
    return vm_at_fail(at, a->count < 2 ? TC_ERR_COUNT(2, a->count) : TC_ERR_TYPE);
  if (a->count != 2) return vm_at_fail(at, TC_ERR_COUNT(2, a->count));
  if (psw != TC_LOG_PASSWORD) {
    d->log_level = TC_LOG_ERROR;
    return VM_AT_OK;
  }
  if (level < 0 || level > TC_LOG_DEBUG) return tc_cme(at, TC_E_PARA);
  d->log_level = (int)level;
  return VM_AT_OK;
}

/* ---- AT+NTP ------------------------------------------------------------------------ */

static void ntp_poll(uv_timer_t *t) {
  struct tc_diag *d = t->data;
  struct vm_at *at = &d->s->m->at;
  if (d->s->esp.connected) d->clock_set = true; /* the server answered */
  if (!clock_is_set(d) && ++d->polls < TC_NTP_POLLS) return;
  uv_timer_stop(&d->poll);
  vm_at_printf(at, TC_NTP_FMT, module_time(d));
  vm_at_complete(at, VM_AT_DONE);
}

/* The polls end with +NTP:<sec> (ntp_poll). */
static enum vm_at_result ntp_start(struct vm_at *at) {
  struct tc_diag *d = diag_of(at);
  d->polls = 0;
  uv_timer_start(&d->poll, ntp_poll, TC_NTP_POLL_MS, TC_NTP_POLL_MS);
  return VM_AT_PENDING;
}

static enum vm_at_result ntp_query(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  vm_at_printf(at, TC_NTP_QUERY_FMT, module_time(diag_of(at)));
  return VM_AT_OK;
}

/* AT+NTP="<time zone>","<server>": the zone only changes local time, which
 * nothing printed here uses; the server is not contacted (the host's clock
 * stands for every server). */
static enum vm_at_result ntp_set(struct vm_at *at, const struct vm_at_args *a) {
  const char *tz, *server;
  if (vm_at_arg_str(a, 0, &tz, NULL) != VM_AT_ARG_OK ||
      vm_at_arg_str(a, 1, &server, NULL) != VM_AT_ARG_OK || a->count != 2)
    return tc_cme(at, TC_E_PARA);
  vm_at_puts(at, TC_HANDLER_OK);
  return ntp_start(at);
}

static enum vm_at_result ntp_exec(struct vm_at *at, const struct vm_at_args *a) {
  (void)a;
  return ntp_start(at);
}

const struct vm_at_cmd tc_diag_cmds[] = {
    {.name = "+TCLOG", .test = log_test, .query = log_query, .set = log_set},
    {.name = "+NTP", .query = ntp_query, .set = ntp_set, .exec = ntp_exec},
};
const size_t tc_diag_ncmds = sizeof tc_diag_cmds / sizeof tc_diag_cmds[0];

/* ---- life cycle ------------------------------------------------------------------- */

int tc_diag_init(struct tc_state *s) {
  struct tc_diag *d = calloc(1, sizeof *d);
  if (!d) return -1;
  d->s = s;
  s->diag = d;
  uv_timer_init(s->m->loop, &d->poll);
  d->poll.data = d;
  return 0;
}

void tc_diag_power_on(struct tc_state *s) {
  s->diag->log_level = TC_LOG_ERROR;
  s->diag->clock_set = false;
  s->diag->boot_ms = uv_now(s->m->loop);
}

void tc_diag_power_off(struct tc_state *s) { uv_timer_stop(&s->diag->poll); }

static void poll_closed(uv_handle_t *h) { free(h->data); }

void tc_diag_destroy(struct tc_state *s) {
  if (!s->diag) return;
  uv_close((uv_handle_t *)&s->diag->poll, poll_closed);
  s->diag = NULL;
}
