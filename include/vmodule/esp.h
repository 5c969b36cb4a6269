/* esp.h - what the ESP-AT family dialects (tencent, w800) share: the basic
 * commands (AT, ATE0/1, AT+RST, AT+GMR, AT+RESTORE, AT+SYSRAM?, AT+UART_CUR,
 * AT+UART_DEF, AT+UART) and the simulated Wi-Fi
 * station with SNTP (AT+CWMODE, AT+CWJAP, AT+CWQAP, AT+CIPSTA?, AT+CIPSNTP*).
 *
 * A dialect using these puts a struct vm_esp as the FIRST member of its state
 * (m->dialect_state), adds vm_esp_basic_cmds and vm_esp_wifi_cmds to its
 * engine, calls vm_esp_power_on/off from its power hooks and reports its MQTT
 * link with vm_esp_net_session() (AT+SYSRAM figures). */
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

/* esp_cli.c: whether d is of the ESP family (tencent, w800), and the
 * command line's --wifi SSID:PASSWORD (the SSID ends at the first ':'),
 * appended to the dialect object *obj (made when NULL) as an access point.
 * Returns 0, or -1 with one line in err that never holds the password. */
struct vm_dialect;
bool vm_esp_dialect(const struct vm_dialect *d);
int vm_esp_cli_wifi(cJSON **obj, const char *arg, char *err, size_t errlen);

struct vm_esp;
typedef void (*vm_esp_wifi_cb)(struct vm_esp *esp, bool up);

/* The chip the firmware runs on and its esp-at core version: they choose the
 * AT+SYSRAM form and figures and the AT+UART_* limits and read-back
 * (shared/reference/esp-at-core.md). The dialect sets both after
 * vm_esp_init() (defaults: ESP8266, core 200). */
enum vm_esp_chip { VM_ESP_CHIP_ESP8266, VM_ESP_CHIP_ESP32, VM_ESP_CHIP_ESP32C3, VM_ESP_CHIP_W800 };

/* UART settings as the AT+UART_CUR / AT+UART_DEF parameters give them. */
struct vm_esp_uart {
  unsigned baud; /* the rate asked for */
  int data_bits; /* 5..8 */
  int stop_bits; /* 1, 2, 3 = 1, 1.5, 2 stop bits */
  int parity;    /* 0 none, 1 odd, 2 even */
  int flow;      /* 0 none, 1 RTS, 2 CTS, 3 both (not emulated) */
};

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
  char join_ssid[33], join_pwd[65]; /* also the AP a rejoin goes back to */
  uv_timer_t join_timer;
  /* `wifi down|up` (fault.h): every configured access point out of range.
   * The radio world, not the module's RAM: survives resets and power cuts. */
  bool ap_down;
  bool rejoin; /* the station lost its AP passively and retries it (reconn_interval) */
  /* SNTP */
  bool sntp_enabled, sntp_synced;
  int sntp_tz; /* hours (-12..14) or +-hhmm */
  char sntp_servers[3][65];
  int sntp_nservers;
  uv_timer_t sntp_timer;
  uint64_t boot_ms; /* uv_now at power-on */
  /* UART */
  struct vm_esp_uart uart; /* what the UART runs at (AT+UART_CUR?) */
  bool uart_paced;         /* false: configured baud 0 and no rate set by the MCU */
  unsigned uart_gen;       /* bumped at power-off: a late AT+UART_DEF write is stale */
  struct vm_esp_uart uart_saving; /* AT+UART_DEF waiting for its flash write */
  /* AT+SYSRAM (simulated heap) */
  bool mqtt_up, tls_up; /* the dialect's MQTT link is up / runs over TLS */
  unsigned mqtt_sessions; /* established since power-on: the later ones count as reconnects */
  uint32_t heap_min;    /* lowest free heap since power-on */
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

/* The rate the chip's UART divider really produces for baud, which is what
 * AT+UART_CUR? reads back: ESP8266 80 MHz / integer divider, ESP32 and
 * ESP32-C3 80 MHz / divider with a 4-bit fraction (the C3 adds a pre-divider
 * for rates its 12-bit integer part cannot reach), W800 the rate itself
 * (inferred: no data). */
unsigned vm_esp_uart_real_baud(enum vm_esp_chip chip, unsigned baud);
/* The highest rate AT+UART_CUR / AT+UART_DEF accept (the lowest is 80). */
unsigned vm_esp_uart_max_baud(enum vm_esp_chip chip, int core);
/* The UART of a (re)booting module: the stored AT+UART_DEF settings, else the
 * factory ones (the module's configured baud, 8N1, flow 1), applied to its TX
 * pacing. */
void vm_esp_uart_boot(struct vm_esp *esp);

/* The dialect's MQTT link went up (tls: over TLS) or down: the heap figures,
 * the "mqtt" state event and, for every session after the first since
 * power-on, m->stats.reconnects. */
void vm_esp_net_session(struct vm_esp *esp, bool up, bool tls);

/* The dialect hooks of the ESP family (dialect.h), for a module whose
 * dialect state starts with its struct vm_esp: the `wifi down|up` fault,
 * its check without a module, and the "wifi" member of `status`. */
int vm_esp_fault(struct vm_module *m, int argc, char **argv, char *err, size_t errlen);
int vm_esp_fault_check(const void *conf, int argc, char **argv, char *err, size_t errlen);
void vm_esp_status(struct vm_esp *esp, cJSON *obj);
/* The Wi-Fi link came up (esp_wifi.c): the join's peak lowers the minimum. */
void vm_esp_heap_wifi_up(struct vm_esp *esp);
/* Free heap now, and the minimum free heap since power-on (which it updates). */
void vm_esp_heap(struct vm_esp *esp, uint32_t *free_now, uint32_t *min_free);
/* Resets the minimum to the start-up figure (power-on). */
void vm_esp_heap_boot(struct vm_esp *esp);

/* The ESP state of the module behind an engine. */
struct vm_esp *vm_esp_of(struct vm_at *at);

#endif
