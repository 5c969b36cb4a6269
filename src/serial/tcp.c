/* tcp.c - raw TCP serial endpoint (ser2net style, tcp.h) for hosts that
 * cannot open the PTY, e.g. a daemon in Docker reached through a host-side
 * `socat pty,rawer,link=/tmp/ttyVM0 tcp:127.0.0.1:PORT`. What a TCP
 * listener does differently from the other stream sockets: a numeric
 * address (resolving would block the loop), Nagle off (sockep.c), the port
 * the kernel chose for port 0 kept so that `serial plug` listens on it
 * again, and the peer's address in the log. */
#include "vmodule/tcp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmodule/log.h"

#define TCP_BACKLOG 4

/* "1.2.3.4:5678" or "[::1]:5678" ("unknown" for another family). */
static void tcp_addr_name(const struct sockaddr_storage *ss, char *out, size_t cap) {
  char ip[48];

  snprintf(out, cap, "unknown");
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;

    if (uv_ip6_name(a, ip, sizeof ip) == 0)
      snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
  } else if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;

    if (uv_ip4_name(a, ip, sizeof ip) == 0)
      snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
  }
}

/* The peer's name; "unknown" when it reset before accept. */
static void tcp_peer(union vm_sock_handle *client, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof ss;

  snprintf(out, cap, "unknown");
  if (uv_tcp_getpeername(&client->tcp, (struct sockaddr *)&ss, &len) == 0)
    tcp_addr_name(&ss, out, cap);
}

static int tcp_init(uv_loop_t *loop, union vm_sock_handle *h) { return uv_tcp_init(loop, &h->tcp); }

static int tcp_parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  if (strcmp(host, "localhost") == 0)
    host = "127.0.0.1"; /* resolving would block the loop; this one is certain */
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return -EINVAL;
}

/* Keeps the bound address (with the port chosen for port 0) for plug. */
static int tcp_bound_port(struct vm_sockep *t) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  int r = uv_tcp_getsockname(&t->server->tcp, (struct sockaddr *)&ss, &len);

  if (r < 0)
    return r;
  t->addr = ss;
  t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                           : ((struct sockaddr_in *)&ss)->sin_port);
  tcp_addr_name(&t->addr, t->where, sizeof t->where);
  return 0;
}

static int tcp_open(struct vm_sockep *t, union vm_sock_handle *server, uv_connection_cb cb) {
  int r = uv_tcp_bind(&server->tcp, (const struct sockaddr *)&t->addr, 0);

  if (r == 0)
    r = uv_listen(&server->stream, TCP_BACKLOG, cb);
  if (r == 0)
    r = tcp_bound_port(t);
  return r;
}

static const struct vm_sockep_ops tcp_ops = {
    .kind = "tcp",
    .init = tcp_init,
    .open = tcp_open,
    .peer = tcp_peer,
};

int vm_tcp_listen(struct vm_sockep *t, uv_loop_t *loop, const char *name, const char *host,
                  int port, vm_input_cb on_input, vm_sockep_presence_cb on_presence, void *data) {
  vm_sockep_init(t, &tcp_ops, name, on_input, on_presence, data);
  if (!host || !*host)
    host = "127.0.0.1";
  if (port < 0 || port > 65535 || tcp_parse_addr(host, port, &t->addr) < 0) {
    vm_log_error(name ? name : "tcp", "invalid TCP listen address %s:%d", host, port);
    return -EINVAL;
  }
  snprintf(t->where, sizeof t->where, "%s:%d", host, port);
  return vm_sockep_start(t, loop);
}
