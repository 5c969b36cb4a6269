"""mqttc.py - the MQTT side of vmodule-cloud: one paho client on the broker,
connected before the caller goes on, with subscriptions that wait for their
SUBACK and an on_message hook that runs on paho's network thread. After a
lost connection paho reconnects by itself; the client then subscribes its
topics again (a restarted broker knows none) and calls on_resubscribed()
once the broker has acknowledged them."""
import threading
import time

import paho.mqtt.client as paho


def parse_hostport(text, default_port, what="expected HOST:PORT"):
    """'HOST:PORT' or '[v6]:PORT' (or HOST alone: default_port) -> (host,
    port); ValueError('<what>, got <text>') otherwise."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            host = ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    port = int(port) if port.isdigit() else 0
    if not host or not 0 < port < 65536:
        raise ValueError("%s, got %r" % (what, text))
    return host, port


def parse_broker(text):
    """A broker's 'HOST:PORT' (HOST alone: 1883) -> (host, port)."""
    return parse_hostport(text, 1883, "broker must be HOST:PORT")


class Client:
    """connect(); subscribe(topic); publish(); on_message(topic, payload) is
    called on the network thread for every message."""

    def __init__(self, broker, on_message=None, client_id=None, username=None, password=None,
                 timeout=10.0, on_resubscribed=None, reconnect_max_s=None):
        self.host, self.port = parse_broker(broker)
        self.timeout = timeout
        self.on_message = on_message
        self._connected = threading.Event()
        self._rc = None
        self._acks = {}
        self._lock = threading.Lock()
        self._topics = []          # (topic, qos) subscribed, renewed after a reconnect
        self._resub_mid = None
        self.on_resubscribed = on_resubscribed
        self.c = paho.Client(client_id=client_id or "vmodule-cloud-%d" % time.monotonic_ns(),
                             protocol=paho.MQTTv311)
        if username:
            self.c.username_pw_set(username, password)
        if reconnect_max_s:
            self.c.reconnect_delay_set(1, reconnect_max_s)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = lambda c, u, m: self.on_message and self.on_message(m.topic,
                                                                                bytes(m.payload))

    def _on_connect(self, c, u, flags, rc):
        again = self._connected.is_set()
        self._rc = rc
        self._connected.set()
        if again and rc == 0 and self._topics:
            # on the network thread: no waiting here, _on_subscribe reports it
            with self._lock:
                self._resub_mid = c.subscribe(list(self._topics))[1]

    def _on_subscribe(self, c, u, mid, granted):
        if mid == self._resub_mid:
            if self.on_resubscribed:
                self.on_resubscribed()
            return
        with self._lock:
            ev = self._acks.setdefault(mid, threading.Event())
        ev.set()

    def connect(self):
        """Raises OSError when the broker cannot be reached or refuses."""
        self.c.connect(self.host, self.port, 60)
        self.c.loop_start()
        if not self._connected.wait(self.timeout) or self._rc != 0:
            self.c.loop_stop()
            raise OSError("broker %s:%d refused or did not answer (rc %s)"
                          % (self.host, self.port, self._rc))
        return self

    def subscribe(self, topic, qos=1):
        with self._lock:
            rc, mid = self.c.subscribe(topic, qos)
            ev = self._acks.setdefault(mid, threading.Event())
        if rc != paho.MQTT_ERR_SUCCESS or not ev.wait(self.timeout):
            raise OSError("could not subscribe %s" % topic)
        self._topics.append((topic, qos))

    def publish(self, topic, payload, qos=0, wait=False):
        info = self.c.publish(topic, payload, qos)
        if wait:
            info.wait_for_publish()

    def close(self):
        # disconnecting first lets paho's thread end now, not after its select timeout
        self.c.disconnect()
        self.c.loop_stop()
