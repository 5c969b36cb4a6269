/* netfault.h - `net` faults on a module's real network connections (MQTT,
 * WebSocket, HTTPS): down, up, reset, blackhole, delay MS, dns-fail, dns-ok.
 * The state lives in m->net, created on first use.
 *
 * How each acts, on the sockets libmosquitto, libcurl and the WebSocket
 * transport really use (nothing is mocked):
 *   down       a new connect goes to the refuser, a 127.0.0.1 port that is
 *              bound but never listens: the kernel answers the SYN with an
 *              RST, so the connect fails as refused, at once;
 *   reset      every established link of the module is disconnected with
 *              connect(fd, AF_UNSPEC), which sends an RST and leaves the fd
 *              to its owner: the library sees ECONNRESET as from the peer;
 *   dns-fail   names are looked up with AI_NUMERICHOST, so the resolver
 *              answers EAI_NONAME (libcurl, which resolves by itself: the
 *              socket is refused and the result is that of a name that did
 *              not resolve);
 *   blackhole, delay   need the relay (netrelay.c) in the data path, which
 *              only modules with cfg->fault_injection have.
 *
 * The second half is what the transports call; every function takes NULL
 * for "no module" (unit tests, tools) and then does nothing. */
#ifndef VMODULE_NETFAULT_H
#define VMODULE_NETFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <cjson/cJSON.h>

struct vm_module;
struct vm_netrelay;

#define VM_NETFAULT_MAX_DELAY_MS 60000

/* m->net. */
struct vm_netfault {
  bool down, blackhole, dns_fail;
  unsigned delay_ms;
};

/* argv[0] is "net". Returns 0, -1 with err set. */
int vm_netfault_apply(struct vm_module *m, int argc, char **argv, char *err, size_t errlen);
/* Checks the words without a module (config validation). */
int vm_netfault_check(int argc, char **argv, char *err, size_t errlen);
/* Adds "net": {...} to a status object (nothing when no net fault was ever set). */
void vm_netfault_status(struct vm_module *m, cJSON *obj);
/* Closes the module's relays at once (vm_module_stop): the loop can end. */
void vm_netfault_stop(struct vm_module *m);
/* Frees m->net (vm_module_cleanup). */
void vm_netfault_free(struct vm_module *m);

/* ---- for the transports -------------------------------------------------- */

/* Name lookups of m must fail now. Names only: a numeric address is not
 * looked up by a real module either. */
bool vm_netfault_dns_fails(const struct vm_module *m);
/* New connects of m must be refused now: *out gets the refuser's address
 * and true is returned. false when m is not down (or the refuser cannot be
 * made: logged, the connect then goes where it was going). */
bool vm_netfault_refused(const struct vm_module *m, struct sockaddr_in *out);
/* m's connections go through a relay (its config enables faults). */
bool vm_netfault_relayed(const struct vm_module *m);

/* A connection of a module, known while it exists so that `net reset` can
 * reach it. fd() returns its socket now, or -1; the owner embeds the link,
 * adds it while it may have a socket and removes it before it is freed. */
struct vm_netlink {
  struct vm_module *m;
  int (*fd)(struct vm_netlink *l);
  struct vm_netlink *prev, *next;
};
void vm_netlink_add(struct vm_netlink *l, struct vm_module *m, int (*fd)(struct vm_netlink *l));
void vm_netlink_remove(struct vm_netlink *l);

/* ---- the relay (netrelay.c) ---------------------------------------------- *
 * One TCP connection carried through the daemon: the transport connects to
 * the relay's loopback listener, the relay connects to the real destination
 * and copies bytes both ways, holding them while m is blackholed and for
 * delay_ms each way. A reset or a close on one side reaches the other the
 * same way (RST as RST, FIN as FIN), after the same delay.
 *
 * The relay connects upstream first; cb(data, 0) reports the connect (one
 * round trip after it completed, under delay), cb(data, -errno as libuv
 * gives it) its failure, after which the relay is gone. On success the
 * owner connects its socket to vm_netrelay_local(), names that socket's
 * local port with vm_netrelay_expect() (only that peer is accepted), and
 * may release the relay at once: it then lives as long as the connection.
 * Released before a client was expected, it ends. cb never runs inside
 * vm_netrelay_open() nor after vm_netrelay_release(). */
typedef void (*vm_netrelay_cb)(void *data, int status);
struct vm_netrelay *vm_netrelay_open(struct vm_module *m, const struct sockaddr *dst,
                                     vm_netrelay_cb cb, void *data);
const struct sockaddr_in *vm_netrelay_local(const struct vm_netrelay *r);
void vm_netrelay_expect(struct vm_netrelay *r, int port);
void vm_netrelay_release(struct vm_netrelay *r);
/* Re-reads m's fault state (blackhole or delay changed) in its relays. */
void vm_netrelay_kick(struct vm_module *m);
/* Closes m's relays at once. */
void vm_netrelay_stop_all(struct vm_module *m);

#endif
