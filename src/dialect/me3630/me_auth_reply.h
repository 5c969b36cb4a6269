/* me_auth_reply.h - the me3630 dialect's parser of the Aliyun guider's answer
 * to AT+CLOUDAUTH in https mode (w800-me3630-at.md §8.1): bytes in, result
 * out, no state; me_auth.c and the fuzzers (tests/fuzz/) use it. */
#ifndef ME_AUTH_REPLY_H
#define ME_AUTH_REPLY_H

struct me_auth_reply {
  char iot_id[128], iot_token[128], host[256]; /* iot_token is a secret: wipe it */
  int port;
  int code; /* the answer's "code" when it is a whole number in the int range, else 0 */
};

/* {"code":200,"data":{"iotId","iotToken","resources":{"mqtt":{"host","port"}}}}
 * with HTTP status. Returns 1 (success, *out filled), 0 (the server refused:
 * HTTP 4xx or a code other than 200) or -1 (not an answer). Numbers count
 * only as whole numbers in range: "code":200.5 is not 200, and a port must
 * be 1..65535. */
int me_auth_parse_reply(long status, const char *body, struct me_auth_reply *out);

#endif
