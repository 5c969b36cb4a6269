/* w800.c - the "w800" dialect: a WinnerMicro W800 running the ESP-AT-derived
 * MQTT AT command set (seed 002). ESP-AT v3.x framing: `\r\nERROR\r\n`, with
 * an `ERR CODE:` line only after AT+SYSLOG=1. Ground truth:
 * shared/reference/w800-me3630-at.md §1-§6. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/esp.h"
#include "vmodule/module.h"

/* every fixed reply string of the dialect */
#define W8_OK "\r\nOK\r\n"
#define W8_ERROR "\r\nERROR\r\n"
#define W8_ERR_CODE_FMT "ERR CODE:0x%08x\r\n"
#define W8_BUSY "\r\nbusy p...\r\n"
#define W8_READY "\r\nready\r\n"

static const char *const gmr_default[] = {
    "AT version:2.4.0.0(w800sim - W800 - Nov 21 2026 00:00:00)",
    "SDK version:wm_iot_sdk v2.2.1",
    "compile time(w800sim):Nov 21 2026 00:00:00",
    "Bin version:2.4.0(W800)",
    NULL,
};

struct w8_config {
  struct vm_esp_config esp;
};

struct w8_state {
  struct vm_esp esp; /* first: the ESP-family commands find it there */
  bool syslog;       /* AT+SYSLOG: print ERR CODE lines */
};

static void w8_error(struct vm_at *at, uint32_t code) {
  struct w8_state *s = vm_module_of(at)->dialect_state;
  if (s->syslog) vm_at_printf(at, W8_ERR_CODE_FMT, code);
  vm_at_puts(at, W8_ERROR);
}

static const struct vm_at_style w8_style = {
    .ok = W8_OK,
    .busy = W8_BUSY,
    .ready = W8_READY,
    .error = w8_error,
};

static int w8_parse_config(const cJSON *obj, const char *where, void **out, char *err, size_t errlen) {
  struct w8_config *c = calloc(1, sizeof *c);
  if (!c) return snprintf(err, errlen, "%s: out of memory", where), -1;
  *out = c;
  vm_esp_config_defaults(&c->esp);
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    int r = vm_esp_config_key(&c->esp, it, where, err, errlen);
    if (r < 0) return -1;
    if (r == 0) return snprintf(err, errlen, "%s.%s: unknown key", where, it->string), -1;
  }
  return 0;
}

static void w8_free_config(void *conf) {
  struct w8_config *c = conf;
  vm_esp_config_free(&c->esp);
  free(c);
}

static int w8_init(struct vm_module *m) {
  struct w8_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  m->dialect_state = s;
  m->at.style = &w8_style;
  vm_esp_init(&s->esp, m, &((const struct w8_config *)m->cfg->dialect_conf)->esp, gmr_default, NULL);
  return 0;
}

static void w8_power_on(struct vm_module *m) {
  struct w8_state *s = m->dialect_state;
  s->syslog = false;
  vm_esp_power_on(&s->esp);
}

static void w8_power_off(struct vm_module *m) {
  struct w8_state *s = m->dialect_state;
  vm_esp_power_off(&s->esp);
}

static void w8_destroy(struct vm_module *m) {
  struct w8_state *s = m->dialect_state;
  vm_esp_destroy(&s->esp);
}

const struct vm_dialect vm_dialect_w800 = {
    .name = "w800",
    .parse_config = w8_parse_config,
    .free_config = w8_free_config,
    .init = w8_init,
    .power_on = w8_power_on,
    .power_off = w8_power_off,
    .destroy = w8_destroy,
};
