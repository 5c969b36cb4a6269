/* esp_wifi.c - the simulated Wi-Fi station and SNTP of the ESP-AT family:
 * AT+CWMODE, AT+CWJAP, AT+CWQAP, AT+CIPSTA?, AT+CIPSNTPCFG, AT+CIPSNTPTIME?,
 * and the `wifi down|up` fault with the "wifi" member of `status`.
 *
 * The access points the module can "see" come from the config. Joining takes
 * wifi.join_ms (the command is pending meanwhile, so other lines get the busy
 * reply, as on the real module); success and failure print the ESP-AT lines.
 * The joined access point and CWMODE are kept in the store like ESP-AT's NVS,
 * and a stored access point is re-joined at power-on.
 *
 * `wifi down` takes every configured access point out of range: a joined
 * station prints WIFI DISCONNECT (the dialect's MQTT link goes with it), a
 * join finds nothing (+CWJAP:3, "cannot find the target AP"). A station that
 * lost its AP that way, or whose power-on auto-connect found nothing, keeps
 * retrying it as esp-at does (reconn_interval, 1 s as AT+CWJAP? shows it;
 * AT+CWRECONNCFG: "works for passive disconnection ... and Wi-Fi auto
 * connect after power on"), silently, so `wifi up` is followed by WIFI
 * CONNECTED and WIFI GOT IP after the join time. An explicit AT+CWJAP or
 * AT+CWQAP ends those retries (the MCU took over). Neither the reference nor
 * tencent-variants.md shows these station URCs differing between the QCloud
 * builds or the W800: one behaviour for all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmodule/json.h"
#include "vmodule/esp.h"
#include "vmodule/event.h"
#include "vmodule/fault.h"
#include "vmodule/log.h"
#include "vmodule/module.h"

#define CWJAP_TIMEOUT 1
#define CWJAP_WRONG_PASSWORD 2
#define CWJAP_NO_AP 3
#define CWJAP_FAIL 4

#define SNTP_SYNC_MS 200 /* how long after the link is up the first sync lands */

static const char *const sntp_default_servers[] = {"cn.ntp.org.cn", "ntp.sjtu.edu.cn",
                                                   "us.pool.ntp.org"};

/* ---- NVS --------------------------------------------------------------- */

static void wifi_save(struct vm_esp *esp) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "mode", esp->mode);
  cJSON_AddBoolToObject(o, "auto_connect", esp->auto_connect);
  if (esp->stored_ssid[0]) {
    cJSON_AddStringToObject(o, "ssid", esp->stored_ssid);
    cJSON_AddStringToObject(o, "password", esp->stored_pwd);
  }
  vm_store_put(&esp->m->store, "wifi", o);
  vm_store_commit(&esp->m->store, NULL, NULL);
}

static void wifi_load(struct vm_esp *esp) {
  esp->mode = 1;
  esp->auto_connect = true;
  esp->stored_ssid[0] = esp->stored_pwd[0] = '\0';
  const cJSON *o = vm_store_get(&esp->m->store, "wifi");
  if (!cJSON_IsObject(o)) return;
  const cJSON *mode = cJSON_GetObjectItemCaseSensitive(o, "mode");
  const cJSON *ac = cJSON_GetObjectItemCaseSensitive(o, "auto_connect");
  const cJSON *ssid = cJSON_GetObjectItemCaseSensitive(o, "ssid");
  const cJSON *pwd = cJSON_GetObjectItemCaseSensitive(o, "password");
  long long n;
  if (vm_json_int(mode, 0, 3, &n)) esp->mode = (int)n;
  if (cJSON_IsBool(ac)) esp->auto_connect = cJSON_IsTrue(ac);
  if (cJSON_IsString(ssid) && cJSON_IsString(pwd) && strlen(ssid->valuestring) < sizeof esp->stored_ssid &&
      strlen(pwd->valuestring) < sizeof esp->stored_pwd) {
    strcpy(esp->stored_ssid, ssid->valuestring);
    strcpy(esp->stored_pwd, pwd->valuestring);
  }
}

/* ---- link state -------------------------------------------------------- */

static bool station_mode(const struct vm_esp *esp) { return esp->mode == 1 || esp->mode == 3; }

static void sntp_synced(uv_timer_t *t) {
  struct vm_esp *esp = t->data;
  if (!esp->sntp_enabled || !esp->connected || esp->sntp_synced) return;
  esp->sntp_synced = true;
  vm_at_urc(&esp->m->at, "+TIME_UPDATED\r\n", 15);
}

static void sntp_schedule(struct vm_esp *esp) {
  if (esp->sntp_enabled && esp->connected && !esp->sntp_synced)
    uv_timer_start(&esp->sntp_timer, sntp_synced, SNTP_SYNC_MS, 0);
}

/* Drops the link; with urc the module prints WIFI DISCONNECT. */
static void wifi_down(struct vm_esp *esp, bool urc) {
  if (!esp->connected) return;
  esp->connected = false;
  esp->sntp_synced = false;
  uv_timer_stop(&esp->sntp_timer);
  if (urc) vm_at_urc(&esp->m->at, "WIFI DISCONNECT\r\n", 17);
  vm_event_state(esp->m->name, "wifi", "disconnected");
  if (esp->on_wifi) esp->on_wifi(esp, false);
}

/* The configured access point named ssid, or -1. */
static int config_ap(const struct vm_esp *esp, const char *ssid) {
  for (int i = 0; i < esp->cfg->naps; i++)
    if (!strcmp(esp->cfg->aps[i].ssid, ssid)) return i;
  return -1;
}

/* The same when it is in range (a scan finds it), else -1. */
static int find_ap(const struct vm_esp *esp, const char *ssid) {
  return esp->ap_down ? -1 : config_ap(esp, ssid);
}

/* The station is associated and has its address (before the URCs). */
static void wifi_up(struct vm_esp *esp, int ap) {
  esp->connected = true;
  esp->rejoin = false;
  esp->ap = ap;
  vm_esp_heap_wifi_up(esp);
  vm_log_info(esp->m->name, "wifi: connected to \"%s\"", esp->join_ssid);
  vm_event_state(esp->m->name, "wifi", "connected");
}

/* After the URCs (and the command's OK). */
static void wifi_up_done(struct vm_esp *esp) {
  sntp_schedule(esp);
  if (esp->on_wifi) esp->on_wifi(esp, true);
}

/* A provisioning join's end: no URC, the dialect hears of it. */
static void join_done_for_dialect(struct vm_esp *esp, int ap, int fail) {
  vm_esp_join_cb cb = esp->join_cb;
  esp->join_cb = NULL;
  if (fail) {
    vm_log_info(esp->m->name, "wifi: join \"%s\" failed (%d)", esp->join_ssid, fail);
  } else {
    wifi_up(esp, ap);
    esp->mode = 1;
    strcpy(esp->stored_ssid, esp->join_ssid);
    strcpy(esp->stored_pwd, esp->join_pwd);
    wifi_save(esp);
  }
  cb(esp, fail, esp->join_data);
  if (!fail) wifi_up_done(esp);
}

static void join_done(uv_timer_t *t) {
  struct vm_esp *esp = t->data;
  struct vm_at *at = &esp->m->at;
  esp->joining = false;
  int ap = find_ap(esp, esp->join_ssid);
  int fail = ap < 0 ? CWJAP_NO_AP
                    : strcmp(esp->cfg->aps[ap].password, esp->join_pwd) ? CWJAP_WRONG_PASSWORD : 0;
  if (esp->join_cb) {
    join_done_for_dialect(esp, ap, fail);
    return;
  }
  if (!esp->join_from_cmd) { /* auto-connect or a retry: URCs on success only */
    if (fail) {
      vm_log_info(esp->m->name, "wifi: auto-connect to \"%s\" failed (%d)", esp->join_ssid, fail);
      esp->rejoin = esp->ap_down; /* retried until the access point is back */
      return;
    }
    wifi_up(esp, ap);
    vm_at_urc(at, "WIFI CONNECTED\r\nWIFI GOT IP\r\n", 29);
    wifi_up_done(esp);
    return;
  }
  if (fail) {
    vm_log_info(esp->m->name, "wifi: join \"%s\" failed (+CWJAP:%d)", esp->join_ssid, fail);
    vm_at_printf(at, "+CWJAP:%d\r\n", fail);
    vm_at_complete(at, vm_at_fail(at, VM_AT_ERR_EXEC_FAIL(0)));
    return;
  }
  wifi_up(esp, ap);
  strcpy(esp->stored_ssid, esp->join_ssid);
  strcpy(esp->stored_pwd, esp->join_pwd);
  wifi_save(esp);
  vm_at_puts(at, "WIFI CONNECTED\r\nWIFI GOT IP\r\n");
  vm_at_complete(at, VM_AT_OK);
  wifi_up_done(esp);
}

static void join_start(struct vm_esp *esp, const char *ssid, const char *pwd, bool from_cmd) {
  esp->join_cb = NULL;
  if (ssid != esp->join_ssid) snprintf(esp->join_ssid, sizeof esp->join_ssid, "%s", ssid);
  if (pwd != esp->join_pwd) snprintf(esp->join_pwd, sizeof esp->join_pwd, "%s", pwd);
  esp->joining = true;
  esp->rejoin = false;
  esp->join_from_cmd = from_cmd;
  uv_timer_start(&esp->join_timer, join_done, esp->cfg->join_ms, 0);
}

void vm_esp_station_reset(struct vm_esp *esp) {
  uv_timer_stop(&esp->join_timer);
  esp->joining = esp->rejoin = false;
  esp->join_cb = NULL;
  wifi_down(esp, false);
}

void vm_esp_station_join(struct vm_esp *esp, const char *ssid, const char *pwd, vm_esp_join_cb done,
                         void *data) {
  vm_esp_station_reset(esp);
  join_start(esp, ssid, pwd, false);
  esp->join_cb = done;
  esp->join_data = data;
}

/* ---- commands ---------------------------------------------------------- */

static enum vm_at_result cwmode_query(struct vm_at *at, const struct vm_at_args *a) {
  vm_at_printf(at, "+CWMODE:%d\r\n", vm_esp_of(at)->mode);
  return VM_AT_OK;
}

static enum vm_at_result cwmode_set(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  long mode, ac = 1;
  if (a->count > 2) return vm_at_fail(at, VM_AT_ERR_PARA_NUM(2, a->count));
  int r = vm_at_arg_int(a, 0, &mode);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (r == VM_AT_ARG_OMITTED || mode < 0 || mode > 3) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  r = vm_at_arg_int(a, 1, &ac);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (ac < 0 || ac > 1) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  esp->mode = (int)mode;
  vm_at_reply_ok(at);
  if (!station_mode(esp)) {
    esp->rejoin = false;
    wifi_down(esp, true);
  }
  wifi_save(esp);
  return VM_AT_DONE;
}

static enum vm_at_result cwjap_query(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  if (!esp->connected) {
    vm_at_puts(at, "No AP\r\n");
    return VM_AT_OK;
  }
  const struct vm_wifi_ap *ap = &esp->cfg->aps[esp->ap];
  vm_at_printf(at, "+CWJAP:\"%s\",\"%s\",%d,%d,0,1,3,0,1\r\n", ap->ssid, ap->bssid, ap->channel,
               ap->rssi);
  return VM_AT_OK;
}

static enum vm_at_result cwjap_begin(struct vm_at *at, const char *ssid, const char *pwd) {
  struct vm_esp *esp = vm_esp_of(at);
  if (!station_mode(esp)) return vm_at_fail(at, VM_AT_ERR_EXEC_FAIL(0));
  if (esp->connected) {
    vm_at_puts(at, "WIFI DISCONNECT\r\n");
    wifi_down(esp, false);
  }
  join_start(esp, ssid, pwd, true);
  return VM_AT_PENDING;
}

/* AT+CWJAP=<"ssid">,<"pwd">[,<"bssid">][,<pci_en>][,<reconn_interval>]
 *          [,<listen_interval>][,<scan_mode>][,<jap_timeout>][,<pmf>] */
static enum vm_at_result cwjap_set(struct vm_at *at, const struct vm_at_args *a) {
  const char *ssid, *pwd = "";
  size_t sl, pl = 0;
  if (a->count < 1 || a->count > 9) return vm_at_fail(at, VM_AT_ERR_PARA_NUM(2, a->count));
  int r = vm_at_arg_str(a, 0, &ssid, &sl);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (r == VM_AT_ARG_OMITTED || sl == 0 || sl > 32) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  r = vm_at_arg_str(a, 1, &pwd, &pl);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (pl > 64) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  for (int i = 2; i < a->count; i++) {
    long v;
    const char *s;
    r = i == 2 ? vm_at_arg_str(a, i, &s, NULL) : vm_at_arg_int(a, i, &v);
    if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  }
  return cwjap_begin(at, ssid, pwd);
}

/* AT+CWJAP: joins the access point stored in NVS. */
static enum vm_at_result cwjap_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  if (!esp->stored_ssid[0]) return vm_at_fail(at, VM_AT_ERR_EXEC_FAIL(0));
  return cwjap_begin(at, esp->stored_ssid, esp->stored_pwd);
}

static enum vm_at_result cwqap_exec(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  vm_at_reply_ok(at);
  esp->rejoin = false;
  wifi_down(esp, true);
  return VM_AT_DONE;
}

static enum vm_at_result cipsta_query(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  const struct vm_wifi_ap *ap = esp->connected ? &esp->cfg->aps[esp->ap] : NULL;
  vm_at_printf(at, "+CIPSTA:ip:\"%s\"\r\n", ap ? ap->ip : "0.0.0.0");
  vm_at_printf(at, "+CIPSTA:gateway:\"%s\"\r\n", ap ? ap->gateway : "0.0.0.0");
  vm_at_printf(at, "+CIPSTA:netmask:\"%s\"\r\n", ap ? ap->netmask : "0.0.0.0");
  return VM_AT_OK;
}

static enum vm_at_result sntpcfg_query(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  vm_at_printf(at, "+CIPSNTPCFG:%d,%d", esp->sntp_enabled ? 1 : 0, esp->sntp_tz);
  if (esp->sntp_enabled)
    for (int i = 0; i < esp->sntp_nservers; i++) vm_at_printf(at, ",\"%s\"", esp->sntp_servers[i]);
  vm_at_puts(at, "\r\n");
  return VM_AT_OK;
}

static bool valid_tz(long tz) {
  if (tz >= -12 && tz <= 14) return true;
  long a = tz < 0 ? -tz : tz; /* UTC offset written as +-hhmm */
  return a >= 100 && a <= 1400 && a % 100 < 60 && (tz > 0 ? a <= 1400 : a <= 1200);
}

/* AT+CIPSNTPCFG=<enable>[,<timezone>][,"<server1>"][,"<server2>"][,"<server3>"] */
static enum vm_at_result sntpcfg_set(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  long en, tz = 0;
  if (a->count > 5) return vm_at_fail(at, VM_AT_ERR_PARA_NUM(5, a->count));
  int r = vm_at_arg_int(a, 0, &en);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (r == VM_AT_ARG_OMITTED || en < 0 || en > 1) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  r = vm_at_arg_int(a, 1, &tz);
  if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
  if (!valid_tz(tz)) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
  char servers[3][65];
  int n = 0;
  for (int i = 2; i < a->count; i++) {
    const char *s;
    size_t l;
    r = vm_at_arg_str(a, i, &s, &l);
    if (r == VM_AT_ARG_INVALID) return vm_at_fail(at, VM_AT_ERR_PARA_TYPE);
    if (r == VM_AT_ARG_OMITTED) continue;
    if (l == 0 || l > 64) return vm_at_fail(at, VM_AT_ERR_PARA_INVALID);
    memcpy(servers[n++], s, l + 1);
  }
  if (n == 0 && en)
    for (; n < 3; n++) strcpy(servers[n], sntp_default_servers[n]);
  esp->sntp_enabled = en;
  esp->sntp_tz = (int)tz;
  esp->sntp_nservers = n;
  memcpy(esp->sntp_servers, servers, sizeof servers);
  esp->sntp_synced = false;
  uv_timer_stop(&esp->sntp_timer);
  sntp_schedule(esp);
  return VM_AT_OK;
}

static long tz_seconds(int tz) {
  if (tz >= -12 && tz <= 14) return tz * 3600L;
  long a = tz < 0 ? -tz : tz;
  long s = (a / 100) * 3600 + (a % 100) * 60;
  return tz < 0 ? -s : s;
}

/* asctime() without its newline; the reply has no blank line before OK. */
static enum vm_at_result sntptime_query(struct vm_at *at, const struct vm_at_args *a) {
  struct vm_esp *esp = vm_esp_of(at);
  time_t t;
  if (esp->sntp_synced) t = time(NULL) + tz_seconds(esp->sntp_tz);
  else t = (time_t)((uv_now(at->loop) - esp->boot_ms) / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  static const char wd[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char mo[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  vm_at_printf(at, "+CIPSNTPTIME:%s %s %2d %02d:%02d:%02d %d\r\nOK\r\n", wd[tm.tm_wday],
               mo[tm.tm_mon], tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_year + 1900);
  return VM_AT_DONE;
}

const struct vm_at_cmd vm_esp_wifi_cmds[] = {
    {.name = "+CWMODE", .query = cwmode_query, .set = cwmode_set},
    {.name = "+CWJAP", .query = cwjap_query, .set = cwjap_set, .exec = cwjap_exec, .secret_mask = 0x2},
    {.name = "+CWQAP", .exec = cwqap_exec},
    {.name = "+CIPSTA", .query = cipsta_query},
    {.name = "+CIPSNTPCFG", .query = sntpcfg_query, .set = sntpcfg_set},
    {.name = "+CIPSNTPTIME", .query = sntptime_query},
};
const size_t vm_esp_wifi_ncmds = sizeof vm_esp_wifi_cmds / sizeof vm_esp_wifi_cmds[0];

/* ---- the `wifi` fault and status ------------------------------------- */

#define WIFI_USAGE "wifi: expected down or up"

/* "wifi down" / "wifi up": 1 for down, 0 for up, -1 (err set) otherwise. */
static int wifi_verb(int argc, char **argv, char *err, size_t errlen) {
  if (argc == 2 && !strcmp(argv[1], "down")) return 1;
  if (argc == 2 && !strcmp(argv[1], "up")) return 0;
  snprintf(err, errlen, WIFI_USAGE);
  return -1;
}

int vm_esp_fault_check(const void *conf, int argc, char **argv, char *err, size_t errlen) {
  (void)conf;
  if (argc < 1 || strcmp(argv[0], "wifi")) return VM_FAULT_UNSUPPORTED;
  return wifi_verb(argc, argv, err, errlen) < 0 ? -1 : 0;
}

/* The access points go out of range: a joined station loses its link now. */
static void ap_gone(struct vm_esp *esp) {
  esp->ap_down = true;
  vm_log_info(esp->m->name, "wifi: fault: the access points are out of range");
  if (!esp->connected) return;
  esp->rejoin = true;
  wifi_down(esp, true);
}

/* They are back: a station retrying its AP finds it at its next attempt. */
static void ap_back(struct vm_esp *esp) {
  esp->ap_down = false;
  vm_log_info(esp->m->name, "wifi: fault lifted: the access points are back");
  if (!esp->rejoin || esp->joining || !esp->m->powered || !station_mode(esp)) return;
  join_start(esp, esp->join_ssid, esp->join_pwd, false);
}

int vm_esp_fault(struct vm_module *m, int argc, char **argv, char *err, size_t errlen) {
  struct vm_esp *esp = m->dialect_state;
  if (argc < 1 || strcmp(argv[0], "wifi")) return VM_FAULT_UNSUPPORTED;
  int down = wifi_verb(argc, argv, err, errlen);
  if (down < 0) return -1;
  if (down == esp->ap_down) {
    snprintf(err, errlen, "wifi %s: the access point is already %s", argv[1], argv[1]);
    return -1;
  }
  if (down) ap_gone(esp);
  else ap_back(esp);
  return 0;
}

/* "wifi": {"state", "ssid", "ip", "access_point"}; ssid is the AP joined or
 * being joined (null when the station has none in view), ip null unless up. */
void vm_esp_status(struct vm_esp *esp, cJSON *obj) {
  cJSON *w = cJSON_AddObjectToObject(obj, "wifi");
  if (!w) return;
  const struct vm_wifi_ap *ap = esp->connected ? &esp->cfg->aps[esp->ap] : NULL;
  bool trying = esp->joining || esp->rejoin;
  cJSON_AddStringToObject(w, "state", ap ? "connected" : trying ? "connecting" : "disconnected");
  if (ap || trying) cJSON_AddStringToObject(w, "ssid", ap ? ap->ssid : esp->join_ssid);
  else cJSON_AddNullToObject(w, "ssid");
  if (ap) cJSON_AddStringToObject(w, "ip", ap->ip);
  else cJSON_AddNullToObject(w, "ip");
  cJSON_AddStringToObject(w, "access_point", esp->ap_down ? "down" : "up");
}

/* ---- life cycle -------------------------------------------------------- */

void vm_esp_init(struct vm_esp *esp, struct vm_module *m, const struct vm_esp_config *cfg,
                 const char *const *gmr_default, vm_esp_wifi_cb on_wifi) {
  esp->m = m;
  esp->cfg = cfg;
  esp->gmr_default = gmr_default;
  esp->on_wifi = on_wifi;
  esp->chip = VM_ESP_CHIP_ESP8266;
  esp->core = 200;
  uv_timer_init(m->loop, &esp->join_timer);
  uv_timer_init(m->loop, &esp->sntp_timer);
  esp->join_timer.data = esp;
  esp->sntp_timer.data = esp;
  vm_at_add_table(&m->at, vm_esp_basic_cmds, vm_esp_basic_ncmds);
  vm_at_add_table(&m->at, vm_esp_wifi_cmds, vm_esp_wifi_ncmds);
}

void vm_esp_power_on(struct vm_esp *esp) {
  esp->boot_ms = uv_now(esp->m->loop);
  esp->connected = esp->joining = esp->rejoin = false;
  esp->mqtt_sessions = 0;
  esp->sntp_enabled = esp->sntp_synced = false;
  esp->sntp_tz = 0;
  esp->sntp_nservers = 0;
  vm_esp_heap_boot(esp);
  vm_esp_uart_boot(esp); /* first power-on; after a reset power-off did it */
  wifi_load(esp);
  if (!station_mode(esp)) return;
  if (esp->stored_ssid[0] && esp->auto_connect)
    join_start(esp, esp->stored_ssid, esp->stored_pwd, false);
  else if (!esp->stored_ssid[0] && esp->cfg->auto_join[0]) {
    int i = config_ap(esp, esp->cfg->auto_join); /* checked by the config */
    join_start(esp, esp->cfg->aps[i].ssid, esp->cfg->aps[i].password, false);
  }
}

void vm_esp_power_off(struct vm_esp *esp) {
  uv_timer_stop(&esp->join_timer);
  uv_timer_stop(&esp->sntp_timer);
  esp->joining = esp->rejoin = false;
  wifi_down(esp, false);
  esp->mqtt_up = esp->tls_up = false;
  esp->uart_gen++;
  vm_esp_uart_boot(esp); /* a reset re-reads AT+UART_DEF: the banner comes at that rate */
}

void vm_esp_destroy(struct vm_esp *esp) {
  uv_close((uv_handle_t *)&esp->join_timer, NULL);
  uv_close((uv_handle_t *)&esp->sntp_timer, NULL);
}
