"""httpd.py - the HTTP/HTTPS servers of vmodule-cloud.

Server: the one HTTP(S) server of the tool (the firmware download server
below and the registration server of dynreg.py): a threaded http.server on
one address (IPv4 or IPv6) that does the TLS handshake in the connection's
own thread (a client that never finishes its handshake cannot block the
others), never looks the host up in DNS or /etc/hosts, keeps quiet about
clients that vanish, tells on_connect(peer) / on_tls_error(error) when
given, and runs serve_forever on a thread: start() / close(). Handlers can
sleep on server.stopping so close() ends them at once.

FileServer: serves one in-memory file at one path, as a firmware download
server does: GET (200, or 206 for `Range: bytes=A-B`, `bytes=A-`, `bytes=-N`;
B may be past the end, as the Tencent SDK sends `bytes=<offset>-<size>`),
HEAD, 416 when A >= size, 404 for any other path. Faults (class Faults) act
on the real socket, at absolute file offsets: cut the connection after an
exact number of bytes, stall silently, ignore Range, answer a fixed status,
pace the body. Every request ends with one on_request(dict) call:
{"method", "path", "range" (header or None), "status", "sent" (bytes of the
file sent), "cut", "stalled"}."""
import re
import select
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, unquote, urlsplit

CHUNK = 16384
REASONS = {404: "Not Found", 416: "Range Not Satisfiable", 500: "Internal Server Error"}


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer(host, port, handler) with TLS when context is an
    ssl.SSLContext; port 0 picks a free one (see .port). on_connect("ip:port")
    runs for each accepted connection, on_tls_error(str) for each failed
    handshake."""

    daemon_threads = True

    def __init__(self, host, port, handler, context=None, on_connect=None, on_tls_error=None):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.context = context
        self.on_connect = on_connect
        self.on_tls_error = on_tls_error
        self.stopping = threading.Event()
        self._thread = None
        super().__init__((host, port), handler)

    def server_bind(self):
        # HTTPServer.server_bind would resolve the name of the host (getfqdn)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    @property
    def port(self):
        return self.server_address[1]

    @property
    def scheme(self):
        return "https" if self.context else "http"

    def finish_request(self, request, client_address):
        if self.on_connect:
            self.on_connect("%s:%d" % client_address[:2])
        if not self.context:
            self.RequestHandlerClass(request, client_address, self)
            return
        try:
            request.settimeout(30)
            conn = self.context.wrap_socket(request, server_side=True)
            conn.settimeout(None)
        except OSError as e:  # ssl.SSLError included
            if self.on_tls_error:
                self.on_tls_error(str(e))
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()  # the TLS socket owns the descriptor now

    def handle_error(self, request, client_address):
        pass  # a client that went away is not news

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self):
        self.stopping.set()
        if self._thread:
            self.shutdown()
            self._thread.join()
        self.server_close()


class Faults:
    """What FileServer does wrong. Offsets are absolute file offsets.
    cut_at: close the connection once a response body reaches this offset
      (the bytes before it are flushed first); once, or every time with
      cut_every. A response starting at the offset is cut before its first
      byte; one that ends before it is not cut.
    stall_at: the same, but the connection stays open and silent until the
      client closes it (or the server stops); once, or every time.
    ignore_range: answer 200 with the whole file to ranged requests.
    status: answer this status to every GET of the file (status_once: only
      the first).
    rate: body bytes per second (None: as fast as the socket takes them)."""

    def __init__(self, cut_at=None, cut_every=False, stall_at=None, stall_every=False,
                 ignore_range=False, status=None, status_once=False, rate=None):
        self.cut_at, self.cut_every = cut_at, cut_every
        self.stall_at, self.stall_every = stall_at, stall_every
        self.ignore_range = ignore_range
        self.status, self.status_once = status, status_once
        self.rate = rate
        self._lock = threading.Lock()
        self._used = set()

    def _take(self, name, every):
        """True the first time for a once-only fault, always for an every-time one."""
        with self._lock:
            if every or name not in self._used:
                self._used.add(name)
                return True
            return False

    def stop_offset(self, start, end):
        """(offset, "cut"|"stall") where a body covering start..end-1 must
        stop, or (None, None)."""
        for name, at, every in (("cut", self.cut_at, self.cut_every),
                                ("stall", self.stall_at, self.stall_every)):
            if at is not None and start <= at < end and self._take(name, every):
                return at, name
        return None, None

    def fixed_status(self):
        return self.status if self.status and self._take("status", not self.status_once) else None


def parse_range(header, size):
    """'bytes=A-B' / 'bytes=A-' / 'bytes=-N' -> (start, end exclusive), or
    'unsatisfiable', or None when the header is absent or not one plain range
    (then the whole file is sent, as RFC 9110 allows)."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or m.group(1) == m.group(2) == "":
        return None
    if m.group(1) == "":
        n = int(m.group(2))
        return (max(size - n, 0), size) if n else "unsatisfiable"
    start = int(m.group(1))
    if m.group(2) and int(m.group(2)) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    return start, min(int(m.group(2) or size - 1) + 1, size)


class FileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vmodule-cloud"

    def log_message(self, *args):
        pass

    def do_HEAD(self):
        self._answer(body=False)

    def do_GET(self):
        self._answer(body=True)

    def _answer(self, body):
        srv = self.server
        rng = self.headers.get("Range")
        self.ev = {"method": self.command, "path": self.path, "range": rng, "status": None,
                   "sent": 0, "cut": False, "stalled": False}
        self._reported = False
        try:
            self._respond(srv, rng, body)
        except (OSError, ssl.SSLError):
            self.close_connection = True
        finally:
            self._report()

    def _report(self):
        """The request's event, once: before a cut or a stall shows on the
        wire, so it always precedes the events of the client's next request."""
        if not self._reported:
            self._reported = True
            if self.server.on_request:
                self.server.on_request(self.ev)

    def _respond(self, srv, rng, body):
        data, size = srv.data, len(srv.data)
        if unquote(urlsplit(self.path).path) != unquote(srv.path):
            return self._short(404)
        fixed = srv.faults.fixed_status() if self.command == "GET" else None
        if fixed:
            return self._short(fixed, size)
        want = None if srv.faults.ignore_range else parse_range(rng, size)
        if want == "unsatisfiable":
            return self._short(416, size)
        start, end = want or (0, size)
        self._head(206 if want else 200, end - start,
                   [("Content-Range", "bytes %d-%d/%d" % (start, end - 1, size))] if want else [])
        if body:
            self._body(srv, data, start, end)

    def _head(self, status, length, extra=(), ctype="application/octet-stream"):
        self.ev["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        if not self.server.faults.ignore_range:
            self.send_header("Accept-Ranges", "bytes")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _short(self, status, size=None):
        text = ("%d %s\n" % (status, REASONS.get(status, ""))).encode()
        extra = [("Content-Range", "bytes */%d" % size)] if status == 416 else []
        self._head(status, len(text), extra, "text/plain")
        if self.command != "HEAD":
            self.wfile.write(text)

    def _body(self, srv, data, start, end):
        stop, how = srv.faults.stop_offset(start, end)
        rate = srv.faults.rate
        pos, t0 = start, time.monotonic()
        limit = end if stop is None else stop
        step = max(1, min(CHUNK, rate // 10)) if rate else CHUNK
        while pos < limit and not srv.stopping.is_set():
            n = min(step, limit - pos)
            self.wfile.write(data[pos:pos + n])
            pos += n
            self.ev["sent"] = pos - start
            if rate:
                srv.stopping.wait(max(0.0, t0 + (pos - start) / rate - time.monotonic()))
        if how == "stall":
            self.ev["stalled"] = True
            self._report()
            self._hold()
        if how:
            self.ev["cut"] = how == "cut"
            self._report()
            self.close_connection = True
            # no TLS close_notify, no rest of the body: the client sees the
            # connection end early, as when a server dies
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hold(self):
        """Stays silent until the client closes or the server stops."""
        sock = self.connection
        while not self.server.stopping.is_set():
            if not select.select([sock], [], [], 0.2)[0]:
                continue
            try:
                if not sock.recv(4096):
                    return
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except OSError:
                return


class FileServer(Server):
    """FileServer(data, name, host, port, context=None, faults=None,
    on_request=None): serves bytes `data` at /<name> (URL-quoted)."""

    def __init__(self, data, name, host="127.0.0.1", port=0, context=None, faults=None,
                 on_request=None):
        self.data = bytes(data)
        self.path = "/" + quote(name)
        self.faults = faults or Faults()
        self.on_request = on_request
        super().__init__(host, port, FileHandler, context)

    def url(self, host=None):
        host = host or self.server_name
        if ":" in host and not host.startswith("["):
            host = "[%s]" % host
        return "%s://%s:%d%s" % (self.scheme, host, self.port, self.path)
