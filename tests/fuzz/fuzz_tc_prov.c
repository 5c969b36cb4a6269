/* fuzz_tc_prov.c - libFuzzer target: what reaches tencent Wi-Fi provisioning
 * from the network (tc_prov_msg.c): the phone app's datagram
 * (tc_parse_prov_app) and the cloud's answer to app_bind_token
 * (tc_parse_prov_bind_reply), both given the input. Every string the app
 * parser returns must be NUL-terminated within its field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dialect/tencent/tc_replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_field(const char *f, size_t cap) {
  if (!memchr(f, '\0', cap)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tc_prov_app a;
  int code;
  if (size > 65536) return 0; /* one UDP datagram */
  memset(&a, 0x55, sizeof a);
  enum tc_prov_app_kind k = tc_parse_prov_app(data, size, &a);
  if (k > TC_PROV_APP_UNKNOWN) abort();
  check_field(a.region, sizeof a.region);
  check_field(a.token, sizeof a.token);
  check_field(a.ssid, sizeof a.ssid);
  check_field(a.password, sizeof a.password);
  (void)tc_parse_prov_bind_reply(data, size, &code);
  return 0;
}
