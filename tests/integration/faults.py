"""faults.py - network peers that fail the way real networks do, on loopback
only, for the connect-failure tests of every transport.

- refused:     closed_port() is a port nobody listens on (the kernel RSTs the SYN);
- reset:       ResetServer accepts, optionally reads the first bytes (a TLS
               ClientHello, an MQTT CONNECT, an HTTP request), then closes
               with SO_LINGER 0, so the client sees a TCP RST;
- silent:      SilentServer listens with a full accept queue: the kernel drops
               every further SYN, so a connect hangs until the client's own
               timeout, like a host that is down behind a firewall;
- unreachable: UNREACHABLE_V4 is the limited broadcast address; a TCP
               connect to it fails with ENETUNREACH inside connect(2), before
               any packet leaves the host.

fault_peer (a fixture; import it) makes one of each kind by name, for tests
parametrized over KINDS; assert_failed_in_time() checks when the client
gave up: at once (PROMPT_S) for the kinds the kernel reports, at the
client's own timeout for a silent peer.

Hosts files: hosts_file() writes one for the daemon's private mount
namespace (conftest.Daemon(hosts=...)), so a test decides what a name
resolves to, whatever the machine's /etc/hosts says; gai_file() (Daemon(gai=))
decides in which order getaddrinfo() returns the addresses."""

import socket
import struct
import threading
from pathlib import Path

import pytest

UNREACHABLE_V4 = "255.255.255.255"
KINDS = ("refused", "reset", "unreachable", "silent")
PROMPT_S = 1.5  # a failure the kernel reports must be answered within this
LATE_S = 1.0    # how much later than its timeout a silent failure may come

# What Debian 12 installs as /etc/hosts (netbase): localhost is IPv4 first,
# but "::1 localhost ip6-localhost ip6-loopback" makes getaddrinfo() return
# ::1 first for AF_UNSPEC lookups (RFC 6724 sorting prefers ::1).
DEBIAN_HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\tdebian

# The following lines are desirable for IPv6 capable hosts
::1     localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
"""


def _v6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# For tests that need ::1: a Debian 12 machine has it unless IPv6 is disabled.
needs_v6 = pytest.mark.skipif(not _v6_loopback(), reason="no IPv6 loopback (::1) here")


def hosts_file(path, names=None, base=DEBIAN_HOSTS):
    """Writes a hosts file: `base`, then one line per (name, address) in
    `names` ({name: [addr, ...]}), in order. Returns the path."""
    lines = [base.rstrip("\n")]
    for name, addrs in (names or {}).items():
        for a in addrs:
            lines.append("%s\t%s" % (a, name))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path


def gai_file(path, prefer_ipv4=True):
    """A gai.conf for the daemon (conftest.Daemon(gai=...)). getaddrinfo()
    sorts its answers (RFC 6724): ::1 comes before 127.0.0.1 whatever the
    hosts file's order; preferring IPv4 (a common admin setting) reverses
    that, so a test can choose which address the resolver returns first."""
    path = Path(path)
    path.write_text("precedence ::ffff:0:0/96 100\n" if prefer_ipv4 else "")
    return path


def closed_port(host="127.0.0.1"):
    """A port on host with no listener (bound once to pick it, then freed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listener(host, port, backlog):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(backlog)
    return s


class ResetServer:
    """Accepts every connection and resets it: at once, or after the first
    `read_first` bytes arrived (0: do not wait for any)."""

    def __init__(self, host="127.0.0.1", port=0, read_first=1):
        self.sock = _listener(host, port, 16)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.read_first = read_first
        self.accepted = 0
        self.received = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                if self.read_first:
                    c.settimeout(5)
                    self.received.append(c.recv(65536))
            except OSError:
                pass
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()

    def close(self):
        self._stop = True
        stop_listener(self.sock)


def stop_listener(sock):
    """Wakes a thread blocked in sock.accept() (it gets OSError) and closes sock."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


class SilentServer:
    """A listener whose accept queue is full: SYNs to it are dropped, so a
    connect neither succeeds nor fails until the client gives up."""

    def __init__(self, host="127.0.0.1", port=0):
        self.sock = _listener(host, port, 0)
        self.host, self.port = host, self.sock.getsockname()[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # backlog 0 admits one established connection; it fills the queue
        self.filler = socket.socket(family, socket.SOCK_STREAM)
        self.filler.connect((host, self.port))

    def close(self):
        self.filler.close()
        self.sock.close()


@pytest.fixture
def fault_peer():
    """fault_peer(kind) -> (host, port, server) of a peer that fails a
    connect the `kind` way (one of KINDS); server is the ResetServer or
    SilentServer (closed at teardown), None for refused and unreachable. A
    reset comes after the client's first bytes (server.received[0])."""
    servers = []

    def make(kind):
        if kind == "refused":
            return "127.0.0.1", closed_port(), None
        if kind == "unreachable":
            return UNREACHABLE_V4, 1883, None
        srv = ResetServer() if kind == "reset" else SilentServer()
        servers.append(srv)
        return srv.host, srv.port, srv
    yield make
    for s in servers:
        s.close()


def assert_failed_in_time(kind, took, timeout_ms, server=None, first_bytes=None):
    """`took` seconds from the command to the failure: under PROMPT_S, or
    for a silent peer its timeout_ms, neither earlier nor LATE_S later. A
    ResetServer must have been reached and have read first_bytes first."""
    if kind == "silent":
        assert timeout_ms / 1000 - 0.05 <= took <= timeout_ms / 1000 + LATE_S, took
    else:
        assert took < PROMPT_S, took
    if kind == "reset":
        assert server.accepted >= 1 and server.received[0].startswith(first_bytes), \
            server.received
