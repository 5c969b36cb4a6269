/* serfault.c - `serial` faults on a module's line towards the MCU
 * (serfault.h): drop PPM, corrupt PPM, clear, unplug, plug.
 *
 * drop and corrupt act where bytes leave the TX queue, after pacing (a
 * struct vm_txq_filter on m->txq): a byte lost or garbled on a real line has
 * still been sent, so it still takes its wire time, and what the MCU sees is
 * exactly what reaches its UART. Each byte is decided once, by a PRNG seeded
 * from the module's name, so a run can be repeated byte for byte (the seed is
 * logged); a dropped byte is not also corrupted, a corrupted one has exactly
 * one bit flipped. While neither is set the queue has no filter.
 *
 * unplug is a USB serial module (the ME3630) disappearing: the PTY is hung
 * up and its symlink removed, the TCP and unix endpoints drop their client
 * and refuse new ones (the unix socket file goes). Power stays on and the module keeps its RAM state; what it writes
 * meanwhile falls off the unplugged connector (a sink that discards it at
 * the line rate). plug brings a new PTY behind the same symlink and the TCP
 * endpoint back, as the module re-enumerating after a reset does.
 *
 * Nothing here exists for a module until its first serial fault. */
#include "vmodule/serfault.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/event.h"
#include "vmodule/log.h"
#include "vmodule/module.h"

#define SERFAULT_PPM_MAX 1000000u
#define SERFAULT_USAGE "drop PPM|corrupt PPM|clear|unplug|plug"

struct vm_serfault {
  struct vm_txq_filter filter; /* first member; on m->txq while a rate is set */
  struct vm_sink lost;         /* the TX sink while unplugged */
  uint32_t drop_ppm, corrupt_ppm;
  uint64_t rng;      /* xorshift64* state, never 0 */
  uint64_t decided;  /* stream position up to which bytes have been decided */
  uint64_t dropped, corrupted, lost_bytes;
  bool unplugged;
};

enum serfault_action { SF_DROP, SF_CORRUPT, SF_CLEAR, SF_UNPLUG, SF_PLUG };

static const char *const serfault_actions[] = {"drop", "corrupt", "clear", "unplug", "plug"};

/* ---- words ------------------------------------------------------------- */

/* A decimal 0..1000000, digits only. */
static int serfault_parse_ppm(const char *s, uint32_t *out) {
  uint32_t v = 0;

  if (!*s)
    return -1;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (uint32_t)(*s - '0');
    if (v > SERFAULT_PPM_MAX)
      return -1;
  }
  *out = v;
  return 0;
}

/* Parses argv (argv[0] "serial"): the action, and the rate for drop and
 * corrupt. Returns 0 or -1 with one line in err. */
static int serfault_parse(int argc, char **argv, enum serfault_action *action, uint32_t *ppm,
                          char *err, size_t errlen) {
  size_t i;

  if (argc < 2) {
    snprintf(err, errlen, "serial: missing action (" SERFAULT_USAGE ")");
    return -1;
  }
  for (i = 0; i < sizeof serfault_actions / sizeof serfault_actions[0]; i++)
    if (!strcmp(argv[1], serfault_actions[i]))
      break;
  if (i == sizeof serfault_actions / sizeof serfault_actions[0]) {
    snprintf(err, errlen, "serial: unknown action \"%s\" (" SERFAULT_USAGE ")", argv[1]);
    return -1;
  }
  *action = (enum serfault_action)i;
  if (*action == SF_DROP || *action == SF_CORRUPT) {
    if (argc != 3 || serfault_parse_ppm(argv[2], ppm) < 0) {
      snprintf(err, errlen, "serial %s: PPM must be 0..1000000", argv[1]);
      return -1;
    }
  } else if (argc != 2) {
    snprintf(err, errlen, "serial %s: takes no argument", argv[1]);
    return -1;
  }
  return 0;
}

int vm_serfault_check(int argc, char **argv, char *err, size_t errlen) {
  enum serfault_action action;
  uint32_t ppm;

  return serfault_parse(argc, argv, &action, &ppm, err, errlen);
}

/* ---- drop and corrupt (the TX queue's filter) --------------------------- */

static uint64_t serfault_next(struct vm_serfault *s) {
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return s->rng * 0x2545F4914F6CDD1DULL;
}

/* True with probability ppm / 1e6. */
static bool serfault_hit(struct vm_serfault *s, uint32_t ppm) {
  return ppm && (serfault_next(s) >> 11) % SERFAULT_PPM_MAX < ppm;
}

/* Decides the bytes of the chunk not decided yet, last to first, moving the
 * kept ones to the end of the chunk (the bytes decided by an earlier call,
 * all kept, move with them). Returns how many were dropped. */
static size_t serfault_apply(struct vm_txq_filter *f, uint64_t pos, unsigned char *buf,
                             size_t len) {
  struct vm_serfault *s = (struct vm_serfault *)f;
  size_t done = s->decided > pos ? (size_t)(s->decided - pos < len ? s->decided - pos : len) : 0;
  size_t keep = len; /* kept bytes are buf[keep..len) */

  for (size_t i = len; i-- > done;) {
    unsigned char b = buf[i];

    if (serfault_hit(s, s->drop_ppm)) {
      s->dropped++;
      continue;
    }
    if (serfault_hit(s, s->corrupt_ppm)) {
      b ^= (unsigned char)(1u << (serfault_next(s) & 7));
      s->corrupted++;
    }
    buf[--keep] = b;
  }
  if (done && keep > done)
    memmove(buf + keep - done, buf, done);
  if (pos + len > s->decided)
    s->decided = pos + len;
  return keep - done;
}

/* ---- the unplugged connector --------------------------------------------- */

static ssize_t serfault_lost_write(struct vm_sink *sink, const void *buf, size_t len) {
  struct vm_serfault *s = (struct vm_serfault *)((char *)sink - offsetof(struct vm_serfault, lost));

  (void)buf;
  s->lost_bytes += len;
  return (ssize_t)len;
}

static void serfault_lost_want_writable(struct vm_sink *sink, int on) {
  (void)sink;
  (void)on; /* always writable */
}

static const struct vm_sink_ops serfault_lost_ops = {
    .write = serfault_lost_write,
    .want_writable = serfault_lost_want_writable,
};

/* ---- state ------------------------------------------------------------- */

/* FNV-1a of the name: the same module draws the same bytes on every run. */
static uint64_t serfault_seed(const char *name) {
  uint64_t h = 0xcbf29ce484222325ULL;

  for (const char *c = name ? name : ""; *c; c++)
    h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
  return h ? h : 1;
}

static struct vm_serfault *serfault_get(struct vm_module *m) {
  struct vm_serfault *s = m->serial_fault;

  if (s)
    return s;
  if (!(s = calloc(1, sizeof *s)))
    return NULL;
  s->filter.apply = serfault_apply;
  s->lost.ops = &serfault_lost_ops;
  s->rng = serfault_seed(m->name);
  vm_log_info(m->name, "serial faults: PRNG seed 0x%016" PRIx64, s->rng);
  m->serial_fault = s;
  return s;
}

static void serfault_set_rate(struct vm_module *m, struct vm_serfault *s,
                              enum serfault_action action, uint32_t ppm) {
  if (action == SF_DROP)
    s->drop_ppm = ppm;
  else if (action == SF_CORRUPT)
    s->corrupt_ppm = ppm;
  else
    s->drop_ppm = s->corrupt_ppm = 0;
  m->txq.filter = s->drop_ppm || s->corrupt_ppm ? &s->filter : NULL;
  vm_log_info(m->name, "serial faults: drop %" PRIu32 " ppm, corrupt %" PRIu32 " ppm",
              s->drop_ppm, s->corrupt_ppm);
}

/* ---- unplug / plug ------------------------------------------------------- */

static bool serfault_has_port(const struct vm_module *m) {
  return m->pty.loop || m->has_tcp || m->has_unix;
}

/* The module's socket endpoints (TCP, unix) into eps[2]; returns how many. */
static int serfault_socks(struct vm_module *m, struct vm_sockep **eps) {
  int n = 0;

  if (m->has_tcp)
    eps[n++] = m->tcp;
  if (m->has_unix)
    eps[n++] = m->usock;
  return n;
}

static void serfault_note(struct vm_module *m, const char *state) {
  if (m->trace)
    vm_trace_note(m->trace, "serial %s", state);
  vm_event_state(m->name, "serial", state);
}

/* The socket clients go first: their on_presence(0) makes the PTY the
 * sink, which the unplugged connector then replaces. */
static int serfault_unplug(struct vm_module *m, struct vm_serfault *s, char *err, size_t errlen) {
  struct vm_sockep *eps[2];
  int n = serfault_socks(m, eps), r;

  for (int i = 0; i < n; i++)
    vm_sockep_unplug(eps[i]);
  if (m->pty.loop && (r = vm_pty_unplug(&m->pty)) < 0) {
    for (int i = 0; i < n; i++)
      vm_sockep_plug(eps[i]);
    snprintf(err, errlen, "serial unplug: %s", strerror(-r));
    return -1;
  }
  s->unplugged = true;
  vm_txq_set_sink(&m->txq, &s->lost);
  serfault_note(m, "unplugged");
  return 0;
}

/* The socket endpoints first: their listen is what can fail (the port
 * taken meanwhile); then no client of the new PTY ever sees it go again. */
static int serfault_plug(struct vm_module *m, struct vm_serfault *s, char *err, size_t errlen) {
  struct vm_sockep *eps[2];
  int n = serfault_socks(m, eps), r = 0, i;

  for (i = 0; i < n && r == 0; i++)
    r = vm_sockep_plug(eps[i]);
  if (r < 0) {
    for (int j = 0; j < i - 1; j++)
      vm_sockep_unplug(eps[j]);
    snprintf(err, errlen, "serial plug: cannot listen again: %s", uv_strerror(r));
    return -1;
  }
  if (m->pty.loop && (r = vm_pty_plug(&m->pty)) < 0) {
    for (i = 0; i < n; i++)
      vm_sockep_unplug(eps[i]);
    snprintf(err, errlen, "serial plug: new PTY: %s", strerror(-r));
    return -1;
  }
  s->unplugged = false;
  vm_txq_set_sink(&m->txq, m->pty.loop ? &m->pty.sink : NULL);
  serfault_note(m, "plugged");
  return 0;
}

int vm_serfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  enum serfault_action action;
  uint32_t ppm = 0;
  struct vm_serfault *s = m->serial_fault;
  bool unplugged = s && s->unplugged;

  if (serfault_parse(argc, argv, &action, &ppm, err, errlen) < 0)
    return -1;
  if (action == SF_PLUG && !unplugged) {
    snprintf(err, errlen, "serial plug: the port is not unplugged");
    return -1;
  }
  if (action == SF_UNPLUG && unplugged) {
    snprintf(err, errlen, "serial unplug: the port is already unplugged");
    return -1;
  }
  if (action == SF_UNPLUG && !serfault_has_port(m)) {
    snprintf(err, errlen, "serial unplug: the module has no serial port");
    return -1;
  }
  if (action == SF_CLEAR && !s)
    return 0; /* nothing was ever set */
  if (!(s = serfault_get(m))) {
    snprintf(err, errlen, "serial: out of memory");
    return -1;
  }
  if (action == SF_UNPLUG)
    return serfault_unplug(m, s, err, errlen);
  if (action == SF_PLUG)
    return serfault_plug(m, s, err, errlen);
  serfault_set_rate(m, s, action, ppm);
  return 0;
}

/* ---- status / free ------------------------------------------------------- */

void vm_serfault_status(struct vm_module *m, cJSON *obj) {
  const struct vm_serfault *s = m->serial_fault;
  static const struct vm_serfault none;
  cJSON *o = cJSON_GetObjectItemCaseSensitive(obj, "serial");

  if (!s)
    s = &none;
  if (!cJSON_IsObject(o) && !(o = cJSON_AddObjectToObject(obj, "serial")))
    return;
  cJSON_AddNumberToObject(o, "drop_ppm", s->drop_ppm);
  cJSON_AddNumberToObject(o, "corrupt_ppm", s->corrupt_ppm);
  cJSON_AddNumberToObject(o, "dropped", (double)s->dropped);
  cJSON_AddNumberToObject(o, "corrupted", (double)s->corrupted);
  cJSON_AddNumberToObject(o, "lost_unplugged", (double)s->lost_bytes);
  cJSON_AddBoolToObject(o, "plugged", !s->unplugged);
}

void vm_serfault_free(struct vm_module *m) {
  free(m->serial_fault);
  m->serial_fault = NULL;
}
