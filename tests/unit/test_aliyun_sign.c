/* test_aliyun_sign.c - Alibaba Cloud IoT credentials (src/cloud/aliyun_sign.c):
 * the worked examples of w800-me3630-at.md §9.3 (doc-style toy values and
 * the ME3630 example triple, every signmethod, with and without timestamp),
 * the client id / username / host strings, the guider form body and the
 * buffer limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/aliyun_sign.h"

#define PK "tE5jVn6MWfi"
#define DN "l1mKM0xGE6ia1KifkKaS"
#define DS "3JfdFK4B56bRWfR5SSiEaaJYGO7PsSRh"

static const struct vm_aliyun_device toy = {
    .product_key = "pk", .device_name = "device", .device_secret = "secret",
    .client_id = "12345", .timestamp = "789"};

static const struct vm_aliyun_device me3630 = {
    .product_key = PK, .device_name = DN, .device_secret = DS,
    .timestamp = VM_ALIYUN_SDK_TIMESTAMP};

static void check_sign(const struct vm_aliyun_device *d, enum vm_aliyun_signmethod m,
                       const char *want) {
  char out[VM_ALIYUN_SIGN_MAX];
  assert_int_equal(vm_aliyun_sign(out, sizeof out, d, m), (int)strlen(want));
  assert_string_equal(out, want);
}

static void test_toy_values_every_signmethod(void **state) {
  (void)state;
  check_sign(&toy, VM_ALIYUN_HMACSHA1, "FAFD82A3D602B37FB0FA8B7892F24A477F851A14");
  check_sign(&toy, VM_ALIYUN_HMACSHA256,
             "6074A46A91B1EBB2CC4EA42790AD0E80202C9843859FC292E57C4EB19FAD9E57");
  check_sign(&toy, VM_ALIYUN_HMACMD5, "14B198324FE55E1D3C88F2E705E201EE");
}

static void test_me3630_triple_sdk_client_id_every_signmethod(void **state) {
  (void)state;
  check_sign(&me3630, VM_ALIYUN_HMACSHA256,
             "4F9FA5A525CC655FB63418B910F94D9A503C14A23736E684EF6168B6D24DEDAE");
  check_sign(&me3630, VM_ALIYUN_HMACSHA1, "1B330B3E8167614EECE08AFCED76D4E5F9DD2F3D");
  check_sign(&me3630, VM_ALIYUN_HMACMD5, "3D315714BA567DF6BFF34F07EDA8FFB3");
}

static void test_me3630_triple_without_timestamp(void **state) {
  struct vm_aliyun_device d = me3630;
  char out[512];
  (void)state;
  d.timestamp = NULL;
  check_sign(&d, VM_ALIYUN_HMACSHA1, "2FEF82AA43735F34BAFC4AAD4C50376A663E699C");
  assert_true(vm_aliyun_mqtt_client_id(out, sizeof out, &d, VM_ALIYUN_HMACSHA1, 3) > 0);
  assert_string_equal(out, PK "." DN "|securemode=3,signmethod=hmacsha1|");
}

static void test_client_id_username_host(void **state) {
  char out[512];
  (void)state;
  assert_int_equal(vm_aliyun_mqtt_client_id(out, sizeof out, &toy, VM_ALIYUN_HMACSHA1, 3),
                   (int)strlen("12345|securemode=3,signmethod=hmacsha1,timestamp=789|"));
  assert_string_equal(out, "12345|securemode=3,signmethod=hmacsha1,timestamp=789|");
  assert_true(vm_aliyun_mqtt_client_id(out, sizeof out, &me3630, VM_ALIYUN_HMACSHA256, 2) > 0);
  assert_string_equal(out, PK "." DN "|securemode=2,signmethod=hmacsha256,timestamp=2524608000000|");
  assert_true(vm_aliyun_mqtt_username(out, sizeof out, &toy) > 0);
  assert_string_equal(out, "device&pk");
  assert_true(vm_aliyun_mqtt_username(out, sizeof out, &me3630) > 0);
  assert_string_equal(out, DN "&" PK);
  assert_true(vm_aliyun_mqtt_host(out, sizeof out, PK, NULL) > 0);
  assert_string_equal(out, PK ".iot-as-mqtt.cn-shanghai.aliyuncs.com");
  assert_true(vm_aliyun_mqtt_host(out, sizeof out, PK, "ap-southeast-1") > 0);
  assert_string_equal(out, PK ".iot-as-mqtt.ap-southeast-1.aliyuncs.com");
}

static void test_signmethod_names_round_trip(void **state) {
  enum vm_aliyun_signmethod m;
  (void)state;
  const char *names[] = {"hmacsha1", "hmacsha256", "hmacmd5"};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(vm_aliyun_signmethod_parse(names[i], &m), 0);
    assert_int_equal((int)m, i);
    assert_string_equal(vm_aliyun_signmethod_name(m), names[i]);
  }
  assert_int_equal(vm_aliyun_signmethod_parse("HMACSHA1", &m), -EINVAL);
  assert_int_equal(vm_aliyun_signmethod_parse("sha1", &m), -EINVAL);
  assert_int_equal(vm_aliyun_signmethod_parse(NULL, &m), -EINVAL);
}

static void test_auth_form_is_the_guider_body(void **state) {
  char out[1024];
  const char *want = "productKey=" PK "&deviceName=" DN "&signmethod=hmacsha1"
                     "&sign=1B330B3E8167614EECE08AFCED76D4E5F9DD2F3D&version=default"
                     "&clientId=" PK "." DN "&timestamp=2524608000000&resources=mqtt";
  (void)state;
  assert_int_equal(vm_aliyun_auth_form(out, sizeof out, &me3630, VM_ALIYUN_HMACSHA1),
                   (int)strlen(want));
  assert_string_equal(out, want);
}

static void test_auth_form_percent_encodes_values(void **state) {
  struct vm_aliyun_device d = {.product_key = "p k", .device_name = "a@b:c&d=e",
                               .device_secret = "s", .client_id = "x+y", .timestamp = "1"};
  char out[1024];
  (void)state;
  assert_true(vm_aliyun_auth_form(out, sizeof out, &d, VM_ALIYUN_HMACMD5) > 0);
  assert_non_null(strstr(out, "productKey=p%20k&deviceName=a%40b%3Ac%26d%3De&signmethod=hmacmd5&"));
  assert_non_null(strstr(out, "&clientId=x%2By&timestamp=1&resources=mqtt"));
}

static void test_auth_form_requires_a_timestamp(void **state) {
  struct vm_aliyun_device d = me3630;
  char out[1024];
  (void)state;
  d.timestamp = NULL;
  assert_int_equal(vm_aliyun_auth_form(out, sizeof out, &d, VM_ALIYUN_HMACSHA1), -EINVAL);
}

static void test_small_buffers_are_refused_not_truncated(void **state) {
  char out[64];
  (void)state;
  /* 64 hex digits need 65 bytes */
  assert_int_equal(vm_aliyun_sign(out, 64, &me3630, VM_ALIYUN_HMACSHA256), -ENOSPC);
  assert_int_equal(vm_aliyun_sign(out, 40, &me3630, VM_ALIYUN_HMACSHA1), -ENOSPC);
  assert_int_equal(vm_aliyun_sign(out, 41, &me3630, VM_ALIYUN_HMACSHA1), 40);
  assert_int_equal(vm_aliyun_mqtt_client_id(out, 20, &me3630, VM_ALIYUN_HMACSHA1, 2), -ENOSPC);
  assert_string_equal(out, "");
  assert_int_equal(vm_aliyun_mqtt_username(out, 10, &me3630), -ENOSPC);
  assert_int_equal(vm_aliyun_auth_form(out, sizeof out, &me3630, VM_ALIYUN_HMACSHA1), -ENOSPC);
  assert_string_equal(out, "");
}

static void test_missing_fields_are_invalid(void **state) {
  struct vm_aliyun_device d = me3630;
  char out[256];
  (void)state;
  d.product_key = "";
  assert_int_equal(vm_aliyun_sign(out, sizeof out, &d, VM_ALIYUN_HMACSHA1), -EINVAL);
  assert_int_equal(vm_aliyun_mqtt_username(out, sizeof out, &d), -EINVAL);
  assert_int_equal(vm_aliyun_mqtt_host(out, sizeof out, "", NULL), -EINVAL);
  d = me3630;
  d.device_secret = NULL;
  assert_int_equal(vm_aliyun_sign(out, sizeof out, &d, VM_ALIYUN_HMACSHA1), -EINVAL);
  assert_int_equal(vm_aliyun_sign(out, sizeof out, &me3630, (enum vm_aliyun_signmethod)7), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_toy_values_every_signmethod),
      cmocka_unit_test(test_me3630_triple_sdk_client_id_every_signmethod),
      cmocka_unit_test(test_me3630_triple_without_timestamp),
      cmocka_unit_test(test_client_id_username_host),
      cmocka_unit_test(test_signmethod_names_round_trip),
      cmocka_unit_test(test_auth_form_is_the_guider_body),
      cmocka_unit_test(test_auth_form_percent_encodes_values),
      cmocka_unit_test(test_auth_form_requires_a_timestamp),
      cmocka_unit_test(test_small_buffers_are_refused_not_truncated),
      cmocka_unit_test(test_missing_fields_are_invalid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
