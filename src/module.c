/* module.c - one virtual module: wires the serial endpoints, the TX queue,
 * the trace, the AT engine, the store and the dialect together, and runs the
 * module's power cycle (power-on boot delay, banner, AT+RST reboot). */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/event.h"
#include "vmodule/fault.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/netfault.h"
#include "vmodule/serfault.h"
#include "vmodule/tracetap.h"

/* ---- byte paths -------------------------------------------------------- */

/* ---- output matchers (vm_module_watch) --------------------------------- */

struct vm_watch {
  struct vm_watch *next;
  regex_t re;
  void (*cb)(void *ctx);
  void *ctx;
  bool matched;
  size_t len;
  char win[VM_WATCH_WINDOW]; /* the last bytes written since the watch began */
};

/* POSIX regexes have no escapes for control bytes: \r \n \t and \xNN
 * become the bytes themselves, every other backslash stays for regcomp. */
static char *watch_pattern(const char *re) {
  char *out = malloc(strlen(re) + 1), *o = out;
  if (!out) return NULL;
  for (const char *p = re; *p; p++) {
    if (p[0] == '\\' && (p[1] == 'r' || p[1] == 'n' || p[1] == 't')) {
      *o++ = p[1] == 'r' ? '\r' : p[1] == 'n' ? '\n' : '\t';
      p++;
    } else if (p[0] == '\\' && p[1] == 'x' && isxdigit((unsigned char)p[2]) &&
               isxdigit((unsigned char)p[3])) {
      char hex[3] = {p[2], p[3], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      p += 3;
    } else if (p[0] == '\\' && p[1]) {
      *o++ = *p++;
      *o++ = *p;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

struct vm_watch *vm_module_watch(struct vm_module *m, const char *regex, void (*cb)(void *ctx),
                                 void *ctx, char *err, size_t errlen) {
  struct vm_watch *w = malloc(sizeof *w);
  if (!w) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  char *pat = watch_pattern(regex);
  int rc = pat ? regcomp(&w->re, pat, REG_EXTENDED | REG_NOSUB) : REG_ESPACE;
  free(pat);
  if (rc) {
    char why[128];
    regerror(rc, &w->re, why, sizeof why);
    snprintf(err, errlen, "bad regex: %s", why);
    free(w);
    return NULL;
  }
  w->cb = cb;
  w->ctx = ctx;
  w->matched = false;
  w->len = 0;
  w->next = m->watches;
  m->watches = w;
  return w;
}

void vm_module_unwatch(struct vm_module *m, struct vm_watch *w) {
  for (struct vm_watch **p = &m->watches; *p; p = &(*p)->next) {
    if (*p != w) continue;
    *p = w->next;
    regfree(&w->re);
    free(w);
    return;
  }
}

static void watch_feed(struct vm_watch *w, const char *buf, size_t len) {
  if (len >= VM_WATCH_WINDOW) {
    memcpy(w->win, buf + len - VM_WATCH_WINDOW, VM_WATCH_WINDOW);
    w->len = VM_WATCH_WINDOW;
  } else {
    if (w->len + len > VM_WATCH_WINDOW) {
      size_t drop = w->len + len - VM_WATCH_WINDOW;
      memmove(w->win, w->win + drop, w->len - drop);
      w->len -= drop;
    }
    memcpy(w->win + w->len, buf, len);
    w->len += len;
  }
  regmatch_t span = {.rm_so = 0, .rm_eo = (regoff_t)w->len};
  w->matched = regexec(&w->re, w->win, 1, &span, REG_STARTEND) == 0;
}

/* Every watch sees the bytes first; then the matched ones fire, each once
 * (a callback may add or remove watches: a new one sees only later bytes). */
static void watches_feed(struct vm_module *m, const void *buf, size_t len) {
  for (struct vm_watch *w = m->watches; w; w = w->next) watch_feed(w, buf, len);
  for (;;) {
    struct vm_watch *w = m->watches;
    while (w && !w->matched) w = w->next;
    if (!w) return;
    void (*cb)(void *) = w->cb;
    void *ctx = w->ctx;
    vm_module_unwatch(m, w);
    cb(ctx);
  }
}

static void watches_free(struct vm_module *m) {
  while (m->watches) vm_module_unwatch(m, m->watches);
}

void vm_module_tx(struct vm_module *m, const void *buf, size_t len) {
  if (m->closing) return;
  m->stats.tx_bytes += len;
  for (const char *p = buf, *end = p + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
    m->stats.tx_lines++;
  vm_txq_write(&m->txq, buf, len);
  if (m->watches) watches_feed(m, buf, len);
}

static void module_at_write(void *ctx, const void *buf, size_t len) {
  vm_module_tx(ctx, buf, len);
}

static void module_at_trace(void *ctx, char dir, const void *buf, size_t len) {
  struct vm_module *m = ctx;
  if (m->trace) vm_trace_data(m->trace, dir, buf, len);
  if (m->taps) vm_tracetap_feed(m, dir, buf, len);
}

static void module_at_reboot(void *ctx) { vm_module_reboot(ctx); }

static void module_at_urc(void *ctx, const void *buf, size_t len) {
  struct vm_module *m = ctx;
  if (!vm_event_want_urcs()) return;
  const char *b = buf;
  while (len && (b[len - 1] == '\n' || b[len - 1] == '\r')) len--;
  while (len && (b[0] == '\n' || b[0] == '\r')) b++, len--;
  char text[1024];
  vm_trace_escape(b, len > 250 ? 250 : len, text, sizeof text);
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, "text", text);
  vm_event(m->name, "urc", f);
}

static void module_apply_power(struct vm_module *m, const char *why);

/* power_on "first-byte": the byte that applies the power reaches a module
 * still booting, which drops it (vm_at_input) as esp-at does while booting. */
static void module_input(void *data, const char *buf, size_t len) {
  struct vm_module *m = data;
  if (m->closing) return;
  m->stats.rx_bytes += len;
  if (m->cfg->power_on == VM_POWER_FIRST_BYTE) module_apply_power(m, "first byte from the MCU");
  vm_at_input(&m->at, buf, len);
}

static void module_pty_presence(void *data, int clients) {
  struct vm_module *m = data;
  if (!m->closing && clients > 0 && m->cfg->power_on == VM_POWER_FIRST_OPEN)
    module_apply_power(m, "serial port opened");
}

/* A socket client takes the output while connected; when it goes, the other
 * socket endpoint's client does, else the PTY (none without pty_link). */
static void module_sock_presence(void *data, struct vm_sockep *ep, int connected) {
  struct vm_module *m = data;
  if (m->closing) return;
  if (connected) {
    if (m->cfg->power_on == VM_POWER_FIRST_OPEN)
      module_apply_power(m, ep == m->tcp ? "tcp client connected" : "unix client connected");
    vm_txq_set_sink(&m->txq, &ep->sink);
  } else if (m->txq.sink == &ep->sink) {
    struct vm_sockep *other = ep == m->tcp ? m->usock : m->tcp;
    vm_txq_set_sink(&m->txq, vm_sockep_connected(other) ? &other->sink
                             : m->pty.loop                ? &m->pty.sink
                                                          : NULL);
  }
  if (m->trace)
    vm_trace_note(m->trace, "%s client %s", ep->ops->kind, connected ? "connected" : "disconnected");
}

/* ---- power cycle ------------------------------------------------------- */

static void module_booted(uv_timer_t *t) {
  struct vm_module *m = t->data;
  if (m->closing) return;
  m->powered = true;
  vm_at_power(&m->at, true);
  if (m->trace) vm_trace_note(m->trace, "power on");
  if (m->at.style->ready) vm_at_puts(&m->at, m->at.style->ready);
  if (m->dialect->power_on) m->dialect->power_on(m);
}

static void module_boot(struct vm_module *m) {
  vm_at_reset(&m->at, m->cfg->echo);
  m->powered = false;
  uv_timer_start(&m->boot_timer, module_booted, m->cfg->boot_ms, 0);
}

/* Power is applied once, at the moment cfg->power_on names: by default when
 * the MCU first opens the serial port (PTY or TCP), so the boot banner is
 * never written into a line nobody listens to (pyserial, for one, flushes
 * its input when it opens the port); or at its first byte, or at start. */
static void module_apply_power(struct vm_module *m, const char *why) {
  if (m->power_applied || m->closing) return;
  m->power_applied = true;
  vm_log_info(m->name, "%s: powering on", why);
  vm_event_state(m->name, "power", "on");
  module_boot(m);
  if (vm_fault_sched_start(m) < 0) vm_log_error(m->name, "out of memory: no scheduled faults");
}

void vm_module_power_on(struct vm_module *m) { module_apply_power(m, "power applied"); }

void vm_module_power_cut(struct vm_module *m) {
  if (m->closing || m->power_cut) return;
  vm_log_info(m->name, "power cut");
  if (m->trace) vm_trace_note(m->trace, "power cut");
  if (m->powered && m->dialect->power_off) m->dialect->power_off(m);
  uv_timer_stop(&m->boot_timer);
  vm_at_reset(&m->at, m->cfg->echo);
  vm_txq_clear(&m->txq); /* what was still on its way is lost with the power */
  m->powered = false;
  m->power_cut = true;
  m->power_applied = true; /* an open of the port does not bring the power back */
  vm_event_state(m->name, "power", "off");
}

void vm_module_power_restore(struct vm_module *m) {
  if (m->closing) return;
  if (!m->power_cut) {
    vm_module_power_on(m); /* nothing when it has power already */
    return;
  }
  m->power_cut = false;
  vm_log_info(m->name, "power restored");
  vm_event_state(m->name, "power", "on");
  module_boot(m);
  if (vm_fault_sched_start(m) < 0) vm_log_error(m->name, "out of memory: no scheduled faults");
}

void vm_module_reboot(struct vm_module *m) {
  vm_log_info(m->name, "reboot");
  if (m->trace) vm_trace_note(m->trace, "reboot");
  if (m->powered && m->dialect->power_off) m->dialect->power_off(m);
  module_boot(m);
}

/* ---- life cycle -------------------------------------------------------- */

/* Descriptors of one module, as /proc/<pid>/fd shows them. An idle module
 * holds 2, the PTY master and the slave the daemon keeps open (the inotify
 * instance and the libcurl multi handle are shared by all modules). A busy
 * one adds, per dialect:
 *   1  the MQTT broker socket (libmosquitto's wake-up socketpair is never
 *      opened, mosq_pair.c); w800 over WebSocket: up to 4, the upstream
 *      socket, libmosquitto's socket, the relay's end of it and, until that
 *      is accepted, the relay's listener;
 *   1  tencent, me3630: an HTTP transfer (registration, auth);
 *   1  a flash write in progress (the temp file, then its directory).
 * That makes at most 7, the w800 over WebSocket; without pty_link 2 fewer;
 * a TCP or unix serial endpoint adds its listener and its client, a trace
 * its file. */
#define MODULE_FDS_BUSY 7
/* With fault_injection every connection goes through a relay (netrelay.c):
 * its listener until the transport's socket is accepted, the accepted end
 * and the upstream socket; an MQTT (or WebSocket) link and an HTTP transfer
 * at once, each relay able to outlive its session by the delay. */
#define MODULE_FDS_RELAYS 6

int vm_module_fd_need(const struct vm_module_config *cfg) {
  return MODULE_FDS_BUSY - (cfg->pty_link ? 0 : 2) + (cfg->tcp_host ? 2 : 0) +
         (cfg->unix_path ? 2 : 0) + (cfg->trace ? 1 : 0) +
         (cfg->fault_injection ? MODULE_FDS_RELAYS : 0);
}

int vm_module_start(struct vm_module *m, uv_loop_t *loop, const struct vm_module_config *cfg,
                    const char *state_dir) {
  memset(m, 0, sizeof *m);
  m->loop = loop;
  m->cfg = cfg;
  m->name = cfg->name;
  m->dialect = cfg->dialect;

  if (vm_store_open(&m->store, loop, state_dir, cfg->name) < 0) return -1;
  if (cfg->trace) {
    m->trace = vm_trace_open(cfg->trace, cfg->name);
    if (!m->trace) return -1;
  }
  if (vm_txq_init(&m->txq, loop, cfg->name, cfg->baud, cfg->tx_buffer) < 0) return -1;
  uv_timer_init(loop, &m->boot_timer);
  m->boot_timer.data = m;

  struct vm_at_io io = {
      .write = module_at_write, .trace = module_at_trace, .reboot = module_at_reboot,
      .urc = module_at_urc, .ctx = m};
  vm_at_init(&m->at, loop, cfg->name, NULL, &io, m);
  if (cfg->fault_injection && vm_tracetap_open(m) < 0) return -1;
  if (m->dialect->init(m) < 0) {
    vm_log_error(m->name, "dialect %s failed to start", m->dialect->name);
    return -1;
  }
  if (cfg->pty_link) {
    if (vm_pty_open(&m->pty, loop, cfg->name, cfg->pty_link, module_input, m) < 0) return -1;
    m->pty.on_presence = module_pty_presence;
    vm_txq_set_sink(&m->txq, &m->pty.sink);
  }
  if (cfg->tcp_host) {
    /* a 4 KiB write buffer the modules without an endpoint do not pay for */
    if (!(m->tcp = calloc(1, sizeof *m->tcp))) return -1;
    if (vm_tcp_listen(m->tcp, loop, cfg->name, cfg->tcp_host, cfg->tcp_port, module_input,
                      module_sock_presence, m) < 0)
      return -1;
    m->has_tcp = true;
  }
  if (cfg->unix_path) {
    if (!(m->usock = calloc(1, sizeof *m->usock))) return -1;
    if (vm_unix_listen(m->usock, loop, cfg->name, cfg->unix_path, module_input,
                       module_sock_presence, m) < 0)
      return -1;
    m->has_unix = true;
  }
  static const char *const when[] = {[VM_POWER_FIRST_OPEN] = "when the port is opened",
                                     [VM_POWER_FIRST_BYTE] = "at the first byte from the MCU",
                                     [VM_POWER_START] = "now"};
  vm_log_info(m->name, "%s module on %s (baud %u%s), powers on %s", m->dialect->name,
              cfg->pty_link ? cfg->pty_link : cfg->unix_path ? cfg->unix_path
                                            : cfg->tcp_host ? m->tcp->where : "no serial port",
              cfg->baud, cfg->baud ? "" : ", unpaced", when[cfg->power_on]);
  vm_at_reset(&m->at, cfg->echo);
  if (cfg->power_on == VM_POWER_START) module_apply_power(m, "daemon started");
  return 0;
}

void vm_module_stop(struct vm_module *m) {
  if (m->closing) return;
  m->closing = true;
  if (m->powered && m->dialect->power_off) m->dialect->power_off(m);
  m->powered = false;
  if (m->dialect_state && m->dialect->destroy) m->dialect->destroy(m);
  vm_netfault_stop(m); /* relays outlive their sessions by design; not the module */
  vm_fault_sched_report(m);
  vm_fault_sched_stop(m);
  watches_free(m);
  if (uv_is_active((uv_handle_t *)&m->boot_timer)) uv_timer_stop(&m->boot_timer);
  if (m->boot_timer.loop) uv_close((uv_handle_t *)&m->boot_timer, NULL);
  if (m->at.loop) vm_at_close(&m->at);
  if (m->has_tcp) vm_sockep_close(m->tcp);
  if (m->has_unix) vm_sockep_close(m->usock);
  if (m->pty.loop) vm_pty_close(&m->pty);
  if (m->txq.loop) vm_txq_close(&m->txq);
  if (m->txq.dropped_total)
    vm_log_info(m->name, "%llu bytes of output were dropped in TX overflows",
                (unsigned long long)m->txq.dropped_total);
  if (m->trace) {
    vm_trace_note(m->trace, "stop");
    vm_trace_close(m->trace);
    m->trace = NULL;
  }
}

void vm_module_cleanup(struct vm_module *m) {
  vm_store_close(&m->store);
  vm_netfault_free(m);
  vm_serfault_free(m);
  vm_tracetap_free(m);
  free(m->tcp); /* their handles were closed by the loop that has ended */
  m->tcp = NULL;
  free(m->usock);
  m->usock = NULL;
  free(m->dialect_state);
  m->dialect_state = NULL;
}
