/* test_cli.c - unit tests of the one-module command line's pieces: the
 * power_on policy names (config.c), --wifi SSID:PASSWORD into the dialect
 * object (esp_cli.c) and vm_config_single() handing it to the dialect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/config.h"
#include "vmodule/dialect.h"
#include "vmodule/esp.h"

static char err[512];

static void test_power_on_names(void **state) {
  enum vm_power_on p = VM_POWER_START;
  assert_int_equal(vm_config_parse_power_on("first-open", &p), 0);
  assert_int_equal(p, VM_POWER_FIRST_OPEN);
  assert_int_equal(vm_config_parse_power_on("first-byte", &p), 0);
  assert_int_equal(p, VM_POWER_FIRST_BYTE);
  assert_int_equal(vm_config_parse_power_on("start", &p), 0);
  assert_int_equal(p, VM_POWER_START);
  assert_int_equal(vm_config_parse_power_on("Start", &p), -1);
  assert_int_equal(vm_config_parse_power_on("", &p), -1);
  assert_int_equal(p, VM_POWER_START); /* untouched on error */
}

static void test_power_on_key(void **state) {
  struct vm_config cfg;
  const char *json = "{\"state_dir\":\"/tmp/vm-unit\",\"modules\":[{\"name\":\"m0\","
                     "\"dialect\":\"w800\",\"pty_link\":\"/tmp/vm-unit/t\",\"power_on\":\"first-byte\"},"
                     "{\"name\":\"m1\",\"dialect\":\"w800\",\"pty_link\":\"/tmp/vm-unit/u\"}]}";
  assert_int_equal(vm_config_parse(&cfg, json, err, sizeof err), 0);
  assert_int_equal(cfg.modules[0].power_on, VM_POWER_FIRST_BYTE);
  assert_int_equal(cfg.modules[1].power_on, VM_POWER_FIRST_OPEN);
  vm_config_free(&cfg);
}

static void test_wifi_option_makes_access_points(void **state) {
  cJSON *obj = NULL;
  assert_int_equal(vm_esp_cli_wifi(&obj, "lab:se:cret", err, sizeof err), 0);
  assert_int_equal(vm_esp_cli_wifi(&obj, "open:", err, sizeof err), 0);
  char *text = cJSON_PrintUnformatted(obj);
  assert_string_equal(text, "{\"wifi\":{\"access_points\":[{\"ssid\":\"lab\",\"password\":"
                            "\"se:cret\"},{\"ssid\":\"open\",\"password\":\"\"}]}}");
  cJSON_free(text);
  assert_int_equal(vm_esp_cli_wifi(&obj, "lab:other", err, sizeof err), -1);
  assert_string_equal(err, "--wifi: \"lab\" is given twice");
  assert_int_equal(vm_esp_cli_wifi(&obj, "nopassword", err, sizeof err), -1);
  assert_null(strstr(err, "nopassword"));

  struct vm_cli_module cli = {.dialect = "tencent", .link = "/tmp/vm-unit/t",
                              .state_dir = "/tmp/vm-unit", .power_on = "start", .baud = -1,
                              .dialect_json = obj};
  struct vm_config cfg;
  assert_int_equal(vm_config_single(&cfg, &cli, err, sizeof err), 0);
  const struct vm_esp_config *esp = cfg.modules[0].dialect_conf; /* first member of tc_config */
  assert_int_equal(esp->naps, 2);
  assert_string_equal(esp->aps[0].ssid, "lab");
  assert_string_equal(esp->aps[0].password, "se:cret");
  assert_string_equal(esp->aps[1].bssid, "18:31:bf:4b:2c:02");
  assert_int_equal(cfg.modules[0].power_on, VM_POWER_START);
  assert_false(cfg.state_dir_fallback);
  assert_string_equal(cfg.control_socket, "/tmp/vm-unit/control.sock");
  vm_config_free(&cfg);
  cJSON_Delete(obj);
  assert_true(vm_esp_dialect(&vm_dialect_w800));
  assert_false(vm_esp_dialect(&vm_dialect_me3630));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_power_on_names),
      cmocka_unit_test(test_power_on_key),
      cmocka_unit_test(test_wifi_option_makes_access_points),
  };
  return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
