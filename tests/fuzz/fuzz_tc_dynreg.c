/* fuzz_tc_dynreg.c - libFuzzer target: the tencent dynamic-registration
 * answers of both APIs (tc_parse_dynreg_reply and tc_parse_dynreg_v2_reply,
 * tc_dynreg.c: JSON, then the base64 AES payload decrypted with the product
 * secret, then the JSON inside). The input is the HTTP body, given to both;
 * the product secret is the reference's (§7.4), so the seeds with its
 * payload decrypt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dialect/tencent/tc_replies.h"

#define PSK_CAP 45 /* TC_MAX_DEV_SECRET + 1 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char psk[PSK_CAP];
  if (size > 16384) return 0; /* TC_DYNREG_MAX_REPLY is smaller */
  char *body = malloc(size + 1);
  if (!body) return 0;
  memcpy(body, data, size);
  body[size] = '\0';
  int (*const parse[])(const char *, const char *, char *, size_t) = {tc_parse_dynreg_reply,
                                                                       tc_parse_dynreg_v2_reply};
  for (size_t i = 0; i < sizeof parse / sizeof parse[0]; i++) {
    memset(psk, 0x55, sizeof psk);
    if (parse[i]("hzvf5LF9S0isvBhDSauWMaIk", body, psk, sizeof psk) == 0 &&
        (!memchr(psk, '\0', sizeof psk) || !psk[0]))
      abort();
  }
  free(body);
  return 0;
}
