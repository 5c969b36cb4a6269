/* test_engine.c - unit tests of the AT engine (src/at/engine.c) with a command
 * table and reply styles defined here: line framing (esp-at and V.250), echo,
 * the four forms, pending/busy, URC queueing and data-entry mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "logcap.h"
#include "vmodule/at.h"
#include "vmodule/esp.h"
#include "vmodule/log.h"

/* The dialects' real command rows (their secret_mask is what is tested). */
extern const struct vm_at_cmd tc_info_cmds[], w8_mqtt_cmds[], me_cell_cmds[], me_auth_cmds[];
extern const size_t tc_info_ncmds, w8_mqtt_ncmds, me_cell_ncmds, me_auth_ncmds;

static char out[8192];
static size_t out_len;
static char trace_buf[8192];
static size_t trace_len;

static void cap_write(void *ctx, const void *buf, size_t len) {
  assert_true(out_len + len < sizeof out);
  memcpy(out + out_len, buf, len);
  out_len += len;
}

static void cap_trace(void *ctx, char dir, const void *buf, size_t len) {
  int n = snprintf(trace_buf + trace_len, sizeof trace_buf - trace_len, "%c%.*s|", dir, (int)len,
                   (const char *)buf);
  trace_len += (size_t)n;
}

static void t_error(struct vm_at *at, uint32_t code) { vm_at_printf(at, "E%08x\r\n", code); }

static const struct vm_at_style style = {
    .ok = "\r\nOK\r\n", .busy = "\r\nBUSY\r\n", .ready = "\r\nready\r\n", .error = t_error};
static const struct vm_at_style style_v250 = {.framing = VM_AT_FRAME_V250,
                                              .ok = "\r\nOK\r\n",
                                              .busy = "\r\nBUSY\r\n",
                                              .error = t_error};

static int last_form;
static long last_int;
static char last_str[64];
static int last_count;

static enum vm_at_result h_test(struct vm_at *at, const struct vm_at_args *a) {
  last_form = VM_AT_TEST;
  vm_at_puts(at, "+X:(0-1)\r\n");
  return VM_AT_OK;
}
static enum vm_at_result h_query(struct vm_at *at, const struct vm_at_args *a) {
  last_form = VM_AT_QUERY;
  vm_at_puts(at, "+X:1\r\n");
  return VM_AT_OK;
}
static enum vm_at_result h_set(struct vm_at *at, const struct vm_at_args *a) {
  last_form = VM_AT_SET;
  last_count = a->count;
  const char *s;
  if (vm_at_arg_int(a, 0, &last_int) != VM_AT_ARG_OK) return vm_at_fail(at, 0x01050000);
  if (vm_at_arg_str(a, 1, &s, NULL) == VM_AT_ARG_OK) snprintf(last_str, sizeof last_str, "%s", s);
  return VM_AT_OK;
}
static enum vm_at_result h_exec(struct vm_at *at, const struct vm_at_args *a) {
  last_form = VM_AT_EXEC;
  return VM_AT_OK;
}
static enum vm_at_result h_wait(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_puts(at, "OK\r\n");
  return VM_AT_PENDING;
}

static enum vm_at_data_status data_status;
static char data_got[256];
static size_t data_got_len;
static int data_calls;

static void data_done(struct vm_at *at, enum vm_at_data_status st, const unsigned char *d, size_t n,
                      void *ctx) {
  data_calls++;
  data_status = st;
  memcpy(data_got, d, n);
  data_got_len = n;
  vm_at_puts(at, st == VM_AT_DATA_OK ? "+PUBL:OK\r\n" : "+CME ERROR:204\r\n");
  vm_at_complete(at, VM_AT_DONE);
}

static unsigned data_timeout_ms = 0;

static enum vm_at_result h_publ(struct vm_at *at, const struct vm_at_args *a) {
  long n;
  if (vm_at_arg_int(a, 0, &n) != VM_AT_ARG_OK) return vm_at_fail(at, 0x01050000);
  struct vm_at_data_req rq = {.len = (size_t)n,
                              .timeout_ms = data_timeout_ms,
                              .abort_seq = "+++\r\n",
                              .trailer = "\r\n",
                              .trailer_ms = 50,
                              .crlf_ends_early = true,
                              .done = data_done};
  vm_at_puts(at, "OK\r\n>\r\n");
  vm_at_read_data(at, &rq);
  return VM_AT_PENDING;
}

static const struct vm_at_cmd cmds[] = {
    {.name = "", .exec = h_exec},
    {.name = "+X", .test = h_test, .query = h_query, .set = h_set, .exec = h_exec},
    {.name = "+Q", .query = h_query},
    {.name = "+WAIT", .exec = h_wait},
    {.name = "+PUBL", .set = h_publ},
    {.name = "+SECRET", .set = h_set, .secret_mask = 0x2},
};

static uv_loop_t loop;
static struct vm_at at;
static int reboots;

static void cap_reboot(void *ctx) { reboots++; }

static int setup(void **state) {
  out_len = trace_len = 0;
  memset(out, 0, sizeof out);
  memset(trace_buf, 0, sizeof trace_buf);
  data_calls = 0;
  data_timeout_ms = 0;
  reboots = 0;
  last_form = -1;
  uv_loop_init(&loop);
  struct vm_at_io io = {.write = cap_write, .trace = cap_trace};
  vm_at_init(&at, &loop, "t", &style, &io, NULL);
  vm_at_add_table(&at, cmds, sizeof cmds / sizeof cmds[0]);
  vm_at_reset(&at, false);
  vm_at_power(&at, true);
  return 0;
}

static int teardown(void **state) {
  vm_at_close(&at);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}

static void feed(const char *s) { vm_at_input(&at, s, strlen(s)); }

static void expect_out(const char *s) {
  size_t n = strlen(s);
  if (out_len != n || memcmp(out, s, n) != 0) {
    print_error("expected [%s] (%zu)\n     got [%.*s] (%zu)\n", s, n, (int)out_len, out, out_len);
    fail();
  }
  out_len = 0;
}

static void test_four_forms(void **state) {
  feed("AT+X=?\r\n");
  expect_out("+X:(0-1)\r\n\r\nOK\r\n");
  assert_int_equal(last_form, VM_AT_TEST);
  feed("AT+X?\r\n");
  expect_out("+X:1\r\n\r\nOK\r\n");
  feed("AT+X=5,\"a\\,b\"\r\n");
  expect_out("\r\nOK\r\n");
  assert_int_equal(last_form, VM_AT_SET);
  assert_int_equal(last_int, 5);
  assert_string_equal(last_str, "a,b");
  feed("AT+X\r\n");
  expect_out("\r\nOK\r\n");
  assert_int_equal(last_form, VM_AT_EXEC);
}

static void test_unregistered_form_and_unknown(void **state) {
  feed("AT+Q=?\r\n");
  expect_out("E010c0000\r\n");
  feed("AT+Q\r\n");
  expect_out("E010c0000\r\n");
  feed("AT+NOPE\r\n");
  expect_out("E01090000\r\n");
  feed("at\r\n"); /* case-sensitive style: lower-case prefix is not AT */
  expect_out("E01030000\r\n");
  feed("AT+X=\"open\r\n"); /* unterminated quote */
  expect_out("E01080000\r\n");
  feed("AT+X=\"s\",1\r\n"); /* handler error */
  expect_out("E01050000\r\n");
}

static void test_esp_only_crlf_ends_a_line(void **state) {
  feed("AT\r"); /* echoed (off here) and waits */
  expect_out("");
  feed("\n");
  expect_out("\r\nOK\r\n");
  feed("A");
  feed("T+X");
  feed("?\r");
  feed("\n");
  expect_out("+X:1\r\n\r\nOK\r\n");
  last_form = -1;
  feed("AT\n"); /* a lone LF does not end the line either */
  expect_out("");
  feed("\r\n"); /* ... it stays in it: the name is "\n" */
  expect_out("E01090000\r\n");
  feed("AT\rAT\r\n"); /* a stray CR right after the name */
  expect_out("E01090000\r\n");
  feed("AT+X\n?\r\n");
  expect_out("E01090000\r\n");
  assert_int_equal(last_form, -1);
}

static void test_esp_lone_cr_lf_kept_in_parameters(void **state) {
  feed("AT+X=7,\"{\n  \\\"a\\\":1\\,\r  \\\"b\\\":2}\"\r\n"); /* raw LF and CR inside the quotes */
  expect_out("\r\nOK\r\n");
  assert_int_equal(last_int, 7);
  assert_string_equal(last_str, "{\n  \"a\":1,\r  \"b\":2}");
  feed("AT+X=8\n\r\n"); /* outside quotes the LF is part of the number: not a number */
  expect_out("E01050000\r\n");
}

static void test_esp_bare_crlf_and_leftover_lf(void **state) {
  feed("\r\n"); /* a bare CR LF is an error */
  expect_out("E01030000\r\n");
  feed("\n");
  feed("AT\r\n"); /* a leftover LF before the next AT: that line is "\nAT" */
  expect_out("E01030000\r\n");
  feed("\r\n\r\nAT\r\n"); /* errors: the rest of the read is framed on */
  expect_out("E01030000\r\nE01030000\r\n\r\nOK\r\n");
}

static void test_esp_nul_drops_what_came_before(void **state) {
  vm_at_input(&at, "AT+NOPE\0AT+X?\r\n", 15);
  expect_out("+X:1\r\n\r\nOK\r\n");
  vm_at_input(&at, "AT\r\0\n", 5); /* the CR went with the NUL: the LF stays in the line */
  vm_at_input(&at, "\r\n", 2);
  expect_out("E01030000\r\n");
}

static void test_esp_rest_of_read_after_accepted_command_is_busy(void **state) {
  feed("AT\r\nAT+X?\r\nAT+X=1\r\n"); /* one busy for the rest, which is never run */
  expect_out("\r\nOK\r\n\r\nBUSY\r\n");
  assert_int_equal(last_form, VM_AT_EXEC);
  assert_int_equal(at.busy_replies, 1);
  feed("AT+NOPE\r\nAT+X?\r\n"); /* after an error the rest is the next line */
  expect_out("E01090000\r\n+X:1\r\n\r\nOK\r\n");
  feed("AT+X=\"s\"\r\nAT+X?\r\n"); /* a handler's ERROR too */
  expect_out("E01050000\r\n+X:1\r\n\r\nOK\r\n");
  at.echo = true;
  feed("AT\r\nAT\r\nAT");
  expect_out("AT\r\n\r\nOK\r\nAT\r\nAT\r\nBUSY\r\n");
  feed("\r\n"); /* the discarded partial line is not continued */
  expect_out("\r\nE01030000\r\n");
  assert_int_equal(at.busy_replies, 2);
}

static void test_esp_busy_read_with_at_rst_forces_restart(void **state) {
  struct vm_at_style fr = style;
  fr.force_restart = "\r\nFORCE\r\n";
  at.style = &fr;
  at.io.reboot = cap_reboot;
  feed("AT\r\nAT+RST\r\n");
  expect_out("\r\nOK\r\n\r\nFORCE\r\n");
  assert_int_equal(reboots, 1);
  feed("AT+WAIT\r\n");
  expect_out("OK\r\n");
  feed("AT+RST\r"); /* no CR LF yet: busy */
  expect_out("\r\nBUSY\r\n");
  feed("xAT+RST\r\nAT\r\n"); /* anywhere in the read */
  expect_out("\r\nFORCE\r\n");
  assert_int_equal(reboots, 2);
  at.style = &style; /* without a force_restart reply: busy */
  feed("AT+RST\r\n");
  expect_out("\r\nBUSY\r\n");
  assert_int_equal(reboots, 2);
}

static void test_echo_exact_bytes(void **state) {
  at.echo = true;
  feed("AT\r\n");
  expect_out("AT\r\n\r\nOK\r\n");
  feed("AT+X?\r");
  expect_out("AT+X?\r");
  feed("\n");
  expect_out("\n+X:1\r\n\r\nOK\r\n");
  feed("A");
  expect_out("A");
}

static void test_line_limit(void **state) {
  char line[300];
  memset(line, 'B', sizeof line);
  memcpy(line, "AT", 2);
  /* 254 characters + CR LF = 256 bytes: accepted (and unknown) */
  vm_at_input(&at, line, 254);
  feed("\r\n");
  expect_out("E01090000\r\n");
  /* 255 characters: too long, answered once, never executed */
  vm_at_input(&at, line, 255);
  feed("\r\n");
  expect_out("E01040000\r\n");
  /* a lone CR or LF counts */
  vm_at_input(&at, line, 253);
  feed("\r\r\n");
  expect_out("E01090000\r\n");
  vm_at_input(&at, line, 254);
  feed("\n\r\n");
  expect_out("E01040000\r\n");
  vm_at_input(&at, line, 300);
  vm_at_input(&at, line, 300);
  feed("\r\nAT\r\n");
  expect_out("E01040000\r\n\r\nOK\r\n");
}

static void test_esp_unterminated_256_bytes_dropped_silently(void **state) {
  char line[256];
  memset(line, 'B', sizeof line);
  memcpy(line, "AT", 2);
  at.echo = true;
  vm_at_input(&at, line, 256); /* echoed, then dropped */
  assert_int_equal(out_len, 256);
  out_len = 0;
  feed("AT\r\n"); /* the tail of the over-long line */
  expect_out("AT\r\nE01040000\r\n");
  at.echo = false;
  line[255] = '\r'; /* a final CR is kept: the next LF completes a CR LF */
  vm_at_input(&at, line, 256);
  expect_out("");
  feed("\n");
  expect_out("E01040000\r\n");
  vm_at_input(&at, line, 256);
  vm_at_input(&at, "\0AT\r\n", 5); /* a NUL ends the tail too */
  expect_out("\r\nOK\r\n");
}

static void test_style_line_limit(void **state) {
  struct vm_at_style longer = style;
  longer.max_line = 300;
  at.style = &longer;
  char line[400];
  memset(line, 'B', sizeof line);
  memcpy(line, "AT", 2);
  vm_at_input(&at, line, 298); /* 298 + CR LF = 300: accepted */
  feed("\r\n");
  expect_out("E01090000\r\n");
  vm_at_input(&at, line, 299);
  feed("\r\n");
  expect_out("E01040000\r\n");
  longer.max_line = 100000; /* clamped to VM_AT_LINE_CAP */
  vm_at_input(&at, line, 400);
  feed("\r\n");
  expect_out("E01090000\r\n");
  at.style = &style;
}

static void test_pending_busy_and_urc_order(void **state) {
  feed("AT+WAIT\r\n");
  expect_out("OK\r\n");
  assert_true(vm_at_is_pending(&at));
  feed("AT\r\nAT+X?\r\n"); /* one busy per read */
  expect_out("\r\nBUSY\r\n");
  feed("AT+X"); /* even with no CR LF; and the bytes are discarded */
  expect_out("\r\nBUSY\r\n");
  vm_at_urc(&at, "+U1\r\n", 5); /* pending: URCs go out at once */
  expect_out("+U1\r\n");
  vm_at_hold_urcs(&at, true);
  vm_at_urc(&at, "+U2\r\n", 5);
  vm_at_urc(&at, "+U3\r\n", 5);
  expect_out("");
  vm_at_puts(&at, "+WAIT:OK\r\n");
  vm_at_complete(&at, VM_AT_DONE);
  vm_at_hold_urcs(&at, false);
  expect_out("+WAIT:OK\r\n+U2\r\n+U3\r\n");
  feed("?\r\n");
  expect_out("E01030000\r\n");
  assert_int_equal(at.busy_replies, 2);
  assert_int_equal(last_form, -1);
}

static void test_urc_data_is_written_or_queued_whole(void **state) {
  vm_at_urc_data(&at, "a\0b", 3, "\"\r\n", "+RCV:\"%s\",%d,\"", "t", 3);
  assert_int_equal(out_len, 18);
  assert_memory_equal(out, "+RCV:\"t\",3,\"a\0b\"\r\n", 18);
  out_len = 0;
  feed("AT+WAIT\r\n");
  expect_out("OK\r\n");
  vm_at_hold_urcs(&at, true);
  char big[600];
  memset(big, 'x', sizeof big);
  big[sizeof big - 1] = '\0';
  vm_at_urc_data(&at, "", 0, "\r\n", "+H:%s,", big); /* a head longer than the stack buffer */
  expect_out("");
  vm_at_complete(&at, VM_AT_OK);
  vm_at_hold_urcs(&at, false);
  assert_int_equal(out_len, 6 + 3 + 599 + 1 + 2);
  assert_memory_equal(out, "\r\nOK\r\n+H:xxx", 12);
  assert_memory_equal(out + out_len - 4, "x,\r\n", 4);
  out_len = 0;
}

static void test_power_off_ignores_input(void **state) {
  vm_at_power(&at, false);
  feed("AT\r\n");
  vm_at_urc(&at, "+U\r\n", 4);
  expect_out("");
  vm_at_power(&at, true);
  feed("AT\r\n");
  expect_out("\r\nOK\r\n");
}

static void test_data_entry_ok_with_trailing_commands(void **state) {
  at.echo = true;
  feed("AT+PUBL=11\r\n");
  expect_out("AT+PUBL=11\r\nOK\r\n>\r\n");
  vm_at_urc(&at, "+RCV\r\n", 6); /* queued during data entry */
  feed("hello,");
  feed("world\r\nAT\r\n"); /* the payload is not echoed; the next line is */
  assert_int_equal(data_calls, 1);
  assert_int_equal(data_status, VM_AT_DATA_OK);
  assert_int_equal(data_got_len, 11);
  assert_memory_equal(data_got, "hello,world", 11);
  expect_out("+PUBL:OK\r\n+RCV\r\nAT\r\n\r\nOK\r\n");
}

static void test_data_entry_binary_and_split_crlf(void **state) {
  feed("AT+PUBL=4\r"); /* the LF arrives in the next read: it ends the line */
  expect_out("");
  vm_at_input(&at, "\n\x00\xff\r", 4);
  expect_out("OK\r\n>\r\n");
  vm_at_input(&at, "\x01\r\n", 3);
  assert_int_equal(data_status, VM_AT_DATA_OK);
  assert_int_equal(data_got_len, 4);
  assert_memory_equal(data_got, "\x00\xff\r\x01", 4);
  at.style = &style_v250; /* V.250: the CR ends the line, its LF in the next read is no data */
  feed("AT+PUBL=2\r");
  expect_out("+PUBL:OK\r\nOK\r\n>\r\n");
  vm_at_input(&at, "\n\n\r\n", 4);
  assert_int_equal(data_got_len, 2);
  assert_memory_equal(data_got, "\n\r", 2);
  expect_out("+CME ERROR:204\r\n");
  at.style = &style;
}

static void test_v250_cr_ends_a_line(void **state) {
  at.style = &style_v250;
  feed("AT\r");
  expect_out("\r\nOK\r\n");
  feed("\nAT+X?\r\n"); /* the LF of the previous CR, and of this one: ignored */
  expect_out("+X:1\r\n\r\nOK\r\n");
  feed("\n\r\r\n\n"); /* empty lines and LFs where a line starts: ignored */
  expect_out("");
  feed("AT\r\nAT+X?\r\n"); /* two lines in one read both run */
  expect_out("\r\nOK\r\n+X:1\r\n\r\nOK\r\n");
  feed("AT+X=3,\"a\nb\"\n\r"); /* a lone LF inside a line is part of it */
  expect_out("E01080000\r\n");
  feed("AT+X=3,\"a\nb\"\r");
  expect_out("\r\nOK\r\n");
  assert_string_equal(last_str, "a\nb");
  feed("AT+WAIT\r");
  expect_out("OK\r\n");
  feed("AT\rAT\r"); /* while pending: every line is busy */
  expect_out("\r\nBUSY\r\n\r\nBUSY\r\n");
  at.style = &style;
}

static void test_data_entry_abort_short_trailer(void **state) {
  feed("AT+PUBL=20\r\n");
  feed("abc+++\r\n");
  assert_int_equal(data_status, VM_AT_DATA_ABORTED);
  expect_out("OK\r\n>\r\n+CME ERROR:204\r\n");
  feed("AT+PUBL=20\r\nabc\r\n");
  assert_int_equal(data_status, VM_AT_DATA_SHORT);
  expect_out("OK\r\n>\r\n+CME ERROR:204\r\n");
  feed("AT+PUBL=3\r\nabcXY");
  assert_int_equal(data_status, VM_AT_DATA_BAD_TRAILER);
  /* Y is not part of the data: it starts a new (incomplete) command line */
  expect_out("OK\r\n>\r\n+CME ERROR:204\r\n");
  feed("\r\n");
  expect_out("E01030000\r\n");
  feed("AT+PUBL=3\r\nabcX\r\nAT\r\n"); /* the CR LF after the wrong byte is no line */
  assert_int_equal(data_status, VM_AT_DATA_BAD_TRAILER);
  expect_out("OK\r\n>\r\n+CME ERROR:204\r\n\r\nOK\r\n");
}

static void test_data_entry_timeout(void **state) {
  data_timeout_ms = 30;
  feed("AT+PUBL=5\r\nab");
  uint64_t t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_ONCE);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(data_calls, 1);
  assert_int_equal(data_status, VM_AT_DATA_TIMEOUT);
  assert_true(ms >= 25);
  expect_out("OK\r\n>\r\n+CME ERROR:204\r\n");
  feed("AT\r\n");
  expect_out("\r\nOK\r\n");
}

static void test_trailer_timeout(void **state) {
  feed("AT+PUBL=2\r\nab");
  uv_run(&loop, UV_RUN_ONCE); /* trailer_ms = 50 */
  assert_int_equal(data_status, VM_AT_DATA_BAD_TRAILER);
}

static void test_trace_redacts_secrets(void **state) {
  at.echo = true;
  feed("AT+SECRET=1,\"hunter2\",\"x\"\r\n");
  assert_null(strstr(trace_buf, "hunter2"));
  assert_non_null(strstr(trace_buf, ">AT+SECRET=1,\"***\",\"x\"\r\n|"));
  assert_non_null(strstr(trace_buf, "<AT+SECRET=1,\"***\",\"x\"\r\n|")); /* the echo, redacted */
  /* the wire still carries the real echo, as the module would */
  assert_non_null(memmem(out, out_len, "hunter2", 7));
}

static void test_trace_redacts_secrets_in_busy_lines(void **state) {
  feed("AT+WAIT\r\n");
  feed("AT+SECRET=2,\"hunter2\"\r\n");
  expect_out("OK\r\n\r\nBUSY\r\n");
  assert_null(strstr(trace_buf, "hunter2"));
  assert_non_null(strstr(trace_buf, ">AT+SECRET=2,\"***\"\r\n|"));
  feed("AT+SECRET=3,\"hunter2\"\r\nAT+SECRET=4,\"hunter2"); /* a line and a piece */
  expect_out("\r\nBUSY\r\n");
  assert_null(strstr(trace_buf, "hunter2"));
  assert_non_null(strstr(trace_buf, ">AT+SECRET=3,\"***\"\r\n|><20 bytes discarded, no CR LF>|"));
}

/* A table turned off: its names are unknown commands (a build without
 * them), still redacted; on again, they answer. */
static void test_table_off_is_unknown_but_redacted(void **state) {
  vm_at_enable_table(&at, cmds, false);
  at.echo = true;
  feed("AT+SECRET=1,\"hunter2\"\r\n");
  expect_out("AT+SECRET=1,\"hunter2\"\r\nE01090000\r\n");
  assert_null(strstr(trace_buf, "hunter2"));
  assert_non_null(strstr(trace_buf, ">AT+SECRET=1,\"***\"\r\n|"));
  at.echo = false;
  feed("AT+X?\r\n");
  expect_out("E01090000\r\n");
  vm_at_enable_table(&at, cmds, true);
  feed("AT+X?\r\n");
  expect_out("+X:1\r\n\r\nOK\r\n");
}

/* ---- redaction with the dialects' real command rows ---- */

enum { D_TENCENT, D_W800, D_ME3630 };

/* The framing the three dialects use for parameters and names. */
static const struct vm_at_style tc_like = {.ok = "\r\nOK\r\n", .busy = "\r\nBUSY\r\n",
                                           .parse_flags = VM_AT_PARSE_COMMA_SPLITS_QUOTES,
                                           .error = t_error};
static const struct vm_at_style w8_like = {.ok = "\r\nOK\r\n", .busy = "\r\nBUSY\r\n",
                                           .error = t_error};
static const struct vm_at_style me_like = {.ok = "\r\nOK\r\n", .busy = "\r\nBUSY\r\n",
                                           .case_insensitive = true, .error = t_error};

/* Rebuilds the engine as dialect d: the test rows (for AT+WAIT) first, then
 * the dialect's rows. Echo on. */
static void as_dialect(int d) {
  vm_at_close(&at);
  uv_run(&loop, UV_RUN_DEFAULT);
  struct vm_at_io io = {.write = cap_write, .trace = cap_trace};
  const struct vm_at_style *st = d == D_TENCENT ? &tc_like : d == D_W800 ? &w8_like : &me_like;
  vm_at_init(&at, &loop, "t", st, &io, NULL);
  vm_at_add_table(&at, cmds, sizeof cmds / sizeof cmds[0]);
  if (d == D_TENCENT) vm_at_add_table(&at, tc_info_cmds, tc_info_ncmds);
  if (d == D_W800) vm_at_add_table(&at, w8_mqtt_cmds, w8_mqtt_ncmds);
  if (d == D_ME3630) {
    vm_at_add_table(&at, me_cell_cmds, me_cell_ncmds);
    vm_at_add_table(&at, me_auth_cmds, me_auth_ncmds);
  } else {
    vm_at_add_table(&at, vm_esp_wifi_cmds, vm_esp_wifi_ncmds);
  }
  vm_at_reset(&at, true);
  vm_at_power(&at, true);
  out_len = trace_len = 0;
  trace_buf[0] = '\0';
}

struct redact_case {
  int dialect;
  const char *line, *traced, *secret;
  bool rejected; /* the parser rejects the line: no handler runs, so it may be sent idle */
};

static const struct redact_case redact_cases[] = {
    /* the lines of issue 10, each in a dialect that has the command */
    {D_TENCENT, "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",\"ZHNkIGRzZCA=",
     "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",***", "ZHNkIGRzZCA=", true},
    {D_TENCENT, "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",\"ZHNkIG,RzZCA=",
     "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",***", "RzZCA=", true},
    /* ESP8266 core: the comma splits even a closed string, moving the
     * secret's tail (and the region) to the next positions */
    {D_TENCENT, "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",\"ZHNkIG,RzZCA=\",\"ap-guangzhou\"",
     "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",***", "RzZCA=", true},
    {D_TENCENT, "AT+TCPRDINFOSET=1,\"CTQS08Y5LG\",\"cHJkLXNl,Y3JldA==\",\"Dev01\"",
     "AT+TCPRDINFOSET=1,\"CTQS08Y5LG\",***", "Y3JldA==", true},
    {D_TENCENT, "AT+CWJAP=\"lab\",\"WifiPw-7781x", "AT+CWJAP=\"lab\",***", "WifiPw", true},
    {D_W800, "AT+CWJAP=\"lab\",\"WifiPw-7781x", "AT+CWJAP=\"lab\",***", "WifiPw", true},
    {D_W800, "AT+MQTTUSERCFG=0,1,\"id\",\"user\",\"pw-991",
     "AT+MQTTUSERCFG=0,1,\"id\",\"user\",***", "pw-991", true},
    {D_W800, "AT+MQTTPASSWORD=0,\"pw-3131", "AT+MQTTPASSWORD=0,***", "pw-3131", true},
    {D_ME3630, "AT+CLOUDAUTH=pk,dn,\"secret", "AT+CLOUDAUTH=pk,dn,***", "secret", true},
    {D_ME3630, "AT+CPIN=\"4711", "AT+CPIN=***", "4711", true},
    /* fewer commas than the secret's position: from the last parameter on */
    {D_W800, "AT+CWJAP=\"lab\"WifiPw\"", "AT+CWJAP=***", "WifiPw", true},
    /* a malformed form and a name in the wrong case are refused, still redacted */
    {D_W800, "AT+CWJAP?\"lab\",\"WifiPw\"", "AT+CWJAP?\"lab\",***", "WifiPw", true},
    {D_W800, "at+cwjap=\"lab\",\"WifiPw\"", "at+cwjap=\"lab\",***", "WifiPw", true},
    {D_ME3630, "at+cpin=\"4711", "at+cpin=***", "4711", true},
    /* well-formed: by position; an empty secret looks empty */
    {D_W800, "AT+MQTTUSERCFG=0,1,\"id\",\"user\",\"\",0,0,\"\"",
     "AT+MQTTUSERCFG=0,1,\"id\",\"user\",\"\",0,0,\"\"", NULL, false},
    {D_W800, "AT+MQTTUSERCFG=0,1,\"id\",\"user\",\"pw,991\",0,0,\"\"",
     "AT+MQTTUSERCFG=0,1,\"id\",\"user\",\"***\",0,0,\"\"", "991", false},
    {D_ME3630, "AT+CPIN=4711", "AT+CPIN=***", "4711", false},
};

/* The trace holds the redacted line in both directions (input and echo). */
static void expect_traced(const struct redact_case *c) {
  char want[600];
  for (const char *dir = "><"; *dir; dir++) {
    snprintf(want, sizeof want, "%c%s\r\n|", *dir, c->traced);
    if (!strstr(trace_buf, want)) {
      print_error("line [%s]\nwanted [%s] in the trace [%s]\n", c->line, want, trace_buf);
      fail();
    }
  }
  if (c->secret && strstr(trace_buf, c->secret)) {
    print_error("line [%s]: secret [%s] in the trace [%s]\n", c->line, c->secret, trace_buf);
    fail();
  }
}

static void test_trace_redacts_malformed_and_empty_secrets(void **state) {
  char line[600];
  for (size_t i = 0; i < sizeof redact_cases / sizeof redact_cases[0]; i++) {
    const struct redact_case *c = &redact_cases[i];
    snprintf(line, sizeof line, "%s\r\n", c->line);
    if (c->rejected) { /* idle: refused with an error */
      as_dialect(c->dialect);
      feed(line);
      expect_traced(c);
    }
    as_dialect(c->dialect); /* busy: the busy reply, the same trace */
    feed("AT+WAIT\r\n");
    feed(line);
    assert_non_null(memmem(out, out_len, "\r\nBUSY\r\n", 8));
    expect_traced(c);
  }
}

static void test_over_long_secret_line_is_not_traced(void **state) {
  char line[400];
  as_dialect(D_W800);
  int n = snprintf(line, sizeof line, "AT+CWJAP=\"lab\",\"hunter2");
  memset(line + n, 'x', 300);
  strcpy(line + n + 300, "\"\r\n");
  feed(line);
  assert_null(strstr(trace_buf, "hunter2"));
  assert_non_null(strstr(trace_buf, ">\x3cover-long line>|"));
}

static void test_unknown_command_log_stops_at_the_parameters(void **state) {
  struct logcap lc;
  logcap_init(&lc);
  vm_log_set_level(VM_LOG_DEBUG);
  assert_int_equal(logcap_start(&lc), 0);
  feed("AT+CWJAP\"lab\",\"hunter2\"\r\n");
  int secret = logcap_count(&lc, "hunter2"), named = logcap_count(&lc, "unknown command AT+CWJAP\n");
  logcap_stop(&lc);
  vm_log_set_level(VM_LOG_INFO);
  assert_int_equal(secret, 0);
  assert_int_equal(named, 1);
}

static void test_reset_clears_everything(void **state) {
  feed("AT+WAIT\r\n");
  feed("AT+X");
  vm_at_urc(&at, "+U\r\n", 4);
  vm_at_reset(&at, true);
  assert_false(vm_at_is_pending(&at));
  vm_at_power(&at, true);
  out_len = 0;
  feed("?\r\n"); /* the partial line was forgotten */
  expect_out("?\r\nE01030000\r\n");
  vm_at_complete(&at, VM_AT_OK); /* a late completion after reset is ignored */
  expect_out("");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_four_forms, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unregistered_form_and_unknown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_table_off_is_unknown_but_redacted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_esp_only_crlf_ends_a_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_esp_lone_cr_lf_kept_in_parameters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_esp_bare_crlf_and_leftover_lf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_esp_nul_drops_what_came_before, setup, teardown),
      cmocka_unit_test_setup_teardown(test_esp_rest_of_read_after_accepted_command_is_busy, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_esp_busy_read_with_at_rst_forces_restart, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_echo_exact_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_line_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_esp_unterminated_256_bytes_dropped_silently, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_style_line_limit, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pending_busy_and_urc_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_urc_data_is_written_or_queued_whole, setup, teardown),
      cmocka_unit_test_setup_teardown(test_power_off_ignores_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_entry_ok_with_trailing_commands, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_entry_binary_and_split_crlf, setup, teardown),
      cmocka_unit_test_setup_teardown(test_v250_cr_ends_a_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_entry_abort_short_trailer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_data_entry_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trailer_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trace_redacts_secrets, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trace_redacts_secrets_in_busy_lines, setup, teardown),
      cmocka_unit_test_setup_teardown(test_trace_redacts_malformed_and_empty_secrets, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_over_long_secret_line_is_not_traced, setup, teardown),
      cmocka_unit_test_setup_teardown(test_unknown_command_log_stops_at_the_parameters, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reset_clears_everything, setup, teardown),
  };
  return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
