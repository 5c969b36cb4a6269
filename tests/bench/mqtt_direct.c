/* mqtt_direct.c - the "direct libmosquitto client" baselines and the load
 * generator of the tencent MQTT benchmarks (tests/bench/bench_tencent.py).
 * A plain blocking libmosquitto client, nothing of vmodule in between, so the
 * module's figures can be put next to what the same broker gives directly.
 *
 *   mqtt_direct pub   HOST PORT TOPIC N SIZE       N sequential QoS 1 publishes,
 *                                                  each waiting for its PUBACK;
 *                                                  prints "pub <N> <total ns>"
 *   mqtt_direct sub   HOST PORT TOPIC N QOS        prints "ready" once subscribed,
 *                                                  then "sub <count> <CLOCK_MONOTONIC
 *                                                  ns of the last message>" after N
 *                                                  messages or 5 s without any
 *   mqtt_direct flood HOST PORT TOPIC N SIZE QOS   prints "ready" once connected,
 *                                                  waits for a line on stdin, publishes
 *                                                  N messages as fast as it can (QoS 1:
 *                                                  until every PUBACK), prints "flood
 *                                                  <N> <ns>"
 *
 * Build: cc -O2 -o build/mqtt_direct tests/bench/mqtt_direct.c -lmosquitto */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>

static volatile bool connected, subscribed, acked;
static long received, acks;
static long long last_ns;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *u, int rc) {
  if (rc) {
    fprintf(stderr, "mqtt_direct: connect refused: %s\n", mosquitto_connack_string(rc));
    exit(2);
  }
  connected = true;
}

static void on_subscribe(struct mosquitto *m, void *u, int mid, int n, const int *q) {
  subscribed = true;
}

static void on_publish(struct mosquitto *m, void *u, int mid) {
  acked = true;
  acks++;
}

static void on_message(struct mosquitto *m, void *u, const struct mosquitto_message *msg) {
  received++;
  last_ns = now_ns();
}

static void loop_once(struct mosquitto *m, int timeout_ms) {
  int rc = mosquitto_loop(m, timeout_ms, 1);
  if (rc != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "mqtt_direct: %s\n", mosquitto_strerror(rc));
    exit(2);
  }
}

static struct mosquitto *open_client(const char *host, int port) {
  struct mosquitto *m = mosquitto_new(NULL, true, NULL);
  if (!m) exit(2);
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, 0);
  mosquitto_connect_callback_set(m, on_connect);
  mosquitto_subscribe_callback_set(m, on_subscribe);
  mosquitto_publish_callback_set(m, on_publish);
  mosquitto_message_callback_set(m, on_message);
  if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "mqtt_direct: cannot connect to %s:%d\n", host, port);
    exit(2);
  }
  while (!connected) loop_once(m, 100);
  return m;
}

static char *payload_of(int size) {
  char *p = malloc((size_t)size + 1);
  for (int i = 0; i < size; i++) p[i] = (char)('a' + i % 26);
  return p;
}

static int run_pub(struct mosquitto *m, const char *topic, long n, int size) {
  char *p = payload_of(size);
  long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    acked = false;
    if (mosquitto_publish(m, NULL, topic, size, p, 1, false) != MOSQ_ERR_SUCCESS) return 2;
    while (!acked) loop_once(m, 1000);
  }
  printf("pub %ld %lld\n", n, now_ns() - t0);
  free(p);
  return 0;
}

static int run_sub(struct mosquitto *m, const char *topic, long n, int qos) {
  mosquitto_subscribe(m, NULL, topic, qos);
  while (!subscribed) loop_once(m, 100);
  printf("ready\n");
  fflush(stdout);
  long long idle_since = now_ns();
  long seen = 0;
  while (received < n) {
    loop_once(m, 100);
    if (received != seen) {
      seen = received;
      idle_since = now_ns();
    } else if (now_ns() - idle_since > 5000000000LL) {
      break;
    }
  }
  printf("sub %ld %lld\n", received, last_ns);
  return 0;
}

static int run_flood(struct mosquitto *m, const char *topic, long n, int size, int qos) {
  char *p = payload_of(size), line[16];
  printf("ready\n");
  fflush(stdout);
  if (!fgets(line, sizeof line, stdin)) return 2;
  long long t0 = now_ns();
  for (long i = 0; i < n; i++) {
    if (mosquitto_publish(m, NULL, topic, size, p, qos, false) != MOSQ_ERR_SUCCESS) return 2;
    if (i % 64 == 63) loop_once(m, 0);
  }
  while (mosquitto_want_write(m) || (qos && acks < n)) loop_once(m, 100);
  printf("flood %ld %lld\n", n, now_ns() - t0);
  free(p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: mqtt_direct pub|sub|flood HOST PORT TOPIC N [SIZE] [QOS]\n");
    return 2;
  }
  const char *mode = argv[1], *host = argv[2], *topic = argv[4];
  int port = atoi(argv[3]);
  long n = atol(argv[5]);
  mosquitto_lib_init();
  struct mosquitto *m = open_client(host, port);
  int rc = 2;
  if (!strcmp(mode, "pub") && argc == 7) rc = run_pub(m, topic, n, atoi(argv[6]));
  else if (!strcmp(mode, "sub") && argc == 7) rc = run_sub(m, topic, n, atoi(argv[6]));
  else if (!strcmp(mode, "flood") && argc == 8) rc = run_flood(m, topic, n, atoi(argv[6]), atoi(argv[7]));
  else fprintf(stderr, "mqtt_direct: bad arguments\n");
  fflush(stdout);
  mosquitto_disconnect(m);
  mosquitto_destroy(m);
  mosquitto_lib_cleanup();
  return rc;
}
