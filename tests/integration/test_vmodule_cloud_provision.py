"""test_vmodule_cloud_provision.py - `vmodule-cloud provision`, the phone app
of Wi-Fi provisioning and the cloud that binds its token (issue 13;
tencent-at.md §3.13, §6.3), through its CLI on a real mosquitto.

Two halves:
- the tool alone: a scripted module (a UDP server here, a paho client as its
  MQTT side, a unix-socket server as vmoduled's control socket) reads what
  the tool sends byte for byte and answers as the firmware does;
- the tool with the real vmoduled (tencent dialect): AT+TCSAP /
  AT+TCSTARTSMART on the PTY, the tool as a subprocess, and the module's
  exact URCs (+TCSAP:WIFI_CONNECT_SUCCESS, ..._FAILED,<type>,<sub>). As on
  the firmware, a refused token is only logged by the module (it still
  succeeds; the next app gets the error as Previous_Error); the FAILED
  lines come from a region fault, a wrong Wi-Fi password and the app's stop.

"Not answered" is always shown by the tool's own timeout: it exits 1 with a
timeout event and the device never saw a reply."""
import json
import socket
import subprocess
import threading
import time

import pytest

from cloud import VMODULE_CLOUD, CloudTool
from conftest import MqttPeer, wait_for

PID, DN = "PROVPRD001", "prov_dev"
UP = "$thing/up/service/%s/%s" % (PID, DN)
DOWN = "$thing/down/service/%s/%s" % (PID, DN)
TOKEN = "69f978dfbb48ec40cadb6d9af470d0f6"
SSID, WIFI_PW = "lab", "labpass123"


def device_reply(pid=PID, dn=DN, region="ap-guangzhou"):
    """The module's cmdType 2 answer, as the firmware's printf writes it."""
    return ('{"cmdType":2,"productId":"%s","deviceName":"%s","productRegion":"%s",'
            '"protoVersion":"2.0"}\r\n' % (pid, dn, region)).encode()


def bind_token(token=TOKEN, client_token=DN + "-687232230"):
    """The module's publish on $thing/up/service (note the space after "params":)."""
    return ('{"method":"app_bind_token","clientToken":"%s","params": {"token":"%s"}}'
            % (client_token, token)).encode()


def bind_reply(code=0, client_token=DN + "-687232230"):
    return ('{"method":"app_bind_token_reply","clientToken":"%s","code":%d,"status":"%s"}'
            % (client_token, code, "success" if code == 0 else "fail")).encode()


def run_cli(*args, timeout=30):
    return subprocess.run(["/usr/bin/python3", VMODULE_CLOUD] + [str(a) for a in args],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout)


# ------------------------------------------------------------------ the scripted module


class UdpModule:
    """The module's UDP server on a free loopback port: records every
    datagram; answer(data) -> list of datagrams to send back (default: the
    device reply three times, as the firmware does, without its 1 s gaps)."""

    def __init__(self, answer=None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(0.1)
        self.port = self.s.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.answer = answer or (lambda data: [device_reply()] * 3)
        self.got = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while not self.stop:
            try:
                data, peer = self.s.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.got.append(data)
            for d in self.answer(data):
                self.s.sendto(d, peer)

    def wait(self, n, timeout=10.0):
        wait_for(lambda: len(self.got) >= n, timeout, "%d datagram(s) at the module" % n)
        with self.lock:
            return list(self.got)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.s.close()


class CtlServer:
    """A control socket that records each request line and answers `reply`."""

    def __init__(self, path, reply=b'{"ok":true,"result":{}}\n'):
        self.path = str(path)
        self.reply = reply
        self.got = []
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(self.path)
        self.s.listen(4)
        self.s.settimeout(0.1)
        self.stop = False
        self.t = threading.Thread(target=self._serve, daemon=True)
        self.t.start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with c:
                self.got.append(c.makefile("rb").readline())
                c.sendall(self.reply)

    def close(self):
        self.stop = True
        self.t.join(2)
        self.s.close()


@pytest.fixture
def broker(mosquitto):
    return mosquitto()


@pytest.fixture
def closing():
    """closing(x) -> x, closed at teardown."""
    made = []

    def add(x):
        made.append(x)
        return x
    yield add
    for x in reversed(made):
        x.close()


@pytest.fixture
def device(broker, closing):
    """The module's MQTT side: subscribed to $thing/down/service/PID/DN."""
    return closing(MqttPeer(broker.port, DOWN, 0))


def softap(broker, module, *extra):
    return CloudTool(["provision", "softap", SSID, WIFI_PW, "--token", TOKEN, "--broker",
                      "127.0.0.1:%d" % broker.port, "--udp", module.addr] + list(extra))


def assert_no_secret(tool):
    text = "\n".join(tool.lines) + tool.stderr()
    assert WIFI_PW not in text and "mqttpw" not in text, text


# ------------------------------------------------------------------ the tool alone


def test_softap_sends_cmdtype_1_and_binds_the_token(broker, device, closing):
    module = closing(UdpModule())
    tool = closing(softap(broker, module))
    tool.wait_event("device")
    assert module.wait(1)[0] == (b'{"cmdType":1,"ssid":"lab","password":"labpass123",'
                                 b'"token":"%s","region":"ap-guangzhou"}' % TOKEN.encode())
    device.publish(UP, bind_token())
    assert tool.finish() == 0
    assert device.wait_msgs(1) == [(DOWN, bind_reply())]
    assert tool.count("device") == 1  # three copies, printed once
    ev = tool.find("device")
    assert (ev["productId"], ev["deviceName"], ev["productRegion"], ev["protoVersion"]) == \
        (PID, DN, "ap-guangzhou", "2.0")
    assert tool.find("bound", productId=PID, deviceName=DN)
    assert len(module.got) == 1  # answered at once: never sent again
    assert_no_secret(tool)


def test_readable_output_names_the_device_and_the_binding(broker, device, closing):
    module = closing(UdpModule())
    p = subprocess.Popen(["/usr/bin/python3", VMODULE_CLOUD, "provision", "softap", SSID,
                          WIFI_PW, "--token", TOKEN, "--broker", "127.0.0.1:%d" % broker.port,
                          "--udp", module.addr], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL)
    closing(type("P", (), {"close": lambda self: p.poll() is None and p.kill()})())
    module.wait(1)
    device.publish(UP, bind_token())
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    lines = out.decode().splitlines()
    assert "module %s/%s (region ap-guangzhou, protocol 2.0)" % (PID, DN) in lines
    assert "bound: %s/%s to the app's token" % (PID, DN) in lines
    assert WIFI_PW not in out.decode() + err.decode()


def test_refuse_answers_the_code_and_exits_1(broker, device, closing):
    module = closing(UdpModule())
    tool = closing(softap(broker, module, "--refuse", "1003"))
    tool.wait_event("device")
    device.publish(UP, bind_token())
    assert tool.finish() == 1
    assert device.wait_msgs(1) == [(DOWN, bind_reply(1003))]
    assert tool.find("refused", code=1003)


def test_another_token_is_not_answered(broker, device, closing):
    module = closing(UdpModule())
    tool = closing(softap(broker, module, "--timeout", "2"))
    tool.wait_event("device")
    device.publish(UP, bind_token(token="someoneelsestoken"))
    tool.wait_event("token_mismatch", productId=PID, deviceName=DN)
    assert tool.finish() == 1
    assert tool.find("timeout", answered=True)
    assert device.msgs == []


def test_another_devices_token_is_not_answered(broker, device, closing):
    module = closing(UdpModule())
    tool = closing(softap(broker, module, "--timeout", "2"))
    tool.wait_event("device")
    other = MqttPeer(broker.port, "$thing/down/service/%s/other" % PID, 0)
    closing(other)
    other.publish("$thing/up/service/%s/other" % PID, bind_token())
    tool.wait_event("request", topic="$thing/up/service/%s/other" % PID)
    assert tool.finish() == 1
    assert other.msgs == [] and device.msgs == []


def test_no_module_times_out_with_exit_1(broker, closing):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there: the kernel refuses each datagram
    t0 = time.monotonic()
    tool = closing(CloudTool(["provision", "softap", SSID, "--token", TOKEN, "--broker",
                              "127.0.0.1:%d" % broker.port, "--udp", "127.0.0.1:%d" % port,
                              "--timeout", "1.5"]))
    assert tool.finish() == 1
    assert 1.4 < time.monotonic() - t0 < 10
    assert tool.find("unreachable", to="127.0.0.1:%d" % port)
    assert tool.find("timeout", answered=False)
    assert not tool.find("device")


def test_the_request_is_sent_again_until_the_module_answers(broker, device, closing):
    module = closing(UdpModule(answer=lambda d: [] if len(module.got) < 2 else
                               [device_reply()]))
    tool = closing(softap(broker, module))
    tool.wait_event("device", timeout=15)
    got = module.wait(2)
    assert got[0] == got[1] and len(got) == 2
    assert tool.count("sent", cmdType=1) == 2
    device.publish(UP, bind_token())
    assert tool.finish() == 0


def test_a_current_error_from_the_module_ends_the_run(broker, closing):
    err = b'{"cmdType":2,"deviceReply":"Current_Error","log":"ERR|wifi_sta_connect failed"}\r\n'
    module = closing(UdpModule(answer=lambda d: [err]))
    tool = closing(softap(broker, module))
    assert tool.finish() == 1
    assert tool.find("device_error", deviceReply="Current_Error",
                     log="ERR|wifi_sta_connect failed")
    assert tool.find("failed")


def test_a_previous_error_is_printed_and_the_run_goes_on(broker, device, closing):
    prev = b'{"cmdType":2,"deviceReply":"Previous_Error","log":"3,103"}\r\n'
    module = closing(UdpModule(answer=lambda d: [prev, device_reply()]))
    tool = closing(softap(broker, module))
    tool.wait_event("device_error", deviceReply="Previous_Error", log="3,103")
    tool.wait_event("device")
    device.publish(UP, bind_token())
    assert tool.finish() == 0


def test_open_ap_sends_an_empty_password(broker, device, closing):
    module = closing(UdpModule())
    tool = closing(CloudTool(["provision", "softap", "open-ap", "--token", "t1", "--region",
                              "na-ashburn", "--broker", "127.0.0.1:%d" % broker.port,
                              "--udp", module.addr]))
    assert module.wait(1)[0] == (b'{"cmdType":1,"ssid":"open-ap","password":"","token":"t1",'
                                 b'"region":"na-ashburn"}')
    tool.wait_event("device")
    device.publish(UP, bind_token(token="t1"))
    assert tool.finish() == 0


def test_smartconfig_delivers_ssid_by_the_control_socket_then_sends_cmdtype_0(
        broker, device, closing, tmp_path):
    ctl = closing(CtlServer(tmp_path / "ctl.sock"))
    module = closing(UdpModule())
    tool = closing(CloudTool(["provision", "smartconfig", "m0", SSID, WIFI_PW, "-s", ctl.path,
                              "--token", TOKEN, "--broker", "127.0.0.1:%d" % broker.port,
                              "--udp", module.addr]))
    tool.wait_event("device")
    assert [json.loads(l) for l in ctl.got] == [
        {"cmd": "smartconfig", "module": "m0", "args": [SSID, WIFI_PW]}]
    assert module.wait(1)[0] == (b'{"cmdType":0,"token":"%s","region":"ap-guangzhou"}'
                                 % TOKEN.encode())
    device.publish(UP, bind_token())
    assert tool.finish() == 0
    assert device.wait_msgs(1) == [(DOWN, bind_reply())]
    assert tool.find("delivered", module="m0")
    assert_no_secret(tool)


def test_smartconfig_refused_by_the_daemon_exits_1(broker, closing, tmp_path):
    ctl = closing(CtlServer(tmp_path / "ctl.sock",
                            b'{"ok":false,"error":"smartconfig: m0 is not in smartconfig"}\n'))
    module = closing(UdpModule())
    r = run_cli("provision", "smartconfig", "m0", SSID, WIFI_PW, "-s", ctl.path, "--token",
                TOKEN, "--broker", "127.0.0.1:%d" % broker.port, "--udp", module.addr)
    assert r.returncode == 1, r
    assert b"vmoduled refused smartconfig: smartconfig: m0 is not in smartconfig" in r.stderr
    assert module.got == []  # nothing sent to the module


def test_smartconfig_without_a_daemon_exits_1(broker, tmp_path):
    r = run_cli("provision", "smartconfig", "m0", SSID, "-s", tmp_path / "none.sock",
                "--token", TOKEN, "--broker", "127.0.0.1:%d" % broker.port)
    assert r.returncode == 1 and b"control socket" in r.stderr, r


def test_stop_asks_the_daemon_to_end_esptouch(closing, tmp_path):
    ctl = closing(CtlServer(tmp_path / "ctl.sock"))
    r = run_cli("provision", "smartconfig", "m0", "--stop", "-s", ctl.path, "--json")
    assert r.returncode == 0, r
    assert [json.loads(l) for l in ctl.got] == [
        {"cmd": "smartconfig", "module": "m0", "args": ["stop"]}]
    assert json.loads(r.stdout) == {"event": "stopped", "module": "m0"}


def test_log_query_prints_each_line_once(closing):
    answer = b"1000|qiot_device_bind(399): WIFI_MQTT_CONNECT_FAILED\r\n2000|x(1): y\r\n"
    logs = closing(UdpModule(answer=lambda d: [answer, answer]))  # sent twice, as the FW does
    r = run_cli("provision", "softap", "--log-query", "--log-udp", logs.addr, "--json")
    assert r.returncode == 0, r
    events = [json.loads(l) for l in r.stdout.splitlines()]
    assert [e["line"] for e in events if e["event"] == "log"] == [
        "1000|qiot_device_bind(399): WIFI_MQTT_CONNECT_FAILED", "2000|x(1): y"]
    assert events[-1] == {"event": "done", "lines": 2}
    assert logs.got[0] == b'{"cmdType":3}'


def test_log_query_without_an_answer_exits_1(closing):
    logs = closing(UdpModule(answer=lambda d: []))
    r = run_cli("provision", "smartconfig", "--log-query", "--log-udp", logs.addr,
                "--timeout", "1.5")
    assert r.returncode == 1, r
    assert b"timeout: no answer from the log server" in r.stdout
    assert len(logs.got) >= 1


@pytest.mark.parametrize("args,why", [
    (["softap", "--token", "t", "--broker", "127.0.0.1:1883"], b"missing SSID"),
    (["softap", "lab", "--broker", "127.0.0.1:1883"], b"missing --token"),
    (["softap", "lab", "--token", "t"], b"missing --broker"),
    (["smartconfig", "--token", "t", "--broker", "127.0.0.1:1883"], b"missing MODULE, SSID"),
    (["softap", "x" * 33, "--token", "t", "--broker", "127.0.0.1:1883"], b"SSID must be"),
    (["softap", "lab", "--token", "t", "--broker", "127.0.0.1:99999"], b"--broker must be"),
    (["softap", "lab", "--token", "t", "--broker", "b:1", "--udp", "h:0"], b"--udp"),
    (["softap", "lab", "--token", "t", "--broker", "b:1", "--refuse", "0"], b"--refuse"),
    (["softap", "lab", "--token", "t", "--broker", "b:1", "--timeout", "0"], b"--timeout"),
    (["softap", "--log-query", "--token", "t"], b"--log-query takes no --token"),
    (["smartconfig", "--stop"], b"--stop needs MODULE"),
    (["smartconfig", "m0", "lab", "--stop"], b"--stop takes no SSID"),
    (["softap", "--stop"], b"unrecognized arguments: --stop"),
    (["wps"], b"invalid choice"),
])
def test_usage_errors_exit_2(args, why):
    r = run_cli("provision", *args)
    assert r.returncode == 2, r
    assert why in r.stderr, r.stderr


# ------------------------------------------------------------------ with the real vmoduled

SECRET = "ZHNkIGRzZCA="
APS = {"access_points": [{"ssid": SSID, "password": WIFI_PW}], "join_ms": 0}
FAST = {"softap_udp_port": 0, "log_udp_port": 0, "provision_step_ms": 50,
        "provision_settle_ms": 100, "provision_token_wait_ms": 2000,
        "provision_retry_timeout_ms": 2000}
SAP_OK = b"\r\nOK\r\n+TCSAP:OK\r\n"  # the core's OK first
SMART_OK = b"OK\r\n+TCSTARTSMART:OK\r\n"


class Module:
    """A tencent module (not joined: provisioning brings its AP) on the test
    broker, with its device info set and the timings cut down."""

    def __init__(self, make_daemon, tmp_path, broker, **tencent):
        from test_tencent_mqtt import tc_module
        t = dict(FAST, wifi=APS)
        t.update(tencent)
        self.daemon = make_daemon([tc_module(tmp_path, broker.port, **t)], log_level="info")
        self.port = self.daemon.port()
        self.name = self.daemon.module()["name"]
        self.port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET))
        self.port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")

    def provision(self):
        with self.daemon.ctl() as c:
            reply = c.request("status", self.name)
        assert reply["ok"], reply
        return reply["result"]["provision"]

    def udp(self, key="udp_port"):
        port = self.provision()[key]
        assert port, self.provision()
        return "127.0.0.1:%d" % port

    def softap(self):
        self.port.cmd('AT+TCSAP="vmod-softap"')
        self.port.expect(SAP_OK)
        return self.udp()

    def smartconfig(self):
        self.port.cmd("AT+TCSTARTSMART")
        self.port.expect(SMART_OK)
        return self.udp()


@pytest.fixture
def module(make_daemon, tmp_path, broker):
    return Module(make_daemon, tmp_path, broker)


@pytest.fixture
def watcher(broker, closing):
    """Everything on $thing/+/service/PID/DN, in order."""
    return closing(MqttPeer(broker.port, "$thing/+/service/%s/%s" % (PID, DN), 1))


def app(broker, *args):
    return CloudTool(["provision"] + [str(a) for a in args] +
                     ["--token", TOKEN, "--broker", "127.0.0.1:%d" % broker.port])


BIND_TOKEN_RE = (rb'\{"method":"app_bind_token","clientToken":"%s-(\d+)",'
                 rb'"params": \{"token":"%s"\}\}' % (DN.encode(), TOKEN.encode()))


def assert_bound(watcher, tool, code=0):
    """The module's app_bind_token, then the tool's reply with its clientToken."""
    import re
    (t1, p1), (t2, p2) = watcher.wait_msgs(2)[:2]
    m = re.fullmatch(BIND_TOKEN_RE, p1)
    assert t1 == UP and m, (t1, p1)
    assert (t2, p2) == (DOWN, bind_reply(code, "%s-%s" % (DN, m.group(1).decode()))), p2
    assert tool.find("device") == {"event": "device", "productId": PID, "deviceName": DN,
                                   "productRegion": "ap-guangzhou", "protoVersion": "2.0"}


def test_daemon_softap_success(module, broker, watcher, closing):
    udp = module.softap()
    tool = closing(app(broker, "softap", SSID, WIFI_PW, "--udp", udp))
    assert tool.finish() == 0
    assert tool.find("bound", productId=PID, deviceName=DN)
    assert_bound(watcher, tool)
    module.port.expect(b"+TCSAP:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    assert tool.count("device") == 1
    assert WIFI_PW not in module.daemon.log_text()
    assert_no_secret(tool)


def test_daemon_smartconfig_success(module, broker, watcher, closing):
    udp = module.smartconfig()
    tool = closing(app(broker, "smartconfig", module.name, SSID, WIFI_PW,
                       "-s", module.daemon.ctl_path, "--udp", udp))
    assert tool.finish() == 0
    assert tool.find("delivered", module=module.name)
    assert_bound(watcher, tool)
    module.port.expect(b"+TCSTARTSMART:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    assert_no_secret(tool)


def test_daemon_refused_token_is_only_logged_by_the_module(module, broker, watcher, closing):
    """The firmware logs a nonzero app_bind_token_reply code as error (24,
    code) and still succeeds; the app sees that error as Previous_Error at
    its next provisioning."""
    udp = module.softap()
    tool = closing(app(broker, "softap", SSID, WIFI_PW, "--udp", udp, "--refuse", "1003"))
    assert tool.finish() == 1
    assert tool.find("refused", code=1003)
    assert_bound(watcher, tool, 1003)
    module.port.expect(b"+TCSAP:WIFI_CONNECT_SUCCESS\r\n", timeout=10)
    udp = module.softap()
    again = closing(app(broker, "softap", SSID, WIFI_PW, "--udp", udp))
    again.wait_event("device_error", deviceReply="Previous_Error",
                     log="MQTT Token reply error! (24, 1003)")
    assert again.finish() == 0


def test_daemon_region_fault_fails_and_the_log_tells_why(module, broker, watcher, closing):
    udp = module.softap()
    tool = closing(app(broker, "softap", SSID, WIFI_PW, "--udp", udp, "--region", "na-ashburn",
                       "--timeout", "5"))
    tool.wait_event("device")
    module.port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,1,26\r\n", timeout=10)
    assert tool.finish() == 1
    assert tool.find("timeout", answered=True)
    assert watcher.msgs == []  # no token published
    logs = closing(CloudTool(["provision", "softap", "--log-query", "--log-udp",
                              module.udp("log_udp_port")]))
    assert logs.finish() == 0
    lines = [e["line"] for e in logs.events if e["event"] == "log"]
    assert any(l.endswith("|_send_token_wait_reply(302): Region fault: ap-guangzhou != "
                          "na-ashburn") for l in lines), lines
    assert not any(WIFI_PW in l for l in lines), lines


def test_daemon_wrong_wifi_password_times_out_the_app(module, broker, closing):
    udp = module.softap()
    tool = closing(app(broker, "softap", SSID, "not-the-password", "--udp", udp,
                       "--timeout", "2"))
    assert tool.finish() == 1
    assert tool.find("device") and tool.find("timeout", answered=True)
    module.port.expect(b"+TCSAP:WIFI_CONNECT_FAILED,3,103\r\n", timeout=10)


def test_daemon_stop_by_the_app(module, closing):
    module.smartconfig()
    r = run_cli("provision", "smartconfig", module.name, "--stop", "-s", module.daemon.ctl_path)
    assert r.returncode == 0, r
    assert r.stdout == b"smartconfig of %s stopped\n" % module.name.encode()
    module.port.expect(b"+TCSTARTSMART:WIFI_CONNECT_FAILED,3,101\r\n")


def test_daemon_refuses_smartconfig_outside_smartconfig(module, broker):
    r = run_cli("provision", "smartconfig", module.name, SSID, WIFI_PW, "-s",
                module.daemon.ctl_path, "--token", TOKEN, "--broker",
                "127.0.0.1:%d" % broker.port)
    assert r.returncode == 1, r
    assert r.stderr == b"vmodule-cloud: vmoduled refused smartconfig: smartconfig: %s is not " \
                       b"in smartconfig\n" % module.name.encode()
    r = run_cli("provision", "smartconfig", module.name, "--stop", "-s", module.daemon.ctl_path)
    assert r.returncode == 1 and b"is not in smartconfig" in r.stderr, r


def test_a_host_alone_takes_each_servers_own_port():
    """--udp HOST is the softAP server's 8266, --log-udp HOST the log
    server's 9876 (the module's defaults)."""
    import argparse
    import os
    import sys
    sys.path.insert(0, os.path.dirname(VMODULE_CLOUD))
    from vmcloud import provision  # pylint: disable=import-outside-toplevel
    p = argparse.ArgumentParser()
    provision.register(p.add_subparsers(dest="command"))
    args = p.parse_args(["provision", "softap", "--log-query", "--udp", "127.0.0.2",
                         "--log-udp", "127.0.0.3"])
    provision._check(args)  # pylint: disable=protected-access
    assert args.udp_addr == ("127.0.0.2", 8266)
    assert args.log_udp_addr == ("127.0.0.3", 9876)
