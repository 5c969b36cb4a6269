/* fuzz_config.c - libFuzzer target: the configuration loader
 * (vm_config_parse, src/config.c) with every dialect's own config parser
 * behind it. The input is the JSON document; what parses is freed again (a
 * leak is a finding). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmodule/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int quiet;
  if (!quiet) {
    vm_log_set_level(VM_LOG_ERROR);
    quiet = 1;
  }
  if (size > 65536) return 0;
  char *json = malloc(size + 1);
  if (!json) return 0;
  memcpy(json, data, size);
  json[size] = '\0';
  struct vm_config cfg;
  char err[512];
  err[0] = '\0';
  if (vm_config_parse(&cfg, json, err, sizeof err) < 0 && !err[0]) abort(); /* an error names a key */
  vm_config_free(&cfg);
  free(json);
  return 0;
}
