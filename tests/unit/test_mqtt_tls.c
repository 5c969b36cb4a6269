/* test_mqtt_tls.c - the shared TLS client contexts of src/net/mqtt_tls.c:
 * one SSL_CTX per distinct configuration, referenced by every session that
 * uses it and freed with the last one; a changed CA file gives a new one;
 * the PSK context offers exactly the firmware's two suites and releases idle
 * record buffers. The handshakes themselves are covered by
 * tests/integration/test_mqtt_session.py and test_tencent_faults.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "../../src/net/mqtt_tls.h"

static const struct vm_mqtt_opts psk_opts = {.host = "h", .port = 8883, .tls = VM_MQTT_TLS_PSK};

/* A PEM file OpenSSL accepts as a CA bundle: any self-signed certificate. */
static void write_ca(const char *path, int serial) {
  EVP_PKEY *key = EVP_RSA_gen(1024);
  X509 *x = X509_new();
  FILE *f = fopen(path, "w");

  assert_non_null(key);
  assert_non_null(f);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)"test ca", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  PEM_write_X509(f, x);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

static void test_same_configuration_shares_one_context(void **state) {
  SSL_CTX *a, *b;

  assert_int_equal(vm_mqtt_tls_contexts(), 0);
  assert_int_equal(vm_mqtt_tls_get("t", &psk_opts, &a), 0);
  assert_int_equal(vm_mqtt_tls_get("t", &psk_opts, &b), 0);
  assert_ptr_equal(a, b);
  assert_int_equal(vm_mqtt_tls_contexts(), 1);
  vm_mqtt_tls_put(a);
  assert_int_equal(vm_mqtt_tls_contexts(), 1);
  vm_mqtt_tls_put(b);
  assert_int_equal(vm_mqtt_tls_contexts(), 0);
}

static void test_psk_context_offers_the_firmware_suites(void **state) {
  SSL_CTX *ctx;
  SSL *ssl;
  STACK_OF(SSL_CIPHER) *list;

  assert_int_equal(vm_mqtt_tls_get("t", &psk_opts, &ctx), 0);
  ssl = SSL_new(ctx);
  list = SSL_get1_supported_ciphers(ssl);
  assert_int_equal(sk_SSL_CIPHER_num(list), 2);
  assert_string_equal(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, 0)), "PSK-AES128-CBC-SHA");
  assert_string_equal(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, 1)), "PSK-AES256-CBC-SHA");
  assert_true(SSL_CTX_get_mode(ctx) & SSL_MODE_RELEASE_BUFFERS);
  sk_SSL_CIPHER_free(list);
  SSL_free(ssl);
  vm_mqtt_tls_put(ctx);
}

static void test_ca_files_and_flags_make_distinct_contexts(void **state) {
  char dir[] = "/tmp/vm-tls-XXXXXX", ca1[64], ca2[64];
  SSL_CTX *c1, *c2, *c1again, *insecure, *psk;
  struct vm_mqtt_opts o = {.host = "h", .port = 8883, .tls = VM_MQTT_TLS_CA};

  assert_non_null(mkdtemp(dir));
  snprintf(ca1, sizeof ca1, "%s/ca1.pem", dir);
  snprintf(ca2, sizeof ca2, "%s/ca2.pem", dir);
  write_ca(ca1, 1);
  write_ca(ca2, 2);
  o.ca_file = ca1;
  assert_int_equal(vm_mqtt_tls_get("t", &o, &c1), 0);
  assert_int_equal(vm_mqtt_tls_get("t", &o, &c1again), 0);
  o.tls_insecure = true;
  assert_int_equal(vm_mqtt_tls_get("t", &o, &insecure), 0);
  o.tls_insecure = false;
  o.ca_file = ca2;
  assert_int_equal(vm_mqtt_tls_get("t", &o, &c2), 0);
  assert_int_equal(vm_mqtt_tls_get("t", &psk_opts, &psk), 0);
  assert_ptr_equal(c1, c1again);
  assert_ptr_not_equal(c1, c2);
  assert_ptr_not_equal(c1, insecure);
  assert_ptr_not_equal(c1, psk);
  assert_int_equal(vm_mqtt_tls_contexts(), 4);
  vm_mqtt_tls_put(c1);
  vm_mqtt_tls_put(c1again);
  vm_mqtt_tls_put(insecure);
  vm_mqtt_tls_put(c2);
  vm_mqtt_tls_put(psk);
  assert_int_equal(vm_mqtt_tls_contexts(), 0);
  unlink(ca1);
  unlink(ca2);
  rmdir(dir);
}

static void test_edited_ca_file_gives_a_new_context(void **state) {
  char dir[] = "/tmp/vm-tls-XXXXXX", ca[64];
  SSL_CTX *old, *new_ctx;
  struct vm_mqtt_opts o = {.host = "h", .port = 8883, .tls = VM_MQTT_TLS_CA, .ca_file = ca};

  assert_non_null(mkdtemp(dir));
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  write_ca(ca, 1);
  assert_int_equal(vm_mqtt_tls_get("t", &o, &old), 0);
  write_ca(ca, 2); /* rewritten: another mtime (and maybe size) */
  assert_int_equal(vm_mqtt_tls_get("t", &o, &new_ctx), 0);
  assert_ptr_not_equal(old, new_ctx);
  vm_mqtt_tls_put(old);
  vm_mqtt_tls_put(new_ctx);
  assert_int_equal(vm_mqtt_tls_contexts(), 0);
  unlink(ca);
  rmdir(dir);
}

static void test_unusable_ca_file_is_refused_and_not_cached(void **state) {
  SSL_CTX *ctx = NULL;
  struct vm_mqtt_opts o = {.host = "h", .port = 8883, .tls = VM_MQTT_TLS_CA,
                           .ca_file = "/nonexistent/ca.pem"};

  assert_int_equal(vm_mqtt_tls_get("t", &o, &ctx), -EINVAL);
  assert_null(ctx);
  assert_int_equal(vm_mqtt_tls_contexts(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_configuration_shares_one_context),
      cmocka_unit_test(test_psk_context_offers_the_firmware_suites),
      cmocka_unit_test(test_ca_files_and_flags_make_distinct_contexts),
      cmocka_unit_test(test_edited_ca_file_gives_a_new_context),
      cmocka_unit_test(test_unusable_ca_file_is_refused_and_not_cached),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
