/* trace.c - a human-readable record of every byte on a module's serial line.
 *
 * One line per chunk, "<YYYY-MM-DDTHH:MM:SS.uuuuuu> <dir> <escaped bytes>"
 * (local time), and "<time> # <text>" for notes. The file is opened in
 * append mode with mode 0600 and flushed after every entry: a trace is read
 * when a test fails, often after the daemon was killed, so nothing may sit
 * in a buffer. Data is escaped so that each entry stays on one line. */
#include "vmodule/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmodule/log.h"

struct vm_trace {
  FILE *f;
};

/* Each input byte escapes to at most 4 characters (\xNN). */
#define TRACE_ESC_MAX 4
#define TRACE_CHUNK 256 /* input bytes escaped per step in vm_trace_data */
#define TRACE_TIME_CAP 48 /* room for the time even if gcc assumes the worst */

struct vm_trace *vm_trace_open(const char *path, const char *who) {
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    vm_log_error(who, "trace %s: %s", path, strerror(errno));
    return NULL;
  }
  struct vm_trace *t = calloc(1, sizeof *t);
  if (t)
    t->f = fdopen(fd, "a");
  if (!t || !t->f) {
    vm_log_error(who, "trace %s: %s", path, strerror(errno ? errno : ENOMEM));
    free(t);
    close(fd);
    return NULL;
  }
  return t;
}

void vm_trace_close(struct vm_trace *t) {
  if (!t)
    return;
  fclose(t->f);
  free(t);
}

/* Escapes one byte into e (at least 5 bytes); returns its length. */
static size_t escape_byte(unsigned char c, char *e) {
  static const char hex[] = "0123456789abcdef";
  switch (c) {
  case '\\': memcpy(e, "\\\\", 2); return 2;
  case '\r': memcpy(e, "\\r", 2); return 2;
  case '\n': memcpy(e, "\\n", 2); return 2;
  case '\t': memcpy(e, "\\t", 2); return 2;
  default: break;
  }
  if (c >= 0x20 && c <= 0x7e) {
    e[0] = (char)c;
    return 1;
  }
  e[0] = '\\';
  e[1] = 'x';
  e[2] = hex[c >> 4];
  e[3] = hex[c & 0xf];
  return 4;
}

size_t vm_trace_escape(const void *buf, size_t len, char *out, size_t cap) {
  const unsigned char *p = buf;
  size_t n = 0;
  char e[TRACE_ESC_MAX + 1];

  if (cap == 0)
    return 0;
  for (size_t i = 0; i < len; i++) {
    size_t elen = escape_byte(p[i], e);
    if (n + elen >= cap) /* keep room for the NUL; never split an escape */
      break;
    memcpy(out + n, e, elen);
    n += elen;
  }
  out[n] = '\0';
  return n;
}

void vm_trace_data(struct vm_trace *t, char dir, const void *buf, size_t len) {
  const unsigned char *p = buf;
  char when[TRACE_TIME_CAP];
  char esc[TRACE_CHUNK * TRACE_ESC_MAX + 1];

  if (!t)
    return;
  vm_log_time(when, sizeof when, 6);
  fprintf(t->f, "%s %c ", when, dir);
  /* Chunks small enough that their escaped form always fits esc: the
   * entry is complete however long the data is. */
  while (len > 0) {
    size_t n = len < TRACE_CHUNK ? len : TRACE_CHUNK;
    size_t elen = vm_trace_escape(p, n, esc, sizeof esc);
    fwrite(esc, 1, elen, t->f);
    p += n;
    len -= n;
  }
  fputc('\n', t->f);
  fflush(t->f);
}

void vm_trace_note(struct vm_trace *t, const char *fmt, ...) {
  char when[TRACE_TIME_CAP];
  va_list ap;

  if (!t)
    return;
  vm_log_time(when, sizeof when, 6);
  fprintf(t->f, "%s # ", when);
  va_start(ap, fmt);
  vfprintf(t->f, fmt, ap);
  va_end(ap);
  fputc('\n', t->f);
  fflush(t->f);
}
