/* tencent_sign.c - Tencent Cloud IoT device credentials (tencent-at.md §7.1,
 * §7.2, §7.4): signed username/password for key auth and the TLS-PSK pair of
 * TLS mode 1 for MQTT, the signature of a dynamic registration request and
 * the decryption of its reply (both registration APIs, §7.3 for v2), the
 * gateway's sub-device bind signature, plus the base64/hex codecs they need.
 * HMAC and AES come from OpenSSL. Nothing here logs: every input except pid/dn is a
 * secret. */
#include "vmodule/tencent_sign.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

/* Largest decoded device secret we accept; real ones are 16 bytes. */
#define SECRET_MAX 128

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Length without trailing '=' padding, or -EINVAL if the padding is malformed
 * (more than two, or present on input whose length is not a multiple of 4). */
static int b64_data_len(const char *in, size_t *out) {
  size_t n = strlen(in), pad = 0;

  while (pad < n && in[n - 1 - pad] == '=')
    pad++;
  if (pad > 2 || (pad > 0 && n % 4 != 0))
    return -EINVAL;
  *out = n - pad;
  return 0;
}

int vm_base64_decode(const char *in, unsigned char *out, size_t cap) {
  size_t n, len = 0;
  unsigned acc = 0;
  int bits = 0;

  if (!in || !out || b64_data_len(in, &n) < 0 || n % 4 == 1)
    return -EINVAL;
  if (n * 3 / 4 > cap)
    return -ENOSPC;
  for (size_t i = 0; i < n; i++) {
    int v = b64_value(in[i]);
    if (v < 0)
      return -EINVAL;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[len++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  return (int)len;
}

int vm_base64_encode(char *out, size_t cap, const unsigned char *in, size_t len) {
  if (!out || (!in && len))
    return -EINVAL;
  if (cap < (len + 2) / 3 * 4 + 1)
    return -ENOSPC;
  return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int vm_hex_encode(char *out, size_t cap, const unsigned char *in, size_t len) {
  static const char digits[] = "0123456789abcdef";

  if (!out || (!in && len))
    return -EINVAL;
  if (cap < len * 2 + 1)
    return -ENOSPC;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[len * 2] = '\0';
  return (int)(len * 2);
}

int vm_tencent_connid(char *out, size_t cap) {
  static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char r;
  size_t i = 0;

  if (!out)
    return -EINVAL;
  if (cap < VM_TENCENT_CONNID_LEN + 1)
    return -ENOSPC;
  while (i < VM_TENCENT_CONNID_LEN) {
    if (RAND_bytes(&r, 1) != 1)
      return -EIO;
    /* 248 = 4 * 62: rejecting the top 8 values keeps every character equally likely. */
    if (r < 248)
      out[i++] = set[r % 62];
  }
  out[i] = '\0';
  return VM_TENCENT_CONNID_LEN;
}

/* snprintf into out; -ENOSPC when it did not fit. */
static int fit(int n, size_t cap) {
  if (n < 0)
    return -EINVAL;
  return (size_t)n >= cap ? -ENOSPC : n;
}

int vm_tencent_username(char *out, size_t cap, const char *pid, const char *dn,
                        const char *sdkappid, const char *connid, long long expiry) {
  if (!out || !pid || !dn || !sdkappid || !connid || !*pid || !*dn)
    return -EINVAL;
  return fit(snprintf(out, cap, "%s%s;%s;%s;%lld", pid, dn, sdkappid, connid, expiry), cap);
}

int vm_tencent_password(char *out, size_t cap, const char *username, const char *secret_b64,
                        enum vm_tencent_hmac alg) {
  unsigned char key[SECRET_MAX], mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  const EVP_MD *md = alg == VM_TENCENT_HMAC_SHA1 ? EVP_sha1() : EVP_sha256();
  int key_len, rc;

  if (!out || !username || !secret_b64 ||
      (alg != VM_TENCENT_HMAC_SHA1 && alg != VM_TENCENT_HMAC_SHA256))
    return -EINVAL;
  key_len = vm_base64_decode(secret_b64, key, sizeof key);
  if (key_len <= 0) {
    OPENSSL_cleanse(key, sizeof key); /* a rejected secret may be half decoded */
    return key_len == 0 ? -EINVAL : key_len;
  }
  rc = HMAC(md, key, key_len, (const unsigned char *)username, strlen(username), mac, &mac_len)
           ? 0
           : -EIO;
  OPENSSL_cleanse(key, sizeof key);
  if (rc == 0)
    rc = vm_hex_encode(hex, sizeof hex, mac, mac_len);
  if (rc >= 0)
    rc = fit(snprintf(out, cap, "%s;%s", hex,
                      alg == VM_TENCENT_HMAC_SHA1 ? "hmacsha1" : "hmacsha256"),
             cap);
  OPENSSL_cleanse(mac, sizeof mac);
  OPENSSL_cleanse(hex, sizeof hex);
  return rc;
}

int vm_tencent_psk(char *identity, size_t identity_cap, char *key_hex, size_t key_cap,
                   const char *pid, const char *dn, const char *secret_b64) {
  unsigned char key[SECRET_MAX];
  int key_len, rc;

  if (!identity || !key_hex || !pid || !dn || !secret_b64 || !*pid || !*dn)
    return -EINVAL;
  rc = fit(snprintf(identity, identity_cap, "%s%s", pid, dn), identity_cap);
  if (rc < 0)
    return rc;
  key_len = vm_base64_decode(secret_b64, key, sizeof key);
  if (key_len <= 0) {
    OPENSSL_cleanse(key, sizeof key);
    return key_len == 0 ? -EINVAL : key_len;
  }
  rc = vm_hex_encode(key_hex, key_cap, key, (size_t)key_len);
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

int vm_tencent_dynreg_sign(char *out, size_t cap, const char *product_secret, const char *pid,
                           const char *dn, long nonce, long long timestamp) {
  char msg[256], hex[2 * EVP_MAX_MD_SIZE + 1];
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  int n, rc;

  if (!out || !product_secret || !pid || !dn || !*product_secret)
    return -EINVAL;
  n = snprintf(msg, sizeof msg, "deviceName=%s&nonce=%ld&productId=%s&timestamp=%lld", dn, nonce,
               pid, timestamp);
  if (n < 0 || (size_t)n >= sizeof msg)
    return -EINVAL;
  rc = HMAC(EVP_sha1(), product_secret, (int)strlen(product_secret), (const unsigned char *)msg,
            (size_t)n, mac, &mac_len)
           ? 0
           : -EIO;
  if (rc == 0)
    rc = vm_hex_encode(hex, sizeof hex, mac, mac_len);
  if (rc >= 0) /* base64 of the hex text, not of the digest (what the SDK does) */
    rc = vm_base64_encode(out, cap, (const unsigned char *)hex, strlen(hex));
  OPENSSL_cleanse(mac, sizeof mac);
  OPENSSL_cleanse(hex, sizeof hex);
  return rc;
}

/* The v2 string to sign (§7.3): method, host, path, an empty query line,
 * the algorithm, timestamp, nonce and the lower-case hex digest of the body
 * with the algorithm's hash. Returns its length, or -1. */
static int v2_string_to_sign(char *out, size_t cap, const EVP_MD *md, const char *host,
                             const char *path, const char *algo, long long timestamp,
                             long nonce, const void *body, size_t body_len) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned digest_len = 0;
  char hex[2 * EVP_MAX_MD_SIZE + 1];
  if (!EVP_Digest(body, body_len, digest, &digest_len, md, NULL) ||
      vm_hex_encode(hex, sizeof hex, digest, digest_len) < 0)
    return -1;
  int n = snprintf(out, cap, "POST\n%s\n%s\n\n%s\n%lld\n%ld\n%s", host, path, algo,
                   timestamp, nonce, hex);
  return n < 0 || (size_t)n >= cap ? -1 : n;
}

int vm_tencent_dynreg_v2_sign(char *out, size_t cap, const char *product_secret,
                              enum vm_tencent_hmac alg, const char *host, const char *path,
                              long long timestamp, long nonce, const void *body,
                              size_t body_len) {
  const EVP_MD *md = alg == VM_TENCENT_HMAC_SHA1 ? EVP_sha1() : EVP_sha256();
  const char *algo = alg == VM_TENCENT_HMAC_SHA1 ? "hmacsha1" : "hmacsha256";
  char text[512];
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;

  if (!out || !product_secret || !*product_secret || !host || !path || (!body && body_len))
    return -EINVAL;
  int n = v2_string_to_sign(text, sizeof text, md, host, path, algo, timestamp, nonce, body,
                            body_len);
  if (n < 0)
    return -EINVAL;
  int rc = HMAC(md, product_secret, (int)strlen(product_secret), (const unsigned char *)text,
                (size_t)n, mac, &mac_len)
               ? vm_base64_encode(out, cap, mac, mac_len) /* the raw digest, not its hex */
               : -EIO;
  OPENSSL_cleanse(mac, sizeof mac);
  return rc;
}

int vm_tencent_dynreg_decrypt(char *out, size_t cap, const char *product_secret,
                              const char *payload_b64) {
  static const unsigned char iv[16] = "0000000000000000";
  unsigned char *ct;
  int ct_len, len = 0, tail = 0, rc = -EIO;
  size_t max;
  EVP_CIPHER_CTX *ctx;

  if (!out || !product_secret || !payload_b64 || strlen(product_secret) < 16)
    return -EINVAL;
  max = strlen(payload_b64) / 4 * 3 + 3;
  if (cap < max + 1)
    return -ENOSPC;
  if (!(ct = malloc(max)))
    return -ENOMEM;
  ct_len = vm_base64_decode(payload_b64, ct, max);
  if (ct_len <= 0 || ct_len % 16) {
    free(ct);
    return -EINVAL;
  }
  if ((ctx = EVP_CIPHER_CTX_new()) &&
      EVP_DecryptInit_ex(ctx, EVP_aes_128_cbc(), NULL, (const unsigned char *)product_secret, iv) &&
      EVP_CIPHER_CTX_set_padding(ctx, 0) &&
      EVP_DecryptUpdate(ctx, (unsigned char *)out, &len, ct, ct_len) &&
      EVP_DecryptFinal_ex(ctx, (unsigned char *)out + len, &tail))
    rc = 0;
  EVP_CIPHER_CTX_free(ctx);
  OPENSSL_cleanse(ct, (size_t)ct_len);
  free(ct);
  if (rc < 0) {
    OPENSSL_cleanse(out, cap);
    return rc;
  }
  len += tail;
  while (len > 0 && out[len - 1] == '\0') /* zero padding, not PKCS#7 */
    len--;
  out[len] = '\0';
  return len;
}

int vm_tencent_gw_bind_sign(char *out, size_t cap, const char *sub_pid, const char *sub_dn,
                            const char *sub_secret, long random, long long timestamp) {
  char msg[160];
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  int n, rc;

  if (!out || !sub_pid || !sub_dn || !sub_secret || !*sub_secret)
    return -EINVAL;
  n = snprintf(msg, sizeof msg, "%s%s;%ld;%lld", sub_pid, sub_dn, random, timestamp);
  if (n < 0 || (size_t)n >= sizeof msg)
    return -EINVAL;
  /* the key is the secret's text, not its base64-decoded bytes */
  rc = HMAC(EVP_sha1(), sub_secret, (int)strlen(sub_secret), (const unsigned char *)msg, (size_t)n,
            mac, &mac_len)
           ? vm_base64_encode(out, cap, mac, mac_len)
           : -EIO;
  OPENSSL_cleanse(mac, sizeof mac);
  return rc;
}
