/* test_esp.c - unit tests of the ESP-family figures in src/dialect/esp_basic.c:
 * the UART divider read-back of each chip (what AT+UART_CUR? prints), the
 * baud limits per chip and core version, and the simulated heap behind
 * AT+SYSRAM? (free lower while links are up, minimum the lowest since boot). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmodule/esp.h"

/* ESP8266: clk_div = 80 MHz / baud truncated, read back 80 MHz / clk_div
 * truncated: 80e6 / 694 = 115273.8 -> 115273 (esp-at #141). */
static void test_uart_real_baud_esp8266(void **state) {
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP8266, 115200), 115273);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP8266, 9600), 9600);  /* 8333 exact */
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP8266, 921600), 930232); /* /86 */
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP8266, 4500000), 4705882); /* /17 */
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP8266, 80), 80);
}

/* ESP32: 16 * 80e6 / 115200 = 11111 (int 694, fraction 7/16), read back
 * 1.28e9 / 11111 = 115201.2 -> 115201 (esp-at #338). */
static void test_uart_real_baud_esp32(void **state) {
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32, 115200), 115201);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32, 9600), 9600);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32, 921600), 922190); /* 1.28e9 / 1388 */
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32, 5000000), 5000000);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32, 80), 80);
}

/* ESP32-C3: as ESP32 while the 12-bit integer part suffices; below
 * 80e6 / 4095 = 19536 baud the pre-divider takes over: 9600 -> pre 3,
 * 1.28e9 / (9600 * 3) = 44444, read back 1.28e9 / 133332 = 9600.1 -> 9600;
 * 300 -> pre 66, div 64646, 1.28e9 / 4266636 = 300.0 -> 300. */
static void test_uart_real_baud_esp32c3(void **state) {
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32C3, 115200), 115201);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32C3, 9600), 9600);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32C3, 300), 300);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32C3, 80), 80);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_ESP32C3, 921600), 922190);
}

/* W800: no data, the rate as set (inferred). */
static void test_uart_real_baud_w800(void **state) {
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_W800, 115200), 115200);
  assert_int_equal(vm_esp_uart_real_baud(VM_ESP_CHIP_W800, 123457), 123457);
}

/* 80-5000000 on v2.0/v2.1 cores; from v2.2 the ESP8266 stops at 4500000. */
static void test_uart_max_baud(void **state) {
  assert_int_equal(vm_esp_uart_max_baud(VM_ESP_CHIP_ESP8266, 200), 5000000);
  assert_int_equal(vm_esp_uart_max_baud(VM_ESP_CHIP_ESP8266, 210), 5000000);
  assert_int_equal(vm_esp_uart_max_baud(VM_ESP_CHIP_ESP8266, 220), 4500000);
  assert_int_equal(vm_esp_uart_max_baud(VM_ESP_CHIP_ESP32, 220), 5000000);
  assert_int_equal(vm_esp_uart_max_baud(VM_ESP_CHIP_ESP32C3, 220), 5000000);
  assert_int_equal(vm_esp_uart_max_baud(VM_ESP_CHIP_W800, 240), 5000000);
}

static void heap(struct vm_esp *esp, uint32_t *f, uint32_t *m) { vm_esp_heap(esp, f, m); }

/* Per chip: free drops while Wi-Fi, MQTT and TLS are up and comes back when
 * they go; the minimum is never above the free figure, never rises, and went
 * below the steady TLS figure (the handshake). ESP8266 has far less. */
static void test_heap_consistent_per_chip(void **state) {
  uint32_t boot_free[4];
  for (int chip = VM_ESP_CHIP_ESP8266; chip <= VM_ESP_CHIP_W800; chip++) {
    struct vm_esp esp;
    uint32_t f0, m0, f1, m1, f2, m2, f3, m3, f4, m4;
    memset(&esp, 0, sizeof esp);
    esp.chip = (enum vm_esp_chip)chip;
    esp.core = 220;
    vm_esp_heap_boot(&esp);
    heap(&esp, &f0, &m0);
    assert_true(m0 < f0);
    boot_free[chip] = f0;

    esp.connected = true;
    vm_esp_heap_wifi_up(&esp);
    heap(&esp, &f1, &m1);
    assert_true(f1 < f0);
    assert_true(m1 < f1 && m1 <= m0);

    vm_esp_net_session(&esp, true, true);
    heap(&esp, &f2, &m2);
    assert_true(f2 < f1);
    assert_true(m2 < f2 && m2 <= m1);

    vm_esp_net_session(&esp, false, false);
    esp.connected = false;
    heap(&esp, &f3, &m3);
    assert_int_equal(f3, f0);
    assert_int_equal(m3, m2); /* the lowest since boot */

    vm_esp_net_session(&esp, true, false); /* plain MQTT holds less than TLS */
    heap(&esp, &f4, &m4);
    assert_true(f4 < f3 && f4 > f2);
    assert_int_equal(m4, m2);

    vm_esp_heap_boot(&esp); /* power cycle: the minimum starts again */
    vm_esp_net_session(&esp, false, false);
    heap(&esp, &f4, &m4);
    assert_int_equal(f4, f0);
    assert_int_equal(m4, m0);
  }
  assert_true(boot_free[VM_ESP_CHIP_ESP8266] < 80000);
  assert_true(boot_free[VM_ESP_CHIP_ESP32] > 2 * boot_free[VM_ESP_CHIP_ESP8266]);
  assert_true(boot_free[VM_ESP_CHIP_ESP32C3] > 2 * boot_free[VM_ESP_CHIP_ESP8266]);
  assert_true(boot_free[VM_ESP_CHIP_W800] < 288 * 1024);
}

/* The figures the integration tests expect (tests/integration/test_esp_basic.py). */
static void test_heap_figures(void **state) {
  struct vm_esp esp;
  uint32_t f, m;
  memset(&esp, 0, sizeof esp);
  esp.chip = VM_ESP_CHIP_ESP32;
  vm_esp_heap_boot(&esp);
  esp.connected = true;
  vm_esp_heap_wifi_up(&esp);
  heap(&esp, &f, &m);
  assert_int_equal(f, 148408); /* the esp-at docs' example */
  esp.chip = VM_ESP_CHIP_ESP8266;
  vm_esp_heap_boot(&esp);
  esp.connected = false;
  heap(&esp, &f, &m);
  assert_int_equal(f, 58972);
  assert_int_equal(m, 55556);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uart_real_baud_esp8266),  cmocka_unit_test(test_uart_real_baud_esp32),
      cmocka_unit_test(test_uart_real_baud_esp32c3),  cmocka_unit_test(test_uart_real_baud_w800),
      cmocka_unit_test(test_uart_max_baud),           cmocka_unit_test(test_heap_consistent_per_chip),
      cmocka_unit_test(test_heap_figures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
