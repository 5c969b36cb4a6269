/* log.h - leveled logging to stderr: "<time> <LEVEL> [<who>] <message>".
 * Secrets must never be passed here; callers log redacted forms only. */
#ifndef VMODULE_LOG_H
#define VMODULE_LOG_H

#include <stddef.h>

enum vm_log_level { VM_LOG_ERROR = 0, VM_LOG_WARN, VM_LOG_INFO, VM_LOG_DEBUG };

void vm_log_set_level(enum vm_log_level level);
enum vm_log_level vm_log_get_level(void);
/* Parses "error", "warn", "info", "debug". Returns 0 or -1. */
int vm_log_parse_level(const char *s, enum vm_log_level *out);
/* Current local time as "YYYY-MM-DDTHH:MM:SS.<frac>" with frac_digits (1..9)
 * fractional digits: 3 in log lines, 6 in traces. Returns snprintf's result. */
int vm_log_time(char *out, size_t cap, int frac_digits);
void vm_log(enum vm_log_level level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define vm_log_error(who, ...) vm_log(VM_LOG_ERROR, who, __VA_ARGS__)
#define vm_log_warn(who, ...) vm_log(VM_LOG_WARN, who, __VA_ARGS__)
#define vm_log_info(who, ...) vm_log(VM_LOG_INFO, who, __VA_ARGS__)
#define vm_log_debug(who, ...) vm_log(VM_LOG_DEBUG, who, __VA_ARGS__)

#endif
