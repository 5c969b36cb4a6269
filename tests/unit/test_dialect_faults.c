/* test_dialect_faults.c - unit tests of the dialects' fault_check hooks
 * (dialect.h, fault.h): the words `wifi` (tencent, w800) and `cell`
 * (me3630) accept, the one-line errors for the others, and the verb of the
 * other family left to the caller (VM_FAULT_UNSUPPORTED). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/dialect.h"
#include "vmodule/fault.h"

/* Runs d->fault_check on the words of line (split at spaces); err gets the message. */
static int check(const struct vm_dialect *d, const char *line, char *err, size_t errlen) {
  char buf[128], *argv[VM_FAULT_MAX_WORDS];
  int argc = 0;
  strcpy(buf, line);
  for (char *w = strtok(buf, " "); w && argc < VM_FAULT_MAX_WORDS; w = strtok(NULL, " "))
    argv[argc++] = w;
  err[0] = '\0';
  assert_non_null(d->fault_check);
  return d->fault_check(NULL, argc, argv, err, errlen);
}

static void expect_ok(const struct vm_dialect *d, const char *line) {
  char err[128];
  assert_int_equal(check(d, line, err, sizeof err), 0);
  assert_string_equal(err, "");
}

static void expect_error(const struct vm_dialect *d, const char *line, const char *msg) {
  char err[128];
  assert_int_equal(check(d, line, err, sizeof err), -1);
  assert_string_equal(err, msg);
}

static void expect_unsupported(const struct vm_dialect *d, const char *line) {
  char err[128];
  assert_int_equal(check(d, line, err, sizeof err), VM_FAULT_UNSUPPORTED);
}

static void test_wifi_words(void **state) {
  const struct vm_dialect *esp[] = {&vm_dialect_tencent, &vm_dialect_w800};
  for (int i = 0; i < 2; i++) {
    expect_ok(esp[i], "wifi down");
    expect_ok(esp[i], "wifi up");
    expect_error(esp[i], "wifi", "wifi: expected down or up");
    expect_error(esp[i], "wifi sideways", "wifi: expected down or up");
    expect_error(esp[i], "wifi down now", "wifi: expected down or up");
    expect_error(esp[i], "wifi DOWN", "wifi: expected down or up");
    expect_unsupported(esp[i], "cell deregister");
    assert_non_null(esp[i]->fault);
    assert_non_null(esp[i]->status);
  }
}

#define CELL_USAGE "cell: expected deregister, register, signal N, sim-out, sim-in or datacall-drop"
#define SIGNAL_USAGE "cell signal: N must be 0..31 or 99"

static void test_cell_words(void **state) {
  const struct vm_dialect *me = &vm_dialect_me3630;
  const char *ok[] = {"cell deregister", "cell register", "cell signal 0", "cell signal 31",
                      "cell signal 99", "cell signal 07", "cell sim-out", "cell sim-in",
                      "cell datacall-drop"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) expect_ok(me, ok[i]);
  expect_error(me, "cell", CELL_USAGE);
  expect_error(me, "cell reboot", CELL_USAGE);
  expect_error(me, "cell sim-out now", CELL_USAGE);
  expect_error(me, "cell signal 1 2", CELL_USAGE);
  expect_error(me, "cell signal", SIGNAL_USAGE);
  expect_error(me, "cell signal 32", SIGNAL_USAGE);
  expect_error(me, "cell signal 98", SIGNAL_USAGE);
  expect_error(me, "cell signal -1", SIGNAL_USAGE);
  expect_error(me, "cell signal 5x", SIGNAL_USAGE);
  expect_error(me, "cell signal 100", SIGNAL_USAGE);
  expect_unsupported(me, "wifi down");
  assert_non_null(me->fault);
  assert_non_null(me->status);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wifi_words),
      cmocka_unit_test(test_cell_words),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
