"""test_http_faults.py - HTTPS connect failures of the daemon's HTTP client
(src/net/http.c) as each consumer's firmware reports them, and when: the
exact bytes on the PTY, and the time from the command to them.

Consumers: the tencent dialect's AT+TCDEVREG (dynamic registration,
tencent-at.md §3.3, §6.1, §7.2) and the me3630 dialect's AT+CLOUDAUTH in the
`https` auth mode (w800-me3630-at.md §8.1). Each is pointed at a server URL
that fails in one of the ways of faults.py:

  refused      nothing listens on the port (the kernel answers the SYN with RST);
  reset_accept the server accepts and resets at once, before any TLS byte;
  reset_hello  the server reads the ClientHello, then resets (during TLS);
  unreachable  255.255.255.255: connect(2) fails with ENETUNREACH, no packet;
  silent       the SYN is never answered: only the configured timeout ends it;
  reset_request (not a connect failure, for the code after it) the server
               completes the handshake, reads the request, then resets.

What each firmware prints (the codes live in tencent.h and me3630.h):

- tencent: the SDK's HTTP client turns every failure of its connect step
  into QCLOUD_ERR_HTTP_CONN, -8, whatever failed underneath (name lookup,
  TCP, TLS handshake, certificate): utils_httpc.c _http_client_connect() in
  qcloud-iot-explorer-sdk-embedded-c 3.1.5 and qcloud-iot-sdk-embedded-c
  3.2.2. A connect that hangs outlasts the AT command's own budget
  (dynreg_timeout_ms), which then prints 202. A TLS read that fails after
  the request is HAL_TLS_Read's QCLOUD_ERR_SSL_READ, -708. Without Wi-Fi
  the lookup fails: -8 as well, never -6.
- me3630: no table exists; the reference's decision is +CME ERROR: 100
  (unknown) for every server or transfer failure.

Refused, reset and unreachable must be reported at once (well under a
second) with a timeout of 10 s configured, so a report that waited for the
timeout cannot pass. A name that resolves to ::1 first while the server
listens on 127.0.0.1 only must still work: libcurl tries every address.

The HTTP state is shared: one libcurl multi handle per loop, made on the
first request, so idle modules hold no descriptor for it, and requests of
different modules in one daemon keep their own results."""

import os
import resource
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

import pytest

from conftest import TEST_HOST, module_config, wait_for
from faults import UNREACHABLE_V4, ResetServer, SilentServer, closed_port, hosts_file
from test_me3630_cloud import AUTH, attach, me_module
from test_me3630_tls import AuthServer
from test_tencent_dynreg import JOINED, DynregServer, set_product, tc_module

AT_ONCE = 0.5       # seconds: "when it happens"
LONG_MS = 10000     # the configured timeout of the at-once cases
SHORT_MS = 1500     # the configured timeout of the silent cases


# ------------------------------------------------------------------ the two consumers


class Tencent:
    """AT+TCDEVREG: "OK" at once, then one +TCDEVREG line."""
    path = "/register/dev"
    eol = "\r\n"
    accepted = b"OK\r\n"
    success = b"+TCDEVREG:OK\r\n"
    failure = {"refused": b"+TCDEVREG:FAIL,-8\r\n", "reset_accept": b"+TCDEVREG:FAIL,-8\r\n",
               "reset_hello": b"+TCDEVREG:FAIL,-8\r\n", "unreachable": b"+TCDEVREG:FAIL,-8\r\n",
               "silent": b"+TCDEVREG:FAIL,202\r\n", "reset_request": b"+TCDEVREG:FAIL,-708\r\n"}

    @staticmethod
    def module(tmp_path, url, certs, timeout_ms, name="tc0"):
        return tc_module(tmp_path, url, ca_file=certs / "ca.crt", timeout_ms=timeout_ms, name=name)

    @staticmethod
    def prepare(port):
        port.expect(JOINED)
        set_product(port)

    @staticmethod
    def send(port):
        port.cmd("AT+TCDEVREG")

    @staticmethod
    def server(certs):
        return DynregServer(certs)


class Me3630:
    """AT+CLOUDAUTH (https): "OK" at once, then +ALIAUTH or +CME ERROR."""
    path = "/auth/devicename"
    eol = "\r"  # 27.007 S3
    accepted = b"\r\nOK\r\n"
    success = b"\r\n+ALIAUTH: OK\r\n"
    failure = {kind: b"\r\n+CME ERROR: 100\r\n" for kind in (
        "refused", "reset_accept", "reset_hello", "unreachable", "silent", "reset_request")}

    @staticmethod
    def module(tmp_path, url, certs, timeout_ms, name="me0"):
        return me_module(tmp_path, 1, name=name, aliyun={
            "auth_mode": "https", "auth_url": url, "auth_ca_file": str(certs / "ca.crt"),
            "auth_timeout_ms": timeout_ms, "mqtt_host": None})

    @staticmethod
    def prepare(port):
        attach(port)

    @staticmethod
    def send(port):
        port.send(AUTH + "\r")

    @staticmethod
    def server(certs):
        return AuthServer(certs, 1)


CONSUMERS = {"tencent": Tencent, "me3630": Me3630}


@pytest.fixture(params=sorted(CONSUMERS))
def consumer(request):
    return CONSUMERS[request.param]


@pytest.fixture
def peers():
    """Closes every fault peer and server a test made."""
    made = []
    yield made
    for p in made:
        p.close()


def url_of(host, port, path):
    h = "[%s]" % host if ":" in host else host
    return "https://%s:%d%s" % (h, port, path)


def run(port, consumer, result, timeout):
    """Sends the consumer's command; expects its acceptance at once and then
    exactly `result`. Returns the seconds from the command to the result."""
    t0 = time.monotonic()
    consumer.send(port)
    port.expect(consumer.accepted, AT_ONCE)
    port.expect(result, timeout)
    elapsed = time.monotonic() - t0
    print("%s: %r after %.3f s" % (consumer.__name__, result, elapsed))  # shown on failure, or with -s
    return elapsed


def still_usable(port, consumer):
    port.send("AT" + consumer.eol)
    port.expect(b"\r\nOK\r\n")


# ------------------------------------------------------------------ failures reported at once


class ResetAfterRequest:
    """HTTPS on 127.0.0.1 that completes the handshake, reads one request
    (head and body) and resets the connection instead of answering."""

    def __init__(self, certs):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(certs / "server.crt"), str(certs / "server.key"))
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host, self.port = "127.0.0.1", self.sock.getsockname()[1]
        self.accepted, self.requests = 0, []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.settimeout(5)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                c = self.ctx.wrap_socket(c, server_side=True)  # takes over the descriptor
                self._read_request(c)
            except OSError:
                pass
            c.close()  # linger 0: a reset

    def _read_request(self, t):
        data = b""
        while b"\r\n\r\n" not in data:
            data += t.recv(65536) or b"\r\n\r\n"
        head, _, body = data.partition(b"\r\n\r\n")
        want = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")
                     if l.lower().startswith(b"content-length:")), 0)
        while len(body) < want:
            body += t.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + body)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        except OSError:
            pass
        self.sock.close()


def fault_peer(kind, certs, peers):
    """(host, port, peer or None) of a server that fails as `kind` says."""
    if kind == "refused":
        return "127.0.0.1", closed_port(), None
    if kind == "unreachable":
        return UNREACHABLE_V4, 443, None
    if kind == "reset_request":
        peer = ResetAfterRequest(certs)
    else:
        peer = ResetServer(read_first=1 if kind == "reset_hello" else 0)
    peers.append(peer)
    return peer.host, peer.port, peer


@pytest.mark.parametrize("kind", ["refused", "reset_accept", "reset_hello", "unreachable",
                                  "reset_request"])
def test_failure_is_reported_at_once(make_daemon, tmp_path, certs, consumer, peers, kind):
    host, port_no, peer = fault_peer(kind, certs, peers)
    url = url_of(host, port_no, consumer.path)
    daemon = make_daemon([consumer.module(tmp_path, url, certs, LONG_MS)], log_level="debug")
    port = daemon.port()
    consumer.prepare(port)
    elapsed = run(port, consumer, consumer.failure[kind], LONG_MS / 1000 + 2)
    assert elapsed < AT_ONCE, "%s reported after %.3f s" % (kind, elapsed)
    if peer is not None:  # the connection was made, and broken where the kind says
        assert peer.accepted >= 1
    if kind == "reset_hello":  # a TLS handshake record came first
        assert peer.received and peer.received[0][:1] == b"\x16", peer.received
    if kind == "reset_request":
        assert len(peer.requests) == 1 and peer.requests[0].startswith(b"POST " + consumer.path.encode())
    still_usable(port, consumer)


def test_silent_server_is_reported_at_the_configured_timeout(make_daemon, tmp_path, certs,
                                                             consumer, peers):
    server = SilentServer()
    peers.append(server)
    url = url_of(server.host, server.port, consumer.path)
    daemon = make_daemon([consumer.module(tmp_path, url, certs, SHORT_MS)], log_level="debug")
    port = daemon.port()
    consumer.prepare(port)
    elapsed = run(port, consumer, consumer.failure["silent"], SHORT_MS / 1000 + 3)
    assert SHORT_MS / 1000 - 0.05 <= elapsed <= SHORT_MS / 1000 + 1.0, elapsed
    still_usable(port, consumer)


# ------------------------------------------------------------------ every address of a name


def resolve_in_namespace(hosts, name):
    """The addresses getaddrinfo() gives for name under the hosts file, in
    the order a program sees them in a mount namespace like the daemon's
    (conftest.Daemon: the file bind-mounted on /etc/hosts)."""
    code = ("import socket,sys; print(' '.join(a[4][0] for a in socket.getaddrinfo("
            "sys.argv[1], 443, 0, socket.SOCK_STREAM)))")
    cp = subprocess.run(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                         'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
                         sys.executable, "-c", code, name],
                        capture_output=True, text=True, check=True, timeout=10)
    return cp.stdout.split()


def start_on_ipv6_first_name(make_daemon, tmp_path, certs, consumer, peers):
    """A consumer whose server URL names TEST_HOST, which resolves to ::1 and
    then 127.0.0.1; the server listens on 127.0.0.1 only. Returns (daemon,
    port, server, url)."""
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1", "::1"]})
    server = consumer.server(certs)
    peers.append(server)
    url = url_of(TEST_HOST, server.port, consumer.path)
    daemon = make_daemon([consumer.module(tmp_path, url, certs, LONG_MS)], log_level="debug",
                         hosts=hosts)
    port = daemon.port()
    consumer.prepare(port)
    return daemon, port, server, url


def test_name_with_ipv6_first_reaches_the_ipv4_only_server(make_daemon, tmp_path, certs,
                                                           consumer, peers):
    """The name resolves to ::1 first (RFC 6724 order, as on Debian), the
    server listens on 127.0.0.1 only: the ::1 connect is refused and
    libcurl goes on to 127.0.0.1, within the same moment."""
    daemon, port, server, _ = start_on_ipv6_first_name(make_daemon, tmp_path, certs, consumer,
                                                       peers)
    assert resolve_in_namespace(daemon.hosts, TEST_HOST) == ["::1", "127.0.0.1"]
    elapsed = run(port, consumer, consumer.success, LONG_MS / 1000 + 2)
    assert elapsed < 1.0, elapsed
    assert len(server.requests) == 1


def test_debug_log_shows_each_address_tried(make_daemon, tmp_path, certs, peers):
    """The evidence that ::1 really is tried first and 127.0.0.1 next:
    libcurl's own progress lines, which the daemon logs at level debug."""
    daemon, port, server, url = start_on_ipv6_first_name(make_daemon, tmp_path, certs, Tencent,
                                                         peers)
    run(port, Tencent, Tencent.success, 5)
    steps = ["http: curl:   Trying [::1]:%d..." % server.port,
             "http: curl: connect to ::1 port %d failed: Connection refused" % server.port,
             "http: curl:   Trying 127.0.0.1:%d..." % server.port,
             "http: POST %s: HTTP 200 from 127.0.0.1 port %d" % (url, server.port)]
    log = daemon.wait_log(steps[-1]) and daemon.log_text()
    at = [log.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), list(zip(steps, at))


def test_name_with_only_ipv6_is_refused_at_once(make_daemon, tmp_path, certs, consumer, peers):
    """The same server, a name that has ::1 only: the daemon does resolve
    through its own hosts file, and the refusal is the failure reported."""
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["::1"]})
    assert resolve_in_namespace(hosts, TEST_HOST) == ["::1"]
    server = consumer.server(certs)
    peers.append(server)
    url = url_of(TEST_HOST, server.port, consumer.path)
    daemon = make_daemon([consumer.module(tmp_path, url, certs, LONG_MS)], log_level="debug",
                         hosts=hosts)
    port = daemon.port()
    consumer.prepare(port)
    elapsed = run(port, consumer, consumer.failure["refused"], LONG_MS / 1000 + 2)
    assert elapsed < AT_ONCE, elapsed
    assert server.requests == []
    # the name resolved (to ::1), and ::1 refused: no lookup failure
    daemon.wait_log("failed: Connection refused (Failed to connect to %s port %d"
                    % (TEST_HOST, server.port))


def test_tencent_without_wifi_a_named_url_fails_8_too(make_daemon, tmp_path, certs, peers):
    """No Wi-Fi: the lookup would fail, which the SDK reports as -8 like
    any failed connect (not -6); nothing is sent."""
    server = DynregServer(certs)
    peers.append(server)
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1"]})
    url = url_of(TEST_HOST, server.port, Tencent.path)
    m = tc_module(tmp_path, url, ca_file=certs / "ca.crt",
                  wifi={"access_points": [{"ssid": "lab", "password": "labpass123"}],
                        "join_ms": 0})
    daemon = make_daemon([m], log_level="debug", hosts=hosts)
    port = daemon.port()
    set_product(port)
    elapsed = run(port, Tencent, b"+TCDEVREG:FAIL,-8\r\n", 5)
    assert elapsed < AT_ONCE, elapsed
    assert server.connections == 0


# ------------------------------------------------------------------ one multi handle per loop


def http_fds(daemon):
    """How many socket descriptors the daemon holds besides its control
    socket's listener (libcurl's multi handle keeps a socketpair; PTYs and
    inotify are not sockets)."""
    listener = None
    with open("/proc/net/unix") as f:
        for line in f.read().splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 8 and cols[7] == str(daemon.ctl_path):
                listener = "socket:[%s]" % cols[6]
    n = 0
    pid = daemon.proc.pid
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except FileNotFoundError:
            continue
        n += target.startswith("socket:") and target != listener
    assert listener is not None, "no control socket listener in /proc/net/unix"
    return n


@pytest.mark.parametrize("dialect", ["tencent", "me3630"])
def test_idle_modules_hold_no_http_descriptors(make_daemon, tmp_path, dialect):
    extra = {"me3630": {"boot_urcs": ["ready"]}} if dialect == "me3630" else {}
    modules = [module_config(tmp_path, "m%d" % i, dialect, **extra) for i in range(50)]
    daemon = make_daemon(modules)
    for m in modules:
        daemon.port(m["name"])
    assert http_fds(daemon) == 0


def test_modules_share_one_multi_and_keep_their_own_results(make_daemon, tmp_path, certs, peers):
    """Three tencent modules in one daemon: one waits on a server that
    holds its answer, one is refused meanwhile (at once), one registers;
    then the held one completes. Each module prints its own result only,
    and the daemon's sockets go back to the one shared socketpair."""
    held = DynregServer(certs, hold=True)
    good = DynregServer(certs)
    peers += [held, good]
    urls = {"tc0": held.url, "tc1": url_of("127.0.0.1", closed_port(), Tencent.path),
            "tc2": good.url}
    daemon = make_daemon([Tencent.module(tmp_path, u, certs, LONG_MS, name=n)
                          for n, u in urls.items()], log_level="debug")
    ports = {n: daemon.port(n) for n in urls}
    for p in ports.values():
        Tencent.prepare(p)
    assert http_fds(daemon) == 0
    Tencent.send(ports["tc0"])
    ports["tc0"].expect(Tencent.accepted, AT_ONCE)
    wait_for(lambda: held.requests, 5, "the held request at its server")
    elapsed = run(ports["tc1"], Tencent, Tencent.failure["refused"], 5)
    assert elapsed < AT_ONCE, elapsed
    run(ports["tc2"], Tencent, Tencent.success, 5)
    assert good.errors == [] and len(good.requests) == 1
    ports["tc0"].expect_nothing_pending()
    held.release()
    ports["tc0"].expect(Tencent.success, 5)
    assert held.errors == []
    for p in ports.values():
        p.expect_nothing_pending()
    # no connection is kept for later: only the shared socketpair remains
    wait_for(lambda: http_fds(daemon) == 2, 5, "the connections to be closed")


# ------------------------------------------------------------------ out of descriptors


def test_out_of_descriptors_is_reported_as_such(make_daemon, tmp_path, certs, consumer, peers):
    """No descriptor left for the request: the command fails as the
    firmware's failed socket() does (its connect failure code), at once, and
    the log names EMFILE and the module; with descriptors back it works."""
    server = consumer.server(certs)
    peers.append(server)
    url = url_of("127.0.0.1", server.port, consumer.path)
    daemon = make_daemon([consumer.module(tmp_path, url, certs, LONG_MS)])
    port = daemon.port()
    consumer.prepare(port)
    pid = daemon.proc.pid
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    used = {int(n) for n in os.listdir("/proc/%d/fd" % pid)}
    first_free = next(i for i in range(len(used) + 1) if i not in used)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (first_free, old[1]))  # soft only
    elapsed = run(port, consumer, consumer.failure["refused"], LONG_MS / 1000 + 2)
    assert elapsed < AT_ONCE
    line = daemon.wait_log("Too many open files (EMFILE)")
    assert line.split()[1:3] == ["WARN", "[%s]" % daemon.module()["name"]], line
    resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
    run(port, consumer, consumer.success, 10)
