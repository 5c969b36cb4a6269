/* mqtt_probe.c - drives one vm_mqtt session (src/net/mqtt.c) against a real
 * broker for tests/integration/test_mqtt_session.py. Not a cmocka test: it is
 * built by hand into build/tests/mqtt_probe and run by pytest:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Werror -Iinclude \
 *      $(pkg-config --cflags libuv libmosquitto libssl) tests/unit/mqtt_probe.c \
 *      src/net/mqtt.c src/log.c -o build/tests/mqtt_probe \
 *      $(pkg-config --libs libuv libmosquitto libssl libcrypto)
 *
 * (add -g -fsanitize=address,undefined for the sanitizer run; point MQTT_PROBE
 * at that binary).
 *
 *   mqtt_probe host port [--psk identity hexkey] [--ca file] [--cert f --key f]
 *              [--alpn proto] [--insecure] [--user u] [--pass p] [--qos 0|1]
 *              [--timeout ms] [--wait-lost] [--retries n] [--cycles n]
 *              [--publish-from-timer] [--size n] [--keepalive s]
 *              [--close-on-message] [--unsubscribe] [--cancel] [--will topic text]
 *
 * Connects, subscribes to probe/#, publishes "hello" to probe/x, and prints
 * one line per event on stdout: CONNECTED, SUBACK, PUBACK (QoS 1 ack, or QoS 0
 * sent), MESSAGE probe/x 5 hello. Then it disconnects and exits 0. With
 * --wait-lost it stays connected instead and prints LOST (exit 0) when the
 * broker goes away. A failed connect prints CONNECT_FAIL <rc> and exits 1;
 * anything unexpected prints a line saying what and exits 2 (3 on the overall
 * 15 s guard). --retries n reconnects after a failed connect, --cycles n runs
 * the whole exchange n times; both reuse the same vm_mqtt from inside its
 * callbacks, as the dialects' reconnect logic will. The publish is made from
 * inside on_subscribe (libmosquitto only queues it: POLLOUT must be armed)
 * or, with --publish-from-timer, from a loop callback. --size n publishes n
 * pattern bytes instead of "hello" and prints MESSAGE probe/x n intact (or
 * corrupt). --close-on-message calls vm_mqtt_close() from inside on_message
 * and exits 0 after the MESSAGE line; --unsubscribe unsubscribes (UNSUBACK)
 * before disconnecting; --cancel calls vm_mqtt_disconnect() right after
 * vm_mqtt_connect() (CONNECT_FAIL -6 expected); --will sets a QoS 1 last
 * will. Library logs go to stderr (PROBE_DEBUG=1 for debug level). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "vmodule/log.h"
#include "vmodule/mqtt.h"

struct probe {
  struct vm_mqtt mqtt;
  struct vm_mqtt_opts opts;
  uv_timer_t guard, kick;
  int qos, pub_mid, exit_code, retries, cycles, size;
  char *big; /* --size: payload of that many pattern bytes */
  bool wait_lost, from_timer, close_on_message, unsubscribe, cancel;
  bool got_puback, got_message, done;
};

/* Starts (again) on the same object, as a dialect's reconnect does. */
static void start(struct probe *p);

static void end(struct probe *p, int code) {
  if (p->done)
    return;
  p->done = true;
  p->exit_code = code;
  vm_mqtt_close(&p->mqtt, NULL);
  uv_close((uv_handle_t *)&p->guard, NULL);
  uv_close((uv_handle_t *)&p->kick, NULL);
}

static void on_connect(void *data, int rc) {
  struct probe *p = data;
  int mid;

  if (rc != 0) {
    printf("CONNECT_FAIL %d\n", rc);
    if (p->retries-- > 0)
      start(p);
    else
      end(p, 1);
    return;
  }
  printf("CONNECTED\n");
  if ((mid = vm_mqtt_subscribe(&p->mqtt, "probe/#", 1)) <= 0) {
    printf("SUBSCRIBE_ERROR %d\n", mid);
    end(p, 2);
  }
}

static void publish(struct probe *p) {
  if (p->big)
    p->pub_mid = vm_mqtt_publish(&p->mqtt, "probe/x", p->big, p->size, p->qos, false);
  else
    p->pub_mid = vm_mqtt_publish(&p->mqtt, "probe/x", "hello", 5, p->qos, false);
  if (p->pub_mid <= 0) {
    printf("PUBLISH_ERROR %d\n", p->pub_mid);
    end(p, 2);
  }
}

/* Publishing from a plain loop callback, as an AT command handler does: here
 * libmosquitto writes at once and reports QoS 0 as sent inside the call. */
static void on_kick(uv_timer_t *t) { publish(t->data); }

static void on_subscribe(void *data, int mid, int count, const int *granted) {
  struct probe *p = data;

  (void)mid;
  if (count != 1 || granted[0] > 2) {
    printf("SUBACK_FAIL %d\n", count > 0 ? granted[0] : -1);
    end(p, 2);
    return;
  }
  printf("SUBACK\n");
  if (p->from_timer)
    uv_timer_start(&p->kick, on_kick, 0, 0);
  else
    publish(p);
}

static void disconnect(struct probe *p) {
  if (vm_mqtt_disconnect(&p->mqtt) < 0) {
    printf("DISCONNECT_ERROR\n");
    end(p, 2);
  }
}

static void maybe_finish(struct probe *p) {
  int mid;

  if (!p->got_puback || !p->got_message || p->wait_lost)
    return;
  if (p->unsubscribe) {
    if ((mid = vm_mqtt_unsubscribe(&p->mqtt, "probe/#")) <= 0) {
      printf("UNSUBSCRIBE_ERROR %d\n", mid);
      end(p, 2);
    }
    return;
  }
  if (vm_mqtt_disconnect(&p->mqtt) < 0) {
    printf("DISCONNECT_ERROR\n");
    end(p, 2);
  }
}

static void on_publish(void *data, int mid) {
  struct probe *p = data;

  /* mid 0 here would mean on_publish ran before vm_mqtt_publish() returned. */
  if (mid != p->pub_mid || p->got_puback) {
    printf("UNEXPECTED_PUBLISH %d (expected %d)\n", mid, p->pub_mid);
    end(p, 2);
    return;
  }
  printf("PUBACK\n");
  p->got_puback = true;
  maybe_finish(p);
}

static void on_message(void *data, const char *topic, const void *payload, int len, int qos,
                       bool retain, int mid) {
  struct probe *p = data;

  (void)qos, (void)retain, (void)mid;
  if (p->big)
    printf("MESSAGE %s %d %s\n", topic, len,
           len == p->size && !memcmp(payload, p->big, (size_t)len) ? "intact" : "corrupt");
  else
    printf("MESSAGE %s %d %.*s\n", topic, len, len, (const char *)payload);
  p->got_message = true;
  if (p->close_on_message) /* teardown from inside libmosquitto's callback */
    end(p, 0);
  else
    maybe_finish(p);
}

static void on_unsubscribe(void *data, int mid) {
  (void)mid;
  printf("UNSUBACK\n");
  disconnect(data);
}

static void on_disconnect(void *data, enum vm_mqtt_disc_reason reason) {
  struct probe *p = data;

  if (p->wait_lost && reason == VM_MQTT_DISC_LOST) {
    printf("LOST\n");
    end(p, 0);
  } else if (!p->wait_lost && reason == VM_MQTT_DISC_LOCAL) {
    if (--p->cycles > 0)
      start(p);
    else
      end(p, 0);
  } else {
    printf("DISCONNECTED %s\n", reason == VM_MQTT_DISC_LOCAL ? "local" : "lost");
    end(p, 2);
  }
}

static void on_guard(uv_timer_t *t) {
  printf("TIMEOUT\n");
  end(t->data, 3);
}

static void start(struct probe *p) {
  int rc;

  p->pub_mid = 0;
  p->got_puback = p->got_message = false;
  if ((rc = vm_mqtt_connect(&p->mqtt, &p->opts)) < 0) {
    printf("CONNECT_ERROR %d\n", rc);
    end(p, 2);
  } else if (p->cancel && (rc = vm_mqtt_disconnect(&p->mqtt)) < 0) {
    printf("CANCEL_ERROR %d\n", rc);
    end(p, 2);
  }
}

static int usage(void) {
  fprintf(stderr, "usage: mqtt_probe host port [--psk id hexkey] [--ca file] [--cert f --key f]"
                  " [--alpn p] [--insecure] [--user u] [--pass p] [--qos n] [--timeout ms]"
                  " [--wait-lost] [--retries n] [--cycles n] [--publish-from-timer]"
                  " [--size n] [--keepalive s] [--close-on-message] [--unsubscribe]"
                  " [--cancel] [--will topic text]\n");
  return 64;
}

/* Fills o from argv; returns 0 or -1 on a usage error. */
static int parse_args(int argc, char **argv, struct vm_mqtt_opts *o, struct probe *p) {
  if (argc < 3)
    return -1;
  o->host = argv[1];
  o->port = atoi(argv[2]);
  for (int i = 3; i < argc; i++) {
    const char *a = argv[i];
    bool has1 = i + 1 < argc, has2 = i + 2 < argc;
    if (!strcmp(a, "--psk") && has2) {
      o->tls = VM_MQTT_TLS_PSK;
      o->psk_identity = argv[++i];
      o->psk_key_hex = argv[++i];
    } else if (!strcmp(a, "--ca") && has1) {
      o->tls = VM_MQTT_TLS_CA;
      o->ca_file = argv[++i];
    } else if (!strcmp(a, "--cert") && has1) {
      o->cert_file = argv[++i];
    } else if (!strcmp(a, "--key") && has1) {
      o->key_file = argv[++i];
    } else if (!strcmp(a, "--alpn") && has1) {
      o->alpn = argv[++i];
    } else if (!strcmp(a, "--insecure")) {
      o->tls_insecure = true;
    } else if (!strcmp(a, "--user") && has1) {
      o->username = argv[++i];
    } else if (!strcmp(a, "--pass") && has1) {
      o->password = argv[++i];
    } else if (!strcmp(a, "--qos") && has1) {
      p->qos = atoi(argv[++i]);
    } else if (!strcmp(a, "--timeout") && has1) {
      o->connect_timeout_ms = atoi(argv[++i]);
    } else if (!strcmp(a, "--retries") && has1) {
      p->retries = atoi(argv[++i]);
    } else if (!strcmp(a, "--cycles") && has1) {
      p->cycles = atoi(argv[++i]);
    } else if (!strcmp(a, "--will") && has2) {
      o->will_topic = argv[++i];
      o->will_payload = argv[++i];
      o->will_len = (int)strlen(argv[i]);
      o->will_qos = 1;
    } else if (!strcmp(a, "--close-on-message")) {
      p->close_on_message = true;
    } else if (!strcmp(a, "--unsubscribe")) {
      p->unsubscribe = true;
    } else if (!strcmp(a, "--cancel")) {
      p->cancel = true;
    } else if (!strcmp(a, "--keepalive") && has1) {
      o->keepalive = atoi(argv[++i]);
    } else if (!strcmp(a, "--size") && has1) {
      p->size = atoi(argv[++i]);
    } else if (!strcmp(a, "--publish-from-timer")) {
      p->from_timer = true;
    } else if (!strcmp(a, "--wait-lost")) {
      p->wait_lost = true;
    } else {
      return -1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  static struct probe p = {.qos = 1, .exit_code = 2, .cycles = 1,
                           .opts = {.keepalive = 60, .clean_session = true,
                                    .client_id = "vm-probe"}};
  struct vm_mqtt_cbs cbs = {.on_connect = on_connect, .on_disconnect = on_disconnect,
                            .on_message = on_message, .on_publish = on_publish,
                            .on_subscribe = on_subscribe, .on_unsubscribe = on_unsubscribe};
  uv_loop_t *loop = uv_default_loop();

  setvbuf(stdout, NULL, _IOLBF, 0); /* the test reads lines as they come */
  if (parse_args(argc, argv, &p.opts, &p) < 0)
    return usage();
  if (p.size > 0) {
    if (!(p.big = malloc((size_t)p.size)))
      return 70;
    for (int i = 0; i < p.size; i++)
      p.big[i] = (char)('a' + i % 26);
  }
  if (getenv("PROBE_DEBUG"))
    vm_log_set_level(VM_LOG_DEBUG);
  vm_mqtt_init(&p.mqtt, loop, "probe", &cbs, &p);
  uv_timer_init(loop, &p.guard);
  uv_timer_init(loop, &p.kick);
  p.guard.data = p.kick.data = &p;
  uv_timer_start(&p.guard, on_guard, 15000, 0);
  start(&p);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) {
    printf("LOOP_NOT_EMPTY\n");
    return 4;
  }
  free(p.big);
  return p.exit_code;
}
