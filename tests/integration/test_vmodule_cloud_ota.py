"""test_vmodule_cloud_ota.py - `vmodule-cloud ota push` through its CLI
(issue 11; reference §3.10, §7.5), on a real mosquitto and its real HTTPS/HTTP
server, without the daemon: a scripted device (a paho client) plays the
module's side of §3.10 (it subscribes $ota/update, sends the §7.5 reports
byte for byte and fetches the image with the SDK's `Range: bytes=<offset>-
<size>`), and a raw socket client reads the download server's answers byte
for byte (so a cut or a stall shows exactly where it happened)."""
import hashlib
import json
import re
import signal
import socket
import ssl
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from cloud import VMODULE_CLOUD, CloudTool
from conftest import MqttPeer, free_port, wait_for

PID, DN = "OTAPRD0001", "ota_dev"
UPDATE = "$ota/update/%s/%s" % (PID, DN)
REPORT = "$ota/report/%s/%s" % (PID, DN)
SIZE = 10000
IMAGE = bytes((i * 7 + i // 256) & 0xFF for i in range(SIZE))
MD5 = hashlib.md5(IMAGE).hexdigest()


# the device's reports of §7.5, byte for byte
def version_report(ver):
    return ('{"type": "report_version", "report":{"version":"%s"}}' % ver).encode()


def progress_report(ver, percent):
    return ('{"type": "report_progress", "report": {"progress": {"state":"downloading", '
            '"percent":"%d", "result_code":"0", "result_msg":""}, "version": "%s"}}'
            % (percent, ver)).encode()


def fail_report(ver, code):
    return ('{"type": "report_progress", "report": {"progress": {"state":"fail", '
            '"result_code":"%d", "result_msg":"time_out"}, "version": "%s"}}' % (code, ver)).encode()


def done_report(ver):
    return ('{"type": "report_progress", "report":{"progress":{"state":"done", "result_code":"0", '
            '"result_msg":""}, "version":"%s"}}' % ver).encode()


def update_firmware(url, version="2.0.0", md5=MD5, size=SIZE):
    return ('{"file_size":%d,"md5sum":"%s","type":"update_firmware","url":"%s","version":"%s"}'
            % (size, md5, url, version)).encode()


# ------------------------------------------------------------------ helpers


class Reply:
    def __init__(self, raw, timed_out):
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1]) if lines[0] else None
        self.headers = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
        self.timed_out = timed_out


def fetch(url, ca=None, rng=None, method="GET", timeout=10.0):
    """One request on a new connection (Connection: close); reads until the
    server closes it or `timeout` passes without a byte."""
    u = urlsplit(url)
    sock = socket.create_connection(("127.0.0.1", u.port), timeout=timeout)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False  # the URL may name a host this machine does not resolve
        sock = ctx.wrap_socket(sock)
    req = "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n" % (method, u.path, u.netloc)
    sock.sendall((req + ("Range: %s\r\n" % rng if rng else "") + "\r\n").encode())
    raw, timed_out = b"", False
    with sock:
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                timed_out = True
                break
            if not chunk:
                break
            raw += chunk
    return Reply(raw, timed_out)


def http_event(method="GET", path="/fw.bin", rng=None, status=200, sent=0, cut=False,
               stalled=False):
    return {"event": "http", "method": method, "path": path, "range": rng, "status": status,
            "sent": sent, "cut": cut, "stalled": stalled}


def http_events(tool, n):
    """The tool's http events, once there are n (each is printed when its
    request ends, which may be just after the client read the answer)."""
    wait_for(lambda: tool.count("http") >= n, 10, "%d http events" % n)
    return [e for e in tool.events if e["event"] == "http"]


class Device(MqttPeer):
    """The module's side of §3.10: listens on $ota/update, reports on
    $ota/report, downloads as the SDK does and keeps what it got (the OTA
    area) so that a retry resumes at downloaded_size."""

    def __init__(self, port, ca=None):
        super().__init__(port, UPDATE, 1)
        self.ca = ca
        self.stored = b""

    def report(self, payload):
        self.publish(REPORT, payload, qos=1)

    def update(self, n=1, timeout=10.0):
        """The n-th update_firmware message (raw bytes)."""
        return self.wait_msgs(n, timeout)[n - 1][1]

    def download(self, update):
        """One attempt; True when the whole image is stored."""
        msg = json.loads(update)
        r = fetch(msg["url"], self.ca, "bytes=%d-%d" % (len(self.stored), msg["file_size"]))
        if r.status == 200:  # the server ignored Range: start again from 0
            self.stored = b""
        if r.status in (200, 206):
            self.stored += r.body
        return len(self.stored) == msg["file_size"]


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory):
    # made by the first tool run, reused by the others (as a user's is)
    return tmp_path_factory.mktemp("cloud-certs")


@pytest.fixture
def firmware(tmp_path):
    path = tmp_path / "fw.bin"
    path.write_bytes(IMAGE)
    return path


@pytest.fixture
def ota(firmware, cert_dir):
    """ota(*options, broker=port or None) -> CloudTool running
    `ota push FIRMWARE` (with --serve-only when no broker is given)."""
    tools = []

    def start(*options, broker=None, version="2.0.0"):
        args = ["ota", "push", firmware, "--cert-dir", cert_dir] + list(options)
        if broker is None:
            args.append("--serve-only")
        else:
            args += ["--broker", "127.0.0.1:%d" % broker, "--product", PID, "--device", DN,
                     "--version", version]
        tool = CloudTool(args)
        tools.append(tool)
        tool.listening = tool.wait_event("listening")
        tool.url = tool.listening["url"]
        return tool

    yield start
    for t in tools:
        t.close()


def run_cli(*args):
    return subprocess.run(["/usr/bin/python3", VMODULE_CLOUD] + [str(a) for a in args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


# ------------------------------------------------------------------ the push


def test_push_publishes_update_firmware_byte_for_byte_and_exits_0_on_done(ota, mosquitto,
                                                                          cert_dir):
    broker = mosquitto()
    device = Device(broker.port)
    tool = ota("--username", "cloud", "--password", "s3cret-pw", broker=broker.port)
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/fw\.bin", tool.url), tool.url
    assert tool.listening["ca"] == str(cert_dir / "ca.crt")
    expected = update_firmware(tool.url)
    assert device.update() == expected
    assert tool.wait_event("published") == {"event": "published", "topic": UPDATE,
                                            "payload": expected.decode()}
    device.report(progress_report("2.0.0", 0))
    device.report(progress_report("2.0.0", 100))
    device.report(done_report("2.0.0"))
    assert tool.finish() == 0
    reports = [e for e in tool.events if e["event"] == "report"]
    assert [(e["state"], e["percent"], e["result_code"]) for e in reports] == \
        [("downloading", 0, 0), ("downloading", 100, 0), ("done", None, 0)]
    assert reports[2]["payload"] == done_report("2.0.0").decode()
    assert tool.events[-1] == {"event": "done"}
    assert "s3cret-pw" not in "\n".join(tool.lines) + tool.stderr()


def test_scripted_device_resumes_with_range_after_a_cut_and_gets_a_new_push(ota, mosquitto,
                                                                            cert_dir):
    broker = mosquitto()
    device = Device(broker.port)
    tool = ota("--cut-at", 3000, broker=broker.port)
    device.ca = tool.listening["ca"]
    assert not device.download(device.update(1))
    assert device.stored == IMAGE[:3000]
    device.report(fail_report("2.0.0", -5))
    device.report(version_report("1.0.0"))
    assert device.download(device.update(2))
    assert device.stored == IMAGE and hashlib.md5(device.stored).hexdigest() == MD5
    device.report(done_report("2.0.0"))
    assert tool.finish() == 0
    assert http_events(tool, 2) == [
        http_event(rng="bytes=0-%d" % SIZE, status=206, sent=3000, cut=True),
        http_event(rng="bytes=3000-%d" % SIZE, status=206, sent=SIZE - 3000)]
    assert tool.count("published") == 2


def test_wait_version_pushes_after_the_first_version_report(ota, mosquitto):
    broker = mosquitto()
    device = Device(broker.port)
    tool = ota("--wait-version", "--http", broker=broker.port)
    assert tool.url.startswith("http://127.0.0.1:")
    device.report(version_report("1.0.0"))
    assert device.update() == update_firmware(tool.url)
    i = tool.events.index(tool.find("report"))
    tool.wait_event("published", start=i)
    device.report(version_report("1.0.0"))  # no fail before it: no second push
    device.report(done_report("2.0.0"))
    assert tool.finish() == 0
    assert tool.count("published") == 1
    assert tool.find("report")["version"] == "1.0.0"


def test_md5_mismatch_fail_exits_1_at_once(ota, mosquitto):
    broker = mosquitto()
    device = Device(broker.port)
    tool = ota(broker=broker.port)
    device.update()
    device.report(fail_report("2.0.0", -4))
    device.report(version_report("1.0.0"))
    assert tool.finish() == 1
    assert tool.events[-1] == {"event": "fail", "result_code": -4, "fails": 1}
    assert tool.count("published") == 1


@pytest.mark.parametrize("max_fails", [None, 2])
def test_retried_fails_get_a_push_each_until_max_fails(ota, mosquitto, max_fails):
    broker = mosquitto()
    device = Device(broker.port)
    tool = ota(*(["--max-fails", max_fails] if max_fails else []), broker=broker.port)
    fails = max_fails or 4
    for n in range(1, fails + 1):
        device.update(n)
        device.report(fail_report("2.0.0", -5))
        device.report(version_report("1.0.0"))
    assert tool.finish() == 1
    assert tool.find("fail") == {"event": "fail", "result_code": -5, "fails": fails}
    assert tool.count("published") == fails
    assert tool.count("report", state="fail", result_code=-5) == fails


def test_timeout_exits_1(ota, mosquitto):
    broker = mosquitto()
    tool = ota("--timeout", "0.5", broker=broker.port)
    tool.wait_event("published")
    assert tool.finish() == 1
    assert tool.events[-1] == {"event": "timeout"}


def test_sigterm_exits_1(ota, mosquitto):
    broker = mosquitto()
    tool = ota(broker=broker.port)
    tool.wait_event("published")
    tool.signal(signal.SIGTERM)
    assert tool.finish() == 1
    assert "stopped by SIGTERM" in tool.stderr()


def test_bad_md5_publishes_a_wrong_md5sum(ota, mosquitto):
    broker = mosquitto()
    device = Device(broker.port)
    tool = ota("--bad-md5", broker=broker.port)
    msg = json.loads(device.update())
    assert re.fullmatch(r"[0-9a-f]{32}", msg["md5sum"]) and msg["md5sum"] != MD5
    assert device.update() == update_firmware(tool.url, md5=msg["md5sum"])


def test_readable_output(firmware, cert_dir, mosquitto):
    broker = mosquitto()
    device = Device(broker.port)
    p = subprocess.Popen(["/usr/bin/python3", VMODULE_CLOUD, "ota", "push", firmware, "--broker",
                          "127.0.0.1:%d" % broker.port, "--product", PID, "--device", DN,
                          "--version", "2.0.0", "--cert-dir", cert_dir],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        url = json.loads(device.update())["url"]
        device.report(progress_report("2.0.0", 42))
        device.report(done_report("2.0.0"))
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert out.decode().splitlines() == [
        "serving %s (CA %s)" % (url, cert_dir / "ca.crt"),
        "pushed %s to %s" % (update_firmware(url).decode(), UPDATE),
        "progress 42%",
        "device: done",
        "done: the device has the image"]


@pytest.mark.parametrize("args, why", [
    (["missing.bin", "--broker", "127.0.0.1:1883", "--product", PID, "--device", DN,
      "--version", "1"], "no such file"),
    (["FW", "--broker", "localhost:notaport", "--product", PID, "--device", DN,
      "--version", "1"], "--broker must be HOST:PORT"),
    (["FW", "--broker", "127.0.0.1:1883", "--product", PID, "--device", DN], "missing --version"),
    (["FW", "--serve-only", "--cut-every"], "--cut-every needs --cut-at"),
    (["FW", "--serve-only", "--status", "403"], "invalid choice"),
])
def test_usage_errors_exit_2(firmware, args, why):
    cp = run_cli("ota", "push", *[firmware if a == "FW" else a for a in args])
    assert cp.returncode == 2
    assert why in cp.stderr.decode()
    assert cp.stdout == b""


def test_unreachable_broker_exits_1(firmware, cert_dir):
    cp = run_cli("ota", "push", firmware, "--broker", "127.0.0.1:%d" % free_port(), "--product",
                 PID, "--device", DN, "--version", "1", "--http")
    assert cp.returncode == 1
    assert b"vmodule-cloud:" in cp.stderr


# ------------------------------------------------------------------ the download server


def test_range_answers_over_https(ota):
    tool = ota()
    ca = tool.listening["ca"]
    cases = [  # (Range, status, Content-Range, body)
        (None, 200, None, IMAGE),
        ("bytes=10-99", 206, "bytes 10-99/%d" % SIZE, IMAGE[10:100]),
        ("bytes=100-%d" % SIZE, 206, "bytes 100-%d/%d" % (SIZE - 1, SIZE), IMAGE[100:]),
        ("bytes=%d-" % (SIZE - 10), 206, "bytes %d-%d/%d" % (SIZE - 10, SIZE - 1, SIZE),
         IMAGE[-10:]),
        ("bytes=0-0", 206, "bytes 0-0/%d" % SIZE, IMAGE[:1]),
        ("bytes=%d-" % SIZE, 416, "bytes */%d" % SIZE, b"416 Range Not Satisfiable\n"),
    ]
    for n, (rng, status, crange, body) in enumerate(cases):
        r = fetch(tool.url, ca, rng)
        assert (r.status, r.headers.get("content-range"), r.body) == (status, crange, body), rng
        assert r.headers["content-length"] == str(len(body))
        assert http_events(tool, n + 1)[n] == http_event(rng=rng, status=status, sent=len(body) if status < 400 else 0)
    r = fetch(tool.url, ca, method="HEAD")
    assert (r.status, r.headers["content-length"], r.headers["accept-ranges"], r.body) == \
        (200, str(SIZE), "bytes", b"")
    assert http_events(tool, len(cases) + 1)[-1] == http_event("HEAD")
    r = fetch(tool.url.replace("/fw.bin", "/other.bin"), ca)
    assert r.status == 404
    assert http_events(tool, len(cases) + 2)[-1] == http_event(path="/other.bin", status=404)


def test_file_name_and_url_host_make_the_url(ota):
    tool = ota("--http", "--file-name", "ESP8266_QCLOUD_AT.bin", "--url-host", "ota.vmodule.test")
    assert re.fullmatch(r"http://ota\.vmodule\.test:\d+/ESP8266_QCLOUD_AT\.bin", tool.url)
    assert fetch(tool.url).body == IMAGE
    assert tool.listening["ca"] is None


def test_https_url_host_is_in_the_certificate(ota, tmp_path):
    tool = ota("--url-host", "ota.vmodule.test", "--cert-dir", tmp_path / "certs")
    u = urlsplit(tool.url)
    ctx = ssl.create_default_context(cafile=tool.listening["ca"])
    with socket.create_connection(("127.0.0.1", u.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="ota.vmodule.test") as s:
            assert s.getpeercert()  # verified against the CA, for that name


def test_cut_at_once(ota):
    tool = ota("--http", "--cut-at", 3000)
    r = fetch(tool.url, rng="bytes=0-%d" % SIZE)
    assert (r.status, r.headers["content-length"], r.body) == (206, str(SIZE), IMAGE[:3000])
    assert fetch(tool.url, rng="bytes=0-%d" % SIZE).body == IMAGE
    assert http_events(tool, 2) == [
        http_event(rng="bytes=0-%d" % SIZE, status=206, sent=3000, cut=True),
        http_event(rng="bytes=0-%d" % SIZE, status=206, sent=SIZE)]


def test_cut_every_cuts_each_request_reaching_the_offset(ota):
    tool = ota("--http", "--cut-at", 3000, "--cut-every")
    assert fetch(tool.url).body == IMAGE[:3000]
    assert fetch(tool.url, rng="bytes=1000-").body == IMAGE[1000:3000]
    r = fetch(tool.url, rng="bytes=3000-")  # starts at the offset: cut before its first byte
    assert (r.status, r.body) == (206, b"")
    assert fetch(tool.url, rng="bytes=0-2999").body == IMAGE[:3000]  # ends before it
    assert fetch(tool.url, rng="bytes=3001-").body == IMAGE[3001:]
    assert [(e["sent"], e["cut"]) for e in http_events(tool, 5)] == \
        [(3000, True), (2000, True), (0, True), (3000, False), (SIZE - 3001, False)]


def test_ignore_range_answers_200_with_the_whole_file(ota):
    tool = ota("--http", "--ignore-range")
    r = fetch(tool.url, rng="bytes=4000-%d" % SIZE)
    assert (r.status, r.body, "content-range" in r.headers, "accept-ranges" in r.headers) == \
        (200, IMAGE, False, False)
    assert http_events(tool, 1) == [http_event(rng="bytes=4000-%d" % SIZE, sent=SIZE)]


@pytest.mark.parametrize("status", [404, 416, 500])
def test_status_answers_every_get(ota, status):
    tool = ota("--http", "--status", status)
    for n in range(2):
        assert fetch(tool.url, rng="bytes=0-%d" % SIZE).status == status
        assert http_events(tool, n + 1)[n]["status"] == status
    assert fetch(tool.url, method="HEAD").status == 200


def test_status_once_answers_only_the_first_get(ota):
    tool = ota("--http", "--status", 500, "--status-once")
    assert fetch(tool.url).status == 500
    r = fetch(tool.url)
    assert (r.status, r.body) == (200, IMAGE)


def test_rate_paces_the_body(ota):
    tool = ota("--http", "--rate", 20000)
    t0 = time.monotonic()
    assert fetch(tool.url).body == IMAGE
    # 5 chunks of 2000 bytes, one per 0.1 s: the last leaves 0.4 s after the first
    assert time.monotonic() - t0 >= 0.4


def test_stall_at_holds_the_connection_silent(ota):
    tool = ota("--http", "--stall-at", 4096)
    r = fetch(tool.url, rng="bytes=1000-", timeout=1.0)
    assert (r.timed_out, r.status, r.body) == (True, 206, IMAGE[1000:4096])
    assert http_events(tool, 1) == [http_event(rng="bytes=1000-", status=206, sent=3096,
                                               stalled=True)]
    r = fetch(tool.url, rng="bytes=4096-")  # once: the retry gets the rest
    assert (r.timed_out, r.body) == (False, IMAGE[4096:])
