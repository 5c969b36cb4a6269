/* ws.h - MQTT over WebSocket for a libmosquitto (2.0.11) that has no
 * WebSocket client: a relay on the libuv loop.
 *
 * vm_ws_connect() opens the real connection to the broker (DNS with
 * uv_getaddrinfo, TCP to each address in the resolver's order until one
 * accepts, optional TLS with SNI, ALPN, CA verification, host name check and
 * client certificate, then the HTTP/1.1 Upgrade with
 * `Sec-WebSocket-Protocol: mqtt`), all bounded by timeout_ms: a refused or
 * unreachable address moves on at once, one that does not answer gets an
 * equal share of the time left before the next is tried (as vm_mqtt does).
 * Meanwhile it listens on a unix socket in a private directory. Once
 * on_open(0) has run, the caller points libmosquitto at vm_ws_local_path()
 * (port 0); the relay accepts that one connection, removes the socket file
 * and its directory, and carries its bytes in masked binary frames, and the
 * payload of the broker's binary frames (fragmented or not) back. Pings are
 * answered; a close frame or EOF on either side ends the relay (the other
 * side is closed too).
 *
 * Everything runs on the loop: TLS is OpenSSL over memory BIOs fed by the
 * uv_tcp_t, so no call blocks and no thread is used.
 *
 * Notification contract (mirrors vm_mqtt):
 * - every vm_ws_connect() that returned 0 produces exactly one on_open();
 * - every on_open(0) is followed by exactly one on_close();
 * - nothing is called after vm_ws_close() except its close_cb;
 * - callbacks may call vm_ws_close().
 *
 * The pure helpers at the end (handshake and framing) are what the unit tests
 * exercise; the relay uses nothing else to speak the protocol. */
#ifndef VMODULE_WS_H
#define VMODULE_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define VM_WS_MAX_ALPN 8

struct vm_module;

struct vm_ws_opts {
  const char *host; /* DNS, Host header, SNI (names only) and the certificate check */
  int port;
  const char *path;     /* request target; must start with '/' */
  const char *protocol; /* Sec-WebSocket-Protocol, e.g. "mqtt"; NULL: none */
  bool tls;
  bool verify;           /* check the server certificate (chain and host name) */
  const char *ca_file;   /* PEM bundle for verify; NULL: the system store */
  const char *cert_file; /* client certificate chain (PEM), optional */
  const char *key_file;  /* its key, required with cert_file */
  const char *const *alpn; /* protocol names for the ClientHello, in order */
  int nalpn;
  int timeout_ms; /* DNS + TCP (every address) + TLS + Upgrade; 0: 10000 */
  struct vm_module *net; /* whose `net` faults apply to the broker link (netfault.h); NULL: none */
};

/* Negative on_open() results. */
enum vm_ws_fail {
  VM_WS_E_DNS = -1,     /* host name did not resolve */
  VM_WS_E_TCP = -2,     /* no address accepted the TCP connection */
  VM_WS_E_TLS = -3,     /* handshake failed (certificate, alert, ...) */
  VM_WS_E_HTTP = -4,    /* the Upgrade was refused or the reply is not a valid 101 */
  VM_WS_E_TIMEOUT = -5, /* timeout_ms elapsed */
  VM_WS_E_CLOSED = -6,  /* the broker closed the connection during the handshake */
};

/* on_close() reasons. */
enum vm_ws_end {
  VM_WS_END_LOCAL = 0, /* libmosquitto closed its side */
  VM_WS_END_PEER,      /* the broker sent a close frame or closed the connection */
  VM_WS_END_ERROR,     /* I/O or protocol error */
};

struct vm_ws;
struct vm_ws_cbs {
  void (*on_open)(struct vm_ws *ws, int rc);
  void (*on_close)(struct vm_ws *ws, enum vm_ws_end why);
};

struct vm_ws_conn; /* ws.c */

struct vm_ws {
  void *data;     /* the caller's */
  struct vm_ws_conn *c;
};

/* Starts a relay (ws is caller-allocated and must stay put until close_cb).
 * Options and strings are copied; TLS files are loaded now. Returns 0 or
 * -EINVAL (bad options or unusable TLS files, logged), -ENOMEM, or the
 * listener's -errno; no callback then. who (log prefix) must outlive ws. */
int vm_ws_connect(struct vm_ws *ws, uv_loop_t *loop, const char *who, const struct vm_ws_opts *o,
                  const struct vm_ws_cbs *cbs, void *data);
/* The unix socket path libmosquitto must connect to (valid after vm_ws_connect()
 * until the connection is accepted or the relay ends). */
const char *vm_ws_local_path(const struct vm_ws *ws);
/* Ends the relay. graceful: bytes libmosquitto already wrote (its DISCONNECT)
 * are still forwarded and a close frame is sent, bounded by a short deadline;
 * otherwise the connections are cut at once (the broker sees the link die).
 * close_cb (may be NULL) runs once everything is closed. */
void vm_ws_close(struct vm_ws *ws, bool graceful, void (*close_cb)(struct vm_ws *ws));
/* Text for an on_open() rc. */
const char *vm_ws_strerror(int rc);

/* ---- protocol helpers (pure) ------------------------------------------------ */

#define VM_WS_OP_CONT 0x0
#define VM_WS_OP_TEXT 0x1
#define VM_WS_OP_BINARY 0x2
#define VM_WS_OP_CLOSE 0x8
#define VM_WS_OP_PING 0x9
#define VM_WS_OP_PONG 0xA

#define VM_WS_KEY_LEN 24    /* base64 of 16 bytes */
#define VM_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 */
#define VM_WS_MAX_HEADER 14

/* Sec-WebSocket-Key for a 16-byte nonce; out gets 24 characters + NUL. */
void vm_ws_key(const unsigned char nonce[16], char out[VM_WS_KEY_LEN + 1]);
/* Sec-WebSocket-Accept the server must return for key. */
void vm_ws_accept(const char *key, char out[VM_WS_ACCEPT_LEN + 1]);
/* The Upgrade request. The port is shown in Host only when it is not the
 * scheme's default; IPv6 literals are bracketed. Returns its length, or
 * -ENOSPC. */
int vm_ws_request(char *buf, size_t cap, const char *host, int port, bool tls, const char *path,
                  const char *key, const char *protocol);

/* Parses the reply to the Upgrade in buf[0..len). Returns the length of the
 * header block (bytes after it are already WebSocket frames), 0 while the
 * block is incomplete, or a negative VM_WS_HS_* code. *status gets the HTTP
 * status code once the status line is complete (0 before). */
#define VM_WS_HS_MALFORMED (-1) /* not an HTTP/1.1 status line / header block */
#define VM_WS_HS_STATUS (-2)    /* status is not 101 */
#define VM_WS_HS_UPGRADE (-3)   /* Upgrade: websocket or Connection: upgrade missing */
#define VM_WS_HS_ACCEPT (-4)    /* Sec-WebSocket-Accept missing or wrong */
#define VM_WS_HS_PROTOCOL (-5)  /* a subprotocol other than the requested one */
#define VM_WS_HS_TOO_LONG (-6)  /* no end of headers within VM_WS_MAX_REPLY bytes */
#define VM_WS_MAX_REPLY 8192
int vm_ws_parse_reply(const char *buf, size_t len, const char *accept, const char *protocol,
                      int *status);

/* Writes a frame header; mask NULL: unmasked (server frames). Returns its
 * length (2..14). */
size_t vm_ws_frame_header(unsigned char out[VM_WS_MAX_HEADER], int opcode, bool fin, uint64_t len,
                          const unsigned char *mask);
/* XORs buf with the 4-byte mask, starting at mask offset `phase` (0..3). */
void vm_ws_mask(unsigned char *buf, size_t len, const unsigned char mask[4], size_t phase);

/* Incremental frame parser for what a server sends. */
struct vm_ws_parser {
  int state;
  unsigned char hdr[VM_WS_MAX_HEADER];
  size_t hdr_len, hdr_need;
  int opcode;
  bool fin, masked;
  unsigned char mask[4];
  uint64_t remaining, done;
  bool in_message; /* a fragmented data message is open */
  unsigned char ctl[125];
  size_t ctl_len;
};

struct vm_ws_parse_cbs {
  /* payload bytes of binary (and their continuation) frames */
  void (*data)(void *ctx, const unsigned char *p, size_t n);
  /* a whole control frame (close, ping, pong); non-zero stops the parser */
  int (*control)(void *ctx, int opcode, const unsigned char *p, size_t n);
};

/* Protocol errors returned by vm_ws_parse (the close code to send is the
 * negated value). */
#define VM_WS_PE_PROTOCOL (-1002) /* reserved bits/opcodes, bad fragmentation, masked frame */
#define VM_WS_PE_DATA (-1003)     /* a text frame: MQTT needs binary */
#define VM_WS_PE_TOO_BIG (-1009)  /* 64-bit length with the top bit set */

void vm_ws_parser_init(struct vm_ws_parser *p);
/* Feeds bytes. Returns 0, 1 when a control callback asked to stop (the rest
 * of the input is not consumed), or a VM_WS_PE_* code. */
int vm_ws_parse(struct vm_ws_parser *p, const unsigned char *in, size_t n,
                const struct vm_ws_parse_cbs *cb, void *ctx);

#endif
