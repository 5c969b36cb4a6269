"""test_vmodule_cloud.py - `vmodule-cloud serve` through its CLI (issue 11),
without the daemon: a paho client plays the module on a real mosquitto
($sys/operation time, the gateway protocol of §7.6, report_version of
§7.5) and urllib plays its registration client against the HTTPS server
the tool starts, trusting the CA the tool prints (v1 of §7.2, v2 of §7.3,
answers decrypted as §7.4). Every answer is compared byte for byte; an
answer that must not come is shown absent by a later answer on the same
topic (one publisher, one topic: MQTT keeps the order).

`ota push` has its own file (test_vmodule_cloud_ota.py); the module's side
of these protocols is tested in test_tencent_dynreg.py and
test_tencent_gateway.py, which use this tool as their cloud."""
import json
import random
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from cloud import VMODULE_CLOUD, CloudTool
from conftest import MqttPeer
from vmcloud import tccrypto

PID, DN = "CLOUDPRD01", "cloud_dev"
PRD_SECRET = "prdSecretOfTest0123456789"   # the first 16 characters are the AES key
PSK = "cHNrT2ZDbG91ZERldg=="
GW = (PID, DN)
SUB = ("SUBPRD0001", "sub_dev")
SUB_SECRET = "subDeviceSecret01"
SYS_T, SYS_R = "$sys/operation/%s/%s" % GW, "$sys/operation/result/%s/%s" % GW
GW_T, GW_R = "$gateway/operation/%s/%s" % GW, "$gateway/operation/result/%s/%s" % GW
OTA_T, OTA_R = "$ota/report/%s/%s" % GW, "$ota/update/%s/%s" % GW
TIME_REQ = b'{"type":"get","resource":["time"],"clientToken":"t-1"}'


def run_cli(*args):
    return subprocess.run(["/usr/bin/python3", VMODULE_CLOUD] + list(args), capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60)


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory):
    """One CA and server certificate for the whole file (RSA keys take time)."""
    return tmp_path_factory.mktemp("cloud-certs")


@pytest.fixture
def broker(mosquitto):
    return mosquitto()


@pytest.fixture
def serve(broker, cert_dir, tmp_path):
    """serve(*args, config=None) -> CloudTool running `serve` on the test
    broker (plus args), its policy file tmp_path/policy.json when config is
    given; all closed at teardown."""
    made = []

    def start(*args, config=None, mqtt=True, http=False):
        argv = ["serve", "--cert-dir", cert_dir]
        argv += ["--broker", "127.0.0.1:%d" % broker.port] if mqtt else ["--no-mqtt"]
        if not http:
            argv.append("--no-http")
        if config is not None:
            path = tmp_path / "policy.json"
            path.write_text(json.dumps(config))
            argv += ["--config", path]
        tool = CloudTool(argv + list(args))
        made.append(tool)
        tool.listening = tool.wait_event("listening")
        return tool
    yield start
    for t in made:
        t.close()


def peer_on(broker, *topics):
    p = MqttPeer(broker.port)
    for t in topics:
        p.subscribe(t)
    return p


def ask(peer, tool, topic, payload):
    """Publish one request and wait until the tool has taken it."""
    with tool.cond:
        n = len(tool.events)
    peer.publish(topic, payload)
    tool.wait_event("request", start=n, topic=topic)


# ------------------------------------------------------------------ the command line


@pytest.mark.parametrize("args, message", [
    ([], "give --broker HOST:PORT, or --no-mqtt"),
    (["--no-mqtt", "--no-http"], "--no-mqtt and --no-http leave nothing to serve"),
    (["--no-mqtt", "--gw-result", "bind"], "expected KIND=CODE"),
    (["--no-mqtt", "--gw-result", "rebind=0"], "result kind must be one of"),
    (["--no-mqtt", "--gw-result", "bind=x"], "result of bind must be an integer or none"),
    (["--no-mqtt", "--time", "soon"], "time must be auto, none or unix seconds"),
    (["--no-mqtt", "--http-port", "70000"], "--http-port must be 0..65535"),
    (["--broker", "127.0.0.1:x", "--no-http"], "broker must be HOST:PORT, got '127.0.0.1:x'"),
    (["--broker", "[::1]:65536", "--no-http"], "broker must be HOST:PORT, got '[::1]:65536'"),
    (["--no-mqtt", "--dynreg-fault", "boom"], "invalid choice"),
    (["--no-mqtt", "--product", "P1:short"], "the product secret of P1 needs at least 16"),
])
def test_usage_errors_exit_2(args, message):
    r = run_cli("serve", *args)
    assert r.returncode == 2, r
    assert message in r.stderr.decode(), r.stderr
    assert r.stdout == b""


def test_secrets_in_bad_options_are_not_quoted():
    for args in (["--sub-device", "SUBPRD/secretNumberOne"],      # no ':'
                 ["--product", "P1:secretNumberTwo"],              # too short
                 ["--psk", "secretNumberThree"]):                  # no ':'
        r = run_cli("serve", "--no-mqtt", *args)
        assert r.returncode == 2, r
        assert b"secretNumber" not in r.stderr + r.stdout, r.stderr


def test_bad_config_file_exits_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"time": "soon"}')
    r = run_cli("serve", "--no-mqtt", "--config", str(bad))
    assert r.returncode == 2 and b"time must be auto, none or unix seconds" in r.stderr, r
    bad.write_text('{"products": {"P1": "tooShortSecret"}, "colour": 1}')
    r = run_cli("serve", "--no-mqtt", "--config", str(bad))
    assert r.returncode == 2 and b"unknown config key(s): colour" in r.stderr, r
    r = run_cli("serve", "--no-mqtt", "--config", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and b"cannot read" in r.stderr, r


def test_sigterm_ends_with_exit_0(serve):
    tool = serve()
    tool.signal(signal.SIGTERM)
    assert tool.finish() == 0


def test_readable_output_without_json(broker, cert_dir):
    p = subprocess.Popen(["/usr/bin/python3", VMODULE_CLOUD, "serve", "--broker",
                          "127.0.0.1:%d" % broker.port, "--cert-dir", str(cert_dir)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().decode() + p.stdout.readline().decode()
        assert line.startswith("vmodule-cloud serve: MQTT on 127.0.0.1:%d; registration on "
                               "https://127.0.0.1:" % broker.port), line
        # the line a user copies into the module's config
        assert '"tencent": {"dynreg_url": "https://127.0.0.1:' in line
        assert '/register/dev", "dynreg_ca_file": "%s/ca.crt"}' % cert_dir in line, line
    finally:
        p.terminate()
        assert p.wait(10) == 0


# ------------------------------------------------------------------ $sys/operation time


def test_time_fixed_auto_and_none_through_reload(serve, broker, tmp_path):
    tool = serve(config={"time": "none"})
    peer = peer_on(broker, SYS_R)
    try:
        ask(peer, tool, SYS_T, TIME_REQ)                      # time none: no answer
        (tmp_path / "policy.json").write_text('{"time": 1700000000}')
        tool.reload()
        ask(peer, tool, SYS_T, TIME_REQ)
        assert peer.wait_msgs(1) == [(SYS_R, b'{"type":"get","time":1700000000}')]
        (tmp_path / "policy.json").write_text('{"time": "auto"}')
        tool.reload()
        before = int(time.time())
        ask(peer, tool, SYS_T, TIME_REQ)
        topic, payload = peer.wait_msgs(2)[1]
        t = json.loads(payload)["time"]
        assert topic == SYS_R and payload == b'{"type":"get","time":%d}' % t
        assert before <= t <= time.time() + 1
        # not a time request: no answer, then a fixed time from the command line's reload
        ask(peer, tool, SYS_T, b'{"type":"get","resource":["weather"]}')
        ask(peer, tool, SYS_T, b"not json")
        ask(peer, tool, SYS_T, TIME_REQ)
        assert len(peer.wait_msgs(3)) == 3
        assert tool.count("reply") == 3
    finally:
        peer.close()


def test_time_raw_reply_replaces_the_answer(serve, broker):
    tool = serve("--raw-reply", "time=garbage", "--raw-reply", 'time={"type":"get","time":5}')
    peer = peer_on(broker, SYS_R)
    try:
        ask(peer, tool, SYS_T, TIME_REQ)
        assert peer.wait_msgs(2) == [(SYS_R, b"garbage"), (SYS_R, b'{"type":"get","time":5}')]
    finally:
        peer.close()


def test_reload_of_a_bad_config_keeps_the_policy(serve, broker, tmp_path):
    tool = serve(config={"time": 42})
    peer = peer_on(broker, SYS_R)
    try:
        (tmp_path / "policy.json").write_text('{"time": [1]}')
        n = len(tool.events)
        tool.signal(signal.SIGHUP)
        ev = tool.wait_event("reload_failed", start=n)
        assert "time must be auto, none or unix seconds" in ev["error"]
        ask(peer, tool, SYS_T, TIME_REQ)
        assert peer.wait_msgs(1) == [(SYS_R, b'{"type":"get","time":42}')]
    finally:
        peer.close()


# ------------------------------------------------------------------ report_version


def test_report_version_reply(serve, broker, tmp_path):
    tool = serve(config={})
    peer = peer_on(broker, OTA_R)
    try:
        ask(peer, tool, OTA_T, b'{"type": "report_version", "report":{"version":"1.2.3"}}')
        assert peer.wait_msgs(1) == [(OTA_R, b'{"result_code":0,"result_msg":"success",'
                                              b'"type":"report_version_rsp","version":"1.2.3"}')]
        # progress reports and a version that is not a string: no answer
        ask(peer, tool, OTA_T, b'{"type": "report_progress", "report": {"progress": '
                               b'{"state":"downloading", "percent":"0"}, "version": "2.0.0"}}')
        ask(peer, tool, OTA_T, b'{"type": "report_version", "report":{"version":7}}')
        (tmp_path / "policy.json").write_text('{"version_reply": false}')
        tool.reload()
        ask(peer, tool, OTA_T, b'{"type": "report_version", "report":{"version":"1.2.4"}}')
        (tmp_path / "policy.json").write_text(json.dumps({"raw_replies": {
            "report_version": ['{"x":1}']}}))
        tool.reload()
        ask(peer, tool, OTA_T, b'{"type": "report_version", "report":{"version":"1.2.5"}}')
        assert peer.wait_msgs(2)[1:] == [(OTA_R, b'{"x":1}')]
    finally:
        peer.close()


def test_no_version_reply_option(serve, broker):
    tool = serve("--no-version-reply", "--time", "9")
    peer = peer_on(broker, OTA_R, SYS_R)
    try:
        ask(peer, tool, OTA_T, b'{"type": "report_version", "report":{"version":"1.2.3"}}')
        ask(peer, tool, SYS_T, TIME_REQ)
        assert peer.wait_msgs(1) == [(SYS_R, b'{"type":"get","time":9}')]
        tool.sync()
        assert tool.count("reply") == 1
    finally:
        peer.close()


# ------------------------------------------------------------------ the gateway (§7.6)


def bind_device(pid, dn, secret, method="hmacsha256", authtype="psk", r=None, t=None):
    r = random.randint(1, 2 ** 31 - 1) if r is None else r
    t = int(time.time()) if t is None else t
    sign = method if method in tccrypto.V2_HASHES else "hmacsha1"
    return {"product_id": pid, "device_name": dn,
            "signature": tccrypto.bind_signature(pid, dn, secret, r, t, sign),
            "random": r, "timestamp": t, "signmethod": method, "authtype": authtype}


def gw_request(kind, *devices):
    if kind == "describe_sub_devices":
        return json.dumps({"type": kind}).encode()
    return json.dumps({"type": kind, "payload": {"devices": list(devices)}}).encode()


def gw_answer(kind, results):
    """The tool's answer: [(pid, dn, code)] in request order, no spaces."""
    devs = ",".join('{"product_id":"%s","device_name":"%s","result":%d}' % r for r in results)
    return b'{"type":"%s","payload":{"devices":[%s]}}' % (kind.encode(), devs.encode())


def plain(pid, dn):
    return {"product_id": pid, "device_name": dn}


def test_gateway_bind_online_describe_unbind(serve, broker):
    tool = serve("--sub-device", "%s/%s:%s" % (SUB + (SUB_SECRET,)))
    peer = peer_on(broker, GW_R)
    other = ("SUBPRD0002", "stranger")
    try:
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*SUB, SUB_SECRET)))
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*SUB, SUB_SECRET, "hmacsha1")))
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*SUB, "notTheSecret")))
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*other, "anything")))
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*SUB, SUB_SECRET, "md5")))
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*SUB, SUB_SECRET, authtype="cert")))
        ask(peer, tool, GW_T, gw_request("describe_sub_devices"))
        ask(peer, tool, GW_T, gw_request("online", plain(*SUB), plain(*other)))
        ask(peer, tool, GW_T, gw_request("offline", plain(*SUB)))
        ask(peer, tool, GW_T, gw_request("unbind", plain(*SUB)))
        ask(peer, tool, GW_T, gw_request("describe_sub_devices"))
        got = [m[1] for m in peer.wait_msgs(11)]
        assert got == [
            gw_answer("bind", [SUB + (0,)]),
            gw_answer("bind", [SUB + (809,)]),          # bound already
            gw_answer("bind", [SUB + (803,)]),          # wrong signature
            gw_answer("bind", [other + (803,)]),        # no secret for it
            gw_answer("bind", [SUB + (804,)]),          # sign method
            gw_answer("bind", [SUB + (801,)]),          # auth type
            b'{"type":"describe_sub_devices","payload":{"devices":'
            b'[{"product_id":"SUBPRD0001","device_name":"sub_dev"}]}}',
            gw_answer("online", [SUB + (0,), other + (0,)]),
            gw_answer("offline", [SUB + (0,)]),
            gw_answer("unbind", [SUB + (0,)]),
            b'{"type":"describe_sub_devices","payload":{"devices":[]}}',
        ]
        bad = tool.synced("bad_signature")
        assert [(e["device"], e["error"]) for e in bad] == [
            ("sub_dev", "signature does not match"), ("stranger", "unknown sub-device")]
        assert SUB_SECRET not in "\n".join(tool.lines) + tool.stderr()
    finally:
        peer.close()


def test_gateway_require_bind_results_decoys_and_bad_requests(serve, broker, tmp_path):
    tool = serve("--require-bind", "--gw-result", "online=none", "--gw-result", "offline=-2",
                 "--decoy", "decoy-1", config={"sub_devices": {"%s/%s" % SUB: SUB_SECRET}})
    peer = peer_on(broker, GW_R)
    try:
        ask(peer, tool, GW_T, gw_request("online", plain(*SUB)))          # no answer
        ask(peer, tool, GW_T, gw_request("unbind", plain(*SUB)))          # never bound: -1
        ask(peer, tool, GW_T, b'{"type":"bind","payload":{"devices":[]}}')  # no answer
        ask(peer, tool, GW_T, b'{"type":"reboot"}')                        # no answer
        ask(peer, tool, GW_T, gw_request("bind", bind_device(*SUB, SUB_SECRET)))
        ask(peer, tool, GW_T, gw_request("offline", plain(*SUB)))
        (tmp_path / "policy.json").write_text(json.dumps({"results": {"bind": 810},
                                                          "decoys": []}))
        tool.reload()
        ask(peer, tool, GW_T, gw_request("bind", bind_device("SUBPRD0003", "x", "s")))
        got = [m[1] for m in peer.wait_msgs(7)]
        assert got == [b"decoy-1", gw_answer("unbind", [SUB + (-1,)]),
                       b"decoy-1", gw_answer("bind", [SUB + (0,)]),
                       b"decoy-1", gw_answer("offline", [SUB + (-2,)]),
                       gw_answer("bind", [("SUBPRD0003", "x", 803)])]
    finally:
        peer.close()


def test_resubscribes_after_broker_restart(serve, broker):
    tool = serve("--time", "77")
    broker.restart()
    tool.wait_event("resubscribed")
    peer = peer_on(broker, SYS_R)
    try:
        ask(peer, tool, SYS_T, TIME_REQ)
        assert peer.wait_msgs(1) == [(SYS_R, b'{"type":"get","time":77}')]
    finally:
        peer.close()


# ------------------------------------------------------------------ dynamic registration


def post(tool, path, body, headers, host=None):
    """POST over HTTPS trusting the CA the tool printed: (status, body)."""
    url = tool.listening["url"] + path
    ctx = ssl.create_default_context(cafile=tool.listening["ca"])
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def v1_request(pid=PID, dn=DN, secret=PRD_SECRET, ts=None, nonce=None):
    ts = int(time.time()) if ts is None else ts
    nonce = random.randint(1, 2 ** 31 - 1) if nonce is None else nonce
    sig = tccrypto.v1_signature(pid, dn, secret, nonce, ts)
    return ('{"deviceName":"%s","nonce":%d,"productId":"%s","timestamp":%d,"signature":"%s"}'
            % (dn, nonce, pid, ts, sig)).encode()


V1_HEADERS = {"Accept": "text/xml,application/json;*/*",
              "Content-Type": "application/x-www-form-urlencoded"}


def v2_post(tool, pid=PID, dn=DN, secret=PRD_SECRET, algo="HmacSha256", ts=None, body=None):
    body = body or ('{"ProductId":"%s","DeviceName":"%s"}' % (pid, dn)).encode()
    ts = str(int(time.time()) if ts is None else ts)
    nonce = str(random.randint(1, 2 ** 31 - 1))
    host = tool.listening["url"].split("://")[1]
    sign = algo if algo.lower() in tccrypto.V2_HASHES else "HmacSha256"
    sig = tccrypto.v2_signature(secret, host, sign, ts, nonce, body)
    return post(tool, "/device/register", body, {
        "Content-Type": "application/json; charset=utf-8", "X-TC-Algorithm": algo,
        "X-TC-Timestamp": ts, "X-TC-Nonce": nonce, "X-TC-Signature": sig}, host=host)


REGISTRAR = {"products": {PID: PRD_SECRET}, "devices": {DN: PSK}}


@pytest.fixture
def registrar(serve):
    """serve --no-mqtt with the product and the psk of DN (from --config)."""
    return lambda *args: serve(*args, mqtt=False, http=True, config=REGISTRAR)


def psk_of(payload):
    return json.loads(tccrypto.decrypt_payload(PRD_SECRET, payload))


def test_v1_registration_success(registrar):
    tool = registrar()
    status, body = post(tool, "/register/dev", v1_request(), V1_HEADERS)
    assert status == 200
    doc = json.loads(body)
    assert list(doc) == ["code", "message", "len", "payload", "requestId"]
    assert doc["code"] == 0 and doc["message"] == "success"
    plain_text = b'{"encryptionType":2,"psk":"%s"}' % PSK.encode()
    assert doc["len"] == len(plain_text)
    assert tccrypto.decrypt_payload(PRD_SECRET, doc["payload"]) == plain_text
    ev = tool.wait_event("registered")
    assert (ev["product"], ev["device"], ev["api"]) == (PID, DN, "v1")
    # another device gets a psk made for it, the same one each time
    first = psk_of(json.loads(post(tool, "/register/dev", v1_request(dn="dev2"), V1_HEADERS)[1])
                   ["payload"])["psk"]
    again = psk_of(json.loads(post(tool, "/register/dev", v1_request(dn="dev2"), V1_HEADERS)[1])
                   ["payload"])["psk"]
    assert first == again and len(first) == 24 and first != PSK
    out = "\n".join(tool.lines) + tool.stderr()
    for secret in (PRD_SECRET, PSK, first):
        assert secret not in out


@pytest.mark.parametrize("case, code, message", [
    ("unknown product", 1004, "product not exists"),
    ("content type", 1006, "bad param"),
    ("accept", 1006, "bad param"),
    ("body", 1006, "bad param"),
    ("signature", 1010, "signature check failed"),
    ("old timestamp", 1010, "signature check failed"),
    ("nonce", 1010, "signature check failed"),
])
def test_v1_registration_refusals(registrar, case, code, message):
    tool = registrar()
    headers, body = dict(V1_HEADERS), v1_request()
    if case == "unknown product":
        body = v1_request(pid="NOSUCHPRD1")
    elif case == "content type":
        headers["Content-Type"] = "application/json"
    elif case == "accept":
        headers["Accept"] = "*/*"
    elif case == "body":
        body = body.replace(b'{"deviceName"', b'{ "deviceName"')
    elif case == "signature":
        body = v1_request(secret="anotherProductSecret00")
    elif case == "old timestamp":
        body = v1_request(ts=int(time.time()) - 120)
    elif case == "nonce":
        body = v1_request(nonce=2 ** 31)
    status, answer = post(tool, "/register/dev", body, headers)
    assert status == 200
    doc = json.loads(answer)
    assert list(doc) == ["code", "message", "requestId"]
    assert (doc["code"], doc["message"]) == (code, message)
    assert tool.synced("registered") == []
    ev = tool.synced("http")[-1]
    assert ev["status"] == 200 and ev["error"]
    assert bool(tool.synced("bad_signature")) == (case == "signature")


def test_v2_registration_success_and_refusals(registrar):
    tool = registrar()
    for algo in ("HmacSha256", "HmacSha1"):
        status, answer = v2_post(tool, algo=algo)
        assert status == 200
        doc = json.loads(answer)["Response"]
        assert list(doc) == ["Len", "Payload", "RequestId"]
        assert tccrypto.decrypt_payload(PRD_SECRET, doc["Payload"]) == \
            b'{"encryptionType":2,"psk":"%s"}' % PSK.encode()
    assert [e["api"] for e in tool.synced("registered")] == ["v2", "v2"]
    for kw, code, message in [
            ({"pid": "NOSUCHPRD1"}, 1004, "product not exists"),
            ({"algo": "HmacMd5"}, 1006, "bad param"),
            ({"body": b'{"DeviceName":"cloud_dev","ProductId":"CLOUDPRD01"}'}, 1006, "bad param"),
            ({"secret": "anotherProductSecret00"}, 1010, "signature check failed"),
            ({"ts": int(time.time()) + 300}, 1010, "signature check failed")]:
        status, answer = v2_post(tool, **kw)
        assert status == 200, kw
        doc = json.loads(answer)["Response"]
        assert list(doc) == ["Error", "RequestId"], kw
        assert doc["Error"] == {"Code": code, "Message": message}, kw


def test_registration_path_and_faults(registrar, tmp_path):
    tool = registrar("--dynreg-fault", "code1021")
    assert post(tool, "/register/other", v1_request(), V1_HEADERS) == \
        (404, b"<html><body>404 Not Found</body></html>")
    doc = json.loads(post(tool, "/register/dev", v1_request(), V1_HEADERS)[1])
    assert (doc["code"], doc["message"]) == (1021, "device already registered")
    for fault, want in [("http403", (403, b"<html><body>403 Forbidden</body></html>")),
                        ("http404", (404, b"<html><body>404 Not Found</body></html>")),
                        ("garbage", (200, b"<html>not json</html>"))]:
        (tmp_path / "policy.json").write_text(json.dumps(dict(REGISTRAR, dynreg_fault=fault)))
        tool.reload()
        assert post(tool, "/register/dev", v1_request(), V1_HEADERS) == want, fault
    (tmp_path / "policy.json").write_text(json.dumps(dict(REGISTRAR, dynreg_fault="code_string")))
    tool.reload()
    answer = post(tool, "/register/dev", v1_request(), V1_HEADERS)[1]
    assert answer.startswith(b'{"code":"0","message":"success","len":'), answer


def test_registration_hold_until_reload(registrar, tmp_path):
    tool = registrar("--dynreg-hold")
    result = []
    t = threading.Thread(target=lambda: result.append(
        post(tool, "/register/dev", v1_request(), V1_HEADERS)))
    t.start()
    tool.wait_event("http")
    t.join(0.3)
    assert result == []                       # held
    (tmp_path / "policy.json").write_text(json.dumps(dict(REGISTRAR, dynreg_hold=False)))
    tool.reload()
    t.join(10)
    assert result and result[0][0] == 200 and json.loads(result[0][1])["code"] == 0


def test_tls_handshake_failure_is_an_event(registrar):
    tool = registrar()
    host, port = tool.listening["url"].split("://")[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")      # plain HTTP to the TLS port
        try:
            s.recv(100)
        except OSError:
            pass
    ev = tool.wait_event("tls_error")
    assert ev["error"]
    assert tool.wait_event("connection")["peer"].startswith("127.0.0.1:")
