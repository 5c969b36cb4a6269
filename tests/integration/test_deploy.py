"""test_deploy.py - `make install` / `make uninstall` and the systemd unit.

Each test installs the binaries of $VMODULED's build directory into a fresh
DESTDIR with the repository's Makefile (`make -o all`: the binaries under
test, nothing rebuilt) and looks at what landed there: the paths the
installed unit names for PREFIX=/usr and /usr/local (and SYSCONFDIR given
by hand), file modes, an edited configuration kept across a reinstall and
an uninstall, the example beside it, nothing else left by uninstall.

With systemd-analyze (Debian's systemd package) the installed unit is also
measured: `systemd-analyze security --offline=true` must rate it 3.0 or
lower, and `systemd-analyze verify` must accept it (with ExecStart pointed
into the DESTDIR, since verify checks that the binary exists).
systemd-sysusers --dry-run --root=DESTDIR must find the vmodule user there.

The unit's SystemCallFilter is an allow-list: a system call outside it
fails with EPERM. With strace, a daemon runs a tencent module through a
Wi-Fi join, TLS-PSK to a real mosquitto, a subscription, a publish, a
trace, the control socket and a stop, and every system call it made (all
threads) must be in the unit's allowed set, expanded by systemd-analyze.
"""

import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
from pathlib import Path

import pytest

import ctl
from conftest import REPO, VMODULED, Daemon, module_config, wait_for

ANALYZE = shutil.which("systemd-analyze")
SYSUSERS = shutil.which("systemd-sysusers")
STRACE = shutil.which("strace")
EXPOSURE_MAX = 3.0

# PREFIX -> (bin dir, config dir, unit dir, sysusers dir), as README
# "Install as a service" promises them.
LAYOUTS = {
    "/usr": ("/usr/bin", "/etc/vmodule", "/usr/lib/systemd/system", "/usr/lib/sysusers.d"),
    "/usr/local": ("/usr/local/bin", "/usr/local/etc/vmodule", "/usr/local/lib/systemd/system",
                   "/usr/local/lib/sysusers.d"),
}


def make(target, destdir, *variables):
    build = Path(VMODULED).resolve().parent
    for exe in ("vmoduled", "vmodulectl"):
        if not os.access(build / exe, os.X_OK):
            pytest.fail("%s/%s missing: run `make all` first" % (build, exe), pytrace=False)
    cmd = ["make", "-s", "-C", str(REPO), "-o", "all", target, "BUILD=%s" % build,
           "DESTDIR=%s" % destdir] + list(variables)
    cp = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                        timeout=60, check=False)
    assert cp.returncode == 0, "%s failed:\n%s" % (" ".join(cmd), cp.stdout)
    return cp.stdout


def files_under(root):
    """Every file and symlink below root, as absolute paths inside root."""
    return {"/" + str(p.relative_to(root)) for p in Path(root).rglob("*")
            if p.is_file() or p.is_symlink()}


def layout_files(prefix):
    bindir, confdir, unitdir, sysusersdir = LAYOUTS[prefix]
    return {
        bindir + "/vmoduled": 0o755,
        bindir + "/vmodulectl": 0o755,
        confdir + "/vmoduled.json": 0o644,
        confdir + "/vmoduled.json.example": 0o644,
        unitdir + "/vmoduled.service": 0o644,
        sysusersdir + "/vmodule.conf": 0o644,
    }


def unit_settings(path):
    """The unit file as {section: {key: [values in order]}}."""
    out = {}
    section = None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key, []).append(value)
    return out


def installed_unit(destdir, prefix):
    return Path(str(destdir) + LAYOUTS[prefix][2]) / "vmoduled.service"


@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_install_puts_every_file_at_the_prefix_paths(tmp_path, prefix):
    make("install", tmp_path, "PREFIX=" + prefix)
    expected = layout_files(prefix)
    assert files_under(tmp_path) == set(expected)
    for path, mode in expected.items():
        assert stat.S_IMODE(os.stat(str(tmp_path) + path).st_mode) == mode, path
    bindir, confdir, _, _ = LAYOUTS[prefix]
    build = Path(VMODULED).resolve().parent
    assert Path(str(tmp_path) + bindir + "/vmoduled").read_bytes() == (build / "vmoduled").read_bytes()
    example = (REPO / "conf" / "vmoduled.json").read_text()
    assert Path(str(tmp_path) + confdir + "/vmoduled.json").read_text() == example
    assert Path(str(tmp_path) + confdir + "/vmoduled.json.example").read_text() == example


@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_installed_unit_runs_the_installed_binary_and_config(tmp_path, prefix):
    make("install", tmp_path, "PREFIX=" + prefix)
    unit = installed_unit(tmp_path, prefix)
    text = unit.read_text()
    assert not re.search(r"@[A-Z]+@", text), "placeholder left in %s" % unit
    bindir, confdir, _, _ = LAYOUTS[prefix]
    assert unit_settings(unit)["Service"]["ExecStart"] == [
        "%s/vmoduled -c %s/vmoduled.json" % (bindir, confdir)]


def test_sysconfdir_and_bindir_given_by_hand(tmp_path):
    make("install", tmp_path, "PREFIX=/opt/vmodule", "SYSCONFDIR=/etc/opt")
    unit = tmp_path / "opt/vmodule/lib/systemd/system/vmoduled.service"
    assert unit_settings(unit)["Service"]["ExecStart"] == [
        "/opt/vmodule/bin/vmoduled -c /etc/opt/vmodule/vmoduled.json"]
    assert (tmp_path / "etc/opt/vmodule/vmoduled.json").is_file()
    make("uninstall", tmp_path, "PREFIX=/opt/vmodule", "SYSCONFDIR=/etc/opt")
    assert files_under(tmp_path) == set()


@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_uninstall_removes_everything_install_wrote(tmp_path, prefix):
    make("install", tmp_path, "PREFIX=" + prefix)
    make("uninstall", tmp_path, "PREFIX=" + prefix)
    assert files_under(tmp_path) == set()
    assert not Path(str(tmp_path) + LAYOUTS[prefix][1]).exists()


@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_edited_config_survives_reinstall_and_uninstall(tmp_path, prefix):
    confdir = Path(str(tmp_path) + LAYOUTS[prefix][1])
    make("install", tmp_path, "PREFIX=" + prefix)
    edited = json.loads((confdir / "vmoduled.json").read_text())
    edited["log_level"] = "debug"
    edited_text = json.dumps(edited, indent=2)
    (confdir / "vmoduled.json").write_text(edited_text)
    (confdir / "vmoduled.json.example").write_text("stale example\n")

    out = make("install", tmp_path, "PREFIX=" + prefix)
    assert "kept" in out
    assert (confdir / "vmoduled.json").read_text() == edited_text
    assert (confdir / "vmoduled.json.example").read_text() == \
        (REPO / "conf" / "vmoduled.json").read_text()

    make("uninstall", tmp_path, "PREFIX=" + prefix)
    assert files_under(tmp_path) == {LAYOUTS[prefix][1] + "/vmoduled.json"}
    assert (confdir / "vmoduled.json").read_text() == edited_text


def test_unit_has_the_hardening_the_readme_describes(tmp_path):
    make("install", tmp_path, "PREFIX=/usr")
    svc = unit_settings(installed_unit(tmp_path, "/usr"))["Service"]
    want = {
        "User": ["vmodule"], "Group": ["vmodule"],
        "NoNewPrivileges": ["yes"], "ProtectSystem": ["strict"], "ProtectHome": ["yes"],
        "PrivateTmp": ["yes"], "PrivateDevices": ["yes"],
        "StateDirectory": ["vmodule"], "RuntimeDirectory": ["vmodule"],
        "LogsDirectory": ["vmodule"], "CapabilityBoundingSet": [""],
        "RestrictAddressFamilies": ["AF_UNIX AF_INET AF_INET6"],
        "LimitNOFILE": ["65536"], "KillSignal": ["SIGTERM"],
    }
    for key, value in want.items():
        assert svc.get(key) == value, key
    assert svc["SystemCallFilter"][0] == "@system-service"
    # a stop of a large fleet flushes its pending flash writes: not 10 s
    assert int(svc["TimeoutStopSec"][0]) >= 60


def test_example_config_writes_only_where_the_unit_allows():
    """ProtectSystem=strict leaves the unit's own directories writable:
    every path the example configuration writes must be inside one."""
    svc = unit_settings(REPO / "conf" / "vmoduled.service")["Service"]
    writable = ["/run/" + svc["RuntimeDirectory"][0], "/var/lib/" + svc["StateDirectory"][0],
                "/var/log/" + svc["LogsDirectory"][0]]
    conf = json.loads((REPO / "conf" / "vmoduled.json").read_text())
    paths = [conf["state_dir"], conf.get("control_socket", conf["state_dir"] + "/control.sock")]
    for m in conf["modules"]:
        paths += [m[k] for k in ("pty_link", "trace") if k in m]
    for p in paths:
        assert any(p.startswith(d + "/") or p == d for d in writable), p
    # traces must survive a stop: not in the RuntimeDirectory
    for m in conf["modules"]:
        if "trace" in m:
            assert m["trace"].startswith(writable[2] + "/"), m["trace"]


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze not installed (Debian package systemd)")
@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_systemd_security_exposure_at_most_3(tmp_path, prefix):
    make("install", tmp_path, "PREFIX=" + prefix)
    unit = installed_unit(tmp_path, prefix)
    cp = subprocess.run([ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                        check=False)
    m = re.search(r"Overall exposure level for vmoduled\.service: (\d+\.\d+)", cp.stdout)
    assert m, cp.stdout
    assert float(m.group(1)) <= EXPOSURE_MAX, cp.stdout


@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze not installed (Debian package systemd)")
@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_systemd_analyze_verify_accepts_the_unit(tmp_path, prefix):
    make("install", tmp_path, "PREFIX=" + prefix)
    unit = installed_unit(tmp_path, prefix)
    # verify insists that ExecStart's binary exists: point it into DESTDIR,
    # every other line unchanged.
    probe = tmp_path / "verify" / "vmoduled.service"
    probe.parent.mkdir()
    probe.write_text(unit.read_text().replace("ExecStart=/", "ExecStart=%s/" % tmp_path, 1))
    cp = subprocess.run([ANALYZE, "verify", "--man=no", str(probe)], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    assert cp.returncode == 0 and "vmoduled.service" not in cp.stdout, cp.stdout


@pytest.mark.skipif(not SYSUSERS, reason="systemd-sysusers not installed (Debian package systemd)")
@pytest.mark.parametrize("prefix", sorted(LAYOUTS))
def test_sysusers_creates_the_vmodule_user_from_the_installed_file(tmp_path, prefix):
    make("install", tmp_path, "PREFIX=" + prefix)
    cp = subprocess.run([SYSUSERS, "--dry-run", "--root=%s" % tmp_path], stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True, timeout=60, check=False)
    assert cp.returncode == 0, cp.stdout
    assert "Creating group 'vmodule'" in cp.stdout, cp.stdout
    assert re.search(r"Creating user 'vmodule' \(vmodule virtual IoT modules\)", cp.stdout), cp.stdout


# ------------------------------------------------------- the system call filter


def syscall_set(group_or_name, cache={}):
    """The system calls of a systemd-analyze syscall-filter group (nested
    groups expanded) or of one name."""
    if not group_or_name.startswith("@"):
        return {group_or_name}
    if group_or_name not in cache:
        out = subprocess.run([ANALYZE, "syscall-filter", "--no-pager", group_or_name],
                             stdout=subprocess.PIPE, text=True, check=True, timeout=30).stdout
        names = set()
        for line in out.splitlines()[1:]:
            line = line.strip()
            if line and not line.startswith("#"):
                names |= syscall_set(line)
        cache[group_or_name] = names
    return cache[group_or_name]


def unit_allowed_syscalls():
    """The unit's SystemCallFilter= lines: an allow-list, then ~deny lines."""
    lines = unit_settings(REPO / "conf" / "vmoduled.service")["Service"]["SystemCallFilter"]
    assert not lines[0].startswith("~"), "the first SystemCallFilter= must be an allow-list"
    allowed = set()
    for line in lines:
        names = set().union(*(syscall_set(w) for w in line.lstrip("~").split()))
        allowed = allowed - names if line.startswith("~") else allowed | names
    return allowed


PID, DN, SECRET = "CTQS08Y5LG", "Dev01", "ZHNkIGRzZCA="


def traced_daemon_pid(daemon):
    """vmoduled's pid, among the descendants of the process the Daemon
    started (strace, under an unshare when the suite runs with a hosts file)."""
    exe = str(Path(VMODULED).resolve())

    def find():
        todo = [daemon.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                if os.readlink("/proc/%d/exe" % pid) == exe:
                    return pid
                todo += [int(c) for c in Path("/proc/%d/task/%d/children" % (pid, pid))
                         .read_text().split()]
            except OSError:
                pass
        return None
    wait_for(find, what="strace to start vmoduled")
    return find()


def exercise_under_strace(daemon, pid):
    """The module's life under strace: Wi-Fi, TLS-PSK MQTT, sub/pub, the
    control socket, then SIGTERM to vmoduled itself, as systemd sends it."""
    port = daemon.port()
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n")
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)
    topic = "%s/%s/data" % (PID, DN)
    port.cmd('AT+TCMQTTSUB="%s",0' % topic)
    port.expect(b"OK\r\n+TCMQTTSUB:OK\r\n")
    port.cmd('AT+TCMQTTPUB="%s",1,"hi"' % topic)
    port.expect(b'OK\r\n+TCMQTTRCVPUB:"%s",2,"hi"\r\n+TCMQTTPUB:OK\r\n' % topic.encode())
    wait_for(daemon._ctl_listening, what="the control socket")
    c = daemon.ctl()
    assert c.request("list")["ok"]
    c.close()
    daemon.close_ports()
    os.kill(pid, signal.SIGTERM)
    assert daemon.proc.wait(timeout=10) == 0, daemon.log_text()


@pytest.mark.skipif(not (ANALYZE and STRACE), reason="needs systemd-analyze and strace")
def test_daemon_system_calls_are_inside_the_unit_filter(tmp_path, mosquitto):
    psk = tmp_path / "psk.txt"
    psk.write_text("%s%s:%s\n" % (PID, DN, base64.b64decode(SECRET).hex()))
    broker = mosquitto(listeners=[{"psk_hint": "vmodule"}], options={"psk_file": str(psk)})
    straces = tmp_path / "strace"
    straces.mkdir()
    wrapper = tmp_path / "vmoduled-strace"
    # LeakSanitizer cannot run under ptrace: an ASan build (make asan) would
    # exit 1 at the end; its leak check is what every other test does.
    wrapper.write_text("#!/bin/sh\nexport ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\"\n"
                       "exec %s -f -qq -o %s/trace %s \"$@\"\n"
                       % (STRACE, straces, Path(VMODULED).resolve()))
    wrapper.chmod(0o755)
    m = module_config(tmp_path, "tc0", "tencent", echo=False, trace=str(tmp_path / "tc0.trace"),
                      tcp_listen="127.0.0.1:0", tencent={
                          "mqtt_transport": "tls-psk", "mqtt_host": "127.0.0.1",
                          "mqtt_port": broker.port, "wifi": {
                              "access_points": [{"ssid": "lab", "password": "labpass123"}],
                              "auto_join": "lab", "join_ms": 0}})
    daemon = Daemon(tmp_path / "daemon", [m], binary=str(wrapper))
    pid = None
    try:
        daemon.start(wait=False)
        pid = traced_daemon_pid(daemon)
        daemon.wait_started()
        exercise_under_strace(daemon, pid)
    finally:
        # strace detaches (and leaves vmoduled running) when it is killed
        if pid is not None and Path("/proc/%d" % pid).exists():
            os.kill(pid, signal.SIGKILL)
        daemon.cleanup()
    used = set()
    for line in (straces / "trace").read_text(errors="replace").splitlines():
        call = re.match(r"\d+\s+(?:<\.\.\. )?([a-z0-9_]+)(?:\(| resumed>)", line)
        if call:
            used.add(call.group(1))
    assert {"openat", "ioctl", "connect", "fsync", "prlimit64"} <= used, sorted(used)
    denied = sorted(used - unit_allowed_syscalls())
    assert not denied, "system calls the unit's SystemCallFilter refuses: %s" % denied
