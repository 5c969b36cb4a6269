/* me3630.c - the "me3630" dialect: a Gosuncn ME3630 LTE module (3GPP TS
 * 27.007 / V.250 framing: information lines `\r\n<text>\r\n`, final result
 * `\r\nOK\r\n` / `\r\nERROR\r\n` / `\r\n+CME ERROR: <n>\r\n`; command names
 * are case-insensitive). Ground truth: shared/reference/w800-me3630-at.md §7-§9. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/module.h"

/* every fixed reply string of the dialect */
#define ME_OK "\r\nOK\r\n"
#define ME_ERROR "\r\nERROR\r\n"
#define ME_CME_FMT "\r\n+CME ERROR: %d\r\n"

struct me_state {
  int cmee; /* AT+CMEE: 0 plain ERROR, 1 numeric CME codes */
};

static void me_error(struct vm_at *at, uint32_t code) {
  (void)code; /* engine-level errors (unknown command, syntax) are plain ERROR */
  vm_at_puts(at, ME_ERROR);
}

static const struct vm_at_style me_style = {
    .ok = ME_OK,
    .busy = ME_ERROR,
    .ready = NULL,
    .case_insensitive = true,
    .error = me_error,
};

static enum vm_at_result me_at(struct vm_at *at, const struct vm_at_args *a) { return VM_AT_OK; }

static enum vm_at_result me_ate0(struct vm_at *at, const struct vm_at_args *a) {
  at->echo = false;
  return VM_AT_OK;
}

static enum vm_at_result me_ate1(struct vm_at *at, const struct vm_at_args *a) {
  at->echo = true;
  return VM_AT_OK;
}

static const struct vm_at_cmd me_cmds[] = {
    {.name = "", .exec = me_at},
    {.name = "E0", .exec = me_ate0},
    {.name = "E1", .exec = me_ate1},
};

static int me_parse_config(const cJSON *obj, const char *where, void **out, char *err, size_t errlen) {
  *out = NULL;
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    snprintf(err, errlen, "%s.%s: unknown key", where, it->string);
    return -1;
  }
  return 0;
}

static void me_free_config(void *conf) { free(conf); }

static int me_init(struct vm_module *m) {
  struct me_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  m->dialect_state = s;
  m->at.style = &me_style;
  vm_at_add_table(&m->at, me_cmds, sizeof me_cmds / sizeof me_cmds[0]);
  return 0;
}

static void me_power_on(struct vm_module *m) {
  struct me_state *s = m->dialect_state;
  s->cmee = 1;
}

const struct vm_dialect vm_dialect_me3630 = {
    .name = "me3630",
    .parse_config = me_parse_config,
    .free_config = me_free_config,
    .init = me_init,
    .power_on = me_power_on,
};
