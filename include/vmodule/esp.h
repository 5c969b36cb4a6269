/* esp.h - what the ESP-AT family dialects (tencent, w800) share: the basic
 * commands (AT, ATE0/1, AT+RST, AT+GMR, AT+RESTORE) and the simulated Wi-Fi
 * station with SNTP (AT+CWMODE, AT+CWJAP, AT+CWQAP, AT+CIPSTA?, AT+CIPSNTP*).
 *
 * A dialect using these puts a struct vm_esp as the FIRST member of its state
 * (m->dialect_state), adds vm_esp_basic_cmds and vm_esp_wifi_cmds to its
 * engine, and calls vm_esp_power_on/off from its power hooks. */
#ifndef VMODULE_ESP_H
#define VMODULE_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <uv.h>

#include "vmodule/at.h"

struct vm_module;

struct vm_wifi_ap {
  char ssid[33];
  char password[65];
  char bssid[18];
  int channel, rssi;
  char ip[16], gateway[16], netmask[16];
};

#define VM_ESP_MAX_APS 16
#define VM_ESP_MAX_GMR 8

struct vm_esp_config {
  struct vm_wifi_ap aps[VM_ESP_MAX_APS];
  int naps;
  char auto_join[33];
  unsigned join_ms;
  char *gmr[VM_ESP_MAX_GMR]; /* NULL-terminated; NULL = dialect default */
};

/* Handles the ESP-family keys of a dialect object ("wifi", "gmr").
 * Returns 1 if item was one of them, 0 if not, -1 on error (err set). */
int vm_esp_config_key(struct vm_esp_config *c, const cJSON *item, const char *where, char *err,
                      size_t errlen);
void vm_esp_config_defaults(struct vm_esp_config *c);
void vm_esp_config_free(struct vm_esp_config *c);

struct vm_esp;
typedef void (*vm_esp_wifi_cb)(struct vm_esp *esp, bool up);

/* The chip the firmware runs on and its esp-at core version: they choose the
 * AT+SYSRAM form and figures and the AT+UART_* limits and read-back
 * (shared/reference/esp-at-core.md). The dialect sets both after
 * vm_esp_init() (defaults: ESP8266, core 200). */
enum vm_esp_chip { VM_ESP_CHIP_ESP8266, VM_ESP_CHIP_ESP32, VM_ESP_CHIP_ESP32C3, VM_ESP_CHIP_W800 };

struct vm_esp {
  struct vm_module *m;
  const struct vm_esp_config *cfg;
  const char *const *gmr_default; /* NULL-terminated lines for AT+GMR */
  vm_esp_wifi_cb on_wifi;         /* the dialect learns when the link goes up/down */
  enum vm_esp_chip chip;
  int core; /* esp-at core version x100: 200 = v2.0.0.0, 220 = v2.2.0.0 */
  /* Wi-Fi */
  int mode;         /* CWMODE 0..3 */
  bool auto_connect;
  bool connected;
  int ap;           /* index in cfg->aps while connected */
  char stored_ssid[33], stored_pwd[65]; /* "NVS" */
  bool joining, join_from_cmd;
  char join_ssid[33], join_pwd[65];
  uv_timer_t join_timer;
  /* SNTP */
  bool sntp_enabled, sntp_synced;
  int sntp_tz; /* hours (-12..14) or +-hhmm */
  char sntp_servers[3][65];
  int sntp_nservers;
  uv_timer_t sntp_timer;
  uint64_t boot_ms; /* uv_now at power-on */
};

extern const struct vm_at_cmd vm_esp_basic_cmds[];
extern const size_t vm_esp_basic_ncmds;
extern const struct vm_at_cmd vm_esp_wifi_cmds[];
extern const size_t vm_esp_wifi_ncmds;

void vm_esp_init(struct vm_esp *esp, struct vm_module *m, const struct vm_esp_config *cfg,
                 const char *const *gmr_default, vm_esp_wifi_cb on_wifi);
void vm_esp_power_on(struct vm_esp *esp);
void vm_esp_power_off(struct vm_esp *esp);
void vm_esp_destroy(struct vm_esp *esp);

/* The ESP state of the module behind an engine. */
struct vm_esp *vm_esp_of(struct vm_at *at);

#endif
