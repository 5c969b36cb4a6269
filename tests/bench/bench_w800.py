#!/usr/bin/python3
"""bench_w800.py - the w800 dialect's WebSocket transport against plain TCP,
for run.py (`make bench`).

w800_ws_vs_tcp: one w800 module (unpaced, echo off) and one mosquitto with a
  plain and a websockets listener. The module alternates between scheme 1
  (MQTT over TCP) and scheme 6 (MQTT over WebSocket through the daemon's
  relay, src/net/ws.c) on the same broker, ROUNDS times, and measures for
  QoS 0 payloads of 64 B and 1 KiB:
    down: mosquitto_pub floods N messages on a topic the module subscribed;
          rate = N / time until the last +MQTTSUBRECV left the PTY;
    up:   N sequential AT+MQTTPUB (64 B) / AT+MQTTPUBRAW (1 KiB) through the
          PTY; rate = N / time until a paho subscriber has all N.
  Figure per case: median WebSocket rate / median TCP rate. Also printed:
  the CPU time daemon + broker spend per downlink message.

  broker alone: the same downlink flood into a bare subscriber (raw socket,
  MQTT over TCP vs over WebSocket, no daemon) with the broker's CPU per
  message. mosquitto's websockets listener (libwebsockets, TCP_NODELAY, one
  send per message) costs more per message than its plain one (whose
  Nagle-coalesced writes reach the reader in few segments).

  relay alone: the module against ScriptedPeer, which writes the PUBLISH
  packets back to back (WebSocket frames or plain), so the figure is the
  module's own transport cost without mosquitto's per-message segments.

  Verdict (target >= 80 %): the relay-alone downlink and the uplink through
  mosquitto. The downlink through mosquitto is printed, not judged: with the
  broker, publisher, PTY reader and daemon on one small machine it follows
  the broker's websockets listener (compare broker alone) more than the
  transport.

mosquitto 2.0.11 binds websockets listeners to every interface, so the
benchmark runs in a private network namespace (needs CAP_SYS_ADMIN, as the
integration tests do); without one it reports the benchmark as failed rather
than open a port to the network.

Wiring: run.py calls register(<its own module object>), or run this file:
/usr/bin/python3 tests/bench/bench_w800.py [w800_ws_vs_tcp] [-n N]."""

import base64
import ctypes
import hashlib
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as paho

HERE = os.path.dirname(os.path.abspath(__file__))
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
MOSQUITTO_PUB = "/usr/bin/mosquitto_pub"
CLONE_NEWNET = 0x40000000
OK = b"\r\nOK\r\n"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
ROUNDS = 5


class NetNamespace:
    """This process (and what it starts) in a fresh network namespace."""

    def __enter__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        if self.libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            os.close(self.orig)
            raise OSError(err, os.strerror(err))
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return self

    def __exit__(self, *exc):
        self.libc.setns(self.orig, CLONE_NEWNET)
        os.close(self.orig)
        return False


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, run, work):
        self.port, self.ws_port = free_port(), free_port()
        conf = os.path.join(work, "mosquitto.conf")
        with open(conf, "w") as f:
            # max_queued_messages 0: mosquitto drops QoS 0 messages for a client
            # that falls 1000 behind; a flood must arrive whole to be timed
            f.write("user root\npersistence false\nlog_dest none\nallow_anonymous true\n"
                    "max_queued_messages 0\n"
                    "listener %d 127.0.0.1\nlistener %d 127.0.0.1\nprotocol websockets\n"
                    % (self.port, self.ws_port))
        self.proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        for p in (self.port, self.ws_port):
            while True:
                try:
                    socket.create_connection(("127.0.0.1", p), 0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        self.stop()
                        raise run.BenchError("mosquitto did not start")
                    time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def expect(run, fd, want, timeout=10.0):
    got = run.read_until(fd, want, timeout)
    if got != want:
        raise run.BenchError(f"expected {want!r}, got {got[-200:]!r}")


def command(run, fd, line, reply=OK, timeout=10.0):
    os.write(fd, line + b"\r\n")
    expect(run, fd, reply, timeout)


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            time.sleep(0.0005)
            continue
        view = view[n:]


def connect(run, fd, scheme, port):
    command(run, fd, b'AT+MQTTUSERCFG=0,%d,"bench","","",0,0,"mqtt"' % scheme)
    path = b"/mqtt" if scheme >= 6 else b""
    command(run, fd, b'AT+MQTTCONN=0,"127.0.0.1",%d,0' % port,
            b'+MQTTCONNECTED:0,%d,"127.0.0.1","%d","%s",0\r\n' % (scheme, port, path) + OK)
    command(run, fd, b'AT+MQTTSUB=0,"bench/down",0')


def mosquitto_flood(port, payload, n):
    """Starts mosquitto_pub flooding n messages on bench/down; returns a
    function that waits for it to finish."""
    pub = subprocess.Popen([MOSQUITTO_PUB, "-h", "127.0.0.1", "-p", str(port), "-t", "bench/down",
                            "-q", "0", "-l"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    feeder = threading.Thread(target=lambda: (pub.stdin.write((payload + b"\n") * n),
                                              pub.stdin.close()), daemon=True)
    feeder.start()

    def wait():
        feeder.join(10)
        pub.wait(10)
    return wait


def downlink(run, fd, size, n, flood):
    """flood(payload, n) sends n messages to the module (and returns a
    waiter); returns msg/s out of the PTY, from the first byte to the last."""
    payload = b"d" * size
    urc = b'+MQTTSUBRECV:0,"bench/down",%d,' % size + payload + b"\r\n"
    total = len(urc) * n
    run.drain(fd)
    got = bytearray()
    finish = flood(payload, n)
    t0 = None
    deadline = time.monotonic() + 120
    while len(got) < total and time.monotonic() < deadline:
        if not select.select([fd], [], [], 3.0)[0]:
            break  # nothing for 3 s: the rest is lost
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            continue
        if t0 is None:
            t0 = time.perf_counter()
        got += chunk
    elapsed = time.perf_counter() - (t0 or 0)
    finish()
    received = got.count(b'+MQTTSUBRECV:0,"bench/down",')
    if received != n or bytes(got[:len(urc)]) != urc:
        raise run.BenchError(f"downlink {size} B: {received} of {n} messages arrived")
    return n / elapsed


def mqtt_remaining_length(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mqtt_packet(kind, body):
    return bytes([kind]) + mqtt_remaining_length(len(body)) + body


def mqtt_str(s):
    return len(s).to_bytes(2, "big") + s


def server_frame(packet, ws):
    """What a broker sends for one packet: as is, or one unmasked binary frame."""
    if not ws:
        return packet
    n = len(packet)
    hdr = bytes([0x82, n]) if n < 126 else bytes([0x82, 126]) + n.to_bytes(2, "big")
    return hdr + packet


class RawSubscriber:
    """The broker-alone reference: a subscriber that speaks MQTT 3.1.1 (over
    TCP, or over WebSocket like the relay: `Sec-WebSocket-Protocol: mqtt`,
    masked frames) on a bare socket and reads in 1 MiB chunks, so the reader
    costs next to nothing and the figure is what the broker itself allows.
    A Python MQTT client (paho) would measure its own per-message callbacks."""

    def __init__(self, run, port, ws):
        self.run, self.ws = run, ws
        self.s = socket.create_connection(("127.0.0.1", port), 5)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        if ws:
            self.s.sendall(b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
                           % port)
            while b"\r\n\r\n" not in self.buf:
                self._recv()
            head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise run.BenchError(f"websocket upgrade refused: {head[:80]!r}")
            self.buf = bytearray(rest)
        self.send(mqtt_packet(0x10, mqtt_str(b"MQTT") + b"\x04\x02\x00\x3c"
                              + mqtt_str(b"bench-raw-%d" % time.monotonic_ns())))
        self.send(mqtt_packet(0x82, b"\x00\x01" + mqtt_str(b"bench/down") + b"\x00"))
        want = len(self.frame(b"\x20\x02\x00\x00")) + len(self.frame(b"\x90\x03\x00\x01\x00"))
        while len(self.buf) < want:  # CONNACK + SUBACK
            self._recv()
        self.buf.clear()

    def frame(self, packet):
        return server_frame(packet, self.ws)

    def send(self, packet):
        if self.ws:  # client frames are masked; a zero mask keeps the bytes
            n = len(packet)
            hdr = bytes([0x82, 0x80 | n]) if n < 126 else bytes([0x82, 0xFE]) + n.to_bytes(2, "big")
            packet = hdr + b"\0\0\0\0" + packet
        self.s.sendall(packet)

    def _recv(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise self.run.BenchError("the broker closed the raw subscriber")
        self.buf += chunk

    def flood(self, port, size, n):
        """mosquitto_pub floods n messages; returns msg/s, first byte to last."""
        payload = b"r" * size
        one = self.frame(mqtt_packet(0x30, mqtt_str(b"bench/down") + payload))
        total = len(one) * n
        finish = mosquitto_flood(port, payload, n)
        self.s.settimeout(5)
        got, t0 = 0, None
        try:
            while got < total:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    break
                if t0 is None:
                    t0 = time.perf_counter()
                got += len(chunk)
                if len(self.buf) < len(one) * 2:
                    self.buf += chunk[:len(one) * 2]
        except socket.timeout:
            pass
        elapsed = time.perf_counter() - (t0 or 0)
        finish()
        # the byte count is exact only when no message is missing and each came
        # in a frame of its own (the first is compared byte for byte)
        if got != total or bytes(self.buf[:len(one)]) != one:
            raise self.run.BenchError(f"broker alone {size} B: {got} of {total} bytes "
                                      f"(first {bytes(self.buf[:16])!r})")
        self.buf.clear()
        return n / elapsed

    def close(self):
        self.s.close()


class ScriptedPeer:
    """The relay-alone reference: a peer on 127.0.0.1 that speaks just enough
    MQTT 3.1.1 (CONNACK, SUBACK, PINGRESP), plain or over WebSocket (it
    answers the Upgrade and unmasks the module's frames), and on blast()
    writes n PUBLISH packets back to back in one sendall(). The module then
    gets them in large segments whatever the transport, as it does from the
    broker's plain listener, so the ratio is the transport's own cost
    (framing, the relay hop, libmosquitto's reads) without mosquitto's
    one-segment-per-message WebSocket sends."""

    def __init__(self, ws):
        self.ws, self.conn = ws, None
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def close(self):
        self.ls.close()
        if self.conn:
            self.conn.close()

    def _serve(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(c,), daemon=True).start()

    def frame(self, packet):
        return server_frame(packet, self.ws)

    def _session(self, c):
        buf, mqtt = bytearray(), bytearray()

        def need(k):
            while len(buf) < k:
                chunk = c.recv(65536)
                if not chunk:
                    raise EOFError
                buf.extend(chunk)

        def take(k):
            need(k)
            out = bytes(buf[:k])
            del buf[:k]
            return out

        def mqtt_bytes(k):  # k bytes of the MQTT stream (unframed)
            while len(mqtt) < k:
                if not self.ws:
                    need(1)
                    mqtt.extend(buf)
                    buf.clear()
                    continue
                b0, b1 = take(2)
                n = b1 & 0x7F
                n = int.from_bytes(take(2 if n == 126 else 8), "big") if n >= 126 else n
                mask = take(4) if b1 & 0x80 else b"\0\0\0\0"
                body = take(n)
                if b0 & 0x0F == 0x2 or b0 & 0x0F == 0x0:
                    mqtt.extend(x ^ mask[i & 3] for i, x in enumerate(body))
            out = bytes(mqtt[:k])
            del mqtt[:k]
            return out

        try:
            if self.ws:
                while b"\r\n\r\n" not in buf:
                    need(len(buf) + 1)
                head, _, rest = bytes(buf).partition(b"\r\n\r\n")
                buf[:] = rest
                key = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
                       if ln.lower().startswith(b"sec-websocket-key:")][0]
                accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                          b"\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
            while True:
                kind = mqtt_bytes(1)[0]
                n, shift = 0, 0
                while True:
                    b = mqtt_bytes(1)[0]
                    n |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                body = mqtt_bytes(n)
                if kind == 0x10:  # CONNECT
                    self.conn = c
                    c.sendall(self.frame(b"\x20\x02\x00\x00"))
                elif kind == 0x82:  # SUBSCRIBE: grant QoS 0 to each filter
                    i, granted = 2, b""
                    while i < len(body):
                        i += 2 + int.from_bytes(body[i:i + 2], "big") + 1
                        granted += b"\x00"
                    c.sendall(self.frame(mqtt_packet(0x90, body[:2] + granted)))
                elif kind == 0xC0:  # PINGREQ
                    c.sendall(self.frame(b"\xd0\x00"))
                elif kind == 0xE0:  # DISCONNECT
                    break
        except (EOFError, OSError):
            pass
        if self.conn is c:
            self.conn = None
        c.close()

    def blast(self, payload, n):
        """flood() for downlink(): n PUBLISH packets in one write."""
        data = self.frame(mqtt_packet(0x30, mqtt_str(b"bench/down") + payload)) * n
        sender = threading.Thread(target=self.conn.sendall, args=(data,), daemon=True)
        sender.start()
        return lambda: sender.join(30)


def broker_alone(run, broker, size, n, transport):
    """(msg/s, broker CPU us/msg) of a raw subscriber on one transport."""
    sub = RawSubscriber(run, broker.ws_port if transport == "ws" else broker.port,
                        transport == "ws")
    try:
        c0 = cpu_seconds(broker.proc.pid)
        rate = sub.flood(broker.port, size, n)
        return rate, (cpu_seconds(broker.proc.pid) - c0) / n * 1e6
    finally:
        sub.close()


class Subscriber:
    """A paho subscriber counting bench/up messages."""

    def __init__(self, port, n, size):
        self.n, self.size, self.count, self.bad = n, size, 0, 0
        self.done, self.ready = threading.Event(), threading.Event()
        self.c = paho.Client(client_id="bench-sub-%d" % time.monotonic_ns(),
                             protocol=paho.MQTTv311)
        self.c.on_connect = lambda c, u, f, rc: c.subscribe("bench/up", 0)
        self.c.on_subscribe = lambda c, u, mid, q: self.ready.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()

    def _on_message(self, c, u, msg):
        self.count += 1
        self.bad += len(msg.payload) != self.size
        if self.count == self.n:
            self.done.set()

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def uplink(run, fd, port, size, n):
    """n sequential publishes through the PTY; returns msg/s at a subscriber."""
    sub = Subscriber(port, n, size)
    try:
        if not sub.ready.wait(10):
            raise run.BenchError("the subscriber did not subscribe")
        payload = b"u" * size
        t0 = time.perf_counter()
        if size <= 200:
            line = b'AT+MQTTPUB=0,"bench/up","' + payload + b'",0,0\r\n'
            for _ in range(n):
                os.write(fd, line)
                expect(run, fd, OK)
        else:
            line = b'AT+MQTTPUBRAW=0,"bench/up",%d,0,0\r\n' % size
            for _ in range(n):
                os.write(fd, line)
                expect(run, fd, OK + b"\r\n>")
                write_all(fd, payload)
                expect(run, fd, b"+MQTTPUB:OK\r\n")
        if not sub.done.wait(60):
            raise run.BenchError(f"uplink {size} B: the subscriber got {sub.count} of {n}")
        elapsed = time.perf_counter() - t0
        if sub.bad:
            raise run.BenchError(f"uplink {size} B: {sub.bad} messages of the wrong size")
        return n / elapsed
    finally:
        sub.close()


def bench_w800_ws_vs_tcp(run, args):
    n_down, n_up = max(args.n, 1000) * 15, max(args.n, 200)
    cases = [("down", 64), ("down", 1024), ("up", 64), ("up", 1024)]
    rates = {(d, s, t): [] for d, s in cases for t in ("tcp", "ws")}
    cpu = {("down", s, t): [] for s in (64, 1024) for t in ("tcp", "ws")}  # downlink us/msg
    alone = {("down", s, t): [] for s in (64, 1024) for t in ("tcp", "ws")}  # bare subscriber msg/s
    alone_cpu = {("down", s, t): [] for s in (64, 1024) for t in ("tcp", "ws")}  # broker us/msg
    relay = {("down", s, t): [] for s in (64, 1024) for t in ("tcp", "ws")}  # scripted peer msg/s
    relay_cpu = {("down", s, t): [] for s in (64, 1024) for t in ("tcp", "ws")}  # daemon us/msg
    try:
        ns = NetNamespace()
        ns.__enter__()
    except OSError as e:
        raise run.BenchError(f"no private network namespace for mosquitto's websockets "
                             f"listener ({e}); run as root") from None
    try:
        with tempfile.TemporaryDirectory(prefix="vmodule-bench-w800.") as work:
            broker = Broker(run, work)
            link = os.path.join(work, "ttyW8")
            daemon = run.Daemon(run.vmoduled_path(), [{
                "name": "w8bench", "dialect": "w800", "pty_link": link, "baud": 0,
                "echo": False, "boot_ms": 0, "tx_buffer": 64 << 20,
                "w800": {"wifi": {"access_points": [{"ssid": "lab", "password": "pw"}],
                                  "auto_join": "lab", "join_ms": 1}}}], work)
            fd = None
            try:
                daemon.wait_linked()
                fd = run.open_serial(link)
                run.sync(fd)
                time.sleep(0.1)  # the auto-join URCs
                run.drain(fd)
                order = [("tcp", 1, broker.port), ("ws", 6, broker.ws_port)]
                for _ in range(ROUNDS):
                    order.reverse()  # neither transport always runs first
                    for transport, scheme, port in order:
                        connect(run, fd, scheme, port)
                        for d, size in cases:
                            if d == "up":
                                rates[(d, size, transport)].append(
                                    uplink(run, fd, broker.port, size, n_up))
                                continue
                            c0 = cpu_seconds(daemon.proc.pid) + cpu_seconds(broker.proc.pid)
                            rates[(d, size, transport)].append(downlink(
                                run, fd, size, n_down,
                                lambda p, n: mosquitto_flood(broker.port, p, n)))
                            c1 = cpu_seconds(daemon.proc.pid) + cpu_seconds(broker.proc.pid)
                            cpu[("down", size, transport)].append((c1 - c0) / n_down * 1e6)
                        command(run, fd, b"AT+MQTTCLEAN=0")
                # the same flood into a bare subscriber: what the broker
                # itself allows over WebSocket, with no relay involved
                for _ in range(ROUNDS):
                    order.reverse()
                    for transport, _scheme, _port in order:
                        for size in (64, 1024):
                            rate, us = broker_alone(run, broker, size, n_down, transport)
                            alone[("down", size, transport)].append(rate)
                            alone_cpu[("down", size, transport)].append(us)
                # the daemon against a peer that sends the packets back to
                # back: the transport's own cost, with no broker involved
                peers = {"tcp": ScriptedPeer(False), "ws": ScriptedPeer(True)}
                try:
                    for _ in range(ROUNDS):
                        order.reverse()
                        for transport, scheme, _port in order:
                            peer = peers[transport]
                            connect(run, fd, scheme, peer.port)
                            for size in (64, 1024):
                                c0 = cpu_seconds(daemon.proc.pid)
                                relay[("down", size, transport)].append(
                                    downlink(run, fd, size, n_down, peer.blast))
                                relay_cpu[("down", size, transport)].append(
                                    (cpu_seconds(daemon.proc.pid) - c0) / n_down * 1e6)
                            command(run, fd, b"AT+MQTTCLEAN=0")
                finally:
                    for peer in peers.values():
                        peer.close()
            finally:
                if fd is not None:
                    os.close(fd)
                rc = daemon.stop()
                broker.stop()
            if rc != 0:
                raise run.BenchError(f"vmoduled exited with status {rc}:\n" + "\n".join(daemon.log))
    finally:
        ns.__exit__(None, None, None)
    def ratio(table, key):
        return statistics.median(table[key + ("ws",)]) / statistics.median(table[key + ("tcp",)])

    def line(table, keys, cpu_table=None, cpu_name=""):
        out = []
        for key in keys:
            tcp, ws = (statistics.median(table[key + (t,)]) for t in ("tcp", "ws"))
            text = f"{' '.join(map(str, key))}B tcp {tcp:.0f} ws {ws:.0f} msg/s = {100 * ws / tcp:.0f}%"
            if cpu_table and key + ("tcp",) in cpu_table:
                c = [statistics.median(cpu_table[key + (t,)]) for t in ("tcp", "ws")]
                text += f", {cpu_name} CPU tcp {c[0]:.1f} ws {c[1]:.1f} us/msg"
            out.append(text)
        return "; ".join(out)

    # The verdict: the transport's own downlink cost (relay alone) and the
    # uplink through the broker. The downlink through mosquitto is printed
    # but bounded by mosquitto's WebSocket listener (see broker alone).
    verdict = {f"down {s}B": ratio(relay, ("down", s)) for s in (64, 1024)}
    verdict.update({f"up {s}B": ratio(rates, ("up", s)) for s in (64, 1024)})
    args.over_target |= min(verdict.values()) < 0.8
    return (f"bench w800_ws_vs_tcp (QoS0, median of {ROUNDS}; down {n_down} msgs, up {n_up}): "
            "WebSocket/TCP " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in verdict.items())
            + " (target >= 80%; down: relay alone, up: through mosquitto)"
            + "\n  through mosquitto: " + line(rates, cases, cpu, "daemon+broker")
            + "\n  broker alone (bare subscriber, no daemon): "
            + line(alone, [("down", 64), ("down", 1024)], alone_cpu, "broker")
            + "\n  relay alone (scripted peer sending back to back, no broker): "
            + line(relay, [("down", 64), ("down", 1024)], relay_cpu, "daemon"))


def register(run):
    """Registers the benchmark with run.py's @bench."""
    def ws_vs_tcp(args):
        return bench_w800_ws_vs_tcp(run, args)

    ws_vs_tcp.__name__ = "bench_w800_ws_vs_tcp"
    run.bench(ws_vs_tcp)


def main():
    sys.path.insert(0, HERE)
    import run  # pylint: disable=import-outside-toplevel
    register(run)
    if not any(a in run.BENCHES for a in sys.argv[1:]):  # default: only ours
        sys.argv += ["w800_ws_vs_tcp"]
    return run.main()


if __name__ == "__main__":
    sys.exit(main())
