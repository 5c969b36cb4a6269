/* test_template.c - unit tests of the module templates: the placeholder
 * expander (src/template.c) and the expansion of "count" entries by the
 * configuration parser (src/config.c, src/config_unique.c): names, ports,
 * first, the dialect's strings, and errors naming the expanded module. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/config.h"
#include "vmodule/template.h"

static char err[512];

static void expect_expand(const char *tmpl, long n, const char *want) {
  char *out = NULL;
  err[0] = '\0';
  if (vm_template_expand(tmpl, n, &out, err, sizeof err) || strcmp(out, want)) {
    print_error("expand [%s] n=%ld: wanted [%s], got [%s] (%s)\n", tmpl, n, want,
                out ? out : "(null)", err);
    fail();
  }
  free(out);
}

static void expect_bad(const char *tmpl, const char *why) {
  char *out = (char *)1;
  err[0] = '\0';
  if (!vm_template_expand(tmpl, 7, &out, err, sizeof err) || out || !strstr(err, why)) {
    print_error("expand [%s]: wanted an error with [%s], got [%s]\n", tmpl, why, err);
    fail();
  }
}

static void test_placeholders_are_replaced(void **state) {
  expect_expand("tc{n}", 7, "tc7");
  expect_expand("tc{n:3}", 7, "tc007");
  expect_expand("tc{n:03}", 7, "tc007");
  expect_expand("{n:1}", 0, "0");
  expect_expand("{n:2}", 12345, "12345"); /* wider: printed whole */
  expect_expand("{n:10}", 42, "0000000042");
  expect_expand("{n:010}", 42, "0000000042");
  expect_expand("/run/vm/{n}/{n:04}.sock", 99, "/run/vm/99/0099.sock");
  expect_expand("no placeholder", 3, "no placeholder");
  expect_expand("", 3, "");
  expect_expand("{{n}} {{{n}}}", 5, "{n} {5}");
  expect_expand("{{\"json\":{{}}}}", 1, "{\"json\":{}}");
}

static void test_anything_else_in_braces_is_an_error(void **state) {
  static const char *bad[] = {"{}", "{m}", "{N}", "{n:}", "{n:0}", "{n:00}", "{n:11}",
                              "{n:003}", "{n:x}", "{n:3x}", "{ n}", "{n }", "{n:-3}", "{n:+3}",
                              "{name}", "x{nn}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) expect_bad(bad[i], "unknown placeholder");
  expect_bad("tc{n", "unclosed");
  expect_bad("tc{", "unclosed");
  expect_bad("a}b", "lone");
  expect_bad("{n}}", "lone"); /* "{n}" then a lone "}" */
}

static void test_json_strings_are_expanded_recursively(void **state) {
  cJSON *o = cJSON_Parse("{\"a\":\"x{n:2}\",\"b\":[1,\"{n}\",{\"c\":\"{n}{n}\"}],\"{n}\":true}");
  assert_non_null(o);
  assert_int_equal(vm_template_json(o, 4, "tencent", err, sizeof err), 0);
  char *s = cJSON_PrintUnformatted(o);
  assert_string_equal(s, "{\"a\":\"x04\",\"b\":[1,\"4\",{\"c\":\"44\"}],\"{n}\":true}");
  free(s);
  cJSON_Delete(o);
  o = cJSON_Parse("{\"a\":\"ok\",\"b\":[\"{n}\",{\"c\":\"{bad}\"}]}");
  assert_int_equal(vm_template_json(o, 4, "me3630", err, sizeof err), -1);
  assert_string_equal(err, "me3630.b[1].c: unknown placeholder \"{bad}\" (use {n}, {n:W} or "
                           "{n:0W} with W 1 to 10, {{ or }} for a brace)");
  cJSON_Delete(o);
}

/* ---- the configuration ---------------------------------------------------- */

static int parse(struct vm_config *cfg, const char *modules) {
  char json[4096];
  snprintf(json, sizeof json, "{\"state_dir\":\"/tmp/vm-unit\",\"modules\":[%s]}", modules);
  err[0] = '\0';
  return vm_config_parse(cfg, json, err, sizeof err);
}

static void expect_error(const char *modules, const char *want) {
  struct vm_config cfg;
  int rc = parse(&cfg, modules);
  vm_config_free(&cfg);
  if (rc == 0 || strcmp(err, want)) {
    print_error("modules %s\n  wanted [%s]\n  got    [%s]\n", modules, want, err);
    fail();
  }
}

static void test_count_expands_names_paths_and_ports(void **state) {
  struct vm_config cfg;
  assert_int_equal(parse(&cfg, "{\"name\":\"solo\",\"dialect\":\"w800\",\"pty_link\":\"/tmp/x{n}\"},"
                               "{\"name\":\"tc{n:03}\",\"dialect\":\"tencent\",\"count\":3,"
                               "\"first\":6,\"unix_listen\":\"/run/vm/tc{n}.sock\","
                               "\"tcp_listen\":\"127.0.0.1:5000\",\"trace\":\"/tmp/t{n}\","
                               "\"tencent\":{\"module_name\":\"VM-{n:2}\"}}"),
                   0);
  assert_int_equal(cfg.nmodules, 4);
  /* an entry without count is unchanged: braces stay */
  assert_string_equal(cfg.modules[0].name, "solo");
  assert_string_equal(cfg.modules[0].pty_link, "/tmp/x{n}");
  assert_int_equal(cfg.modules[0].tmpl_n, -1);
  for (int i = 0; i < 3; i++) {
    const struct vm_module_config *m = &cfg.modules[1 + i];
    char want[64];
    snprintf(want, sizeof want, "tc%03d", 6 + i);
    assert_string_equal(m->name, want);
    snprintf(want, sizeof want, "/run/vm/tc%d.sock", 6 + i);
    assert_string_equal(m->unix_path, want);
    snprintf(want, sizeof want, "/tmp/t%d", 6 + i);
    assert_string_equal(m->trace, want);
    assert_null(m->pty_link);
    assert_int_equal(m->tcp_port, 5000 + i); /* base + position, not + n */
    assert_int_equal(m->tmpl_n, 6 + i);
    assert_int_equal(m->entry, 1);
    cJSON *mn = cJSON_GetObjectItemCaseSensitive(m->dialect_json, "module_name");
    snprintf(want, sizeof want, "VM-%02d", 6 + i);
    assert_string_equal(mn->valuestring, want);
  }
  vm_config_free(&cfg);
  /* port 0 stays "any free port" for every module */
  assert_int_equal(parse(&cfg, "{\"name\":\"a{n}\",\"dialect\":\"w800\",\"count\":2,"
                               "\"tcp_listen\":\"127.0.0.1:0\"}"),
                   0);
  assert_int_equal(cfg.modules[1].tcp_port, 0);
  vm_config_free(&cfg);
}

static void test_template_errors_name_the_expanded_module(void **state) {
  expect_error("{\"name\":\"tc{n:03}\",\"dialect\":\"tencent\",\"count\":3,\"first\":6,"
               "\"unix_listen\":\"/r/{n}\",\"tencent\":{\"module_name\":\"VM-{m}\"}}",
               "config: module \"tc006\": tencent.module_name: unknown placeholder \"{m}\" (use "
               "{n}, {n:W} or {n:0W} with W 1 to 10, {{ or }} for a brace)");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":2,\"unix_listen\":\"/r/{x}\"}",
               "config: module \"tc0\": unix_listen: unknown placeholder \"{x}\" (use {n}, "
               "{n:W} or {n:0W} with W 1 to 10, {{ or }} for a brace)");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":2,\"unix_listen\":\"/r/{n}\","
               "\"baud\":-1}",
               "config: module \"tc0\": baud: must be an integer between 0 and 10000000");
  /* a dialect's own check, on the expanded value */
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":12,\"first\":9995,"
               "\"unix_listen\":\"/r/{n}\",\"tencent\":{\"connid\":\"c{n:4}\"}}",
               "config: module \"tc10000\": tencent.connid: must be 5 characters of [A-Za-z0-9]");
  expect_error("{\"name\":\"tc{n\",\"dialect\":\"tencent\",\"count\":2,\"unix_listen\":\"/r/{n}\"}",
               "config: modules[0].name: unclosed \"{\" (use {n}, {n:W} or {n:0W} with W 1 to "
               "10, {{ or }} for a brace)");
  expect_error("{\"name\":\"t{n:9}xxxxxxxxxxxxxxxxxxxxxxxxx\",\"dialect\":\"tencent\",\"count\":2,"
               "\"unix_listen\":\"/r/{n}\"}",
               "config: modules[0].name: \"t000000000xxxxxxxxxxxxxxxxxxxxxxxxx\" (n=0): 1 to 32 "
               "characters among A-Z a-z 0-9 _ - .");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":2}",
               "config: module \"tc0\": pty_link: required without tcp_listen or unix_listen (a "
               "module needs a serial endpoint)");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":7,\"first\":100,"
               "\"tcp_listen\":\"127.0.0.1:65530\"}",
               "config: module \"tc106\": tcp_listen: port 65536 (65530 + 6) is past 65535");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":0,\"unix_listen\":\"/r/{n}\"}",
               "config: modules[0].count: must be an integer between 1 and 100000");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":100001,\"unix_listen\":\"/r\"}",
               "config: modules[0].count: must be an integer between 1 and 100000");
  expect_error("{\"name\":\"tc\",\"dialect\":\"tencent\",\"first\":1,\"pty_link\":\"/r\"}",
               "config: modules[0].first: only with count");
  expect_error("{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":2,\"first\":-1,"
               "\"unix_listen\":\"/r/{n}\"}",
               "config: modules[0].first: must be an integer between 0 and 1000000000");
  expect_error("{\"name\":\"a{n}\",\"dialect\":\"w800\",\"count\":60000,\"unix_listen\":\"/a{n}\"},"
               "{\"name\":\"b{n}\",\"dialect\":\"w800\",\"count\":50000,\"unix_listen\":\"/b{n}\"}",
               "config: modules: more than 100000 modules in all");
}

static void test_names_and_paths_are_unique_after_expansion(void **state) {
  expect_error("{\"name\":\"tc\",\"dialect\":\"tencent\",\"count\":2,\"unix_listen\":\"/r/{n}\"}",
               "config: module \"tc\" (modules[0], n=1): name: \"tc\" is already used by module "
               "\"tc\" (modules[0], n=0)");
  expect_error("{\"name\":\"tc5\",\"dialect\":\"tencent\",\"pty_link\":\"/p\"},"
               "{\"name\":\"tc{n}\",\"dialect\":\"tencent\",\"count\":10,\"unix_listen\":\"/r/{n}\"}",
               "config: module \"tc5\" (modules[1], n=5): name: \"tc5\" is already used by "
               "modules[0]");
  expect_error("{\"name\":\"a{n}\",\"dialect\":\"tencent\",\"count\":3,\"unix_listen\":\"/r/{n}\"},"
               "{\"name\":\"b{n}\",\"dialect\":\"tencent\",\"count\":3,\"first\":2,"
               "\"unix_listen\":\"/r/{n}\"}",
               "config: module \"b2\" (modules[1], n=2): unix_listen: \"/r/2\" is already used by "
               "module \"a2\" (modules[0], n=2)");
  expect_error("{\"name\":\"a{n}\",\"dialect\":\"w800\",\"count\":2,\"pty_link\":\"/tty\"}",
               "config: module \"a1\" (modules[0], n=1): pty_link: \"/tty\" is already used by "
               "module \"a0\" (modules[0], n=0)");
  /* one file cannot be a PTY link and a socket */
  expect_error("{\"name\":\"a\",\"dialect\":\"w800\",\"pty_link\":\"/same\"},"
               "{\"name\":\"b{n}\",\"dialect\":\"w800\",\"count\":2,\"unix_listen\":\"/same\"}",
               "config: module \"b0\" (modules[1], n=0): unix_listen: \"/same\" is already used by "
               "modules[0] as its pty_link");
  expect_error("{\"name\":\"a\",\"dialect\":\"w800\",\"pty_link\":\"/x\",\"unix_listen\":\"/x\"}",
               "config: modules[0].unix_listen: \"/x\" is already used by modules[0] as its pty_link");
  /* plain entries keep their message */
  expect_error("{\"name\":\"m\",\"dialect\":\"w800\",\"pty_link\":\"/a\"},"
               "{\"name\":\"m\",\"dialect\":\"w800\",\"pty_link\":\"/b\"}",
               "config: modules[1].name: \"m\" is already used by modules[0]");
}

/* 100000 modules (the most a config may have) parse without quadratic work. */
static void test_a_large_template_expands(void **state) {
  struct vm_config cfg;
  assert_int_equal(parse(&cfg, "{\"name\":\"m{n:05}\",\"dialect\":\"tencent\",\"count\":100000,"
                               "\"unix_listen\":\"/tmp/vm/m{n}\"}"),
                   0);
  assert_int_equal(cfg.nmodules, 100000);
  assert_string_equal(cfg.modules[99999].name, "m99999");
  vm_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_placeholders_are_replaced),
      cmocka_unit_test(test_anything_else_in_braces_is_an_error),
      cmocka_unit_test(test_json_strings_are_expanded_recursively),
      cmocka_unit_test(test_count_expands_names_paths_and_ports),
      cmocka_unit_test(test_template_errors_name_the_expanded_module),
      cmocka_unit_test(test_names_and_paths_are_unique_after_expansion),
      cmocka_unit_test(test_a_large_template_expands),
  };
  return cmocka_run_group_tests_name("template", tests, NULL, NULL);
}
