"""Tencent OTA end to end (issue 11; reference §3.10, §5, §7.5): the real
daemon, a real mosquitto, and `vmodule-cloud ota push` as the cloud and the
HTTPS/HTTP download server (the tool users run; tests/integration/cloud.py).

Every report is checked byte for byte on the broker, every URC on the PTY,
and every image read back through AT+TCREADFWDATA."""
import hashlib
import json
import sys

import pytest

from cloud import CloudTool, REPO
from conftest import READY, MqttPeer, free_port, wait_for
from test_tencent_gateway import PID, DN, mqtt_connect, provision
from test_tencent_mqtt import tc_module, JOINED

sys.path.insert(0, str(REPO / "scripts"))
from vmcloud import tls  # noqa: E402

REPORT = "$ota/report/%s/%s" % (PID, DN)
UPDATE = "$ota/update/%s/%s" % (PID, DN)
RESOURCE = "$thing/up/service/%s/%s" % (PID, DN)
AREA = 716800  # the ESP8266 2 MB build's MCU OTA area, AT+TCMODINFOSET's default max

ENTER = b"+TCOTASTATUS:ENTERUPDATE\r\n"
SUCCESS = b"+TCOTASTATUS:UPDATESUCCESS\r\n"
RESET = b"+TCOTASTATUS:UPDATERESET\r\n"


def fail_urc(code):
    return b"+TCOTASTATUS:UPDATEFAIL,%d\r\n" % code


def version_report(v):
    return b'{"type": "report_version", "report":{"version":"%s"}}' % v.encode()


def progress(pct, v):
    return (b'{"type": "report_progress", "report": {"progress": {"state":"downloading", '
            b'"percent":"%d", "result_code":"0", "result_msg":""}, "version": "%s"}}'
            % (pct, v.encode()))


def fail_report(code, msg, v):
    return (b'{"type": "report_progress", "report": {"progress": {"state":"fail", '
            b'"result_code":"%d", "result_msg":"%s"}, "version": "%s"}}' % (code, msg, v.encode()))


def done_report(v):
    return (b'{"type": "report_progress", "report":{"progress":{"state":"done", '
            b'"result_code":"0", "result_msg":""}, "version":"%s"}}' % v.encode())


def image(size, seed=1):
    out, block = bytearray(), hashlib.sha256(b"vmodule %d" % seed).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def fwinfo_line(version, data, max_size=AREA):
    return b'OK\r\n+TCFWINFO:"%s",%d,"%s",%d\r\n' % (
        version.encode(), len(data), hashlib.md5(data).hexdigest().encode(), max_size)


def read_image(port, chunk=2048):
    """AT+TCFWINFO? then AT+TCREADFWDATA=<chunk> until the size it gave."""
    port.cmd("AT+TCFWINFO?")
    port.expect(b"OK\r\n")
    m = port.expect_regex(rb'\+TCFWINFO:"[^"]*",(\d+),"[0-9a-f]{32}",\d+\r\n', b"\r\n")
    size = int(m.group(1))
    got = b""
    while len(got) < size:
        port.cmd("AT+TCREADFWDATA=%d" % chunk)
        port.expect(b"OK\r\n+TCREADFWDATA:")
        n = int(port.read_until(b",")[:-1])
        assert n == min(chunk, size - len(got))
        got += port.read_exact(n)
        port.expect(b"\r\n")
    return got


def downloading(ota, version, attempts=1):
    """Waits until the module has taken the first bytes of its attempt-th
    download (its percent 0 report); the server's http events come only
    when a request is over."""
    wait_for(lambda: ota.wait_reports(0).count(progress(0, version)) >= attempts, 20,
             "download %d of %s under way" % (attempts, version))


def http_events(tool, n):
    wait_for(lambda: tool.count("http") >= n, 10, "%d request(s) at the server" % n)
    return [e for e in tool.events if e["event"] == "http"]


@pytest.fixture(scope="session")
def ota_certs(tmp_path_factory):
    """The tool's certificate directory, made before any daemon needs its CA."""
    d = tmp_path_factory.mktemp("vmcloud-certs")
    tls.ensure_certs(str(d))
    return d


class Ota:
    """One tencent module connected to a broker, a report listener, and
    ota push runs against them."""

    def __init__(self, make_daemon, tmp_path, mosquitto, certs):
        self.make_daemon, self.tmp, self.certs = make_daemon, tmp_path, certs
        self.broker = mosquitto()
        self.reports = MqttPeer(self.broker.port, REPORT)
        self.tools = []
        self.daemon = self.port = None

    def start(self, connect=True, **tencent):
        tencent.setdefault("ota_ca_file", str(self.certs / "ca.crt"))
        self.daemon = self.make_daemon([tc_module(self.tmp, self.broker.port, **tencent)],
                                       log_level="debug")
        self.port = self.daemon.port()
        self.port.expect(JOINED)
        if connect:
            self.connect()
        return self.port

    def connect(self):
        provision(self.port)
        mqtt_connect(self.port)

    def enable(self, version="1.0.0"):
        self.port.cmd('AT+TCOTASET=1,"%s"' % version)
        self.port.expect(b"OK\r\n+TCOTASET:OK\r\n")

    def push(self, path, version="2.0.0", *extra, wait_version=True):
        args = ["ota", "push", "--broker", "127.0.0.1:%d" % self.broker.port, "--product", PID,
                "--device", DN, str(path), "--version", version, "--cert-dir", str(self.certs),
                "--timeout", "60"]
        if wait_version:
            args.append("--wait-version")
        tool = CloudTool(args + [str(a) for a in extra])
        self.tools.append(tool)
        tool.wait_event("listening")  # printed once it listens for reports
        return tool

    def file(self, data, name="mcu_app.bin"):
        p = self.tmp / name
        p.write_bytes(data)
        return p

    def wait_reports(self, n, timeout=20):
        self.reports.wait_msgs(n, timeout)
        with self.reports.lock:
            return [m[1] for m in self.reports.msgs if m[0] == REPORT]

    def close(self):
        for t in self.tools:
            t.close()
        self.reports.c.disconnect()
        self.reports.c.loop_stop()


@pytest.fixture
def ota(make_daemon, tmp_path, mosquitto, ota_certs):
    o = Ota(make_daemon, tmp_path, mosquitto, ota_certs)
    yield o
    o.close()


def reports_until(ota, last, timeout=20):
    wait_for(lambda: last in ota.wait_reports(0), timeout, "report %r" % last)
    return ota.wait_reports(0)


# ---------------------------------------------------------------- the whole OTA


def test_whole_ota_over_https_read_back_byte_for_byte(ota):
    data = image(AREA)  # 700 KiB: the whole area of the ESP8266 build
    port = ota.start()
    tool = ota.push(ota.file(data), "2.0.0")
    ota.enable("1.0.0")
    port.expect(ENTER, 10)
    port.expect(SUCCESS, 30)
    assert tool.finish() == 0
    got = reports_until(ota, done_report("2.0.0"))
    assert got[0] == version_report("1.0.0")
    assert got[1] == progress(0, "2.0.0")
    assert got[-2:] == [progress(100, "2.0.0"), done_report("2.0.0")]
    middle = [json.loads(m)["report"]["progress"]["percent"] for m in got[2:-2]]
    assert middle == sorted(middle, key=int)
    req = http_events(tool, 1)[0]
    assert req["range"] == "bytes=0-%d" % AREA and req["status"] == 206
    port.cmd("AT+TCFWINFO?")
    port.expect(fwinfo_line("2.0.0", data))
    assert read_image(port) == data
    port.cmd("AT+TCREADFWDATA=2048")  # everything read
    port.expect(b"+CME ERROR:208\r\n")
    port.cmd("AT+TCFWINFO?")  # rewinds
    port.expect(fwinfo_line("2.0.0", data))
    port.cmd("AT+TCREADFWDATA=16")
    port.expect(b"OK\r\n+TCREADFWDATA:16," + data[:16] + b"\r\n")


def test_plain_http_and_the_v211_resource_report(ota):
    data = image(5000, 2)
    resources = MqttPeer(ota.broker.port, RESOURCE)
    port = ota.start()
    tool = ota.push(ota.file(data), "1.1.0", "--http")
    assert tool.find("listening")["url"].startswith("http://")
    ota.enable("1.0.9")
    port.expect(ENTER + SUCCESS, 10)
    assert tool.finish() == 0
    resources.wait_msgs(1)
    assert resources.msgs[0] == (RESOURCE, b'{"method":"report_version","report":{"resource_list":'
                                 b'[{"resource_name":"ESP8266_QCLOUD_AT.bin","version":'
                                 b'"QCloud_AT_ESP8266_v2.1.1","resource_type":"FILE"}]}}')
    assert read_image(port, 512) == data
    resources.c.disconnect()
    resources.c.loop_stop()


# ---------------------------------------------------------------- failures


def test_server_cut_mid_download_resumes_with_range(ota):
    data = image(300000, 3)
    port = ota.start()
    tool = ota.push(ota.file(data), "2.1.0", "--cut-at", 100000)
    ota.enable()
    port.expect(ENTER, 10)
    port.expect(ENTER, 10)  # the fail report, 1 s, the version again, the push again
    port.expect(SUCCESS, 20)
    assert tool.finish() == 0
    http = http_events(tool, 2)
    assert [(e["range"], e["status"], e["cut"]) for e in http] == [
        ("bytes=0-300000", 206, True), ("bytes=100000-300000", 206, False)]
    got = reports_until(ota, done_report("2.1.0"))
    i = got.index(fail_report(-5, b"time_out", "2.1.0"))
    assert got[i + 1] == version_report("1.0.0")
    assert got[i + 2] == progress(0, "2.1.0")  # the resumed download starts its reports again
    assert read_image(port) == data  # the bytes kept from the first attempt count


def test_server_ignoring_range_restarts_from_zero(ota):
    data = image(200000, 4)
    port = ota.start()
    tool = ota.push(ota.file(data), "2.2.0", "--cut-at", 50000, "--ignore-range")
    ota.enable()
    port.expect(ENTER + ENTER, 10)
    port.expect(SUCCESS, 20)
    assert tool.finish() == 0
    http = [(e["range"], e["status"]) for e in http_events(tool, 2)]
    assert http == [("bytes=0-200000", 200), ("bytes=50000-200000", 200)]
    assert read_image(port) == data


@pytest.mark.parametrize("status", [404, 416, 500])
def test_http_error_every_time_fails_after_three_retries(ota, status):
    data = image(4096, 5)
    port = ota.start()
    tool = ota.push(ota.file(data), "3.0.0", "--status", status)
    ota.enable()
    port.expect(ENTER * 4, 20)
    port.expect(fail_urc(213), 10)
    assert tool.finish() == 1
    wait_for(lambda: ota.wait_reports(0).count(fail_report(-5, b"time_out", "3.0.0")) == 4, 5,
             "four fail reports")
    got = ota.wait_reports(0)
    assert got.count(version_report("1.0.0")) == 4  # the first, then one per retry
    port.cmd("AT+TCFWINFO?")
    port.expect(b"+CME ERROR:207\r\n")


def test_404_once_then_the_retry_succeeds(ota):
    data = image(10000, 6)
    port = ota.start()
    tool = ota.push(ota.file(data), "3.1.0", "--status", 404, "--status-once")
    ota.enable()
    port.expect(ENTER + ENTER + SUCCESS, 20)
    assert tool.finish() == 0
    assert read_image(port) == data


@pytest.mark.parametrize("firmware,msg", [("2.1.1", b"MD5_not_match"), ("2.2.0", b"time_out")])
def test_wrong_md5_fails_205_without_retry(ota, firmware, msg):
    data = image(20000, 7)
    port = ota.start(firmware=firmware)
    tool = ota.push(ota.file(data), "4.0.0", "--bad-md5")
    ota.enable()
    port.expect(ENTER + fail_urc(205), 20)
    assert tool.finish() == 1
    got = reports_until(ota, fail_report(-4, msg, "4.0.0"))
    assert done_report("4.0.0") not in got
    port.expect_silence(1.5)  # no retry: no second ENTERUPDATE, never UPDATESUCCESS
    port.cmd("AT+TCFWINFO?")  # the record was erased
    port.expect(b"+CME ERROR:207\r\n")


def test_stalled_server_times_out_202_then_resumes(ota):
    data = image(60000, 8)
    port = ota.start(ota_read_timeout_ms=1000)
    tool = ota.push(ota.file(data), "5.0.0", "--stall-at", 30000)
    ota.enable()
    port.expect(ENTER, 10)
    port.expect(ENTER + SUCCESS, 20)
    assert tool.finish() == 0
    assert ota.wait_reports(0).count(fail_report(-5, b"time_out", "5.0.0")) == 1
    http = [e["range"] for e in http_events(tool, 2)]
    assert http == ["bytes=0-60000", "bytes=30000-60000"]
    assert read_image(port) == data


def test_image_larger_than_the_area_fails_207(ota):
    data = image(AREA + 1, 9)
    port = ota.start()
    tool = ota.push(ota.file(data), "6.0.0")
    ota.enable()
    port.expect(ENTER * 4 + fail_urc(207), 20)
    assert tool.finish() == 1
    assert not [e for e in tool.events if e["event"] == "http"]  # the erase failed first


def test_broker_lost_mid_download_fails_208_then_resumes(ota):
    data = image(400000, 10)
    port = ota.start()
    tool = ota.push(ota.file(data), "7.0.0", "--rate", 100000, "--serve-only")
    url = tool.find("listening")["url"]
    ota.enable()
    md5 = hashlib.md5(data).hexdigest()
    msg = json.dumps({"file_size": len(data), "md5sum": md5, "type": "update_firmware",
                      "url": url, "version": "7.0.0"}, separators=(",", ":"))
    ota.reports.publish(UPDATE, msg)
    port.expect(ENTER, 10)
    downloading(ota, "7.0.0")
    ota.broker.stop()
    port.expect(b"+TCMQTTDISCON,-103\r\n", 10)
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*\+TCOTASTATUS:UPDATEFAIL,208\r\n", b"208\r\n",
                      timeout=10)
    ota.broker.start()
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*\+TCMQTTRECONNECTED\r\n", b"ED\r\n", 20)
    ota.reports = MqttPeer(ota.broker.port, REPORT)
    ota.enable()  # the task ended: the MCU enables it again
    ota.reports.wait_msgs(1)
    ota.reports.publish(UPDATE, msg)
    port.expect(ENTER + SUCCESS, 20)
    ranges = [e["range"] for e in http_events(tool, 2)]
    assert ranges[0] == "bytes=0-400000"
    start = int(ranges[1].split("=")[1].split("-")[0])
    assert 0 < start < len(data)  # resumed where the failure left it
    assert read_image(port) == data


def test_kill9_mid_download_then_restart_resumes_from_the_stored_record(ota):
    data = image(600000, 11)
    port = ota.start()
    # a cut first: the failure stores downloaded_size; then a slow second try
    tool = ota.push(ota.file(data), "8.0.0", "--cut-at", 200000, "--rate", 100000,
                    "--serve-only")
    url = tool.find("listening")["url"]
    msg = json.dumps({"file_size": len(data), "md5sum": hashlib.md5(data).hexdigest(),
                      "type": "update_firmware", "url": url, "version": "8.0.0"},
                     separators=(",", ":"))
    ota.enable()
    ota.reports.wait_msgs(1)
    ota.reports.publish(UPDATE, msg)
    port.expect(ENTER, 10)
    tool.wait_event("http", timeout=20, cut=True)
    # the fail report, 1 s, the version again: then the module listens again
    wait_for(lambda: ota.wait_reports(0).count(version_report("1.0.0")) == 2, 10, "the retry")
    ota.reports.publish(UPDATE, msg)
    port.expect(ENTER, 10)
    downloading(ota, "8.0.0", 2)
    ota.daemon.kill9()
    ota.daemon.start()
    port = ota.port = ota.daemon.port()
    port.expect(JOINED)
    ota.connect()
    n = len(ota.wait_reports(0))
    ota.enable()
    wait_for(lambda: len(ota.wait_reports(0)) > n, 5, "the version report after the restart")
    ota.reports.publish(UPDATE, msg)
    port.expect(ENTER + SUCCESS, 30)
    ranges = [e["range"] for e in http_events(tool, 3)]
    # the third starts from what flash held, not from what RAM had
    assert ranges == ["bytes=0-600000", "bytes=200000-600000", "bytes=200000-600000"]
    assert read_image(port) == data


def slow_download(ota, data, version, rate):
    """A connected module in the middle of a paced download: (port, tool)."""
    port = ota.start()
    tool = ota.push(ota.file(data), version, "--rate", rate)
    ota.enable()
    port.expect(ENTER, 10)
    downloading(ota, version)
    return port, tool


def test_otaset_0_during_download_ends_it_with_208(ota):
    port, _ = slow_download(ota, image(300000, 12), "9.0.0", 50000)
    port.cmd('AT+TCOTASET=0,"1.0.0"')
    port.expect(b"OK\r\n" + fail_urc(208) + b"+TCOTASET:OK\r\n", 10)
    wait_for(lambda: fail_report(-5, b"time_out", "9.0.0") in ota.wait_reports(0), 5, "fail")
    port.cmd("AT+TCFWINFO?")  # a DOWNLOADING record is not readable
    port.expect(b"+CME ERROR:208\r\n")


def test_the_200_gate_while_downloading_and_pushes_ignored(ota):
    data = image(300000, 13)
    port, tool = slow_download(ota, data, "9.1.0", 60000)
    for cmd in ['AT+TCOTASET=1,"1.0.0"', "AT+TCFWINFO?", "AT+TCREADFWDATA=2048",
                "AT+TCDEVINFOSET?", "AT+TCPRDINFOSET?", 'AT+TCMQTTSUB="%s/%s/data",0' % (PID, DN),
                'AT+TCMQTTUNSUB="%s/%s/data"' % (PID, DN),
                'AT+TCMQTTPUBL="%s/%s/data",0,5' % (PID, DN),
                'AT+TCMQTTPUBRAW="%s/%s/data",0,5' % (PID, DN)]:
        port.cmd(cmd)
        port.expect(b"+CME ERROR:200\r\n")
    port.cmd('AT+TCMQTTPUB="%s/%s/data",0,"x"' % (PID, DN))  # PUB is allowed
    port.expect(b"OK\r\n+TCMQTTPUB:OK\r\n")
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","c2VjcmV0"' % (PID, DN))  # the MQTT gate first
    port.expect(b"+CME ERROR:208\r\n")
    ota.reports.publish(UPDATE, tool.find("published")["payload"])  # ignored while fetching
    port.expect(SUCCESS, 30)
    assert tool.finish() == 0
    assert len(http_events(tool, 1)) == 1
    port.cmd("AT+TCFWINFO?")
    port.expect(fwinfo_line("9.1.0", data))


# ---------------------------------------------------------------- reads


def write_record(ota, **record):
    path = ota.daemon.state_path()
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc["tc_fwinfo"] = record
    path.write_text(json.dumps(doc))


def test_fwinfo_and_readfwdata_error_codes(ota):
    port = ota.start(connect=False)
    for cmd in ("AT+TCFWINFO?", "AT+TCREADFWDATA=16"):  # no record
        port.cmd(cmd)
        port.expect(b"+CME ERROR:207\r\n")
    for arg in ("0", "4097", "-1", '"16"', "16,1"):
        port.cmd("AT+TCREADFWDATA=" + arg)
        port.expect(b"+CME ERROR:207\r\n" if arg in ("0", "4097", "-1") else b"+CME ERROR:204\r\n")
    port.cmd("AT+TCFWINFO=?")
    port.expect(b'+TCFWINFO:"FW_VERSION","FW_SIZE","FW_MD5","FW_MAX_SIZE_OF_MODULE"\r\n\r\nOK\r\n')
    port.cmd("AT+TCREADFWDATA=?")
    port.expect(b'+TCREADFWDATA:"LEN_FOR_READ"\r\n\r\nOK\r\n')


def test_readfwdata_limits_and_the_word_alignment_quirk(ota):
    data = image(10, 14)
    port = ota.start()
    tool = ota.push(ota.file(data), "1.2.3")
    ota.enable()
    port.expect(ENTER + SUCCESS, 10)
    assert tool.finish() == 0
    for arg in ("0", "4097", "-1", '"4"'):
        port.cmd("AT+TCREADFWDATA=" + arg)
        port.expect(b"+CME ERROR:204\r\n")
    port.cmd("AT+TCREADFWDATA=4096")  # the largest read: the whole image, n < len
    port.expect(b"OK\r\n+TCREADFWDATA:10," + data + b"\r\n")
    port.cmd("AT+TCREADFWDATA=4")
    port.expect(b"+CME ERROR:208\r\n")
    port.cmd("AT+TCFWINFO?")
    port.expect(fwinfo_line("1.2.3", data))
    port.cmd("AT+TCREADFWDATA=3")
    port.expect(b"OK\r\n+TCREADFWDATA:3," + data[:3] + b"\r\n")
    port.cmd("AT+TCREADFWDATA=3")  # from offset 3: not on a word
    port.expect(b"OK\r\n+CME ERROR:207\r\n")
    port.cmd("AT+TCFWINFO?")
    port.expect(fwinfo_line("1.2.3", data))
    port.cmd("AT+TCREADFWDATA=8")
    port.expect(b"OK\r\n+TCREADFWDATA:8," + data[:8] + b"\r\n")
    port.cmd("AT+TCREADFWDATA=8")  # the last chunk may be short
    port.expect(b"OK\r\n+TCREADFWDATA:2," + data[8:] + b"\r\n")


def test_records_that_cannot_be_read(ota):
    port = ota.start(connect=False)
    ota.daemon.stop()
    write_record(ota, state="mcu_valid", name="a.bin", version="1", size=0, downloaded=0,
                 md5="d41d8cd98f00b204e9800998ecf8427e", max=AREA)
    ota.daemon.start()
    port = ota.daemon.port()
    port.expect(JOINED)
    port.cmd("AT+TCREADFWDATA=16")  # an empty image
    port.expect(b"+CME ERROR:205\r\n")
    ota.daemon.stop()
    write_record(ota, state="mcu_downloading", name="a.bin", version="1", size=100,
                 downloaded=50, md5="", max=AREA)
    ota.daemon.start()
    port = ota.daemon.port()
    port.expect(JOINED)
    for cmd in ("AT+TCFWINFO?", "AT+TCREADFWDATA=16"):
        port.cmd(cmd)
        port.expect(b"+CME ERROR:208\r\n")


# ---------------------------------------------------------------- the module's own firmware


def test_module_self_update_reboots_into_the_new_version(ota):
    data = image(50000, 15)
    port = ota.start()
    tool = ota.push(ota.file(data, "ESP8266_QCLOUD_AT.bin"), "QCloud_AT_ESP8266_v2.2.0")
    ota.enable()
    port.expect(ENTER + SUCCESS + RESET, 10)
    port.expect_silence(1.5)  # 2 s before the reboot
    port.expect(READY + JOINED, 5)
    assert tool.finish() == 0
    port.cmd("AT+TCVER")  # the 2.2.0 build's strings
    port.expect(b"Tencent Cloud IoT AT version: QCloud_AT_ESP8266_v2.2.0(8b7f0a1)\r\n"
                b"Tencent Cloud IoT SDK version: v3.4-43-ge9516e4\r\n"
                b"Firmware compile time: Jun 15 2023 11:28:10\r\n"
                b"Tencent Technology Co. Ltd.\r\n\r\nOK\r\n")
    port.cmd("AT+TCFWINFO?")  # the record is the module's: not an MCU image
    port.expect(b"+CME ERROR:208\r\n", 5)
    port.cmd("AT+GMR")
    port.expect(b"AT version:2.2.0.0(b097cdf - ESP8266 - Jun 17 2021 12:57:45)\r\n"
                b"SDK version:v3.4-43-ge9516e4\r\ncompile time(4086544):Jun 15 2023 11:35:41\r\n"
                b"Bin version:2.2.0(ESP8266_QCLOUD)\r\n\r\nOK\r\n")


def test_self_update_name_rules_per_firmware(ota):
    # 2.2.0 takes any name with the ESP8266_QCLOUD_AT prefix as its own image
    data = image(3000, 16)
    port = ota.start(firmware="2.2.0")
    tool = ota.push(ota.file(data, "ESP8266_QCLOUD_AT_v9.bin"), "QCloud_AT_ESP8266_v9")
    ota.enable()
    port.expect(ENTER + SUCCESS + RESET, 10)
    port.expect(READY + JOINED, 5)
    assert tool.finish() == 0
    port.cmd("AT+TCVER")  # an unknown version: the configured build's other strings
    port.expect(b"Tencent Cloud IoT AT version: QCloud_AT_ESP8266_v9(8b7f0a1)\r\n"
                b"Tencent Cloud IoT SDK version: v3.4-43-ge9516e4\r\n"
                b"Firmware compile time: Jun 15 2023 11:28:10\r\n"
                b"Tencent Technology Co. Ltd.\r\n\r\nOK\r\n")


def test_v211_takes_only_the_exact_self_update_name(ota):
    data = image(3000, 17)
    port = ota.start()  # esp8266 2.1.1
    tool = ota.push(ota.file(data, "ESP8266_QCLOUD_AT_v9.bin"), "2.0")
    ota.enable()
    port.expect(ENTER + SUCCESS, 10)  # an MCU image: no UPDATERESET
    assert tool.finish() == 0
    port.expect_silence(0.5)
    assert read_image(port) == data


# ---------------------------------------------------------------- a refused server, bad pushes


def update_msg(data, url, version):
    return json.dumps({"file_size": len(data), "md5sum": hashlib.md5(data).hexdigest(),
                       "type": "update_firmware", "url": url, "version": version},
                      separators=(",", ":"))


def test_refused_download_fails_213_after_three_retries(ota):
    data = image(1000, 18)
    port = ota.start()
    ota.enable()
    msg = update_msg(data, "http://127.0.0.1:%d/fw.bin" % free_port(), "10.0.0")
    for attempt in range(1, 5):  # the first push, then one per re-reported version
        wait_for(lambda: ota.wait_reports(0).count(version_report("1.0.0")) == attempt, 10,
                 "version report %d" % attempt)
        ota.reports.publish(UPDATE, msg)
        port.expect(ENTER, 10)
    port.expect(fail_urc(213), 10)
    wait_for(lambda: ota.wait_reports(0).count(fail_report(-5, b"time_out", "10.0.0")) == 4, 5,
             "four fail reports")
    assert version_report("1.0.0") not in ota.wait_reports(0)[-1:]  # no fifth attempt


def test_malformed_update_firmware_ends_the_task_silently(ota):
    data = image(1000, 19)
    port = ota.start()
    tool = ota.push(ota.file(data), "11.0.0", "--serve-only", wait_version=False)
    good = update_msg(data, tool.find("listening")["url"], "11.0.0")
    ota.enable()
    ota.reports.publish(UPDATE, b'{"type":"update_firmware","version":"11.0.0"}')  # no url
    ota.reports.publish(UPDATE, good)  # the task is gone: nobody takes it
    port.expect_silence(1.0)
    ota.enable()  # the MCU starts the task again
    ota.reports.publish(UPDATE, good)
    port.expect(ENTER + SUCCESS, 10)
    assert read_image(port) == data
