/* fuzz_tc_ota.c - libFuzzer target: messages on $ota/update/<pid>/<dn>
 * (tc_parse_ota_msg, tc_ota.c), update_firmware above all, whose url, size
 * and md5 the OTA task downloads and checks. The input is the MQTT payload. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dialect/tencent/tc_replies.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct tc_ota_update u;
  if (tc_parse_ota_msg(data, size, &u) != TC_OTA_MSG_UPDATE) return 0;
  /* what the task relies on */
  if (u.size < 1 || u.size > TC_OTA_MAX_SIZE || strlen(u.md5) != 32 || !u.version[0] ||
      strlen(u.version) > TC_OTA_MAX_VERSION || !u.name[0] || strchr(u.name, '/') ||
      strchr(u.name, '?') || strlen(u.url) > TC_OTA_MAX_URL)
    abort();
  return 0;
}
