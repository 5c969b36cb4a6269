"""test_w800_ws.py - W800 schemes 6-10 (MQTT over WebSocket and WebSocket
Secure) through the daemon's WebSocket relay (src/net/ws.c), against
mosquitto's websockets listeners, plus a scripted WebSocket server for what
mosquitto never sends (fragmented frames, pings, a close frame).

mosquitto 2.0.11 binds its websockets listeners to every interface whatever
the configuration says, so this whole module runs in a private network
namespace (NetNamespace): the brokers, the daemons and the paho peers it
starts see only their own loopback."""

import base64
import hashlib
import os
import re
import socket
import struct
import threading

import pytest

from conftest import wait_for
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, ERROR, OK, PROMPT, connect, connected_urc, ok, private_network, sntp_sync, start_w800,
    subrecv, tls_listener, w8_certs, w8_peers)


@pytest.fixture
def ws_broker(mosquitto, w8_certs):
    """plain (peers), ws, wss, and wss requiring a client certificate."""
    return mosquitto(listeners=[
        {"name": "plain"},
        {"name": "ws", "protocol": "websockets"},
        tls_listener(w8_certs, "wss", protocol="websockets"),
        tls_listener(w8_certs, "mwss", require_cert=True, protocol="websockets"),
    ])


def certs_conf(certs, ca="ca.crt", client=True):
    conf = {"ca_file": str(certs / ca)}
    if client:
        conf.update(client_cert=str(certs / "client.crt"), client_key=str(certs / "client.key"))
    return conf


def roundtrip(port, broker, peers, tag, size=5):
    peer = peers(broker.port_of("plain"), "from/%s" % tag)
    ok(port, 'AT+MQTTSUB=0,"to/%s",1' % tag)
    up = bytes(i % 256 for i in range(size))
    port.cmd('AT+MQTTPUBRAW=0,"from/%s",%d,1,0' % (tag, size))
    port.expect(PROMPT)
    port.send(up)
    port.expect(b"+MQTTPUB:OK\r\n")
    assert peer.wait_msgs(1) == [("from/%s" % tag, up, False)]
    down = bytes(255 - i % 256 for i in range(size * 3))
    peer.publish("to/%s" % tag, down)
    port.expect(subrecv("to/%s" % tag, down), timeout=10)


def test_the_brokers_are_isolated(ws_broker, private_network):
    """The all-interfaces websockets listener lives in our namespace only."""
    assert os.stat("/proc/%d/ns/net" % ws_broker.proc.pid).st_ino != private_network


def test_scheme_6_websocket(start_w800, ws_broker, w8_peers):
    _, port = start_w800()
    connect(port, ws_broker.port_of("ws"), scheme=6, path="mqtt")
    roundtrip(port, ws_broker, w8_peers, "s6")
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,6,6,"127.0.0.1","%d","/mqtt",1\r\n' % ws_broker.port_of("ws") + OK)


def test_scheme_6_empty_path_and_large_payloads(start_w800, ws_broker, w8_peers):
    # one URC larger than the default 64 KiB TX queue would overflow it
    _, port = start_w800(module={"tx_buffer": 1 << 20})
    connect(port, ws_broker.port_of("ws"), scheme=6, path="")  # the URI path is "/"
    roundtrip(port, ws_broker, w8_peers, "big", size=5760)
    peer = w8_peers(ws_broker.port_of("plain"))
    huge = os.urandom(300000)
    peer.publish("to/big", huge)
    port.expect(subrecv("to/big", huge), timeout=10)


def unix_stream_paths(pid):
    """Bound paths of the connected unix stream sockets process pid holds
    (an accepted socket shows its listener's path, even once unlinked)."""
    mine = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            mine.add(target[8:-1])
    with open("/proc/net/unix") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    # Num RefCount Protocol Flags Type St Inode [Path]; type 0001 stream, st 03 connected
    return [r[7] for r in rows
            if len(r) > 7 and r[4] == "0001" and r[5] == "03" and r[6] in mine]


def test_relay_reaches_libmosquitto_over_a_private_unix_socket(start_w800, ws_broker, w8_peers,
                                                              tmp_path, monkeypatch):
    """libmosquitto talks to the relay over a unix socket pair (not loopback
    TCP), bound in a fresh directory under $TMPDIR that is gone as soon as
    the connection is accepted; an unusable $TMPDIR falls back to /tmp."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    d, port = start_w800()
    assert unix_stream_paths(d.proc.pid) == []
    connect(port, ws_broker.port_of("ws"), scheme=6, path="mqtt")
    [path] = unix_stream_paths(d.proc.pid)  # the relay's end of libmosquitto's connection
    assert re.fullmatch(re.escape(str(tmp)) + r"/vmoduled-ws\.\w{6}/mqtt", path), path
    assert list(tmp.iterdir()) == []
    roundtrip(port, ws_broker, w8_peers, "unix")
    ok(port, "AT+MQTTCLEAN=0")
    wait_for(lambda: unix_stream_paths(d.proc.pid) == [], what="the relay's socket closed")
    assert list(tmp.iterdir()) == []

    d.stop()
    monkeypatch.setenv("TMPDIR", str(tmp / "missing"))
    d2, port2 = start_w800()
    connect(port2, ws_broker.port_of("ws"), scheme=6, path="mqtt")
    [path] = unix_stream_paths(d2.proc.pid)
    assert path.startswith("/tmp/vmoduled-ws."), path
    roundtrip(port2, ws_broker, w8_peers, "fallback")
    assert "cannot create a directory in %s" % (tmp / "missing") in d2.log_text()


def test_scheme_7_wss_without_verification(start_w800, ws_broker, w8_peers):
    _, port = start_w800()
    connect(port, ws_broker.port_of("wss"), scheme=7, path="mqtt")
    roundtrip(port, ws_broker, w8_peers, "s7", size=3000)


def test_scheme_8_wss_verifying_the_server(start_w800, ws_broker, w8_peers, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs, client=False))
    ok(port, 'AT+MQTTUSERCFG=0,8,"w8","","",0,0,"mqtt"')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % ws_broker.port_of("wss"))
    port.expect(DISC + ERROR)  # no time yet: the certificate cannot be checked
    sntp_sync(port)
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % ws_broker.port_of("wss"))
    port.expect(connected_urc(8, "localhost", ws_broker.port_of("wss"), "/mqtt") + OK)
    roundtrip(port, ws_broker, w8_peers, "s8")


def test_scheme_8_with_a_wrong_ca_fails(start_w800, ws_broker, w8_certs):
    d, port = start_w800(**certs_conf(w8_certs, ca="other.crt", client=False))
    sntp_sync(port)
    ok(port, 'AT+MQTTUSERCFG=0,8,"w8","","",0,0,"mqtt"')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % ws_broker.port_of("wss"))
    port.expect(DISC + ERROR)
    d.wait_log("certificate of localhost")


def test_scheme_9_client_certificate(start_w800, ws_broker, w8_peers, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs, ca="other.crt"))
    connect(port, ws_broker.port_of("mwss"), scheme=9, path="mqtt")
    roundtrip(port, ws_broker, w8_peers, "s9")


def test_scheme_9_without_a_client_certificate_is_refused(start_w800, ws_broker):
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,9,"w8","","",0,0,"mqtt"')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % ws_broker.port_of("mwss"))
    port.expect(DISC + ERROR)


def test_scheme_10_both(start_w800, ws_broker, w8_peers, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs))
    sntp_sync(port)
    connect(port, ws_broker.port_of("mwss"), scheme=10, path="mqtt", host="localhost")
    roundtrip(port, ws_broker, w8_peers, "s10")


def test_ws_to_a_port_that_is_not_websocket(start_w800, ws_broker):
    d, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,6,"w8","","",0,0,"mqtt"')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % ws_broker.port_of("plain"))
    port.expect(DISC + ERROR)


def test_ws_last_will_clean_and_reconnect(start_w800, ws_broker, w8_peers):
    peer = w8_peers(ws_broker.port_of("plain"), "w8/will")
    _, port = start_w800(reconnect_interval_ms=200)
    ws_port = ws_broker.port_of("ws")
    # CLEAN: the DISCONNECT goes through the relay, no will
    connect(port, ws_port, scheme=6, client_id="tidy", path="mqtt",
            conncfg='60,0,"w8/will","unexpected",0,0')
    ok(port, "AT+MQTTCLEAN=0")
    wait_for(lambda: "Client tidy disconnected." in ws_broker.log_text(), 5,
             "a clean DISCONNECT at the broker")
    # Wi-Fi lost: the relay is cut, the broker publishes the will
    connect(port, ws_port, scheme=6, client_id="willy", path="mqtt", reconnect=1,
            conncfg='60,0,"w8/will","gone",1,0')
    port.cmd("AT+CWQAP")
    port.expect(OK + b"WIFI DISCONNECT\r\n" + DISC)
    assert peer.wait_msgs(1) == [("w8/will", b"gone", False)]
    port.cmd('AT+CWJAP="lab","secret123"')
    got = port.read_until(connected_urc(6, "127.0.0.1", ws_port, "/mqtt"), timeout=10)
    assert got.endswith(connected_urc(6, "127.0.0.1", ws_port, "/mqtt"))


def test_ws_broker_restart(start_w800, ws_broker, w8_peers):
    _, port = start_w800(reconnect_interval_ms=200)
    connect(port, ws_broker.port_of("wss"), scheme=7, path="mqtt")
    ok(port, 'AT+MQTTSUB=0,"r",1')
    ws_broker.kill()
    port.expect(DISC)
    ws_broker.start()
    urc = connected_urc(7, "127.0.0.1", ws_broker.port_of("wss"), "/mqtt")
    got = port.read_until(urc, timeout=10)
    assert got[:-len(urc)] == DISC * (len(got[:-len(urc)]) // len(DISC))
    w8_peers(ws_broker.port_of("plain")).publish("r", b"again")
    port.expect(subrecv("r", b"again"))


# ---------------------------------------------------------------- a scripted server


GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


class ScriptedServer(threading.Thread):
    """A WebSocket server that plays one script against the relay and
    records what it saw; failures are re-raised by result()."""

    def __init__(self):
        super().__init__(daemon=True)
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.request = b""
        self.frames = []  # (opcode, masked, payload) from the client
        self.error = None
        self.done = threading.Event()

    def recv_exact(self, s, n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError("client closed")
            buf += chunk
        return buf

    def read_frame(self, s):
        b0, b1 = self.recv_exact(s, 2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self.recv_exact(s, 2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self.recv_exact(s, 8))[0]
        mask = self.recv_exact(s, 4) if b1 & 0x80 else b""
        data = bytearray(self.recv_exact(s, n))
        for i in range(len(data)):
            data[i] ^= mask[i % 4] if mask else 0
        f = (b0 & 0x0F, bool(mask), bytes(data))
        self.frames.append(f)
        return f

    def run(self):
        try:
            s, _ = self.srv.accept()
            s.settimeout(10)
            while not self.request.endswith(b"\r\n\r\n"):
                self.request += s.recv(1)
            key = [l.split(b":", 1)[1].strip() for l in self.request.split(b"\r\n")
                   if l.lower().startswith(b"sec-websocket-key:")][0]
            accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
            s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                      b"\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")
            op, masked, connect_pkt = self.read_frame(s)
            assert op == 2 and masked and connect_pkt[0] == 0x10, (op, masked, connect_pkt)
            # CONNACK in three fragments with a ping in the middle
            s.sendall(frame(2, b"\x20", fin=False) + frame(9, b"hb") +
                      frame(0, b"\x02", fin=False) + frame(0, b"\x00\x00"))
            assert self.read_frame(s) == (10, True, b"hb")  # the pong, masked
            # a PUBLISH with a 16-bit length, then one split at every byte
            topic = b"fake/t"
            body = bytes(range(256)) + b"tail"
            pub = b"\x30" + self.remaining(2 + len(topic) + len(body)) + \
                struct.pack(">H", len(topic)) + topic + body
            s.sendall(frame(2, pub))
            small = b"\x30\x09\x00\x06fake/tz"
            s.sendall(frame(2, small[:1], fin=False) + b"".join(
                frame(0, small[i:i + 1], fin=i == len(small) - 1) for i in range(1, len(small))))
            # the server closes: the client answers with the same code
            s.sendall(frame(8, struct.pack(">H", 1001) + b"bye"))
            assert self.read_frame(s) == (8, True, struct.pack(">H", 1001))
            assert s.recv(1) == b""  # then its FIN
            s.close()
        except Exception as e:  # reported by result()
            self.error = e
        finally:
            self.done.set()

    @staticmethod
    def remaining(n):
        out = b""
        while True:
            b = n % 128
            n //= 128
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    def result(self, timeout=10):
        assert self.done.wait(timeout), "the scripted server did not finish"
        self.srv.close()
        if self.error:
            raise self.error


def test_fragments_ping_and_close_from_the_server(start_w800):
    server = ScriptedServer()
    server.start()
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,6,"frag","","",0,0,"mqtt"')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,0' % server.port)
    port.expect(connected_urc(6, "127.0.0.1", server.port, "/mqtt", reconnect=0) + OK)
    port.expect(subrecv("fake/t", bytes(range(256)) + b"tail"))
    port.expect(subrecv("fake/t", b"z"))
    port.expect(DISC)
    server.result()
    req = server.request.decode("latin-1")
    assert req.startswith("GET /mqtt HTTP/1.1\r\n")
    for header in ("Host: 127.0.0.1:%d" % server.port, "Upgrade: websocket",
                   "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                   "Sec-WebSocket-Protocol: mqtt"):
        assert "\r\n%s\r\n" % header in req, req
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,3,6,"127.0.0.1","%d","/mqtt",0\r\n' % server.port + OK)
