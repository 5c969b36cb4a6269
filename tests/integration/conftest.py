"""conftest.py - shared fixtures for the vmoduled integration tests.

Every test here drives the real `vmoduled` binary (and, where a test needs a
broker, a real `mosquitto`) through the same byte streams a firmware uses:
the PTY symlink (opened with pyserial, as users do) or the TCP endpoint.

What other test files get from here:

  vmoduled_bin          path of the binary ($VMODULED, default build/vmoduled);
                        every test that uses a daemon fails clearly without it.
  free_port()           a free 127.0.0.1 TCP port.
  free_port_range(n)    the first of n consecutive free 127.0.0.1 TCP ports.
  module_config(...)    one module's config dict with fast test defaults
                        (baud 0, boot_ms 50) and deep-merged overrides.
  make_daemon(modules)  starts a Daemon (see the class); always reaped at
                        teardown, and the test fails if the daemon's stderr
                        shows a sanitizer report.
  start_module(...)     one module, started, port open, banner consumed:
                        returns (daemon, port).
  run_vmoduled(args)    runs the binary to completion (CLI/config tests).
  mosquitto(...)        factory of Mosquitto brokers on free loopback ports.
  Port                  pyserial wrapper with exact-byte expectations.
  TcpPort, UnixPort     the same over a TCP or unix socket serial endpoint
                        (Daemon.tcp(), Daemon.unix()).
  escape(b)             bytes -> readable text (\\r \\n \\\\ \\xNN), as traces do.
  Daemon(hosts=path)    the daemon alone sees that hosts file (faults.py has
                        the failing peers and hosts_file()); VMODULE_TEST_HOSTS
                        =debian runs the whole suite under Debian's stock one.
  no_leaked_processes   (autouse) a test that leaves a vmoduled, mosquitto,
                        socat or locust running fails at its teardown.

Timing rule: nothing here sleeps for a fixed time except expect_silence(),
which is only meant for tests where silence is the behaviour under test.
Everything else polls for an event (a byte, a log line, a file) with a
deadline.
"""

import copy
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import serial

REPO = Path(__file__).resolve().parents[2]
VMODULED = os.environ.get("VMODULED") or str(REPO / "build" / "vmoduled")
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")

# Substrings that mean a sanitizer found a bug in the daemon (ASan build:
# `make asan`). Any of them in the daemon's stderr fails the test.
SANITIZER_MARKERS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer")

READY = b"\r\nready\r\n"

# A name only the tests' own hosts files resolve (faults.hosts_file()); the
# test certificate is valid for it, for 127.0.0.1 and for ::1.
TEST_HOST = "broker.vmodule.test"


# ---------------------------------------------------------------- utilities


def escape(data):
    """Bytes as one readable line: printable ASCII kept, \\r \\n \\\\ and
    everything else escaped as \\xNN (the trace-file convention)."""
    out = []
    for b in bytes(data):
        if b == 0x0D:
            out.append("\\r")
        elif b == 0x0A:
            out.append("\\n")
        elif b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def _clip(text, limit=600):
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + " ...[%d chars]... " % (len(text) - limit) + text[-half:]


def bytes_diff(expected, got):
    """A readable explanation of why two byte strings differ."""
    expected, got = bytes(expected), bytes(got)
    i = 0
    while i < min(len(expected), len(got)) and expected[i] == got[i]:
        i += 1
    lines = [
        "expected (%d bytes): %s" % (len(expected), _clip(escape(expected))),
        "got      (%d bytes): %s" % (len(got), _clip(escape(got))),
    ]
    if i < len(expected) or i < len(got):
        lines.append("first difference at byte %d: expected %s, got %s" % (
            i,
            escape(expected[i:i + 24]) + ("..." if len(expected) > i + 24 else "") if i < len(expected) else "<end>",
            escape(got[i:i + 24]) + ("..." if len(got) > i + 24 else "") if i < len(got) else "<nothing more>",
        ))
    return "\n".join(lines)


def wait_for(predicate, timeout=5.0, what="condition", interval=0.01):
    """Polls predicate() until it returns a truthy value (returned) or the
    deadline passes (test fails naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind to port 0 and release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_range(n, host="127.0.0.1", tries=50):
    """The first of n consecutive TCP ports that were all free a moment ago."""
    for _ in range(tries):
        base = free_port(host)
        if base + n > 65536:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((host, p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    pytest.fail("no %d consecutive free ports on %s" % (n, host))


def deep_merge(base, extra):
    """Merges dict extra into dict base recursively (dicts merge, everything
    else replaces); returns base."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def sanitizer_findings(text):
    return [m for m in SANITIZER_MARKERS if m in text]


# ---------------------------------------------------------------- the binary


@pytest.fixture(scope="session")
def vmoduled_bin():
    path = Path(VMODULED)
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail("vmoduled binary not found or not executable at %s: run `make` in %s "
                    "or set VMODULED=/path/to/vmoduled" % (path, REPO), pytrace=False)
    return str(path)


def run_vmoduled(args, binary=None, timeout=10, input_bytes=None):
    """Runs vmoduled with args to completion; returns CompletedProcess with
    text stdout/stderr. Fails the test on a timeout or a sanitizer report."""
    binary = binary or VMODULED
    try:
        cp = subprocess.run([binary] + [str(a) for a in args], input=input_bytes,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail("vmoduled %s did not exit within %s s; stderr: %s" % (args, timeout, e.stderr))
    cp.stdout = cp.stdout.decode("utf-8", "replace")
    cp.stderr = cp.stderr.decode("utf-8", "replace")
    found = sanitizer_findings(cp.stderr)
    if found:
        pytest.fail("sanitizer report (%s) from vmoduled %s:\n%s" % (found, args, cp.stderr))
    return cp


@pytest.fixture(name="run_vmoduled")
def run_vmoduled_fixture(vmoduled_bin):
    def run(args, **kw):
        return run_vmoduled(args, binary=vmoduled_bin, **kw)
    return run


# ---------------------------------------------------------------- the port


class _KeepInputSerial(serial.Serial):
    """pyserial flushes the input queue when it opens a port. A real UART has
    no history either, but the tests must see the boot banner, which the
    module may have written just before the test managed to open the PTY
    (the daemon holds the slave open, so those bytes wait in the kernel).
    This subclass skips only that open-time flush; reset_input_buffer()
    behaves normally afterwards."""

    _opening = True

    def _reset_input_buffer(self):
        if self._opening:
            return
        super()._reset_input_buffer()


class Port:
    """The MCU's side of a module's serial line.

    Reads go through an internal pending buffer, so read_until() never loses
    bytes that arrived after its terminator. `transcript` keeps everything
    sent and received (shown when an expectation fails)."""

    def __init__(self, path, name=None, keep_input=True):
        self.path = str(path)
        self.name = name or self.path
        cls = _KeepInputSerial if keep_input else serial.Serial
        self.ser = cls(self.path, baudrate=115200, timeout=0.05, write_timeout=30)
        self.ser._opening = False
        self._pending = bytearray()
        self.transcript = []  # ("<" received | ">" sent, bytes)

    # -- low level
    def fileno(self):
        return self.ser.fileno()

    def close(self):
        if self.ser.is_open:
            try:
                self.ser.close()
            except (OSError, serial.SerialException):
                pass

    def _fill(self, want, deadline):
        """Reads at least one byte (up to want) into pending unless the
        deadline passes; returns the number of bytes read."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 0
        poller = select.poll()
        poller.register(self.ser.fileno(), select.POLLIN)
        events = poller.poll(remaining * 1000)
        if not events:
            return 0
        try:
            chunk = os.read(self.ser.fileno(), max(want, 1 << 16))
        except BlockingIOError:
            return 0
        except OSError as e:
            pytest.fail("%s: read failed: %s (%s)" % (self.name, e, self._context()))
        if not chunk:
            # pyserial leaves VMIN = VTIME = 0, so a read that finds nothing
            # returns 0 as end of file would; only a hangup is one
            if events[0][1] & (select.POLLHUP | select.POLLERR):
                pytest.fail("%s: end of file on the serial port (%s)" % (
                    self.name, self._context()))
            return 0
        self._pending += chunk
        self.transcript.append(("<", bytes(chunk)))
        return len(chunk)

    def _take(self, n):
        out = bytes(self._pending[:n])
        del self._pending[:n]
        return out

    def _context(self, last=12):
        parts = ["%s %s" % (d, escape(b)) for d, b in self.transcript[-last:]]
        return "recent traffic on %s:\n    %s" % (self.name, "\n    ".join(parts) or "(none)")

    # -- sending
    def send(self, data):
        """Writes bytes (or str, encoded as latin-1) to the module."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.transcript.append((">", bytes(data)))
        n = self.ser.write(data)
        assert n == len(data), "%s: short write %d of %d" % (self.name, n, len(data))

    def cmd(self, line):
        """Sends one command line followed by CR LF."""
        if isinstance(line, str):
            line = line.encode("latin-1")
        self.send(line + b"\r\n")

    # -- receiving
    def read_exact(self, n, timeout=5.0):
        """Returns exactly n bytes, or fewer if the timeout passes first."""
        deadline = time.monotonic() + timeout
        while len(self._pending) < n:
            if not self._fill(n - len(self._pending), deadline) and time.monotonic() >= deadline:
                break
        return self._take(n)

    def expect(self, expected, timeout=5.0):
        """Reads exactly len(expected) bytes; fails with a readable diff if they
        differ or do not all arrive within timeout."""
        if isinstance(expected, str):
            expected = expected.encode("latin-1")
        n = len(expected)
        deadline = time.monotonic() + timeout
        # Stop early once what arrived already differs from the expected prefix.
        while len(self._pending) < n and self._pending == expected[:len(self._pending)]:
            if not self._fill(n - len(self._pending), deadline) and time.monotonic() >= deadline:
                break
        got = self._take(n)
        if got != expected:
            why = ("timed out after %.1f s" % timeout if expected.startswith(got)
                   else "unexpected bytes")
            pytest.fail("%s: %s\n%s\n%s" % (self.name, why, bytes_diff(expected, got),
                                            self._context()), pytrace=False)
        return got

    def read_until(self, terminator, timeout=5.0):
        """Returns everything up to and including the first terminator."""
        if isinstance(terminator, str):
            terminator = terminator.encode("latin-1")
        deadline = time.monotonic() + timeout
        while True:
            i = self._pending.find(terminator)
            if i >= 0:
                return self._take(i + len(terminator))
            if not self._fill(1 << 16, deadline) and time.monotonic() >= deadline:
                pytest.fail("%s: timed out after %.1f s waiting for %s; got %s\n%s" % (
                    self.name, timeout, escape(terminator), escape(self._pending),
                    self._context()), pytrace=False)

    def expect_regex(self, pattern, terminator, timeout=5.0):
        """Reads up to terminator and requires the bytes to fully match pattern
        (bytes regex). For replies whose exact value the spec leaves open."""
        got = self.read_until(terminator, timeout)
        m = re.fullmatch(pattern, got, re.S)
        if not m:
            pytest.fail("%s: %s does not match /%s/\n%s" % (
                self.name, escape(got), escape(pattern), self._context()), pytrace=False)
        return m

    def read_available(self, quiet=0.0):
        """Returns whatever is buffered now, plus anything that keeps arriving
        until no byte has come for `quiet` seconds."""
        while self._fill(1 << 16, time.monotonic() + quiet):
            pass
        return self._take(len(self._pending))

    def expect_silence(self, seconds):
        """Fails if any byte arrives within seconds. Only for tests in which
        silence is the behaviour under test (this one really waits)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._pending:
            self._fill(1 << 16, deadline)
        if self._pending:
            pytest.fail("%s: expected silence for %.2f s, got %s\n%s" % (
                self.name, seconds, escape(self._pending), self._context()), pytrace=False)

    def expect_nothing_pending(self):
        """Fails if bytes already arrived that nobody expected (no waiting)."""
        extra = self.read_available(0.0)
        if extra:
            pytest.fail("%s: unexpected bytes %s\n%s" % (self.name, escape(extra), self._context()),
                        pytrace=False)

    def wait_ready(self, timeout=10.0):
        self.expect(READY, timeout)


class TcpPort(Port):
    """The same expectations over the module's TCP serial endpoint."""

    def __init__(self, host, port, name=None, timeout=5.0):  # pylint: disable=super-init-not-called
        self.path = "%s:%d" % (host, port)
        self.name = name or "tcp " + self.path
        self._attach(socket.create_connection((host, port), timeout=timeout))

    def _attach(self, sock):
        self.sock = sock
        self.sock.setblocking(False)
        self._pending = bytearray()
        self.transcript = []

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self, want, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 0
        r, _, _ = select.select([self.sock], [], [], remaining)
        if not r:
            return 0
        try:
            chunk = self.sock.recv(max(want, 1 << 16))
        except BlockingIOError:
            return 0
        if not chunk:
            pytest.fail("%s: connection closed by the daemon (%s)" % (self.name, self._context()))
        self._pending += chunk
        self.transcript.append(("<", bytes(chunk)))
        return len(chunk)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.transcript.append((">", bytes(data)))
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def read_to_eof(self, timeout=5.0):
        """Everything until the peer closes (fails on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail("%s: no EOF within %.1f s; got %s" % (self.name, timeout,
                                                                  escape(self._pending)))
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                continue
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return self._take(len(self._pending))
            self._pending += chunk


class UnixPort(TcpPort):
    """The same expectations over the module's unix socket serial endpoint."""

    def __init__(self, path, name=None, timeout=5.0):  # pylint: disable=super-init-not-called
        self.path = str(path)
        self.name = name or "unix " + self.path
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(self.path)
        self._attach(sock)


# ---------------------------------------------------------------- the daemon


def module_config(tmp_path, name="m0", dialect="tencent", **overrides):
    """One module's config with fast test defaults; overrides deep-merge
    (e.g. tencent={"wifi": {...}})."""
    cfg = {
        "name": name,
        "dialect": dialect,
        "pty_link": str(Path(tmp_path) / ("tty-" + name)),
        "baud": 0,
        "boot_ms": 50,
    }
    return deep_merge(cfg, overrides)


# The INFO line announcing a module's TCP endpoint and its bound port (needs
# log level info or debug when a module has tcp_listen).
_TCP_RE = r"\[%s\] tcp serial endpoint on (\S+):(\d+)$"


def _suite_hosts(workdir):
    """The hosts file VMODULE_TEST_HOSTS asks for ("debian": Debian 12's
    stock one), written into workdir; None when unset."""
    want = os.environ.get("VMODULE_TEST_HOSTS")
    if not want:
        return None
    if want != "debian":
        return Path(want)
    from faults import hosts_file
    return hosts_file(Path(workdir) / "hosts")


def _private_resolver(workdir, hosts, gai=None):
    """The command prefix that runs a program in a private mount namespace
    where /etc/hosts is `hosts` (and /etc/gai.conf `gai`, if given), and
    names resolve from that file alone: nsswitch.conf says "hosts: files",
    so a name it lacks fails at once, and no lookup leaves the machine."""
    binds = [(hosts, "/etc/hosts")]
    if gai:
        binds.append((gai, "/etc/gai.conf"))
    if os.path.exists("/etc/nsswitch.conf"):
        nss = Path(workdir) / "nsswitch.conf"
        with open("/etc/nsswitch.conf", encoding="utf-8") as f:
            lines = [l for l in f.read().splitlines() if not l.startswith("hosts:")]
        nss.write_text("\n".join(lines + ["hosts: files"]) + "\n")
        binds.append((nss, "/etc/nsswitch.conf"))
    script = " && ".join('mount --bind "%s" %s' % (src, dst) for src, dst in binds)
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            script + ' && exec "$@"', "vmoduled"]


def _link_inode(path):
    try:
        return os.lstat(path).st_ino
    except FileNotFoundError:
        return None


class Daemon:
    """One vmoduled process running a JSON config written under workdir
    (or an explicit command line, argv=[...]).

    `config` may be edited between runs; start() writes it each time. The
    daemon's stderr (and stdout) go to `log_path`, appended across restarts;
    log_text()/wait_log() look at the current run unless all_runs=True."""

    def __init__(self, workdir, modules, binary=None, state_dir=None, log_level="info",
                 extra_config=None, args=(), argv=None, hosts=None, gai=None, wrap=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary or VMODULED
        self.config = {
            "state_dir": str(state_dir or self.workdir / "state"),
            "log_level": log_level,
            "modules": list(modules),
        }
        if extra_config:
            deep_merge(self.config, extra_config)
        self.config_path = self.workdir / "vmoduled.json"
        self.log_path = self.workdir / "vmoduled.log"
        self.args = list(args)    # appended after "-c FILE"
        self.argv = argv          # if set: the whole command line instead (no config file);
        #                           `modules` then only describes names and links to wait for
        # A hosts file for the daemon alone (faults.hosts_file()): it runs in a
        # private mount namespace with the file bind-mounted on /etc/hosts.
        # VMODULE_TEST_HOSTS=debian (or a path) gives every daemon of the suite
        # one, to run the whole suite under another machine's hosts file.
        self.hosts = hosts or _suite_hosts(self.workdir)
        self.gai = gai  # likewise for /etc/gai.conf (address order), with a hosts file
        self.wrap = list(wrap or [])  # a command prefix that execs the daemon (setpriv, env...)
        self.proc = None
        self.ports = []
        self.pts = {}       # module name -> /dev/pts/N of the current run
        self.tcp_ports = {}  # module name -> bound TCP port of the current run
        self._run_offset = 0
        self.runs = 0

    # -- config helpers
    @property
    def state_dir(self):
        return Path(self.config["state_dir"])

    @property
    def ctl_path(self):
        """The control socket (--control, config control_socket, default
        <state_dir>/control.sock)."""
        args = [str(a) for a in (self.argv if self.argv is not None else self.args)]
        if "--control" in args[:-1]:
            return Path(args[args.index("--control") + 1])
        if self.argv is not None and "--state-dir" in args[:-1]:
            return Path(args[args.index("--state-dir") + 1]) / "control.sock"
        return Path(self.config.get("control_socket") or self.state_dir / "control.sock")

    def _ctl_listening(self):
        import ctl
        try:
            ctl.connect(self.ctl_path).close()
            return True
        except OSError:  # not yet made, or left by a killed run: refused
            return False

    def ctl(self, timeout=10.0):
        """A client of the control socket (ctl.Ctl); the caller closes it."""
        import ctl
        return ctl.Ctl(self.ctl_path, timeout)

    def module(self, name=None):
        mods = self.config["modules"]
        if name is None:
            return mods[0]
        for m in mods:
            if m["name"] == name:
                return m
        raise KeyError(name)

    def link(self, name=None):
        return self.module(name)["pty_link"]

    def state_path(self, name=None):
        return self.state_dir / self.module(name)["name"] / "state.json"

    def read_state(self, name=None):
        with open(self.state_path(name), encoding="utf-8") as f:
            return json.load(f)

    # -- process control
    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, wait=True, timeout=10.0):
        assert not self.running, "daemon already running"
        if self.argv is None:
            self.config_path.write_text(json.dumps(self.config, indent=2))
            cmd = [self.binary, "-c", str(self.config_path)] + self.args
        else:
            cmd = [self.binary] + [str(a) for a in self.argv]
        cmd = self.wrap + cmd
        if self.hosts:
            cmd = _private_resolver(self.workdir, self.hosts, self.gai) + cmd
        self._run_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.runs += 1
        # A symlink left by an earlier (killed) run must not be mistaken for
        # this run's: the daemon replaces it (new inode) once its PTY exists.
        old = {m["name"]: _link_inode(m["pty_link"]) for m in self.config["modules"]
               if "pty_link" in m and "count" not in m}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env=dict(os.environ))  # ASAN_OPTIONS / UBSAN_OPTIONS pass through
        self.pts, self.tcp_ports = {}, {}
        if wait:
            self.wait_started(old, timeout)
        return self

    def wait_started(self, old_inodes=None, timeout=10.0):
        """Waits until every module's PTY symlink is this run's (a new
        symlink whose target exists) and every TCP endpoint is bound (port
        read from the INFO log line). Templated entries ("count") are not
        looked at one by one: the control socket, made once every module has
        started, covers them."""
        old_inodes = old_inodes or {}
        for m in self.config["modules"]:
            if "count" in m:
                continue
            name, link = m["name"], m.get("pty_link")

            def fresh():
                self._check_alive()
                ino = _link_inode(link)
                return ino is not None and ino != old_inodes.get(name) and os.path.exists(link)

            if link:
                wait_for(fresh, timeout, "vmoduled to create the symlink %s" % link)
                self.pts[name] = os.readlink(link)
            if m.get("tcp_listen"):
                pat = re.compile(_TCP_RE % re.escape(name), re.M)
                match = self.wait_log(pat, timeout)
                self.tcp_ports[name] = int(match.group(2))
        # the control socket is made once every module has started
        wait_for(lambda: self._check_alive() and self._ctl_listening(), timeout,
                 "vmoduled to listen on its control socket %s" % self.ctl_path)

    def _check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail("vmoduled exited with status %s; log:\n%s" % (
                self.proc.returncode, _clip(self.log_text(), 4000)), pytrace=False)
        return True

    def close_ports(self):
        for p in self.ports:
            p.close()
        self.ports = []

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0, check_links=True):
        """SIGTERM; the daemon must exit 0 within timeout and (by default)
        have removed its symlinks. Returns the exit status."""
        assert self.running, "daemon not running (status %s)" % (self.proc and self.proc.returncode)
        self.close_ports()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("vmoduled did not exit within %.1f s of SIGTERM; log:\n%s" % (
                timeout, _clip(self.log_text(), 4000)), pytrace=False)
        assert rc == 0, "vmoduled exited with status %s after SIGTERM; log:\n%s" % (
            rc, _clip(self.log_text(), 4000))
        if check_links:
            for m in self.config["modules"]:
                for key in ("pty_link", "unix_listen"):
                    if m.get(key) and "count" not in m:
                        assert not os.path.lexists(m[key]), \
                            "%s %s still exists after SIGTERM" % (key, m[key])
        return rc

    def kill9(self):
        """SIGKILL: the process gets no chance to clean up."""
        self.close_ports()
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart(self, **kw):
        self.stop()
        return self.start(**kw)

    def cleanup(self):
        """Teardown: never leaves a process behind."""
        self.close_ports()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # -- serial endpoints
    def port(self, name=None, wait_ready=True, timeout=10.0):
        """Opens the module's PTY (pyserial); by default consumes the boot
        banner so the test starts at a known point."""
        self._check_alive()
        m = self.module(name)
        p = Port(m["pty_link"], name="pty[%s]" % m["name"])
        self.ports.append(p)
        if wait_ready:
            p.wait_ready(timeout)
        return p

    def unix(self, name=None, path=None):
        """Connects to a module's unix socket serial endpoint (path: that of
        a templated module, which the config does not spell out)."""
        if path is None:
            path = self.module(name)["unix_listen"]
        p = UnixPort(path, name="unix[%s]" % (name or path))
        self.ports.append(p)
        return p

    def tcp_port(self, name=None):
        return self.tcp_ports[self.module(name)["name"]]

    def tcp(self, name=None):
        """Connects to the module's TCP serial endpoint."""
        m = self.module(name)
        host = m["tcp_listen"].rsplit(":", 1)[0]
        p = TcpPort(host, self.tcp_port(m["name"]), name="tcp[%s]" % m["name"])
        self.ports.append(p)
        return p

    # -- logs
    def log_text(self, all_runs=False):
        try:
            with open(self.log_path, "rb") as f:
                if not all_runs:
                    f.seek(self._run_offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, what, timeout=5.0, all_runs=False):
        """Polls the log until it contains `what` (a str, or a compiled regex
        whose match object is returned). Fails early if the daemon dies."""
        def found():
            text = self.log_text(all_runs)
            if isinstance(what, re.Pattern):
                m = what.search(text)
            else:
                m = what in text and next(l for l in text.splitlines() if what in l)
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail("vmoduled exited (status %s) before logging %r; log:\n%s" % (
                    self.proc.returncode, getattr(what, "pattern", what),
                    _clip(text, 4000)), pytrace=False)
            return None
        deadline = time.monotonic() + timeout
        while True:
            m = found()
            if m:
                return m
            if time.monotonic() >= deadline:
                pytest.fail("timed out after %.1f s waiting for log %r; log:\n%s" % (
                    timeout, getattr(what, "pattern", what), _clip(self.log_text(all_runs), 4000)),
                    pytrace=False)
            time.sleep(0.01)

    def sanitizer_report(self):
        text = self.log_text(all_runs=True)
        return sanitizer_findings(text) and text


@pytest.fixture
def make_daemon(tmp_path, vmoduled_bin):
    """Factory: make_daemon(modules, start=True, **Daemon kwargs) -> Daemon.
    Each daemon gets its own directory under tmp_path. At teardown every
    daemon is stopped (killed if need be), and a sanitizer report in any
    daemon's stderr fails the test."""
    daemons = []

    def make(modules, start=True, **kw):
        d = Daemon(tmp_path / ("daemon%d" % len(daemons)), modules, binary=vmoduled_bin, **kw)
        daemons.append(d)
        if start:
            d.start()
        return d

    yield make
    reports = []
    for d in daemons:
        d.cleanup()
        text = d.sanitizer_report()
        if text:
            reports.append("%s:\n%s" % (d.log_path, _clip(text, 8000)))
    if reports:
        pytest.fail("sanitizer report in vmoduled stderr:\n" + "\n".join(reports), pytrace=False)


@pytest.fixture
def start_module(make_daemon, tmp_path):
    """start_module(dialect="tencent", name=None, wait_ready=True,
    daemon_kw=None, **module overrides) -> (daemon, port)."""
    def start(dialect="tencent", name=None, wait_ready=True, daemon_kw=None, **overrides):
        m = module_config(tmp_path, name or dialect, dialect, **overrides)
        d = make_daemon([m], **(daemon_kw or {}))
        return d, d.port(m["name"], wait_ready=wait_ready)
    return start


# ---------------------------------------------------------------- mosquitto


def _conf_lines(options):
    lines = []
    for key, value in options.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, bool):
                v = "true" if v else "false"
            lines.append("%s %s" % (key, v))
    return lines


class Mosquitto:
    """A real mosquitto broker on loopback ports chosen at creation (kept
    across restarts).

    listeners: list of dicts, one per listener. Keys: "name" (for
    port_of()), "port" (default: a free port), "host" (default 127.0.0.1);
    every other key is written as a mosquitto option under that listener,
    e.g. {"protocol": "websockets"}, {"psk_hint": "hint"},
    {"cafile": ..., "certfile": ..., "keyfile": ..., "require_certificate": True}.
    options: global options (written before the listeners), e.g.
    {"psk_file": path, "password_file": path}. A list value repeats the key."""

    def __init__(self, workdir, listeners=None, options=None, allow_anonymous=True,
                 binary=MOSQUITTO):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.binary = binary
        self.listeners = [dict(l) for l in (listeners or [{}])]
        for l in self.listeners:
            l.setdefault("port", free_port())
            l.setdefault("host", "127.0.0.1")
        self.options = {"allow_anonymous": allow_anonymous}
        self.options.update(options or {})
        self.conf_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.proc = None
        self.paused = False

    @property
    def port(self):
        return self.listeners[0]["port"]

    @property
    def host(self):
        return self.listeners[0]["host"]

    @property
    def ports(self):
        return [l["port"] for l in self.listeners]

    def port_of(self, name):
        for l in self.listeners:
            if l.get("name") == name:
                return l["port"]
        raise KeyError(name)

    def config_text(self):
        lines = ["# written by tests/integration/conftest.py",
                 "user root", "persistence false", "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true"]
        lines += _conf_lines(self.options)
        for l in self.listeners:
            lines.append("")
            lines.append("listener %d %s" % (l["port"], l["host"]))
            lines += _conf_lines({k: v for k, v in l.items() if k not in ("name", "port", "host")})
        return "\n".join(lines) + "\n"

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout=10.0):
        assert not self.running, "mosquitto already running"
        self.conf_path.write_text(self.config_text())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        self.paused = False
        for l in self.listeners:
            wait_for(lambda: self._accepts(l["host"], l["port"]), timeout,
                     "mosquitto to accept on %s:%d" % (l["host"], l["port"]))
        return self

    def _accepts(self, host, port):
        if self.proc.poll() is not None:
            pytest.fail("mosquitto exited with status %s; config:\n%s\nlog:\n%s" % (
                self.proc.returncode, self.config_text(), self.log_text()), pytrace=False)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout=10.0):
        """SIGTERM and wait."""
        if not self.running:
            return
        self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """SIGKILL: connections die without a DISCONNECT."""
        if self.running:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.paused = False

    def pause(self):
        """SIGSTOP: the broker stops answering but keeps its sockets."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.paused and self.running:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def restart(self, timeout=10.0):
        self.stop()
        return self.start(timeout)


@pytest.fixture
def mosquitto(tmp_path):
    """Factory: mosquitto(listeners=None, options=None, allow_anonymous=True,
    start=True) -> Mosquitto. All brokers are killed at teardown."""
    brokers = []

    def make(listeners=None, options=None, allow_anonymous=True, start=True):
        b = Mosquitto(tmp_path / ("mosquitto%d" % len(brokers)), listeners, options,
                      allow_anonymous)
        brokers.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in brokers:
        if b.proc is not None and b.proc.poll() is None:
            b.resume()
            b.proc.kill()
            b.proc.wait()


# ----------------------------------------------------------------- broker-side MQTT peer


class MqttPeer:
    """A paho client on the broker side: publishes to a module and collects
    what the module publishes, as (topic, payload) pairs, or
    (topic, payload, retain) triples with with_retain=True."""

    def __init__(self, port, topic=None, qos=1, username=None, password=None, host="127.0.0.1",
                 with_retain=False):
        import threading
        import paho.mqtt.client as paho
        self.msgs = []
        self.with_retain = with_retain
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.c = paho.Client(client_id="peer-%d" % time.monotonic_ns(), protocol=paho.MQTTv311)
        if username:
            self.c.username_pw_set(username, password)
        self.c.on_connect = lambda c, u, f, rc: self.connected.set()
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect(host, port, 60)
        self.c.loop_start()
        assert self.connected.wait(5), "peer could not connect"
        if topic:
            self.subscribe(topic, qos)

    def subscribe(self, topic, qos=1):
        self.subscribed.clear()
        self.c.subscribe(topic, qos)
        assert self.subscribed.wait(5), "peer could not subscribe"

    def _on_message(self, c, u, msg):
        rec = (msg.topic, bytes(msg.payload))
        with self.lock:
            self.msgs.append(rec + (msg.retain,) if self.with_retain else rec)

    def publish(self, topic, payload, qos=1, retain=False):
        self.c.publish(topic, payload, qos, retain).wait_for_publish()

    def wait_msgs(self, n, timeout=5.0):
        wait_for(lambda: len(self.msgs) >= n, timeout, "%d message(s) at the peer" % n)
        with self.lock:
            return list(self.msgs)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def mqtt_peers():
    """mqtt_peers(port, topic=None, ...) -> MqttPeer; all closed at teardown."""
    made = []

    def make(*a, **kw):
        p = MqttPeer(*a, **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


# ----------------------------------------------------------------- test certificates


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A directory with a test CA (ca.crt/ca.key), a server certificate for
    127.0.0.1, ::1, localhost and TEST_HOST signed by it (server.crt/server.key), and an
    unrelated CA (otherca.crt) for the wrong-CA cases."""
    d = tmp_path_factory.mktemp("certs")

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)

    for ca in ("ca", "otherca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=vmodule test %s" % ca, "-keyout", ca + ".key", "-out", ca + ".crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
        "server.key", "-out", "server.csr")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,DNS:%s\n" % TEST_HOST)
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.crt")
    return d


# ----------------------------------------------------------------- leaked processes

# What a test may start and must have stopped by its end: a leak of these
# eats the user's inotify instances (128 by default) and PTYs, and later
# tests fail far from the cause.
LEAK_NAMES = {"vmoduled", "mosquitto", "socat", "locust"}


def _live_descendants(root):
    """{pid: comm} of the live (not zombie) processes below root."""
    parent, comm = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        close = st.rindex(")")
        fields = st[close + 2:].split()
        if fields[0] == "Z":
            continue
        parent[int(d)] = int(fields[1])
        comm[int(d)] = st[st.index("(") + 1:close]
    out = {}
    for pid in parent:
        p = parent[pid]
        while p != root and p in parent and p > 1:
            p = parent[p]
        if p == root:
            out[pid] = comm[pid]
    return out


@pytest.fixture(autouse=True)
def no_leaked_processes():
    """Fails the test (at teardown) that leaves a daemon, broker or relay
    running after its own fixtures are gone, and kills what it left. Wider
    scoped fixtures start before and stop after this one, so they are not
    counted."""
    before = set(_live_descendants(os.getpid()))
    yield
    def leaked():
        return {pid: c for pid, c in _live_descendants(os.getpid()).items()
                if pid not in before and c in LEAK_NAMES}
    deadline = time.monotonic() + 5
    left = leaked()
    while left and time.monotonic() < deadline:  # a kill sent, not yet reaped
        time.sleep(0.05)
        left = leaked()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, "the test left these running: %s" % ", ".join(
        "%s[%d]" % (c, pid) for pid, c in sorted(left.items()))
