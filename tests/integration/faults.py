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

Hosts files: hosts_file() writes one for the daemon's private mount
namespace (conftest.Daemon(hosts=...)), so a test decides what a name
resolves to, whatever the machine's /etc/hosts says; gai_file() (Daemon(gai=))
decides in which order getaddrinfo() returns the addresses."""

import socket
import struct
import threading
from pathlib import Path

UNREACHABLE_V4 = "255.255.255.255"

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
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


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
