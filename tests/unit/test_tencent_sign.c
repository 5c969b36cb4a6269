/* test_tencent_sign.c - Tencent MQTT credentials (src/cloud/tencent_sign.c):
 * the worked example of tencent-at.md §7.1 (username, HMAC-SHA1 and
 * HMAC-SHA256 passwords, both sdkappids), the TLS-PSK pair, the connid
 * alphabet, base64/hex codecs (RFC 4648 §10 vectors) and buffer limits; the
 * dynamic registration signature (§7.2) and reply decryption (§7.4) with the
 * reference's vectors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/tencent_sign.h"

/* Inputs of the reference's worked example (tencent-at.md §7.1). */
#define PID "CTQS08Y5LG"
#define DN "Dev01"
#define SECRET "ZHNkIGRzZCA=" /* "dsd dsd " */
#define CONNID "Ab1Cd"
#define USERNAME PID DN ";21010406;Ab1Cd;2147483647"
#define USERNAME_OLD_APPID PID DN ";12010126;Ab1Cd;2147483647"

static void test_username_matches_reference(void **state) {
  char out[128];
  (void)state;
  assert_int_equal(vm_tencent_username(out, sizeof out, PID, DN, VM_TENCENT_SDKAPPID, CONNID,
                                       VM_TENCENT_EXPIRY_NEVER),
                   (int)strlen(USERNAME));
  assert_string_equal(out, USERNAME);
  assert_int_equal(vm_tencent_username(out, sizeof out, PID, DN, "12010126", CONNID,
                                       VM_TENCENT_EXPIRY_NEVER),
                   (int)strlen(USERNAME_OLD_APPID));
  assert_string_equal(out, USERNAME_OLD_APPID);
}

static void test_username_64bit_expiry_is_printed_in_full(void **state) {
  char out[128];
  (void)state;
  assert_true(vm_tencent_username(out, sizeof out, "P", "D", "1", "c", 9223372036854775807LL) > 0);
  assert_string_equal(out, "PD;1;c;9223372036854775807");
}

/* Asserts the exact password (and its length as the return value). */
static void assert_password(const char *username, enum vm_tencent_hmac alg, const char *want) {
  char out[VM_TENCENT_PASSWORD_MAX];
  assert_int_equal(vm_tencent_password(out, sizeof out, username, SECRET, alg), (int)strlen(want));
  assert_string_equal(out, want);
}

static void test_password_sha1_matches_reference(void **state) {
  (void)state;
  assert_password(USERNAME, VM_TENCENT_HMAC_SHA1,
                  "7d184d3a384a97ea8e830c375c5f46e76f2b1415;hmacsha1");
}

static void test_password_sha256_matches_reference(void **state) {
  (void)state;
  assert_password(USERNAME, VM_TENCENT_HMAC_SHA256,
                  "530b0da568b7999c3def21ec83a25a37ac4036a02b22b998c0e2b32637cba9f0;hmacsha256");
}

static void test_password_sha256_old_appid_matches_reference(void **state) {
  (void)state;
  assert_password(USERNAME_OLD_APPID, VM_TENCENT_HMAC_SHA256,
                  "094dfb4d576cd4a3e87edbff07323431abada8b64fa7bff95c05868a52c8f327;hmacsha256");
}

/* Not in the reference: computed for this test with
 * python3 -c "import hmac,hashlib,base64; print(hmac.new(base64.b64decode('ZHNkIGRzZCA='),
 *   b'CTQS08Y5LGDev01;12010126;Ab1Cd;2147483647', hashlib.sha1).hexdigest())" */
static void test_password_sha1_old_appid(void **state) {
  (void)state;
  assert_password(USERNAME_OLD_APPID, VM_TENCENT_HMAC_SHA1,
                  "7327ce6e599fbc51a40541d1ce8475b83702ee27;hmacsha1");
}

static void test_password_rejects_bad_secret(void **state) {
  char out[VM_TENCENT_PASSWORD_MAX] = "untouched";
  (void)state;
  assert_int_equal(vm_tencent_password(out, sizeof out, USERNAME, "ZHNk*GRzZCA=",
                                       VM_TENCENT_HMAC_SHA1),
                   -EINVAL);
  assert_int_equal(vm_tencent_password(out, sizeof out, USERNAME, "", VM_TENCENT_HMAC_SHA1),
                   -EINVAL);
  assert_string_equal(out, "untouched");
}

static void test_password_buffer_too_small(void **state) {
  char out[64]; /* 64 hex digits fit, ";hmacsha256" does not */
  (void)state;
  assert_int_equal(vm_tencent_password(out, sizeof out, USERNAME, SECRET, VM_TENCENT_HMAC_SHA256),
                   -ENOSPC);
}

static void test_username_buffer_too_small(void **state) {
  char out[sizeof USERNAME - 1]; /* one short for the NUL */
  (void)state;
  assert_int_equal(vm_tencent_username(out, sizeof out, PID, DN, VM_TENCENT_SDKAPPID, CONNID,
                                       VM_TENCENT_EXPIRY_NEVER),
                   -ENOSPC);
}

static void test_psk_identity_and_hex_key(void **state) {
  char id[64], key[64];
  (void)state;
  assert_int_equal(vm_tencent_psk(id, sizeof id, key, sizeof key, PID, DN, SECRET), 16);
  assert_string_equal(id, "CTQS08Y5LGDev01");
  assert_string_equal(key, "6473642064736420");
}

static void test_psk_key_buffer_too_small(void **state) {
  char id[64], key[16]; /* 16 hex digits need 17 bytes */
  (void)state;
  assert_int_equal(vm_tencent_psk(id, sizeof id, key, sizeof key, PID, DN, SECRET), -ENOSPC);
}

static void test_connid_alphabet_and_length(void **state) {
  char a[VM_TENCENT_CONNID_LEN + 1], b[VM_TENCENT_CONNID_LEN + 1];
  int differ = 0;
  (void)state;
  for (int round = 0; round < 50; round++) {
    assert_int_equal(vm_tencent_connid(a, sizeof a), VM_TENCENT_CONNID_LEN);
    assert_int_equal(vm_tencent_connid(b, sizeof b), VM_TENCENT_CONNID_LEN);
    assert_int_equal(strlen(a), VM_TENCENT_CONNID_LEN);
    assert_int_equal(strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
                     VM_TENCENT_CONNID_LEN);
    differ += strcmp(a, b) != 0;
  }
  /* 62^5 possibilities: fifty collisions in a row means the generator is stuck. */
  assert_true(differ > 0);
  assert_int_equal(vm_tencent_connid(a, VM_TENCENT_CONNID_LEN), -ENOSPC);
}

static void assert_b64(const char *in, const char *want) {
  unsigned char out[64];
  int n = vm_base64_decode(in, out, sizeof out);
  assert_int_equal(n, (int)strlen(want));
  assert_memory_equal(out, want, strlen(want));
}

static void test_base64_rfc4648_vectors(void **state) {
  (void)state;
  assert_b64("", "");
  assert_b64("Zg==", "f");
  assert_b64("Zm8=", "fo");
  assert_b64("Zm9v", "foo");
  assert_b64("Zm9vYg==", "foob");
  assert_b64("Zm9vYmE=", "fooba");
  assert_b64("Zm9vYmFy", "foobar");
}

static void test_base64_unpadded_and_full_alphabet(void **state) {
  unsigned char out[8];
  const unsigned char want[] = {0xfb, 0xff, 0xbf, 0x00, 0x10};
  (void)state;
  assert_b64("Zg", "f");
  assert_b64("Zm8", "fo");
  assert_int_equal(vm_base64_decode("+/+/ABA=", out, sizeof out), 5);
  assert_memory_equal(out, want, sizeof want);
}

static void test_base64_rejects_malformed(void **state) {
  unsigned char out[16];
  (void)state;
  assert_int_equal(vm_base64_decode("Z", out, sizeof out), -EINVAL);        /* 6 bits */
  assert_int_equal(vm_base64_decode("Zg=", out, sizeof out), -EINVAL);      /* short pad */
  assert_int_equal(vm_base64_decode("Z===", out, sizeof out), -EINVAL);     /* 3 pads */
  assert_int_equal(vm_base64_decode("Zg==Zg==", out, sizeof out), -EINVAL); /* pad inside */
  assert_int_equal(vm_base64_decode("Zm9v\n", out, sizeof out), -EINVAL);
  assert_int_equal(vm_base64_decode("Zm-v", out, sizeof out), -EINVAL); /* url alphabet */
}

static void test_base64_output_limit(void **state) {
  unsigned char out[5];
  (void)state;
  assert_int_equal(vm_base64_decode("Zm9vYmFy", out, sizeof out), -ENOSPC);
  assert_int_equal(vm_base64_decode("Zm9vYmE=", out, sizeof out), 5);
  assert_memory_equal(out, "fooba", 5);
}

static void test_hex_encode(void **state) {
  char out[7];
  const unsigned char in[] = {0x00, 0xab, 0x7f};
  (void)state;
  assert_int_equal(vm_hex_encode(out, sizeof out, in, 3), 6);
  assert_string_equal(out, "00ab7f");
  assert_int_equal(vm_hex_encode(out, 6, in, 3), -ENOSPC);
}

/* tencent-at.md §7.2 worked example and §7.4 vector (checked with openssl). */
#define PRD_SECRET "hzvf5LF9S0isvBhDSauWMaIk"
#define REG_PAYLOAD \
  "s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59yM4OqQSiWphfTg=="
#define REG_PLAIN "{\"encryptionType\":2,\"psk\":\"lDZ6Uqt+I9E0wW7rvDUs7Q==\"}"

static void test_dynreg_sign_matches_reference(void **state) {
  char out[64];
  (void)state;
  assert_int_equal(vm_tencent_dynreg_sign(out, sizeof out, PRD_SECRET, PID, DN, 1234567,
                                          1600000000),
                   VM_TENCENT_DYNREG_SIGN_LEN);
  assert_string_equal(out, "MzVlYWIxZjYzNGMyNWU3ODE4NjdmN2QzOTYwOGRiNGEyNTU2MDExYQ==");
  assert_int_equal(vm_tencent_dynreg_sign(out, VM_TENCENT_DYNREG_SIGN_LEN, PRD_SECRET, PID, DN,
                                          1234567, 1600000000),
                   -ENOSPC);
  assert_int_equal(vm_tencent_dynreg_sign(out, sizeof out, "", PID, DN, 1, 1), -EINVAL);
}

static void test_dynreg_decrypt_matches_reference(void **state) {
  char out[128];
  (void)state;
  assert_int_equal(vm_tencent_dynreg_decrypt(out, sizeof out, PRD_SECRET, REG_PAYLOAD),
                   (int)strlen(REG_PLAIN)); /* 53: the 11 padding zeros are gone */
  assert_string_equal(out, REG_PLAIN);
}

static void test_dynreg_decrypt_rejects(void **state) {
  char out[128];
  (void)state;
  /* a product secret too short for an AES-128 key (the SDK refuses it too) */
  assert_int_equal(vm_tencent_dynreg_decrypt(out, sizeof out, "short", REG_PAYLOAD), -EINVAL);
  /* 15 bytes: not a whole block; and not base64 at all */
  assert_int_equal(vm_tencent_dynreg_decrypt(out, sizeof out, PRD_SECRET, "AAAAAAAAAAAAAAAAAAAA"),
                   -EINVAL);
  assert_int_equal(vm_tencent_dynreg_decrypt(out, sizeof out, PRD_SECRET, "not base64!"), -EINVAL);
  assert_int_equal(vm_tencent_dynreg_decrypt(out, 32, PRD_SECRET, REG_PAYLOAD), -ENOSPC);
  /* another key decrypts to other bytes, never to the plaintext */
  int n = vm_tencent_dynreg_decrypt(out, sizeof out, "hzvf5LF9S0isvBhE", REG_PAYLOAD);
  assert_true(n < 0 || strcmp(out, REG_PLAIN) != 0);
}

/* §7.3 verified vector [SIGN readme] (hmacsha1), and the hmacsha256 form
 * of the same request as Python's hmac computes it (vmcloud/tccrypto.py). */
#define V2_BODY "{\"ProductId\":\"PRODUCT_ID1\",\"DeviceName\":\"DEVICENAME1\"}"
#define V2_HOST "ap-guangzhou.gateway.tencentdevices.com"

static void test_dynreg_v2_sign_matches_reference(void **state) {
  char out[64];
  (void)state;
  assert_int_equal(strlen(V2_BODY), 54);
  assert_int_equal(vm_tencent_dynreg_v2_sign(out, sizeof out, "PRODUCT_SECRETKEY",
                                             VM_TENCENT_HMAC_SHA1, V2_HOST, "/device/register",
                                             1629362589, 333464802, V2_BODY, strlen(V2_BODY)),
                   28);
  assert_string_equal(out, "7u3+tAPlt8O4mPpBm3lambv23sw=");
  assert_int_equal(vm_tencent_dynreg_v2_sign(out, sizeof out, "PRODUCT_SECRETKEY",
                                             VM_TENCENT_HMAC_SHA256, V2_HOST, "/device/register",
                                             1629362589, 333464802, V2_BODY, strlen(V2_BODY)),
                   44);
  assert_string_equal(out, "69kjTTAAkL07xH0GQoEn44Zmp0BusuM7TepzEwuTXNM=");
  assert_int_equal(vm_tencent_dynreg_v2_sign(out, 44, "PRODUCT_SECRETKEY", VM_TENCENT_HMAC_SHA256,
                                             V2_HOST, "/device/register", 1, 1, V2_BODY,
                                             strlen(V2_BODY)),
                   -ENOSPC);
  assert_int_equal(vm_tencent_dynreg_v2_sign(out, sizeof out, "", VM_TENCENT_HMAC_SHA1, V2_HOST,
                                             "/device/register", 1, 1, V2_BODY, 1),
                   -EINVAL);
}

static void test_gw_bind_sign_matches_reference(void **state) {
  char out[64];
  (void)state;
  /* §7.6 worked example: the key is "ZHNkIGRzZCA=" as text */
  assert_int_equal(vm_tencent_gw_bind_sign(out, sizeof out, PID, DN, SECRET, 121213, 1589786839), 28);
  assert_string_equal(out, "acMt0i3y7VMm4TyiR/HC+mv/iCU=");
  assert_int_equal(vm_tencent_gw_bind_sign(out, 28, PID, DN, SECRET, 121213, 1589786839), -ENOSPC);
  assert_int_equal(vm_tencent_gw_bind_sign(out, sizeof out, PID, DN, "", 1, 1), -EINVAL);
}

static void test_base64_encode(void **state) {
  char out[16];
  (void)state;
  assert_int_equal(vm_base64_encode(out, sizeof out, (const unsigned char *)"foob", 4), 8);
  assert_string_equal(out, "Zm9vYg==");
  assert_int_equal(vm_base64_encode(out, 8, (const unsigned char *)"foob", 4), -ENOSPC);
  assert_int_equal(vm_base64_encode(out, sizeof out, NULL, 0), 0);
  assert_string_equal(out, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_username_matches_reference),
      cmocka_unit_test(test_username_64bit_expiry_is_printed_in_full),
      cmocka_unit_test(test_password_sha1_matches_reference),
      cmocka_unit_test(test_password_sha256_matches_reference),
      cmocka_unit_test(test_password_sha256_old_appid_matches_reference),
      cmocka_unit_test(test_password_sha1_old_appid),
      cmocka_unit_test(test_password_rejects_bad_secret),
      cmocka_unit_test(test_password_buffer_too_small),
      cmocka_unit_test(test_username_buffer_too_small),
      cmocka_unit_test(test_psk_identity_and_hex_key),
      cmocka_unit_test(test_psk_key_buffer_too_small),
      cmocka_unit_test(test_connid_alphabet_and_length),
      cmocka_unit_test(test_base64_rfc4648_vectors),
      cmocka_unit_test(test_base64_unpadded_and_full_alphabet),
      cmocka_unit_test(test_base64_rejects_malformed),
      cmocka_unit_test(test_base64_output_limit),
      cmocka_unit_test(test_hex_encode),
      cmocka_unit_test(test_base64_encode),
      cmocka_unit_test(test_dynreg_sign_matches_reference),
      cmocka_unit_test(test_dynreg_decrypt_matches_reference),
      cmocka_unit_test(test_dynreg_decrypt_rejects),
      cmocka_unit_test(test_dynreg_v2_sign_matches_reference),
      cmocka_unit_test(test_gw_bind_sign_matches_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
