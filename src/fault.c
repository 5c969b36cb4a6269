/* fault.c - the fault verbs (fault.h): one dispatcher for the control socket
 * and the scheduled faults of a module's config, the verbs every module has
 * (power, reboot, urc), and the schedule itself.
 *
 * The schedule is a list run in order: an entry is armed when the one before
 * it has fired (the first at the module's first power-on); "at_ms" fires
 * that long after power-on (at once if that time has passed when it is
 * armed), "after" when the output towards the MCU written since it was armed
 * matches its regex. Its state (struct vm_fault_run) exists only on modules
 * that have a schedule. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/at.h"
#include "vmodule/dialect.h"
#include "vmodule/event.h"
#include "vmodule/fault.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/netfault.h"
#include "vmodule/serfault.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

/* ---- words -------------------------------------------------------------- */

int vm_fault_split(char *s, char **argv, int max) {
  int n = 0;
  while (*s) {
    while (*s == ' ' || *s == '\t') *s++ = '\0';
    if (!*s) break;
    if (n == max) return -1;
    argv[n++] = s;
    if (n == 2 && !strcmp(argv[0], "urc")) return n; /* the rest is the text */
    while (*s && *s != ' ' && *s != '\t') s++;
  }
  return n;
}

static int hexval(int c) {
  return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

long vm_fault_unescape(char *s) {
  char *o = s;
  for (const char *p = s; *p; p++) {
    if (*p != '\\') {
      *o++ = *p;
      continue;
    }
    switch (*++p) {
    case 'r': *o++ = '\r'; break;
    case 'n': *o++ = '\n'; break;
    case 't': *o++ = '\t'; break;
    case '\\': *o++ = '\\'; break;
    case '"': *o++ = '"'; break;
    case '\'': *o++ = '\''; break;
    case 'x': {
      int h = hexval((unsigned char)p[1]), l = h >= 0 ? hexval((unsigned char)p[2]) : -1;
      if (h < 0 || l < 0) return -1;
      *o++ = (char)(h * 16 + l);
      p += 2;
      break;
    }
    default:
      if (*p >= '0' && *p <= '7') {
        int v = 0, k = 0;
        for (; k < 3 && p[k] >= '0' && p[k] <= '7'; k++) v = v * 8 + (p[k] - '0');
        if (v > 255) return -1;
        *o++ = (char)v;
        p += k - 1;
        break;
      }
      return -1; /* also a lone trailing backslash */
    }
  }
  *o = '\0';
  return o - s;
}

/* ---- the verbs every module has ---------------------------------------- */

static int check_common(int argc, char **argv, char *err, size_t errlen) {
  const char *v = argv[0];
  if (!strcmp(v, "power")) {
    if (argc != 2 || (strcmp(argv[1], "off") && strcmp(argv[1], "on") && strcmp(argv[1], "cycle")))
      return ERR("power: expected off, on or cycle");
    return 0;
  }
  if (!strcmp(v, "reboot")) return argc == 1 ? 0 : ERR("reboot: takes no argument");
  if (!strcmp(v, "urc")) {
    if (argc != 2 || !argv[1][0]) return ERR("urc: expected the TEXT to write");
    char tmp[1024];
    if (strlen(argv[1]) >= sizeof tmp) return ERR("urc: TEXT longer than 1023 bytes");
    memcpy(tmp, argv[1], strlen(argv[1]) + 1);
    if (vm_fault_unescape(tmp) < 0) return ERR("urc: bad escape in TEXT");
    return 0;
  }
  return VM_FAULT_UNSUPPORTED;
}

static int apply_common(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  int rc = check_common(argc, argv, err, errlen);
  if (rc) return rc;
  if (!strcmp(argv[0], "power")) {
    if (strcmp(argv[1], "on")) vm_module_power_cut(m);
    if (strcmp(argv[1], "off")) vm_module_power_restore(m);
  } else if (!strcmp(argv[0], "reboot")) {
    if (m->power_cut) return ERR("reboot: the module has no power");
    vm_module_reboot(m);
  } else { /* urc */
    if (!m->powered) return ERR("urc: the module is not powered");
    char text[1024];
    memcpy(text, argv[1], strlen(argv[1]) + 1);
    long n = vm_fault_unescape(text);
    vm_at_urc(&m->at, text, (size_t)n);
  }
  return 0;
}

static bool is_dialect_verb(const char *v) {
  return !strcmp(v, "wifi") || !strcmp(v, "cell") || !strcmp(v, "smartconfig");
}

int vm_fault_check(const struct vm_module_config *cfg, int argc, char **argv, char *err,
                   size_t errlen) {
  if (argc < 1) return ERR("expected a fault (power, reboot, urc, wifi, cell, smartconfig, net, serial)");
  int rc = check_common(argc, argv, err, errlen);
  if (rc != VM_FAULT_UNSUPPORTED) return rc;
  if (!strcmp(argv[0], "net")) return vm_netfault_check(argc, argv, err, errlen);
  if (!strcmp(argv[0], "serial")) return vm_serfault_check(argc, argv, err, errlen);
  if (is_dialect_verb(argv[0])) {
    rc = cfg->dialect->fault_check
             ? cfg->dialect->fault_check(cfg->dialect_conf, argc, argv, err, errlen)
             : VM_FAULT_UNSUPPORTED;
    if (rc == VM_FAULT_UNSUPPORTED)
      return ERR("%s: not a fault of the %s dialect", argv[0], cfg->dialect->name);
    return rc;
  }
  return ERR("%s: unknown fault (power, reboot, urc, wifi, cell, smartconfig, net, serial)", argv[0]);
}

static void fired(struct vm_module *m, int argc, char **argv) {
  char text[1100];
  size_t len = 0;
  /* `smartconfig SSID PASSWORD`: the Wi-Fi password stays out of logs and events */
  bool secret = !strcmp(argv[0], "smartconfig") && argc == 3;
  for (int i = 0; i < argc && len < sizeof text; i++)
    len += (size_t)snprintf(text + len, sizeof text - len, "%s%s", i ? " " : "",
                            secret && i == 2 ? "***" : argv[i]);
  m->stats.faults_fired++;
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, "do", text);
  vm_event(m->name, "fault", f);
  vm_log_info(m->name, "fault: %s", text);
}

int vm_fault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  if (argc < 1) return ERR("expected a fault (power, reboot, urc, wifi, cell, smartconfig, net, serial)");
  /* the words are logged and evented after the handler ran: copy them first
   * (urc unescapes its own copy, the handlers never change argv) */
  int rc = apply_common(m, argc, argv, err, errlen);
  if (rc == VM_FAULT_UNSUPPORTED) {
    if (!strcmp(argv[0], "net"))
      rc = vm_netfault_apply(m, argc, argv, err, errlen);
    else if (!strcmp(argv[0], "serial"))
      rc = vm_serfault_apply(m, argc, argv, err, errlen);
    else if (is_dialect_verb(argv[0])) {
      rc = m->dialect->fault ? m->dialect->fault(m, argc, argv, err, errlen)
                             : VM_FAULT_UNSUPPORTED;
      if (rc == VM_FAULT_UNSUPPORTED)
        return ERR("%s: not a fault of the %s dialect", argv[0], m->dialect->name);
    } else
      return ERR("%s: unknown fault (power, reboot, urc, wifi, cell, smartconfig, net, serial)", argv[0]);
  }
  if (rc == 0) fired(m, argc, argv);
  return rc;
}

/* ---- the schedule ------------------------------------------------------- */

struct vm_fault_run {
  struct vm_module *m;
  uv_timer_t timer;
  uint64_t power_on_ms; /* uv_now() at the first power-on */
  int next;             /* the armed entry; nfaults when all have fired */
  uint64_t *fired_at;   /* ms after power-on, per entry; UINT64_MAX = not yet */
  struct vm_watch *watch;
  bool started;
};

static void sched_arm(struct vm_fault_run *r);

static void sched_fire(struct vm_fault_run *r) {
  struct vm_module *m = r->m;
  const struct vm_fault_sched *f = &m->cfg->faults[r->next];
  char buf[1024], *argv[VM_FAULT_MAX_WORDS], err[256];
  snprintf(buf, sizeof buf, "%s", f->action);
  int argc = vm_fault_split(buf, argv, VM_FAULT_MAX_WORDS);
  r->fired_at[r->next] = uv_now(m->loop) - r->power_on_ms;
  r->next++;
  if (argc > 0 && vm_fault_apply(m, argc, argv, err, sizeof err)) {
    vm_log_warn(m->name, "scheduled fault \"%s\" failed: %s", f->action, err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "do", f->action);
    cJSON_AddStringToObject(o, "error", err);
    vm_event(m->name, "warn", o);
  }
  if (!m->closing) sched_arm(r);
}

static void sched_timer_cb(uv_timer_t *t) { sched_fire(t->data); }

/* Runs inside the module's output path: the fault itself waits for the next
 * loop turn (a power cut must not tear down a dialect in mid-reply). */
static void sched_watch_cb(void *ctx) {
  struct vm_fault_run *r = ctx;
  r->watch = NULL; /* a watch fires once and is freed by module.c */
  uv_timer_start(&r->timer, sched_timer_cb, 0, 0);
}

static void sched_arm(struct vm_fault_run *r) {
  struct vm_module *m = r->m;
  if (r->next >= m->cfg->nfaults) return;
  const struct vm_fault_sched *f = &m->cfg->faults[r->next];
  if (f->at_ms >= 0) {
    uint64_t due = r->power_on_ms + (uint64_t)f->at_ms, now = uv_now(m->loop);
    uv_timer_start(&r->timer, sched_timer_cb, due > now ? due - now : 0, 0);
    return;
  }
  char err[128];
  r->watch = vm_module_watch(m, f->after, sched_watch_cb, r, err, sizeof err);
  if (!r->watch) vm_log_error(m->name, "scheduled fault \"%s\": %s", f->action, err);
}

int vm_fault_sched_start(struct vm_module *m) {
  if (!m->cfg->nfaults) return 0;
  struct vm_fault_run *r = m->sched;
  if (!r) {
    if (!(r = calloc(1, sizeof *r)) ||
        !(r->fired_at = malloc((size_t)m->cfg->nfaults * sizeof *r->fired_at))) {
      free(r);
      return -1;
    }
    for (int i = 0; i < m->cfg->nfaults; i++) r->fired_at[i] = UINT64_MAX;
    r->m = m;
    uv_timer_init(m->loop, &r->timer);
    r->timer.data = r;
    m->sched = r;
  }
  if (r->started) return 0;
  r->started = true;
  r->power_on_ms = uv_now(m->loop);
  sched_arm(r);
  return 0;
}

static void sched_closed(uv_handle_t *h) {
  struct vm_fault_run *r = h->data;
  free(r->fired_at);
  free(r);
}

void vm_fault_sched_stop(struct vm_module *m) {
  struct vm_fault_run *r = m->sched;
  if (!r) return;
  if (r->watch) vm_module_unwatch(m, r->watch);
  r->watch = NULL;
  m->sched = NULL;
  uv_close((uv_handle_t *)&r->timer, sched_closed);
}

void vm_fault_sched_status(struct vm_module *m, cJSON *obj) {
  if (!m->cfg->nfaults) return;
  cJSON *arr = cJSON_AddArrayToObject(obj, "faults");
  for (int i = 0; i < m->cfg->nfaults; i++) {
    const struct vm_fault_sched *f = &m->cfg->faults[i];
    cJSON *e = cJSON_CreateObject();
    if (f->at_ms >= 0)
      cJSON_AddNumberToObject(e, "at_ms", (double)f->at_ms);
    else
      cJSON_AddStringToObject(e, "after", f->after);
    cJSON_AddStringToObject(e, "do", f->action);
    uint64_t at = m->sched ? m->sched->fired_at[i] : UINT64_MAX;
    cJSON_AddBoolToObject(e, "fired", at != UINT64_MAX);
    if (at != UINT64_MAX) cJSON_AddNumberToObject(e, "fired_ms", (double)at);
    cJSON_AddItemToArray(arr, e);
  }
}

void vm_fault_sched_report(struct vm_module *m) {
  for (int i = 0; i < m->cfg->nfaults; i++) {
    if (m->sched && m->sched->fired_at[i] != UINT64_MAX) continue;
    vm_log_warn(m->name, "scheduled fault %d (\"%s\") never fired", i, m->cfg->faults[i].action);
  }
}

void vm_fault_sched_free(struct vm_fault_sched *f, int n) {
  for (int i = 0; f && i < n; i++) {
    free(f[i].after);
    free(f[i].action);
  }
  free(f);
}
