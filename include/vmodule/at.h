/* at.h - the AT engine shared by every dialect.
 *
 * Framing, chosen by the style (enum vm_at_framing): the esp-at core's (only
 * CR LF ends a line, a lone CR or LF stays in it; one busy reply per read that
 * arrives while a command runs) or V.250's (CR ends a line, LF is ignored);
 * 256 bytes at most including the terminator unless the style says more.
 * Echo, the four command forms dispatched through per-dialect command tables,
 * data-entry mode for payload commands, and URC ordering. The engine knows no
 * reply string: the dialect's struct vm_at_style supplies them. */
#ifndef VMODULE_AT_H
#define VMODULE_AT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "vmodule/params.h"

#define VM_AT_MAX_LINE 256 /* default line limit, including the terminator */
#define VM_AT_LINE_CAP 1024 /* the largest limit a style may choose */
#define VM_AT_MAX_TABLES 12

/* ESP-AT error codes: 0x01 << 24 | subcategory << 16 | extension. The
 * dialect's error() decides how (and whether) the code is shown. */
#define VM_AT_ERR(sub, ext) (0x01000000u | ((uint32_t)(sub) << 16) | (uint32_t)(ext))
#define VM_AT_ERR_COMMON VM_AT_ERR(0x01, 0)
#define VM_AT_ERR_NO_TERMINATOR VM_AT_ERR(0x02, 0)
#define VM_AT_ERR_NO_AT VM_AT_ERR(0x03, 0)
#define VM_AT_ERR_PARA_LENGTH VM_AT_ERR(0x04, 0)
#define VM_AT_ERR_PARA_TYPE VM_AT_ERR(0x05, 0)
#define VM_AT_ERR_PARA_NUM(need, given) VM_AT_ERR(0x06, ((need) << 8) | (given))
#define VM_AT_ERR_PARA_INVALID VM_AT_ERR(0x07, 0)
#define VM_AT_ERR_PARA_PARSE VM_AT_ERR(0x08, 0)
#define VM_AT_ERR_UNSUPPORTED VM_AT_ERR(0x09, 0)
#define VM_AT_ERR_EXEC_FAIL(ext) VM_AT_ERR(0x0A, ext)
#define VM_AT_ERR_BUSY VM_AT_ERR(0x0B, 0)
#define VM_AT_ERR_OP_TYPE VM_AT_ERR(0x0C, 0)

enum vm_at_form { VM_AT_TEST = 0, VM_AT_QUERY, VM_AT_SET, VM_AT_EXEC };

enum vm_at_result {
  VM_AT_OK,      /* engine prints the dialect's OK */
  VM_AT_ERROR,   /* engine prints the dialect's error for at->errcode */
  VM_AT_DONE,    /* the handler printed its whole reply itself */
  VM_AT_PENDING, /* the handler finishes later with vm_at_complete() */
};

struct vm_at;
typedef enum vm_at_result (*vm_at_handler)(struct vm_at *at, const struct vm_at_args *args);

/* One row of a dialect's command table. name is what follows "AT": "+CWJAP",
 * "E0", "" (bare AT). secret_mask bit i marks parameter i as a secret: it is
 * replaced by "***" in traces ("" stays ""); when the parameters fail to
 * parse, everything from where the first secret can start is. */
struct vm_at_cmd {
  const char *name;
  vm_at_handler test, query, set, exec;
  unsigned secret_mask;
  /* > 0: the set form has at most this many parameters and the last one is
   * the rest of the line (see vm_at_parse_params_max) */
  int max_params;
};

struct vm_at_table {
  const struct vm_at_cmd *cmds;
  size_t n;
  bool off; /* vm_at_enable_table(): its names are unknown commands */
};

/* How command lines are framed (one vm_at_input() call is one "read"). */
enum vm_at_framing {
  /* esp-at core (tencent, w800): only CR LF ends a line; a lone CR or LF stays
   * in the line (kept in a parameter, an unknown name after the name) and
   * counts towards max_line. A bare CR LF is an error. max_line bytes with no
   * CR LF are dropped silently (a final CR kept) and the rest of that line gets
   * the length error. A NUL drops the partial line before it. Busy rule: the
   * rest of a read after an accepted command, and every read while a command
   * is pending, gets one busy reply and is discarded (AT+RST CR LF in it: the
   * force_restart reply and a reboot); after an error the rest of the read is
   * framed as the next line. */
  VM_AT_FRAME_ESP = 0,
  /* V.250 (me3630): CR ends a line; an LF where a line would start (after a
   * CR, or before any other byte) is ignored, elsewhere it is part of the
   * line. Empty lines are ignored; every complete line sent while a command is
   * pending gets the busy reply. A longer line than max_line is one error. */
  VM_AT_FRAME_V250,
};

/* The dialect's framing and reply bytes. */
struct vm_at_style {
  enum vm_at_framing framing;
  const char *ok;    /* e.g. "\r\nOK\r\n" */
  const char *busy;  /* whole busy reply, e.g. "\r\nbusy p...\r\n" */
  const char *ready; /* boot banner, e.g. "\r\nready\r\n" (NULL: none) */
  /* esp-at: a busy read holding AT+RST CR LF prints this and reboots (NULL: busy) */
  const char *force_restart;
  bool case_insensitive; /* command names (ME3630: yes) */
  size_t max_line;       /* line limit incl. terminator; 0 = VM_AT_MAX_LINE, at most VM_AT_LINE_CAP */
  unsigned parse_flags;  /* VM_AT_PARSE_* */
  /* Prints the error reply for code (engine errors and VM_AT_ERROR). */
  void (*error)(struct vm_at *at, uint32_t code);
};

/* Data-entry ('>') mode. */
enum vm_at_data_status {
  VM_AT_DATA_OK,
  VM_AT_DATA_ABORTED, /* the abort sequence was received */
  VM_AT_DATA_TIMEOUT, /* the data did not complete in time */
  VM_AT_DATA_SHORT,   /* a CR LF ended the data before len bytes */
  VM_AT_DATA_BAD_TRAILER,
};

typedef void (*vm_at_data_cb)(struct vm_at *at, enum vm_at_data_status st,
                              const unsigned char *data, size_t len, void *ctx);

struct vm_at_data_req {
  size_t len;             /* exactly this many bytes */
  unsigned timeout_ms;    /* whole data phase; 0 = no limit */
  const char *abort_seq;  /* e.g. "+++\r\n" anywhere in the data aborts; NULL = none */
  const char *trailer;    /* bytes required after the data, e.g. "\r\n"; NULL = none */
  unsigned trailer_ms;    /* how long to wait for the trailer */
  bool crlf_ends_early;   /* a CR LF before len bytes ends the data as SHORT */
  bool secret;            /* the data is a secret: traced as a byte count only */
  vm_at_data_cb done;
  void *ctx;
};

/* Output and trace hooks, provided by the module. */
struct vm_at_io {
  void (*write)(void *ctx, const void *buf, size_t len);
  /* dir is '>' (to the module) or '<' (from it); bytes are already redacted */
  void (*trace)(void *ctx, char dir, const void *buf, size_t len);
  /* reboots the module (a forced AT+RST while busy); may be NULL */
  void (*reboot)(void *ctx);
  /* a URC was written or queued (its first piece: the line without a data
   * payload); may be NULL */
  void (*urc)(void *ctx, const void *buf, size_t len);
  void *ctx;
};

enum vm_at_mode { VM_AT_MODE_OFF, VM_AT_MODE_COMMAND, VM_AT_MODE_PENDING, VM_AT_MODE_DATA };

struct vm_at {
  uv_loop_t *loop;
  const char *name; /* for logs */
  const struct vm_at_style *style;
  struct vm_at_table tables[VM_AT_MAX_TABLES];
  int ntables;
  struct vm_at_io io;
  void *data; /* the dialect's / module's pointer for handlers */

  enum vm_at_mode mode;
  bool echo;
  uint32_t errcode; /* for VM_AT_ERROR */
  const struct vm_at_cmd *current;

  /* line framing */
  char line[VM_AT_LINE_CAP + 1];
  size_t line_len;
  bool line_overflow; /* ESP: the line follows a silent drop; V.250: too long */
  bool last_was_cr;   /* V.250: the CR that ended the last line had no LF yet */

  /* data entry */
  struct vm_at_data_req data_req;
  unsigned char *data_buf;
  size_t data_len, data_cap;
  bool data_in_trailer;
  size_t trailer_got;
  uv_timer_t data_timer;

  /* URCs queued while a response or data entry is open */
  char *urc_buf;
  size_t urc_len, urc_cap;
  bool hold_urcs;

  uint64_t lines, busy_replies, errors;

  /* per-command counters (`vmodulectl metrics`), made on the first command */
  struct vm_at_stat *stats;
  size_t nstats, stats_cap;
  uint64_t started_ns; /* uv_hrtime() when the current command's handler ran */
  bool cur_error;      /* the current command answered an error of its own */
};

/* One command's counters: runs, error replies, handler-to-final-result time. */
struct vm_at_stat {
  const struct vm_at_cmd *cmd;
  uint64_t count, errors, sum_ns, max_ns;
};

void vm_at_init(struct vm_at *at, uv_loop_t *loop, const char *name,
                const struct vm_at_style *style, const struct vm_at_io *io, void *data);
/* Adds a command table; earlier tables win on duplicate names. */
int vm_at_add_table(struct vm_at *at, const struct vm_at_cmd *cmds, size_t n);
/* Turns the table added with cmds on or off (a firmware build without those
 * commands): an off table's names are unknown commands, yet the secret
 * parameters of its rows are still redacted in traces. Tables start on. */
void vm_at_enable_table(struct vm_at *at, const struct vm_at_cmd *cmds, bool on);
void vm_at_close(struct vm_at *at);

/* Power state: OFF ignores input (booting), COMMAND accepts it. */
void vm_at_power(struct vm_at *at, bool on);
/* Forgets the partial line, pending command, data entry and queued URCs
 * (module reset); echo returns to echo_default. */
void vm_at_reset(struct vm_at *at, bool echo_default);

/* Bytes from the MCU: one call is one read, which the esp-at busy rule counts. */
void vm_at_input(struct vm_at *at, const char *buf, size_t len);

/* Handlers every dialect's table uses for the V.250 basics: bare AT (OK),
 * ATE0 and ATE1 (echo off / on, OK). */
enum vm_at_result vm_at_handle_ok(struct vm_at *at, const struct vm_at_args *args);
enum vm_at_result vm_at_handle_echo_off(struct vm_at *at, const struct vm_at_args *args);
enum vm_at_result vm_at_handle_echo_on(struct vm_at *at, const struct vm_at_args *args);

/* Reply output, inside a command's response. */
void vm_at_write(struct vm_at *at, const void *buf, size_t len);
void vm_at_puts(struct vm_at *at, const char *s);
void vm_at_printf(struct vm_at *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vm_at_vprintf(struct vm_at *at, const char *fmt, va_list ap);
/* Prints the final result now (for handlers that return VM_AT_DONE). */
void vm_at_reply_ok(struct vm_at *at);
void vm_at_reply_error(struct vm_at *at, uint32_t code);
/* For a dialect that prints an error reply of its own (not the style's):
 * counts it as the current command's error reply. */
void vm_at_mark_error(struct vm_at *at);

/* Sets the code printed for VM_AT_ERROR; returns VM_AT_ERROR for convenience. */
enum vm_at_result vm_at_fail(struct vm_at *at, uint32_t code);
/* Finishes a pending command with OK, ERROR (at->errcode) or DONE. */
void vm_at_complete(struct vm_at *at, enum vm_at_result r);
bool vm_at_is_pending(const struct vm_at *at);

/* Unsolicited output: written now when the line is idle, otherwise queued
 * and flushed in order once the response or data entry ends. */
void vm_at_urc(struct vm_at *at, const void *buf, size_t len);
void vm_at_urcf(struct vm_at *at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One URC made of a formatted head, raw (binary) data and a tail, e.g.
 * +TCMQTTRCVPUB:"t",5,"<data>"\r\n; queued or written whole. */
void vm_at_urc_data(struct vm_at *at, const void *data, size_t len, const char *tail,
                    const char *head_fmt, ...) __attribute__((format(printf, 5, 6)));
/* While held, URCs are queued even in a pending command (e.g. a handler that
 * must print its own lines first). Releasing flushes the queue. */
void vm_at_hold_urcs(struct vm_at *at, bool hold);

/* Enters data-entry mode; call from a handler that then returns
 * VM_AT_PENDING (the done callback usually calls vm_at_complete). The handler
 * prints its prompt itself. Returns 0 or -1 (len 0 or too large). */
int vm_at_read_data(struct vm_at *at, const struct vm_at_data_req *req);

#define VM_AT_MAX_DATA (64 * 1024)

#endif
