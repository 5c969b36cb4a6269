"""test_mqtt_session.py - the MQTT session layer (src/net/mqtt.c) against a real
mosquitto, through the standalone probe tests/unit/mqtt_probe.c.

The probe is built by hand for now (see its file-top comment); this file builds
nothing. Its path comes from $MQTT_PROBE (default build/tests/mqtt_probe); point
it at an AddressSanitizer build to run the same cases under ASan/UBSan.

Every test starts its own mosquitto on 127.0.0.1 with free ports (the fixture
below; it does not use conftest.py). Covered: plain TCP, TLS-PSK with the right
and wrong key/identity, X.509 with host-name checks against the real name while
libmosquitto only sees the numeric address, client certificates, SNI and ALPN on
the wire, CONNACK refusal codes, DNS/TCP/timeout classification, reuse of one
session object for reconnects, link loss, no busy-spin during a slow handshake,
and that secrets never reach the log.
"""
import os
import resource
import queue
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROBE = os.environ.get("MQTT_PROBE", str(REPO / "build" / "tests" / "mqtt_probe"))
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

if not os.access(PROBE, os.X_OK):
    pytest.skip(f"mqtt probe not found at {PROBE}: build tests/unit/mqtt_probe.c (see its header) "
                "or set MQTT_PROBE", allow_module_level=True)
if not os.access(MOSQUITTO, os.X_OK):
    pytest.skip("mosquitto broker not installed", allow_module_level=True)

# Device of the worked example in tencent-at.md §7.1: TLS mode 1 uses identity
# <pid><dn> and key = base64-decoded secret "ZHNkIGRzZCA=" (hex 6473642064736420).
PSK_ID = "CTQS08Y5LGDev01"
PSK_KEY = "6473642064736420"

EXCHANGE = ["CONNECTED", "SUBACK", "PUBACK", "MESSAGE probe/x 5 hello"]
# E_* values of enum vm_mqtt_fail (include/vmodule/mqtt.h).
E_DNS, E_TCP, E_TLS, E_TIMEOUT, E_CLOSED, E_CANCELED = -1, -2, -3, -4, -5, -6


# ---- helpers -----------------------------------------------------------------

def free_ports(n):
    """n distinct loopback ports that were free a moment ago."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Broker:
    """A mosquitto with one listener per block of config lines."""

    def __init__(self, workdir, listeners):
        self.ports = free_ports(len(listeners))
        lines = ["user root",  # started as root it would switch to 'mosquitto' and lose our files
                 "per_listener_settings true", "log_dest stderr", "log_type all"]
        for port, block in zip(self.ports, listeners):
            lines.append(f"listener {port} 127.0.0.1")
            lines.extend(block)
        conf = workdir / f"mosquitto-{self.ports[0]}.conf"
        conf.write_text("\n".join(lines) + "\n")
        self.log = []
        self.changed = threading.Condition()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        if not self.wait_for(" running", 10):
            self.stop()
            raise RuntimeError("mosquitto did not start:\n" + "".join(self.log))

    def _read(self):
        for line in self.proc.stderr:  # also keeps the pipe from filling up
            with self.changed:
                self.log.append(line)
                self.changed.notify_all()

    def wait_for(self, text, timeout):
        """Waits until a log line contains text; returns whether one did."""
        with self.changed:
            return self.changed.wait_for(lambda: any(text in l for l in self.log), timeout)

    @property
    def port(self):
        return self.ports[0]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(10)


@pytest.fixture
def broker(tmp_path):
    started = []

    def start(*listeners):
        b = Broker(tmp_path, listeners)
        started.append(b)
        return b

    yield start
    for b in started:
        b.stop()


_RESOLVER_DIR = None


def probe_cmd(*args):
    """The probe's command line; under VMODULE_TEST_HOSTS it resolves from
    that hosts file, like every daemon of the suite (conftest.Daemon)."""
    global _RESOLVER_DIR
    from conftest import _private_resolver, _suite_hosts
    import tempfile
    if _RESOLVER_DIR is None:
        _RESOLVER_DIR = Path(tempfile.mkdtemp(prefix="probe-resolver-"))
    hosts = _suite_hosts(_RESOLVER_DIR)
    prefix = _private_resolver(_RESOLVER_DIR, hosts) if hosts else []
    return prefix + [PROBE, *map(str, args)]


def probe(host, port, *args, env=None, timeout=30):
    r = subprocess.run(probe_cmd(host, port, *args), capture_output=True,
                       text=True, timeout=timeout, env=env)
    # An ASan/UBSan build may exit 1 like a failed connect; look at what it said.
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def assert_exchange(out, cycles=1):
    """CONNECTED and SUBACK come first; PUBACK and our own message may arrive in
    either order (the broker queues the copy to us and the PUBACK independently)."""
    lines = out.splitlines()
    assert len(lines) == 4 * cycles, out
    for i in range(cycles):
        chunk = lines[4 * i:4 * i + 4]
        assert chunk[:2] == ["CONNECTED", "SUBACK"], out
        assert sorted(chunk[2:]) == sorted(EXCHANGE[2:]), out


def assert_fail(r, code, times=1):
    assert r.stdout.splitlines() == [f"CONNECT_FAIL {code}"] * times, r.stdout + r.stderr
    assert r.returncode == 1, r.stderr


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, server certs for 'localhost' and 'wrong.example' signed by it, a
    client cert, and an unrelated CA. EC keys: quick to generate."""
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN={ca}", cwd=d)
    for name, san in (("localhost", "DNS:localhost"), ("wrong", "DNS:wrong.example"),
                      ("client", None)):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
                f"/CN={name}", cwd=d)
        extra = []
        if san:
            (d / f"{name}.ext").write_text(f"subjectAltName={san}\n")
            extra = ["-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", *extra, cwd=d)
    return d


def tls_listener(pki, cert, *extra):
    return [f"cafile {pki / 'ca.crt'}", f"certfile {pki / (cert + '.crt')}",
            f"keyfile {pki / (cert + '.key')}", "allow_anonymous true", *extra]


def psk_listener(tmp_path):
    f = tmp_path / "psk.txt"
    f.write_text(f"{PSK_ID}:{PSK_KEY}\n")
    return ["psk_hint vmodule", f"psk_file {f}", "use_identity_as_username true",
            "allow_anonymous true"]


# ---- plain TCP ------------------------------------------------------------------

def test_plain_session_exchanges_subscribe_publish_and_message(broker):
    b = broker(["allow_anonymous true"])
    r = probe("127.0.0.1", b.port)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout)
    assert f"INFO [probe] mqtt: connected to 127.0.0.1:{b.port}" in r.stderr
    assert f"INFO [probe] mqtt: disconnected from 127.0.0.1:{b.port}" in r.stderr
    # MQTT 3.1.1 is "p2" in mosquitto's log; the DISCONNECT was graceful.
    assert any("as vm-probe (p2, c1, k60)" in l for l in b.log), b.log
    assert any("Client vm-probe disconnected." in l for l in b.log), b.log


@pytest.mark.parametrize("qos", [0, 1])
def test_publish_from_a_loop_callback(broker, qos):
    # Outside libmosquitto callbacks it writes at once and reports a QoS 0
    # publish as sent from inside mosquitto_publish(); the probe prints
    # UNEXPECTED_PUBLISH if on_publish comes before vm_mqtt_publish() returns.
    b = broker(["allow_anonymous true"])
    r = probe("localhost", b.port, "--qos", qos, "--publish-from-timer")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout)


@pytest.mark.parametrize("where", ["--publish-from-timer", "--qos"])
def test_large_publish_needs_pollout_and_arrives_intact(broker, where):
    # 8 MB does not fit the socket buffer: the rest of the PUBLISH only leaves
    # when the session arms POLLOUT from want_write(). Published once from a loop
    # callback and once from inside on_subscribe ("--qos 1" is the default path).
    b = broker(["allow_anonymous true"])
    size = 8 * 1024 * 1024
    args = [where] if where == "--publish-from-timer" else [where, 1]
    r = probe("localhost", b.port, "--size", size, *args)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["CONNECTED", "SUBACK"], r.stdout
    assert sorted(lines[2:]) == sorted(["PUBACK", f"MESSAGE probe/x {size} intact"]), r.stdout


def test_same_object_reconnects_from_inside_on_disconnect(broker):
    b = broker(["allow_anonymous true"])
    r = probe("localhost", b.port, "--cycles", 3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout, cycles=3)
    assert r.stderr.count("mqtt: connected to") == 3


def test_unsubscribe_is_acknowledged(broker):
    b = broker(["allow_anonymous true"])
    r = probe("localhost", b.port, "--unsubscribe")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["CONNECTED", "SUBACK"] and lines[4:] == ["UNSUBACK"], r.stdout
    assert sorted(lines[2:4]) == sorted(EXCHANGE[2:]), r.stdout
    assert any("Received UNSUBSCRIBE from vm-probe" in l for l in b.log), b.log


def test_close_from_inside_on_message(broker):
    # vm_mqtt_close() while libmosquitto is on the stack: teardown waits until
    # it unwinds (run under ASan to see the difference). No DISCONNECT is sent.
    b = broker(["allow_anonymous true"])
    r = probe("localhost", b.port, "--close-on-message")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["CONNECTED", "SUBACK"] and "MESSAGE probe/x 5 hello" in lines, r.stdout
    assert b.wait_for("Client vm-probe closed its connection.", 5), b.log


def test_will_is_published_after_an_abrupt_close_only(broker):
    import paho.mqtt.client as paho

    b = broker(["allow_anonymous true"])
    got, subscribed = queue.Queue(), threading.Event()
    watcher = paho.Client(client_id="will-watcher")
    watcher.on_connect = lambda c, u, f, rc: c.subscribe("probe/will", 1)
    watcher.on_subscribe = lambda c, u, mid, granted: subscribed.set()
    watcher.on_message = lambda c, u, msg: got.put(msg.payload)
    watcher.connect("127.0.0.1", b.port)
    watcher.loop_start()
    try:
        assert subscribed.wait(5)
        graceful = probe("localhost", b.port, "--will", "probe/will", "gone")
        assert graceful.returncode == 0, graceful.stdout + graceful.stderr
        # A will sent by mistake would reach us before this marker.
        watcher.publish("probe/will", b"marker", qos=1)
        assert got.get(timeout=5) == b"marker"
        abrupt = probe("localhost", b.port, "--will", "probe/will", "gone", "--close-on-message")
        assert abrupt.returncode == 0, abrupt.stdout + abrupt.stderr
        assert got.get(timeout=5) == b"gone"
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_disconnect_before_connack_cancels_the_attempt(broker):
    b = broker(["allow_anonymous true"])
    assert_fail(probe("localhost", b.port, "--cancel"), E_CANCELED)


def test_connack_refusal_code_is_reported_and_password_is_not_logged(broker, tmp_path):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(pw), "alice", "s3cret-pw"], check=True)
    b = broker(["allow_anonymous false", f"password_file {pw}"])
    debug = dict(os.environ, PROBE_DEBUG="1")

    ok = probe("localhost", b.port, "--user", "alice", "--pass", "s3cret-pw", env=debug)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert_exchange(ok.stdout)
    assert "s3cret-pw" not in ok.stderr

    bad = probe("localhost", b.port, "--user", "alice", "--pass", "wrong-pw", env=debug)
    assert_fail(bad, 5)  # MQTT 3.1.1 CONNACK 5: not authorised
    assert "wrong-pw" not in bad.stderr
    assert "mqtt: connect to localhost:%d failed: Connection Refused: not authorised." % b.port \
        in bad.stderr


# ---- failures before CONNACK ----------------------------------------------------------

def test_dns_failure():
    # A label longer than 63 bytes is rejected by the stub resolver itself, so
    # this fails name resolution without sending any DNS query off the machine.
    r = probe("a" * 70 + ".invalid", 1883)
    assert_fail(r, E_DNS)


def test_tcp_refused():
    (port,) = free_ports(1)
    r = probe("127.0.0.1", port)
    assert_fail(r, E_TCP)
    assert "Connection refused" in r.stderr


def test_timeout_when_broker_never_answers():
    # The kernel completes the TCP handshake for a listening socket nobody
    # accepts from, so CONNECT goes out and no CONNACK ever comes back.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        t0 = time.monotonic()
        r = probe("127.0.0.1", silent.getsockname()[1], "--timeout", 400)
        elapsed = time.monotonic() - t0
    assert_fail(r, E_TIMEOUT)
    assert elapsed >= 0.4


@pytest.mark.parametrize("how", ["close", "reset"])
def test_peer_hanging_up_mid_handshake_is_a_tls_failure(how):
    # Reads our ClientHello and hangs up; must end at once, not at the timeout.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def serve():
        conn, _ = srv.accept()
        conn.recv(4096)
        if how == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    t0 = time.monotonic()
    r = probe("127.0.0.1", srv.getsockname()[1], "--psk", PSK_ID, PSK_KEY, "--timeout", 5000)
    elapsed = time.monotonic() - t0
    t.join(5)
    srv.close()
    assert_fail(r, E_TLS)
    assert elapsed < 4


def test_tcp_client_on_tls_listener_reports_closed_before_connack(broker, tmp_path):
    b = broker(psk_listener(tmp_path))
    assert_fail(probe("localhost", b.port), E_CLOSED)


# ---- TLS-PSK (Tencent TLS mode 1) ------------------------------------------------------

def test_psk_right_key_connects(broker, tmp_path):
    b = broker(psk_listener(tmp_path))
    r = probe("localhost", b.port, "--psk", PSK_ID, PSK_KEY)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout)
    assert any(f"u'{PSK_ID}'" in l for l in b.log), b.log  # the identity reached the broker
    assert PSK_KEY not in r.stderr


def test_psk_wrong_key_is_a_tls_failure(broker, tmp_path):
    b = broker(psk_listener(tmp_path))
    r = probe("localhost", b.port, "--psk", PSK_ID, "6473642064736421")
    assert_fail(r, E_TLS)


def test_psk_unknown_identity_is_a_tls_failure(broker, tmp_path):
    b = broker(psk_listener(tmp_path))
    assert_fail(probe("localhost", b.port, "--psk", "SOMEONEELSE", PSK_KEY), E_TLS)


def test_failed_tls_attempts_can_be_retried_on_the_same_object(broker, tmp_path):
    b = broker(psk_listener(tmp_path))
    r = probe("localhost", b.port, "--psk", PSK_ID, "00112233", "--retries", 3)
    assert_fail(r, E_TLS, times=4)


# ---- TLS with certificates: the real host name is checked ------------------------------

def test_ca_verified_host_name_connects(broker, pki):
    b = broker(tls_listener(pki, "localhost"))
    r = probe("localhost", b.port, "--ca", pki / "ca.crt")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout)


def test_certificate_for_another_name_is_refused(broker, pki):
    # libmosquitto is handed 127.0.0.1; the check must still be against "localhost".
    b = broker(tls_listener(pki, "wrong"))
    r = probe("localhost", b.port, "--ca", pki / "ca.crt")
    assert_fail(r, E_TLS)
    assert not any("New client connected" in l for l in b.log), b.log  # no CONNECT was sent


def test_ip_literal_host_needs_an_ip_in_the_certificate(broker, pki):
    b = broker(tls_listener(pki, "localhost"))
    assert_fail(probe("127.0.0.1", b.port, "--ca", pki / "ca.crt"), E_TLS)


def test_untrusted_ca_is_refused(broker, pki):
    b = broker(tls_listener(pki, "localhost"))
    assert_fail(probe("localhost", b.port, "--ca", pki / "other-ca.crt"), E_TLS)


def test_insecure_mode_accepts_any_certificate(broker, pki):
    b = broker(tls_listener(pki, "wrong"))
    r = probe("localhost", b.port, "--ca", pki / "other-ca.crt", "--insecure")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout)
    assert "will not be verified" in r.stderr


def test_client_certificate_required(broker, pki):
    b = broker(tls_listener(pki, "localhost", "require_certificate true"))
    with_cert = probe("localhost", b.port, "--ca", pki / "ca.crt", "--cert", pki / "client.crt",
                      "--key", pki / "client.key")
    assert with_cert.returncode == 0, with_cert.stdout + with_cert.stderr
    assert_exchange(with_cert.stdout)
    # With TLS 1.3 the refusal arrives as an alert after our side finished.
    assert_fail(probe("localhost", b.port, "--ca", pki / "ca.crt"), E_TLS)


class TlsRecorder:
    """A TLS server that records the SNI and ALPN a client offers and the first
    byte it sends, then refuses the MQTT connection with CONNACK 3."""

    def __init__(self, pki, alpn=("mqtt",)):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki / "localhost.crt", pki / "localhost.key")
        self.ctx.set_alpn_protocols(list(alpn))
        self.sni = []
        self.alpn = []
        self.first_byte = []
        self.ctx.sni_callback = lambda sslobj, name, ctx: self.sni.append(name)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(10)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.alpn.append(tls.selected_alpn_protocol())
                    self.first_byte.append(tls.recv(1))
                    tls.sendall(b"\x20\x02\x00\x03")  # CONNACK: server unavailable
                    tls.recv(1)  # until the client hangs up
            except (ssl.SSLError, OSError):
                pass

    def close(self):
        self.thread.join(10)
        self.sock.close()


def test_sni_carries_the_host_name_and_alpn_is_offered(pki):
    srv = TlsRecorder(pki)
    r = probe("localhost", srv.port, "--ca", pki / "ca.crt", "--alpn", "mqtt")
    srv.close()
    assert_fail(r, 3)
    assert srv.sni == ["localhost"]  # libmosquitto itself would have sent "127.0.0.1"
    assert srv.alpn == ["mqtt"]
    assert srv.first_byte == [b"\x10"]  # CONNECT, only after the verified handshake


def test_alpn_list_offers_every_name(pki):
    # The server only speaks the second name: it is picked only if offered.
    srv = TlsRecorder(pki, alpn=("x-amzn-mqtt-ca",))
    r = probe("localhost", srv.port, "--ca", pki / "ca.crt", "--alpn", "mqtt,x-amzn-mqtt-ca")
    srv.close()
    assert_fail(r, 3)
    assert srv.alpn == ["x-amzn-mqtt-ca"]


def test_no_sni_for_an_ip_literal(pki):
    srv = TlsRecorder(pki)
    r = probe("127.0.0.1", srv.port, "--ca", pki / "ca.crt", "--insecure")
    srv.close()
    assert_fail(r, 3)
    assert srv.sni == [None]  # RFC 6066: SNI never carries an address


# ---- slow peers and link loss -------------------------------------------------------------

class SlowProxy:
    """Relays one client to the broker, slowly. Its TCP connect is held back
    first: fillers keep the accept queue (listen backlog 0) full, so the kernel
    drops the client's SYN and the client only gets in on the SYN retry, about
    1 s later. Then nothing is relayed for `delay` seconds more."""

    def __init__(self, upstream_port, delay):
        self.upstream_port, self.delay = upstream_port, delay
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(f)
        self.accepted_after = None

    def start(self):
        self.t0 = time.monotonic()
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _serve(self):
        fillers = {f.getsockname()[1] for f in self.fillers}
        time.sleep(0.3)  # simulated congestion: the client's first SYN meets a full queue
        while True:
            client, peer = self.sock.accept()
            if peer[1] not in fillers:
                break
            client.close()
        self.accepted_after = time.monotonic() - self.t0
        time.sleep(self.delay)  # simulated latency, not a wait for an event
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=self._pump, args=(up, client), daemon=True).start()
        self._pump(client, up)

    def close(self):
        for f in self.fillers:
            f.close()
        self.sock.close()


def child_cpu_seconds():
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


@pytest.mark.parametrize("mode", ["psk", "plain"])
def test_slow_connect_and_handshake_complete_without_busy_polling(broker, tmp_path, mode):
    # platform-and-peers.md §2b: when TCP connects slowly, the first SSL_connect
    # wants to write and libmosquitto keeps want_write() true for the whole
    # handshake, so arming POLLOUT from it spins a core while the server is
    # silent; and the TLS handshake only advances through loop_read(). Plain
    # TCP: CONNECT is queued before the socket connects and needs POLLOUT.
    b = broker(psk_listener(tmp_path) if mode == "psk" else ["allow_anonymous true"])
    proxy = SlowProxy(b.port, 1.5)
    args = ["--psk", PSK_ID, PSK_KEY] if mode == "psk" else []
    cpu0 = child_cpu_seconds()
    proxy.start()
    r = probe("localhost", proxy.port, *args, "--timeout", 10000)
    cpu = child_cpu_seconds() - cpu0
    proxy.close()
    assert r.returncode == 0, r.stdout + r.stderr
    assert_exchange(r.stdout)
    assert proxy.accepted_after >= 0.5, "the TCP connect was not held back; test setup ineffective"
    assert cpu < 0.5, f"probe used {cpu:.2f} s CPU while waiting {proxy.accepted_after + 1.5:.1f} s"


def line_reader(stream):
    """Returns get(timeout) -> next line of stream, read by a thread."""
    q = queue.Queue()

    def pump():
        for line in stream:
            q.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lambda timeout: q.get(timeout=timeout)


def test_broker_death_is_reported_as_link_lost(broker):
    b = broker(["allow_anonymous true"])
    proc = subprocess.Popen(probe_cmd("localhost", b.port, "--wait-lost"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    read_line = line_reader(proc.stdout)
    try:
        lines = [read_line(10) for _ in range(4)]
        assert lines[:2] == ["CONNECTED", "SUBACK"] and sorted(lines[2:]) == sorted(EXCHANGE[2:])
        b.stop()  # SIGKILL: the kernel closes the broker's sockets
        assert read_line(10) == "LOST"
        assert proc.wait(10) == 0
        err = proc.stderr.read()
        assert "mqtt: connection to localhost:%d lost" % b.port in err
        assert "Sanitizer" not in err and "runtime error" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_silent_broker_is_detected_by_keepalive(broker):
    # The keepalive timer (mosquitto_loop_misc once a second) sends PINGREQ after
    # 5 s; the broker is frozen, no PINGRESP comes, and the link is declared lost
    # one keepalive later. Fault-catalogue case "broker SIGSTOP".
    b = broker(["allow_anonymous true"])
    proc = subprocess.Popen(probe_cmd("localhost", b.port, "--wait-lost", "--keepalive", "5"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PROBE_DEBUG="1"))
    read_line = line_reader(proc.stdout)
    try:
        assert [read_line(10) for _ in range(4)][:2] == ["CONNECTED", "SUBACK"]
        b.proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        assert read_line(15) == "LOST"
        assert time.monotonic() - t0 >= 8  # PINGREQ at 5 s, given up at 10 s
        assert proc.wait(10) == 0
        err = proc.stderr.read()
        assert "Client vm-probe sending PINGREQ" in err
        assert "mqtt: connection to localhost:%d lost: keepalive timeout" % b.port in err, err
    finally:
        b.proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
