/* esp_basic.c - ESP-AT basic commands shared by the tencent and w800 dialects:
 * AT, ATE0, ATE1, AT+RST, AT+GMR, AT+RESTORE, AT+SYSRAM?, AT+UART_CUR,
 * AT+UART_DEF and AT+UART, plus the ESP-family config keys (the Wi-Fi part and
 * the power hooks live in esp_wifi.c). Reply bytes follow Espressif ESP-AT
 * (shared/reference/w800-me3630-at.md §2-§3, esp-at-core.md).
 *
 * AT+SYSRAM? reports a simulated heap: per chip, a free figure after boot
 * less what the Wi-Fi link, the MQTT link and its TLS session hold while up,
 * and a minimum that also remembers the transient peaks of start-up, joins
 * and handshakes. AT+UART_* keep the settings the esp-at core keeps (CUR in
 * RAM, DEF in the store as in NVS) and drive the TX pacing: the OK goes out at
 * the old rate, the next byte at the new one (txq rate changes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/json.h"
#include "vmodule/esp.h"
#include "vmodule/event.h"
#include "vmodule/log.h"
#include "vmodule/module.h"

struct vm_esp *vm_esp_of(struct vm_at *at) {
  return (struct vm_esp *)vm_module_of(at)->dialect_state;
}

/* Reply formats. AT+SYSRAM's handler prints no CR LF of its own: the OK
 * result code (\r\nOK\r\n) ends the line, so there is no blank line. */
#define ESP_SYSRAM_FMT "+SYSRAM:%u"           /* cores before v2.2: free heap */
#define ESP_SYSRAM2_FMT "+SYSRAM:%u,%u"       /* v2.2+: free heap, minimum free heap */
#define ESP_UART_FMT "%s:%u,%d,%d,%d,%d\r\n" /* +UART_CUR / +UART_DEF / +UART */

#define UART_MIN_BAUD 80
#define UART_FACTORY_BAUD 115200 /* what a module configured unpaced (baud 0) reports */
#define UART_FACTORY_FLOW 1      /* esp-at Kconfig default: RTS */
#define UART_CLK 80000000u       /* APB clock feeding the UART divider */

/* ---- simulated heap (AT+SYSRAM) ---------------------------------------- */

/* Bytes, per chip. Simulated: plausible magnitudes, not measurements. */
struct heap_model {
  uint32_t boot;      /* free once booted, nothing up */
  uint32_t boot_dip;  /* how far start-up went below that */
  uint32_t wifi, join_dip;
  uint32_t mqtt, mqtt_dip;
  uint32_t tls, tls_dip; /* session buffers; the handshake needs more for a while */
};

static const struct heap_model heap_models[] = {
    [VM_ESP_CHIP_ESP8266] = {58972, 3416, 7208, 4112, 3724, 1536, 19880, 7560},
    /* with Wi-Fi up the free figure is the esp-at docs' example, 148408 */
    [VM_ESP_CHIP_ESP32] = {176884, 6228, 28476, 9340, 5912, 2304, 41308, 17736},
    [VM_ESP_CHIP_ESP32C3] = {201752, 7044, 31196, 10208, 5912, 2304, 40564, 18452},
    [VM_ESP_CHIP_W800] = {157248, 4380, 22640, 6812, 4968, 1920, 36204, 14920},
};

static const struct heap_model *heap_model(const struct vm_esp *esp) {
  return &heap_models[esp->chip <= VM_ESP_CHIP_W800 ? esp->chip : VM_ESP_CHIP_ESP8266];
}

static uint32_t heap_free(const struct vm_esp *esp) {
  const struct heap_model *h = heap_model(esp);
  return h->boot - (esp->connected ? h->wifi : 0) - (esp->mqtt_up ? h->mqtt : 0) -
         (esp->tls_up ? h->tls : 0);
}

/* The heap went dip bytes below its present free figure for a while. */
static void heap_dip(struct vm_esp *esp, uint32_t dip) {
  uint32_t low = heap_free(esp) - dip;
  if (low < esp->heap_min) esp->heap_min = low;
}

void vm_esp_heap_boot(struct vm_esp *esp) {
  const struct heap_model *h = heap_model(esp);
  esp->mqtt_up = esp->tls_up = false;
  esp->heap_min = h->boot - h->boot_dip;
}

void vm_esp_heap_wifi_up(struct vm_esp *esp) { heap_dip(esp, heap_model(esp)->join_dip); }

void vm_esp_net_session(struct vm_esp *esp, bool up, bool tls) {
  if (esp->m && up != esp->mqtt_up)
    vm_event_state(esp->m->name, "mqtt", up ? "connected" : "disconnected");
  if (esp->m && up && !esp->mqtt_up && esp->mqtt_sessions++ > 0) esp->m->stats.reconnects++;
  esp->mqtt_up = up;
  esp->tls_up = up && tls;
  if (up) heap_dip(esp, tls ? heap_model(esp)->tls_dip : heap_model(esp)->mqtt_dip);
}

void vm_esp_heap(struct vm_esp *esp, uint32_t *free_now, uint32_t *min_free) {
  heap_dip(esp, 0);
  *free_now = heap_free(esp);
  *min_free = esp->heap_min;
}

/* ---- UART ---------------------------------------------------------------- */

unsigned vm_esp_uart_real_baud(enum vm_esp_chip chip, unsigned baud) {
  if (!baud) return 0;
  switch (chip) {
  case VM_ESP_CHIP_ESP8266: /* clk_div = 80 MHz / baud, truncated; 80 MHz / clk_div */
    return UART_CLK / (UART_CLK / baud);
  case VM_ESP_CHIP_ESP32: { /* clk_div (int.4-bit fraction) = 16 * 80 MHz / baud */
    uint64_t div = ((uint64_t)UART_CLK << 4) / baud;
    return (unsigned)(((uint64_t)UART_CLK << 4) / div);
  }
  case VM_ESP_CHIP_ESP32C3: { /* as ESP32, the integer part 12 bits behind a pre-divider */
    uint64_t pre = (UART_CLK + 4095ull * baud - 1) / (4095ull * baud);
    uint64_t div = ((uint64_t)UART_CLK << 4) / (baud * pre);
    return (unsigned)(((uint64_t)UART_CLK << 4) / (div * pre));
  }
  default: /* W800: no data; the rate itself (inferred) */
    return baud;
  }
}

unsigned vm_esp_uart_max_baud(enum vm_esp_chip chip, int core) {
  return chip == VM_ESP_CHIP_ESP8266 && core >= 220 ? 4500000 : 5000000;
}

/* Frame length in half bits: start, data, parity, stop (1, 1.5 or 2). */
static unsigned uart_frame_hb(const struct vm_esp_uart *u) {
  return 2 * (1 + (unsigned)u->data_bits + (u->parity ? 1 : 0)) + (unsigned)u->stop_bits + 1;
}

static void uart_factory(const struct vm_esp *esp, struct vm_esp_uart *u) {
  unsigned baud = esp->m->cfg->baud;
  *u = (struct vm_esp_uart){baud ? baud : UART_FACTORY_BAUD, 8, 1, 0, UART_FACTORY_FLOW};
}

/* 0, or the error code for settings the chip's esp-at core refuses. */
static uint32_t uart_check(const struct vm_esp *esp, const long v[5]) {
  if (v[0] < UART_MIN_BAUD || v[0] > (long)vm_esp_uart_max_baud(esp->chip, esp->core) ||
      v[1] < 5 || v[1] > 8 || v[2] < 1 || v[2] > 3 || v[3] < 0 || v[3] > 2 || v[4] < 0 || v[4] > 3)
    return VM_AT_ERR_PARA_INVALID;
  return 0;
}

static void uart_from(struct vm_esp_uart *u, const long v[5]) {
  *u = (struct vm_esp_uart){(unsigned)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4]};
}

/* The stored AT+UART_DEF settings into u; false (u untouched) when none or invalid. */
static bool uart_load(const struct vm_esp *esp, struct vm_esp_uart *u) {
  static const char *const keys[5] = {"baud", "data_bits", "stop_bits", "parity", "flow"};
  const cJSON *o = vm_store_get(&esp->m->store, "uart");
  long v[5];
  if (!cJSON_IsObject(o)) return false;
  for (int i = 0; i < 5; i++) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
    if (!cJSON_IsNumber(it) || it->valuedouble != (double)(long)it->valuedouble) return false;
    v[i] = (long)it->valuedouble;
  }
  if (uart_check(esp, v)) return false;
  uart_from(u, v);
  return true;
}

static cJSON *uart_json(const struct vm_esp_uart *u) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "baud", u->baud);
  cJSON_AddNumberToObject(o, "data_bits", u->data_bits);
  cJSON_AddNumberToObject(o, "stop_bits", u->stop_bits);
  cJSON_AddNumberToObject(o, "parity", u->parity);
  cJSON_AddNumberToObject(o, "flow", u->flow);
  return o;
}

/* Switches the UART; bytes already queued (the OK) keep the old rate. */
static void uart_apply(struct vm_esp *esp, const struct vm_esp_uart *u, bool paced) {
  esp->uart = *u;
  esp->uart_paced = paced;
  vm_txq_set_rate(&esp->m->txq, paced ? vm_esp_uart_real_baud(esp->chip, u->baud) : 0,
                  uart_frame_hb(u));
}

void vm_esp_uart_boot(struct vm_esp *esp) {
  struct vm_esp_uart u;
  bool stored = uart_load(esp, &u);
  if (!stored) uart_factory(esp, &u);
  uart_apply(esp, &u, stored || esp->m->cfg->baud != 0);
}

/* ---- commands ---------------------------------------------------------- */

static enum vm_at_result rst_exec(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_reply_ok(at);
  vm_module_reboot(vm_module_of(at));
  return VM_AT_DONE;
}

static enum vm_at_result gmr_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  const char *const *lines = esp->cfg->gmr[0] ? (const char *const *)esp->cfg->gmr : esp->gmr_default;
  for (; *lines; lines++) vm_at_printf(at, "%s\r\n", *lines);
  return VM_AT_OK;
}

static void restore_written(void *data, int status) {
  struct vm_at *at = data;
  vm_at_complete(at, VM_AT_OK);
  vm_module_reboot(vm_module_of(at));
}

/* AT+RESTORE: factory reset of what the ESP-AT core keeps in NVS (Wi-Fi
 * station config, CWMODE), then reboot. */
static enum vm_at_result restore_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_module *m = vm_module_of(at);
  vm_store_put(&m->store, "wifi", NULL);
  vm_store_put(&m->store, "uart", NULL); /* the reboot comes up at the factory rate */
  vm_store_commit(&m->store, restore_written, at);
  return VM_AT_PENDING;
}

static enum vm_at_result sysram_query(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  uint32_t free_now, min_free;
  vm_esp_heap(esp, &free_now, &min_free);
  if (esp->core >= 220) vm_at_printf(at, ESP_SYSRAM2_FMT, free_now, min_free);
  else vm_at_printf(at, ESP_SYSRAM_FMT, free_now);
  return VM_AT_OK;
}

/* AT+UART_CUR? / AT+UART?: the hardware read back, i.e. the divided rate.
 * The v2.0 core reads odd parity back as 0 (esp-at #338, fixed in v2.1). */
static enum vm_at_result uart_read_back(struct vm_at *at, const char *name) {
  struct vm_esp *esp = vm_esp_of(at);
  const struct vm_esp_uart *u = &esp->uart;
  int parity = esp->core < 210 && u->parity == 1 ? 0 : u->parity;
  vm_at_printf(at, ESP_UART_FMT, name, vm_esp_uart_real_baud(esp->chip, u->baud), u->data_bits,
               u->stop_bits, parity, u->flow);
  return VM_AT_OK;
}

static enum vm_at_result uart_cur_query(struct vm_at *at, const struct vm_at_args *a) {
  return uart_read_back(at, "+UART_CUR");
}

static enum vm_at_result uart_alias_query(struct vm_at *at, const struct vm_at_args *a) {
  return uart_read_back(at, "+UART");
}

/* AT+UART_DEF?: what the flash holds (the factory settings when nothing). */
static enum vm_at_result uart_def_query(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  struct vm_esp_uart u;
  if (!uart_load(esp, &u)) uart_factory(esp, &u);
  vm_at_printf(at, ESP_UART_FMT, "+UART_DEF", u.baud, u.data_bits, u.stop_bits, u.parity, u.flow);
  return VM_AT_OK;
}

/* Exactly five integers within the chip's limits; code set on failure. */
static bool uart_parse(struct vm_at *at, const struct vm_at_args *a, struct vm_esp_uart *u) {
  long v[5];
  uint32_t code;
  if (a->count != 5) {
    vm_at_fail(at, VM_AT_ERR_PARA_NUM(5, a->count));
    return false;
  }
  for (int i = 0; i < 5; i++) {
    int r = vm_at_arg_int(a, i, &v[i]);
    if (r != VM_AT_ARG_OK) {
      vm_at_fail(at, r == VM_AT_ARG_INVALID ? VM_AT_ERR_PARA_TYPE : VM_AT_ERR_PARA_PARSE);
      return false;
    }
  }
  if ((code = uart_check(vm_esp_of(at), v))) {
    vm_at_fail(at, code);
    return false;
  }
  uart_from(u, v);
  return true;
}

/* OK at the old settings, then the switch (the core waits for TX to drain). */
static void uart_switch(struct vm_at *at, const struct vm_esp_uart *u) {
  vm_at_reply_ok(at);
  uart_apply(vm_esp_of(at), u, true);
}

static enum vm_at_result uart_cur_set(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp_uart u;
  if (!uart_parse(at, a, &u)) return VM_AT_ERROR;
  uart_switch(at, &u);
  return VM_AT_DONE;
}

struct uart_save {
  struct vm_at *at;
  unsigned gen;
};

static void uart_saved(void *data, int status) {
  struct uart_save *w = data;
  struct vm_at *at = w->at;
  unsigned gen = w->gen;
  free(w);
  struct vm_esp *esp = vm_esp_of(at);
  if (gen != esp->uart_gen || !vm_at_is_pending(at)) return; /* rebooted meanwhile */
  if (status < 0) {
    vm_at_complete(at, vm_at_fail(at, VM_AT_ERR_EXEC_FAIL(0)));
    return;
  }
  uart_switch(at, &esp->uart_saving);
  vm_at_complete(at, VM_AT_DONE);
}

/* AT+UART_DEF= / AT+UART=: stored first (NVS namespace "UART"), then as CUR. */
static enum vm_at_result uart_def_set(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  struct uart_save *w;
  if (!uart_parse(at, a, &esp->uart_saving)) return VM_AT_ERROR;
  if (!(w = malloc(sizeof *w))) return vm_at_fail(at, VM_AT_ERR_EXEC_FAIL(0));
  *w = (struct uart_save){at, esp->uart_gen};
  vm_store_put(&esp->m->store, "uart", uart_json(&esp->uart_saving));
  vm_store_commit(&esp->m->store, uart_saved, w);
  return VM_AT_PENDING;
}

const struct vm_at_cmd vm_esp_basic_cmds[] = {
    {.name = "", .exec = vm_at_handle_ok},
    {.name = "E0", .exec = vm_at_handle_echo_off},
    {.name = "E1", .exec = vm_at_handle_echo_on},
    {.name = "+RST", .exec = rst_exec},
    {.name = "+GMR", .exec = gmr_exec},
    {.name = "+RESTORE", .exec = restore_exec},
    {.name = "+SYSRAM", .query = sysram_query},
    {.name = "+UART_CUR", .query = uart_cur_query, .set = uart_cur_set},
    {.name = "+UART_DEF", .query = uart_def_query, .set = uart_def_set},
    {.name = "+UART", .query = uart_alias_query, .set = uart_def_set},
};
const size_t vm_esp_basic_ncmds = sizeof vm_esp_basic_cmds / sizeof vm_esp_basic_cmds[0];

/* ---- configuration ----------------------------------------------------- */

void vm_esp_config_defaults(struct vm_esp_config *c) {
  memset(c, 0, sizeof *c);
  c->join_ms = 1000;
}

void vm_esp_config_free(struct vm_esp_config *c) {
  for (int i = 0; i < VM_ESP_MAX_GMR; i++) free(c->gmr[i]);
  memset(c->gmr, 0, sizeof c->gmr);
}

#define ERR(...) (snprintf(err, errlen, __VA_ARGS__), -1)

static int copy_str(const cJSON *v, char *dst, size_t cap, size_t min, const char *where,
                    const char *key, char *err, size_t errlen) {
  if (!cJSON_IsString(v)) return ERR("%s.%s: must be a string", where, key);
  size_t n = strlen(v->valuestring);
  if (n < min || n >= cap)
    return ERR("%s.%s: must be %zu to %zu characters", where, key, min, cap - 1);
  memcpy(dst, v->valuestring, n + 1);
  return 0;
}

static int parse_int(const cJSON *v, int lo, int hi, int *out, const char *where, const char *key,
                     char *err, size_t errlen) {
  long long n;
  if (!vm_json_int(v, lo, hi, &n))
    return ERR("%s.%s: must be an integer between %d and %d", where, key, lo, hi);
  *out = (int)n;
  return 0;
}

static int parse_ap(struct vm_wifi_ap *ap, int idx, const cJSON *obj, const char *where, char *err,
                    size_t errlen) {
  char w[128];
  snprintf(w, sizeof w, "%s.wifi.access_points[%d]", where, idx);
  if (!cJSON_IsObject(obj)) return ERR("%s: must be an object", w);
  snprintf(ap->bssid, sizeof ap->bssid, "18:31:bf:4b:2c:%02x", (idx + 1) & 0xff);
  ap->channel = 6;
  ap->rssi = -45;
  snprintf(ap->ip, sizeof ap->ip, "192.168.1.%u", (unsigned)(100 + idx) & 0xffu);
  strcpy(ap->gateway, "192.168.1.1");
  strcpy(ap->netmask, "255.255.255.0");
  const cJSON *it;
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    int rc;
    if (!strcmp(k, "ssid")) rc = copy_str(it, ap->ssid, sizeof ap->ssid, 1, w, k, err, errlen);
    else if (!strcmp(k, "password"))
      rc = copy_str(it, ap->password, sizeof ap->password, 0, w, k, err, errlen);
    else if (!strcmp(k, "bssid")) rc = copy_str(it, ap->bssid, sizeof ap->bssid, 17, w, k, err, errlen);
    else if (!strcmp(k, "channel")) rc = parse_int(it, 1, 14, &ap->channel, w, k, err, errlen);
    else if (!strcmp(k, "rssi")) rc = parse_int(it, -100, 0, &ap->rssi, w, k, err, errlen);
    else if (!strcmp(k, "ip")) rc = copy_str(it, ap->ip, sizeof ap->ip, 7, w, k, err, errlen);
    else if (!strcmp(k, "gateway")) rc = copy_str(it, ap->gateway, sizeof ap->gateway, 7, w, k, err, errlen);
    else if (!strcmp(k, "netmask")) rc = copy_str(it, ap->netmask, sizeof ap->netmask, 7, w, k, err, errlen);
    else rc = ERR("%s.%s: unknown key", w, k);
    if (rc) return rc;
  }
  if (!ap->ssid[0]) return ERR("%s.ssid: required", w);
  return 0;
}

static int parse_wifi(struct vm_esp_config *c, const cJSON *obj, const char *where, char *err,
                      size_t errlen) {
  if (!cJSON_IsObject(obj)) return ERR("%s.wifi: must be an object", where);
  const cJSON *it;
  char w[96];
  snprintf(w, sizeof w, "%s.wifi", where);
  cJSON_ArrayForEach(it, obj) {
    const char *k = it->string;
    if (!strcmp(k, "access_points")) {
      if (!cJSON_IsArray(it)) return ERR("%s.access_points: must be an array", w);
      if (cJSON_GetArraySize(it) > VM_ESP_MAX_APS)
        return ERR("%s.access_points: at most %d access points", w, VM_ESP_MAX_APS);
      const cJSON *ap;
      c->naps = 0;
      cJSON_ArrayForEach(ap, it) {
        if (parse_ap(&c->aps[c->naps], c->naps, ap, where, err, errlen)) return -1;
        c->naps++;
      }
    } else if (!strcmp(k, "auto_join")) {
      if (copy_str(it, c->auto_join, sizeof c->auto_join, 1, w, k, err, errlen)) return -1;
    } else if (!strcmp(k, "join_ms")) {
      int v;
      if (parse_int(it, 0, 60000, &v, w, k, err, errlen)) return -1;
      c->join_ms = (unsigned)v;
    } else {
      return ERR("%s.%s: unknown key", w, k);
    }
  }
  if (c->auto_join[0]) {
    for (int i = 0; i < c->naps; i++)
      if (!strcmp(c->aps[i].ssid, c->auto_join)) return 0;
    return ERR("%s.auto_join: \"%s\" is not in access_points", w, c->auto_join);
  }
  return 0;
}

static int parse_gmr(struct vm_esp_config *c, const cJSON *arr, const char *where, char *err,
                     size_t errlen) {
  if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
      cJSON_GetArraySize(arr) >= VM_ESP_MAX_GMR)
    return ERR("%s.gmr: must be an array of 1 to %d strings", where, VM_ESP_MAX_GMR - 1);
  const cJSON *it;
  int i = 0;
  cJSON_ArrayForEach(it, arr) {
    if (!cJSON_IsString(it) || strlen(it->valuestring) > 200 || strpbrk(it->valuestring, "\r\n"))
      return ERR("%s.gmr[%d]: must be a single line of at most 200 characters", where, i);
    c->gmr[i++] = strdup(it->valuestring);
  }
  return 0;
}

int vm_esp_config_key(struct vm_esp_config *c, const cJSON *item, const char *where, char *err,
                      size_t errlen) {
  if (!strcmp(item->string, "wifi")) return parse_wifi(c, item, where, err, errlen) ? -1 : 1;
  if (!strcmp(item->string, "gmr")) return parse_gmr(c, item, where, err, errlen) ? -1 : 1;
  return 0;
}
