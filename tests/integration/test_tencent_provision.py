"""test_tencent_provision.py - Wi-Fi provisioning of the tencent dialect
(tencent-at.md §3.13, §4, §6.3): AT+TCSTARTSMART, AT+TCSTOPSMART, AT+TCSAP,
AT+TCSTOPSAP, and the whole flow between start and
WIFI_CONNECT_SUCCESS / WIFI_CONNECT_FAILED,<type>,<sub>.

The phone app is scripted here: a UDP socket talking to the module's
provisioning port (found in `status`, the config asks the kernel for free
ports), and a paho client on a real mosquitto playing the cloud, which
answers app_bind_token on $thing/down/service/<pid>/<dn>. SmartConfig's
radio part comes through the control socket (`smartconfig SSID PASSWORD`).
The long timers of the firmware (1 s steps, 5 s settle, 300 s / 50 s waits,
20 s token wait) are shortened by their config knobs; every byte the module
prints or sends is asserted."""
import json
import re
import socket
import threading
import time

import paho.mqtt.client as paho
import pytest

from conftest import module_config, wait_for

PID, DN = "PROVPRD001", "prov_dev"
SECRET = "ZHNkIGRzZCA="
CONNID = "Ab1Cd"
TOKEN = "69f978dfbb48ec40cadb6d9af470d0f6"
AP_SSID, AP_PWD = "lab", "labpass123"
UP = "$thing/up/service/%s/%s" % (PID, DN)
DOWN = "$thing/down/service/%s/%s" % (PID, DN)
STEP, SETTLE = 50, 200
FAST = {"provision_step_ms": STEP, "provision_settle_ms": SETTLE,
        "provision_timeout_ms": 4000, "provision_retry_timeout_ms": 600,
        "provision_token_wait_ms": 150, "softap_udp_port": 0, "log_udp_port": 0}
CORE_OK = b"\r\nOK\r\n"
BIND_RE = re.compile(rb'\{"method":"app_bind_token","clientToken":"prov_dev-(\d+)",'
                     rb'"params": \{"token":"([^"]*)"\}\}$')
LOG_LINE_RE = re.compile(rb"(\d+)\|(\w+)\((\d+)\): (.*)\r\n")


def device_reply(pid=PID, dn=DN, region="ap-guangzhou"):
    return ('{"cmdType":2,"productId":"%s","deviceName":"%s","productRegion":"%s",'
            '"protoVersion":"2.0"}\r\n' % (pid, dn, region)).encode()


def error_reply(text, previous=False):
    return ('{"cmdType":2,"deviceReply":"%s","log":"%s"}\r\n'
            % ("Previous_Error" if previous else "Current_Error", text)).encode()


def softap_cmd(ssid=AP_SSID, password=AP_PWD, token=TOKEN, region="ap-guangzhou"):
    return json.dumps({"cmdType": 1, "ssid": ssid, "password": password, "token": token,
                       "region": region}, separators=(",", ":")).encode()


# ------------------------------------------------------------------ the app and the cloud


class App:
    """The phone app's UDP socket."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))

    def send(self, port, data):
        self.s.sendto(data, ("127.0.0.1", port))

    def recv(self, timeout=5.0):
        self.s.settimeout(timeout)
        data, _ = self.s.recvfrom(65535)
        return data

    def nothing(self, seconds):
        self.s.settimeout(seconds)
        try:
            data = self.s.recvfrom(65535)[0]
        except socket.timeout:
            return
        pytest.fail("unexpected datagram %r" % data)

    def close(self):
        self.s.close()


class Cloud:
    """Tencent's side of the token: every app_bind_token on $thing/up/service
    is recorded and, unless code is None, answered with app_bind_token_reply."""

    def __init__(self, port, code=0):
        self.code = code
        self.got = []
        self.lock = threading.Lock()
        self.c = paho.Client(client_id="cloud-%d" % time.monotonic_ns())
        self.c.on_message = self._on_message
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect("127.0.0.1", port)
        self.c.subscribe(UP, 1)
        self.c.loop_start()
        assert ready.wait(5), "the cloud's subscription"

    def _on_message(self, c, u, msg):
        with self.lock:
            self.got.append((msg.topic, msg.payload, msg.qos))
        m = BIND_RE.match(msg.payload)
        if self.code is not None and m:
            reply = {"method": "app_bind_token_reply", "clientToken": "prov_dev-" + m.group(1).decode(),
                     "code": self.code, "status": "success" if self.code == 0 else "fail"}
            c.publish(DOWN, json.dumps(reply), 0)

    def wait(self, n=1, timeout=10):
        wait_for(lambda: len(self.got) >= n, timeout, "%d app_bind_token" % n)
        return self.got

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def closing():
    things = []
    yield lambda t: things.append(t) or t
    for t in reversed(things):
        t.close()


# ------------------------------------------------------------------ the module


def tc_module(tmp_path, broker_port, **tencent):
    t = {"mqtt_transport": "tcp", "mqtt_host": "127.0.0.1", "mqtt_port": broker_port,
         "connid": CONNID,
         "wifi": {"access_points": [{"ssid": AP_SSID, "password": AP_PWD}], "join_ms": 0}}
    t.update(FAST)
    t.update(tencent)
    return module_config(tmp_path, "m0", "tencent", echo=False,
                         trace=str(tmp_path / "m0.trace"), tencent=t)


@pytest.fixture
def broker(mosquitto):
    return mosquitto()


@pytest.fixture
def module(make_daemon, tmp_path, broker):
    """(daemon, port) of a module with its device triple stored."""
    def make(devinfo=True, **tencent):
        daemon = make_daemon([tc_module(tmp_path, broker.port, **tencent)])
        port = daemon.port()
        if devinfo:
            port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET))
            port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
        return daemon, port
    return make


def status(daemon):
    c = daemon.ctl()
    try:
        r = c.request("status", "m0")
    finally:
        c.close()
    assert r["ok"], r
    return r["result"]["provision"]


def udp_port(daemon):
    return wait_for(lambda: status(daemon)["udp_port"], 5, "the provisioning UDP port")


def log_port(daemon):
    return wait_for(lambda: status(daemon)["log_udp_port"], 5, "the log UDP port")


def ctl(daemon, *args):
    c = daemon.ctl()
    try:
        return c.request("smartconfig", "m0", *args)
    finally:
        c.close()


def start_softap(port, line='AT+TCSAP="prov-ap","12345678",1'):
    port.cmd(line)
    port.expect(CORE_OK + b"+TCSAP:OK\r\n")


def start_smart(port):
    port.cmd("AT+TCSTARTSMART")
    port.expect(b"OK\r\n+TCSTARTSMART:OK\r\n")


def expect_replies(app, reply=None):
    reply = reply or device_reply()
    for _ in range(3):
        assert app.recv() == reply


def query_log(daemon, app, stamps=None):
    """The ESP-LOG-QUERY server's answer (both copies), as lines; each
    line's ms since boot appended to stamps if given."""
    lport = log_port(daemon)
    app.send(lport, b'{"cmdType":3}')
    first = app.recv()
    assert app.recv() == first
    lines = LOG_LINE_RE.findall(first)
    assert b"".join(b"%s|%s(%s): %s\r\n" % l for l in lines) == first
    if stamps is not None:
        stamps.extend(int(ms) for ms, _, _, _ in lines)
    return [(f.decode(), int(n), t.decode()) for _, f, n, t in lines]


def log_item(ms, func, line, text):
    """text as push_dev_log() keeps it: the item is 128 bytes with its
    "\\r\\n" and NUL, so a longer ms stamp leaves less of the text."""
    return text[:128 - 4 - len("%d|%s(%d): " % (ms, func, line))]


# ------------------------------------------------------------------ command forms


def test_test_forms_print_the_firmware_lines(module):
    daemon, port = module(devinfo=False)
    for line, text in [("AT+TCSTARTSMART=?", b"+TCSTARTSMART: CMD FOR START SMARTCONFIG\r\n"),
                       ("AT+TCSTOPSMART=?", b"+TCSTOPSMART:CMD TO STOP SMARTCONFIG\r\n"),
                       ("AT+TCSAP=?", b"+TCSAP=<ssid>[,<pwd>,<ch>]\r\n"),
                       ("AT+TCSTOPSAP=?", b"+TCSTOPSAP:CMD TO STOP SOFTAP\r\n")]:
        port.cmd(line)
        port.expect(text + CORE_OK)


@pytest.mark.parametrize("line", ["AT+TCSTARTSMART?", "AT+TCSTARTSMART=1", "AT+TCSAP",
                                  "AT+TCSAP?", "AT+TCSTOPSAP?", "AT+TCSTOPSMART=1"])
def test_forms_without_a_handler_are_core_errors(module, line):
    daemon, port = module(devinfo=False)
    port.cmd(line)
    port.expect(b"ERR CODE:0x010c0000\r\n\r\nERROR\r\n")
    assert status(daemon)["mode"] is None


@pytest.mark.parametrize("args", ['""', '"%s"' % ("x" * 33), '"ap","1234567"',
                                  '"ap","%s"' % ("p" * 33), '"ap","12345678",14',
                                  '"ap","12345678",-1', '"ap","12345678","1"',
                                  '"ap","12345678",1,2'])
def test_tcsap_parameter_errors_are_204(module, args):
    daemon, port = module()
    port.cmd("AT+TCSAP=" + args)
    port.expect(b"+CME ERROR:204\r\n")
    port.expect_silence(0.2)
    assert status(daemon)["mode"] is None


def test_tcsap_with_a_number_for_ssid_is_a_core_error(module):
    daemon, port = module()
    port.cmd("AT+TCSAP=12")
    port.expect(b"ERR CODE:0x01050000\r\n\r\nERROR\r\n")


def test_every_command_is_208_while_the_mqtt_task_runs(module):
    daemon, port = module()
    port.cmd('AT+CWJAP="%s","%s"' % (AP_SSID, AP_PWD))
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")
    for line in ["AT+TCSTARTSMART", "AT+TCSTOPSMART", 'AT+TCSAP="ap"', "AT+TCSTOPSAP"]:
        port.cmd(line)
        port.expect(b"+CME ERROR:208\r\n")
    assert status(daemon)["mode"] is None


def test_open_softap_and_both_stops_answer_ok(module):
    daemon, port = module()
    start_softap(port, 'AT+TCSAP="open-ap"')
    st = status(daemon)
    assert (st["mode"], st["state"], st["softap_ssid"]) == ("softap", "waiting_wifi", "open-ap")
    port.cmd("AT+TCSTOPSAP")
    port.expect(CORE_OK)
    port.expect_silence(0.3)  # a stop by AT prints no WIFI_CONNECT_FAILED
    st = status(daemon)
    assert st["mode"] is None and st["udp_port"] is None and st["log_server"]
    port.cmd("AT+TCSTOPSMART")  # nothing runs but the log server: it goes
    port.expect(CORE_OK)
    assert not status(daemon)["log_server"]


def test_start_without_device_info_fails_27_after_3_s(module):
    daemon, port = module(devinfo=False)
    t0 = time.monotonic()
    port.cmd("AT+TCSTARTSMART")
    port.expect(b"OK\r\n")
    port.cmd("AT")  # the handler sleeps 3 s: busy
    port.expect(b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n")
    port.expect(b"+TCSTARTSMART:FAIL,27\r\n", timeout=5)
    assert time.monotonic() - t0 >= 2.9
    assert status(daemon)["log_server"]


# ------------------------------------------------------------------ softAP end to end


def test_softap_joins_the_ap_and_binds_the_token(module, broker, closing):
    daemon, port = module()
    cloud = closing(Cloud(broker.port))
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd())
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    (topic, payload, qos), = cloud.got
    m = BIND_RE.match(payload)
    assert topic == UP and qos == 1 and m and m.group(2) == TOKEN.encode()
    port.expect_silence(0.3)
    st = status(daemon)
    assert st["mode"] is None and st["udp_port"] is None and not st["log_server"]
    # the station stays on the app's AP, stored as esp-at stores it
    port.cmd("AT+CWJAP?")
    port.expect(b'+CWJAP:"lab","18:31:bf:4b:2c:01",6,-45,0,1,3,0,1\r\n' + CORE_OK)
    assert daemon.read_state()["wifi"]["ssid"] == AP_SSID
    assert AP_PWD not in daemon.log_text()


def test_softap_wrong_password_times_out_50_s_after_the_failed_join(module, closing):
    daemon, port = module()
    app = closing(App())
    start_softap(port)
    t0 = time.monotonic()
    app.send(udp_port(daemon), softap_cmd(password="wrongpass1"))
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,3,103\r\n", timeout=5)
    # the disconnect shortened the 4 s wait to the retry timeout (0.6 s)
    assert time.monotonic() - t0 < 3.5
    log = query_log(daemon, app)
    texts = [t for _, _, t in log]
    assert "STA_DISCONNECTED from AP lab reason: 15" in texts
    assert texts[-1] == "SoftAP: TIMEOUT"
    assert any(t.startswith("SSID:lab|PSW:********|TOKEN:%s" % TOKEN) for t in texts)
    assert "wrongpass1" not in "".join(texts)
    assert ("_wifi_event_handler", 79) in [(f, n) for f, n, _ in log]


def test_softap_timeout_while_replying_sends_every_reply_and_joins_nothing(module, closing):
    """The task's wait (1.5 s) ends between the app's first and third reply (a
    step is 1 s here): the UDP task still sends all three, and the join that
    would follow them is not made, the task being over."""
    daemon, port = module(provision_step_ms=1000, provision_timeout_ms=1500)
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd())
    assert app.recv() == device_reply()
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,3,103\r\n", timeout=5)
    assert app.recv() == device_reply()
    assert app.recv() == device_reply()
    wait_for(lambda: status(daemon)["udp_port"] is None, 5, "the UDP task's end")
    assert 'joining "%s"' % AP_SSID not in daemon.log_text()
    port.cmd("AT+CWJAP?")
    port.expect(b"No AP\r\n" + CORE_OK)


def test_softap_unknown_ssid_logs_no_ap_found(module, closing):
    daemon, port = module()
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd(ssid="nowhere"))
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,3,103\r\n", timeout=5)
    texts = [t for _, _, t in query_log(daemon, app)]
    assert "STA_DISCONNECTED from AP nowhere reason: 201" in texts


def test_softap_without_the_app_times_out(module):
    daemon, port = module(provision_timeout_ms=500)
    start_softap(port)
    t0 = time.monotonic()
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,3,103\r\n", timeout=3)
    assert 0.4 < time.monotonic() - t0 < 2.5  # not the 300 s of the firmware
    assert status(daemon)["log_server"]


def test_region_mismatch_fails_1_26(module, broker, closing):
    daemon, port = module()
    cloud = closing(Cloud(broker.port))
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd(region="na-ashburn"))
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,1,26\r\n", timeout=5)
    assert cloud.got == []
    stamps = []
    log = query_log(daemon, app, stamps)
    texts = [t for _, _, t in log]
    assert "Region fault: ap-guangzhou != na-ashburn" in texts
    assert texts[-1] == "SoftAP: WIFI_MQTT_CONNECT_FAILED: 26"
    # the whole log, each line as the firmware's source prints it (the
    # datagram cut to the 128-byte item, the passwords masked)
    assert log == [
        ("start_softAP", 879, "start softAP: prov-ap"),
        ("udp_server_task", 727, log_item(stamps[1], "udp_server_task", 727, (
            '{"cmdType":1,"ssid":"lab","password":"**********","token":"%s",'
            '"region":"na-ashburn"}' % TOKEN))),
        ("app_handle_recv_data", 603, "SSID:lab|PSW:********|TOKEN:%s" % TOKEN),
        ("udp_server_task", 737, "Finish app cmd handle"),
        ("_wifi_event_handler", 65, "STA_CONNECTED to AP lab at ch 6"),
        ("_wifi_event_handler", 71, "STA Got IP[192.168.1.100]"),
        ("mqtt_send_token", 446, "Device %s/%s connect success" % (PID, DN)),
        ("_send_token_wait_reply", 302, "Region fault: ap-guangzhou != na-ashburn"),
        ("softAP_mqtt_task", 802, "SoftAP: WIFI_MQTT_CONNECT_FAILED: 26")]


def test_smartconfig_region_mismatch_logs_as_the_firmware(module, broker, closing):
    """SmartConfig's MQTT task connects once the station has its address and
    waits for the token; the app's token then meets the region check at the
    task's next look. The task's end does not cut the UDP task's three
    replies (the UDP task sees sg_comm_task_run only at its loop's top)."""
    daemon, port = module(provision_token_wait_ms=3000)
    app = closing(App())
    start_smart(port)
    assert ctl(daemon, AP_SSID, AP_PWD)["ok"]
    wait_for(lambda: status(daemon)["state"] == "waiting_token", 5, "the MQTT task's token wait")
    app.send(udp_port(daemon), b'{"cmdType":0,"token":"%s","region":"na-ashburn"}' % TOKEN.encode())
    expect_replies(app)
    port.expect(b"+TCSTARTSMART:WIFI_CONNECT_FAILED,1,26\r\n", timeout=10)
    log = query_log(daemon, app)
    # the UDP task's last line (after its third reply) races the MQTT
    # task's end, 0 to 2 steps after the token: both orders are the firmware's
    datagram = ("udp_server_task", 727, '{"cmdType":0,"token":"%s","region":"na-ashburn"}' % TOKEN)
    finish = ("udp_server_task", 737, "Finish app cmd handle")
    assert log.count(finish) == 1 and log.index(finish) > log.index(datagram)
    log.remove(finish)
    assert log == [
        ("start_smartconfig", 1071, "Enter smartconfig"),
        ("_smartconfig_event_cb", 306, "SC SSID:lab PSW:********"),
        ("_wifi_event_handler", 65, "STA_CONNECTED to AP lab at ch 6"),
        ("_wifi_event_handler", 71, "STA Got IP[192.168.1.100]"),
        ("mqtt_send_token", 446, "Device %s/%s connect success" % (PID, DN)),
        datagram,
        ("_send_token_wait_reply", 302, "Region fault: ap-guangzhou != na-ashburn"),
        ("smartconfig_mqtt_task", 986, "SmartConfig: WIFI_MQTT_CONNECT_FAILED: 26")]


def test_token_refused_still_succeeds_and_the_error_reaches_the_next_app(module, broker,
                                                                         closing):
    """The firmware only logs a nonzero app_bind_token_reply code (24, code)."""
    daemon, port = module()
    cloud = closing(Cloud(broker.port, code=1003))
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd())
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    assert len(cloud.got) == 1
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd())
    assert app.recv() == error_reply("MQTT Token reply error! (24, 1003)", previous=True)
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_SUCCESS\r\n", timeout=10)


def test_broker_down_fails_1_with_the_connect_code(module, broker, closing):
    daemon, port = module()
    app = closing(App())
    broker.stop()
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd())
    expect_replies(app)
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,1,-1\r\n", timeout=10)
    texts = [t for _, _, t in query_log(daemon, app)]
    assert "Device %s/%s connect failed: -1" % (PID, DN) in texts


def test_stop_by_at_prints_only_ok_and_the_error_is_kept(module, closing):
    daemon, port = module()
    app = closing(App())
    start_softap(port)
    port.cmd("AT+TCSTOPSAP")
    port.expect(CORE_OK)
    port.expect_silence(0.3)
    texts = [t for _, _, t in query_log(daemon, app)]
    assert texts[-1] == "softAP stopped by user!"
    assert daemon.read_state()["tc_prov_errlog"] == [[3, 102]]  # save_error_log()
    start_softap(port)  # the saved error goes to the next app
    app.send(udp_port(daemon), b'{"cmdType":9}')
    assert app.recv() == error_reply("WIFI boarding stop! (3, 102)", previous=True)
    assert app.recv() == error_reply("APP command error! (2, 201)")
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,4,206\r\n")


@pytest.mark.parametrize("data,reply", [
    (b"not json", error_reply("APP command error! (2, 201)")),
    (b'{"token":"t"}', error_reply("APP command error! (2, 201)")),
    (b'{"cmdType":1,"ssid":"lab","token":"t"}', error_reply("APP command error! (2, 204)")),
    (b'{"cmdType":0}', error_reply("APP command error! (2, 204)")),
])
def test_bad_app_datagrams_end_the_udp_task(module, closing, data, reply):
    daemon, port = module()
    app = closing(App())
    start_softap(port)
    uport = udp_port(daemon)
    app.send(uport, data)
    assert app.recv() == reply
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,4,206\r\n")
    app.send(uport, softap_cmd())  # the UDP server is gone
    app.nothing(0.3)


def test_cjson_style_reply_escapes_where_the_printf_one_does_not(make_daemon, tmp_path, broker,
                                                                   closing):
    app = closing(App())
    for fw, dn in [("2.1.1", b'q\\"d'), ("2.2.0", b'q"d')]:
        (tmp_path / fw).mkdir()
        daemon = make_daemon([tc_module(tmp_path / fw, broker.port, chip="esp8266",
                                        firmware=fw)])
        port = daemon.port()
        port.cmd('AT+TCDEVINFOSET=1,"%s","q\\"d","%s"' % (PID, SECRET))
        port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
        start_softap(port)
        app.send(udp_port(daemon), b'{"cmdType":0,"token":"t"}')
        assert app.recv() == device_reply(dn=dn.decode())
        daemon.stop()


def test_log_query_on_the_provisioning_port_then_the_udp_task_is_gone(module, closing):
    daemon, port = module()
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), b'{"cmdType":3}')
    first = app.recv()
    t0 = time.monotonic()
    assert app.recv() == first
    assert time.monotonic() - t0 >= 0.4  # app_send_dev_log(): 500 ms apart
    assert [(f, n, t) for _, f, n, t in LOG_LINE_RE.findall(first)] == [
        (b"start_softAP", b"879", b"start softAP: prov-ap"),
        (b"udp_server_task", b"727", b'{"cmdType":3}')]
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,4,206\r\n")


# ------------------------------------------------------------------ SmartConfig


def test_smartconfig_end_to_end(module, broker, closing):
    daemon, port = module()
    cloud = closing(Cloud(broker.port))
    app = closing(App())
    start_smart(port)
    assert status(daemon)["mode"] == "smartconfig"
    assert ctl(daemon, AP_SSID, AP_PWD) == {"ok": True, "result": {}}
    app.send(udp_port(daemon), b'{"cmdType":0,"token":"%s","region":"ap-guangzhou"}' % TOKEN.encode())
    expect_replies(app)
    port.expect(b"+TCSTARTSMART:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    assert BIND_RE.match(cloud.got[0][1]).group(2) == TOKEN.encode()
    assert AP_PWD not in daemon.log_text()
    assert "smartconfig lab ***" in daemon.log_text()


def test_smartconfig_without_the_token_fails_1_25(module, broker, closing):
    daemon, port = module()
    start_smart(port)
    assert ctl(daemon, AP_SSID, AP_PWD)["ok"]
    port.expect(b"+TCSTARTSMART:WIFI_CONNECT_FAILED,1,25\r\n", timeout=10)


def test_smartconfig_stopped_by_the_app_fails_3_101(module):
    daemon, port = module()
    start_smart(port)
    assert ctl(daemon, "stop") == {"ok": True, "result": {}}
    port.expect(b"+TCSTARTSMART:WIFI_CONNECT_FAILED,3,101\r\n")


def test_smartconfig_verb_is_refused_outside_smartconfig(module):
    daemon, port = module()
    r = ctl(daemon, AP_SSID, AP_PWD)
    assert r == {"ok": False, "error": "smartconfig: m0 is not in smartconfig"}
    start_softap(port)
    assert ctl(daemon, "stop")["error"] == "smartconfig: m0 is not in smartconfig"
    assert ctl(daemon, "a")["error"] == "smartconfig: expected SSID PASSWORD or stop"
    assert ctl(daemon, "x" * 33, "p")["error"] == "smartconfig: SSID must be 1 to 32 bytes"


def test_smartconfig_stop_by_at(module, closing):
    daemon, port = module()
    app = closing(App())
    start_smart(port)
    port.cmd("AT+TCSTOPSMART")
    port.expect(CORE_OK)
    port.expect_silence(0.3)
    texts = [t for _, _, t in query_log(daemon, app)]
    assert texts == ["Enter smartconfig", "softAP stopped by user!"]


def test_power_cycle_ends_provisioning_and_frees_the_ports(module, closing):
    daemon, port = module(softap_udp_port=0)
    app = closing(App())
    start_softap(port)
    uport = udp_port(daemon)
    c = daemon.ctl()
    try:
        assert c.request("power", "m0", "cycle")["ok"]
    finally:
        c.close()
    port.expect(b"\r\nready\r\n")
    st = status(daemon)
    assert (st["mode"], st["udp_port"], st["log_server"]) == (None, None, False)
    app.send(uport, softap_cmd())
    app.nothing(0.3)
    port.expect_silence(0.3)


# ------------------------------------------------------------------ the log server


def test_log_server_answers_only_the_log_query(module, closing):
    daemon, port = module(provision_timeout_ms=300)
    app = closing(App())
    start_softap(port)
    port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,3,103\r\n", timeout=3)
    lport = log_port(daemon)
    app.send(lport, b'{"cmdType":1}')
    app.nothing(0.3)
    app.send(lport, b'{"cmdType":3,"x":1}')  # the first 12 bytes are compared
    first = app.recv()
    assert app.recv() == first
    log = [LOG_LINE_RE.match(l + b"\r\n").groups() for l in first.split(b"\r\n")[:-1]]
    assert [(f, n, t) for _, f, n, t in log] == [
        (b"start_softAP", b"879", b"start softAP: prov-ap"),
        (b"softAP_mqtt_task", b"835", b"SoftAP: TIMEOUT")]
    ms = [int(l[0]) for l in log]
    assert ms[1] - ms[0] >= 250
    wait_for(lambda: not status(daemon)["log_server"], 3, "the log server's end")


def test_dynamic_registration_on_the_way(module, broker, closing, certs, tmp_path):
    from test_tencent_dynreg import PRD_SECRET, PSK, DynregServer
    import test_tencent_dynreg as td
    srv = closing(DynregServer(certs))
    daemon, port = module(devinfo=False, dynreg_url=srv.url, dynreg_ca_file=str(certs / "ca.crt"))
    port.cmd('AT+TCPRDINFOSET=1,"%s","%s","%s"' % (td.PID, PRD_SECRET, td.DN))
    port.expect(b"OK\r\n+TCPRDINFOSET:OK\r\n")
    app = closing(App())
    start_softap(port)
    app.send(udp_port(daemon), softap_cmd())
    expect_replies(app, device_reply(td.PID, td.DN))
    port.expect(b"+TCSAP:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b'+TCDEVINFOSET:1,"%s","%s",%d,"ap-guangzhou"\r\n' % (
        td.PID.encode(), td.DN.encode(), td.bcc(PSK)) + CORE_OK)
