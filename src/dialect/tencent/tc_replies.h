/* tc_replies.h - the tencent dialect's parsers of what the cloud sends back
 * (reference §7.2, §7.5, §7.6, §7.7): bytes in, result out, no state. The gateway
 * and the registration use them, and so do the fuzzers (tests/fuzz/).
 *
 * A number is taken only when it is a whole number within its range (a
 * fraction or 1e300 makes the reply malformed); malformed replies are treated
 * as the firmware treats them, each function says how. */
#ifndef TC_REPLIES_H
#define TC_REPLIES_H

#include <stddef.h>

/* The largest server time taken: the SDK keeps it in a 32-bit long. */
#define TC_SERVER_TIME_MAX 2147483647LL

/* The reply to the time request on $sys/operation/result (§7.7),
 * {"type":"get","time":<unix seconds>}. Returns 0 with *time set, or -1 when
 * it is not such a reply (time missing, not a whole number, negative or above
 * TC_SERVER_TIME_MAX): the bind keeps waiting for a good one and, failing
 * that, ends with FAIL,-223 as when no reply comes. */
int tc_parse_time_reply(const void *payload, size_t len, long long *time);

/* A reply on $gateway/operation/result (§7.6) to a request of type kind
 * ("online", "bind", ...) about sub-device pid/dn. Returns 1 with *result the
 * cloud's result for it, or 0 when the reply is about something else or its
 * entry is malformed (result not a whole number in the int range): it is
 * ignored, as the SDK ignores what does not match its request. */
int tc_parse_gw_reply(const void *payload, size_t len, const char *kind, const char *pid,
                      const char *dn, int *result);

/* The reply to the v2.2.0 list request {"type":"describe_sub_devices"} on
 * $gateway/operation/result (§7.6, seed 003):
 * {"type":"describe_sub_devices","payload":{"devices":[{"product_id":"..",
 * "device_name":".."},..]}}, as the v2.2.0 SDK reads it [LIB220
 * gateway_common.c]: a payload over TC_GW_REPLY_BUF bytes is dropped, a
 * longer one than TC_GW_REPLY_BUF - 1 cut to that; "payload.devices" must be
 * there (anything else is no reply: ignored); an entry without a string
 * product_id and device_name is skipped; names are cut to 10 and 48
 * characters. The SDK prepends each entry to its list, so the firmware
 * prints them last first: out[] holds them in that order. Returns how many
 * (0 for an empty or non-array "devices"; at most cap, which 1023 bytes
 * cannot exceed for cap >= TC_GW_LIST_MAX), or -1 when it is no such reply. */
#define TC_GW_REPLY_BUF 1024 /* GATEWAY_RECEIVE_BUFFER_LEN */
#define TC_GW_LIST_MAX 32    /* > the 27 shortest entries 1023 bytes can hold */
struct tc_gw_subdev {
  char pid[10 + 1]; /* MAX_SIZE_OF_PRODUCT_ID */
  char dn[48 + 1];  /* MAX_SIZE_OF_DEVICE_NAME */
};
int tc_parse_gw_list(const void *payload, size_t len, struct tc_gw_subdev *out, size_t cap);

/* The dynamic-registration answer (§7.2, §7.4), a NUL-terminated body,
 * decrypted with product_secret. Returns 0 with the device secret in psk
 * (cap bytes), the cloud's nonzero code, or TC_RC_FAILURE (-1001) for an
 * unusable answer (no code, a code that is not a whole number in the int
 * range, a payload that does not decrypt, a certificate device, no key). */
int tc_parse_dynreg_reply(const char *product_secret, const char *body, char *psk, size_t cap);
/* The same for the v2 API (§7.3): {"Response":{"Len":..,"Payload":"..",
 * "RequestId":..}}, or {"Response":{"Error":{"Code":<n>,"Message":..},..}},
 * which returns n (a Code that is not a nonzero whole number in the int
 * range is TC_RC_FAILURE, as is anything without a Response object). Len is
 * not checked: the SDKs do not use it. */
int tc_parse_dynreg_v2_reply(const char *product_secret, const char *body, char *psk, size_t cap);

/* A message on $ota/update/<pid>/<dn> (§7.5). */
#define TC_OTA_MAX_VERSION 32 /* MAX_SIZE_OF_FW_VERSION */
#define TC_OTA_MAX_URL 1024   /* inferred: the SDK copies the url into a heap buffer */
#define TC_OTA_MAX_NAME 64    /* inferred: MAX_SIZE_OF_FW_NAME */
#define TC_OTA_MAX_SIZE 4294967295LL /* file_size is a uint32_t in the SDK */
enum tc_ota_msg {
  TC_OTA_MSG_OTHER,       /* not for the OTA client (unknown type): ignored */
  TC_OTA_MSG_UPDATE,      /* update_firmware with every field valid */
  TC_OTA_MSG_BAD_UPDATE,  /* update_firmware missing a field or with a bad one */
  TC_OTA_MSG_VERSION_OK,  /* report_version_rsp, result_code 0 */
  TC_OTA_MSG_VERSION_ERR, /* report_version_rsp with another result_code, or none */
};
struct tc_ota_update {
  char version[TC_OTA_MAX_VERSION + 1];
  char url[TC_OTA_MAX_URL + 1];
  char name[TC_OTA_MAX_NAME + 1]; /* the url's last path segment, without its query */
  char md5[33];                   /* 32 hex digits, lower-case */
  long long size;                 /* 1..TC_OTA_MAX_SIZE */
};
/* Classifies payload and, for TC_OTA_MSG_UPDATE, fills *u: type, version
 * (1..32 chars), url (http:// or https://, with a file name), md5sum (32 hex
 * digits) and file_size (a whole number 1..TC_OTA_MAX_SIZE) must all be
 * valid. */
enum tc_ota_msg tc_parse_ota_msg(const void *payload, size_t len, struct tc_ota_update *u);

#endif
