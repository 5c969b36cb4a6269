/* trace.h - a human-readable record of every byte on a module's serial line.
 *
 * One entry per chunk: "<ISO time> <dir> <escaped bytes>", dir '>' for bytes
 * the MCU sent to the module and '<' for bytes the module sent. CR, LF, '\\'
 * and non-printable bytes are escaped (\r \n \\ \xNN). Callers pass secrets
 * already redacted. */
#ifndef VMODULE_TRACE_H
#define VMODULE_TRACE_H

#include <stddef.h>

struct vm_trace;

#define VM_TRACE_RX '>'
#define VM_TRACE_TX '<'

/* Opens (appends to) path; returns NULL on error (logged). */
struct vm_trace *vm_trace_open(const char *path, const char *who);
void vm_trace_data(struct vm_trace *t, char dir, const void *buf, size_t len);
void vm_trace_note(struct vm_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void vm_trace_close(struct vm_trace *t);
/* Escapes buf into out (always NUL-terminated); returns the length written. */
size_t vm_trace_escape(const void *buf, size_t len, char *out, size_t cap);

#endif
