"""test_me3630_tls.py - the me3630 dialect's TLS paths
(w800-me3630-at.md §8.1, §9): the `https` auth mode (the 2017-era guider flow:
an HTTPS POST of the signed device triple returning iotId, iotToken and the
broker) against a small HTTPS test server of the suite, with a test CA made
by openssl; and the `tls` MQTT transport against a mosquitto TLS listener.

The auth server checks the signature itself (computed here from the §9
recipe) and answers as the Aliyun guider does: HTTP 200 with a JSON body
whose "code" is 200 on success."""

import hashlib
import hmac
import http.server
import json
import ssl
import subprocess
import threading
import urllib.parse

import pytest

from conftest import free_port, wait_for
from test_me3630_cloud import (AUTH, DN, DS, OK, PK, TS, aliyun_password, attach, cmd, connections,
                               me_module, password_broker, state)

IOT_ID = "030VCbn30334364bb36997f44cMYTBAR"
IOT_TOKEN = "e96d15a4d4734a73b13040b1878009bc"


def guider_sign(form, secret):
    alg = {"hmacsha1": "sha1", "hmacsha256": "sha256", "hmacmd5": "md5"}[form["signmethod"]]
    content = "clientId%sdeviceName%sproductKey%stimestamp%s" % (
        form["clientId"], form["deviceName"], form["productKey"], form["timestamp"])
    return hmac.new(secret.encode(), content.encode(), getattr(hashlib, alg)).hexdigest().upper()


# Numbers in a success answer that are not whole numbers in range: a code
# other than 200 is a refusal, a port outside 1..65535 an unusable answer.
# 200.5 was taken as 200, and a port of 1883.5 as 1883 (me_auth_reply.h).
MALFORMED = {"code_fraction": ("code", "200.5"), "code_1e300": ("code", "1e300"),
             "port_fraction": ("port", "1883.5"), "port_1e300": ("port", "1e300"),
             "port_string": ("port", '"1883"')}


class AuthServer:
    """The guider: POST /auth/devicename (form) -> JSON. `mode` selects the
    behaviour: "ok" (check the signature), "http500", "garbage", or a key
    of MALFORMED (a success answer with that number put in: code or port)."""

    def __init__(self, certs, broker_port, secrets=None):
        self.requests = []
        self.mode = "ok"
        self.broker_port = broker_port
        self.secrets = secrets or {(PK, DN): DS}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = dict(urllib.parse.parse_qsl(body))
                server.requests.append((self.path, dict(self.headers), form))
                status, answer = server.answer(self.path, form)
                data = answer.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(certs / "server.crt"), str(certs / "server.key"))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = "https://127.0.0.1:%d/auth/devicename" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path, form):
        if self.mode == "http500":
            return 500, "oops"
        if self.mode == "garbage":
            return 200, "<html>not json</html>"
        if self.mode in MALFORMED:
            where, value = MALFORMED[self.mode]
            code, port = (value, self.broker_port) if where == "code" else (200, value)
            return 200, ('{"code":%s,"message":"success","data":{"iotId":"%s","iotToken":"%s",'
                         '"resources":{"mqtt":{"host":"127.0.0.1","port":%s}}}}'
                         % (code, IOT_ID, IOT_TOKEN, port))
        secret = self.secrets.get((form.get("productKey"), form.get("deviceName")))
        if path != "/auth/devicename" or not secret or form.get("sign") != guider_sign(form, secret):
            return 200, json.dumps({"code": 401, "message": "authentication failed"})
        return 200, json.dumps({"code": 200, "message": "success", "data": {
            "iotId": IOT_ID, "iotToken": IOT_TOKEN,
            "resources": {"mqtt": {"host": "127.0.0.1", "port": self.broker_port}}}})

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def auth_server(certs):
    made = []

    def make(broker_port, **kw):
        s = AuthServer(certs, broker_port, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def https_module(tmp_path, server, certs, **aliyun):
    a = {"auth_mode": "https", "auth_url": server.url, "auth_ca_file": str(certs / "ca.crt"),
         "auth_timeout_ms": 3000, "mqtt_host": None}
    a.update(aliyun)
    return me_module(tmp_path, 1, aliyun=a)


def start(make_daemon, module):
    daemon = make_daemon([module], log_level="debug")
    return daemon, daemon.port()


# ------------------------------------------------------------------ https auth mode


def test_https_auth_returns_the_broker_and_token_the_module_uses(
        make_daemon, tmp_path, mosquitto, auth_server, certs):
    broker = password_broker(mosquitto, tmp_path, {IOT_ID: IOT_TOKEN})
    server = auth_server(broker.port)
    _, port = start(make_daemon, https_module(tmp_path, server, certs))
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+ALIAUTH: OK\r\n")
    path, headers, form = server.requests[0]
    assert path == "/auth/devicename"
    assert headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert form == {"productKey": PK, "deviceName": DN, "signmethod": "hmacsha256",
                    "sign": aliyun_password("sha256"), "version": "default",
                    "clientId": "%s.%s" % (PK, DN), "timestamp": TS, "resources": "mqtt"}
    cmd(port, "AT+CLOUDCONN", OK)
    state(port, 1)
    client_id = "%s.%s|securemode=0,signmethod=hmacsha256,timestamp=%s|" % (PK, DN, TS)
    wait_for(lambda: "as %s (p2, c1, k120, u'%s')" % (client_id, IOT_ID) in broker.log_text(), 5,
             "the broker to see the iotId login")


def test_https_auth_with_hmacsha1(make_daemon, tmp_path, mosquitto, auth_server, certs):
    broker = password_broker(mosquitto, tmp_path, {IOT_ID: IOT_TOKEN})
    server = auth_server(broker.port)
    _, port = start(make_daemon, https_module(tmp_path, server, certs, signmethod="hmacsha1"))
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+ALIAUTH: OK\r\n")
    assert server.requests[0][2]["sign"] == "1B330B3E8167614EECE08AFCED76D4E5F9DD2F3D"
    cmd(port, "AT+CLOUDCONN", OK)


def test_https_auth_refusal_is_alaiuth_fail(make_daemon, tmp_path, mosquitto, auth_server, certs):
    broker = mosquitto()
    server = auth_server(broker.port)
    _, port = start(make_daemon, https_module(tmp_path, server, certs))
    attach(port)
    before = connections(broker)
    cmd(port, "AT+CLOUDAUTH=%s,%s,%s" % (PK, DN, "wrongsecret"), OK + b"\r\n+ALIAUTH: FAIL\r\n")
    assert len(server.requests) == 1
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 3\r\n")
    assert connections(broker) == before
    # the right secret afterwards
    cmd(port, AUTH, OK + b"\r\n+ALIAUTH: OK\r\n")
    cmd(port, "AT+CLOUDCONN", OK)


@pytest.mark.parametrize("mode", ["http500", "garbage"])
def test_https_auth_server_errors_are_cme(make_daemon, tmp_path, auth_server, certs, mode):
    server = auth_server(1)
    server.mode = mode
    _, port = start(make_daemon, https_module(tmp_path, server, certs))
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+CME ERROR: 100\r\n")
    assert len(server.requests) == 1


@pytest.mark.parametrize("mode,urc", [
    ("code_fraction", b"+ALIAUTH: FAIL"), ("code_1e300", b"+ALIAUTH: FAIL"),
    ("port_fraction", b"+CME ERROR: 100"), ("port_1e300", b"+CME ERROR: 100"),
    ("port_string", b"+CME ERROR: 100")])
def test_https_auth_malformed_numbers(make_daemon, tmp_path, auth_server, certs, mode, urc):
    server = auth_server(1883)
    server.mode = mode
    _, port = start(make_daemon, https_module(tmp_path, server, certs))
    attach(port)
    cmd(port, AUTH, OK + b"\r\n" + urc + b"\r\n")
    assert len(server.requests) == 1


def test_https_auth_untrusted_server_is_cme(make_daemon, tmp_path, auth_server, certs):
    server = auth_server(1)
    _, port = start(make_daemon, https_module(tmp_path, server, certs,
                                              auth_ca_file=str(certs / "otherca.crt")))
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+CME ERROR: 100\r\n")
    assert server.requests == []


def test_https_auth_server_down_is_cme(make_daemon, tmp_path, certs):
    class Down:
        url = "https://127.0.0.1:%d/auth/devicename" % free_port()
    _, port = start(make_daemon, https_module(tmp_path, Down, certs))
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+CME ERROR: 100\r\n")
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 3\r\n")


def test_https_auth_needs_the_data_call(make_daemon, tmp_path, auth_server, certs):
    server = auth_server(1)
    _, port = start(make_daemon, https_module(tmp_path, server, certs))
    cmd(port, AUTH, OK + b"\r\n+CME ERROR: 3\r\n")
    port.expect_silence(0.3)
    assert server.requests == []


def test_https_auth_timeout_is_reported_after_the_ok(make_daemon, tmp_path, certs):
    """A server that never answers: the module stays usable, a second
    CLOUDAUTH is refused while the first runs, and the result comes after
    auth_timeout_ms."""
    import socket
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)  # accepts TCP, never answers TLS

    class Slow:
        url = "https://127.0.0.1:%d/auth/devicename" % hold.getsockname()[1]
    try:
        _, port = start(make_daemon, https_module(tmp_path, Slow, certs))
        attach(port)
        cmd(port, AUTH, OK)
        state(port, 0)
        cmd(port, AUTH, b"\r\n+CME ERROR: 3\r\n")
        port.expect(b"\r\n+CME ERROR: 100\r\n", timeout=8)  # the 3 s auth timeout
    finally:
        hold.close()


# ------------------------------------------------------------------ tls transport


def tls_broker(mosquitto, tmp_path, certs):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "%s&%s" % (DN, PK),
                    aliyun_password("sha256")], check=True, capture_output=True)
    return mosquitto(listeners=[{"cafile": str(certs / "ca.crt"), "certfile": str(certs / "server.crt"),
                                 "keyfile": str(certs / "server.key")}],
                     options={"password_file": str(pw)}, allow_anonymous=False)


def test_tls_transport_connects_with_securemode_2(make_daemon, tmp_path, mosquitto, certs):
    broker = tls_broker(mosquitto, tmp_path, certs)
    m = me_module(tmp_path, broker.port, aliyun={"transport": "tls", "ca_file": str(certs / "ca.crt")})
    _, port = start(make_daemon, m)
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+ALIAUTH: OK\r\n")
    cmd(port, "AT+CLOUDCONN", OK)
    wait_for(lambda: "as %s.%s|securemode=2,signmethod=hmacsha256,timestamp=%s|" % (PK, DN, TS)
             in broker.log_text(), 5, "the TLS client at the broker")


def test_tls_transport_with_the_wrong_ca_fails(make_daemon, tmp_path, mosquitto, certs):
    broker = tls_broker(mosquitto, tmp_path, certs)
    m = me_module(tmp_path, broker.port,
                  aliyun={"transport": "tls", "ca_file": str(certs / "otherca.crt")})
    _, port = start(make_daemon, m)
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+ALIAUTH: OK\r\n")
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 100\r\n")
    state(port, 0)
