/* tencent.c - the "tencent" dialect: Tencent Cloud IoT "QCloud AT" firmware
 * on an ESP8266 (v2.x). This file holds the dialect's framing (the esp-at v2
 * core of that firmware prints an `ERR CODE:` line before every ERROR), its
 * configuration and its power hooks; the TC command families live beside it.
 * Ground truth: shared/reference/tencent-at.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/esp.h"
#include "vmodule/module.h"
#include "tencent.h"

static const char *const gmr_default[] = {
    "AT version:2.0.0.0(4fb9a2f - ESP8266 - Jun 12 2019 10:17:51)",
    "SDK version:v3.2-112-g5e2dd56",
    "compile time(0ad6331):Sep  3 2020 11:43:26",
    "Bin version:2.0.0(WROOM-02)",
    NULL,
};

static void tc_error(struct vm_at *at, uint32_t code) {
  vm_at_printf(at, TC_ERR_CODE_FMT TC_ERROR, code);
}

static const struct vm_at_style tc_style = {
    .ok = TC_OK,
    .busy = TC_BUSY,
    .ready = TC_READY,
    .error = tc_error,
};

static int tc_parse_config(const cJSON *obj, const char *where, void **out, char *err, size_t errlen) {
  struct tc_config *c = calloc(1, sizeof *c);
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

static void tc_free_config(void *conf) {
  struct tc_config *c = conf;
  vm_esp_config_free(&c->esp);
  free(c);
}

static void tc_on_wifi(struct vm_esp *esp, bool up) { (void)esp; (void)up; }

static int tc_init(struct vm_module *m) {
  struct tc_state *s = calloc(1, sizeof *s);
  if (!s) return -1;
  m->dialect_state = s;
  m->at.style = &tc_style;
  vm_esp_init(&s->esp, m, &((const struct tc_config *)m->cfg->dialect_conf)->esp, gmr_default,
              tc_on_wifi);
  return 0;
}

static void tc_power_on(struct vm_module *m) {
  struct tc_state *s = m->dialect_state;
  vm_esp_power_on(&s->esp);
}

static void tc_power_off(struct vm_module *m) {
  struct tc_state *s = m->dialect_state;
  vm_esp_power_off(&s->esp);
}

static void tc_destroy(struct vm_module *m) {
  struct tc_state *s = m->dialect_state;
  vm_esp_destroy(&s->esp); /* the module frees s once the loop has closed the handles */
}

const struct vm_dialect vm_dialect_tencent = {
    .name = "tencent",
    .parse_config = tc_parse_config,
    .free_config = tc_free_config,
    .init = tc_init,
    .power_on = tc_power_on,
    .power_off = tc_power_off,
    .destroy = tc_destroy,
};
