/* module.h - one virtual module: its serial endpoints, TX queue, trace, AT
 * engine, persistent store and dialect, and its power cycle (boot, reset). */
#ifndef VMODULE_MODULE_H
#define VMODULE_MODULE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "vmodule/at.h"
#include "vmodule/config.h"
#include "vmodule/dialect.h"
#include "vmodule/pty.h"
#include "vmodule/store.h"
#include "vmodule/tcp.h"
#include "vmodule/trace.h"
#include "vmodule/txq.h"
#include "vmodule/unixsock.h"

/* Counters of `vmodulectl status` (the engine counts lines, errors, busy). */
struct vm_module_stats {
  uint64_t rx_bytes, tx_bytes, tx_lines;
  uint64_t reconnects;   /* MQTT sessions re-established (dialects count) */
  uint64_t faults_fired;
};

struct vm_watch; /* module.c */
struct vm_fault_run;
struct vm_netfault;
struct vm_serfault;
struct vm_trace_tap;

struct vm_module {
  uv_loop_t *loop;
  const struct vm_module_config *cfg;
  const char *name;
  struct vm_pty pty;   /* pty.loop is NULL without pty_link */
  struct vm_sockep *tcp; /* only with tcp_listen; freed by vm_module_cleanup() */
  bool has_tcp;          /* tcp is listening */
  struct vm_sockep *usock; /* only with unix_listen; likewise */
  bool has_unix;           /* usock is listening */
  struct vm_txq txq;
  struct vm_trace *trace;
  struct vm_at at;
  struct vm_store store;
  const struct vm_dialect *dialect;
  void *dialect_state;
  uv_timer_t boot_timer;
  bool power_applied; /* the port has been opened once: power is on */
  bool powered;       /* booted and accepting commands */
  bool power_cut;     /* `power off`: no power until `power on` */
  bool closing;
  struct vm_module_stats stats;
  /* created on first use (control socket, faults); NULL otherwise */
  struct vm_watch *watches;       /* output matchers: `wait`, scheduled "after" */
  struct vm_fault_run *sched;     /* the config's scheduled faults */
  struct vm_netfault *net;        /* net faults (netfault.c) */
  struct vm_serfault *serial_fault; /* serial faults (serfault.c) */
  struct vm_trace_tap *taps;      /* `trace -f` followers */
};

/* Creates everything; power is applied when the serial port is first opened
 * (the PTY, or a client of a socket endpoint). Without any endpoint (the
 * fuzzers, tests/fuzz/) there is no sink: the caller sets one with
 * vm_txq_set_sink() and powers the module on with vm_module_power_on().
 * Returns 0 or -1 (logged). */
int vm_module_start(struct vm_module *m, uv_loop_t *loop, const struct vm_module_config *cfg,
                    const char *state_dir);
/* Applies power (the boot banner after cfg->boot_ms); only the first call counts. */
void vm_module_power_on(struct vm_module *m);
/* Reboot as AT+RST does: power_off now, banner after cfg->boot_ms. */
void vm_module_reboot(struct vm_module *m);
/* Stops input, tears down the dialect, removes the symlink, closes handles. */
void vm_module_stop(struct vm_module *m);

/* Frees what outlives the handles (store, dialect state); after uv_run ends. */
void vm_module_cleanup(struct vm_module *m);

/* File descriptors a busy module of this configuration may hold at once
 * (module.c counts them), for the daemon's RLIMIT_NOFILE check. */
int vm_module_fd_need(const struct vm_module_config *cfg);

/* A power cut (`power off`): the dialect drops its sessions and RAM state,
 * nothing more is written, input is ignored until vm_module_power_restore()
 * boots it again (banner after boot_ms). Flash (the store) is kept. */
void vm_module_power_cut(struct vm_module *m);
void vm_module_power_restore(struct vm_module *m);

/* Output matchers: cb(ctx) runs once, the first time the bytes written
 * towards the MCU since the call match the POSIX extended regex (matched
 * against the last VM_WATCH_WINDOW bytes; \r \n \t \xNN in it stand for
 * those bytes). Returns a handle for
 * vm_module_unwatch(), or NULL with err set (bad regex). */
#define VM_WATCH_WINDOW 8192
struct vm_watch *vm_module_watch(struct vm_module *m, const char *regex, void (*cb)(void *ctx),
                                 void *ctx, char *err, size_t errlen);
void vm_module_unwatch(struct vm_module *m, struct vm_watch *w);

/* Writes bytes towards the MCU (through the TX queue and the trace). */
void vm_module_tx(struct vm_module *m, const void *buf, size_t len);

/* The module behind an engine (handlers receive struct vm_at *). */
static inline struct vm_module *vm_module_of(struct vm_at *at) { return (struct vm_module *)at->data; }

#endif
