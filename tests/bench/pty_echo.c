/* pty_echo.c - the benchmark baseline: the least a PTY-based module can do.
 * Owns a raw PTY (holding its slave open), prints the slave path, answers
 * every "AT\r\n" with "\r\nOK\r\n" using poll(2) and plain read/write, and
 * exits when its stdin closes. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int main(void) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) || unlockpt(master)) return perror("pty"), 1;
  struct termios t;
  tcgetattr(master, &t);
  cfmakeraw(&t);
  tcsetattr(master, TCSANOW, &t);
  const char *name = ptsname(master);
  int slave = open(name, O_RDWR | O_NOCTTY); /* held: no HUP between clients */
  if (slave < 0) return perror("slave"), 1;
  printf("%s\n", name);
  fflush(stdout);
  char buf[4096], line[256];
  size_t len = 0;
  struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0) continue;
    if (p[1].revents) return 0;
    ssize_t n = read(master, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n' && len && line[len - 1] == '\r') {
        if (len == 3 && !memcmp(line, "AT\r", 3) && write(master, "\r\nOK\r\n", 6) != 6) return 1;
        len = 0;
      } else if (len < sizeof line) {
        line[len++] = buf[i];
      }
    }
  }
}
