/* fuzz_ws_frames.c - libFuzzer target: the WebSocket frame parser for what
 * the broker sends (vm_ws_parse, src/net/ws.c), fed in chunks as the relay
 * reads them. Input byte 0 sets the chunk size (1..64) and whether a close
 * frame stops the parser (bit 7), the rest is the byte stream. */
#include <stdint.h>
#include <stdlib.h>

#include "vmodule/ws.h"

struct sink {
  size_t data_bytes, controls;
  int stop_on_close;
};

static void on_data(void *ctx, const unsigned char *p, size_t n) {
  struct sink *s = ctx;
  if (n && !p) abort();
  s->data_bytes += n;
}

static int on_control(void *ctx, int opcode, const unsigned char *p, size_t n) {
  struct sink *s = ctx;
  if (n > 125 || (n && !p)) abort(); /* a control frame's payload is at most 125 bytes */
  if (opcode != VM_WS_OP_CLOSE && opcode != VM_WS_OP_PING && opcode != VM_WS_OP_PONG) abort();
  s->controls++;
  return s->stop_on_close && opcode == VM_WS_OP_CLOSE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct vm_ws_parse_cbs cbs = {.data = on_data, .control = on_control};
  struct vm_ws_parser p;
  struct sink s = {.stop_on_close = data && size && (data[0] & 0x80)};
  if (size < 1) return 0;
  size_t chunk = (size_t)(data[0] & 0x3f) + 1;
  vm_ws_parser_init(&p);
  for (size_t off = 1; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    int rc = vm_ws_parse(&p, data + off, n, &cbs, &s);
    if (rc != 0) {
      if (rc != 1 && rc != VM_WS_PE_PROTOCOL && rc != VM_WS_PE_DATA && rc != VM_WS_PE_TOO_BIG)
        abort();
      break;
    }
  }
  if (s.data_bytes > size) abort();
  return 0;
}
