/* logcap.h - unit-test helper: sends stderr (where vm_log writes) to a temp
 * file for a while, so a test can count the lines the code under test logged. */
#ifndef VMODULE_TEST_LOGCAP_H
#define VMODULE_TEST_LOGCAP_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct logcap {
  int saved_fd, fd; /* fd is -1 while not capturing */
};

static inline void logcap_init(struct logcap *c) { c->saved_fd = c->fd = -1; }

static inline int logcap_start(struct logcap *c) {
  char path[] = "/tmp/vm_unit_log.XXXXXX";
  c->fd = mkstemp(path);
  if (c->fd < 0) return -1;
  unlink(path);
  c->saved_fd = dup(2);
  return dup2(c->fd, 2) == 2 ? 0 : -1;
}

/* How many times needle was logged since logcap_start(). */
static inline int logcap_count(const struct logcap *c, const char *needle) {
  static char text[64 * 1024];
  ssize_t n = pread(c->fd, text, sizeof text - 1, 0);
  int count = 0;
  if (n < 0) return -1;
  text[n] = '\0';
  for (const char *at = text; (at = strstr(at, needle)); at += strlen(needle)) count++;
  return count;
}

static inline void logcap_stop(struct logcap *c) {
  if (c->fd < 0) return;
  dup2(c->saved_fd, 2);
  close(c->saved_fd);
  close(c->fd);
  c->saved_fd = c->fd = -1;
}

#endif
