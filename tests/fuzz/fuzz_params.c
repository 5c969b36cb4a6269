/* fuzz_params.c - libFuzzer target: the ESP-AT parameter parser
 * (src/at/params.c) with both flag sets, with and without a rest-of-line
 * parameter, and every typed getter on what it parsed.
 *
 * Input: byte 0 picks the options (bit 0: VM_AT_PARSE_COMMA_SPLITS_QUOTES,
 * bits 1-3: max for vm_at_parse_params_max, 0 = vm_at_parse_params), the
 * rest is the parameter string (what follows "AT+X="). Besides the
 * sanitizers, the parser's own promises are checked: at most
 * VM_AT_MAX_PARAMS parameters, tokens inside the string, NUL-terminated
 * strings of the stated length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/params.h"

#define CHECK(c) \
  do {           \
    if (!(c)) abort(); \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct vm_at_args a;
  if (size < 1 || size > 4096) return 0;
  unsigned flags = data[0] & 1 ? VM_AT_PARSE_COMMA_SPLITS_QUOTES : 0;
  int max = (data[0] >> 1) & 7;
  const char *s = (const char *)data + 1;
  size_t len = size - 1;
  int rc = max ? vm_at_parse_params_max(&a, s, len, flags, max)
               : vm_at_parse_params(&a, s, len, flags);
  if (rc < 0) return 0;
  CHECK(a.count >= 0 && a.count <= VM_AT_MAX_PARAMS);
  CHECK(!max || a.count <= max);
  for (int i = 0; i <= a.count; i++) { /* one past the end: omitted */
    long n;
    const char *v;
    size_t vl;
    if (i < a.count) {
      const struct vm_at_param *p = &a.p[i];
      CHECK(p->off <= len && p->len <= len - p->off);
      if (p->type == VM_AT_P_STR || p->type == VM_AT_P_RAW) CHECK(p->str[p->str_len] == '\0');
    }
    int ri = vm_at_arg_int(&a, i, &n);
    int rs = vm_at_arg_str(&a, i, &v, &vl);
    if (rs == VM_AT_ARG_OK) CHECK(v[vl] == '\0');
    int rt = vm_at_arg_text(&a, i, &v, &vl);
    if (rt == VM_AT_ARG_OK) CHECK(v[vl] == '\0');
    if (i == a.count) CHECK(ri == VM_AT_ARG_OMITTED && rs == VM_AT_ARG_OMITTED);
  }
  return 0;
}
