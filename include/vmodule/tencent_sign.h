/* tencent_sign.h - credentials a Tencent Cloud IoT device presents to the MQTT
 * broker (tencent-at.md §7.1): the signed username/password of "key" auth over
 * plain TCP, and the TLS-PSK identity/key of TLS mode 1 (what the AT firmware
 * uses); the signature and reply decryption of dynamic registration (§7.2,
 * §7.4). Also the small codecs these need (base64, hex encode).
 *
 * Every function writes a NUL-terminated string into a caller buffer and
 * returns its length, or -EINVAL (bad input) / -ENOSPC (buffer too small) /
 * -EIO (OpenSSL failure). Decoded secrets are wiped before returning. */
#ifndef VMODULE_TENCENT_SIGN_H
#define VMODULE_TENCENT_SIGN_H

#include <stddef.h>

/* sdkappid the ESP8266 QCloud AT firmware and the Explorer SDK send. Older
 * IoT Hub tools send "12010126"; brokers treat it as an opaque identifier. */
#define VM_TENCENT_SDKAPPID "21010406"
/* Expiry the firmware sends with the SDK default (LONG_MAX on the 32-bit ESP). */
#define VM_TENCENT_EXPIRY_NEVER 2147483647LL
#define VM_TENCENT_CONNID_LEN 5
/* Big enough for "<64 hex>;hmacsha256" and its NUL. */
#define VM_TENCENT_PASSWORD_MAX 80

enum vm_tencent_hmac { VM_TENCENT_HMAC_SHA1, VM_TENCENT_HMAC_SHA256 };

/* Standard-alphabet base64 (RFC 4648 §4), padding optional, no whitespace.
 * Returns the number of bytes written to out (not NUL-terminated). */
int vm_base64_decode(const char *in, unsigned char *out, size_t cap);

/* Standard base64 with padding, NUL-terminated. */
int vm_base64_encode(char *out, size_t cap, const unsigned char *in, size_t len);

/* Lower-case hex of len bytes, NUL-terminated. */
int vm_hex_encode(char *out, size_t cap, const unsigned char *in, size_t len);

/* VM_TENCENT_CONNID_LEN random characters from [A-Za-z0-9] (OpenSSL RAND). */
int vm_tencent_connid(char *out, size_t cap);

/* "<pid><dn>;<sdkappid>;<connid>;<expiry>". */
int vm_tencent_username(char *out, size_t cap, const char *pid, const char *dn,
                        const char *sdkappid, const char *connid, long long expiry);

/* "<hex HMAC(key = base64-decoded secret, msg = username)>;hmacsha1" or
 * ";hmacsha256". */
int vm_tencent_password(char *out, size_t cap, const char *username, const char *secret_b64,
                        enum vm_tencent_hmac alg);

/* TLS mode 1: identity "<pid><dn>" into identity, and the hex of the
 * base64-decoded secret into key_hex (the form vm_mqtt_opts.psk_key_hex takes).
 * Returns the key_hex length. */
int vm_tencent_psk(char *identity, size_t identity_cap, char *key_hex, size_t key_cap,
                   const char *pid, const char *dn, const char *secret_b64);

/* Dynamic registration v1 (§7.2): base64 of the lower-case hex HMAC-SHA1 of
 * "deviceName=<dn>&nonce=<nonce>&productId=<pid>&timestamp=<timestamp>" keyed
 * with the product secret's bytes (56 characters). */
#define VM_TENCENT_DYNREG_SIGN_LEN 56
int vm_tencent_dynreg_sign(char *out, size_t cap, const char *product_secret, const char *pid,
                           const char *dn, long nonce, long long timestamp);

/* Dynamic registration v2 (§7.3): X-TC-Signature, base64 of the raw
 * HMAC-SHA256 (or SHA1) keyed with the product secret's bytes of
 * "POST\n<host>\n<path>\n\n<hmacsha256|hmacsha1>\n<timestamp>\n<nonce>\n
 * <lower-hex SHA256 (or SHA1) of the body>". host is the Host header as sent
 * (with its ":port" when there is one), path the request's ("/device/register"). */
int vm_tencent_dynreg_v2_sign(char *out, size_t cap, const char *product_secret,
                              enum vm_tencent_hmac alg, const char *host, const char *path,
                              long long timestamp, long nonce, const void *body,
                              size_t body_len);

/* The registration reply's payload (§7.4): base64, AES-128-CBC with the first
 * 16 bytes of the product secret as key and 16 ASCII '0' as IV, zero padding
 * (stripped here). Returns the plaintext length; -EINVAL for a product secret
 * under 16 characters, bad base64 or a partial block; -ENOSPC when out cannot
 * hold the decoded size + 1. */
int vm_tencent_dynreg_decrypt(char *out, size_t cap, const char *product_secret,
                              const char *payload_b64);

/* Gateway bind of a sub-device (§7.6): base64 of the raw HMAC-SHA1 of
 * "<sub_pid><sub_dn>;<random>;<timestamp>" keyed with the sub-device secret's
 * text (28 characters). */
int vm_tencent_gw_bind_sign(char *out, size_t cap, const char *sub_pid, const char *sub_dn,
                            const char *sub_secret, long random, long long timestamp);

#endif
