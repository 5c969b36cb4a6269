/* fuzz_me_auth.c - libFuzzer target: the Aliyun guider's answer to the
 * me3630's AT+CLOUDAUTH in https mode (me_auth_parse_reply, me_auth.c).
 * Input byte 0 picks the HTTP status, the rest is the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dialect/me3630/me_auth_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const long statuses[] = {200, 200, 200, 200, 201, 302, 400, 403, 404, 500, 503, 0};
  struct me_auth_reply r;
  if (size < 1 || size > 8192) return 0;
  long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
  char *body = malloc(size);
  if (!body) return 0;
  memcpy(body, data + 1, size - 1);
  body[size - 1] = '\0';
  int rc = me_auth_parse_reply(status, body, &r);
  if (rc == 1 && (r.port < 1 || r.port > 65535 || !memchr(r.host, '\0', sizeof r.host) ||
                  !memchr(r.iot_id, '\0', sizeof r.iot_id) ||
                  !memchr(r.iot_token, '\0', sizeof r.iot_token)))
    abort();
  if (rc < -1 || rc > 1) abort();
  free(body);
  return 0;
}
