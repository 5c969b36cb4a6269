"""link.py - one module's serial line for the fleet driver: a TCP or unix
stream socket (the daemon's tcp_listen / unix_listen endpoint), read by a
thread of its own that stamps every line with its arrival time.

Under Locust, threading, queue and socket are gevent's (Locust monkey-patches
them), so the reader is a greenlet and a thousand links cost a thousand
greenlets, not threads. A lone ">" after the last line end (the data-entry
prompt of ESP-AT) is a line of its own. Targets (tests/fleet/README.md):

  tcp:HOST:BASE     module n at HOST port BASE + (n - first)
  unix:TEMPLATE     module n at TEMPLATE with {n} (or {n:03}...) replaced"""

import queue
import socket
import threading
import time

_CLOSED = object()
PROMPT = b">"


class TargetError(ValueError):
    pass


def parse_target(text):
    """Checks a target string; returns ("tcp", host, base) or ("unix", template)."""
    kind, _, rest = (text or "").partition(":")
    if kind == "tcp":
        host, _, base = rest.rpartition(":")
        if not host or not base.isdigit() or not 0 < int(base) < 65536:
            raise TargetError("tcp target: tcp:HOST:BASEPORT (got %r)" % text)
        return ("tcp", host.strip("[]"), int(base))
    if kind == "unix":
        if "{n" not in rest:
            raise TargetError("unix target: a path with {n}, e.g. unix:/run/vmodule/tc{n}.sock (got %r)" % text)
        return ("unix", rest)
    raise TargetError("target: tcp:HOST:BASEPORT or unix:/path/with/{n} (got %r)" % text)


def address(target, n, first=0):
    """The socket address of module n: (family, address, printable)."""
    if target[0] == "tcp":
        port = target[2] + (n - first)
        if not 0 < port < 65536:
            raise TargetError("module %d: port %d out of range" % (n, port))
        return socket.AF_INET6 if ":" in target[1] else socket.AF_INET, (target[1], port), \
            "tcp:%s:%d" % (target[1], port)
    path = target[1].format(n=n)
    return socket.AF_UNIX, path, "unix:" + path


class Link:
    """send(bytes); next_line(deadline) -> (arrival, line) or None once
    time.perf_counter() passes deadline (0: do not wait); OSError when the
    peer closed the line."""

    def __init__(self, family, addr, timeout=5.0):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(addr)
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(None)
        if family != socket.AF_UNIX:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lines = queue.Queue()
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        partial = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                now = time.perf_counter()
                partial += chunk
                *done, partial = partial.split(b"\n")
                for raw in done:
                    line = raw.rstrip(b"\r").decode("latin-1")
                    if line:
                        self.lines.put((now, line))
                if partial == PROMPT:  # a data-entry prompt has no line end (ESP-AT "\r\n>")
                    self.lines.put((now, PROMPT.decode()))
                    partial = b""
        except OSError:
            pass
        self.lines.put(_CLOSED)

    def send(self, data):
        if self.closed:
            raise OSError("serial link closed")
        self.sock.sendall(data)

    def next_line(self, deadline):
        if self.closed:
            raise OSError("serial link closed by the module")
        try:
            left = deadline - time.perf_counter()
            item = self.lines.get(timeout=left) if left > 0 else self.lines.get_nowait()
        except queue.Empty:
            return None
        if item is _CLOSED:
            self.closed = True
            raise OSError("serial link closed by the module")
        return item

    def close(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
