/* aliyun_sign.c - Alibaba Cloud IoT device credentials (w800-me3630-at.md
 * §9): the signed MQTT CONNECT fields of a direct connection and the body of
 * the HTTPS guider authentication. HMAC comes from OpenSSL; the digest is
 * printed upper-case, as the Link SDK's _hex2str does. */
#include "vmodule/aliyun_sign.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char *const method_names[] = {"hmacsha1", "hmacsha256", "hmacmd5"};

const char *vm_aliyun_signmethod_name(enum vm_aliyun_signmethod m) {
  return (unsigned)m < 3 ? method_names[m] : "?";
}

int vm_aliyun_signmethod_parse(const char *name, enum vm_aliyun_signmethod *out) {
  for (unsigned i = 0; name && i < 3; i++) {
    if (!strcmp(name, method_names[i])) {
      *out = (enum vm_aliyun_signmethod)i;
      return 0;
    }
  }
  return -EINVAL;
}

/* snprintf that reports truncation as -ENOSPC. */
static int put(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int put(char *out, size_t cap, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, cap, fmt, ap);
  va_end(ap);
  if (n < 0) return -EINVAL;
  if ((size_t)n >= cap) {
    if (cap) out[0] = '\0';
    return -ENOSPC;
  }
  return n;
}

static const EVP_MD *method_md(enum vm_aliyun_signmethod m) {
  switch (m) {
  case VM_ALIYUN_HMACSHA1: return EVP_sha1();
  case VM_ALIYUN_HMACSHA256: return EVP_sha256();
  case VM_ALIYUN_HMACMD5: return EVP_md5();
  }
  return NULL;
}

int vm_aliyun_hmac_hex(char *out, size_t cap, enum vm_aliyun_signmethod m, const char *secret,
                       const void *msg, size_t len) {
  static const char digits[] = "0123456789ABCDEF";
  const EVP_MD *md = method_md(m);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = 0;
  if (!out || !secret || (!msg && len) || !md) return -EINVAL;
  if (!HMAC(md, secret, (int)strlen(secret), msg, len, mac, &mac_len)) return -EIO;
  if (cap < 2 * (size_t)mac_len + 1) {
    OPENSSL_cleanse(mac, sizeof mac);
    if (cap) out[0] = '\0';
    return -ENOSPC;
  }
  for (unsigned i = 0; i < mac_len; i++) {
    out[2 * i] = digits[mac[i] >> 4];
    out[2 * i + 1] = digits[mac[i] & 15];
  }
  out[2 * mac_len] = '\0';
  OPENSSL_cleanse(mac, sizeof mac);
  return (int)(2 * mac_len);
}

/* The client id a device announces: its own, or "<pk>.<dn>". */
static int device_client_id(char *out, size_t cap, const struct vm_aliyun_device *d) {
  if (d->client_id) return put(out, cap, "%s", d->client_id);
  return put(out, cap, "%s.%s", d->product_key, d->device_name);
}

static int device_valid(const struct vm_aliyun_device *d) {
  return d && d->product_key && d->device_name && d->product_key[0] && d->device_name[0];
}

int vm_aliyun_sign(char *out, size_t cap, const struct vm_aliyun_device *d,
                   enum vm_aliyun_signmethod m) {
  char cid[256], content[768];
  if (!device_valid(d) || !d->device_secret) return -EINVAL;
  int rc = device_client_id(cid, sizeof cid, d);
  if (rc < 0) return -EINVAL;
  rc = put(content, sizeof content, "clientId%sdeviceName%sproductKey%s%s%s", cid, d->device_name,
           d->product_key, d->timestamp ? "timestamp" : "", d->timestamp ? d->timestamp : "");
  if (rc < 0) return -EINVAL;
  return vm_aliyun_hmac_hex(out, cap, m, d->device_secret, content, (size_t)rc);
}

int vm_aliyun_mqtt_client_id(char *out, size_t cap, const struct vm_aliyun_device *d,
                             enum vm_aliyun_signmethod m, int securemode) {
  char cid[256];
  if (!device_valid(d) || !method_md(m)) return -EINVAL;
  if (device_client_id(cid, sizeof cid, d) < 0) return -EINVAL;
  return put(out, cap, "%s|securemode=%d,signmethod=%s%s%s|", cid, securemode,
             vm_aliyun_signmethod_name(m), d->timestamp ? ",timestamp=" : "",
             d->timestamp ? d->timestamp : "");
}

int vm_aliyun_mqtt_username(char *out, size_t cap, const struct vm_aliyun_device *d) {
  if (!device_valid(d)) return -EINVAL;
  return put(out, cap, "%s&%s", d->device_name, d->product_key);
}

int vm_aliyun_mqtt_host(char *out, size_t cap, const char *product_key, const char *region) {
  if (!product_key || !product_key[0]) return -EINVAL;
  return put(out, cap, "%s.iot-as-mqtt.%s.aliyuncs.com", product_key,
             region && region[0] ? region : VM_ALIYUN_DEFAULT_REGION);
}

/* Appends s at out[*len], percent-encoded (RFC 3986 unreserved characters
 * kept) when encode is set; returns 0 or -ENOSPC. */
static int form_append(char *out, size_t cap, size_t *len, const char *s, int encode) {
  static const char digits[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    int plain = !encode || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.' || c == '~';
    size_t need = plain ? 1 : 3;
    if (*len + need >= cap) return -ENOSPC;
    if (plain) {
      out[(*len)++] = (char)c;
    } else {
      out[(*len)++] = '%';
      out[(*len)++] = digits[c >> 4];
      out[(*len)++] = digits[c & 15];
    }
  }
  out[*len] = '\0';
  return 0;
}

int vm_aliyun_auth_form(char *out, size_t cap, const struct vm_aliyun_device *d,
                        enum vm_aliyun_signmethod m) {
  char sign[VM_ALIYUN_SIGN_MAX], cid[256];
  if (!out || !device_valid(d) || !d->timestamp || !cap) return -EINVAL;
  int rc = vm_aliyun_sign(sign, sizeof sign, d, m);
  if (rc < 0) return rc;
  if (device_client_id(cid, sizeof cid, d) < 0) return -EINVAL;
  const char *fields[][2] = {
      {"productKey", d->product_key}, {"deviceName", d->device_name},
      {"signmethod", vm_aliyun_signmethod_name(m)}, {"sign", sign},
      {"version", "default"}, {"clientId", cid},
      {"timestamp", d->timestamp}, {"resources", "mqtt"},
  };
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    if ((i && form_append(out, cap, &len, "&", 0) < 0) ||
        form_append(out, cap, &len, fields[i][0], 0) < 0 ||
        form_append(out, cap, &len, "=", 0) < 0 || form_append(out, cap, &len, fields[i][1], 1) < 0) {
      out[0] = '\0';
      return -ENOSPC;
    }
  }
  return (int)len;
}
