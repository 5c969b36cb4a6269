"""test_power_on.py - the module config power_on (README "The serial line"):
when power is first applied. first-open: when the MCU opens the PTY or
connects to the TCP endpoint (the banner follows without a byte sent);
first-byte: at the MCU's first byte, which is lost while the module boots;
start: when the daemon starts, the banner then queued as any output nobody
reads. And the Docker recipe of the README: the host-side socat bridge, run
for real, must hand the firmware its `ready`."""
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import READY, REPO, Port, module_config, wait_for

ECHO_OK = b"AT\r\n\r\nOK\r\n"  # AT with echo on, as after power-on


def power(d, name="m0"):
    with d.ctl() as c:
        r = c.request("list")
    assert r["ok"], r
    return next(m["power"] for m in r["result"] if m["name"] == name)


def wait_power_on(d, name="m0"):
    wait_for(lambda: power(d, name) == "on", 5, "module %s to boot" % name)


def tcp_module(tmp_path, **kw):
    return module_config(tmp_path, tcp_listen="127.0.0.1:0", **kw)


# ---------------------------------------------------------------- first-open


def test_first_open_pty_boots_when_the_port_opens(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, power_on="first-open")])
    assert power(d) == "off"
    port = d.port(wait_ready=False)
    port.expect(READY)                    # nothing sent: the open alone powered it
    port.cmd("AT")
    port.expect(ECHO_OK)
    d.wait_log("[m0] serial port opened: powering on")


def test_first_open_tcp_boots_when_a_client_connects(make_daemon, tmp_path):
    d = make_daemon([tcp_module(tmp_path, power_on="first-open")])
    assert power(d) == "off"
    t = d.tcp()
    t.expect(READY)
    t.cmd("AT")
    t.expect(ECHO_OK)
    d.wait_log("[m0] tcp client connected: powering on")


# ---------------------------------------------------------------- first-byte


def test_first_byte_pty_open_alone_does_not_boot(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, power_on="first-byte")])
    port = d.port(wait_ready=False)
    d.wait_log("client opened")
    assert power(d) == "off"
    port.cmd("AT")                        # powers it on, and is lost while it boots
    port.expect(READY)                    # no echo, no reply before the banner
    port.cmd("AT")
    port.expect(ECHO_OK)
    d.wait_log("[m0] first byte from the MCU: powering on")


def test_first_byte_tcp(make_daemon, tmp_path):
    d = make_daemon([tcp_module(tmp_path, power_on="first-byte")])
    t = d.tcp()
    d.wait_log(re.compile(r"\[m0\] client \S+ connected$", re.M))
    assert power(d) == "off"
    t.send(b"A")                          # one byte is enough, and is lost
    t.expect(READY)
    t.cmd("AT")
    t.expect(ECHO_OK)


def test_first_byte_after_a_power_cut_does_not_power_on(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, power_on="first-byte")])
    with d.ctl() as c:
        assert c.request("power", "m0", "off")["ok"]
    port = d.port(wait_ready=False)
    port.cmd("AT")

    def read():
        with d.ctl() as c:
            return c.request("status", "m0")["result"]["counters"]["rx_bytes"] == 4
    wait_for(read, 5, "the daemon to read the 4 bytes")
    assert power(d) == "off"
    with d.ctl() as c:
        assert c.request("power", "m0", "on")["ok"]
    port.expect(READY)


# ---------------------------------------------------------------- start


def test_start_pty_boots_at_daemon_start(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, power_on="start")])
    wait_power_on(d)                      # nobody has opened the port
    d.wait_log("[m0] daemon started: powering on")
    port = d.port(wait_ready=False)       # keeps what the kernel queued for it
    port.expect(READY)
    port.cmd("AT")
    port.expect(ECHO_OK)


def test_start_pty_banner_lost_to_a_flushing_open(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, power_on="start")])
    wait_power_on(d)
    port = Port(d.link(), keep_input=False)  # pyserial as firmware tools use it
    d.ports.append(port)
    port.cmd("AT")
    port.expect(ECHO_OK)                  # the banner was flushed by the open


def test_start_tcp_client_sees_no_banner(make_daemon, tmp_path):
    d = make_daemon([tcp_module(tmp_path, power_on="start")])
    wait_power_on(d)
    t = d.tcp()                           # the banner went to the PTY, before this client
    t.cmd("AT")
    t.expect(ECHO_OK)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("value", ["later", "First-Open", "", 1, None, True])
def test_power_on_bad_value_is_a_config_error(run_vmoduled, tmp_path, value):
    good = module_config(tmp_path, name="ok0")
    bad = module_config(tmp_path, name="bad1", power_on=value)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "st"), "modules": [good, bad]}))
    cp = run_vmoduled(["-c", cfg])
    assert cp.returncode == 2
    assert cp.stderr == ('vmoduled: config: modules[1].power_on: must be "first-open", '
                         '"first-byte" or "start"\n')
    assert not os.path.lexists(good["pty_link"])


def test_power_on_cli_option(make_daemon, run_vmoduled, tmp_path):
    link = str(tmp_path / "ttyP")
    cp = run_vmoduled(["--dialect", "tencent", "--link", link, "--power-on", "sometimes"])
    assert cp.returncode == 2
    assert cp.stderr == "vmoduled: --power-on: must be first-open, first-byte or start\n"
    argv = ["--dialect", "tencent", "--link", link, "--state-dir", tmp_path / "st",
            "--power-on", "start", "--baud", "0"]
    d = make_daemon([{"name": "tencent", "pty_link": link}], argv=argv)
    wait_power_on(d, "tencent")


# ---------------------------------------------------------------- the Docker recipe


def readme_socat_recipe():
    """The host-side socat line of the README's Docker section."""
    text = (Path(REPO) / "README.md").read_text()
    docker = text[text.index("\n## Docker\n"):]
    m = re.search(r"^(socat pty,\S+ tcp:127\.0\.0\.1:5555)$", docker, re.M)
    assert m, "no `socat pty,... tcp:127.0.0.1:5555` line in the README's Docker section"
    return m.group(1)


def docker_power_on():
    with open(Path(REPO) / "conf" / "docker.json", encoding="utf-8") as f:
        mods = json.load(f)["modules"]
    policies = {m.get("power_on", "first-open") for m in mods}
    assert len(policies) == 1, policies
    return policies.pop()


@pytest.fixture
def socat(tmp_path):
    """socat(argv) -> the process, stopped (by its pid) at teardown."""
    procs = []

    def start(argv):
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / ("socat%d.log" % len(procs)), "wb"))
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def bridge_argv(recipe, link, port):
    argv = recipe.replace("/tmp/ttyVM0", str(link)).replace("127.0.0.1:5555",
                                                             "127.0.0.1:%d" % port).split()
    assert argv[0] == "socat"
    return argv


def test_docker_socat_recipe_delivers_ready(make_daemon, tmp_path, socat):
    """The README's recipe, with conf/docker.json's power_on: socat makes the
    PTY at once, and the module boots only when the firmware opens it."""
    d = make_daemon([tcp_module(tmp_path, power_on=docker_power_on(), boot_ms=200)])
    host_link = tmp_path / "ttyVM0"
    proc = socat(bridge_argv(readme_socat_recipe(), host_link, d.tcp_port()))
    wait_for(lambda: proc.poll() is None and os.path.exists(host_link), 5,
             "socat to make %s" % host_link)
    with d.ctl() as c:
        st = c.request("status", "m0")["result"]
    assert st["power"] == "off", st
    fw = Port(host_link, name="firmware", keep_input=False)  # flushes its input, as pyserial does
    d.ports.append(fw)
    fw.expect(READY)
    fw.cmd("AT")
    fw.expect(ECHO_OK)
    fw.close()
    assert proc.wait(5) == 0              # socat ends with the firmware's close


def test_plain_socat_with_first_byte_boots_on_the_first_poke(make_daemon, tmp_path, socat):
    """The alternative for a socat without wait-slave: it connects at once,
    so first-open would boot the module into a PTY nobody has open;
    first-byte boots it at the firmware's first byte (lost), as the Tencent
    AT SDK's power-on AT+RST does."""
    d = make_daemon([tcp_module(tmp_path, power_on="first-byte", boot_ms=200)])
    host_link = tmp_path / "ttyVM0"
    argv = ["socat", "pty,rawer,link=%s" % host_link, "tcp:127.0.0.1:%d" % d.tcp_port()]
    proc = socat(argv)
    d.wait_log(re.compile(r"\[m0\] client \S+ connected$", re.M))
    assert proc.poll() is None and power(d) == "off"
    fw = Port(host_link, name="firmware", keep_input=False)
    d.ports.append(fw)
    fw.cmd("AT+RST")
    fw.expect(READY)
    fw.cmd("AT")
    fw.expect(ECHO_OK)
