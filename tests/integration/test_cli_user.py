"""test_cli_user.py - the one-module command line run by a user who may not
write /var/lib/vmodule (README "Command line"): the state directory falls
back to $XDG_STATE_HOME/vmodule, else ~/.local/state/vmodule (made 0700),
the control socket follows, and vmodulectl finds it by the same rule; and
--wifi SSID:PASSWORD, the access points AT+CWJAP joins.

The daemon runs as uid/gid 65534 (setpriv, no user name looked up) in a
private mount namespace whose /var/lib is an empty root-owned directory, so
what this machine's /var/lib holds changes nothing; HOME and XDG_STATE_HOME
point into a temporary directory owned by that uid."""
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import Daemon, VMODULED, wait_for
from ctl import vmodulectl_bin

UID = GID = 65534
OK = b"\r\nOK\r\n"
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
NOT_WRITABLE = "(/var/lib/vmodule is not writable by this user)"


@pytest.fixture
def userdir():
    """A directory the unprivileged uid owns, outside tmp_path (whose
    parents are root's 0700 directories): home/ for HOME, varlib/ (root's,
    0755) for the namespace's /var/lib."""
    d = Path(tempfile.mkdtemp(prefix="vmodule-user-"))
    (d / "home").mkdir()
    (d / "varlib").mkdir(mode=0o755)
    os.chmod(d / "varlib", 0o755)
    for p in (d, d / "home"):
        os.chown(p, UID, GID)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def wrap(userdir, env, as_user=True):
    """Runs the command with /var/lib replaced by userdir/varlib, the given
    environment (XDG_STATE_HOME removed unless given), as UID unless as_user
    is false."""
    cmd = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
           'mount --bind "$1" /var/lib && shift && exec "$@"', "sh", str(userdir / "varlib"),
           "env", "-u", "XDG_STATE_HOME"] + ["%s=%s" % kv for kv in sorted(env.items())]
    if as_user:
        cmd += ["setpriv", "--reuid=%d" % UID, "--regid=%d" % GID, "--clear-groups", "--"]
    return cmd


def start(userdir, tmp_path, env, state_dir, dialect="tencent", args=(), as_user=True):
    link = userdir / "ttyU"
    argv = ["--dialect", dialect, "--link", link, "--baud", "0"] + list(args)
    d = Daemon(tmp_path / "daemon", [{"name": dialect, "pty_link": str(link)}], binary=VMODULED,
               state_dir=state_dir, argv=argv, wrap=wrap(userdir, env, as_user))
    return d.start()


def ctl_default(userdir, env, as_user=True, *args):
    """vmodulectl without -s, in the daemon's namespace and environment."""
    return subprocess.run(wrap(userdir, env, as_user) + [vmodulectl_bin()] + list(args),
                          capture_output=True, timeout=30, stdin=subprocess.DEVNULL)


def owned_private(path, mode):
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (UID, GID), "%s is owned by %d:%d" % (path, st.st_uid,
                                                                          st.st_gid)
    assert stat.S_IMODE(st.st_mode) == mode, "%s has mode %o" % (path, stat.S_IMODE(st.st_mode))


@pytest.fixture
def daemons():
    made = []
    yield made
    for d in made:
        d.cleanup()


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_user_state_dir_is_xdg_state_home(userdir, tmp_path, daemons, dialect):
    xdg = userdir / "xdg"                 # missing: made by the daemon
    env = {"HOME": str(userdir / "home"), "XDG_STATE_HOME": str(xdg)}
    state = xdg / "vmodule"
    d = start(userdir, tmp_path, env, state, dialect,
              ["--wifi", "lab:secret123", "--wifi", "guest:", "--log-level", "debug"])
    daemons.append(d)
    assert d.wait_log("state directory ").endswith("state directory %s %s" % (state, NOT_WRITABLE))
    port = d.port()
    port.cmd('AT+CWJAP="lab","secret123"')
    port.expect(b'AT+CWJAP="lab","secret123"\r\n' + JOINED + OK, timeout=10)
    state_file = state / dialect / "state.json"
    wait_for(state_file.exists, 5, "the joined access point to reach %s" % state_file)
    owned_private(state_file, 0o600)
    owned_private(state, 0o700)
    owned_private(xdg, 0o700)
    owned_private(state / "control.sock", 0o600)
    cp = ctl_default(userdir, env, True, "list")
    assert cp.returncode == 0, cp.stderr
    assert dialect.encode() in cp.stdout and b"on" in cp.stdout
    d.stop()
    assert "secret123" not in d.log_text(), "the password is in the log"


def test_user_state_dir_defaults_to_local_state(userdir, tmp_path, daemons):
    home = userdir / "home"
    env = {"HOME": str(home)}
    state = home / ".local" / "state" / "vmodule"
    d = start(userdir, tmp_path, env, state)
    daemons.append(d)
    d.wait_log("state directory %s %s" % (state, NOT_WRITABLE))
    owned_private(state, 0o700)
    owned_private(state / "tencent", 0o700)
    cp = ctl_default(userdir, env, True, "--json", "status", "tencent")
    assert cp.returncode == 0, cp.stderr
    assert b'"ok":true' in cp.stdout
    # another user's rule (root: the system directory) does not find it
    other = ctl_default(userdir, env, False, "list")
    assert other.returncode == 1
    assert b"/var/lib/vmodule/control.sock" in other.stderr


def test_root_keeps_the_system_state_dir(userdir, tmp_path, daemons):
    env = {"HOME": str(userdir / "home"), "XDG_STATE_HOME": str(userdir / "xdg")}
    d = start(userdir, tmp_path, env, userdir / "varlib" / "vmodule", as_user=False)
    daemons.append(d)
    line = d.wait_log("state directory ")
    assert line.endswith("state directory /var/lib/vmodule"), line
    assert not (userdir / "xdg").exists()
    cp = ctl_default(userdir, env, False, "list")
    assert cp.returncode == 0, cp.stderr


def test_user_ctl_default_is_the_same_rule(userdir):
    """Without a daemon: vmodulectl names the socket it looked for."""
    env = {"HOME": str(userdir / "home"), "XDG_STATE_HOME": str(userdir / "x")}
    cp = ctl_default(userdir, env, True, "list")
    assert cp.returncode == 1
    assert str(userdir / "x" / "vmodule" / "control.sock").encode() in cp.stderr


LONG_PW = "p" * 65


@pytest.mark.parametrize("args, message", [
    (["--wifi", "nocolon"], "--wifi: expected SSID:PASSWORD (PASSWORD may be empty)"),
    (["--wifi", ":pw0rd"], "--wifi: the SSID must be 1 to 32 characters"),
    (["--wifi", "s" * 33 + ":pw0rd"], "--wifi: the SSID must be 1 to 32 characters"),
    (["--wifi", "lab:" + LONG_PW], "--wifi: the password must be at most 64 characters"),
    (["--wifi", "lab:a", "--wifi", "lab:b"], '--wifi: "lab" is given twice'),
    (sum((["--wifi", "ap%d:x" % i] for i in range(17)), []), "--wifi: at most 16 access points"),
    (["--wifi"], "option -w: unknown or missing its value (see --help)"),
    (["--dialect", "me3630", "--wifi", "lab:pw0rd"],
     "--wifi: only the ESP-family dialects (tencent, w800) have Wi-Fi"),
])
def test_bad_wifi_is_a_usage_error(run_vmoduled, tmp_path, args, message):
    link = tmp_path / "ttyW"
    base = [] if "--dialect" in args else ["--dialect", "tencent"]
    cp = run_vmoduled(base + ["--link", link, "--state-dir", tmp_path / "st"] + args)
    assert cp.returncode == 2
    assert cp.stderr == "vmoduled: %s\n" % message
    assert "pw0rd" not in cp.stderr and LONG_PW not in cp.stderr
    assert not os.path.lexists(link)


def test_wifi_with_a_config_file_is_a_usage_error(run_vmoduled, tmp_path):
    cp = run_vmoduled(["-c", tmp_path / "none.json", "--wifi", "lab:pw"])
    assert cp.returncode == 2
    assert cp.stderr == ("vmoduled: -c cannot be combined with --dialect/--link/--state-dir/--baud/"
                         "--tcp/--power-on/--wifi\n")


def test_wifi_wrong_password_fails_the_join(make_daemon, tmp_path):
    link = str(tmp_path / "ttyW")
    argv = ["--dialect", "tencent", "--link", link, "--state-dir", tmp_path / "st", "--baud", "0",
            "--wifi", "lab:a:b"]           # the SSID ends at the first ':'
    d = make_daemon([{"name": "tencent", "pty_link": link}], argv=argv)
    port = d.port()
    port.cmd('AT+CWJAP="lab","a"')
    port.expect(b'AT+CWJAP="lab","a"\r\n+CWJAP:2\r\n'
                b"ERR CODE:0x010a0000\r\n\r\nERROR\r\n", timeout=10)
    port.cmd('AT+CWJAP="lab","a:b"')
    port.expect(b'AT+CWJAP="lab","a:b"\r\n' + JOINED + OK, timeout=10)


def test_help_names_the_new_options(run_vmoduled):
    out = run_vmoduled(["--help"]).stdout
    for text in ["--power-on WHEN", "first-open (default), first-byte or start",
                 "--wifi SSID:PASS", "$XDG_STATE_HOME/vmodule or ~/.local/state/vmodule"]:
        assert text in out, "--help lacks %r:\n%s" % (text, out)
