/* netfault.c - the `net` fault verbs (netfault.h): their state in m->net,
 * the refuser that makes `down` a real refused connect, the registry of live
 * links that `reset` aborts, and the helpers the transports ask before they
 * resolve or connect. The relay that blackhole and delay need is netrelay.c.
 *
 * Cost when unused: nothing per module. m->net is made by the first net
 * fault; the refuser (one descriptor for the whole daemon) by the first
 * `down`; a link is a few pointers inside its transport's own struct. */
#include "vmodule/netfault.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>

#include "vmodule/log.h"
#include "vmodule/module.h"

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)
#define NET_VERBS "down, up, reset, blackhole, delay MS, dns-fail, dns-ok"

/* ---- the verbs -------------------------------------------------------------- */

enum verb { V_DOWN, V_UP, V_RESET, V_BLACKHOLE, V_DELAY, V_DNS_FAIL, V_DNS_OK };

static const char *const verb_names[] = {"down", "up", "reset", "blackhole", "delay", "dns-fail",
                                         "dns-ok"};

static bool needs_relay(enum verb v) { return v == V_BLACKHOLE || v == V_DELAY; }

/* Parses "net VERB [MS]" into *v and *ms. */
static int parse(int argc, char **argv, enum verb *v, unsigned *ms, char *err, size_t errlen) {
  if (argc < 2) return ERR("net: expected one of %s", NET_VERBS);
  int found = -1;
  for (size_t i = 0; i < sizeof verb_names / sizeof *verb_names; i++)
    if (!strcmp(argv[1], verb_names[i])) found = (int)i;
  if (found < 0) return ERR("net %s: unknown (expected one of %s)", argv[1], NET_VERBS);
  *v = (enum verb)found;
  int want = *v == V_DELAY ? 3 : 2;
  if (*v == V_DELAY && argc < 3) return ERR("net delay: MS must be 0..%d", VM_NETFAULT_MAX_DELAY_MS);
  if (argc > want) return ERR("net %s: unexpected \"%s\"", argv[1], argv[want]);
  if (*v == V_DELAY) {
    char *end;
    errno = 0;
    long n = strtol(argv[2], &end, 10);
    if (errno || end == argv[2] || *end || n < 0 || n > VM_NETFAULT_MAX_DELAY_MS)
      return ERR("net delay: MS must be 0..%d", VM_NETFAULT_MAX_DELAY_MS);
    *ms = (unsigned)n;
  }
  return 0;
}

int vm_netfault_check(int argc, char **argv, char *err, size_t errlen) {
  enum verb v;
  unsigned ms = 0;
  return parse(argc, argv, &v, &ms, err, errlen);
}

static struct vm_netfault *state_of(struct vm_module *m) {
  if (!m->net) m->net = calloc(1, sizeof *m->net);
  return m->net;
}

static void reset_links(struct vm_module *m);

int vm_netfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  enum verb v;
  unsigned ms = 0;
  if (parse(argc, argv, &v, &ms, err, errlen) < 0) return -1;
  if (needs_relay(v) && !m->cfg->fault_injection)
    return ERR("net %s: needs \"fault_injection\": true in the module's config", argv[1]);
  struct vm_netfault *nf = state_of(m);
  if (!nf) return ERR("net: out of memory");
  switch (v) {
  case V_DOWN: nf->down = true; break;
  case V_UP: nf->down = nf->blackhole = false, nf->delay_ms = 0; break;
  case V_RESET: reset_links(m); break;
  case V_BLACKHOLE: nf->blackhole = true; break;
  case V_DELAY: nf->delay_ms = ms; break;
  case V_DNS_FAIL: nf->dns_fail = true; break;
  case V_DNS_OK: nf->dns_fail = false; break;
  }
  if (v == V_UP || needs_relay(v)) vm_netrelay_kick(m);
  return 0;
}

void vm_netfault_status(struct vm_module *m, cJSON *obj) {
  const struct vm_netfault *nf = m->net;
  if (!nf) return;
  cJSON *o = cJSON_AddObjectToObject(obj, "net");
  if (!o) return;
  cJSON_AddBoolToObject(o, "down", nf->down);
  cJSON_AddBoolToObject(o, "blackhole", nf->blackhole);
  cJSON_AddNumberToObject(o, "delay_ms", nf->delay_ms);
  cJSON_AddBoolToObject(o, "dns_fail", nf->dns_fail);
}

void vm_netfault_stop(struct vm_module *m) { vm_netrelay_stop_all(m); }

void vm_netfault_free(struct vm_module *m) {
  free(m->net);
  m->net = NULL;
}

/* ---- what the transports ask ---------------------------------------------- */

bool vm_netfault_dns_fails(const struct vm_module *m) { return m && m->net && m->net->dns_fail; }

bool vm_netfault_relayed(const struct vm_module *m) { return m && m->cfg->fault_injection; }

/* The refuser: a TCP socket bound to 127.0.0.1 and never listening, kept
 * for the life of the daemon, so its port stays nobody else's. */
static int refuser_port(void) {
  static int port = -1;
  if (port > 0) return port;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
    vm_log_error(NULL, "net down: cannot make the refusing port: %s", strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  return port;
}

bool vm_netfault_refused(const struct vm_module *m, struct sockaddr_in *out) {
  if (!m || !m->net || !m->net->down) return false;
  int port = refuser_port();
  if (port < 0) return false;
  *out = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return true;
}

/* ---- live links ----------------------------------------------------------------- */

static struct vm_netlink *links; /* every module's, in one list: only `reset` walks it */

void vm_netlink_add(struct vm_netlink *l, struct vm_module *m, int (*fd)(struct vm_netlink *l)) {
  if (!m || l->m) return;
  l->m = m;
  l->fd = fd;
  l->prev = NULL;
  l->next = links;
  if (links) links->prev = l;
  links = l;
}

void vm_netlink_remove(struct vm_netlink *l) {
  if (!l->m) return;
  if (l->prev) l->prev->next = l->next;
  else links = l->next;
  if (l->next) l->next->prev = l->prev;
  l->m = NULL;
  l->prev = l->next = NULL;
}

/* The states in which Linux answers a disconnect with an RST (tcp_need_reset). */
static bool established(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0) return false;
  switch (ti.tcpi_state) {
  case TCP_ESTABLISHED:
  case TCP_CLOSE_WAIT:
  case TCP_FIN_WAIT1:
  case TCP_FIN_WAIT2:
  case TCP_SYN_RECV:
    return true;
  }
  return false;
}

/* connect(AF_UNSPEC) on a TCP socket is tcp_disconnect(): an RST leaves, the
 * socket reports ECONNRESET to its poller and stays open for its owner. */
static void reset_links(struct vm_module *m) {
  int n = 0;
  for (struct vm_netlink *l = links; l; l = l->next) {
    if (l->m != m) continue;
    int fd = l->fd(l);
    if (fd < 0 || !established(fd)) continue;
    struct sockaddr sa = {.sa_family = AF_UNSPEC};
    if (connect(fd, &sa, sizeof sa) < 0) {
      vm_log_warn(m->name, "net reset: cannot reset socket %d: %s", fd, strerror(errno));
      continue;
    }
    n++;
  }
  vm_log_info(m->name, "net reset: %d link%s reset", n, n == 1 ? "" : "s");
}
