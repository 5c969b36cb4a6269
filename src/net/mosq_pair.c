/* mosq_pair.c - keeps libmosquitto 2.0.11 from opening a socketpair per
 * client.
 *
 * mosquitto_new() opens a socketpair so that a packet queued from another
 * thread can wake the library's own select() loop (mosquitto_loop()). We
 * never run that loop: the libuv loop polls the client's socket itself and
 * arms POLLOUT when libmosquitto wants to write (mqtt.c). The pair costs two
 * descriptors per connection, a third of a connected module's, so at fleet
 * scale it decides how many modules fit under RLIMIT_NOFILE. libmosquitto 2.1
 * has MOSQ_OPT_DISABLE_SOCKETPAIR for this; 2.0.11 has no option, but treats a
 * failed socketpair() as harmless ("outgoing publish commands may be
 * delayed", which only concerns its select() loop) and checks the fds for
 * INVALID_SOCKET before every use.
 *
 * So this file defines socketpair() for the process: libmosquitto's call
 * resolves to it (a definition in the executable comes before libc's), and
 * while vm_mosq_new() runs on this thread it fails with EMFILE, the error
 * libmosquitto expects from it; every other caller (libcurl, libuv, tests)
 * gets the real system call. */
#include "mosq_pair.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mosquitto.h>

static _Thread_local bool g_refuse;

int socketpair(int domain, int type, int protocol, int sv[2]) {
  if (g_refuse) {
    errno = EMFILE;
    return -1;
  }
  return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

struct mosquitto *vm_mosq_new(const char *id, bool clean_session, void *obj) {
  struct mosquitto *q;

  g_refuse = true;
  q = mosquitto_new(id, clean_session, obj);
  g_refuse = false;
  return q;
}
