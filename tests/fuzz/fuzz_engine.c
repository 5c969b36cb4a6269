/* fuzz_engine.c - libFuzzer target: the AT engine's framing and dispatch
 * with a dialect's real command tables, on a real module object.
 *
 * Built once per dialect (-DFUZZ_DIALECT=tencent|w800|me3630 ->
 * fuzz_engine_<dialect>). Every input gets a fresh module from the config
 * below: no serial port (pty_link NULL: the bytes it writes go to a sink that
 * drops them), boot_ms 0, empty flash (the state file is removed after each
 * input), the network on 127.0.0.1 port 1, where nothing listens. Input byte
 * 0 sets the chunk size (1..64); the rest goes through vm_at_input() in
 * chunks, the loop running UV_RUN_NOWAIT after each, then a few more turns
 * for zero-delay timers and callbacks. Commands a fuzz input types (a w800
 * AT+MQTTCONN to any host) could still reach the network: tests/fuzz/run.sh
 * runs the targets in a network namespace of their own, loopback only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "vmodule/config.h"
#include "vmodule/log.h"
#include "vmodule/module.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Fast timers, a Wi-Fi that joins at once, a cloud nobody answers. */
static const struct {
  const char *dialect, *json;
} configs[] = {
    {"tencent", "{\"modules\":[{\"name\":\"fz\",\"dialect\":\"tencent\",\"pty_link\":\"/fz\",\"baud\":0,"
    "\"boot_ms\":0,\"tencent\":{\"wifi\":{\"access_points\":[{\"ssid\":\"lab\","
    "\"password\":\"labpass123\"}],\"auto_join\":\"lab\",\"join_ms\":0},"
    "\"mqtt_host\":\"127.0.0.1\",\"mqtt_port\":1,\"mqtt_transport\":\"tcp\",\"connid\":\"Ab1Cd\","
    "\"dynreg_url\":\"http://127.0.0.1:1/register/dev\"}}]}"},
    {"w800", "{\"modules\":[{\"name\":\"fz\",\"dialect\":\"w800\",\"pty_link\":\"/fz\",\"baud\":0,"
    "\"boot_ms\":0,\"w800\":{\"wifi\":{\"access_points\":[{\"ssid\":\"lab\","
    "\"password\":\"labpass123\"}],\"auto_join\":\"lab\",\"join_ms\":0}}}]}"},
    {"me3630", "{\"modules\":[{\"name\":\"fz\",\"dialect\":\"me3630\",\"pty_link\":\"/fz\",\"baud\":0,"
    "\"boot_ms\":0,\"me3630\":{\"network\":{\"registration_ms\":0,\"call_ms\":0},"
    "\"aliyun\":{\"auth_mode\":\"https\",\"auth_url\":\"http://127.0.0.1:1/auth\","
    "\"auth_ms\":0,\"mqtt_host\":\"127.0.0.1\",\"mqtt_port\":1}}}]}"},
};

static uv_loop_t loop;
static struct vm_config cfg;
static char state_dir[] = "/tmp/vmodule-fuzz-XXXXXX";
static char state_file[128];

static ssize_t null_write(struct vm_sink *sink, const void *buf, size_t len) {
  (void)sink;
  (void)buf;
  return (ssize_t)len;
}
static void null_want(struct vm_sink *sink, int on) {
  (void)sink;
  (void)on;
}
static const struct vm_sink_ops null_ops = {.write = null_write, .want_writable = null_want};
static struct vm_sink null_sink = {.ops = &null_ops};

static void setup(void) {
  const char *want = STR(FUZZ_DIALECT);
  char err[512];
  vm_log_set_level(VM_LOG_ERROR);
  if (uv_loop_init(&loop) || !mkdtemp(state_dir)) abort();
  for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
    if (strcmp(configs[i].dialect, want)) continue;
    if (vm_config_parse(&cfg, configs[i].json, err, sizeof err) < 0) {
      fprintf(stderr, "fuzz_engine: %s\n", err);
      abort();
    }
  }
  if (cfg.nmodules != 1) abort();
  free(cfg.modules[0].pty_link);
  cfg.modules[0].pty_link = NULL; /* no serial port */
  snprintf(state_file, sizeof state_file, "%s/%s/state.json", state_dir, cfg.modules[0].name);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  static struct vm_module m;
  if (!ready) {
    setup();
    ready = 1;
  }
  if (size < 1 || size > 8192) return 0;
  size_t chunk = (size_t)(data[0] % 64) + 1;
  if (vm_module_start(&m, &loop, &cfg.modules[0], state_dir) < 0) abort();
  vm_txq_set_sink(&m.txq, &null_sink);
  vm_module_power_on(&m);
  while (!m.powered) uv_run(&loop, UV_RUN_ONCE); /* the 0 ms boot */
  for (size_t off = 1; off < size; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    vm_at_input(&m.at, (const char *)data + off, n);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  for (int i = 0; i < 4; i++) uv_run(&loop, UV_RUN_NOWAIT);
  vm_module_stop(&m);
  uv_run(&loop, UV_RUN_DEFAULT); /* closes, and the flash write in flight */
  vm_module_cleanup(&m);
  unlink(state_file);
  return 0;
}
