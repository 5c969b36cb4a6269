/* test_ws.c - the WebSocket protocol helpers of src/net/ws.c: the opening
 * handshake (key, accept, request, reply checks) and framing (headers,
 * masking, the incremental parser of server frames: fragmentation, control
 * frames inside a fragmented message, byte-by-byte feeding, protocol
 * errors). The relay itself is covered by tests/integration/test_w800_ws.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/ws.h"

/* ---- handshake ------------------------------------------------------------ */

static void test_key_and_accept_rfc6455_example(void **state) {
  /* RFC 6455 1.3: nonce "the sample nonce" */
  char key[VM_WS_KEY_LEN + 1], acc[VM_WS_ACCEPT_LEN + 1];
  vm_ws_key((const unsigned char *)"the sample nonce", key);
  assert_string_equal(key, "dGhlIHNhbXBsZSBub25jZQ==");
  vm_ws_accept(key, acc);
  assert_string_equal(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_request_bytes(void **state) {
  char buf[512];
  int n = vm_ws_request(buf, sizeof buf, "broker.example", 8083, false, "/mqtt",
                        "dGhlIHNhbXBsZSBub25jZQ==", "mqtt");
  const char *want = "GET /mqtt HTTP/1.1\r\n"
                     "Host: broker.example:8083\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: mqtt\r\n"
                     "\r\n";
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(buf, want);
}

static void test_request_host_forms(void **state) {
  char buf[512];
  vm_ws_request(buf, sizeof buf, "h", 443, true, "/", "k", NULL);
  assert_non_null(strstr(buf, "\r\nHost: h\r\n")); /* default port omitted */
  assert_null(strstr(buf, "Sec-WebSocket-Protocol"));
  vm_ws_request(buf, sizeof buf, "h", 80, true, "/", "k", NULL);
  assert_non_null(strstr(buf, "\r\nHost: h:80\r\n"));
  vm_ws_request(buf, sizeof buf, "::1", 80, false, "/x", "k", "mqtt");
  assert_non_null(strstr(buf, "\r\nHost: [::1]\r\n"));
  vm_ws_request(buf, sizeof buf, "::1", 9001, false, "/x", "k", "mqtt");
  assert_non_null(strstr(buf, "\r\nHost: [::1]:9001\r\n"));
  assert_int_equal(vm_ws_request(buf, 20, "h", 80, false, "/", "k", NULL), -ENOSPC);
}

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static const char *reply_ok = "HTTP/1.1 101 Switching Protocols\r\n"
                              "Upgrade: WebSocket\r\n"
                              "Connection: keep-alive, Upgrade\r\n"
                              "Sec-WebSocket-Accept: " ACCEPT "\r\n"
                              "Sec-WebSocket-Protocol: mqtt\r\n"
                              "\r\n";

static int parse_reply(const char *r, const char *proto, int *status) {
  return vm_ws_parse_reply(r, strlen(r), ACCEPT, proto, status);
}

static void test_reply_accepted_and_incremental(void **state) {
  int status;
  size_t n = strlen(reply_ok);
  assert_int_equal(parse_reply(reply_ok, "mqtt", &status), (int)n);
  assert_int_equal(status, 101);
  /* every prefix is "incomplete" */
  for (size_t i = 0; i < n; i++)
    assert_int_equal(vm_ws_parse_reply(reply_ok, i, ACCEPT, "mqtt", &status), 0);
  /* frames right behind the headers are not part of them */
  char buf[512];
  snprintf(buf, sizeof buf, "%s\x82\x02\x20\x02", reply_ok);
  assert_int_equal(vm_ws_parse_reply(buf, n + 4, ACCEPT, "mqtt", &status), (int)n);
}

static void test_reply_refusals(void **state) {
  int status;
  assert_int_equal(parse_reply("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "mqtt",
                               &status),
                   VM_WS_HS_STATUS);
  assert_int_equal(status, 404);
  assert_int_equal(parse_reply("SSH-2.0-OpenSSH_9.2\r\n\r\n", "mqtt", &status), VM_WS_HS_MALFORMED);
  assert_int_equal(parse_reply("HTTP/1.1 101 x\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT
                               "\r\n\r\n",
                               NULL, &status),
                   VM_WS_HS_UPGRADE);
  assert_int_equal(parse_reply("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: close\r\n"
                               "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
                               NULL, &status),
                   VM_WS_HS_UPGRADE);
  assert_int_equal(parse_reply("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                               "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
                               NULL, &status),
                   VM_WS_HS_ACCEPT);
  assert_int_equal(parse_reply("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
                               NULL, &status),
                   VM_WS_HS_ACCEPT);
  assert_int_equal(parse_reply("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                               "Sec-WebSocket-Accept: " ACCEPT "\r\n"
                               "Sec-WebSocket-Protocol: mqttv5\r\n\r\n",
                               "mqtt", &status),
                   VM_WS_HS_PROTOCOL);
  /* a server naming no subprotocol is tolerated */
  assert_true(parse_reply("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
                          "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
                          "mqtt", &status) > 0);
  char *big = malloc(VM_WS_MAX_REPLY + 1);
  memset(big, 'x', VM_WS_MAX_REPLY);
  memcpy(big, "HTTP/1.1 101 x\r\n", 16);
  assert_int_equal(vm_ws_parse_reply(big, VM_WS_MAX_REPLY, ACCEPT, NULL, &status),
                   VM_WS_HS_TOO_LONG);
  free(big);
}

/* ---- framing ---------------------------------------------------------------- */

static void test_frame_header_lengths(void **state) {
  unsigned char h[VM_WS_MAX_HEADER];
  const unsigned char mask[4] = {1, 2, 3, 4};
  assert_int_equal(vm_ws_frame_header(h, VM_WS_OP_BINARY, true, 0, NULL), 2);
  assert_memory_equal(h, "\x82\x00", 2);
  assert_int_equal(vm_ws_frame_header(h, VM_WS_OP_BINARY, true, 125, mask), 6);
  assert_memory_equal(h, "\x82\xfd\x01\x02\x03\x04", 6);
  assert_int_equal(vm_ws_frame_header(h, VM_WS_OP_BINARY, false, 126, mask), 8);
  assert_memory_equal(h, "\x02\xfe\x00\x7e\x01\x02\x03\x04", 8);
  assert_int_equal(vm_ws_frame_header(h, VM_WS_OP_CONT, true, 65535, NULL), 4);
  assert_memory_equal(h, "\x80\x7e\xff\xff", 4);
  assert_int_equal(vm_ws_frame_header(h, VM_WS_OP_CLOSE, true, 65536, mask), 14);
  assert_memory_equal(h, "\x88\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04", 14);
}

static void test_mask_roundtrip_and_phase(void **state) {
  const unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
  unsigned char data[1000], orig[1000];
  for (int i = 0; i < 1000; i++) orig[i] = data[i] = (unsigned char)(i * 13);
  vm_ws_mask(data, sizeof data, mask, 0);
  for (int i = 0; i < 1000; i++) assert_int_equal(data[i], orig[i] ^ mask[i % 4]);
  /* masking in two pieces with the right phase equals one pass */
  vm_ws_mask(data, 7, mask, 0);
  vm_ws_mask(data + 7, sizeof data - 7, mask, 7);
  assert_memory_equal(data, orig, sizeof data);
  /* RFC 6455 5.7: masked "Hello" */
  unsigned char hello[5] = {'H', 'e', 'l', 'l', 'o'};
  vm_ws_mask(hello, 5, mask, 0);
  assert_memory_equal(hello, "\x7f\x9f\x4d\x51\x58", 5);
}

/* ---- the parser --------------------------------------------------------------- */

struct sink {
  unsigned char data[200000];
  size_t len;
  int ctl_op[8];
  unsigned char ctl[8][126];
  size_t ctl_len[8];
  int nctl;
  int stop_on; /* control opcode that stops the parser, 0: none */
};

static void sink_data(void *ctx, const unsigned char *p, size_t n) {
  struct sink *s = ctx;
  memcpy(s->data + s->len, p, n);
  s->len += n;
}

static int sink_control(void *ctx, int op, const unsigned char *p, size_t n) {
  struct sink *s = ctx;
  s->ctl_op[s->nctl] = op;
  memcpy(s->ctl[s->nctl], p, n);
  s->ctl_len[s->nctl] = n;
  s->nctl++;
  return op == s->stop_on;
}

static const struct vm_ws_parse_cbs cbs = {.data = sink_data, .control = sink_control};

static size_t put_frame(unsigned char *out, int op, bool fin, const void *p, size_t n) {
  size_t h = vm_ws_frame_header(out, op, fin, n, NULL);
  memcpy(out + h, p, n);
  return h + n;
}

static struct sink *sink_new(void) { return calloc(1, sizeof(struct sink)); }

static void test_parse_single_binary_frame(void **state) {
  struct vm_ws_parser p;
  struct sink *s = sink_new();
  unsigned char buf[64];
  size_t n = put_frame(buf, VM_WS_OP_BINARY, true, "\x20\x02\x00\x00", 4);
  vm_ws_parser_init(&p);
  assert_int_equal(vm_ws_parse(&p, buf, n, &cbs, s), 0);
  assert_int_equal(s->len, 4);
  assert_memory_equal(s->data, "\x20\x02\x00\x00", 4);
  assert_int_equal(s->nctl, 0);
  free(s);
}

/* A fragmented message with a ping inside, fed one byte at a time and also
 * in one piece: same result. */
static void test_parse_fragments_and_interleaved_ping(void **state) {
  unsigned char big[70000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7);
  static unsigned char stream[80000];
  size_t n = 0;
  n += put_frame(stream + n, VM_WS_OP_BINARY, false, "ab", 2);
  n += put_frame(stream + n, VM_WS_OP_PING, true, "hb", 2);
  n += put_frame(stream + n, VM_WS_OP_CONT, false, "", 0);
  n += put_frame(stream + n, VM_WS_OP_CONT, false, big, 300);
  n += put_frame(stream + n, VM_WS_OP_CONT, true, big + 300, sizeof big - 300);
  n += put_frame(stream + n, VM_WS_OP_PONG, true, "", 0);
  n += put_frame(stream + n, VM_WS_OP_BINARY, true, "z", 1);
  for (int pass = 0; pass < 2; pass++) {
    struct vm_ws_parser p;
    struct sink *s = sink_new();
    vm_ws_parser_init(&p);
    if (pass == 0) {
      assert_int_equal(vm_ws_parse(&p, stream, n, &cbs, s), 0);
    } else {
      for (size_t i = 0; i < n; i++) assert_int_equal(vm_ws_parse(&p, stream + i, 1, &cbs, s), 0);
    }
    assert_int_equal(s->len, 2 + sizeof big + 1);
    assert_memory_equal(s->data, "ab", 2);
    assert_memory_equal(s->data + 2, big, sizeof big);
    assert_int_equal(s->data[2 + sizeof big], 'z');
    assert_int_equal(s->nctl, 2);
    assert_int_equal(s->ctl_op[0], VM_WS_OP_PING);
    assert_int_equal(s->ctl_len[0], 2);
    assert_memory_equal(s->ctl[0], "hb", 2);
    assert_int_equal(s->ctl_op[1], VM_WS_OP_PONG);
    assert_int_equal(s->ctl_len[1], 0);
    free(s);
  }
}

static void test_parse_close_stops(void **state) {
  struct vm_ws_parser p;
  struct sink *s = sink_new();
  s->stop_on = VM_WS_OP_CLOSE;
  unsigned char buf[64];
  size_t n = put_frame(buf, VM_WS_OP_CLOSE, true, "\x03\xe9" "bye", 5);
  n += put_frame(buf + n, VM_WS_OP_BINARY, true, "late", 4);
  vm_ws_parser_init(&p);
  assert_int_equal(vm_ws_parse(&p, buf, n, &cbs, s), 1);
  assert_int_equal(s->nctl, 1);
  assert_int_equal(s->ctl_len[0], 5);
  assert_memory_equal(s->ctl[0], "\x03\xe9" "bye", 5);
  assert_int_equal(s->len, 0); /* nothing after the close was taken */
  free(s);
}

static void test_parse_64bit_length(void **state) {
  struct vm_ws_parser p;
  struct sink *s = sink_new();
  static unsigned char buf[70000 + 16];
  unsigned char hdr[10] = {0x82, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70}; /* 70000 */
  memcpy(buf, hdr, 10);
  memset(buf + 10, 0x5a, 70000);
  vm_ws_parser_init(&p);
  assert_int_equal(vm_ws_parse(&p, buf, 10 + 70000, &cbs, s), 0);
  assert_int_equal(s->len, 70000);
  free(s);
}

static int parse_err(const unsigned char *bytes, size_t n) {
  struct vm_ws_parser p;
  struct sink *s = sink_new();
  vm_ws_parser_init(&p);
  int rc = vm_ws_parse(&p, bytes, n, &cbs, s);
  free(s);
  return rc;
}

static void test_parse_protocol_errors(void **state) {
  /* text frames: MQTT must be binary */
  assert_int_equal(parse_err((const unsigned char *)"\x81\x01x", 3), VM_WS_PE_DATA);
  /* a masked server frame */
  assert_int_equal(parse_err((const unsigned char *)"\x82\x81\x00\x00\x00\x00x", 7),
                   VM_WS_PE_PROTOCOL);
  /* reserved bits without an extension */
  assert_int_equal(parse_err((const unsigned char *)"\xc2\x01x", 3), VM_WS_PE_PROTOCOL);
  /* reserved opcodes */
  assert_int_equal(parse_err((const unsigned char *)"\x83\x00", 2), VM_WS_PE_PROTOCOL);
  assert_int_equal(parse_err((const unsigned char *)"\x8b\x00", 2), VM_WS_PE_PROTOCOL);
  /* continuation without a message */
  assert_int_equal(parse_err((const unsigned char *)"\x80\x01x", 3), VM_WS_PE_PROTOCOL);
  /* a new message inside a fragmented one */
  assert_int_equal(parse_err((const unsigned char *)"\x02\x01x\x82\x01y", 6), VM_WS_PE_PROTOCOL);
  /* fragmented or long control frames */
  assert_int_equal(parse_err((const unsigned char *)"\x09\x00", 2), VM_WS_PE_PROTOCOL);
  assert_int_equal(parse_err((const unsigned char *)"\x89\x7e\x00\x7e", 4), VM_WS_PE_PROTOCOL);
  /* 64-bit length with the top bit set */
  assert_int_equal(parse_err((const unsigned char *)"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10),
                   VM_WS_PE_TOO_BIG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_key_and_accept_rfc6455_example),
      cmocka_unit_test(test_request_bytes),
      cmocka_unit_test(test_request_host_forms),
      cmocka_unit_test(test_reply_accepted_and_incremental),
      cmocka_unit_test(test_reply_refusals),
      cmocka_unit_test(test_frame_header_lengths),
      cmocka_unit_test(test_mask_roundtrip_and_phase),
      cmocka_unit_test(test_parse_single_binary_frame),
      cmocka_unit_test(test_parse_fragments_and_interleaved_ping),
      cmocka_unit_test(test_parse_close_stops),
      cmocka_unit_test(test_parse_64bit_length),
      cmocka_unit_test(test_parse_protocol_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
