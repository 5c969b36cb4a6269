/* mqtt.h - one MQTT 3.1.1 client session (libmosquitto 2.0.11) driven by the
 * libuv loop; the transport every dialect (tencent, w800, me3630) uses.
 *
 * A struct vm_mqtt is caller-allocated and reusable: vm_mqtt_connect() starts
 * an attempt (DNS with uv_getaddrinfo, then libmosquitto on each numeric
 * address in the resolver's order until one accepts the TCP connection, then
 * TLS, then CONNACK), all bounded by connect_timeout_ms. A refused or
 * unreachable address moves on at once; one that does not answer gets an equal
 * share of the time left before the next is tried. There is
 * no automatic reconnect: the dialects run their own back-off and call
 * vm_mqtt_connect() again on the same object once it is idle.
 *
 * Notification contract:
 * - every vm_mqtt_connect() that returned 0 produces exactly one on_connect();
 * - every on_connect(0) is followed by exactly one on_disconnect();
 * - after vm_mqtt_close() nothing is called except the close callback;
 * - no callback runs before the API call that caused it returns (QoS 0
 *   on_publish and the on_disconnect of vm_mqtt_disconnect() are deferred
 *   to the next loop turn), so a returned mid can be matched in on_publish.
 * Callbacks may call any vm_mqtt_* function, including vm_mqtt_close().
 *
 * libmosquitto writes with write(2); the first vm_mqtt_init() sets SIGPIPE to
 * SIG_IGN if it is still SIG_DFL, so a broker reset cannot kill the daemon. */
#ifndef VMODULE_MQTT_H
#define VMODULE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "vmodule/netfault.h"

struct mosquitto;
struct addrinfo;
struct ssl_ctx_st;
struct vm_mqtt_gai;

enum vm_mqtt_tls_mode {
  VM_MQTT_TLS_NONE = 0,
  VM_MQTT_TLS_PSK, /* TLS 1.2 PSK ciphers (Tencent TLS mode 1); no certificates */
  VM_MQTT_TLS_CA,  /* X.509: server verified against ca_file, optional client cert */
};

/* Negative on_connect() results; rc > 0 is the broker's CONNACK refusal code
 * (1 protocol version, 2 identifier, 3 unavailable, 4 bad user/password,
 * 5 not authorised). */
enum vm_mqtt_fail {
  VM_MQTT_E_DNS = -1,      /* host name did not resolve */
  VM_MQTT_E_TCP = -2,      /* no resolved address accepted the TCP connection */
  VM_MQTT_E_TLS = -3,      /* TLS refused: wrong PSK, bad/mismatched cert, our cert rejected
                            * (TLS 1.3: a close before CONNACK with no session ticket) */
  VM_MQTT_E_TIMEOUT = -4,  /* connect_timeout_ms elapsed before CONNACK */
  VM_MQTT_E_CLOSED = -5,   /* link closed or broke after TCP (and TLS), before CONNACK */
  VM_MQTT_E_CANCELED = -6, /* vm_mqtt_disconnect() was called before CONNACK */
};

enum vm_mqtt_disc_reason {
  VM_MQTT_DISC_LOCAL = 0, /* vm_mqtt_disconnect() */
  VM_MQTT_DISC_LOST = 1,  /* read/write error, peer closed, keepalive expired */
};

enum vm_mqtt_state {
  VM_MQTT_IDLE = 0,
  VM_MQTT_RESOLVING,
  VM_MQTT_CONNECTING,  /* TCP connect in progress */
  VM_MQTT_HANDSHAKING, /* TCP up; TLS handshake and/or waiting for CONNACK */
  VM_MQTT_CONNECTED,
  VM_MQTT_DISCONNECTING,
};

struct vm_mqtt_opts {
  const char *host; /* name or numeric address; also TLS SNI and the name the cert must match */
  int port;         /* 0: host is the absolute path of a unix stream socket (no DNS, no TLS) */
  const char *client_id; /* NULL: libmosquitto picks a random one (clean_session only) */
  const char *username;  /* NULL: none */
  const char *password;  /* NULL: none; needs a username in MQTT 3.1.1 */
  int keepalive;         /* seconds, 0 or 5..65535 */
  bool clean_session;
  enum vm_mqtt_tls_mode tls;
  /* VM_MQTT_TLS_PSK */
  const char *psk_identity;
  const char *psk_key_hex; /* key as hex digits, as mosquitto_tls_psk_set() takes it */
  /* VM_MQTT_TLS_CA */
  const char *ca_file;   /* PEM bundle; NULL: the system store */
  const char *cert_file; /* client certificate chain (PEM), optional */
  const char *key_file;  /* its private key (PEM), required with cert_file */
  bool tls_insecure;     /* accept any server certificate (tests/lab brokers only) */
  const char *alpn;      /* ALPN names offered, comma-separated ("mqtt" or "a,b"); NULL: none */
  /* Last will; will_topic NULL: none. */
  const char *will_topic;
  const void *will_payload;
  int will_len, will_qos;
  bool will_retain;
  int connect_timeout_ms; /* DNS + TCP + TLS + CONNACK; 0: 10000 */
  struct vm_module *net;  /* whose `net` faults apply (netfault.h); NULL: none. Not to a
                           * unix socket (port 0): that one is local */
};

struct vm_mqtt_cbs {
  void (*on_connect)(void *data, int rc);
  void (*on_disconnect)(void *data, enum vm_mqtt_disc_reason reason);
  /* topic and payload are valid only during the call; payload is not NUL-terminated. */
  void (*on_message)(void *data, const char *topic, const void *payload, int len, int qos,
                     bool retain, int mid);
  /* QoS 1: PUBACK received; QoS 0: handed to the socket. */
  void (*on_publish)(void *data, int mid);
  /* granted[i] is the QoS granted for filter i, or 0x80 for a refusal. */
  void (*on_subscribe)(void *data, int mid, int count, const int *granted);
  void (*on_unsubscribe)(void *data, int mid);
};

struct vm_mqtt {
  uv_loop_t *loop;
  const char *who; /* log prefix, borrowed: must outlive the session */
  struct vm_mqtt_cbs cbs;
  void *data;
  enum vm_mqtt_state state;

  struct mosquitto *mosq;   /* one per connection attempt; NULL when idle */
  uv_poll_t *poll;          /* on mosquitto_socket(); heap, freed by its close callback */
  int poll_fd, poll_mask;
  uv_timer_t misc_timer;    /* 1 s mosquitto_loop_misc (keepalive), while connected */
  uv_timer_t op_timer;      /* connect deadline (or an address's share of it);
                             * graceful-disconnect deadline */
  uint64_t deadline;        /* uv_now() at which the connect attempt times out */
  uv_timer_t defer_timer;   /* 0 ms: delivers notifications raised inside API calls */
  struct vm_mqtt_gai *gai;  /* pending lookup; detached (not waited for) on abort */
  struct addrinfo *addrs, *addr_next;
  struct ssl_ctx_st *ssl_ctx; /* shared per TLS configuration (mqtt_tls.c), referenced */
  struct vm_module *net;      /* opts.net of the current connect */
  struct vm_netlink link;     /* in the registry while net is set, until vm_mqtt_close() */
  struct vm_netrelay *relay;  /* the relay connecting upstream for this attempt */
  struct sockaddr_storage dst; /* where the relay connects */

  /* Owned copy of the options of the current connect. */
  struct {
    char *host, *client_id, *username, *password, *psk_identity, *will_topic;
    void *will_payload;
    int port, keepalive, will_len, will_qos, timeout_ms;
    bool clean_session, will_retain, host_is_ip;
    enum vm_mqtt_tls_mode tls;
    unsigned char psk[64];
    unsigned psk_len;
  } conf;
  char ip[64];        /* address of the current attempt, for logs */
  char last_err[160]; /* last libmosquitto/OpenSSL error line, for the failure log */

  int depth;          /* nesting of libmosquitto calls: teardown waits for 0 */
  struct vm_mqtt *tls_prev; /* session named for TLS callbacks before ours */
  int api;            /* inside a public call: notifications are deferred */
  int fail;           /* why the attempt ended (enum vm_mqtt_fail or CONNACK code) */
  int link_rc;        /* libmosquitto rc of the link loss */
  bool link_down;
  bool tls_done;      /* our side of the handshake finished */
  bool tls_confirmed; /* the server accepted it (Finished <= 1.2, ticket in 1.3) */
  /* Pending notifications. */
  int *mids;
  size_t n_mids, cap_mids;
  bool ev_connect, ev_disconnect;
  int ev_connect_rc;
  enum vm_mqtt_disc_reason ev_disc_reason;

  bool closing;
  int closes_pending;
  void (*close_cb)(struct vm_mqtt *m);
};

/* Prepares m (timers; libmosquitto init once per process). cbs is copied;
 * any callback may be NULL. who must outlive m. Returns 0 or -errno. */
int vm_mqtt_init(struct vm_mqtt *m, uv_loop_t *loop, const char *who,
                 const struct vm_mqtt_cbs *cbs, void *data);
/* Starts an attempt; o and its strings are copied (TLS files are loaded now).
 * Returns 0 (on_connect() follows), -EISCONN/-EBUSY when not idle, -EINVAL for
 * bad options or unusable TLS files (logged), -ENOMEM; no callback then. */
int vm_mqtt_connect(struct vm_mqtt *m, const struct vm_mqtt_opts *o);
/* These three return the mid (> 0), or -ENOTCONN (not connected), -EINVAL,
 * -EMSGSIZE, -ENOMEM, or -ECONNRESET/-errno when the write failed (the loss is
 * then reported by on_disconnect()). */
int vm_mqtt_publish(struct vm_mqtt *m, const char *topic, const void *payload, int len, int qos,
                    bool retain);
int vm_mqtt_subscribe(struct vm_mqtt *m, const char *filter, int qos);
int vm_mqtt_unsubscribe(struct vm_mqtt *m, const char *filter);
/* Connected: sends DISCONNECT, then on_disconnect(LOCAL). Attempt in progress:
 * abandons it, then on_connect(VM_MQTT_E_CANCELED). Idle: -ENOTCONN. */
int vm_mqtt_disconnect(struct vm_mqtt *m);
/* Abrupt teardown (no DISCONNECT: the broker publishes the will, as for a
 * power cut). close_cb (may be NULL) runs once every handle is closed; m may be
 * freed from there. Safe from inside callbacks. */
void vm_mqtt_close(struct vm_mqtt *m, void (*close_cb)(struct vm_mqtt *m));
bool vm_mqtt_is_connected(const struct vm_mqtt *m);
/* Text for an on_connect() rc. */
const char *vm_mqtt_strerror(int rc);

#endif
