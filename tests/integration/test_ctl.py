"""test_ctl.py - the control socket and vmodulectl (issue 12): the protocol
(list, status, power, reboot, urc, wait, trace, events, metrics), scheduled
faults, bad requests, several clients, a client that stops reading, the
socket's permissions, and vmodulectl's output and exit codes. The verbs of
one dialect or transport (wifi, cell, net, serial) have their own files
(test_ctl_*.py)."""
import json
import os
import re
import socket
import stat
import subprocess
import time

import pytest

import ctl
from conftest import READY, module_config, wait_for


def tc(tmp_path, name="t0", **kw):
    return module_config(tmp_path, name, "tencent", **kw)


@pytest.fixture
def daemon(make_daemon, tmp_path):
    """Two modules (tencent t0, w800 w0) on one daemon; t0's port open."""
    d = make_daemon([tc(tmp_path), module_config(tmp_path, "w0", "w800")])
    d.t0 = d.port("t0")
    return d


def run_ctl(d, *args, **kw):
    return ctl.vmodulectl(d.ctl_path, *args, **kw)


# ------------------------------------------------------------------ the socket


def test_socket_mode_and_directory(make_daemon, tmp_path):
    state = tmp_path / "st"
    d = make_daemon([tc(tmp_path)], state_dir=state)
    st = os.lstat(d.ctl_path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    d.stop()
    assert not d.ctl_path.exists()


def test_control_option_and_config_key(make_daemon, tmp_path):
    path = tmp_path / "c" / "d" / "ctl.sock"          # parents made 0700
    d = make_daemon([tc(tmp_path)], args=["--control", str(path)])
    with ctl.Ctl(path) as c:
        assert c.request("list")["ok"] is True
    assert stat.S_IMODE(os.stat(tmp_path / "c" / "d").st_mode) == 0o700
    d.stop()
    d2 = make_daemon([tc(tmp_path, "t1")], extra_config={"control_socket": str(tmp_path / "k")})
    assert d2.ctl_path == tmp_path / "k"
    with d2.ctl() as c:
        assert [m["name"] for m in c.request("list")["result"]] == ["t1"]


def test_stale_socket_replaced_live_one_refused(make_daemon, tmp_path):
    d = make_daemon([tc(tmp_path)])
    d.kill9()
    assert d.ctl_path.exists()                         # left by the killed daemon
    d.start()
    with d.ctl() as c:
        assert c.request("list")["ok"]
    other = make_daemon([tc(tmp_path, "t9")], start=False,
                        extra_config={"control_socket": str(d.ctl_path)})
    other.config_path.write_text(json.dumps(other.config))
    r = subprocess.run([other.binary, "-c", str(other.config_path)], capture_output=True,
                       timeout=20)
    assert r.returncode == 1
    assert b"another vmoduled is listening there" in r.stderr
    with d.ctl() as c:                                 # the first one is undisturbed
        assert c.request("list")["ok"]


def test_long_socket_path(make_daemon, tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    d = make_daemon([tc(tmp_path)], extra_config={"control_socket": str(deep / "control.sock")})
    assert len(str(d.ctl_path)) > 108
    r = run_ctl(d, "list")
    assert r.returncode == 0 and b"t0" in r.stdout, r


# ------------------------------------------------------------------ list and status


def test_list_and_status(daemon):
    with daemon.ctl() as c:
        r = c.request("list")
        assert r == {"ok": True, "result": [
            {"name": "t0", "dialect": "tencent", "link": daemon.link("t0"), "power": "on"},
            {"name": "w0", "dialect": "w800", "link": daemon.link("w0"), "power": "off"}]}
        ok, err = b"AT\r\n\r\nOK\r\n", b"AT+NOSUCH\r\nERR CODE:0x01090000\r\n\r\nERROR\r\n"
        daemon.t0.cmd("AT")
        daemon.t0.expect(ok)
        daemon.t0.cmd("AT+NOSUCH")
        daemon.t0.expect(err)
        st = c.request("status", "t0")["result"]
        assert st["power"] == "on" and st["serial_open"] is True
        assert st["pty"].startswith("/dev/pts/")
        out = READY + ok + err
        assert st["counters"] == {"rx_bytes": 15, "tx_bytes": len(out), "rx_lines": 2,
                                  "tx_lines": out.count(b"\n"), "errors": 1, "busy": 0,
                                  "tx_drops": 0, "reconnects": 0, "faults_fired": 0}
        assert c.request("status", "w0")["result"]["serial_open"] is False


def test_bad_requests_get_an_error_and_nothing_else(daemon):
    with daemon.ctl() as c:
        for raw, error in [
                (b"not json\n", "not a JSON object"),
                (b"[1,2]\n", "not a JSON object"),
                (b'{"module":"t0"}\n', '"cmd" must be a string'),
                (b'{"cmd":"fly","module":"t0"}\n', 'unknown cmd "fly"'),
                (b'{"cmd":"status","module":"nope"}\n', 'no module "nope"'),
                (b'{"cmd":"status"}\n', 'status: "module" must name a module'),
                (b'{"cmd":"power","module":"t0","args":"off"}\n',
                 '"args" must be an array of strings'),
                (b'{"cmd":"power","module":"t0","args":[1]}\n', '"args" must be an array of strings'),
                (b'{"cmd":"power","module":"t0","args":["sideways"]}\n',
                 "power: expected off, on or cycle"),
                (b'{"cmd":"reboot","module":"t0","args":["now"]}\n', "reboot: takes no argument"),
                (b'{"cmd":"cell","module":"t0","args":["sim-out"]}\n',
                 "cell: not a fault of the tencent dialect"),
                (b'{"cmd":"wait","module":"t0","args":["("]}\n', "wait: bad regex"),
                (b'{"cmd":"urc","module":"t0","args":["bad\\\\q"]}\n', "urc: bad escape in TEXT")]:
            c.send_raw(raw)
            r = c.read_line()
            assert r["ok"] is False and r["error"].startswith(error), (raw, r)
        c.send_raw(b"x" * 70000 + b"\n")
        assert c.read_line() == {"ok": False, "error": "request longer than 65536 bytes"}
        c.send_raw(b"\n\n")                            # empty lines: nothing
        assert c.request("list")["ok"] is True         # the connection still works
    daemon.t0.cmd("AT")
    daemon.t0.expect("AT\r\n\r\nOK\r\n")               # the module saw nothing
    daemon.t0.expect_nothing_pending()


# ------------------------------------------------------------------ power, reboot, urc


def test_power_off_on_cycle(daemon):
    with daemon.ctl() as c:
        assert c.request("power", "t0", "off") == {"ok": True, "result": {}}
        daemon.t0.cmd("AT")                            # no power: no echo, no answer
        assert c.request("status", "t0")["result"]["power"] == "off"
        assert c.request("reboot", "t0") == {"ok": False,
                                             "error": "reboot: the module has no power"}
        assert c.request("urc", "t0", "+X") == {"ok": False,
                                                "error": "urc: the module is not powered"}
        assert c.request("power", "t0", "on")["ok"]
        daemon.t0.wait_ready()                         # the banner, and nothing of the AT
        daemon.t0.cmd("AT")
        daemon.t0.expect("AT\r\n\r\nOK\r\n")
        assert c.request("power", "t0", "cycle")["ok"]
        daemon.t0.wait_ready()
        assert c.request("reboot", "t0")["ok"]
        daemon.t0.wait_ready()
        daemon.t0.expect_nothing_pending()
        assert c.request("status", "t0")["result"]["counters"]["faults_fired"] == 4


def test_power_cut_keeps_flash_loses_ram(daemon):
    p = daemon.t0
    p.cmd('AT+TCDEVINFOSET=1,"PRODUCTID1","dev1","c2VjcmV0c2VjcmV0c2VjcmV0"')
    p.expect('AT+TCDEVINFOSET=1,"PRODUCTID1","dev1","c2VjcmV0c2VjcmV0c2VjcmV0"\r\nOK\r\n'
             '+TCDEVINFOSET:OK\r\n')
    w = daemon.port("w0")
    w.cmd("ATE0")
    w.expect("ATE0\r\n\r\nOK\r\n")
    with daemon.ctl() as c:
        assert c.request("power", "t0", "cycle")["ok"]
        assert c.request("power", "w0", "cycle")["ok"]
    p.wait_ready()
    w.wait_ready()
    w.cmd("AT")
    w.expect("AT\r\n\r\nOK\r\n")                       # echo back on: RAM state lost
    p.cmd("AT+TCDEVINFOSET?")
    p.expect('AT+TCDEVINFOSET?\r\n+TCDEVINFOSET:1,"PRODUCTID1","dev1",5,"ap-guangzhou"\r\n'
             '\r\nOK\r\n')                              # flash kept (5: the BCC of the secret)


def test_urc_with_escapes(daemon):
    with daemon.ctl() as c:
        assert c.request("urc", "t0", r"+TCMQTTDISCON,-1\r\n\x01\101")["ok"]
    daemon.t0.expect(b"+TCMQTTDISCON,-1\r\n\x01A")


# ------------------------------------------------------------------ wait, events, trace


def test_wait_matches_later_output_and_times_out(daemon):
    r = run_ctl(daemon, "wait", "t0", "ready", "--timeout", "0.2")
    assert (r.returncode, r.stdout, r.stderr) == (1, b"", b"vmodulectl: timeout: no match\n")
    with daemon.ctl() as c, daemon.ctl() as c2:
        c.send_raw(b'{"cmd":"wait","module":"t0","args":["OK\\r\\n$"],"timeout_ms":10000}\n'
                   b'{"cmd":"list"}\n')                # answered after the wait
        assert c2.request("list")["ok"]               # another client is not held
        daemon.t0.cmd("AT")
        assert c.read_line() == {"ok": True, "result": {"matched": True}}
        assert c.read_line()["ok"] is True
    p = subprocess.Popen([ctl.vmodulectl_bin(), "-s", str(daemon.ctl_path), "wait", "t0",
                          "TCMQTT.*,3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with daemon.ctl() as c:
        wait_for(lambda: c.request("status", "t0")["ok"] and p.poll() is None, 5)
        time.sleep(0.1)  # nothing to await: the request must reach the daemon first
        assert c.request("urc", "t0", r"+TCMQTTDISCON,3\r\n")["ok"]
    assert p.wait(10) == 0 and p.stdout.read() == b""


def test_events_and_follow(daemon):
    with daemon.ctl() as f:
        f.send_raw(b'{"cmd":"events","args":["-f"]}\n')
        assert f.read_line() == {"ok": True, "stream": True}
        old = f.read_line()
        assert old["kind"] == "state" and old["module"] == "t0" and old["what"] == "power"
        with daemon.ctl() as c:
            assert c.request("urc", "t0", r"+HI\r\n")["ok"]
        got = [f.read_line(), f.read_line()]
        assert {e["kind"] for e in got} == {"urc", "fault"}
        urc = next(e for e in got if e["kind"] == "urc")
        assert urc["text"] == "+HI" and urc["module"] == "t0"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", urc["time"])
        fault = next(e for e in got if e["kind"] == "fault")
        assert fault["do"] == r"urc +HI\r\n"
    r = run_ctl(daemon, "events")
    assert r.returncode == 0
    assert re.search(rb"^\S+ t0 fault do=urc \+HI\\r\\n$", r.stdout, re.M), r.stdout
    r = run_ctl(daemon, "--json", "events")
    assert json.loads(r.stdout)["ok"] is True


def test_trace_redacts_secrets(daemon):
    with daemon.ctl() as c:
        assert c.request("trace", "t0") == {"ok": True, "result": []}   # tap made now
        daemon.t0.cmd('AT+TCDEVINFOSET=1,"PRODUCTID1","dev1","c2VjcmV0c2VjcmV0c2VjcmV0"')
        daemon.t0.read_until("OK\r\n")
        lines = c.request("trace", "t0")["result"]
    text = "\n".join(lines)
    assert "c2VjcmV0c2VjcmV0c2VjcmV0" not in text
    assert re.search(r' > AT\+TCDEVINFOSET=1,"PRODUCTID1","dev1",\S*\*\*\*', text), text
    assert lines[-1].endswith(" < OK\\r\\n")


def test_trace_follow_through_vmodulectl(daemon):
    p = subprocess.Popen([ctl.vmodulectl_bin(), "-s", str(daemon.ctl_path), "trace", "t0", "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with daemon.ctl() as c:
            wait_for(lambda: c.request("status", "t0")["ok"] and p.poll() is None, 5)
        time.sleep(0.2)  # the follower must be attached before the bytes
        daemon.t0.cmd("AT")
        daemon.t0.expect("AT\r\n\r\nOK\r\n")
        line = p.stdout.readline()
        assert re.fullmatch(rb"\S+ > AT\\r\\n\n", line), line
    finally:
        p.terminate()
        p.wait(5)


def test_slow_follower_is_dropped_and_nothing_else_notices(daemon):
    slow = ctl.connect(daemon.ctl_path)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sendall(b'{"cmd":"events","args":["-f"]}\n')  # and never read
    with daemon.ctl() as c:
        text = "x" * 800
        for i in range(8000):                          # ~8 MB of events queued for it
            assert c.request("urc", "t0", "+" + text)["ok"]
            if i % 100 == 0 and "control client not reading" in daemon.log_text():
                break
        assert "control client not reading" in daemon.log_text()
        assert c.request("list")["ok"]
    slow.close()
    daemon.t0.read_available(0.2)
    daemon.t0.cmd("AT")
    daemon.t0.read_until("OK\r\n")


# ------------------------------------------------------------------ metrics


def test_metrics_prometheus_text(daemon):
    for _ in range(3):
        daemon.t0.cmd("AT+GMR")
        daemon.t0.read_until("OK\r\n")
    daemon.t0.cmd("AT+TCDEVINFOSET=9")
    daemon.t0.expect("AT+TCDEVINFOSET=9\r\n+CME ERROR:204\r\n")
    r = run_ctl(daemon, "metrics")
    assert r.returncode == 0
    text = r.stdout.decode()
    assert 'vmodule_at_commands_total{module="t0",command="AT+GMR"} 3\n' in text
    assert 'vmodule_at_command_errors_total{module="t0",command="AT+GMR"} 0\n' in text
    assert 'vmodule_at_command_errors_total{module="t0",command="AT+TCDEVINFOSET"} 1\n' in text
    assert 'vmodule_at_command_seconds_count{module="t0",command="AT+GMR"} 3\n' in text
    assert re.search(r'vmodule_at_command_seconds_sum\{module="t0",command="AT\+GMR"\} '
                     r'\d+\.\d{6}\n', text)
    assert '# TYPE vmodule_at_command_seconds summary\n' in text
    assert 'vmodule_powered{module="w0"} 0\n' in text
    assert 'vmodule_powered{module="t0"} 1\n' in text
    for line in text.splitlines():                     # the exposition format, line by line
        assert re.fullmatch(r"# (HELP|TYPE) \w+ .+|\w+\{[^}]*\} \S+", line), line


# ------------------------------------------------------------------ scheduled faults


def test_scheduled_faults_fire_in_order(make_daemon, tmp_path):
    m = tc(tmp_path, faults=[
        {"after": "ready", "do": r"urc +STEP1\r\n"},
        {"at_ms": 300, "do": r"urc +STEP2\r\n"},
        {"after": r"OK\r\n", "do": "power cycle"},
        {"after": "never printed", "do": "reboot"}])
    d = make_daemon([m])
    p = d.port("t0")
    p.expect("+STEP1\r\n")
    p.expect("+STEP2\r\n", timeout=5)
    p.cmd("AT")
    p.expect("AT\r\n\r\nOK\r\n")
    p.wait_ready()                                     # the power cycle after OK
    with d.ctl() as c:
        st = c.request("status", "t0")["result"]
    fired = [(f["do"], f["fired"]) for f in st["faults"]]
    assert fired == [(r"urc +STEP1\r\n", True), (r"urc +STEP2\r\n", True), ("power cycle", True),
                     ("reboot", False)]
    assert st["faults"][1]["fired_ms"] >= 300
    assert st["counters"]["faults_fired"] == 3
    d.stop()
    assert 'scheduled fault 3 ("reboot") never fired' in d.log_text()


@pytest.mark.parametrize("faults, message", [
    ("x", "modules[0].faults: must be an array"),
    ([{"do": "reboot"}], "modules[0].faults[0]: needs exactly one of at_ms and after"),
    ([{"at_ms": 1, "after": "x", "do": "reboot"}], "needs exactly one of at_ms and after"),
    ([{"at_ms": -1, "do": "reboot"}], "faults[0].at_ms: must be an integer between 0 and"),
    ([{"after": "(", "do": "reboot"}], "faults[0].after: not a valid POSIX extended regex"),
    ([{"at_ms": 1}], "faults[0].do: required"),
    ([{"at_ms": 1, "do": "reboot", "when": 2}], "faults[0].when: unknown key"),
    ([{"at_ms": 1, "do": "explode"}], 'faults[0].do: explode: unknown fault'),
    ([{"at_ms": 1, "do": "power sideways"}], "faults[0].do: power: expected off, on or cycle"),
    ([{"at_ms": 1, "do": "cell sim-out"}], "faults[0].do: cell: not a fault of the tencent"),
])
def test_bad_schedule_is_a_config_error(run_vmoduled, tmp_path, faults, message):
    cfg = {"state_dir": str(tmp_path / "s"), "modules": [tc(tmp_path, faults=faults)]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg))
    r = run_vmoduled(["-c", str(path)])
    assert r.returncode == 2
    assert message in r.stderr, r.stderr


# ------------------------------------------------------------------ vmodulectl


def test_vmodulectl_usage_and_errors(daemon):
    for args in ([], ["fly"], ["status"], ["power", "t0"], ["power", "t0", "a", "b"],
                 ["events", "-x"], ["wait", "t0", "x", "--timeout", "soon"], ["--bogus", "list"]):
        r = run_ctl(daemon, *args)
        assert r.returncode == 2 and r.stderr.startswith(b"vmodulectl: "), (args, r)
        assert r.stdout == b""
    r = run_ctl(daemon, "power", "t0", "sideways")
    assert (r.returncode, r.stderr) == (1, b"vmodulectl: power: expected off, on or cycle\n")
    r = run_ctl(daemon, "--json", "power", "t0", "sideways")
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"ok": False, "error": "power: expected off, on or cycle"}
    r = ctl.vmodulectl(daemon.ctl_path.parent / "nothing.sock", "list")
    assert r.returncode == 1 and b"cannot reach the daemon" in r.stderr
    r = subprocess.run([ctl.vmodulectl_bin(), "--help"], capture_output=True)
    assert r.returncode == 0 and b"usage: vmodulectl" in r.stdout


def test_vmodulectl_list_status_and_fault(daemon):
    r = run_ctl(daemon, "list")
    assert r.returncode == 0
    assert r.stdout.decode().splitlines() == [
        "NAME                 DIALECT  POWER    LINK",
        "t0                   tencent  on       %s" % daemon.link("t0"),
        "w0                   w800     off      %s" % daemon.link("w0")]
    r = run_ctl(daemon, "status", "t0")
    assert r.returncode == 0
    assert "\ncounters.rx_bytes: 0\n" in r.stdout.decode() and \
        r.stdout.decode().startswith("name: t0\ndialect: tencent\n")
    r = run_ctl(daemon, "urc", "t0", r"+X\r\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    daemon.t0.expect("+X\r\n")
    env = dict(os.environ, VMODULE_CONTROL=str(daemon.ctl_path))
    r = subprocess.run([ctl.vmodulectl_bin(), "--json", "status", "w0"], capture_output=True,
                       env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["result"]["name"] == "w0"


@pytest.mark.parametrize("dialect", ["tencent", "w800", "me3630"])
def test_power_reboot_urc_on_every_dialect(start_module, dialect):
    banner = {"me3630": {"boot_urcs": ["ready"]}} if dialect == "me3630" else {}  # none by default
    d, p = start_module(dialect, name="m", **banner)
    with d.ctl() as c:
        assert c.request("urc", "m", r"+VM:1\r\n")["ok"]
        p.expect("+VM:1\r\n")
        assert c.request("power", "m", "off")["ok"]
        p.cmd("AT")
        assert c.request("power", "m", "on")["ok"]
        p.wait_ready()                                 # no echo of the AT sent without power
        assert c.request("reboot", "m")["ok"]
        p.wait_ready()
        p.cmd("AT")
        p.expect("AT\r\n\r\nOK\r\n")
        st = c.request("status", "m")["result"]
        assert (st["dialect"], st["power"], st["counters"]["faults_fired"]) == (dialect, "on", 4)
