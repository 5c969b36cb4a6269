/* engine.c - the AT engine: turns the MCU's byte stream into commands and
 * the dialect handlers' output into the module's byte stream.
 *
 * Modes: OFF (booting: input discarded), COMMAND (lines are framed, echoed
 * and dispatched), PENDING (a handler waits for the network: input gets the
 * dialect's busy reply and is not executed), DATA (exactly N raw bytes for a
 * payload command: no echo, no framing).
 *
 * Framing is the style's (enum vm_at_framing in at.h): the esp-at core's
 * (CR LF only; one busy reply per read while busy, and for the rest of a read
 * after an accepted command) or V.250's (CR; every line while busy).
 *
 * URCs are written at once only in COMMAND mode with no partial response open;
 * otherwise they wait in a queue flushed in order when the command ends. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "vmodule/at.h"
#include "vmodule/log.h"

static void at_data_input(struct vm_at *at, const char *buf, size_t len);
static void at_flush_urcs(struct vm_at *at);

void vm_at_init(struct vm_at *at, uv_loop_t *loop, const char *name,
                const struct vm_at_style *style, const struct vm_at_io *io, void *data) {
  memset(at, 0, sizeof *at);
  at->loop = loop;
  at->name = name;
  at->style = style;
  at->io = *io;
  at->data = data;
  at->mode = VM_AT_MODE_OFF;
  at->echo = true;
  uv_timer_init(loop, &at->data_timer);
}

int vm_at_add_table(struct vm_at *at, const struct vm_at_cmd *cmds, size_t n) {
  if (at->ntables == VM_AT_MAX_TABLES) { /* a build-time limit: say so loudly */
    vm_log_error(at->name, "too many command tables (VM_AT_MAX_TABLES %d)", VM_AT_MAX_TABLES);
    return -1;
  }
  at->tables[at->ntables] = (struct vm_at_table){.cmds = cmds, .n = n};
  at->ntables++;
  return 0;
}

void vm_at_enable_table(struct vm_at *at, const struct vm_at_cmd *cmds, bool on) {
  for (int t = 0; t < at->ntables; t++)
    if (at->tables[t].cmds == cmds) at->tables[t].off = !on;
}

void vm_at_close(struct vm_at *at) {
  uv_timer_stop(&at->data_timer);
  uv_close((uv_handle_t *)&at->data_timer, NULL);
  free(at->data_buf);
  at->data_buf = NULL;
  free(at->urc_buf);
  at->urc_buf = NULL;
  free(at->stats);
  at->stats = NULL;
  at->nstats = at->stats_cap = 0;
  at->mode = VM_AT_MODE_OFF;
}

static void at_drop_data(struct vm_at *at) {
  uv_timer_stop(&at->data_timer);
  free(at->data_buf);
  at->data_buf = NULL;
  at->data_len = at->data_cap = 0;
}

void vm_at_reset(struct vm_at *at, bool echo_default) {
  at_drop_data(at);
  at->line_len = 0;
  at->line_overflow = false;
  at->last_was_cr = false;
  at->urc_len = 0;
  at->hold_urcs = false;
  at->current = NULL;
  at->echo = echo_default;
  at->mode = VM_AT_MODE_OFF;
}

void vm_at_power(struct vm_at *at, bool on) {
  at->mode = on ? VM_AT_MODE_COMMAND : VM_AT_MODE_OFF;
}

/* ---- output ------------------------------------------------------------ */

static void at_out(struct vm_at *at, const void *buf, size_t len) {
  if (len == 0) return;
  at->io.write(at->io.ctx, buf, len);
  if (at->io.trace) at->io.trace(at->io.ctx, '<', buf, len);
}

void vm_at_write(struct vm_at *at, const void *buf, size_t len) { at_out(at, buf, len); }

void vm_at_puts(struct vm_at *at, const char *s) { at_out(at, s, strlen(s)); }

void vm_at_vprintf(struct vm_at *at, const char *fmt, va_list ap) {
  char small[512];
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return;
  }
  if ((size_t)n < sizeof small) {
    at_out(at, small, (size_t)n);
  } else {
    char *big = malloc((size_t)n + 1);
    if (big) {
      vsnprintf(big, (size_t)n + 1, fmt, ap2);
      at_out(at, big, (size_t)n);
      free(big);
    }
  }
  va_end(ap2);
}

void vm_at_printf(struct vm_at *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vm_at_vprintf(at, fmt, ap);
  va_end(ap);
}

void vm_at_reply_ok(struct vm_at *at) { vm_at_puts(at, at->style->ok); }

void vm_at_reply_error(struct vm_at *at, uint32_t code) {
  at->errors++;
  at->cur_error = true;
  at->style->error(at, code);
}

void vm_at_mark_error(struct vm_at *at) {
  at->errors++;
  at->cur_error = true;
}

enum vm_at_result vm_at_fail(struct vm_at *at, uint32_t code) {
  at->errcode = code;
  return VM_AT_ERROR;
}

bool vm_at_is_pending(const struct vm_at *at) {
  return at->mode == VM_AT_MODE_PENDING || at->mode == VM_AT_MODE_DATA;
}

enum vm_at_result vm_at_handle_ok(struct vm_at *at, const struct vm_at_args *args) {
  return VM_AT_OK;
}

enum vm_at_result vm_at_handle_echo_off(struct vm_at *at, const struct vm_at_args *args) {
  at->echo = false;
  return VM_AT_OK;
}

enum vm_at_result vm_at_handle_echo_on(struct vm_at *at, const struct vm_at_args *args) {
  at->echo = true;
  return VM_AT_OK;
}

/* ---- URCs -------------------------------------------------------------- */

static bool at_urc_may_write(const struct vm_at *at) {
  if (at->hold_urcs) return false;
  return at->mode == VM_AT_MODE_COMMAND || at->mode == VM_AT_MODE_PENDING;
}

/* Appends to the URC queue; false when out of memory (logged). */
static bool at_urc_queue(struct vm_at *at, const void *buf, size_t len) {
  if (len == 0) return true;
  if (at->urc_len + len > at->urc_cap) {
    size_t cap = at->urc_cap ? at->urc_cap : 1024;
    while (cap < at->urc_len + len) cap *= 2;
    char *nb = realloc(at->urc_buf, cap);
    if (!nb) {
      vm_log_error(at->name, "out of memory queueing a URC; %zu bytes lost", len);
      return false;
    }
    at->urc_buf = nb;
    at->urc_cap = cap;
  }
  memcpy(at->urc_buf + at->urc_len, buf, len);
  at->urc_len += len;
  return true;
}

/* Writes the pieces of one URC now, or queues all of them (never a part). */
static void at_urc_pieces(struct vm_at *at, const struct iovec *v, int n) {
  if (at->mode == VM_AT_MODE_OFF) return; /* powered off: the URC never happened */
  if (at->io.urc) at->io.urc(at->io.ctx, v[0].iov_base, v[0].iov_len);
  if (at_urc_may_write(at) && at->urc_len == 0) {
    /* one write for the whole URC: three small PTY writes per message cost
     * more than the copy (measured in message floods) */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += v[i].iov_len;
    char small[4096], *buf = total <= sizeof small ? small : malloc(total);
    if (!buf) {
      for (int i = 0; i < n; i++) at_out(at, v[i].iov_base, v[i].iov_len);
      return;
    }
    size_t o = 0;
    for (int i = 0; i < n; i++) {
      if (v[i].iov_len) memcpy(buf + o, v[i].iov_base, v[i].iov_len);
      o += v[i].iov_len;
    }
    at_out(at, buf, total);
    if (buf != small) free(buf);
    return;
  }
  size_t before = at->urc_len;
  for (int i = 0; i < n; i++) {
    if (!at_urc_queue(at, v[i].iov_base, v[i].iov_len)) {
      at->urc_len = before;
      return;
    }
  }
}

void vm_at_urc(struct vm_at *at, const void *buf, size_t len) {
  struct iovec v = {(void *)buf, len};
  at_urc_pieces(at, &v, 1);
}

void vm_at_urc_data(struct vm_at *at, const void *data, size_t len, const char *tail,
                    const char *head_fmt, ...) {
  char small[512], *head = small;
  va_list ap;
  va_start(ap, head_fmt);
  int n = vsnprintf(small, sizeof small, head_fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof small) {
    head = malloc((size_t)n + 1);
    if (!head) {
      vm_log_error(at->name, "out of memory: a %zu-byte URC was lost", len);
      return;
    }
    va_start(ap, head_fmt);
    vsnprintf(head, (size_t)n + 1, head_fmt, ap);
    va_end(ap);
  }
  struct iovec v[3] = {{head, (size_t)n}, {(void *)data, len}, {(void *)tail, strlen(tail)}};
  at_urc_pieces(at, v, 3);
  if (head != small) free(head);
}

void vm_at_urcf(struct vm_at *at, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
  vm_at_urc(at, buf, (size_t)n);
}

static void at_flush_urcs(struct vm_at *at) {
  if (!at_urc_may_write(at) || at->urc_len == 0) return;
  size_t n = at->urc_len;
  at->urc_len = 0;
  at_out(at, at->urc_buf, n);
}

void vm_at_hold_urcs(struct vm_at *at, bool hold) {
  at->hold_urcs = hold;
  if (!hold) at_flush_urcs(at);
}

/* ---- dispatch ---------------------------------------------------------- */

/* The style's line limit including the terminator. */
static size_t at_max_line(const struct vm_at *at) {
  size_t n = at->style->max_line ? at->style->max_line : VM_AT_MAX_LINE;
  return n > VM_AT_LINE_CAP ? VM_AT_LINE_CAP : n;
}

/* The row named name; with all, also in the tables that are off. */
static const struct vm_at_cmd *at_lookup(const struct vm_at *at, const char *name, size_t len,
                                         bool nocase, bool all) {
  for (int t = 0; t < at->ntables; t++) {
    if (at->tables[t].off && !all) continue;
    for (size_t i = 0; i < at->tables[t].n; i++) {
      const struct vm_at_cmd *c = &at->tables[t].cmds[i];
      if (strlen(c->name) != len) continue;
      int same = nocase ? strncasecmp(c->name, name, len) == 0 : memcmp(c->name, name, len) == 0;
      if (same) return c;
    }
  }
  return NULL;
}

/* The counters of cmd, added on its first run (NULL when out of memory). */
static struct vm_at_stat *at_stat(struct vm_at *at, const struct vm_at_cmd *cmd) {
  for (size_t i = 0; i < at->nstats; i++)
    if (at->stats[i].cmd == cmd) return &at->stats[i];
  if (at->nstats == at->stats_cap) {
    size_t cap = at->stats_cap ? at->stats_cap * 2 : 8;
    struct vm_at_stat *ns = realloc(at->stats, cap * sizeof *ns);
    if (!ns) return NULL;
    at->stats = ns;
    at->stats_cap = cap;
  }
  struct vm_at_stat *st = &at->stats[at->nstats++];
  memset(st, 0, sizeof *st);
  st->cmd = cmd;
  return st;
}

/* One finished run of cmd: an error reply before its handler ran counts
 * with no time. */
static void at_count_cmd(struct vm_at *at, const struct vm_at_cmd *cmd, bool error, uint64_t ns) {
  struct vm_at_stat *st = at_stat(at, cmd);
  if (!st) return;
  st->count++;
  st->errors += error;
  st->sum_ns += ns;
  if (ns > st->max_ns) st->max_ns = ns;
}

static void at_count(struct vm_at *at, enum vm_at_result r) {
  if (at->current)
    at_count_cmd(at, at->current, r == VM_AT_ERROR || at->cur_error, uv_hrtime() - at->started_ns);
}

static void at_finish(struct vm_at *at, enum vm_at_result r) {
  if (r != VM_AT_PENDING) at_count(at, r);
  switch (r) {
  case VM_AT_OK:
    vm_at_reply_ok(at);
    break;
  case VM_AT_ERROR:
    vm_at_reply_error(at, at->errcode ? at->errcode : VM_AT_ERR_COMMON);
    break;
  case VM_AT_DONE:
  case VM_AT_PENDING:
    break;
  }
  if (r == VM_AT_PENDING) {
    if (at->mode == VM_AT_MODE_COMMAND) at->mode = VM_AT_MODE_PENDING;
    return;
  }
  at->current = NULL;
  if (at->mode == VM_AT_MODE_PENDING || at->mode == VM_AT_MODE_DATA) at->mode = VM_AT_MODE_COMMAND;
  at_flush_urcs(at);
}

void vm_at_complete(struct vm_at *at, enum vm_at_result r) {
  if (at->mode != VM_AT_MODE_PENDING && at->mode != VM_AT_MODE_DATA) return; /* reset meanwhile */
  at_drop_data(at);
  at->mode = VM_AT_MODE_PENDING;
  at_finish(at, r == VM_AT_PENDING ? VM_AT_DONE : r);
}

/* The bytes [s, e) of a secret as the trace shows them: "***", the quotes
 * kept for a string; an empty string stays "" (nothing to hide). */
struct at_mask {
  size_t s, e;
};

/* Secret spans of a parsed line, by position (offsets within the line). */
static int at_mask_parsed(size_t params_off, const struct vm_at_args *args, unsigned secret_mask,
                          struct at_mask *m) {
  int n = 0;
  for (int i = 0; i < args->count && i < 32; i++) {
    const struct vm_at_param *p = &args->p[i];
    if (!(secret_mask & (1u << i)) || p->type == VM_AT_P_EMPTY) continue;
    if (p->type == VM_AT_P_STR && p->str_len == 0 && p->len == 2) continue; /* "" */
    size_t s = params_off + p->off, e = s + p->len;
    if (p->type == VM_AT_P_STR && e - s >= 2) { /* keep the quotes: "***" */
      s++;
      e--;
    }
    m[n++] = (struct at_mask){s, e};
  }
  return n;
}

/* The secret span of a line the parser rejected: everything from where the
 * first secret parameter can start (split at every comma, the earliest
 * reading) to the end of the line, its terminator excepted. A comma inside a
 * secret, an unterminated quote or a missing one cannot leak the secret. */
static int at_mask_rejected(const char *line, size_t len, size_t params_off, unsigned secret_mask,
                            struct at_mask *m) {
  size_t end = len;
  while (end > params_off && (line[end - 1] == '\r' || line[end - 1] == '\n')) end--;
  if (end == params_off) return 0;
  int first = __builtin_ctz(secret_mask);
  m->s = params_off + vm_at_param_start_any(line + params_off, end - params_off, first);
  m->e = end;
  return m->s < m->e;
}

/* Writes the line to the trace with secret parameters replaced by "***".
 * args is NULL when the parameters of a set form failed to parse. */
static void at_trace_line(struct vm_at *at, const char *line, size_t len, size_t params_off,
                          const struct vm_at_args *args, unsigned secret_mask, bool echoed) {
  if (!at->io.trace) return;
  char red[VM_AT_LINE_CAP + 3 * VM_AT_MAX_PARAMS + 8];
  struct at_mask m[VM_AT_MAX_PARAMS];
  int n = 0;
  if (secret_mask && args) n = at_mask_parsed(params_off, args, secret_mask, m);
  else if (secret_mask && params_off < len) n = at_mask_rejected(line, len, params_off, secret_mask, m);
  size_t o = 0, pos = 0;
  for (int i = 0; i < n; i++) {
    memcpy(red + o, line + pos, m[i].s - pos);
    o += m[i].s - pos;
    memcpy(red + o, "***", 3);
    o += 3;
    pos = m[i].e;
  }
  memcpy(red + o, line + pos, len - pos);
  o += len - pos;
  at->io.trace(at->io.ctx, '>', red, o);
  if (echoed) at->io.trace(at->io.ctx, '<', red, o);
}

/* A command line split into its parts. */
struct at_line {
  uint32_t error;              /* 0, or the engine error to reply */
  enum vm_at_form form;
  const struct vm_at_cmd *cmd; /* NULL: unknown */
  size_t params_off;           /* where the parameters start in the line */
  bool params_ok;
  /* the row's secret_mask; for an unknown name, that of the row it matches
   * ignoring case, in any table, off ones too (at+cwjap="ap","pw" is refused
   * but still redacted) */
  unsigned secret_mask;
};

/* The length of the name part worth logging: up to a quote, a comma or a
 * non-printable byte (a line without '=' may carry parameters). */
static int at_loggable_name(const char *line, size_t name_end) {
  size_t n = 0;
  while (n < name_end && isgraph((unsigned char)line[n]) && line[n] != '"' && line[n] != ',') n++;
  return (int)n;
}

/* Splits "AT<name>[=?|?|=params]", finds the command row and parses the
 * parameters of the set form into args. */
static void at_split(struct vm_at *at, const char *line, size_t len, struct vm_at_args *args,
                     struct at_line *l) {
  const struct vm_at_style *st = at->style;
  memset(l, 0, sizeof *l);
  l->params_off = len;
  if (len < 2 || strncasecmp(line, "AT", 2) != 0) {
    l->error = VM_AT_ERR_NO_AT;
    return;
  }
  /* "at..." where case matters: refused, but split on for the secret mask */
  if (!st->case_insensitive && memcmp(line, "AT", 2) != 0) l->error = VM_AT_ERR_NO_AT;
  size_t name_end = 2;
  while (name_end < len && line[name_end] != '=' && line[name_end] != '?') name_end++;
  if (name_end == len) {
    l->form = VM_AT_EXEC;
  } else if (line[name_end] == '?' && name_end + 1 == len) {
    l->form = VM_AT_QUERY;
  } else if (line[name_end] == '=' && name_end + 2 == len && line[name_end + 1] == '?') {
    l->form = VM_AT_TEST;
  } else if (line[name_end] == '=') {
    l->form = VM_AT_SET;
    l->params_off = name_end + 1;
  } else { /* "AT+X?..." */
    if (!l->error) l->error = VM_AT_ERR_PARA_PARSE;
    l->params_off = name_end + 1;
  }
  l->cmd = at_lookup(at, line + 2, name_end - 2, st->case_insensitive, false);
  const struct vm_at_cmd *like =
      l->cmd ? l->cmd : at_lookup(at, line + 2, name_end - 2, true, true);
  l->secret_mask = like ? like->secret_mask : 0;
  if (l->error) return;
  memset(args, 0, sizeof *args);
  l->params_ok = l->form != VM_AT_SET ||
                 vm_at_parse_params_max(args, line + l->params_off, len - l->params_off,
                                        st->parse_flags, l->cmd ? l->cmd->max_params : 0) == 0;
  if (!l->cmd) {
    vm_log_debug(at->name, "unknown command %.*s", at_loggable_name(line, name_end), line);
    l->error = VM_AT_ERR_UNSUPPORTED;
  }
}

/* Splits the line and traces it with its terminator, secrets redacted. The
 * parameters live in one static: one line is handled at a time, and it keeps
 * the stack small. len + tlen is at most VM_AT_LINE_CAP + 2. */
static const struct vm_at_args *at_parse_traced(struct vm_at *at, const char *line, size_t len,
                                                const char *term, size_t tlen, struct at_line *l) {
  static struct vm_at_args args;
  char full[VM_AT_LINE_CAP + 4];
  memcpy(full, line, len);
  memcpy(full + len, term, tlen);
  at_split(at, line, len, &args, l);
  at_trace_line(at, full, len + tlen, l->params_off, l->params_ok ? &args : NULL,
                l->secret_mask, at->echo);
  return &args;
}

static void at_reply_busy(struct vm_at *at) {
  at->busy_replies++;
  vm_at_puts(at, at->style->busy);
}

/* Traces the line, then answers busy or runs the handler. True when the
 * command was accepted: its handler ran and did not return VM_AT_ERROR. */
static bool at_execute(struct vm_at *at, const char *line, size_t len, const char *term,
                       size_t tlen, bool busy) {
  struct at_line l;
  const struct vm_at_args *args = at_parse_traced(at, line, len, term, tlen, &l);
  if (busy && at->style->force_restart && at->io.reboot && len == 6 && !memcmp(line, "AT+RST", 6)) {
    vm_at_puts(at, at->style->force_restart);
    at->io.reboot(at->io.ctx);
    return false;
  }
  if (busy) {
    at_reply_busy(at);
    return false;
  }
  if (l.error) {
    vm_at_reply_error(at, l.error);
    return false;
  }
  vm_at_handler h = l.form == VM_AT_TEST    ? l.cmd->test
                    : l.form == VM_AT_QUERY ? l.cmd->query
                    : l.form == VM_AT_SET   ? l.cmd->set
                                            : l.cmd->exec;
  if (!h) {
    at_count_cmd(at, l.cmd, true, 0);
    vm_at_reply_error(at, VM_AT_ERR_OP_TYPE);
    return false;
  }
  if (!l.params_ok) {
    at_count_cmd(at, l.cmd, true, 0);
    vm_at_reply_error(at, VM_AT_ERR_PARA_PARSE);
    return false;
  }
  at->current = l.cmd;
  at->errcode = 0;
  at->cur_error = false;
  at->started_ns = uv_hrtime();
  enum vm_at_result r = h(at, args);
  at_finish(at, r);
  return r != VM_AT_ERROR;
}

static bool at_v250(const struct vm_at *at) { return at->style->framing == VM_AT_FRAME_V250; }

/* Ends the line in at->line (terminator excluded); true when its command was
 * accepted. */
static bool at_line_done(struct vm_at *at, const char *term, size_t tlen) {
  size_t len = at->line_len;
  bool overflow = at->line_overflow;
  at->line_len = 0;
  at->line_overflow = false;
  at->lines++;
  if (overflow) {
    if (at->io.trace) at->io.trace(at->io.ctx, '>', "<over-long line>", 16);
    vm_log_debug(at->name, "over-long command line rejected");
    if (at->mode == VM_AT_MODE_PENDING) {
      at_reply_busy(at);
    } else {
      vm_at_reply_error(at, VM_AT_ERR_PARA_LENGTH);
    }
    return false;
  }
  if (len == 0 && at_v250(at)) return false; /* V.250: an empty line is ignored */
  return at_execute(at, at->line, len, term, tlen, at->mode == VM_AT_MODE_PENDING);
}

/* Echo is written before the line is processed, as ESP-AT does; the echoed
 * bytes go to the wire but the trace gets them per line (redacted). */
static void at_echo(struct vm_at *at, const char *buf, size_t len) {
  if (at->echo && len) at->io.write(at->io.ctx, buf, len);
}

/* Traces input the esp-at busy rule discards, line by line (secrets
 * redacted); a piece with no CR LF is traced as its length only, since its
 * parameters cannot be told apart. */
static void at_trace_discarded(struct vm_at *at, const char *buf, size_t len) {
  if (!at->io.trace) return;
  size_t s = 0;
  while (s < len) {
    const char *t = memmem(buf + s, len - s, "\r\n", 2);
    size_t e = t ? (size_t)(t - buf) : len;
    if (!t || e - s > at_max_line(at) - 2) {
      char note[64];
      int k = snprintf(note, sizeof note, "<%zu bytes discarded%s>", e - s + (t ? 2 : 0),
                       t ? "" : ", no CR LF");
      at->io.trace(at->io.ctx, '>', note, (size_t)k);
    } else {
      struct at_line l;
      at_parse_traced(at, buf + s, e - s, "\r\n", 2, &l);
    }
    s = t ? e + 2 : len;
  }
}

/* esp-at busy rule: a read that arrives while a command runs, or the rest of
 * the read that held an accepted command, is echoed, answered with one busy
 * reply and discarded; one holding AT+RST CR LF reboots the module instead. */
static void at_busy_read(struct vm_at *at, const char *buf, size_t len) {
  at_echo(at, buf, len);
  at_trace_discarded(at, buf, len);
  if (at->style->force_restart && at->io.reboot && memmem(buf, len, "AT+RST\r\n", 8)) {
    vm_at_puts(at, at->style->force_restart);
    at->io.reboot(at->io.ctx);
    return;
  }
  at_reply_busy(at);
}

/* esp-at framing of COMMAND-mode bytes: only CR LF ends a line; a lone CR or
 * LF is stored and counts towards the limit. Returns the bytes consumed: up
 * to and including the CR LF that ended a line (*accepted then tells whether
 * its command was accepted), else all. */
static size_t at_frame_esp(struct vm_at *at, const char *buf, size_t len, bool *accepted) {
  size_t max = at_max_line(at);
  for (size_t i = 0; i < len; i++) {
    char c = buf[i];
    if (c == '\0') { /* a NUL drops everything before it */
      at->line_len = 0;
      at->line_overflow = false;
      continue;
    }
    if (c == '\n' && at->line_len && at->line[at->line_len - 1] == '\r') {
      at->line_len--;
      at_echo(at, buf, i + 1);
      *accepted = at_line_done(at, "\r\n", 2); /* its CR may have come in an earlier read */
      return i + 1;
    }
    at->line[at->line_len++] = c;
    if (at->line_len == max) { /* no CR LF in max bytes: dropped silently, a final CR kept */
      at->line_len = 0;
      at->line_overflow = true;
      if (c == '\r') at->line[at->line_len++] = c;
    }
  }
  at_echo(at, buf, len);
  return len;
}

/* V.250 framing: CR ends a line; an LF where a line would start is ignored.
 * Returns the bytes consumed: up to the CR (and an LF right after it) that
 * ended a line, else all. */
static size_t at_frame_v250(struct vm_at *at, const char *buf, size_t len) {
  size_t max = at_max_line(at);
  for (size_t i = 0; i < len; i++) {
    char c = buf[i];
    at->last_was_cr = false;
    if (c == '\n' && at->line_len == 0 && !at->line_overflow) continue;
    if (c == '\r') {
      /* echo a following LF in this read with its CR, before the reply */
      size_t end = i + 1 < len && buf[i + 1] == '\n' ? i + 2 : i + 1;
      at->last_was_cr = end == i + 1; /* its LF may open the next read (data entry skips it) */
      at_echo(at, buf, end);
      at_line_done(at, buf + i, end - i);
      return end;
    }
    if (at->line_len < max - 2) {
      at->line[at->line_len++] = c;
    } else {
      at->line_overflow = true;
    }
  }
  at_echo(at, buf, len);
  return len;
}

void vm_at_input(struct vm_at *at, const char *buf, size_t len) {
  size_t i = 0;
  bool accepted = false; /* esp-at: a command of this read was accepted */
  while (i < len) {
    if (at->mode == VM_AT_MODE_OFF) {
      vm_log_debug(at->name, "%zu input bytes ignored (module not ready)", len - i);
      return;
    }
    if (at->mode == VM_AT_MODE_DATA) {
      /* data entry consumes what it needs and hands any leftover back here */
      at_data_input(at, buf + i, len - i);
      return;
    }
    if (at_v250(at)) {
      i += at_frame_v250(at, buf + i, len - i);
    } else if (at->mode == VM_AT_MODE_PENDING || accepted) {
      at_busy_read(at, buf + i, len - i);
      return;
    } else {
      i += at_frame_esp(at, buf + i, len - i, &accepted);
    }
  }
}

/* ---- data entry -------------------------------------------------------- */

static void at_data_end(struct vm_at *at, enum vm_at_data_status st) {
  struct vm_at_data_req req = at->data_req;
  unsigned char *data = at->data_buf;
  size_t n = at->data_len;
  at->data_buf = NULL;
  at->data_len = at->data_cap = 0;
  uv_timer_stop(&at->data_timer);
  if (at->io.trace) {
    static const char *names[] = {"ok", "aborted", "timeout", "short", "bad trailer"};
    if (!req.secret) at->io.trace(at->io.ctx, '>', data, n);
    char note[64];
    int k = snprintf(note, sizeof note, "<data %zu bytes%s: %s>", n,
                     req.secret ? ", secret" : "", names[st]);
    at->io.trace(at->io.ctx, '>', note, (size_t)k);
  }
  at->mode = VM_AT_MODE_PENDING;
  req.done(at, st, data, n, req.ctx);
  free(data);
}

static void at_data_timeout(uv_timer_t *t) {
  struct vm_at *at = (struct vm_at *)((char *)t - offsetof(struct vm_at, data_timer));
  if (at->mode != VM_AT_MODE_DATA) return;
  at_data_end(at, at->data_in_trailer ? VM_AT_DATA_BAD_TRAILER : VM_AT_DATA_TIMEOUT);
}

int vm_at_read_data(struct vm_at *at, const struct vm_at_data_req *req) {
  if (req->len == 0 || req->len > VM_AT_MAX_DATA || !req->done) return -1;
  at->data_buf = malloc(req->len);
  if (!at->data_buf) return -1;
  at->data_req = *req;
  at->data_cap = req->len;
  at->data_len = 0;
  at->data_in_trailer = false;
  at->trailer_got = 0;
  at->mode = VM_AT_MODE_DATA;
  if (req->timeout_ms) uv_timer_start(&at->data_timer, at_data_timeout, req->timeout_ms, 0);
  return 0;
}

static bool at_ends_with(const unsigned char *d, size_t n, const char *seq) {
  size_t k = strlen(seq);
  return k && n >= k && memcmp(d + n - k, seq, k) == 0;
}

static void at_data_input(struct vm_at *at, const char *buf, size_t len) {
  const struct vm_at_data_req *rq = &at->data_req;
  size_t i = 0;
  while (i < len && at->mode == VM_AT_MODE_DATA) {
    unsigned char c = (unsigned char)buf[i++];
    if (at->last_was_cr) { /* the LF of the command's CR LF, split across reads */
      at->last_was_cr = false;
      if (c == '\n' && at->data_len == 0) continue;
    }
    if (!at->data_in_trailer) {
      at->data_buf[at->data_len++] = c;
      if (rq->abort_seq && at_ends_with(at->data_buf, at->data_len, rq->abort_seq)) {
        at_data_end(at, VM_AT_DATA_ABORTED);
        break;
      }
      if (rq->crlf_ends_early && at->data_len < rq->len && at_ends_with(at->data_buf, at->data_len, "\r\n")) {
        at_data_end(at, VM_AT_DATA_SHORT);
        break;
      }
      if (at->data_len == rq->len) {
        if (!rq->trailer || !*rq->trailer) {
          at_data_end(at, VM_AT_DATA_OK);
          break;
        }
        at->data_in_trailer = true;
        at->trailer_got = 0;
        uv_timer_stop(&at->data_timer);
        uv_timer_start(&at->data_timer, at_data_timeout, rq->trailer_ms ? rq->trailer_ms : 1000, 0);
      }
    } else {
      if ((char)c != rq->trailer[at->trailer_got]) {
        at_data_end(at, VM_AT_DATA_BAD_TRAILER);
        /* a CR LF right after the wrong byte closes the rejected payload's
         * line: no command line (esp-at would call it a bare CR LF) */
        if (len - i >= 2 && buf[i] == '\r' && buf[i + 1] == '\n') i += 2;
        break;
      }
      if (rq->trailer[++at->trailer_got] == '\0') {
        at_data_end(at, VM_AT_DATA_OK);
        break;
      }
    }
  }
  if (i < len && at->mode != VM_AT_MODE_DATA) vm_at_input(at, buf + i, len - i);
}
