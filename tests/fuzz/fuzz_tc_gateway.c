/* fuzz_tc_gateway.c - libFuzzer target: the tencent gateway replies on
 * $gateway/operation/result/<pid>/<dn> (tc_parse_gw_reply, tc_gateway.c), as
 * each of the four requests would read them, and as the v2.2.0 list request
 * (describe_sub_devices, tc_parse_gw_list) reads them. The input is the MQTT
 * payload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dialect/tencent/tc_replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const kinds[] = {"online", "offline", "bind", "unbind"};
  for (int i = 0; i < 4; i++) {
    int result = 0;
    (void)tc_parse_gw_reply(data, size, kinds[i], "SUBPRD0001", "sub01", &result);
  }
  struct tc_gw_subdev list[TC_GW_LIST_MAX];
  int n = tc_parse_gw_list(data, size, list, TC_GW_LIST_MAX);
  if (n > TC_GW_LIST_MAX) abort();
  for (int i = 0; i < n; i++) /* NUL-terminated within their fields */
    if (memchr(list[i].pid, 0, sizeof list[i].pid) == NULL ||
        memchr(list[i].dn, 0, sizeof list[i].dn) == NULL)
      abort();
  return 0;
}
