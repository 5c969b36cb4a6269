"""test_tencent_dynreg_v2.py - dynamic registration over the v2 API
(tencent.dynreg_api "v2": POST /device/register, tencent-at.md §7.3, §7.4),
beside the v1 cases of test_tencent_dynreg.py, against the same server
users run (`vmodule-cloud serve`), which checks a v2 request itself: the
Content-Type, X-TC-Algorithm, X-TC-Timestamp within 60 s, X-TC-Nonce, the
body {"ProductId":..,"DeviceName":..} and X-TC-Signature over the string to
sign with the Host header as it arrived.

Every failure must give the AT result v1 gives for the same situation: the
cloud's code (v2 carries it in Response.Error.Code), -9 / -10 for HTTP 403 /
404, -1001 for an unusable answer, -8 when no connection is made, 202 when
the budget runs out. The cloud-code cases run on both APIs."""

import json
import time

import pytest

from conftest import free_port, module_config
from test_tencent_dynreg import (  # the v1 file's server, module and helpers
    DN, JOINED, OLD_SECRET, PID, PRD_SECRET, PSK, WIFI, devinfo, devreg, query_devinfo,
    set_device, set_product)
from test_tencent_dynreg import dynreg_server  # noqa: F401  (a fixture, used by name)
from vmcloud import tccrypto  # on sys.path through cloud
V2_CONTENT_TYPE = "application/json; charset=utf-8"
V2_BODY = b'{"ProductId":"%s","DeviceName":"%s"}'


def tc_module(tmp_path, url, certs=None, api="v2", timeout_ms=None, wifi=WIFI):
    t = {"mqtt_transport": "tcp", "mqtt_host": "127.0.0.1", "mqtt_port": 1883, "wifi": wifi,
         "dynreg_url": url}
    if api:
        t["dynreg_api"] = api
    if certs is not None:
        t["dynreg_ca_file"] = str(certs / "ca.crt")
    if timeout_ms is not None:
        t["dynreg_timeout_ms"] = timeout_ms
    return module_config(tmp_path, "tc0", "tencent", echo=False,
                         trace=str(tmp_path / "tc0.trace"), tencent=t)


def v2_url(server):
    return server.url.replace("/register/dev", "/device/register")


def start(make_daemon, tmp_path, url, certs=None, **kw):
    daemon = make_daemon([tc_module(tmp_path, url, certs, **kw)], log_level="debug")
    port = daemon.port()
    port.expect(JOINED)
    return daemon, port


def url_for(server, api):
    return v2_url(server) if api == "v2" else server.url


# ------------------------------------------------------------------ success


def test_v2_registration_sends_the_signed_request_and_stores_the_device(
        make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    daemon, port = start(make_daemon, tmp_path, v2_url(server), certs)
    set_product(port, region="ap-shanghai")
    t0 = time.time()
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    reqs = server.requests
    assert len(reqs) == 1
    req = reqs[0]
    h = req["headers"]
    assert (req["method"], req["path"]) == ("POST", "/device/register")
    assert req["body"] == V2_BODY % (PID.encode(), DN.encode())
    assert h["Content-Type"] == V2_CONTENT_TYPE
    assert h["Accept"] == "application/json;*/*"
    assert h["X-TC-Algorithm"] == "hmacsha256"
    assert h["Host"] == "127.0.0.1:%d" % server.port
    assert abs(int(h["X-TC-Timestamp"]) - t0) <= 60
    assert 1 <= int(h["X-TC-Nonce"]) <= 0x7FFFFFFF
    assert h["X-TC-Signature"] == tccrypto.v2_signature(
        PRD_SECRET, h["Host"], "hmacsha256", h["X-TC-Timestamp"], h["X-TC-Nonce"], req["body"])
    query_devinfo(port, devinfo(PSK, region="ap-shanghai"))
    daemon.restart()
    port = daemon.port()
    port.expect(JOINED)
    query_devinfo(port, devinfo(PSK, region="ap-shanghai"))


def test_v2_signs_the_host_name_it_sends(make_daemon, tmp_path, dynreg_server, certs):
    """The Host header (and so the string to sign) is the URL's authority."""
    server = dynreg_server()
    url = "https://localhost:%d/device/register" % server.port
    _, port = start(make_daemon, tmp_path, url, certs)
    set_product(port)
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    assert server.requests[0]["headers"]["Host"] == "localhost:%d" % server.port


def test_v1_stays_the_default(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, server.url, certs, api=None)
    set_product(port)
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    assert [r["path"] for r in server.requests] == ["/register/dev"]


# ------------------------------------------------------------------ the cloud's codes, both APIs


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_unknown_product_fails_1004(make_daemon, tmp_path, dynreg_server, certs, api):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, url_for(server, api), certs, api=api)
    port.cmd('AT+TCPRDINFOSET=1,"NOSUCHPRD1","%s","%s"' % (PRD_SECRET, DN))
    port.expect(b"OK\r\n+TCPRDINFOSET:OK\r\n")
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n+TCDEVREG:FAIL,1004\r\n", 10)
    assert server.errors == ["unknown product NOSUCHPRD1"]


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_wrong_product_secret_fails_1010(make_daemon, tmp_path, dynreg_server, certs, api):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, url_for(server, api), certs, api=api)
    set_device(port)
    set_product(port, "0123456789abcdefXYZ")
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n+TCDEVREG:FAIL,1010\r\n", 10)
    assert len(server.errors) == 1 and server.errors[0].startswith("signature ")
    query_devinfo(port, devinfo(OLD_SECRET, dn="Old01"))


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_name_the_body_cannot_carry_fails_1006(make_daemon, tmp_path, dynreg_server, certs,
                                                 api):
    """The SDKs print the names into the JSON body unescaped: a '"' in the
    device name makes a body the cloud refuses as a bad parameter."""
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, url_for(server, api), certs, api=api)
    port.cmd('AT+TCPRDINFOSET=1,"%s","%s","Dev\\"01"' % (PID, PRD_SECRET))
    port.expect(b"OK\r\n+TCPRDINFOSET:OK\r\n")
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n+TCDEVREG:FAIL,1006\r\n", 10)
    assert len(server.errors) == 1 and "body not in the" in server.errors[0]
    assert 'Dev"01' in server.requests[0]["body"].decode()


@pytest.mark.parametrize("mode,code", [
    ("code1021", b"1021"),
    ("http404", b"-10"),
    ("http403", b"-9"),
    ("garbage", b"-1001"),        # HTTP 200, not JSON
    ("cert", b"-1001"),           # a certificate device (encryptionType 1)
    ("type_fraction", b"-1001"),  # encryptionType 2.5
])
def test_v2_failed_registration_keeps_the_stored_device(make_daemon, tmp_path, dynreg_server,
                                                        certs, mode, code):
    server = dynreg_server(mode=mode)
    _, port = start(make_daemon, tmp_path, v2_url(server), certs)
    set_device(port)
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL," + code + b"\r\n", server)
    assert [r["path"] for r in server.requests] == ["/device/register"]
    query_devinfo(port, devinfo(OLD_SECRET, dn="Old01"))


def test_v2_client_takes_a_v1_answer_as_unusable(make_daemon, tmp_path, dynreg_server, certs):
    """A v2 request sent to the v1 path gets a v1 answer (code 1006 there):
    no Response object, so -1001, not the v1 code."""
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, server.url, certs)
    set_product(port)
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n+TCDEVREG:FAIL,-1001\r\n", 10)
    assert len(server.errors) == 1


# ------------------------------------------------------------------ the transport, as v1


def test_v2_silent_server_fails_202(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server(mode="hang")
    _, port = start(make_daemon, tmp_path, v2_url(server), certs, timeout_ms=1500)
    set_product(port)
    t0 = time.monotonic()
    port.cmd("AT+TCDEVREG")
    port.expect(b"OK\r\n+TCDEVREG:FAIL,202\r\n", 6)
    assert 1.3 <= time.monotonic() - t0 <= 5.0
    assert [r["path"] for r in server.requests] == ["/device/register"]
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")


def test_v2_untrusted_certificate_fails_8(make_daemon, tmp_path, dynreg_server, certs):
    server = dynreg_server()
    _, port = start(make_daemon, tmp_path, v2_url(server))  # the system store
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL,-8\r\n")
    assert server.requests == []


def test_v2_nothing_listening_fails_8(make_daemon, tmp_path, certs):
    _, port = start(make_daemon, tmp_path,
                    "https://127.0.0.1:%d/device/register" % free_port(), certs)
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL,-8\r\n")


def test_v2_no_wifi_and_short_secret_fail_before_a_request(make_daemon, tmp_path, dynreg_server,
                                                           certs):
    server = dynreg_server()
    daemon = make_daemon([tc_module(tmp_path, v2_url(server), certs,
                                    wifi={"access_points": WIFI["access_points"], "join_ms": 0})])
    port = daemon.port()
    set_product(port)
    devreg(port, b"+TCDEVREG:FAIL,-8\r\n")
    port.cmd('AT+CWJAP="lab","labpass123"')
    port.expect(JOINED + b"\r\nOK\r\n")
    set_product(port, PRD_SECRET[:15])
    devreg(port, b"+TCDEVREG:FAIL,-1001\r\n")
    assert server.connections == 0


# ------------------------------------------------------------------ secrets and config


def test_v2_secrets_never_in_log_or_trace(make_daemon, tmp_path, dynreg_server, certs):
    psk = tccrypto.new_psk()
    server = dynreg_server(psk=psk)
    daemon, port = start(make_daemon, tmp_path, v2_url(server), certs)
    set_product(port)
    devreg(port, b"+TCDEVREG:OK\r\n", server)
    query_devinfo(port, devinfo(psk))
    daemon.stop()
    log = daemon.log_text(all_runs=True)
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    assert "(v2)" in log
    for text, name in ((log, "log"), (trace, "trace")):
        for s in (PRD_SECRET, PRD_SECRET[:16], psk):
            assert s not in text, "%r found in the %s" % (s, name)


@pytest.mark.parametrize("value", ["v3", "V2", 2, None])
def test_config_dynreg_api_values(run_vmoduled, tmp_path, value):
    m = module_config(tmp_path, "tc0", "tencent", tencent={"dynreg_api": value})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "modules": [m]}))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2
    assert 'modules[0].tencent.dynreg_api: must be "v1" or "v2"' in cp.stderr, cp.stderr
