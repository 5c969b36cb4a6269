/* test_params.c - ESP-AT parameter parsing (src/at/params.c): escapes,
 * omitted parameters, integer vs quoted number vs raw text, malformed input,
 * the ESP8266 comma-splits-quotes flag, token offsets and buffer limits. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/params.h"

static struct vm_at_args args;

static int parse(const char *s) { return vm_at_parse_params(&args, s, strlen(s), 0); }
static int parse_esp8266(const char *s) {
  return vm_at_parse_params(&args, s, strlen(s), VM_AT_PARSE_COMMA_SPLITS_QUOTES);
}

/* Asserts that parameter i is a string equal to want (exact bytes). */
static void assert_str(int i, const char *want) {
  const char *s = NULL;
  size_t n = 0;
  assert_int_equal(vm_at_arg_str(&args, i, &s, &n), VM_AT_ARG_OK);
  assert_int_equal(n, strlen(want));
  assert_memory_equal(s, want, n);
  assert_int_equal(s[n], '\0');
}

static void assert_int_arg(int i, long want) {
  long v = 0;
  assert_int_equal(vm_at_arg_int(&args, i, &v), VM_AT_ARG_OK);
  assert_true(v == want);
}

static void assert_text(int i, const char *want) {
  const char *s = NULL;
  size_t n = 0;
  assert_int_equal(vm_at_arg_text(&args, i, &s, &n), VM_AT_ARG_OK);
  assert_int_equal(n, strlen(want));
  assert_string_equal(s, want);
}

static void test_empty_string_has_no_params(void **state) {
  (void)state;
  args.count = 99;
  assert_int_equal(parse(""), 0);
  assert_int_equal(args.count, 0);
  assert_int_equal(vm_at_arg_int(&args, 0, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_str(&args, 0, NULL, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_text(&args, 0, NULL, NULL), VM_AT_ARG_OMITTED);
}

static void test_string_and_int(void **state) {
  (void)state;
  assert_int_equal(parse("\"ssid\",1"), 0);
  assert_int_equal(args.count, 2);
  assert_int_equal(args.p[0].type, VM_AT_P_STR);
  assert_int_equal(args.p[1].type, VM_AT_P_INT);
  assert_str(0, "ssid");
  assert_int_arg(1, 1);
}

static void test_empty_quoted_string(void **state) {
  (void)state;
  assert_int_equal(parse("\"\",\"\""), 0);
  assert_int_equal(args.count, 2);
  assert_str(0, "");
  assert_str(1, "");
}

static void test_escape_backslash(void **state) {
  (void)state;
  assert_int_equal(parse("\"a\\\\b\""), 0); /* "a\\b" */
  assert_str(0, "a\\b");
}

static void test_escape_quote(void **state) {
  (void)state;
  assert_int_equal(parse("\"say \\\"hi\\\"\""), 0); /* "say \"hi\"" */
  assert_int_equal(args.count, 1);
  assert_str(0, "say \"hi\"");
}

static void test_escape_comma(void **state) {
  (void)state;
  assert_int_equal(parse("\"a\\,b\",2"), 0); /* "a\,b",2 */
  assert_int_equal(args.count, 2);
  assert_str(0, "a,b");
  assert_int_arg(1, 2);
}

static void test_escape_any_char_is_itself(void **state) {
  (void)state;
  assert_int_equal(parse("\"\\n\\x\\{\\1\""), 0); /* "\n\x\{\1" */
  assert_str(0, "nx{1");
}

static void test_escaped_backslash_before_closing_quote(void **state) {
  (void)state;
  assert_int_equal(parse("\"abc\\\\\",1"), 0); /* "abc\\",1 */
  assert_int_equal(args.count, 2);
  assert_str(0, "abc\\");
  assert_int_arg(1, 1);
}

static void test_backslash_quote_at_end_is_unterminated(void **state) {
  (void)state;
  assert_int_equal(parse("\"abc\\\""), -1); /* "abc\" */
  assert_int_equal(args.count, 0);
  assert_int_equal(parse("\"abc\\"), -1); /* "abc\ */
}

static void test_unescaped_comma_inside_quotes_is_kept(void **state) {
  (void)state;
  assert_int_equal(parse("\"a,b\",1"), 0);
  assert_int_equal(args.count, 2);
  assert_str(0, "a,b");
  assert_int_arg(1, 1);
}

static void test_omitted_first(void **state) {
  (void)state;
  assert_int_equal(parse(",\"b\",3"), 0);
  assert_int_equal(args.count, 3);
  assert_int_equal(args.p[0].type, VM_AT_P_EMPTY);
  assert_int_equal(vm_at_arg_int(&args, 0, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_str(&args, 0, NULL, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_text(&args, 0, NULL, NULL), VM_AT_ARG_OMITTED);
  assert_str(1, "b");
  assert_int_arg(2, 3);
}

static void test_omitted_middle(void **state) {
  (void)state;
  assert_int_equal(parse("\"a\",,1"), 0);
  assert_int_equal(args.count, 3);
  assert_str(0, "a");
  assert_int_equal(args.p[1].type, VM_AT_P_EMPTY);
  assert_int_equal(vm_at_arg_str(&args, 1, NULL, NULL), VM_AT_ARG_OMITTED);
  assert_int_arg(2, 1);
}

static void test_omitted_last_via_trailing_comma(void **state) {
  (void)state;
  assert_int_equal(parse("1,"), 0);
  assert_int_equal(args.count, 2);
  assert_int_arg(0, 1);
  assert_int_equal(args.p[1].type, VM_AT_P_EMPTY);
  assert_int_equal(vm_at_arg_int(&args, 1, NULL), VM_AT_ARG_OMITTED);
}

static void test_only_commas_are_all_omitted(void **state) {
  (void)state;
  assert_int_equal(parse(",,"), 0);
  assert_int_equal(args.count, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(args.p[i].type, VM_AT_P_EMPTY);
}

static void test_index_past_end_is_omitted(void **state) {
  (void)state;
  assert_int_equal(parse("1"), 0);
  assert_int_equal(vm_at_arg_int(&args, 1, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_int(&args, -1, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_str(&args, 5, NULL, NULL), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_text(&args, 1, NULL, NULL), VM_AT_ARG_OMITTED);
}

static void test_getters_leave_output_alone_unless_ok(void **state) {
  (void)state;
  long v = 42;
  const char *s = "default";
  size_t n = 7;
  assert_int_equal(parse(",\"x\",abc"), 0);
  assert_int_equal(vm_at_arg_int(&args, 0, &v), VM_AT_ARG_OMITTED);
  assert_int_equal(vm_at_arg_int(&args, 1, &v), VM_AT_ARG_INVALID);
  assert_true(v == 42);
  assert_int_equal(vm_at_arg_str(&args, 2, &s, &n), VM_AT_ARG_INVALID);
  assert_string_equal(s, "default");
  assert_int_equal(n, 7);
}

static void test_quoted_number_is_not_an_int(void **state) {
  (void)state;
  assert_int_equal(parse("\"1\""), 0);
  assert_int_equal(args.p[0].type, VM_AT_P_STR);
  assert_int_equal(vm_at_arg_int(&args, 0, NULL), VM_AT_ARG_INVALID);
  assert_str(0, "1");
  assert_text(0, "1");
}

static void test_int_is_not_a_string(void **state) {
  (void)state;
  assert_int_equal(parse("1"), 0);
  assert_int_equal(vm_at_arg_str(&args, 0, NULL, NULL), VM_AT_ARG_INVALID);
  assert_text(0, "1");
}

static void test_negative_and_zero_ints(void **state) {
  (void)state;
  assert_int_equal(parse("-5,0,-0,007"), 0);
  assert_int_equal(args.count, 4);
  assert_int_arg(0, -5);
  assert_int_arg(1, 0);
  assert_int_arg(2, 0);
  assert_int_arg(3, 7);
  assert_text(3, "007"); /* the literal token, not the value */
}

static void test_long_limits_are_ints(void **state) {
  (void)state;
  char s[64];
  snprintf(s, sizeof s, "%ld,%ld", LONG_MAX, LONG_MIN);
  assert_int_equal(parse(s), 0);
  assert_int_arg(0, LONG_MAX);
  assert_int_arg(1, LONG_MIN);
}

static void test_long_overflow_is_raw(void **state) {
  (void)state;
  assert_int_equal(parse("9223372036854775808,-9223372036854775809,99999999999999999999999"), 0);
  assert_int_equal(args.count, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(args.p[i].type, VM_AT_P_RAW);
    assert_int_equal(vm_at_arg_int(&args, i, NULL), VM_AT_ARG_INVALID);
  }
  assert_text(0, "9223372036854775808");
  assert_text(1, "-9223372036854775809");
}

static void test_bare_non_numbers_are_raw(void **state) {
  (void)state;
  assert_int_equal(parse("abc,-,+5,1a, 1,1.5,/a/b,{\"k\":1}"), 0);
  assert_int_equal(args.count, 8);
  const char *want[] = {"abc", "-", "+5", "1a", " 1", "1.5", "/a/b", "{\"k\":1}"};
  for (int i = 0; i < 8; i++) {
    assert_int_equal(args.p[i].type, VM_AT_P_RAW);
    assert_int_equal(vm_at_arg_int(&args, i, NULL), VM_AT_ARG_INVALID);
    assert_int_equal(vm_at_arg_str(&args, i, NULL, NULL), VM_AT_ARG_INVALID);
    assert_text(i, want[i]);
    assert_string_equal(args.p[i].str, want[i]);
    assert_int_equal(args.p[i].str_len, strlen(want[i]));
  }
}

static void test_text_accepts_string(void **state) {
  (void)state;
  assert_int_equal(parse("\"a\\,b\""), 0);
  assert_text(0, "a,b");
}

static void test_max_params(void **state) {
  (void)state;
  char s[128] = "";
  for (int i = 0; i < VM_AT_MAX_PARAMS; i++)
    strcat(s, i ? ",1" : "1");
  assert_int_equal(parse(s), 0);
  assert_int_equal(args.count, VM_AT_MAX_PARAMS);
  assert_int_arg(VM_AT_MAX_PARAMS - 1, 1);
}

static void test_too_many_params(void **state) {
  (void)state;
  char s[128] = "";
  for (int i = 0; i <= VM_AT_MAX_PARAMS; i++)
    strcat(s, i ? ",1" : "1");
  assert_int_equal(parse(s), -1);
  assert_int_equal(args.count, 0);
  /* VM_AT_MAX_PARAMS commas make one omitted parameter too many */
  memset(s, ',', VM_AT_MAX_PARAMS);
  s[VM_AT_MAX_PARAMS] = '\0';
  assert_int_equal(parse(s), -1);
  s[VM_AT_MAX_PARAMS - 1] = '\0';
  assert_int_equal(parse(s), 0);
  assert_int_equal(args.count, VM_AT_MAX_PARAMS);
}

static void test_unterminated_quote(void **state) {
  (void)state;
  assert_int_equal(parse("\"abc"), -1);
  assert_int_equal(parse("1,\"abc"), -1);
  assert_int_equal(parse("\""), -1);
  assert_int_equal(parse("\"a,1"), -1);
}

static void test_text_after_closing_quote(void **state) {
  (void)state;
  assert_int_equal(parse("\"a\"b,1"), -1);
  assert_int_equal(parse("1,\"a\"b"), -1);
  assert_int_equal(parse("\"a\"\"b\""), -1);
  assert_int_equal(parse("\"a\" ,1"), -1);
}

static void test_high_bytes_in_string(void **state) {
  (void)state;
  assert_int_equal(parse("\"\xe4\xbd\xa0\xe5\xa5\xbd\xff\x80\",1"), 0);
  assert_int_equal(args.count, 2);
  assert_str(0, "\xe4\xbd\xa0\xe5\xa5\xbd\xff\x80");
  assert_int_arg(1, 1);
}

static void test_embedded_nul_is_kept(void **state) {
  (void)state;
  static const char s[] = "\"a\0b\",1";
  assert_int_equal(vm_at_parse_params(&args, s, sizeof s - 1, 0), 0);
  assert_int_equal(args.count, 2);
  assert_int_equal(args.p[0].str_len, 3);
  assert_memory_equal(args.p[0].str, "a\0b", 4);
}

static void test_parse_respects_len(void **state) {
  (void)state;
  assert_int_equal(vm_at_parse_params(&args, "12,34", 4, 0), 0); /* "12,3" */
  assert_int_equal(args.count, 2);
  assert_int_arg(1, 3);
}

static void test_esp8266_unescaped_comma_in_quotes_is_malformed(void **state) {
  (void)state;
  assert_int_equal(parse_esp8266("\"a,b\""), -1);
  assert_int_equal(parse_esp8266("\"topic\",\"{\"a\":1,\"b\":2}\",0"), -1);
  assert_int_equal(parse_esp8266("1,\"x,y\",2"), -1);
  assert_int_equal(args.count, 0);
}

static void test_esp8266_escaped_comma_is_fine(void **state) {
  (void)state;
  assert_int_equal(parse_esp8266("\"a\\,b\",1,,\"c\""), 0);
  assert_int_equal(args.count, 4);
  assert_str(0, "a,b");
  assert_int_arg(1, 1);
  assert_int_equal(args.p[2].type, VM_AT_P_EMPTY);
  assert_str(3, "c");
}

static void test_esp8266_quote_tail_token_is_malformed(void **state) {
  (void)state;
  /* `b"` is what an unescaped comma leaves of `"a,b"` */
  assert_int_equal(parse_esp8266("1,b\""), -1);
  assert_int_equal(parse("1,b\""), 0); /* without the flag it is raw text */
  assert_int_equal(args.p[1].type, VM_AT_P_RAW);
  assert_text(1, "b\"");
}

static void test_offsets(void **state) {
  (void)state;
  const char *s = "\"pk\",,\"se\\\"cret\",-12,raw,";
  /*               0123 4 5 6789 0 1234 5678901234 5 */
  assert_int_equal(parse(s), 0);
  assert_int_equal(args.count, 6);
  const size_t off[] = {0, 5, 6, 17, 21, 25};
  const size_t len[] = {4, 0, 10, 3, 3, 0};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(args.p[i].off, off[i]);
    assert_int_equal(args.p[i].len, len[i]);
  }
  assert_memory_equal(s + args.p[2].off, "\"se\\\"cret\"", 10);
  assert_str(2, "se\"cret");
  assert_memory_equal(s + args.p[3].off, "-12", 3);
  assert_memory_equal(s + args.p[4].off, "raw", 3);
}

static void test_offset_of_empty_first_and_last(void **state) {
  (void)state;
  assert_int_equal(parse(","), 0);
  assert_int_equal(args.count, 2);
  assert_int_equal(args.p[0].off, 0);
  assert_int_equal(args.p[0].len, 0);
  assert_int_equal(args.p[1].off, 1);
  assert_int_equal(args.p[1].len, 0);
}

/* A quoted string of n bytes needs n + 1 bytes of buf. */
static void test_buffer_exactly_full(void **state) {
  (void)state;
  char s[VM_AT_PARAMS_BUF + 8];
  s[0] = '"';
  memset(s + 1, 'x', VM_AT_PARAMS_BUF - 1);
  s[VM_AT_PARAMS_BUF] = '"';
  assert_int_equal(vm_at_parse_params(&args, s, VM_AT_PARAMS_BUF + 1, 0), 0);
  assert_int_equal(args.p[0].str_len, VM_AT_PARAMS_BUF - 1);
}

static void test_buffer_exhausted_by_string(void **state) {
  (void)state;
  char s[VM_AT_PARAMS_BUF + 8];
  s[0] = '"';
  memset(s + 1, 'x', VM_AT_PARAMS_BUF);
  s[VM_AT_PARAMS_BUF + 1] = '"';
  assert_int_equal(vm_at_parse_params(&args, s, VM_AT_PARAMS_BUF + 2, 0), -1);
  assert_int_equal(args.count, 0);
}

static void test_buffer_exhausted_by_raw_tokens(void **state) {
  (void)state;
  /* two raw tokens of 60% of the buffer each: the second one no longer fits */
  enum { N = VM_AT_PARAMS_BUF * 6 / 10 };
  char s[2 * N + 1];
  memset(s, 'r', sizeof s);
  s[N] = ',';
  assert_int_equal(vm_at_parse_params(&args, s, sizeof s, 0), -1);
  assert_int_equal(vm_at_parse_params(&args, s, N, 0), 0);
  assert_int_equal(args.p[0].type, VM_AT_P_RAW);
  assert_int_equal(args.p[0].str_len, N);
}

static void test_max_params_rest_of_line(void **state) {
  struct vm_at_args a;
  const char *in = "t/1,1,{\"a\":1,\"b\":\"x,y\"}";
  assert_int_equal(vm_at_parse_params_max(&a, in, strlen(in), 0, 3), 0);
  assert_int_equal(a.count, 3);
  assert_int_equal(a.p[2].type, VM_AT_P_RAW);
  assert_string_equal(a.p[2].str, "{\"a\":1,\"b\":\"x,y\"}");
  assert_int_equal(a.p[2].off, 6);
  assert_int_equal(a.p[2].len, strlen(in) - 6);
  /* one quoted string to the end: a STR without its quotes */
  in = "t,0,\"hello, world\"";
  assert_int_equal(vm_at_parse_params_max(&a, in, strlen(in), 0, 3), 0);
  assert_int_equal(a.p[2].type, VM_AT_P_STR);
  assert_string_equal(a.p[2].str, "hello, world");
  /* a quoted string followed by more text is literal */
  in = "t,0,\"a\",b";
  assert_int_equal(vm_at_parse_params_max(&a, in, strlen(in), 0, 3), 0);
  assert_int_equal(a.p[2].type, VM_AT_P_RAW);
  assert_string_equal(a.p[2].str, "\"a\",b");
  /* a bare number stays an INT; fewer fields than max is fine */
  in = "t,0,25";
  assert_int_equal(vm_at_parse_params_max(&a, in, strlen(in), 0, 3), 0);
  assert_int_equal(a.p[2].type, VM_AT_P_INT);
  assert_int_equal(a.p[2].num, 25);
  in = "t,0";
  assert_int_equal(vm_at_parse_params_max(&a, in, strlen(in), 0, 3), 0);
  assert_int_equal(a.count, 2);
  /* text after a closing quote: malformed without max, literal with it */
  in = "t,0,\"a\"b";
  assert_int_equal(vm_at_parse_params(&a, in, strlen(in), 0), -1);
  assert_int_equal(vm_at_parse_params_max(&a, in, strlen(in), 0, 3), 0);
  assert_string_equal(a.p[2].str, "\"a\"b");
  assert_int_equal(vm_at_parse_params(&a, in, strlen(in), 0), -1);
}

/* The tolerant split a trace uses for a rejected line: every comma counts. */
static void test_param_start_any(void **state) {
  const char *s = "1,\"a,b\",\"c";
  size_t n = strlen(s);
  assert_int_equal(vm_at_param_start_any(s, n, 0), 0);
  assert_int_equal(vm_at_param_start_any(s, n, 1), 2);
  assert_int_equal(vm_at_param_start_any(s, n, 2), 5); /* inside the quotes: the earliest */
  assert_int_equal(vm_at_param_start_any(s, n, 3), 8);
  assert_int_equal(vm_at_param_start_any(s, n, 9), 8); /* fewer: the last one */
  assert_int_equal(vm_at_param_start_any("\"4711", 5, 0), 0);
  assert_int_equal(vm_at_param_start_any("\"4711", 5, 1), 0);
  assert_int_equal(vm_at_param_start_any("a,", 2, 1), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_max_params_rest_of_line),
      cmocka_unit_test(test_empty_string_has_no_params),
      cmocka_unit_test(test_string_and_int),
      cmocka_unit_test(test_empty_quoted_string),
      cmocka_unit_test(test_escape_backslash),
      cmocka_unit_test(test_escape_quote),
      cmocka_unit_test(test_escape_comma),
      cmocka_unit_test(test_escape_any_char_is_itself),
      cmocka_unit_test(test_escaped_backslash_before_closing_quote),
      cmocka_unit_test(test_backslash_quote_at_end_is_unterminated),
      cmocka_unit_test(test_unescaped_comma_inside_quotes_is_kept),
      cmocka_unit_test(test_omitted_first),
      cmocka_unit_test(test_omitted_middle),
      cmocka_unit_test(test_omitted_last_via_trailing_comma),
      cmocka_unit_test(test_only_commas_are_all_omitted),
      cmocka_unit_test(test_index_past_end_is_omitted),
      cmocka_unit_test(test_getters_leave_output_alone_unless_ok),
      cmocka_unit_test(test_quoted_number_is_not_an_int),
      cmocka_unit_test(test_int_is_not_a_string),
      cmocka_unit_test(test_negative_and_zero_ints),
      cmocka_unit_test(test_long_limits_are_ints),
      cmocka_unit_test(test_long_overflow_is_raw),
      cmocka_unit_test(test_bare_non_numbers_are_raw),
      cmocka_unit_test(test_text_accepts_string),
      cmocka_unit_test(test_max_params),
      cmocka_unit_test(test_too_many_params),
      cmocka_unit_test(test_unterminated_quote),
      cmocka_unit_test(test_text_after_closing_quote),
      cmocka_unit_test(test_high_bytes_in_string),
      cmocka_unit_test(test_embedded_nul_is_kept),
      cmocka_unit_test(test_parse_respects_len),
      cmocka_unit_test(test_esp8266_unescaped_comma_in_quotes_is_malformed),
      cmocka_unit_test(test_esp8266_escaped_comma_is_fine),
      cmocka_unit_test(test_esp8266_quote_tail_token_is_malformed),
      cmocka_unit_test(test_offsets),
      cmocka_unit_test(test_offset_of_empty_first_and_last),
      cmocka_unit_test(test_buffer_exactly_full),
      cmocka_unit_test(test_buffer_exhausted_by_string),
      cmocka_unit_test(test_buffer_exhausted_by_raw_tokens),
      cmocka_unit_test(test_param_start_any),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
