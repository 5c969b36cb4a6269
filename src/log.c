/* log.c - leveled logging to stderr.
 *
 * Each message becomes one line "<YYYY-MM-DDTHH:MM:SS.mmm> <LEVEL> [<who>] <message>\n"
 * (local time) that is written with a single write(2), so lines from one
 * process never interleave even when stderr is a pipe shared with children.
 * There is no buffering: a crash never loses the lines logged before it. */
#include "vmodule/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define VM_LOG_LINE 1024 /* most lines fit on the stack; longer ones are malloc'd */

static enum vm_log_level g_level = VM_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void vm_log_set_level(enum vm_log_level level) {
  if (level >= VM_LOG_ERROR && level <= VM_LOG_DEBUG)
    g_level = level;
}

enum vm_log_level vm_log_get_level(void) { return g_level; }

int vm_log_parse_level(const char *s, enum vm_log_level *out) {
  static const struct {
    const char *name;
    enum vm_log_level level;
  } names[] = {
      {"error", VM_LOG_ERROR}, {"warn", VM_LOG_WARN}, {"warning", VM_LOG_WARN},
      {"info", VM_LOG_INFO},   {"debug", VM_LOG_DEBUG},
  };
  if (!s)
    return -1;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    /* Case-insensitive: "DEBUG" in an environment variable is a common spelling. */
    if (strcasecmp(s, names[i].name) == 0) {
      if (out)
        *out = names[i].level;
      return 0;
    }
  }
  return -1;
}

int vm_log_time(char *out, size_t cap, int frac_digits) {
  struct timespec ts;
  struct tm tm;
  char date[24];
  long frac;

  if (frac_digits < 1 || frac_digits > 9)
    frac_digits = 3;
  clock_gettime(CLOCK_REALTIME, &ts);
  localtime_r(&ts.tv_sec, &tm);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  frac = ts.tv_nsec; /* truncate, never round: x.9996 must not print as x.1000 */
  for (int i = frac_digits; i < 9; i++)
    frac /= 10;
  return snprintf(out, cap, "%s.%0*d", date, frac_digits, (int)frac);
}

/* Writes "<time> <LEVEL> [<who>] " into out; returns its length. */
static int log_prefix(char *out, size_t cap, enum vm_log_level level, const char *who) {
  char when[48];

  vm_log_time(when, sizeof when, 3);
  return snprintf(out, cap, "%s %s [%s] ", when, level_names[level], who ? who : "vmoduled");
}

/* One write(2) for the whole line; the loop only matters if the kernel
 * accepts part of it (a full pipe) or a signal interrupts the call. */
static void log_write(const char *line, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDERR_FILENO, line, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    line += n;
    len -= (size_t)n;
  }
}

void vm_log(enum vm_log_level level, const char *who, const char *fmt, ...) {
  char stack[VM_LOG_LINE];
  char *line = stack;
  int saved_errno = errno; /* callers often log and then look at errno */
  va_list ap, ap2;

  if (level < VM_LOG_ERROR || level > VM_LOG_DEBUG || level > g_level)
    return;

  int pre = log_prefix(stack, sizeof stack, level, who);
  if (pre < 0 || (size_t)pre >= sizeof stack - 1)
    pre = (int)strlen(stack); /* absurdly long who: keep what fits */

  va_start(ap, fmt);
  va_copy(ap2, ap);
  int msg = vsnprintf(stack + pre, sizeof stack - (size_t)pre, fmt, ap);
  va_end(ap);
  if (msg < 0)
    msg = 0;

  size_t total = (size_t)pre + (size_t)msg + 1; /* + '\n' */
  if (total >= sizeof stack) {
    char *big = malloc(total + 1);
    if (big) {
      memcpy(big, stack, (size_t)pre);
      vsnprintf(big + pre, total + 1 - (size_t)pre, fmt, ap2);
      line = big;
    } else {
      total = sizeof stack - 1; /* out of memory: a truncated line beats none */
    }
  }
  va_end(ap2);

  line[total - 1] = '\n';
  log_write(line, total);
  if (line != stack)
    free(line);
  errno = saved_errno;
}
