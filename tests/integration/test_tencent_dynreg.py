"""test_tencent_dynreg.py - the tencent dialect's dynamic registration,
AT+TCDEVREG (tencent-at.md §3.3, §6.1, §7.2, §7.4), against the
registration server users run, `vmodule-cloud serve` (its v1 API, POST
/register/dev), with a server certificate signed by the suite's test CA.

The server checks every request on its own: the exact headers, the exact
JSON body with its key order, a positive 31-bit nonce, a timestamp within
60 s of now and the signature of the §7.2 recipe. A request it does not
accept is reported in its events (`errors` here) and answered with the
cloud's "signature check failed" code, so a wrong request can never pass as
a registration. On success it returns the new device secret (psk)
encrypted as §7.4 says (AES-128-CBC, key = first 16 bytes of the product
secret, IV 16 x '0', zero padding). The first tests check the tool's
signer and encryption against the reference's worked examples, and that
its checks can fail.

What the module must do with the answer is then checked where it shows:
AT+TCDEVINFOSET? (the stored triple, also after a daemon restart), a
TLS-PSK connection to a mosquitto that only knows the new psk, and the log
and trace, which never see a secret. Failure paths cover every error code
the module maps (cloud code, HTTP status, TLS, connect, timeout, Wi-Fi)."""

import base64
import json
import os
import re
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import cloud
from conftest import TEST_HOST, free_port, module_config, wait_for
from vmcloud import dynreg, tccrypto  # on sys.path through cloud

PID, DN = "CTQS08Y5LG", "Dev01"
PRD_SECRET = "hzvf5LF9S0isvBhDSauWMaIk"  # §7.2 / §7.4 worked example (24 chars)
PSK = "lDZ6Uqt+I9E0wW7rvDUs7Q=="        # §7.4 example device secret (16 bytes raw)
OLD_SECRET = "ZHNkIGRzZCA="             # a device triple stored before a failed registration
CONNID = "Ab1Cd"
REGION = "ap-guangzhou"
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
BUSY = b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
ACCEPT = "text/xml,application/json;*/*"
CONTENT_TYPE = "application/x-www-form-urlencoded"

BODY_RE = re.compile(
    rb'\{"deviceName":"(?P<dn>[^"\\]*)","nonce":(?P<nonce>[1-9][0-9]*),'
    rb'"productId":"(?P<pid>[^"\\]*)","timestamp":(?P<ts>[1-9][0-9]*),'
    rb'"signature":"(?P<sig>[A-Za-z0-9+/=]*)"\}')


# ------------------------------------------------------------------ the cloud's crypto


def bcc(s):
    """The XOR of the bytes of s, printed by queries in place of a secret."""
    r = 0
    for b in s.encode():
        r ^= b
    return r


# the cloud's side lives in the tool (scripts/vmcloud/tccrypto.py); these
# names are what the tests below (and their readers) know them by
sign_source = tccrypto.v1_sign_source
dynreg_signature = tccrypto.v1_signature
encrypt_payload = tccrypto.encrypt_payload
decrypt_payload = tccrypto.decrypt_payload
new_psk = tccrypto.new_psk
psk_plaintext = dynreg.psk_plaintext


# ------------------------------------------------------------------ the registration server


class DynregServer:
    """The registration server is `vmodule-cloud serve --no-mqtt` (the v1
    API of §7.2 on 127.0.0.1, a server certificate signed by the suite's
    test CA), which checks every request itself (dynreg.py: the exact
    headers, the body with its key order, the nonce, a timestamp within
    60 s, the signature) and answers a wrong one with code 1010.

    `mode` is the tool's --dynreg-fault ("ok" for none): "code1021",
    "http404", "http403", "garbage", "cert", "type_fraction",
    "code_fraction", "code_1e300", "code_string", "hang"; setting it
    reloads the tool's --config (SIGHUP). hold=True delays every answer
    until release(). The product, its secret and the psk go to the tool in
    its config file, never on its command line.

    What the tool saw, from its events: `requests` (method, path,
    headers, body), `errors` (what was wrong with each refused request),
    `connections` (accepted TCP connections), `tls_errors` (failed
    handshakes)."""

    def __init__(self, certs, product_secret=PRD_SECRET, psk=PSK, mode="ok", hold=False):
        self.dir = tempfile.mkdtemp(prefix="dynreg-")
        self.config = os.path.join(self.dir, "policy.json")
        self.policy = {"products": {PID: product_secret}, "devices": {DN: psk},
                       "dynreg_fault": "none" if mode == "ok" else mode, "dynreg_hold": hold}
        self._write()
        hosts = ("127.0.0.1", "::1", "localhost", TEST_HOST)
        self.tool = cloud.CloudTool(["serve", "--no-mqtt", "--cert-dir",
                                     cloud.cert_dir(certs, hosts), "--config", self.config] +
                                    [a for h in hosts for a in ("--cert-host", h)])
        ev = self.tool.wait_event("listening")
        self.port = int(ev["url"].rsplit(":", 1)[1])
        self.url = ev["url"] + "/register/dev"

    def _write(self):
        with open(self.config, "w") as f:
            json.dump(self.policy, f)

    def _reload(self, **changes):
        self.policy.update(changes)
        self._write()
        self.tool.reload()

    @property
    def mode(self):
        fault = self.policy["dynreg_fault"]
        return "ok" if fault == "none" else fault

    @mode.setter
    def mode(self, mode):
        self._reload(dynreg_fault="none" if mode == "ok" else mode)

    def release(self):
        self._reload(dynreg_hold=False)

    @property
    def requests(self):
        return [{"method": e["method"], "path": e["path"], "headers": e["headers"],
                 "body": e["body"].encode()} for e in self.tool.synced("http")]

    @property
    def errors(self):
        return [e["error"] for e in self.tool.synced("http") if e["error"]]

    @property
    def connections(self):
        return len(self.tool.synced("connection"))

    @property
    def tls_errors(self):
        return [e["error"] for e in self.tool.synced("tls_error")]

    def close(self):
        self.tool.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dynreg_server(certs):
    """Factory: dynreg_server(product_secret=PRD_SECRET, psk=PSK, mode="ok", hold=False)."""
    made = []

    def make(**kw):
        s = DynregServer(certs, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


# ------------------------------------------------------------------ module helpers


def tc_module(tmp_path, url, ca_file=None, timeout_ms=None, wifi=WIFI, mqtt_port=1883,
              transport="tcp", name="tc0"):
    t = {"mqtt_transport": transport, "mqtt_host": "127.0.0.1", "mqtt_port": mqtt_port,
         "connid": CONNID, "wifi": wifi, "dynreg_url": url}
    if ca_file:
        t["dynreg_ca_file"] = str(ca_file)
    if timeout_ms is not None:
        t["dynreg_timeout_ms"] = timeout_ms
    return module_config(tmp_path, name, "tencent", echo=False,
                         trace=str(tmp_path / (name + ".trace")), tencent=t)


def start(make_daemon, tmp_path, url, certs=None, joined=True, **kw):
    """A daemon with one tencent module whose dynreg_url is url (trusting
    the suite's CA when certs is given); returns (daemon, port) after the
    banner and, with the default Wi-Fi, the auto-join lines."""
    ca = certs / "ca.crt" if certs is not None else None
    daemon = make_daemon([tc_module(tmp_path, url, ca_file=ca, **kw)], log_level="debug")
    port = daemon.port()
    if joined:
        port.expect(JOINED)
    return daemon, port


def set_product(port, secret=PRD_SECRET, region=None):
    region_arg = ',"%s"' % region if region else ""
    port.cmd('AT+TCPRDINFOSET=1,"%s","%s","%s"%s' % (PID, secret, DN, region_arg))
    port.expect(b"OK\r\n+TCPRDINFOSET:OK\r\n")


def set_device(port, secret=OLD_SECRET, dn="Old01"):
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, dn, secret))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")


def devinfo(psk, dn=DN, region=REGION):
    return b'+TCDEVINFOSET:1,"%s","%s",%d,"%s"\r\n\r\nOK\r\n' % (
        PID.encode(), dn.encode(), bcc(psk), region.encode())


def query_devinfo(port, reply):
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(reply)


def devreg(port, result, server=None, timeout=10.0):
    """AT+TCDEVREG: "OK\\r\\n" then the one result line. When a server is
    given, a request it refused is reported as the reason of a failure."""
    port.cmd("AT+TCDEVREG")
    try:
        port.expect(b"OK\r\n" + result, timeout)
    except pytest.fail.Exception:
        if server is not None and server.errors:
            pytest.fail("the registration server refused the request: %s" % server.errors,
                        pytrace=False)
        raise
    if server is not None:
        assert server.errors == []


# ------------------------------------------------------------------ the test's own crypto


def test_signature_reference_vector():
    """§7.2 worked example: the server's signer is right."""
    assert sign_source(PID, DN, 1234567, 1600000000) == \
        "deviceName=Dev01&nonce=1234567&productId=CTQS08Y5LG&timestamp=1600000000"
    sig = dynreg_signature(PID, DN, PRD_SECRET, 1234567, 1600000000)
    assert sig == "MzVlYWIxZjYzNGMyNWU3ODE4NjdmN2QzOTYwOGRiNGEyNTU2MDExYQ=="
    assert len(sig) == 56


def test_payload_encryption_reference_vector():
    """§7.4 worked example: the server's encryption (openssl CLI) is right,
    zero-padded, no PKCS#7 block."""
    plain = psk_plaintext(PSK)
    assert len(plain) == 53
    payload = encrypt_payload(PRD_SECRET, plain)
    assert payload == ("s6FB3a1BA/YYbcmSE12XpeDVmQNDcf1QgVD141RRbmmAnFwQfp1ECAu5O016mCOvYlJJ6V59y"
                       "M4OqQSiWphfTg==")
    assert len(base64.b64decode(payload)) == 64
    assert decrypt_payload(PRD_SECRET, payload) == plain.encode()


def test_the_server_accepts_a_correct_request_and_refuses_a_wrong_one(dynreg_server, certs):
    """The server's checks can fail: a Python client with the right and the
    wrong signature (so a module's success below means a correct request)."""
    server = dynreg_server()
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))

    def post(secret):
        ts, nonce = int(time.time()), 987654321
        body = ('{"deviceName":"%s","nonce":%d,"productId":"%s","timestamp":%d,"signature":"%s"}'
                % (DN, nonce, PID, ts, dynreg_signature(PID, DN, secret, nonce, ts))).encode()
        req = urllib.request.Request(server.url, data=body, method="POST", headers={
            "Accept": ACCEPT, "Content-Type": CONTENT_TYPE})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.loads(r.read())

    good = post(PRD_SECRET)
    assert server.errors == []
    assert good["code"] == 0 and good["len"] == 53
    assert decrypt_payload(PRD_SECRET, good["payload"]) == psk_plaintext(PSK).encode()
    bad = post("0123456789abcdefXYZ")
    assert bad["code"] == 1010
    assert len(server.errors) == 1 and server.errors[0].startswith("signature ")
    server.mode = "http404"
    with pytest.raises(urllib.error.HTTPError) as e:
        post(PRD_SECRET)
    assert e.value.code == 404


# ------------------------------------------------------------------ success


def test_test_form(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, server.url, certs)
    port.cmd("AT+TCDEVREG=?")
    port.expect(b"\r\nOK\r\n")
    assert server.connections == 0


def test_registration_sends_a_signed_request_and_stores_the_device(
        make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, server.url, certs)
    set_product(port)
    t0 = time.time()
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    assert len(server.requests) == 1
    req = server.requests[0]
    assert (req["method"], req["path"]) == ("POST", "/register/dev")
    assert req["headers"]["Accept"] == ACCEPT
    assert req["headers"]["Content-Type"] == CONTENT_TYPE
    m = BODY_RE.fullmatch(req["body"])
    assert m, req["body"]
    assert abs(int(m["ts"]) - t0) <= 60
    assert json.loads(req["body"])["signature"] == dynreg_signature(
        PID, DN, PRD_SECRET, int(m["nonce"]), int(m["ts"]))
    query_devinfo(port, devinfo(PSK))
    # the product info is still there
    port.cmd("AT+TCPRDINFOSET?")
    port.expect(b'+TCPRDINFOSET:1,"%s",%d,"%s","%s"\r\n\r\nOK\r\n' % (
        PID.encode(), bcc(PRD_SECRET), DN.encode(), REGION.encode()))


def test_busy_while_the_request_is_in_flight(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server(hold=True)
    _, port = start(make_daemon, tmp_path, server.url, certs)
    set_product(port)
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n")
    wait_for(lambda: server.requests, 5, "the registration request at the server")
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(BUSY)
    port.cmd("AT")
    port.expect(BUSY)
    server.release()
    port.expect(b"+TCDEVREG:OK\r\n", 10)
    assert server.errors == []
    port.cmd("AT")
    port.expect(b"\r\nOK\r\n")
    query_devinfo(port, devinfo(PSK))


def test_registered_device_survives_a_restart_with_the_product_region(
        make_daemon, tmp_path, dynreg_server, certs):
    psk = new_psk()
    server = dynreg_server(psk=psk)
    daemon, port = start(make_daemon, tmp_path, server.url, certs)
    set_product(port, region="ap-shanghai")
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    query_devinfo(port, devinfo(psk, region="ap-shanghai"))
    daemon.restart()
    port = daemon.port()
    port.expect(JOINED)
    query_devinfo(port, devinfo(psk, region="ap-shanghai"))


def test_registered_device_connects_over_tls_psk(make_daemon, tmp_path, dynreg_server, certs,
                                                 mosquitto):
    """End to end: the broker only knows the psk the server handed out."""
    psk = new_psk()
    psk_file = tmp_path / "psk.txt"
    psk_file.write_text("%s%s:%s\n" % (PID, DN, base64.b64decode(psk).hex()))
    broker = mosquitto(listeners=[{"psk_hint": "vmodule"}], options={"psk_file": str(psk_file)})
    server = dynreg_server(psk=psk)
    daemon, port = start(make_daemon, tmp_path, server.url, certs, mqtt_port=broker.port,
                         transport="tls-psk")
    set_product(port)
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(b"+TCMQTTSTATE:1\r\n\r\nOK\r\n")
    wait_for(lambda: "as %s%s (" % (PID, DN) in broker.log_text(), 5,
             "the broker to log the module's connection")


def test_mqtt_task_running_refuses_208(make_daemon, tmp_path, dynreg_server, certs, mosquitto):
    broker = mosquitto()
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, server.url, certs, mqtt_port=broker.port)
    set_product(port)
    set_device(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)
    port.cmd("AT+TCDEVREG")
    port.expect(b"+CME ERROR:208\r\n")
    port.cmd("AT")
    port.expect(b"\r\nOK\r\n")
    assert server.connections == 0
    # once the task has ended the command runs
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+TCMQTTDISCON,2\r\n\r\nOK\r\n")
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    query_devinfo(port, devinfo(PSK))


# ------------------------------------------------------------------ refused before any request


def test_no_product_info_fails_207(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, server.url, certs)
    devreg(port, b"+TCDEVREG:FAIL,207\r\n")
    assert server.connections == 0
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")


def test_product_secret_shorter_than_16_fails_1001(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server(product_secret=PRD_SECRET[:16])
    _, port = start(make_daemon, tmp_path, server.url, certs)
    set_product(port, PRD_SECRET[:15])
    devreg(port, b"+TCDEVREG:FAIL,-1001\r\n")
    assert server.connections == 0
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")
    # 16 characters are enough
    set_product(port, PRD_SECRET[:16])
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    query_devinfo(port, devinfo(PSK))


def test_no_wifi_fails_8_without_a_request(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    no_auto_join = {"access_points": WIFI["access_points"], "join_ms": 0}
    _, port = start(make_daemon, tmp_path, server.url, certs, joined=False, wifi=no_auto_join)
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL,-8\r\n")
    assert server.connections == 0
    port.cmd('AT+CWJAP="lab","labpass123"')
    port.expect(JOINED + b"\r\nOK\r\n")
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    assert server.connections == 1


# ------------------------------------------------------------------ failures of the exchange


@pytest.mark.parametrize("mode,code", [
    ("code1021", b"1021"),   # the cloud's own code (§6.2)
    ("http404", b"-10"),
    ("http403", b"-9"),
    ("garbage", b"-1001"),  # HTTP 200, not JSON
    ("cert", b"-1001"),     # code 0, but a certificate device (encryptionType 1)
    ("type_fraction", b"-1001"),  # encryptionType 2.5 is not 2
    ("code_fraction", b"-1001"),
    ("code_1e300", b"-1001"),
    ("code_string", b"-1001"),
])
def test_failed_registration_keeps_the_stored_device(make_daemon, tmp_path, dynreg_server, certs,
                                                     mode, code):
    server = dynreg_server(mode=mode)
    _, port = start(make_daemon, tmp_path, server.url, certs)
    set_device(port)
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL," + code + b"\r\n", server)
    assert len(server.requests) == 1
    query_devinfo(port, devinfo(OLD_SECRET, dn="Old01"))


@pytest.mark.parametrize("ca", [None, "otherca.crt"])
def test_untrusted_server_certificate_fails_8(make_daemon, tmp_path, dynreg_server, certs, ca):
    """The SDK's HTTP client reports a failed handshake like any failed
    connect, QCLOUD_ERR_HTTP_CONN (utils_httpc.c _http_client_connect), not
    the TLS layer's -703 (test_http_faults.py has the other ways)."""
    server = dynreg_server()
    daemon = make_daemon([tc_module(tmp_path, server.url, ca_file=ca and certs / ca)],
                         log_level="debug")
    port = daemon.port()
    port.expect(JOINED)
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL,-8\r\n")
    wait_for(lambda: server.tls_errors, 5, "the failed handshake at the server")
    assert server.requests == []
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")


def test_nothing_listening_fails_8(make_daemon, tmp_path, certs):
    url = "https://127.0.0.1:%d/register/dev" % free_port()
    _, port = start(make_daemon, tmp_path, url, certs)
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL,-8\r\n")
    port.cmd("AT")
    port.expect(b"\r\nOK\r\n")


def test_silent_server_fails_202_after_the_budget(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server(mode="hang")
    _, port = start(make_daemon, tmp_path, server.url, certs, timeout_ms=1500)
    set_product(port)
    t0 = time.monotonic()
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n")
    wait_for(lambda: server.requests, 5, "the registration request at the server")
    port.expect(b"+TCDEVREG:FAIL,202\r\n", 6)
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed <= 5.0, elapsed
    assert server.errors == []
    port.cmd("AT")
    port.expect(b"\r\nOK\r\n")
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")


def test_reset_is_busy_and_shutdown_abandons_the_request(make_daemon, tmp_path, dynreg_server,
                                                         certs):
    """The firmware answers busy to a command line while DEVREG runs
    (reference §1.4); stopping the daemon meanwhile abandons the request
    cleanly (exit 0, no result line, nothing stored)."""
    server = dynreg_server(mode="hang")
    daemon, port = start(make_daemon, tmp_path, server.url, certs, timeout_ms=60000)
    set_product(port)
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n")
    wait_for(lambda: server.requests, 5, "the registration request at the server")
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(BUSY)
    daemon.stop()  # asserts exit status 0
    daemon.start()
    port = daemon.port()  # consumes the banner
    port.expect(JOINED)
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")


def test_at_rst_while_devreg_runs_forces_a_restart(make_daemon, tmp_path, dynreg_server,
                                                  certs):
    """The esp-at core's one exception to busy (esp-at-core.md, Line framing):
    AT+RST CR LF reboots the module; the request is abandoned."""
    server = dynreg_server(mode="hang")
    daemon, port = start(make_daemon, tmp_path, server.url, certs, timeout_ms=60000)
    set_product(port)
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n")
    wait_for(lambda: server.requests, 5, "the registration request at the server")
    port.cmd("AT+RST")
    port.expect(b"\r\nWill force to restart!!!\r\n\r\nready\r\n" + JOINED)
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")
    port.expect_nothing_pending()


# ------------------------------------------------------------------ secrets and config


def test_secrets_never_in_log_or_trace(make_daemon, tmp_path, dynreg_server, certs):
    psk = new_psk()
    server = dynreg_server(psk=psk)
    daemon, port = start(make_daemon, tmp_path, server.url, certs)
    set_product(port)
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    query_devinfo(port, devinfo(psk))
    daemon.stop()
    log = daemon.log_text(all_runs=True)
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    assert "AT+TCDEVREG" in trace  # the trace is the one of this module
    assert log.strip()
    forbidden = [PRD_SECRET, PRD_SECRET[:16], psk, base64.b64decode(psk).hex(),
                 psk_plaintext(psk)]
    for text, name in ((log, "log"), (trace, "trace")):
        for s in forbidden:
            assert s not in text, "%r found in the %s" % (s, name)


@pytest.mark.parametrize("value", [999, 60001, "5000"])
def test_config_dynreg_timeout_range(run_vmoduled, tmp_path, value):
    m = module_config(tmp_path, "tc0", "tencent", tencent={"dynreg_timeout_ms": value})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "modules": [m]}))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmoduled: "), cp.stderr
    assert ("modules[0].tencent.dynreg_timeout_ms: must be an integer between 1000 and 60000"
            in lines[0]), lines[0]
