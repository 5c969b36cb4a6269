/* test_tc_prov.c - the pure messages of tencent Wi-Fi provisioning
 * (src/dialect/tencent/tc_prov_msg.c, reference §3.13): the phone app's
 * datagrams read as the firmware reads them (cJSON_Parse, case-insensitive
 * names, valueint, its buffer sizes), the app_bind_token_reply code, and the
 * cmdType 2 device reply in its cJSON and printf forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/dialect/tencent/tc_replies.h"

#define S(lit) lit, sizeof lit - 1

static void test_softap_command(void **state) {
  struct tc_prov_app a;
  (void)state;
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":1,\"ssid\":\"lab\",\"password\":\"pw123456\","
                                       "\"token\":\"tok\",\"region\":\"na-ashburn\"}"),
                                     &a),
                   TC_PROV_APP_AP);
  assert_int_equal(a.cmd, 1);
  assert_string_equal(a.ssid, "lab");
  assert_string_equal(a.password, "pw123456");
  assert_string_equal(a.token, "tok");
  assert_true(a.has_region);
  assert_string_equal(a.region, "na-ashburn");
}

static void test_token_only_and_log_query(void **state) {
  struct tc_prov_app a;
  (void)state;
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":0,\"token\":\"t\"}"), &a), TC_PROV_APP_TOKEN);
  assert_false(a.has_region);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":3}"), &a), TC_PROV_APP_LOG);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":3.9}"), &a), TC_PROV_APP_LOG); /* valueint */
  assert_int_equal(tc_parse_prov_app(S("{\"CMDTYPE\":0,\"TOKEN\":\"t\"}"), &a), TC_PROV_APP_TOKEN);
  /* a cmdType that is no number is valueint 0: SmartConfig's command */
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":\"1\",\"token\":\"t\"}"), &a),
                   TC_PROV_APP_TOKEN);
  /* cJSON_Parse ignores what follows the value */
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":3} trailing"), &a), TC_PROV_APP_LOG);
}

static void test_bad_datagrams(void **state) {
  struct tc_prov_app a;
  (void)state;
  assert_int_equal(tc_parse_prov_app(S("not json"), &a), TC_PROV_APP_BAD_JSON);
  assert_int_equal(tc_parse_prov_app(S("{\"token\":\"t\"}"), &a), TC_PROV_APP_BAD_JSON);
  assert_int_equal(tc_parse_prov_app(S("[1,2]"), &a), TC_PROV_APP_BAD_JSON);
  assert_int_equal(tc_parse_prov_app("", 0, &a), TC_PROV_APP_BAD_JSON);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":0}"), &a), TC_PROV_APP_MISSING);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":0,\"token\":5}"), &a), TC_PROV_APP_MISSING);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":1,\"ssid\":\"a\",\"token\":\"t\"}"), &a),
                   TC_PROV_APP_MISSING);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":2}"), &a), TC_PROV_APP_UNKNOWN);
  assert_int_equal(tc_parse_prov_app(S("{\"cmdType\":1e300}"), &a), TC_PROV_APP_UNKNOWN);
  assert_int_equal(a.cmd, 2147483647);
  /* a NUL ends the text, as the firmware's C string does */
  assert_int_equal(tc_parse_prov_app("{\"cmdType\":3}\0x", 15, &a), TC_PROV_APP_LOG);
  assert_int_equal(tc_parse_prov_app("\0{\"cmdType\":3}", 15, &a), TC_PROV_APP_BAD_JSON);
}

static void test_firmware_buffer_sizes(void **state) {
  struct tc_prov_app a;
  char buf[400];
  (void)state;
  /* token cut at 32, region at 24 */
  snprintf(buf, sizeof buf, "{\"cmdType\":0,\"token\":\"%s\",\"region\":\"%s\"}",
           "0123456789abcdef0123456789abcdefXYZ", "abcdefghijklmnopqrstuvwxyz");
  assert_int_equal(tc_parse_prov_app(buf, strlen(buf), &a), TC_PROV_APP_TOKEN);
  assert_string_equal(a.token, "0123456789abcdef0123456789abcdef");
  assert_string_equal(a.region, "abcdefghijklmnopqrstuvwx");
  /* only 255 bytes are read: a longer datagram loses its end */
  memset(buf, ' ', sizeof buf);
  memcpy(buf + 250, "{\"cmdType\":3}", 13);
  assert_int_equal(tc_parse_prov_app(buf, 263, &a), TC_PROV_APP_BAD_JSON);
  memcpy(buf + 240, "{\"cmdType\":3}", 13);
  assert_int_equal(tc_parse_prov_app(buf, 263, &a), TC_PROV_APP_LOG);
}

static void test_bind_reply_code(void **state) {
  int code = 99;
  (void)state;
  assert_int_equal(tc_parse_prov_bind_reply(S("{\"method\":\"app_bind_token_reply\",\"code\":0}"), &code), 1);
  assert_int_equal(code, 0);
  assert_int_equal(tc_parse_prov_bind_reply(S("{\"code\":1003}"), &code), 1);
  assert_int_equal(code, 1003);
  assert_int_equal(tc_parse_prov_bind_reply(S("{\"method\":\"x\"}"), &code), 0);
  assert_int_equal(tc_parse_prov_bind_reply(S("garbage"), &code), 0);
  char big[1000];
  memset(big, ' ', sizeof big);
  memcpy(big + 900, "{\"code\":7}", 10);
  assert_int_equal(tc_parse_prov_bind_reply(big, 910, &code), 1); /* no 255-byte cut here */
  assert_int_equal(code, 7);
}

static void test_device_reply_both_styles(void **state) {
  char buf[300];
  (void)state;
  const char *want = "{\"cmdType\":2,\"productId\":\"PID\",\"deviceName\":\"dn\","
                     "\"productRegion\":\"ap-guangzhou\",\"protoVersion\":\"2.0\"}\r\n";
  for (int style = 0; style < 2; style++) {
    assert_int_equal(tc_prov_device_reply(buf, sizeof buf, "PID", "dn", "ap-guangzhou", style),
                     (int)strlen(want));
    assert_string_equal(buf, want);
  }
  assert_true(tc_prov_device_reply(buf, sizeof buf, "P", "a\"b", "r", 0) > 0);
  assert_non_null(strstr(buf, "\"deviceName\":\"a\\\"b\""));
  assert_true(tc_prov_device_reply(buf, sizeof buf, "P", "a\"b", "r", 1) > 0);
  assert_non_null(strstr(buf, "\"deviceName\":\"a\"b\""));
  /* 48 control characters are 288 bytes of escapes: the 256-byte buffer is too small */
  char dn[49];
  memset(dn, '\x01', 48);
  dn[48] = '\0';
  assert_int_equal(tc_prov_device_reply(buf, sizeof buf, "P", dn, "r", 0), -1);
  assert_int_equal(tc_prov_device_reply(buf, 10, "PID", "dn", "r", 1), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_softap_command),
      cmocka_unit_test(test_token_only_and_log_query),
      cmocka_unit_test(test_bad_datagrams),
      cmocka_unit_test(test_firmware_buffer_sizes),
      cmocka_unit_test(test_bind_reply_code),
      cmocka_unit_test(test_device_reply_both_styles),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
