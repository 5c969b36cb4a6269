/* ctl.c - the control socket (ctl.h): a unix stream socket, one JSON object
 * per line each way (README "Control socket").
 *
 * A request is {"cmd": "<verb>", "module": "<name>", "args": ["word", ...]}
 * (plus "timeout_ms" for wait); the reply {"ok": true, "result": ...} or
 * {"ok": false, "error": "<one line>"}. Requests on one connection are
 * answered in order; a `wait` holds the ones behind it until it is
 * answered. `events -f` and `trace MODULE -f` turn the connection into a
 * stream: {"ok": true, "stream": true}, then one JSON object per line
 * ({"event"...} objects as event.h logs them, {"trace": "<entry>"}) until
 * the client closes it.
 *
 * The loop never waits for a client: replies are queued with uv_write, and a
 * client whose unread replies pass CLIENT_MAX_QUEUED bytes is dropped (a
 * follower that stopped reading loses its stream, nothing else notices). A
 * request line longer than CTL_MAX_LINE is answered with an error and
 * skipped up to its newline. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmodule/ctl.h"
#include "vmodule/dialect.h"
#include "vmodule/event.h"
#include "vmodule/fault.h"
#include "vmodule/log.h"
#include "vmodule/module.h"
#include "vmodule/netfault.h"
#include "vmodule/serfault.h"
#include "vmodule/tracetap.h"

#define CTL_MAX_LINE 65536
#define CLIENT_MAX_QUEUED (4u << 20)
#define CLIENT_MAX_PENDING (1u << 20) /* request bytes held behind a wait */
#define WAIT_DEFAULT_MS 30000
#define WAIT_MAX_MS 86400000

struct ctl_client {
  uv_pipe_t pipe; /* first member: handle callbacks cast back */
  struct ctl_client *next;
  char *in;
  size_t inlen, incap;
  bool skipping; /* inside an over-long line */
  bool closing;
  int handles; /* open handles (pipe, timer): the last close frees the client */
  /* a wait in progress */
  struct vm_module *wait_module;
  struct vm_watch *watch;
  uv_timer_t timer;
  bool timer_open;
  /* a stream */
  struct vm_module *trace_module;
  bool events;
};

static struct {
  uv_loop_t *loop;
  uv_pipe_t listener;
  bool listening;
  char *path;
  struct vm_module *modules;
  int n;
  struct ctl_client *clients;
} g;

static void client_process(struct ctl_client *c);

/* ---- output ------------------------------------------------------------- */

static void write_done(uv_write_t *req, int status) {
  free(req->data);
  free(req);
}

static void client_close(struct ctl_client *c);

static void client_send(struct ctl_client *c, const char *line) {
  if (c->closing) return;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->pipe) > CLIENT_MAX_QUEUED) {
    vm_log_warn(NULL, "control client not reading (%u bytes unread): dropped",
                CLIENT_MAX_QUEUED);
    client_close(c);
    return;
  }
  size_t n = strlen(line);
  char *buf = malloc(n + 1);
  uv_write_t *req = malloc(sizeof *req);
  if (!buf || !req) {
    free(buf);
    free(req);
    client_close(c);
    return;
  }
  memcpy(buf, line, n);
  buf[n] = '\n';
  req->data = buf;
  uv_buf_t b = uv_buf_init(buf, (unsigned)(n + 1));
  if (uv_write(req, (uv_stream_t *)&c->pipe, &b, 1, write_done) < 0) {
    free(buf);
    free(req);
    client_close(c);
  }
}

static void send_json(struct ctl_client *c, cJSON *o) {
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (s) client_send(c, s);
  free(s);
}

static void reply_ok(struct ctl_client *c, cJSON *result) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddBoolToObject(o, "ok", true);
  cJSON_AddItemToObject(o, "result", result ? result : cJSON_CreateObject());
  send_json(c, o);
}

static void reply_error(struct ctl_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void reply_error(struct ctl_client *c, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddBoolToObject(o, "ok", false);
  cJSON_AddStringToObject(o, "error", msg);
  send_json(c, o);
}

/* ---- client life -------------------------------------------------------- */

static void on_event_line(void *ctx, const char *line) { client_send(ctx, line); }

static void on_trace_line(void *ctx, const char *line) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "trace", line);
  send_json(ctx, o);
}

static void handle_closed(uv_handle_t *h) {
  struct ctl_client *c = h->data;
  if (--c->handles > 0) return;
  free(c->in);
  free(c);
}

static void wait_end(struct ctl_client *c) {
  if (c->watch) vm_module_unwatch(c->wait_module, c->watch);
  c->watch = NULL;
  c->wait_module = NULL;
  if (c->timer_open) uv_timer_stop(&c->timer);
}

static void client_close(struct ctl_client *c) {
  if (c->closing) return;
  c->closing = true;
  wait_end(c);
  if (c->events) vm_event_unfollow(on_event_line, c);
  if (c->trace_module) vm_tracetap_unfollow(c->trace_module, on_trace_line, c);
  for (struct ctl_client **p = &g.clients; *p; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  if (c->timer_open) uv_close((uv_handle_t *)&c->timer, handle_closed);
  uv_close((uv_handle_t *)&c->pipe, handle_closed);
}

/* ---- the verbs ---------------------------------------------------------- */

static struct vm_module *find_module(const char *name) {
  for (int i = 0; name && i < g.n; i++)
    if (!strcmp(g.modules[i].name, name)) return &g.modules[i];
  return NULL;
}

static const char *power_state(const struct vm_module *m) {
  if (m->power_cut || !m->power_applied) return "off";
  return m->powered ? "on" : "booting";
}

static cJSON *module_summary(const struct vm_module *m) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", m->name);
  cJSON_AddStringToObject(o, "dialect", m->dialect->name);
  if (m->cfg->pty_link) cJSON_AddStringToObject(o, "link", m->cfg->pty_link);
  if (m->cfg->unix_path) cJSON_AddStringToObject(o, "unix", m->cfg->unix_path);
  cJSON_AddStringToObject(o, "power", power_state(m));
  return o;
}

static void do_list(struct ctl_client *c) {
  cJSON *arr = cJSON_CreateArray();
  for (int i = 0; i < g.n; i++) cJSON_AddItemToArray(arr, module_summary(&g.modules[i]));
  reply_ok(c, arr);
}

static void do_status(struct ctl_client *c, struct vm_module *m) {
  cJSON *o = module_summary(m);
  if (m->pty.slave_path[0]) cJSON_AddStringToObject(o, "pty", m->pty.slave_path);
  if (m->cfg->tcp_host) {
    char ep[300];
    snprintf(ep, sizeof ep, "%s:%d", m->cfg->tcp_host, m->cfg->tcp_port);
    cJSON_AddStringToObject(o, "tcp", ep);
  }
  cJSON_AddBoolToObject(o, "serial_open", m->pty.clients > 0 || vm_sockep_connected(m->tcp) ||
                                              vm_sockep_connected(m->usock));
  cJSON *k = cJSON_AddObjectToObject(o, "counters");
  cJSON_AddNumberToObject(k, "rx_bytes", (double)m->stats.rx_bytes);
  cJSON_AddNumberToObject(k, "tx_bytes", (double)m->stats.tx_bytes);
  cJSON_AddNumberToObject(k, "rx_lines", (double)m->at.lines);
  cJSON_AddNumberToObject(k, "tx_lines", (double)m->stats.tx_lines);
  cJSON_AddNumberToObject(k, "errors", (double)m->at.errors);
  cJSON_AddNumberToObject(k, "busy", (double)m->at.busy_replies);
  cJSON_AddNumberToObject(k, "tx_drops", (double)m->txq.dropped_total);
  cJSON_AddNumberToObject(k, "reconnects", (double)m->stats.reconnects);
  cJSON_AddNumberToObject(k, "faults_fired", (double)m->stats.faults_fired);
  if (m->dialect->status) m->dialect->status(m, o);
  vm_netfault_status(m, o);
  vm_serfault_status(m, o);
  vm_fault_sched_status(m, o);
  reply_ok(c, o);
}

static void do_fault(struct ctl_client *c, struct vm_module *m, const char *cmd,
                     const cJSON *args) {
  char *argv[VM_FAULT_MAX_WORDS];
  int argc = 0;
  char err[512];
  argv[argc++] = (char *)cmd;
  const cJSON *a;
  cJSON_ArrayForEach(a, args) {
    if (argc == VM_FAULT_MAX_WORDS) {
      reply_error(c, "%s: too many arguments", cmd);
      return;
    }
    argv[argc++] = a->valuestring; /* checked to be strings by the caller */
  }
  if (vm_fault_apply(m, argc, argv, err, sizeof err)) {
    reply_error(c, "%s", err);
    return;
  }
  reply_ok(c, NULL);
}

static void resume_cb(uv_timer_t *t) { client_process(t->data); }

/* Runs inside the module's output path: the requests behind the wait are
 * answered on the next loop turn, not in the middle of a dialect's reply. */
static void wait_matched(void *ctx) {
  struct ctl_client *c = ctx;
  c->watch = NULL; /* freed by module.c */
  wait_end(c);
  cJSON *r = cJSON_CreateObject();
  cJSON_AddBoolToObject(r, "matched", true);
  reply_ok(c, r);
  uv_timer_start(&c->timer, resume_cb, 0, 0);
}

static void wait_timeout(uv_timer_t *t) {
  struct ctl_client *c = t->data;
  wait_end(c);
  reply_error(c, "timeout: no match");
  client_process(c);
}

static void do_wait(struct ctl_client *c, struct vm_module *m, const cJSON *args,
                    const cJSON *req) {
  const cJSON *re = cJSON_GetArrayItem(args, 0);
  const cJSON *to = cJSON_GetObjectItemCaseSensitive(req, "timeout_ms");
  double ms = WAIT_DEFAULT_MS;
  if (!re || cJSON_GetArraySize(args) != 1) {
    reply_error(c, "wait: expected one REGEX");
    return;
  }
  if (to) {
    if (!cJSON_IsNumber(to) || to->valuedouble < 0 || to->valuedouble > WAIT_MAX_MS ||
        to->valuedouble != (double)(long)to->valuedouble) {
      reply_error(c, "wait: timeout_ms must be an integer between 0 and %d", WAIT_MAX_MS);
      return;
    }
    ms = to->valuedouble;
  }
  char err[160];
  c->watch = vm_module_watch(m, re->valuestring, wait_matched, c, err, sizeof err);
  if (!c->watch) {
    reply_error(c, "wait: %s", err);
    return;
  }
  c->wait_module = m;
  if (!c->timer_open) {
    uv_timer_init(g.loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    c->handles++;
  }
  uv_timer_start(&c->timer, wait_timeout, (uint64_t)ms, 0);
}

static bool follow_flag(const cJSON *args, bool *follow) {
  int n = cJSON_GetArraySize(args);
  *follow = n == 1 && !strcmp(cJSON_GetArrayItem(args, 0)->valuestring, "-f");
  return n == 0 || *follow;
}

static void start_stream(struct ctl_client *c) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddBoolToObject(o, "ok", true);
  cJSON_AddBoolToObject(o, "stream", true);
  send_json(c, o);
}

static void collect_line(void *ctx, const char *line) {
  cJSON *item = cJSON_Parse(line);
  if (item) cJSON_AddItemToArray(ctx, item);
}

static void collect_string(void *ctx, const char *line) {
  cJSON_AddItemToArray(ctx, cJSON_CreateString(line));
}

static void do_events(struct ctl_client *c, const cJSON *args) {
  bool follow;
  if (!follow_flag(args, &follow)) {
    reply_error(c, "events: the only option is -f");
    return;
  }
  if (!follow) {
    cJSON *arr = cJSON_CreateArray();
    vm_event_replay(collect_line, arr);
    reply_ok(c, arr);
    return;
  }
  if (vm_event_follow(on_event_line, c) < 0) {
    reply_error(c, "events: too many followers");
    return;
  }
  c->events = true;
  start_stream(c);
  vm_event_replay(on_event_line, c);
}

static void do_trace(struct ctl_client *c, struct vm_module *m, const cJSON *args) {
  bool follow;
  if (!follow_flag(args, &follow)) {
    reply_error(c, "trace: the only option is -f");
    return;
  }
  if (vm_tracetap_open(m) < 0) {
    reply_error(c, "trace: out of memory");
    return;
  }
  if (!follow) {
    cJSON *arr = cJSON_CreateArray();
    vm_tracetap_replay(m, collect_string, arr);
    reply_ok(c, arr);
    return;
  }
  if (vm_tracetap_follow(m, on_trace_line, c) < 0) {
    reply_error(c, "trace: too many followers");
    return;
  }
  c->trace_module = m;
  start_stream(c);
  vm_tracetap_replay(m, on_trace_line, c);
}

/* Prometheus label values escape \, " and newline. */
static void label(char *out, size_t cap, const char *s) {
  size_t o = 0;
  for (; *s && o + 3 < cap; s++) {
    if (*s == '\\' || *s == '"') out[o++] = '\\';
    if (*s == '\n') {
      out[o++] = '\\';
      out[o++] = 'n';
      continue;
    }
    out[o++] = *s;
  }
  out[o] = '\0';
}

struct text {
  char *s;
  size_t len, cap;
};

static void addf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(struct text *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (t->s && t->len + (size_t)n < t->cap) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? t->cap * 2 : 8192;
    while (cap < t->len + (size_t)n + 1) cap *= 2;
    char *ns = realloc(t->s, cap);
    if (!ns) return;
    t->s = ns;
    t->cap = cap;
  }
}

static const struct {
  const char *name, *type, *help;
} METRICS[] = {
    {"vmodule_at_commands_total", "counter", "AT commands run, by module and command"},
    {"vmodule_at_command_errors_total", "counter", "AT commands answered with an error"},
    {"vmodule_at_command_seconds", "summary",
     "time from a command's line to its final result (OK, ERROR or the dialect's)"},
    {"vmodule_at_command_seconds_max", "gauge", "the longest such time"},
};

static void do_metrics(struct ctl_client *c) {
  struct text t = {0};
  for (size_t k = 0; k < sizeof METRICS / sizeof METRICS[0]; k++) {
    addf(&t, "# HELP %s %s.\n# TYPE %s %s\n", METRICS[k].name, METRICS[k].help, METRICS[k].name,
         METRICS[k].type);
    for (int i = 0; i < g.n; i++) {
      const struct vm_module *m = &g.modules[i];
      char mod[80];
      label(mod, sizeof mod, m->name);
      for (size_t j = 0; j < m->at.nstats; j++) {
        const struct vm_at_stat *st = &m->at.stats[j];
        char cmd[96];
        label(cmd, sizeof cmd, st->cmd->name);
        const char *at = strncasecmp(cmd, "AT", 2) ? "AT" : "";
        const char *lbl = "{module=\"%s\",command=\"%s%s\"}";
        char labels[220];
        snprintf(labels, sizeof labels, lbl, mod, at, cmd);
        if (k == 0) addf(&t, "%s%s %llu\n", METRICS[k].name, labels, (unsigned long long)st->count);
        if (k == 1)
          addf(&t, "%s%s %llu\n", METRICS[k].name, labels, (unsigned long long)st->errors);
        if (k == 2) {
          addf(&t, "%s_sum%s %.6f\n", METRICS[k].name, labels, (double)st->sum_ns / 1e9);
          addf(&t, "%s_count%s %llu\n", METRICS[k].name, labels, (unsigned long long)st->count);
        }
        if (k == 3) addf(&t, "%s%s %.6f\n", METRICS[k].name, labels, (double)st->max_ns / 1e9);
      }
    }
  }
  static const char *const per_module[][2] = {
      {"vmodule_serial_rx_bytes_total", "bytes from the MCU"},
      {"vmodule_serial_tx_bytes_total", "bytes towards the MCU"},
      {"vmodule_serial_tx_drops_total", "bytes towards the MCU dropped in TX overflows"},
      {"vmodule_at_busy_total", "busy replies"},
      {"vmodule_at_errors_total", "error replies"},
      {"vmodule_mqtt_reconnects_total", "MQTT sessions established again"},
      {"vmodule_faults_fired_total", "faults fired"},
  };
  for (size_t k = 0; k < sizeof per_module / sizeof per_module[0]; k++) {
    addf(&t, "# HELP %s %s.\n# TYPE %s counter\n", per_module[k][0], per_module[k][1],
         per_module[k][0]);
    for (int i = 0; i < g.n; i++) {
      const struct vm_module *m = &g.modules[i];
      uint64_t v[] = {m->stats.rx_bytes,   m->stats.tx_bytes, m->txq.dropped_total,
                      m->at.busy_replies,  m->at.errors,      m->stats.reconnects,
                      m->stats.faults_fired};
      char mod[80];
      label(mod, sizeof mod, m->name);
      addf(&t, "%s{module=\"%s\"} %llu\n", per_module[k][0], mod, (unsigned long long)v[k]);
    }
  }
  addf(&t, "# HELP vmodule_powered 1 when the module has power and has booted.\n"
           "# TYPE vmodule_powered gauge\n");
  for (int i = 0; i < g.n; i++) {
    char mod[80];
    label(mod, sizeof mod, g.modules[i].name);
    addf(&t, "vmodule_powered{module=\"%s\"} %d\n", mod, g.modules[i].powered ? 1 : 0);
  }
  reply_ok(c, cJSON_CreateString(t.s ? t.s : ""));
  free(t.s);
}

static const char *const FAULT_VERBS[] = {"power", "reboot", "urc",    "wifi",
                                          "cell",  "net",    "serial", "smartconfig"};

static bool is_fault_verb(const char *cmd) {
  for (size_t i = 0; i < sizeof FAULT_VERBS / sizeof FAULT_VERBS[0]; i++)
    if (!strcmp(cmd, FAULT_VERBS[i])) return true;
  return false;
}

/* Answers one request line (NUL-terminated). */
static void handle_line(struct ctl_client *c, const char *line) {
  cJSON *req = cJSON_Parse(line);
  const cJSON *cmd = req ? cJSON_GetObjectItemCaseSensitive(req, "cmd") : NULL;
  const cJSON *mod = req ? cJSON_GetObjectItemCaseSensitive(req, "module") : NULL;
  const cJSON *args = req ? cJSON_GetObjectItemCaseSensitive(req, "args") : NULL;
  const cJSON *a;
  if (!req || !cJSON_IsObject(req)) {
    reply_error(c, "not a JSON object");
    goto out;
  }
  if (!cJSON_IsString(cmd)) {
    reply_error(c, "\"cmd\" must be a string");
    goto out;
  }
  if (args && !cJSON_IsArray(args)) {
    reply_error(c, "\"args\" must be an array of strings");
    goto out;
  }
  cJSON_ArrayForEach(a, args) {
    if (!cJSON_IsString(a)) {
      reply_error(c, "\"args\" must be an array of strings");
      goto out;
    }
  }
  const char *verb = cmd->valuestring;
  if (!strcmp(verb, "list") || !strcmp(verb, "metrics") || !strcmp(verb, "events")) {
    if (!strcmp(verb, "list")) do_list(c);
    else if (!strcmp(verb, "metrics")) do_metrics(c);
    else do_events(c, args);
    goto out;
  }
  bool known = is_fault_verb(verb) || !strcmp(verb, "status") || !strcmp(verb, "trace") ||
               !strcmp(verb, "wait");
  if (!known) {
    reply_error(c, "unknown cmd \"%.64s\" (list, status, power, reboot, wifi, cell, smartconfig, net, serial, "
                   "urc, trace, wait, events, metrics)", verb);
    goto out;
  }
  if (!cJSON_IsString(mod)) {
    reply_error(c, "%s: \"module\" must name a module", verb);
    goto out;
  }
  struct vm_module *m = find_module(mod->valuestring);
  if (!m) {
    reply_error(c, "no module \"%.64s\"", mod->valuestring);
    goto out;
  }
  if (!strcmp(verb, "status")) do_status(c, m);
  else if (!strcmp(verb, "trace")) do_trace(c, m, args);
  else if (!strcmp(verb, "wait")) do_wait(c, m, args, req);
  else do_fault(c, m, verb, args);
out:
  cJSON_Delete(req);
}

/* ---- input -------------------------------------------------------------- */

static bool client_busy(const struct ctl_client *c) {
  return c->closing || c->watch || c->events || c->trace_module;
}

/* Answers the complete lines buffered, until a wait or a stream holds them. */
static void client_process(struct ctl_client *c) {
  size_t off = 0;
  while (!client_busy(c)) {
    char *nl = memchr(c->in + off, '\n', c->inlen - off);
    if (!nl) break;
    *nl = '\0';
    if (c->skipping)
      c->skipping = false;
    else if ((size_t)(nl - (c->in + off)) > CTL_MAX_LINE)
      reply_error(c, "request longer than %d bytes", CTL_MAX_LINE);
    else if (nl > c->in + off)
      handle_line(c, c->in + off);
    off = (size_t)(nl - c->in) + 1;
  }
  if (c->closing) return;
  memmove(c->in, c->in + off, c->inlen - off);
  c->inlen -= off;
  if (!client_busy(c) && c->inlen > CTL_MAX_LINE) {
    if (!c->skipping) reply_error(c, "request longer than %d bytes", CTL_MAX_LINE);
    c->skipping = true;
    c->inlen = 0;
  }
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct ctl_client *c = (struct ctl_client *)h;
  if (c->incap - c->inlen < 4096) {
    size_t cap = c->incap ? c->incap * 2 : 8192;
    char *ni = realloc(c->in, cap);
    if (!ni) {
      *buf = uv_buf_init(NULL, 0);
      return;
    }
    c->in = ni;
    c->incap = cap;
  }
  *buf = uv_buf_init(c->in + c->inlen, (unsigned)(c->incap - c->inlen));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct ctl_client *c = (struct ctl_client *)s;
  if (n < 0) {
    client_close(c);
    return;
  }
  c->inlen += (size_t)n;
  if (client_busy(c)) {
    /* a stream reads nothing more; a wait keeps a bounded backlog */
    if (c->events || c->trace_module) c->inlen = 0;
    if (c->inlen > CLIENT_MAX_PENDING) client_close(c);
    return;
  }
  client_process(c);
  if (!c->closing && c->incap > 65536 && c->inlen < 4096) { /* give back a big buffer */
    char *ni = realloc(c->in, 8192);
    if (ni) {
      c->in = ni;
      c->incap = 8192;
    }
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;
  struct ctl_client *c = calloc(1, sizeof *c);
  if (!c) return;
  uv_pipe_init(g.loop, &c->pipe, 0);
  c->pipe.data = c;
  c->handles = 1;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
    uv_close((uv_handle_t *)&c->pipe, handle_closed);
    return;
  }
  c->next = g.clients;
  g.clients = c;
  uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
}

/* ---- listener ----------------------------------------------------------- */

/* A path longer than sun_path is reached through /proc/self/fd/<dir fd>. */
static int short_name(const char *path, char *out, size_t cap, int *dirfd) {
  *dirfd = -1;
  if (strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path)) {
    snprintf(out, cap, "%s", path);
    return 0;
  }
  const char *slash = strrchr(path, '/');
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
  if ((*dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) return -1;
  snprintf(out, cap, "/proc/self/fd/%d/%s", *dirfd, slash ? slash + 1 : path);
  return strlen(out) < sizeof(((struct sockaddr_un *)0)->sun_path) ? 0 : -1;
}

/* A socket file left by a daemon that died is replaced; a live one is not. */
static int check_stale(const char *name) {
  struct stat st;
  if (lstat(name, &st) < 0) return 0;
  if (!S_ISSOCK(st.st_mode)) return -EEXIST;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  memcpy(sa.sun_path, name, strlen(name) + 1); /* short_name() checked the length */
  int live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
  if (fd >= 0) close(fd);
  if (live) return -EADDRINUSE;
  unlink(name);
  return 0;
}

static void make_parent(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return;
  *slash = '\0';
  for (char *p = dir + 1; *p; p++) { /* mkdir -p, 0700 for what it makes */
    if (*p != '/') continue;
    *p = '\0';
    mkdir(dir, 0700);
    *p = '/';
  }
  mkdir(dir, 0700);
}

int vm_ctl_start(uv_loop_t *loop, const char *path, struct vm_module *modules, int n) {
  char name[128];
  int dirfd, rc;
  g.loop = loop;
  g.modules = modules;
  g.n = n;
  make_parent(path);
  if (short_name(path, name, sizeof name, &dirfd) < 0) {
    vm_log_error(NULL, "control socket %s: path too long", path);
    if (dirfd >= 0) close(dirfd);
    return -1;
  }
  if ((rc = check_stale(name)) < 0) {
    vm_log_error(NULL, "control socket %s: %s", path,
                 rc == -EADDRINUSE ? "another vmoduled is listening there" : strerror(-rc));
    if (dirfd >= 0) close(dirfd);
    return -1;
  }
  uv_pipe_init(loop, &g.listener, 0);
  mode_t old = umask(0177);
  rc = uv_pipe_bind(&g.listener, name);
  umask(old);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&g.listener, 64, on_connection);
  if (dirfd >= 0) close(dirfd);
  if (rc < 0) {
    vm_log_error(NULL, "control socket %s: %s", path, uv_strerror(rc));
    uv_close((uv_handle_t *)&g.listener, NULL);
    return -1;
  }
  g.listening = true;
  g.path = strdup(path);
  vm_log_info(NULL, "control socket %s", path);
  return 0;
}

void vm_ctl_stop(void) {
  while (g.clients) client_close(g.clients);
  if (!g.listening) return;
  g.listening = false;
  uv_close((uv_handle_t *)&g.listener, NULL);
  if (g.path) unlink(g.path);
  free(g.path);
  g.path = NULL;
}
