/* fuzz_ws_upgrade.c - libFuzzer target: the broker's reply to the w800's
 * WebSocket Upgrade request (vm_ws_parse_reply, src/net/ws.c). Input byte 0
 * picks the requested subprotocol ("mqtt" or none), the rest is what the
 * broker sent; the key is the RFC 6455 example's, so its accept value
 * (s3pPLMBiTxaQ9kYGzzhZRbK+xOo=) is the right one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static char accept[VM_WS_ACCEPT_LEN + 1];
  if (!accept[0]) vm_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", accept);
  if (size < 1) return 0;
  const char *protocol = data[0] & 1 ? NULL : "mqtt";
  size_t len = size - 1;
  char *buf = malloc(len ? len : 1);
  if (!buf) return 0;
  memcpy(buf, data + 1, len);
  int status = -1;
  int rc = vm_ws_parse_reply(buf, len, accept, protocol, &status);
  if (rc > 0 && (size_t)rc > len) abort();
  if (rc > 0 && status != 101) abort();
  free(buf);
  return 0;
}
