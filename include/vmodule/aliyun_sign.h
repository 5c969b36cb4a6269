/* aliyun_sign.h - credentials an Alibaba Cloud IoT device presents
 * (w800-me3630-at.md §9): the MQTT CONNECT fields of a direct connection
 * signed with the device triple (client id with securemode/signmethod,
 * username "<dn>&<pk>", HMAC password), the default broker host, and the
 * form body of the 2017-era HTTPS "guider" authentication (§8.1), whose
 * answer (iotId, iotToken, MQTT host and port) replaces the direct
 * username/password.
 *
 * Every function writes a NUL-terminated string into a caller buffer and
 * returns its length, or -EINVAL (bad input) / -ENOSPC (buffer too small) /
 * -EIO (OpenSSL failure). */
#ifndef VMODULE_ALIYUN_SIGN_H
#define VMODULE_ALIYUN_SIGN_H

#include <stddef.h>

/* The fixed timestamp the Link SDK signs with (§9.2): the platform does not
 * require a fresh one. */
#define VM_ALIYUN_SDK_TIMESTAMP "2524608000000"
#define VM_ALIYUN_DEFAULT_REGION "cn-shanghai"
/* Upper-case hex of the longest digest (SHA-256) and its NUL. */
#define VM_ALIYUN_SIGN_MAX 65

enum vm_aliyun_signmethod {
  VM_ALIYUN_HMACSHA1,
  VM_ALIYUN_HMACSHA256,
  VM_ALIYUN_HMACMD5,
};

/* "hmacsha1" / "hmacsha256" / "hmacmd5". */
const char *vm_aliyun_signmethod_name(enum vm_aliyun_signmethod m);
/* The reverse; returns 0 or -EINVAL. */
int vm_aliyun_signmethod_parse(const char *name, enum vm_aliyun_signmethod *out);

/* Upper-case hex of HMAC_<m>(key = secret, msg). */
int vm_aliyun_hmac_hex(char *out, size_t cap, enum vm_aliyun_signmethod m, const char *secret,
                       const void *msg, size_t len);

/* What a device signs: its triple, the client id it announces (NULL:
 * "<pk>.<dn>", the SDK's choice) and the timestamp (NULL: none). */
struct vm_aliyun_device {
  const char *product_key, *device_name, *device_secret;
  const char *client_id;
  const char *timestamp;
};

/* The signature of §9.2: HMAC over "clientId<cid>deviceName<dn>productKey<pk>
 * [timestamp<ts>]" (the names sorted, no separators). */
int vm_aliyun_sign(char *out, size_t cap, const struct vm_aliyun_device *d,
                   enum vm_aliyun_signmethod m);

/* "<cid>|securemode=<n>,signmethod=<m>[,timestamp=<ts>]|". */
int vm_aliyun_mqtt_client_id(char *out, size_t cap, const struct vm_aliyun_device *d,
                             enum vm_aliyun_signmethod m, int securemode);
/* "<dn>&<pk>". */
int vm_aliyun_mqtt_username(char *out, size_t cap, const struct vm_aliyun_device *d);
/* "<pk>.iot-as-mqtt.<region>.aliyuncs.com" (region NULL: cn-shanghai). */
int vm_aliyun_mqtt_host(char *out, size_t cap, const char *product_key, const char *region);

/* The HTTPS guider request body (application/x-www-form-urlencoded):
 * productKey, deviceName, signmethod, sign, version=default, clientId,
 * timestamp, resources=mqtt, values percent-encoded. The timestamp is
 * required here (the SDK always sends one). */
int vm_aliyun_auth_form(char *out, size_t cap, const struct vm_aliyun_device *d,
                        enum vm_aliyun_signmethod m);

#endif
