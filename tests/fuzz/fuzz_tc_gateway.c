/* fuzz_tc_gateway.c - libFuzzer target: the tencent gateway replies on
 * $gateway/operation/result/<pid>/<dn> (tc_parse_gw_reply, tc_gateway.c), as
 * each of the four requests would read them. The input is the MQTT payload. */
#include <stdint.h>
#include <stdlib.h>

#include "../../src/dialect/tencent/tc_replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const kinds[] = {"online", "offline", "bind", "unbind"};
  for (int i = 0; i < 4; i++) {
    int result = 0;
    (void)tc_parse_gw_reply(data, size, kinds[i], "SUBPRD0001", "sub01", &result);
  }
  return 0;
}
