/* mqtt_direct.c - the "direct libmosquitto client" baselines and the load
 * generator of the tencent MQTT benchmarks (tests/bench/bench_tencent.py).
 * A plain blocking libmosquitto client, nothing of vmodule in between, so the
 * module's figures can be put next to what the same broker gives directly.
 *
 *   mqtt_direct pub   HOST PORT TOPIC N SIZE       N sequential QoS 1 publishes,
 *                                                  each waiting for its PUBACK;
 *                                                  prints "pub <N> <total ns> <median ns>"
 *   mqtt_direct sub   HOST PORT TOPIC N QOS        prints "ready" once subscribed,
 *                                                  then "sub <count> <CLOCK_MONOTONIC
 *                                                  ns of the last message>" after N
 *                                                  messages or 5 s without any
 *   mqtt_direct flood HOST PORT TOPIC N SIZE QOS   prints "ready" once connected,
 *                                                  waits for a line on stdin, publishes
 *                                                  N messages as fast as it can (QoS 1:
 *                                                  until every PUBACK), prints "flood
 *                                                  <N> <ns>"
 *   mqtt_direct serial PATH N CMDHEX REPLYHEX      the MCU side of the uplink: opens the
 *                                                  tty PATH raw, N times writes CMD and
 *                                                  reads until exactly REPLY came back;
 *                                                  prints "serial <N> <total ns> <median
 *                                                  ns> <p99 ns>" (a C client, so that the
 *                                                  figures are the daemon's, not Python's)
 *   mqtt_direct urcs PATH N                        the MCU side of the downlink: prints
 *                                                  "ready" once PATH is open, counts
 *                                                  "+TCMQTTRCVPUB:" in what the tty
 *                                                  delivers; after N or 5 s without any,
 *                                                  prints "urcs <count> <CLOCK_MONOTONIC
 *                                                  ns of the last>"
 *   mqtt_direct echo                               the PTY baseline of the uplink: owns a
 *                                                  raw PTY (slave held open), prints the
 *                                                  slave path, writes every byte back as
 *                                                  it arrives; exits when stdin closes
 *
 * Build: cc -O2 -o build/mqtt_direct tests/bench/mqtt_direct.c -lmosquitto */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

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

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

static int run_pub(struct mosquitto *m, const char *topic, long n, int size) {
  char *p = payload_of(size);
  long long *t = calloc((size_t)n, sizeof *t), total = 0;
  if (!t || n < 1) return 2;
  for (long i = 0; i < n; i++) {
    long long t0 = now_ns();
    acked = false;
    if (mosquitto_publish(m, NULL, topic, size, p, 1, false) != MOSQ_ERR_SUCCESS) return 2;
    while (!acked) loop_once(m, 1000);
    t[i] = now_ns() - t0;
    total += t[i];
  }
  qsort(t, (size_t)n, sizeof *t, cmp_ll);
  printf("pub %ld %lld %lld\n", n, total, t[(n - 1) / 2]);
  free(t);
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

static size_t unhex(const char *h, char *out, size_t cap) {
  size_t n = 0;
  for (; h[0] && h[1] && n < cap; h += 2) {
    unsigned v;
    if (sscanf(h, "%2x", &v) != 1) break;
    out[n++] = (char)v;
  }
  return n;
}

static int run_serial(const char *path, long n, const char *cmd_hex, const char *reply_hex) {
  char cmd[512], reply[512], buf[4096];
  size_t cl = unhex(cmd_hex, cmd, sizeof cmd), rl = unhex(reply_hex, reply, sizeof reply);
  int fd = open(path, O_RDWR | O_NOCTTY);
  long long *t = calloc((size_t)n, sizeof *t), total = 0;
  if (fd < 0 || !t || n < 1 || !cl || !rl) return perror("serial"), 2;
  struct termios tio;
  tcgetattr(fd, &tio);
  cfmakeraw(&tio);
  tcsetattr(fd, TCSANOW, &tio);
  for (long i = 0; i < n; i++) {
    long long t0 = now_ns();
    if (write(fd, cmd, cl) != (ssize_t)cl) return perror("write"), 2;
    size_t got = 0;
    while (got < rl) {
      struct pollfd p = {.fd = fd, .events = POLLIN};
      if (poll(&p, 1, 10000) != 1) return fprintf(stderr, "serial: timeout\n"), 2;
      ssize_t k = read(fd, buf + got, sizeof buf - got);
      if (k <= 0) return perror("read"), 2;
      got += (size_t)k;
    }
    t[i] = now_ns() - t0;
    total += t[i];
    if (got != rl || memcmp(buf, reply, rl)) {
      fprintf(stderr, "serial: unexpected reply %.*s\n", (int)got, buf);
      return 2;
    }
  }
  qsort(t, (size_t)n, sizeof *t, cmp_ll);
  printf("serial %ld %lld %lld %lld\n", n, total, t[(n - 1) / 2], t[(n * 99 - 1) / 100]);
  free(t);
  return 0;
}

static int run_urcs(const char *path, long n) {
  static const char marker[] = "+TCMQTTRCVPUB:";
  const size_t ml = sizeof marker - 1;
  char buf[65536 + sizeof marker];
  size_t keep = 0; /* tail of the previous read that may start a marker */
  long count = 0;
  int fd = open(path, O_RDWR | O_NOCTTY);
  if (fd < 0) return perror("urcs"), 2;
  struct termios tio;
  tcgetattr(fd, &tio);
  cfmakeraw(&tio);
  tcsetattr(fd, TCSANOW, &tio);
  printf("ready\n");
  fflush(stdout);
  while (count < n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) break;
    ssize_t k = read(fd, buf + keep, sizeof buf - keep - 1);
    if (k <= 0) break;
    size_t len = keep + (size_t)k;
    long before = count;
    for (char *q = buf; (q = memmem(q, len - (size_t)(q - buf), marker, ml)); q += ml) count++;
    if (count != before) last_ns = now_ns();
    keep = len < ml - 1 ? len : ml - 1;
    memmove(buf, buf + len - keep, keep);
  }
  printf("urcs %ld %lld\n", count, last_ns);
  return 0;
}

/* The same bytes back over a raw PTY: a round trip with no module behind it. */
static int run_echo(void) {
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || grantpt(master) || unlockpt(master)) return perror("pty"), 2;
  struct termios t;
  tcgetattr(master, &t);
  cfmakeraw(&t);
  tcsetattr(master, TCSANOW, &t);
  const char *name = ptsname(master);
  int slave = open(name, O_RDWR | O_NOCTTY); /* held: the master never sees HUP */
  if (slave < 0) return perror("slave"), 2;
  printf("%s\n", name);
  fflush(stdout);
  char buf[65536];
  struct pollfd p[2] = {{.fd = master, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0) continue;
    if (p[1].revents) return 0;
    ssize_t n = read(master, buf, sizeof buf);
    if (n > 0 && write(master, buf, (size_t)n) != n) return 2;
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "echo")) return run_echo();
  if (argc == 6 && !strcmp(argv[1], "serial")) return run_serial(argv[2], atol(argv[3]), argv[4], argv[5]);
  if (argc == 4 && !strcmp(argv[1], "urcs")) return run_urcs(argv[2], atol(argv[3]));
  if (argc < 6) {
    fprintf(stderr, "usage: mqtt_direct pub|sub|flood HOST PORT TOPIC N [SIZE] [QOS] | echo\n");
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
