/* tc_variant.c - the builds of the QCloud AT firmware the tencent dialect
 * can be: one row per chip x firmware version, holding everything that
 * differs between them (identity strings, flash layout, limits, the
 * parser's comma rule). Selected by the tencent.chip and tencent.firmware
 * config keys; explicit config values (gmr, module_name, flash_mb,
 * fw_version, sdk_version, compile_time) still win over a row.
 * Ground truth: shared/reference/tencent-variants.md; strings the reference
 * gives only as a format carry values picked to fit it, marked "inferred"
 * here and in the README. */
#include <stdio.h>
#include <string.h>

#include "tencent.h"

/* ---- AT+GMR lines -------------------------------------------------------- */

/* v2.1.1, read from the image [FW211]: the esp-at 2.0 core's line 1 (its
 * version digits inferred), the RTOS SDK's version string, app_main.c's
 * compile time and "Bin version:%s(%s)" with the "1.0.0" beside it; the
 * module name is inferred from the image's module list. */
static const char *const gmr_esp8266_211[] = {
    "AT version:2.0.0.0(88c2cde - Jul  9 2019 11:03:33)",
    "SDK version:AT_ESP8266_v1.1.0_20190812_RC-25-g836292b-dirty",
    "compile time:Jun 17 2020 16:25:24",
    "Bin version:1.0.0(ESP8266_QCLOUD)",
    NULL,
};

/* The v2.2+ lines follow the esp-at v2.2 core's formats; the hashes and
 * dates of lines 1 and 3 not given by the reference are inferred, and the
 * SDK line repeats the IDF version AT+TCVER prints (inferred). */
static const char *const gmr_esp8266_220[] = {
    "AT version:2.2.0.0(b097cdf - ESP8266 - Jun 17 2021 12:57:45)",
    "SDK version:v3.4-43-ge9516e4",
    "compile time(4086544):Jun 15 2023 11:35:41",
    "Bin version:2.2.0(ESP8266_QCLOUD)",
    NULL,
};

static const char *const gmr_esp32_220[] = {
    "AT version:2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)",
    "SDK version:v4.2-351-gce2c615",
    "compile time(49e573c):Jul  2 2021 07:03:58",
    "Bin version:2.2.0(ESP32_QCLOUD)",
    NULL,
};

static const char *const gmr_esp32_240[] = {
    "AT version:2.4.0.0(4c6eb5e - ESP32 - May 20 2022 03:11:58)",
    "SDK version:v4.3.2-553-g588436d",
    "compile time(d9fd150):May 20 2022 03:19:26",
    "Bin version:2.4.0(ESP32_QCLOUD)",
    NULL,
};

static const char *const gmr_esp32c3_220[] = {
    "AT version:2.2.0.0(90458f0 - ESP32C3 - Jun 18 2021 10:23:57)",
    "SDK version:v4.3-beta1",
    "compile time(49e573c):Jul  2 2021 07:09:12",
    "Bin version:2.2.0(ESP32C3_QCLOUD)",
    NULL,
};

static const char *const gmr_esp32c3_240[] = {
    "AT version:2.4.0.0(4c6eb5e - ESP32C3 - May 20 2022 03:13:40)",
    "SDK version:v4.3.2-553-g588436d",
    "compile time(d9fd150):May 20 2022 03:24:51",
    "Bin version:2.4.0(ESP32C3_QCLOUD)",
    NULL,
};

/* ---- the table ------------------------------------------------------------- */

#define ESP8266_OTA .ota_base = TC_OTA_FW_START, .ota_max = TC_OTA_FW_MAX_2MB
#define ESP32_OTA .ota_base = 0x280000, .ota_max = 0x180000

static const struct tc_variant variants[] = {
    {.chip = VM_ESP_CHIP_ESP8266, .chip_name = "esp8266", .firmware = "2.1.1", .chip_default = true,
     .core = 200, .gmr = gmr_esp8266_211, .fw_version = "QCloud_AT_ESP8266_v2.1.1",
     .sdk_version = "3.2.1", .compile_time = "Sep  3 2020 11:43:26",
     .module_name = TC_DEFAULT_MODULE_NAME, .flash_mb = 2, ESP8266_OTA,
     .cmd_timeout_max = 10000, .self_ota_file = "ESP8266_QCLOUD_AT.bin", .self_ota_report = true,
     .ota_md5_msg = true,
     .comma_splits_quotes = true},
    {.chip = VM_ESP_CHIP_ESP8266, .chip_name = "esp8266", .firmware = "2.2.0", .core = 220,
     .gmr = gmr_esp8266_220, .fw_version = "QCloud_AT_ESP8266_v2.2.0", .fw_hash = "8b7f0a1",
     .sdk_version = "v3.4-43-ge9516e4", .compile_time = "Jun 15 2023 11:28:10", .flash_mb = 2,
     ESP8266_OTA, .cmd_timeout_max = 20000, .self_ota_file = "ESP8266_QCLOUD_AT",
     .self_ota_prefix = true, .comma_splits_quotes = true, .subdev = true,
     .prov_reply_printf = true},
    /* 8a09f2a has no default module name for the ESP32: empty (inferred) */
    {.chip = VM_ESP_CHIP_ESP32, .chip_name = "esp32", .firmware = "2.2.0", .chip_default = true,
     .core = 220, .gmr = gmr_esp32_220, .fw_version = "QCloud_AT_ESP32_v2.2.0",
     .fw_hash = "8a09f2a", .sdk_version = "v4.2-351-gce2c615",
     .compile_time = "Apr 29 2021 06:38:32", .module_name = "", .flash_mb = 4, ESP32_OTA,
     .cmd_timeout_max = 20000, .self_ota_file = "ESP8266_QCLOUD_AT.bin", .self_ota_report = true,
     .subdev = true},
    {.chip = VM_ESP_CHIP_ESP32, .chip_name = "esp32", .firmware = "2.4.0", .core = 240,
     .gmr = gmr_esp32_240, .fw_version = "QCloud_AT_ESP32_v2.4.0", .fw_hash = "965ecb9",
     .sdk_version = "v4.3.2-553-g588436d", .compile_time = "May 19 2022 11:38:05" /* inferred */,
     .flash_mb = 4, ESP32_OTA, .cmd_timeout_max = 20000, .self_ota_file = "ESP32_QCLOUD_AT",
     .self_ota_prefix = true, .subdev = true},
    {.chip = VM_ESP_CHIP_ESP32C3, .chip_name = "esp32c3", .firmware = "2.2.0",
     .chip_default = true, .core = 220, .gmr = gmr_esp32c3_220,
     .fw_version = "QCloud_AT_ESP32C3_v2.2.0", .fw_hash = "8a09f2a", .sdk_version = "v4.3-beta1",
     .compile_time = "Apr 29 2021 06:34:40", .module_name = "ESP-DEFAULT-4MB", .flash_mb = 4,
     ESP32_OTA, .cmd_timeout_max = 20000, .self_ota_file = "ESP8266_QCLOUD_AT.bin",
     .self_ota_report = true, .subdev = true},
    /* v2.4 puts the MCU firmware in the next OTA partition (inferred) */
    {.chip = VM_ESP_CHIP_ESP32C3, .chip_name = "esp32c3", .firmware = "2.4.0", .core = 240,
     .gmr = gmr_esp32c3_240, .fw_version = "QCloud_AT_ESP32C3_v2.4.0", .fw_hash = "965ecb9",
     .sdk_version = "v4.3.2-553-g588436d", .compile_time = "May 19 2022 11:34:52" /* inferred */,
     .flash_mb = 4, .ota_base = 0x230000, .ota_max = 0x1d0000, .cmd_timeout_max = 20000,
     .self_ota_file = "ESP32C3_QCLOUD_AT", .self_ota_prefix = true, .subdev = true},
};
#define NVARIANTS (sizeof variants / sizeof variants[0])

const struct tc_variant *tc_variant_find(const char *chip, const char *firmware) {
  for (size_t i = 0; i < NVARIANTS; i++) {
    const struct tc_variant *v = &variants[i];
    if (strcmp(v->chip_name, chip)) continue;
    if (firmware ? !strcmp(v->firmware, firmware) : v->chip_default) return v;
  }
  return NULL;
}

const struct tc_variant *tc_variant_of_version(enum vm_esp_chip chip, const char *fw_version) {
  for (size_t i = 0; i < NVARIANTS; i++)
    if (variants[i].chip == chip && !strcmp(variants[i].fw_version, fw_version)) return &variants[i];
  return NULL;
}

bool tc_variant_chip_known(const char *chip) {
  for (size_t i = 0; i < NVARIANTS; i++)
    if (!strcmp(variants[i].chip_name, chip)) return true;
  return false;
}

void tc_variant_firmwares(const char *chip, char *buf, size_t cap) {
  size_t n = 0, count = 0, total = 0;
  for (size_t i = 0; i < NVARIANTS; i++) total += !strcmp(variants[i].chip_name, chip);
  buf[0] = '\0';
  for (size_t i = 0; i < NVARIANTS && n < cap; i++) {
    if (strcmp(variants[i].chip_name, chip)) continue;
    const char *sep = count == 0 ? "" : count + 1 == total ? " or " : ", ";
    n += (size_t)snprintf(buf + n, cap - n, "%s\"%s\"", sep, variants[i].firmware);
    count++;
  }
}
