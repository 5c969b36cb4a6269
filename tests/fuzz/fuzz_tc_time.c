/* fuzz_tc_time.c - libFuzzer target: the tencent server-time reply on
 * $sys/operation/result/<pid>/<dn> (tc_parse_time_reply, tc_gateway.c),
 * which AT+TCGWBIND signs with. The input is the MQTT payload. */
#include <stdint.h>
#include <stdlib.h>

#include "../../src/dialect/tencent/tc_replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  long long t = -1;
  if (tc_parse_time_reply(data, size, &t) == 0 && (t < 0 || t > TC_SERVER_TIME_MAX)) abort();
  return 0;
}
