"""mqtt_peer.py - a scripted MQTT 3.1.1 broker for the tests, on loopback
only, for what a real mosquitto never does: refuse a subscription (SUBACK
0x80), grant a lower QoS than asked, refuse a connection with any CONNACK
code, or stop answering at a chosen moment.

ScriptedBroker(connack=0, suback=None) listens on a free 127.0.0.1 port
(attribute `port`) and serves every client in its own thread:

  CONNECT      -> CONNACK with return code `connack` (None: no CONNACK at all);
                  after a refusal (1..5) the connection is closed, as brokers do
  SUBSCRIBE    -> SUBACK with one code per filter from `suback`: a list of
                  (regex, code) pairs, the first whose pattern fully matches
                  the filter wins (code None: that filter gets no SUBACK at
                  all, i.e. the whole SUBACK is withheld); a filter no pattern
                  matches is granted the QoS it asked for. A callable
                  suback(filter, qos) -> code works too.
  UNSUBSCRIBE  -> UNSUBACK
  PUBLISH      -> QoS 1: PUBACK; QoS 2: PUBREC (then PUBREL -> PUBCOMP)
  PINGREQ      -> PINGRESP
  DISCONNECT   -> the connection is closed

Every packet received is recorded, in order, as a Packet (`packets`), and
wait_packet() waits for one by kind and predicate. go_silent() makes the
broker read and record but never answer; drop_clients() closes every open
connection (the client sees the broker go away); publish() sends a PUBLISH
to every connected client. close() stops everything (the `mqtt_peer`
fixture calls it at teardown).

Nothing here sleeps for a fixed time: waits are on a condition variable."""

import re
import select
import socket
import struct
import threading
import time

import pytest

from faults import stop_listener

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
NAMES = {CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
         PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
         SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK",
         PINGREQ: "PINGREQ", PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT"}
REFUSED = 0x80  # SUBACK return code: failure


# ---------------------------------------------------------------- wire format


def _varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s):
    b = s.encode() if isinstance(s, str) else bytes(s)
    return struct.pack("!H", len(b)) + b


def packet(kind, body=b"", flags=0):
    """The bytes of one MQTT control packet."""
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


class _Reader:
    """Splits a byte stream into (first byte, body) packets."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            n, mult, i = 0, 1, 1
            while True:
                if i >= len(self.buf):
                    return out
                b = self.buf[i]
                n += (b & 0x7F) * mult
                mult *= 128
                i += 1
                if not b & 0x80:
                    break
                if i > 4:
                    raise ValueError("malformed remaining length")
            if len(self.buf) < i + n:
                return out
            out.append((self.buf[0], bytes(self.buf[i:i + n])))
            del self.buf[:i + n]


def _str_at(body, i):
    n = struct.unpack_from("!H", body, i)[0]
    return body[i + 2:i + 2 + n], i + 2 + n


class Packet:
    """One received packet: kind (int), name, flags, body (raw), conn (which
    connection, counted from 0) and the decoded fields of its kind:
    CONNECT client_id, username, password (bytes or None), keepalive, clean,
    will_topic; SUBSCRIBE/UNSUBSCRIBE mid and filters ([(filter, qos)] /
    [filter]); PUBLISH topic, payload, qos, retain, dup, mid; PUBACK/PUBREL mid.
    malformed: the body did not decode (the broker then closes the link)."""

    def __init__(self, first, body, conn):
        self.kind, self.flags, self.body, self.conn = first >> 4, first & 0x0F, body, conn
        self.name = NAMES.get(self.kind, "type%d" % self.kind)
        self.at = time.monotonic()
        self.malformed = False
        try:
            getattr(self, "_decode_" + self.name.lower(), lambda: None)()
        except (struct.error, IndexError, UnicodeDecodeError):
            self.malformed = True  # recorded as is; the broker closes the connection

    def _decode_connect(self):
        proto, i = _str_at(self.body, 0)
        self.protocol, self.level, cflags = proto, self.body[i], self.body[i + 1]
        self.keepalive = struct.unpack_from("!H", self.body, i + 2)[0]
        self.clean = bool(cflags & 0x02)
        cid, i = _str_at(self.body, i + 4)
        self.client_id = cid.decode()
        self.will_topic = self.username = self.password = None
        if cflags & 0x04:
            topic, i = _str_at(self.body, i)
            _, i = _str_at(self.body, i)
            self.will_topic = topic.decode()
        if cflags & 0x80:
            user, i = _str_at(self.body, i)
            self.username = user.decode()
        if cflags & 0x40:
            self.password, i = _str_at(self.body, i)

    def _decode_subscribe(self):
        self.mid = struct.unpack_from("!H", self.body, 0)[0]
        self.filters, i = [], 2
        while i < len(self.body):
            f, i = _str_at(self.body, i)
            self.filters.append((f.decode(), self.body[i]))
            i += 1

    def _decode_unsubscribe(self):
        self.mid = struct.unpack_from("!H", self.body, 0)[0]
        self.filters, i = [], 2
        while i < len(self.body):
            f, i = _str_at(self.body, i)
            self.filters.append(f.decode())

    def _decode_publish(self):
        self.qos, self.retain, self.dup = (self.flags >> 1) & 3, bool(self.flags & 1), \
            bool(self.flags & 8)
        topic, i = _str_at(self.body, 0)
        self.topic, self.mid = topic.decode(), None
        if self.qos:
            self.mid = struct.unpack_from("!H", self.body, i)[0]
            i += 2
        self.payload = self.body[i:]

    def _decode_puback(self):
        self.mid = struct.unpack_from("!H", self.body, 0)[0]

    _decode_pubrel = _decode_puback

    def __repr__(self):
        extra = {k: v for k, v in vars(self).items()
                 if k not in ("kind", "flags", "body", "conn", "name", "at", "malformed")}
        return "<%s conn %d %s>" % (self.name, self.conn, extra)


# ---------------------------------------------------------------- the broker


class ScriptedBroker:
    """See the module comment."""

    def __init__(self, connack=0, suback=None, host="127.0.0.1", port=0):
        self.connack = connack
        self.suback = suback or []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.packets = []
        self.sent = []      # (conn, bytes) of every packet sent, in order
        self.accepted = 0
        self.silent = False
        self._cond = threading.Condition()
        self._conns = {}    # conn number -> socket
        self._next_mid = 0
        self._stop = False
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    # -- control
    def go_silent(self):
        """From now on: read and record, never answer."""
        self.silent = True

    def drop_clients(self):
        """Closes every open connection (no DISCONNECT: the link just ends)."""
        with self._cond:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def publish(self, topic, payload, qos=0, retain=False):
        """Sends a PUBLISH to every connected client."""
        with self._cond:
            self._next_mid = self._next_mid % 65535 + 1
            body = _utf8(topic) + (struct.pack("!H", self._next_mid) if qos else b"") + payload
            conns = list(self._conns.items())
        for n, c in conns:
            self._send(n, c, packet(PUBLISH, body, qos << 1 | int(retain)))

    def close(self):
        self._stop = True
        stop_listener(self.sock)
        self.drop_clients()
        for t in self._threads:
            t.join(5)

    # -- assertions
    def received(self, kind=None):
        """The packets received so far, all or of one kind (int or name)."""
        with self._cond:
            return [p for p in self.packets if kind is None or kind in (p.kind, p.name)]

    def wait_packet(self, kind, pred=None, timeout=5.0, count=1):
        """Waits until `count` packets of `kind` matching pred arrived;
        returns the count-th one."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [p for p in self.packets
                       if kind in (p.kind, p.name) and (pred is None or pred(p))]
                if len(got) >= count:
                    return got[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("scripted broker: timed out after %.1f s waiting for %s; "
                                "received %s" % (timeout, kind, self.packets), pytrace=False)
                self._cond.wait(left)

    def wait_connections(self, n, timeout=5.0):
        """Waits until n connections have been accepted in all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.accepted < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("scripted broker: %d connection(s), wanted %d" % (
                        self.accepted, n), pytrace=False)
                self._cond.wait(left)

    # -- serving
    def _accept_loop(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._cond:
                n = self.accepted
                self.accepted += 1
                self._conns[n] = c
                self._cond.notify_all()
            t = threading.Thread(target=self._serve, args=(n, c), daemon=True)
            self._threads.append(t)
            t.start()

    def _send(self, n, c, data):
        with self._cond:
            self.sent.append((n, data))
        try:
            c.sendall(data)
        except OSError:
            pass

    def _suback_code(self, topic, qos):
        if callable(self.suback):
            return self.suback(topic, qos)
        for pattern, code in self.suback:
            if re.fullmatch(pattern, topic):
                return code
        return qos

    def _answer(self, n, c, p):
        """The reply to p, or None; False ends the connection."""
        if p.kind == CONNECT:
            if self.connack is None:
                return None
            c_ok = self.connack == 0
            self._send(n, c, packet(CONNACK, bytes([0, self.connack])))
            return None if c_ok else False
        if p.kind == SUBSCRIBE:
            codes = [self._suback_code(f, q) for f, q in p.filters]
            if None in codes:
                return None
            return packet(SUBACK, struct.pack("!H", p.mid) + bytes(codes))
        if p.kind == UNSUBSCRIBE:
            return packet(UNSUBACK, struct.pack("!H", p.mid))
        if p.kind == PUBLISH and p.qos == 1:
            return packet(PUBACK, struct.pack("!H", p.mid))
        if p.kind == PUBLISH and p.qos == 2:
            return packet(PUBREC, struct.pack("!H", p.mid))
        if p.kind == PUBREL:
            return packet(PUBCOMP, struct.pack("!H", p.mid))
        if p.kind == PINGREQ:
            return packet(PINGRESP)
        if p.kind == DISCONNECT:
            return False
        return None

    def _serve(self, n, c):
        reader = _Reader()
        try:
            while not self._stop:
                r, _, _ = select.select([c], [], [], 0.2)
                if not r:
                    continue
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    frames = reader.feed(data)
                except ValueError:
                    return  # a broken length: nothing more can be parsed
                for first, body in frames:
                    p = Packet(first, body, n)
                    with self._cond:
                        self.packets.append(p)
                        self._cond.notify_all()
                    if p.malformed:
                        return
                    if self.silent:
                        continue
                    reply = self._answer(n, c, p)
                    if reply is False:
                        return
                    if reply:
                        self._send(n, c, reply)
        finally:
            with self._cond:
                self._conns.pop(n, None)
                self._cond.notify_all()
            c.close()


@pytest.fixture
def mqtt_peer():
    """mqtt_peer(connack=0, suback=None) -> ScriptedBroker; all closed at teardown."""
    made = []

    def make(**kw):
        b = ScriptedBroker(**kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()
