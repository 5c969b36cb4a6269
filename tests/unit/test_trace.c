/* test_trace.c - serial trace files (src/trace.c): the escape table, clean
 * truncation at the output cap, and the exact bytes of a trace file. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmodule/trace.h"

#define TIME_LEN 26 /* YYYY-MM-DDTHH:MM:SS.uuuuuu */

static char tmpdir[64];
static char path[128];

static int setup(void **state) {
  (void)state;
  strcpy(tmpdir, "/tmp/vm_test_trace.XXXXXX");
  if (!mkdtemp(tmpdir))
    return -1;
  snprintf(path, sizeof path, "%s/t.trace", tmpdir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  rmdir(tmpdir);
  return 0;
}

/* Escapes s[0..len) with a big enough buffer and compares with want. */
static void assert_escape(const char *s, size_t len, const char *want) {
  char out[256];
  memset(out, 'Z', sizeof out);
  size_t n = vm_trace_escape(s, len, out, sizeof out);
  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
}

static void test_escape_printable_ascii_is_verbatim(void **state) {
  (void)state;
  const char *s = "AT+TCMQTTPUB=\"a/b\",0,\"{}\" ~";
  assert_escape(s, strlen(s), s);
}

static void test_escape_table(void **state) {
  (void)state;
  assert_escape("\\", 1, "\\\\");
  assert_escape("\r", 1, "\\r");
  assert_escape("\n", 1, "\\n");
  assert_escape("\t", 1, "\\t");
  assert_escape("\0", 1, "\\x00");
  assert_escape("\x1b", 1, "\\x1b");
  assert_escape("\x1f", 1, "\\x1f");
  assert_escape("\x7f", 1, "\\x7f");
  assert_escape("\x80", 1, "\\x80");
  assert_escape("\xab", 1, "\\xab");
  assert_escape("\xff", 1, "\\xff");
  assert_escape(" ", 1, " ");
  assert_escape("~", 1, "~");
  assert_escape("\r\nOK\r\n", 6, "\\r\\nOK\\r\\n");
}

static void test_escape_every_byte(void **state) {
  (void)state;
  /* each byte escapes to 1 (printable), 2 (\\ \r \n \t) or 4 (\xNN) chars */
  unsigned char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (unsigned char)i;
  char out[1025];
  size_t n = vm_trace_escape(all, sizeof all, out, sizeof out);
  size_t want = (0x7f - 0x20 - 1) * 1 + 4 * 2 + (256 - 95 - 3) * 4;
  assert_int_equal(n, want);
  assert_int_equal(strlen(out), n);
}

static void test_escape_empty(void **state) {
  (void)state;
  char out[4] = "xyz";
  assert_int_equal(vm_trace_escape("", 0, out, sizeof out), 0);
  assert_string_equal(out, "");
}

static void test_escape_cap_zero_writes_nothing(void **state) {
  (void)state;
  char out[2] = "q";
  assert_int_equal(vm_trace_escape("abc", 3, out, 0), 0);
  assert_int_equal(out[0], 'q');
}

static void test_escape_truncates_at_cap(void **state) {
  (void)state;
  char out[8];
  memset(out, 'Z', sizeof out);
  assert_int_equal(vm_trace_escape("abcdefghij", 10, out, 4), 3);
  assert_string_equal(out, "abc");
  assert_int_equal(out[4], 'Z');
  assert_int_equal(vm_trace_escape("a", 1, out, 1), 0);
  assert_string_equal(out, "");
}

static void test_escape_never_splits_an_escape(void **state) {
  (void)state;
  char out[16];
  /* "ab" + \xff needs 6 chars + NUL; with cap 6 only "ab" fits */
  assert_int_equal(vm_trace_escape("ab\xff", 3, out, 6), 2);
  assert_string_equal(out, "ab");
  assert_int_equal(vm_trace_escape("ab\xff", 3, out, 7), 6);
  assert_string_equal(out, "ab\\xff");
  /* "\r\n" needs 4 chars; cap 4 leaves room for "\r" only */
  assert_int_equal(vm_trace_escape("\r\n", 2, out, 4), 2);
  assert_string_equal(out, "\\r");
  assert_int_equal(vm_trace_escape("\r\n", 2, out, 5), 4);
  assert_string_equal(out, "\\r\\n");
  /* a byte that does not fit stops the output, later short ones too */
  assert_int_equal(vm_trace_escape("a\\b", 3, out, 3), 1);
  assert_string_equal(out, "a");
}

/* Reads the whole trace file into a malloc'd NUL-terminated string. */
static char *read_file(const char *p) {
  FILE *f = fopen(p, "rb");
  assert_non_null(f);
  char *buf = calloc(1, 65536);
  assert_non_null(buf);
  size_t n = fread(buf, 1, 65535, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void assert_time_prefix(const char *line) {
  for (int i = 0; i < TIME_LEN; i++) {
    char c = line[i];
    switch (i) {
    case 4: case 7: assert_int_equal(c, '-'); break;
    case 10: assert_int_equal(c, 'T'); break;
    case 13: case 16: assert_int_equal(c, ':'); break;
    case 19: assert_int_equal(c, '.'); break;
    default: assert_true(c >= '0' && c <= '9');
    }
  }
  assert_int_equal(line[TIME_LEN], ' ');
}

/* Checks that *cur starts with one "<time> <rest>\n" line; advances *cur. */
static void expect_line(const char **cur, const char *rest) {
  const char *line = *cur;
  const char *nl = strchr(line, '\n');
  assert_non_null(nl);
  assert_int_equal((size_t)(nl - line), TIME_LEN + 1 + strlen(rest));
  assert_time_prefix(line);
  assert_memory_equal(line + TIME_LEN + 1, rest, strlen(rest));
  *cur = nl + 1;
}

static void test_trace_file_content(void **state) {
  (void)state;
  mode_t old = umask(022);
  struct vm_trace *t = vm_trace_open(path, "test");
  umask(old);
  assert_non_null(t);
  vm_trace_data(t, VM_TRACE_RX, "AT+TCDEVINFOSET=1,\"pid\"\r\n", 25);
  vm_trace_data(t, VM_TRACE_TX, "\r\nOK\r\n", 6);
  vm_trace_note(t, "client %s (%d)", "opened", 7);
  vm_trace_data(t, VM_TRACE_TX, "\x00\xff\\\t", 4);
  vm_trace_data(t, VM_TRACE_RX, "", 0);

  /* flushed after every entry: visible before close */
  char *got = read_file(path);
  const char *cur = got;
  expect_line(&cur, "> AT+TCDEVINFOSET=1,\"pid\"\\r\\n");
  expect_line(&cur, "< \\r\\nOK\\r\\n");
  expect_line(&cur, "# client opened (7)");
  expect_line(&cur, "< \\x00\\xff\\\\\\t");
  expect_line(&cur, "> ");
  assert_string_equal(cur, "");
  free(got);
  vm_trace_close(t);

  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_trace_appends_to_existing_file(void **state) {
  (void)state;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "old line\n", 9), 9);
  close(fd);

  struct vm_trace *t = vm_trace_open(path, NULL);
  assert_non_null(t);
  vm_trace_data(t, VM_TRACE_RX, "AT\r\n", 4);
  vm_trace_close(t);
  t = vm_trace_open(path, NULL);
  assert_non_null(t);
  vm_trace_data(t, VM_TRACE_TX, "OK", 2);
  vm_trace_close(t);

  char *got = read_file(path);
  assert_memory_equal(got, "old line\n", 9);
  const char *cur = got + 9;
  expect_line(&cur, "> AT\\r\\n");
  expect_line(&cur, "< OK");
  assert_string_equal(cur, "");
  free(got);
}

static void test_trace_long_data_is_not_truncated(void **state) {
  (void)state;
  enum { N = 3000 };
  static unsigned char data[N];
  static char want[N * 4 + 3];
  char *w = want;
  w += sprintf(w, "< ");
  for (int i = 0; i < N; i++) {
    data[i] = (unsigned char)(i % 7 == 0 ? 0x80 + i % 100 : 'a' + i % 26);
    if (data[i] >= 0x80)
      w += sprintf(w, "\\x%02x", data[i]);
    else
      *w++ = (char)data[i];
  }
  *w = '\0';

  struct vm_trace *t = vm_trace_open(path, "test");
  assert_non_null(t);
  vm_trace_data(t, VM_TRACE_TX, data, N);
  vm_trace_close(t);

  char *got = read_file(path);
  const char *cur = got;
  expect_line(&cur, want);
  assert_string_equal(cur, "");
  free(got);
}

static void test_trace_open_failure_returns_null(void **state) {
  (void)state;
  char bad[192];
  snprintf(bad, sizeof bad, "%s/no/such/dir/t.trace", tmpdir);
  assert_null(vm_trace_open(bad, "test"));
}

static void test_trace_null_is_a_no_op(void **state) {
  (void)state;
  vm_trace_data(NULL, VM_TRACE_RX, "x", 1);
  vm_trace_note(NULL, "x");
  vm_trace_close(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escape_printable_ascii_is_verbatim),
      cmocka_unit_test(test_escape_table),
      cmocka_unit_test(test_escape_every_byte),
      cmocka_unit_test(test_escape_empty),
      cmocka_unit_test(test_escape_cap_zero_writes_nothing),
      cmocka_unit_test(test_escape_truncates_at_cap),
      cmocka_unit_test(test_escape_never_splits_an_escape),
      cmocka_unit_test_setup_teardown(test_trace_file_content, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trace_appends_to_existing_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trace_long_data_is_not_truncated, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trace_open_failure_returns_null, setup, teardown),
      cmocka_unit_test(test_trace_null_is_a_no_op),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
