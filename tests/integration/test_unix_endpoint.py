"""test_unix_endpoint.py - the unix socket serial endpoint (`unix_listen`):
the PTY's byte stream on a socket path, with no PTY made (`pty_link` left
out), for fleets the kernel's PTY pool would not hold.

A scripted dialogue gives the same bytes on a unix-only module as on a
PTY-only one (boot banner, echo, replies, an error). Power comes on at the
first connect; a client that disconnects and comes back finds the module
as it left it (no reboot); a second client is refused in one line. The
socket file has mode 0600, replaces a stale socket left by a killed run,
leaves a live one (or a file that is not a socket) alone, and is removed
at exit and by `serial unplug`. `status` names the socket and no PTY.

Socket paths live in a short directory of their own: pytest's tmp_path can
be longer than a unix socket path may be (107 bytes)."""

import os
import shutil
import socket
import stat
import subprocess
import tempfile

import pytest

from conftest import READY, UnixPort, module_config
from ctl import vmodulectl

AT_REPLY = b"AT\r\n\r\nOK\r\n"

# (sent, expected) on a tencent module, echo on at power-on
DIALOGUE = [
    (b"AT\r\n", AT_REPLY),
    (b"AT+CWMODE?\r\n", b"AT+CWMODE?\r\n+CWMODE:1\r\n\r\nOK\r\n"),
    (b"AT+TCFOO\r\n", b"AT+TCFOO\r\nERR CODE:0x01090000\r\n\r\nERROR\r\n"),
    (b"ATE0\r\n", b"ATE0\r\n\r\nOK\r\n"),
    (b"AT\r\n", b"\r\nOK\r\n"),
]


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="vmu-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def unix_module(sockdir, tmp_path, name="u0", **kw):
    m = module_config(tmp_path, name, unix_listen=os.path.join(sockdir, name + ".sock"), **kw)
    del m["pty_link"]
    return m


def ctl(d, *words):
    with d.ctl() as c:
        return c.request(*words)


def run_dialogue(port):
    got = port.read_exact(len(READY))
    for sent, want in DIALOGUE:
        port.send(sent)
        got += port.read_exact(len(want))
    return got


def stale_socket(path):
    """A socket file nobody accepts on, as a killed daemon leaves it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_unix_socket_gives_the_same_bytes_as_the_pty(make_daemon, tmp_path, sockdir):
    expected = READY + b"".join(want for _, want in DIALOGUE)
    d = make_daemon([module_config(tmp_path, "p0"), unix_module(sockdir, tmp_path, "u0")])
    pty = d.port("p0", wait_ready=False)
    assert run_dialogue(pty) == expected
    u = d.unix("u0")
    assert run_dialogue(u) == expected
    u.expect_nothing_pending()


def test_unix_module_has_no_pty_and_powers_on_at_the_first_connect(make_daemon, tmp_path,
                                                                   sockdir):
    d = make_daemon([unix_module(sockdir, tmp_path)])
    path = d.module("u0")["unix_listen"]
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    r = ctl(d, "status", "u0")["result"]
    assert r["unix"] == path and r["power"] == "off" and r["serial_open"] is False
    assert "pty" not in r and "link" not in r
    assert ctl(d, "list")["result"] == [{"name": "u0", "dialect": "tencent", "unix": path,
                                         "power": "off"}]
    out = vmodulectl(d.ctl_path, "list")
    assert out.returncode == 0 and out.stdout.decode().splitlines()[1].split() == [
        "u0", "tencent", "off", path]
    fds = [os.readlink("/proc/%d/fd/%s" % (d.proc.pid, fd))
           for fd in os.listdir("/proc/%d/fd" % d.proc.pid)]
    assert "/dev/ptmx" not in fds and "anon_inode:inotify" not in fds, fds  # no PTY, no watch
    u = d.unix("u0")
    u.wait_ready()
    r = ctl(d, "status", "u0")["result"]
    assert r["power"] == "on" and r["serial_open"] is True
    d.stop()  # the socket file goes with the daemon (Daemon.stop checks)


def test_unix_client_disconnect_and_reconnect_finds_the_module_as_it_was(make_daemon, tmp_path,
                                                                         sockdir):
    d = make_daemon([unix_module(sockdir, tmp_path)])
    u = d.unix("u0")
    u.wait_ready()
    u.cmd("ATE0")
    u.expect(b"ATE0\r\n\r\nOK\r\n")
    u.close()
    d.wait_log("[u0] client pid %d disconnected" % os.getpid())
    assert ctl(d, "status", "u0")["result"]["serial_open"] is False
    again = d.unix("u0")
    again.cmd("AT")
    again.expect(b"\r\nOK\r\n")  # echo still off: no reboot, no banner
    again.expect_nothing_pending()
    assert "[u0] client pid %d connected" % os.getpid() in d.log_text()


def test_unix_second_client_is_refused_in_one_line(make_daemon, tmp_path, sockdir):
    d = make_daemon([unix_module(sockdir, tmp_path)])
    u = d.unix("u0")
    u.wait_ready()
    second = UnixPort(d.module("u0")["unix_listen"], name="second")
    d.ports.append(second)
    assert second.read_to_eof() == b"ERROR: serial port busy (another client is connected)\r\n"
    u.cmd("AT")
    u.expect(AT_REPLY)


def test_unix_stale_socket_is_replaced(make_daemon, tmp_path, sockdir):
    m = unix_module(sockdir, tmp_path)
    stale_socket(m["unix_listen"])
    d = make_daemon([m])
    d.wait_log("[u0] replaced the stale socket %s" % m["unix_listen"])
    u = d.unix("u0")
    u.wait_ready()
    u.cmd("AT")
    u.expect(AT_REPLY)


def test_unix_socket_of_a_killed_daemon_is_replaced_by_the_next(make_daemon, tmp_path, sockdir):
    d = make_daemon([unix_module(sockdir, tmp_path)])
    d.kill9()
    assert os.path.exists(d.module("u0")["unix_listen"])  # left behind
    d.start()
    u = d.unix("u0")
    u.wait_ready()


def start_fails(make_daemon, m, why):
    d = make_daemon([m], start=False)
    d.start(wait=False)
    try:
        rc = d.proc.wait(10)
    except subprocess.TimeoutExpired:
        pytest.fail("vmoduled kept running; log:\n" + d.log_text())
    assert rc == 1, d.log_text()
    assert why in d.log_text(), d.log_text()
    return d


def test_unix_live_socket_or_other_file_is_left_alone(make_daemon, tmp_path, sockdir):
    m = unix_module(sockdir, tmp_path)
    path = m["unix_listen"]
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(path)
    live.listen(1)
    live.settimeout(5)
    try:
        start_fails(make_daemon, m, "[u0] %s: another process accepts on this socket" % path)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)  # still the live one's
        live.accept()[0].close()  # the probe's connection reached it
    finally:
        live.close()
    os.unlink(path)
    with open(path, "w") as f:
        f.write("keep me")
    start_fails(make_daemon, m, "[u0] %s exists and is not a socket: left alone" % path)
    with open(path) as f:
        assert f.read() == "keep me"


def test_unix_socket_in_a_missing_directory_is_an_error(make_daemon, tmp_path, sockdir):
    m = unix_module(sockdir, tmp_path)
    m["unix_listen"] = os.path.join(sockdir, "nodir", "u0.sock")
    start_fails(make_daemon, m, "[u0] cannot listen on %s: no such file or directory"
                % m["unix_listen"])


def test_unix_serial_unplug_drops_the_client_and_removes_the_socket_plug_brings_it_back(
        make_daemon, tmp_path, sockdir):
    d = make_daemon([unix_module(sockdir, tmp_path)])
    path = d.module("u0")["unix_listen"]
    u = d.unix("u0")
    u.wait_ready()
    assert ctl(d, "serial", "u0", "unplug")["ok"]
    assert u.read_to_eof() == b""
    assert not os.path.lexists(path)
    assert ctl(d, "serial", "u0", "plug")["ok"]
    assert stat.S_IMODE(os.lstat(path).st_mode) == 0o600
    again = d.unix("u0")
    again.cmd("AT")
    again.expect(AT_REPLY)  # powered all along: no banner
    again.expect_nothing_pending()


def test_unix_and_pty_on_one_module_output_follows_the_socket_client(make_daemon, tmp_path,
                                                                     sockdir):
    m = module_config(tmp_path, "b0", unix_listen=os.path.join(sockdir, "b0.sock"))
    d = make_daemon([m])
    pty = d.port("b0")
    u = d.unix("b0")
    u.cmd("AT")
    u.expect(AT_REPLY)
    pty.expect_nothing_pending()
    u.close()
    d.wait_log("[b0] client pid %d disconnected" % os.getpid())
    pty.cmd("AT")
    pty.expect(AT_REPLY)


def test_unix_and_tcp_output_goes_to_the_last_client_then_back(make_daemon, tmp_path, sockdir):
    m = unix_module(sockdir, tmp_path, "s0", tcp_listen="127.0.0.1:0")
    d = make_daemon([m])
    u = d.unix("s0")
    u.wait_ready()
    t = d.tcp("s0")
    t.cmd("AT")
    t.expect(AT_REPLY)
    u.cmd("AT")  # input from both is taken; the reply goes to the last client
    t.expect(AT_REPLY)
    u.expect_nothing_pending()
    t.close()
    d.wait_log("[s0] client 127.0.0.1:")
    d.wait_log(" disconnected")
    u.cmd("AT")
    u.expect(AT_REPLY)
    d.stop()


def test_unix_listen_path_too_long_is_a_config_error(run_vmoduled, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"modules":[{"name":"u0","dialect":"tencent","unix_listen":"/%s"}]}'
                   % ("x" * 107))
    cp = run_vmoduled(["-c", cfg])
    assert cp.returncode == 2
    assert cp.stderr == ("vmoduled: config: modules[0].unix_listen: at most 107 bytes (a unix "
                         "socket path)\n")
