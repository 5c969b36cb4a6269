/* test_config.c - unit tests of the configuration parser (src/config.c) and
 * the dialects' parsers it calls: JSON numbers are range-checked before any
 * cast (vm_json_int), and a duplicate key anywhere is an error naming it. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/config.h"
#include "vmodule/json.h"

static char err[512];

/* Parses json; returns its result with err filled on failure. */
static int parse(const char *json) {
  struct vm_config cfg;
  err[0] = '\0';
  int rc = vm_config_parse(&cfg, json, err, sizeof err);
  vm_config_free(&cfg);
  return rc;
}

static void expect_error(const char *json, const char *want) {
  if (parse(json) == 0 || strncmp(err, want, strlen(want)) != 0) {
    print_error("config %s\n  wanted an error starting [%s]\n  got [%s]\n", json, want, err);
    fail();
  }
}

static void test_json_int(void **state) {
  static const struct {
    const char *json;
    int ok;
    long value;
  } cases[] = {
      {"0", 1, 0},           {"-7", 1, -7},         {"65535", 1, 65535},   {"1e3", 1, 1000},
      {"1e300", 0, 0},       {"-1e300", 0, 0},      {"1e999", 0, 0},       {"-1e999", 0, 0},
      {"1.5", 0, 0},         {"-0.5", 0, 0},        {"9.3e18", 0, 0},      {"-9.3e18", 0, 0},
      {"9223372036854775808", 0, 0}, {"\"5\"", 0, 0}, {"true", 0, 0},       {"null", 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cJSON *v = cJSON_Parse(cases[i].json);
    assert_non_null(v);
    long long out = 42;
    bool ok = vm_json_int(v, -VM_JSON_INT_MAX, VM_JSON_INT_MAX, &out);
    if (ok != cases[i].ok || (cases[i].ok && out != cases[i].value)) {
      print_error("%s: ok %d out %lld\n", cases[i].json, ok, out);
      fail();
    }
    if (!cases[i].ok) assert_int_equal(out, 42); /* untouched */
    cJSON_Delete(v);
  }
  cJSON *v = cJSON_Parse("65536");
  long long out;
  assert_false(vm_json_int(v, 1, 65535, &out));
  assert_true(vm_json_int(v, 1, 65536, &out));
  assert_false(vm_json_int(v, 65537, 70000, &out));
  cJSON_Delete(v);
}

/* One module whose module-level JSON members are `members`. */
static void module_json(char *buf, size_t cap, const char *dialect, const char *members) {
  snprintf(buf, cap,
           "{\"state_dir\":\"/tmp/vm-unit\",\"modules\":[{\"name\":\"m0\",\"dialect\":\"%s\","
           "\"pty_link\":\"/tmp/vm-unit/tty0\",%s}]}",
           dialect, members);
}

/* A numeric key of every parser: %s is the value. */
static const struct {
  const char *dialect, *members, *error;
} number_keys[] = {
    {"tencent", "\"baud\":%s", "config: modules[0].baud: must be an integer between 0 and "},
    {"tencent", "\"boot_ms\":%s", "config: modules[0].boot_ms: must be an integer between"},
    {"tencent", "\"tencent\":{\"mqtt_port\":%s}",
     "config: modules[0].tencent.mqtt_port: must be an integer between 1 and 65535"},
    {"tencent", "\"tencent\":{\"wifi\":{\"join_ms\":%s}}",
     "config: modules[0].tencent.wifi.join_ms: must be an integer between 0 and 60000"},
    {"w800", "\"w800\":{\"wifi\":{\"access_points\":[{\"ssid\":\"lab\",\"channel\":%s}]}}",
     "config: modules[0].w800.wifi.access_points[0].channel: must be an integer between 1 and 14"},
    {"w800", "\"w800\":{\"reconnect_interval_ms\":%s}",
     "config: modules[0].w800.reconnect_interval_ms: must be an integer between 100 and 3600000"},
    {"me3630", "\"me3630\":{\"network\":{\"csq\":%s}}",
     "config: modules[0].me3630.network.csq: must be an integer between 0 and 31"},
    {"me3630", "\"me3630\":{\"aliyun\":{\"mqtt_port\":%s}}",
     "config: modules[0].me3630.aliyun.mqtt_port: must be an integer between 1 and 65535"},
};

static void test_numbers_are_range_checked_before_any_cast(void **state) {
  static const char *bad[] = {"1e300", "-1e300", "1.5", "1e999", "-1e999", "4294967296.5",
                              "18446744073709551616"};
  char members[256], json[512];
  for (size_t k = 0; k < sizeof number_keys / sizeof number_keys[0]; k++) {
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
      snprintf(members, sizeof members, number_keys[k].members, bad[b]);
      module_json(json, sizeof json, number_keys[k].dialect, members);
      expect_error(json, number_keys[k].error);
    }
  }
}

static void test_valid_numbers_still_parse(void **state) {
  char json[512];
  module_json(json, sizeof json, "tencent",
              "\"baud\":1e4,\"tencent\":{\"mqtt_port\":8883,\"wifi\":{\"join_ms\":0}}");
  assert_int_equal(parse(json), 0);
  module_json(json, sizeof json, "me3630", "\"me3630\":{\"network\":{\"csq\":31}}");
  assert_int_equal(parse(json), 0);
}

static void test_duplicate_key_is_an_error_naming_it(void **state) {
  char json[512];
  expect_error("{\"log_level\":\"info\",\"modules\":[],\"log_level\":\"debug\"}",
               "config: log_level: duplicate key");
  module_json(json, sizeof json, "tencent", "\"baud\":9600,\"echo\":true,\"baud\":0");
  expect_error(json, "config: modules[0].baud: duplicate key");
  module_json(json, sizeof json, "tencent", "\"tencent\":{\"gmr\":[\"a\"],\"gmr\":[\"b\"]}");
  expect_error(json, "config: modules[0].tencent.gmr: duplicate key");
  module_json(json, sizeof json, "w800",
              "\"w800\":{\"wifi\":{\"access_points\":[{\"ssid\":\"a\"},"
              "{\"ssid\":\"b\",\"password\":\"x\",\"password\":\"y\"}]}}");
  expect_error(json, "config: modules[0].w800.wifi.access_points[1].password: duplicate key");
  /* before any other check: even in an object no parser would read */
  expect_error("{\"modules\":[{\"x\":{\"y\":1,\"y\":2}}]}", "config: modules[0].x.y: duplicate key");
  /* the same name in different objects is fine */
  module_json(json, sizeof json, "tencent",
              "\"tencent\":{\"wifi\":{\"access_points\":[{\"ssid\":\"a\"},{\"ssid\":\"b\"}]}}");
  assert_int_equal(parse(json), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_int),
      cmocka_unit_test(test_numbers_are_range_checked_before_any_cast),
      cmocka_unit_test(test_valid_numbers_still_parse),
      cmocka_unit_test(test_duplicate_key_is_an_error_naming_it),
  };
  return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
