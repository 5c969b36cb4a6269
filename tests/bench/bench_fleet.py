#!/usr/bin/python3
"""bench_fleet.py - P5: a fleet of N tencent modules in ONE vmoduled, for
run.py (`make bench`; not part of `make test`).

fleet: for each transport (--transport tcp|tls-psk|both, default both) one
  local mosquitto on loopback (a free port; `max_connections -1`; for
  tls-psk a psk_file with N distinct devices <pid><dn>:<hexkey>, and a
  second, plain listener for the counting subscriber) and one vmoduled
  with N tencent modules (baud 0, echo off, boot_ms 0, Wi-Fi auto-join so
  AT+TCMQTTCONN is allowed, a pty_link each). The bench opens every PTY
  (raw, non-blocking; one epoll over all of them, so N is not bounded by
  select()'s FD_SETSIZE), waits for every banner, and provisions each
  module with its own device name and secret by AT+TCDEVINFOSET, all in
  parallel. Then (targets are for N = 1000):

  1. connect: AT+TCMQTTCONN=1,10000,240,1,1 written to all N modules at
     once; time until the last +TCMQTTCONN:OK, and the FAIL lines.
     Target < 5 s. Also printed: ListenOverflows meanwhile (mosquitto
     2.0.11 listens with a backlog of 100; a handshake dropped by its full
     accept queue completes on a retransmission after 1 s: a 1 s tail).
  2. RSS per connected module: (VmRSS of the N-module daemon - VmRSS of a
     daemon with 1 connected module, measured first in the same run) /
     (N - 1). Target <= 48 KiB (tls-psk).
  3. fds per connected module, the same way from /proc/<pid>/fd.
     Target <= 4.
  4. idle CPU: utime+stime of the daemon over --idle-seconds (default 30)
     of wall time, as % of one core. Keepalive 240 s: no PINGREQ in that
     window. Target < 1 %.
  5. steady load: every module publishes one 64-byte QoS 0 message per
     second (AT+TCMQTTPUB="<pid>/<dn>/data",0,"<64 B>"), module i at
     offset i/N within each second, for --load-seconds (default 60); a
     paho subscriber on +/+/data counts deliveries. Printed: sent,
     delivered, equal or not (target: every message delivered), and the
     daemon's and broker's CPU during the load.
  6. SIGTERM to exit of the N-module daemon (PTYs still open). Target < 1 s.

The bench raises its own RLIMIT_NOFILE soft limit to the hard limit (the
daemon and the broker inherit it) and prints it with kernel.pty.max and
fs.inotify.max_user_instances (the daemon needs one inotify instance
whatever N is). It never changes a system setting.

--perf DIR records `perf record -g` of the daemon during the connect burst,
the load and the SIGTERM into DIR/fleet-<transport>-{connect,load,exit}.data.

Wiring: run.py calls register(<its own module object>), or run this file:
/usr/bin/python3 tests/bench/bench_fleet.py [-n N] [--transport T] ..."""

import base64
import hashlib
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")

DEFAULT_N = 1000
PID = "FLEETBENCH"  # product id: 10 characters, like the cloud's
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
BANNER = b"\r\nready\r\nWIFI CONNECTED\r\nWIFI GOT IP\r\n"
CONN_TIMEOUT_MS = 10000  # TC_CMD_TIMEOUT_MAX
KEEPALIVE = 240
PAYLOAD_LEN = 64
CLK_TCK = os.sysconf("SC_CLK_TCK")

# targets (for N = 1000)
T_CONNECT_S = 5.0
T_RSS_KIB = 48
T_FDS = 4
T_IDLE_PCT = 1.0
T_EXIT_S = 1.0


# --------------------------------------------------------------------------
# the machine


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def raise_nofile():
    """Soft RLIMIT_NOFILE := hard (inherited by the daemon and the broker)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)


def inotify_instances_in_use():
    """inotify instances open on the machine now (all users: an estimate of
    what is left of fs.inotify.max_user_instances for root)."""
    used = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify":
                        used += 1
                except OSError:
                    pass
        except OSError:
            pass
    return used


def preflight(run, n):
    """Prints the limits that decide whether N modules fit; raises BenchError
    only for what cannot work at all (PTYs, descriptors)."""
    before, (soft, hard) = raise_nofile()
    pty_max, pty_nr = read_int("/proc/sys/kernel/pty/max"), read_int("/proc/sys/kernel/pty/nr")
    ino_max = read_int("/proc/sys/fs/inotify/max_user_instances")
    ino_used = inotify_instances_in_use()
    print(f"fleet: N={n}; RLIMIT_NOFILE soft {before} -> {soft} (hard {hard}); "
          f"kernel.pty.max={pty_max} (in use {pty_nr}); fs.inotify.max_user_instances={ino_max} "
          f"(in use {ino_used})", flush=True)
    if pty_max is not None and n + 1 + (pty_nr or 0) > pty_max:
        raise run.BenchError(f"{n} modules need {n} PTYs, kernel.pty.max={pty_max} with "
                             f"{pty_nr} in use: sysctl -w kernel.pty.max={2 * n + 1024}")
    need_fds = 4 * n + 64  # the daemon's (3 per connected module); the bench holds n + a few, the broker n + a few
    if soft < need_fds:
        raise run.BenchError(f"RLIMIT_NOFILE {soft} is too small for {n} modules (about "
                             f"{need_fds} descriptors in the daemon): raise the hard limit "
                             f"(ulimit -Hn, LimitNOFILE=)")
    if ino_max is not None and ino_used >= ino_max:
        print(f"fleet: note: {ino_used} inotify instances in use, fs.inotify.max_user_instances="
              f"{ino_max}: the daemon may not get its one", flush=True)


def listen_overflows():
    """TcpExt ListenOverflows of the machine (/proc/net/netstat): handshake
    packets dropped because a listener's accept queue was full. mosquitto
    2.0.11 listens with a backlog of 100, so a burst of N connects can
    overflow it; the kernel retransmits after 1 s (and 3 s, ...), which shows
    as a tail of the connect time that is the broker's, not the daemon's."""
    try:
        with open("/proc/net/netstat") as f:
            rows = [line.split() for line in f if line.startswith("TcpExt:")]
        return int(dict(zip(rows[0][1:], rows[1][1:]))["ListenOverflows"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


class Proc:
    """/proc figures of one process."""

    def __init__(self, pid):
        self.pid = pid

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14, 15)

    def status_kib(self, key):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def rss_kib(self):
        return self.status_kib("VmRSS")

    def rss_breakdown(self):
        return {k: self.status_kib(k) for k in ("RssAnon", "RssFile", "RssShmem")}

    def heap_kib(self):
        """Rss of [heap] and of the other anonymous mappings (malloc arenas of
        the threads, mmap'd chunks, stacks) from /proc/<pid>/smaps."""
        heap = anon = 0
        cur = None
        with open(f"/proc/{self.pid}/smaps") as f:
            for line in f:
                if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                    parts = line.split()
                    cur = parts[5] if len(parts) > 5 else ""
                elif line.startswith("Rss:"):
                    kib = int(line.split()[1])
                    if cur == "[heap]":
                        heap += kib
                    elif cur == "":
                        anon += kib
        return heap, anon

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def threads(self):
        return self.status_kib("Threads")

    def nofile(self):
        with open(f"/proc/{self.pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    return " / ".join(line.split()[3:5])
        return "?"


class CpuMeter:
    def __init__(self, *procs):
        self.procs = procs
        self.t0 = time.monotonic()
        self.c0 = [p.cpu_ticks() for p in procs]

    def pct(self):
        """% of one core for each process since the start."""
        wall = time.monotonic() - self.t0
        return [100.0 * (p.cpu_ticks() - c) / CLK_TCK / wall for p, c in zip(self.procs, self.c0)]


# --------------------------------------------------------------------------
# the broker


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def device(i):
    """(device name, base64 secret, raw key) of module i; deterministic."""
    key = hashlib.sha256(b"vmodule fleet %d" % i).digest()[:16]
    return "dev%05d" % i, base64.b64encode(key).decode(), key


class FleetBroker:
    """mosquitto on loopback for a fleet: no connection limit, the bench's
    RLIMIT_NOFILE, errors and warnings logged to a file. For tls-psk the
    modules' listener takes TLS-PSK with a psk_file of n devices, and a plain
    listener on another port serves the subscriber."""

    def __init__(self, run, work, transport, n):
        self.run = run
        self.port = free_port()
        self.sub_port = self.port
        self.log_path = os.path.join(work, "mosquitto.log")
        lines = ["persistence false", "log_dest file " + self.log_path, "log_type error",
                 "log_type warning", "allow_anonymous true", "max_connections -1",
                 "max_queued_messages 1000", "user root"]
        if transport == "tls-psk":
            psk = os.path.join(work, "psk.txt")
            with open(psk, "w") as f:
                for i in range(n):
                    dn, _, key = device(i)
                    f.write(f"{PID}{dn}:{key.hex()}\n")
            self.sub_port = free_port()
            lines += ["psk_file " + psk, f"listener {self.port} 127.0.0.1", "psk_hint vmodule",
                      f"listener {self.sub_port} 127.0.0.1"]
        else:
            lines += [f"listener {self.port} 127.0.0.1"]
        conf = os.path.join(work, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.meter = Proc(self.proc.pid)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.sub_port), 0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise run.BenchError("mosquitto did not start:\n" + self.log_tail())
                time.sleep(0.02)

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Subscriber:
    """paho client on +/+/data counting deliveries (and their payload size)."""

    def __init__(self, run, port):
        import paho.mqtt.client as paho  # pylint: disable=import-outside-toplevel
        self.count = 0
        self.bad = 0
        self.subscribed = threading.Event()
        connected = threading.Event()
        self.c = paho.Client(client_id="fleet-sub-%d" % os.getpid(), protocol=paho.MQTTv311)
        self.c.on_connect = lambda c, u, f, rc: connected.set()
        self.c.on_subscribe = lambda c, u, mid, q: self.subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect("127.0.0.1", port, 60)
        self.c.loop_start()
        if not connected.wait(10):
            self.close()
            raise run.BenchError("subscriber could not connect")
        self.c.subscribe("+/+/data", 0)
        if not self.subscribed.wait(10):
            self.close()
            raise run.BenchError("subscriber could not subscribe")

    def _on_message(self, c, u, msg):
        self.count += 1  # one network thread: no lock needed
        if len(msg.payload) != PAYLOAD_LEN:
            self.bad += 1

    def close(self):
        self.c.loop_stop()
        try:
            self.c.disconnect()
        except Exception:  # pylint: disable=broad-except
            pass


# --------------------------------------------------------------------------
# the daemon and its PTYs


def module_cfg(work, i, transport, port):
    return {"name": "fl%05d" % i, "dialect": "tencent",
            "pty_link": os.path.join(work, "tty", "fl%05d" % i),
            "baud": 0, "echo": False, "boot_ms": 0,
            "tencent": {"mqtt_transport": transport, "mqtt_host": "127.0.0.1",
                        "mqtt_port": port, "wifi": WIFI}}


class FleetDaemon:
    """One vmoduled with n modules; its log goes to a file (no reader thread
    competing with the bench for the CPU). started() waits for the daemon's
    `running N modules` line, or its exit."""

    def __init__(self, run, work, n, transport, port, modules=None):
        self.run = run
        os.makedirs(os.path.join(work, "tty"), exist_ok=True)
        # modules: other module configs (bench_locust.py's, with tcp_listen)
        self.modules = modules or [module_cfg(work, i, transport, port) for i in range(n)]
        cfg = {"state_dir": os.path.join(work, "state"), "log_level": "info",
               "modules": self.modules}
        cfg_path = os.path.join(work, "vmoduled.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
        self.log_path = os.path.join(work, "vmoduled.log")
        self.log = open(self.log_path, "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen([run.vmoduled_path(), "-c", cfg_path],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.meter = Proc(self.proc.pid)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_tail(self, lines=15):
        text = self.log_text().splitlines()
        errors = [l for l in text if " ERROR " in l or " WARN " in l or "error" in l.lower()]
        return "\n".join(errors[:5] + ["..."] + text[-lines:])

    def wait_started(self, timeout):
        deadline = time.monotonic() + timeout
        want = "running %d module" % len(self.modules)
        while True:
            if self.proc.poll() is not None:
                first = next((l for l in self.log_text().splitlines() if " ERROR " in l), "")
                raise self.run.BenchError(f"vmoduled exited with status {self.proc.returncode} "
                                          f"while starting {len(self.modules)} modules: "
                                          f"{first}\n" + self.log_tail())
            if want in self.log_text():
                return time.monotonic() - self.t_start
            if time.monotonic() > deadline:
                raise self.run.BenchError("vmoduled did not start in time:\n" + self.log_tail())
            time.sleep(0.05)

    def terminate(self):
        """SIGTERM; returns (seconds to exit, status)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        return time.monotonic() - t0, rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Ports:
    """The MCU side of n modules: every PTY open raw and non-blocking, one
    epoll over all of them, a line buffer each. Lines are CR LF terminated;
    empty lines are dropped."""

    def __init__(self, run, links):
        self.run = run
        self.fds = []
        self.ep = select.epoll()
        self.index = {}
        for i, link in enumerate(links):
            fd = os.open(link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            # TCSANOW: setraw's default TCSAFLUSH would drop a banner that the
            # module (powered on by this open, boot_ms 0) already wrote
            tty.setraw(fd, termios.TCSANOW)
            self.fds.append(fd)
            self.index[fd] = i
            self.ep.register(fd, select.EPOLLIN)
        self.bufs = [bytearray() for _ in links]
        self.raw = [bytearray() for _ in links]  # for banners (they start with CR LF)

    def close(self):
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.ep.close()

    def write(self, i, data):
        try:
            return os.write(self.fds[i], data) == len(data)
        except BlockingIOError:
            return False

    def pump(self, timeout, keep_raw=False):
        """Reads what is ready within timeout; returns [(module, line)]."""
        out = []
        for fd, ev in self.ep.poll(max(timeout, 0)):
            i = self.index[fd]
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError as e:
                    raise self.run.BenchError(f"module {i}: read: {e}") from e
                if not chunk:
                    break
                if keep_raw:
                    self.raw[i] += chunk
                    continue
                buf = self.bufs[i]
                buf += chunk
                while True:
                    k = buf.find(b"\r\n")
                    if k < 0:
                        break
                    line = bytes(buf[:k])
                    del buf[:k + 2]
                    if line:
                        out.append((i, line))
                if len(chunk) < 65536:
                    break
        return out

    def wait_banners(self, timeout):
        deadline = time.monotonic() + timeout
        left = set(range(len(self.fds)))
        while left:
            if time.monotonic() > deadline:
                i = min(left)
                raise self.run.BenchError(f"{len(left)} module(s) without a banner, e.g. "
                                          f"{i}: {bytes(self.raw[i])!r}")
            self.pump(0.2, keep_raw=True)
            for i in list(left):
                if self.raw[i].endswith(BANNER):
                    left.discard(i)
                elif len(self.raw[i]) > len(BANNER) or not BANNER.startswith(bytes(self.raw[i])):
                    raise self.run.BenchError(f"module {i}: unexpected banner "
                                              f"{bytes(self.raw[i])!r}")

    def command_all(self, cmds, ok, fail, timeout):
        """Writes cmds[i] to every module at once and waits for each one's `ok`
        or `fail...` line. Returns (t0, {module: seconds to ok}, {module:
        fail line}, [unexpected lines])."""
        n = len(self.fds)
        done, failed, other = {}, {}, []
        t0 = time.monotonic()
        for i in range(n):
            if not self.write(i, cmds[i]):
                raise self.run.BenchError(f"module {i}: short write of {cmds[i]!r}")
        deadline = t0 + timeout
        while len(done) + len(failed) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = [i for i in range(n) if i not in done and i not in failed]
                raise self.run.BenchError(f"{len(missing)} module(s) did not answer {ok!r} within "
                                          f"{timeout:.0f} s, e.g. {missing[:5]}; "
                                          f"unexpected lines {other[:5]}")
            lines = self.pump(min(left, 0.5))
            now = time.monotonic()
            for i, line in lines:
                if line == ok:
                    done[i] = now - t0
                elif line.startswith(fail):
                    failed[i] = line
                elif line != b"OK":
                    other.append((i, line))
        return t0, done, failed, other


def provision_cmds(n):
    cmds = []
    for i in range(n):
        dn, secret, _ = device(i)
        cmds.append(b'AT+TCDEVINFOSET=1,"%s","%s","%s"\r\n' % (PID.encode(), dn.encode(),
                                                              secret.encode()))
    return cmds


def conn_cmds(n):
    return [b"AT+TCMQTTCONN=1,%d,%d,1,1\r\n" % (CONN_TIMEOUT_MS, KEEPALIVE)] * n


def bring_up(run, work, n, transport, port, timeout):
    """Daemon + ports + banners + device info: returns (daemon, ports,
    seconds to start)."""
    daemon = FleetDaemon(run, work, n, transport, port)
    ports = None
    try:
        t_start = daemon.wait_started(timeout)
        ports = Ports(run, [m["pty_link"] for m in daemon.modules])
        ports.wait_banners(timeout)
        _, done, failed, other = ports.command_all(provision_cmds(n), b"+TCDEVINFOSET:OK",
                                                   b"+TCDEVINFOSET:FAIL", timeout)
        if failed or other:
            raise run.BenchError(f"AT+TCDEVINFOSET: {len(failed)} FAIL, e.g. "
                                 f"{list(failed.items())[:3]}; other {other[:3]}")
        return daemon, ports, t_start
    except BaseException:
        if ports:
            ports.close()
        daemon.kill()
        raise


class Perf:
    """perf record -g of a process while the block runs (when dir is set)."""

    def __init__(self, out_dir, pid, name):
        self.proc = None
        if out_dir and shutil.which("perf"):
            os.makedirs(out_dir, exist_ok=True)
            path = os.path.join(out_dir, name + ".data")
            self.proc = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(pid),
                                          "-o", path], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached before the measured burst starts

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------
# the phases


def measure_baseline(run, work, transport, port, timeout):
    """RSS and fds of a daemon with one connected module."""
    daemon, ports, _ = bring_up(run, work, 1, transport, port, timeout)
    try:
        _, done, failed, other = ports.command_all(conn_cmds(1), b"+TCMQTTCONN:OK",
                                                   b"+TCMQTTCONN:FAIL", 30)
        if failed:
            raise run.BenchError(f"1-module baseline: {failed[0]!r}:\n" + daemon.log_tail())
        time.sleep(1.0)
        return daemon.meter.rss_kib(), daemon.meter.fds()
    finally:
        ports.close()
        daemon.terminate()
        daemon.kill()


def load(run, ports, n, seconds, qos):
    """One publish per module per second, module i at offset i/n; returns
    (sent, acked, failed, skipped, other lines)."""
    cmds = []
    for i in range(n):
        dn, _, _ = device(i)
        cmds.append((b'AT+TCMQTTPUB="%s/%s/data",%d,"' % (PID.encode(), dn.encode(), qos),
                     b'"\r\n'))
    outstanding = [False] * n
    sent = acked = failed = skipped = 0
    other = []
    start = time.monotonic() + 0.1
    total = n * seconds
    k = 0  # the next send: second k // n, module k % n
    while True:
        now = time.monotonic()
        while k < total and start + k / n <= now:
            i, sec = k % n, k // n
            if outstanding[i]:
                skipped += 1  # its previous command is still pending: it would be busy
            else:
                head = b"%05d-%05d-" % (i, sec)
                body = head + b"x" * (PAYLOAD_LEN - len(head))
                if ports.write(i, cmds[i][0] + body + cmds[i][1]):
                    outstanding[i] = True
                    sent += 1
                else:
                    skipped += 1
            k += 1
        if k >= total and not any(outstanding):
            break
        if k >= total and now > start + seconds + 10:
            break  # replies that never came are counted as missing below
        wait = (start + k / n - now) if k < total else 0.2
        for i, line in ports.pump(min(max(wait, 0), 0.2)):
            if line == b"+TCMQTTPUB:OK":
                acked += 1
                outstanding[i] = False
            elif line.startswith(b"+TCMQTTPUB:FAIL"):
                failed += 1
                outstanding[i] = False
            elif line != b"OK":
                other.append((i, line))
    return sent, acked, failed, skipped, other


def fleet_transport(run, args, n, transport, out):
    """Runs the six measurements for one transport; out(line) prints one
    figure; returns the list of missed targets."""
    missed = []
    tag = f"bench fleet[{transport}] N={n}:"
    start_timeout = max(60.0, n * 0.06)
    with tempfile.TemporaryDirectory(prefix="vmodule-fleet.") as work:
        if os.environ.get("FLEET_KEEP"):  # debugging: logs and configs survive the run
            work = tempfile.mkdtemp(prefix="vmodule-fleet-kept.")
            out(f"fleet: work directory {work} (kept)")
        broker = FleetBroker(run, work, transport, n)
        daemon = ports = sub = None
        try:
            out(f"fleet: broker pid {broker.proc.pid} nofile {broker.meter.nofile()}")
            base_rss, base_fds = measure_baseline(run, os.path.join(work, "base"), transport,
                                                  broker.port, start_timeout)
            daemon, ports, t_start = bring_up(run, os.path.join(work, "fleet"), n, transport,
                                              broker.port, start_timeout)
            out(f"fleet: daemon pid {daemon.proc.pid} nofile {daemon.meter.nofile()}: "
                f"{n} modules started in {t_start:.2f} s, banners and device info done")
            idle_rss0 = daemon.meter.rss_kib()

            # 1. the connect burst
            with Perf(args.perf, daemon.proc.pid, f"fleet-{transport}-connect"):
                cpu = CpuMeter(daemon.meter, broker.meter)
                overflows0 = listen_overflows()
                _, done, failed, other = ports.command_all(
                    conn_cmds(n), b"+TCMQTTCONN:OK", b"+TCMQTTCONN:FAIL",
                    CONN_TIMEOUT_MS / 1000 + 30)
                d_cpu, b_cpu = cpu.pct()
                overflows = listen_overflows()
            overflows = None if overflows is None or overflows0 is None else overflows - overflows0
            times = sorted(done.values())
            last = times[-1] if times else float("nan")
            p50 = run.percentile(times, 50) if times else float("nan")
            ok = not failed and len(done) == n and last < T_CONNECT_S
            if not ok:
                missed.append("connect")
            codes = {}
            for line in failed.values():
                codes[line] = codes.get(line, 0) + 1
            out(f"{tag} connect: {len(done)} of {n} +TCMQTTCONN:OK, last after {last:.2f} s "
                f"(p50 {p50:.2f} s), {len(failed)} FAIL"
                + (f" {dict(list(codes.items())[:3])}" if codes else "")
                + (f", other lines {other[:3]}" if other else "")
                + f"; daemon CPU {d_cpu:.0f} %, broker {b_cpu:.0f} % of one core"
                + (f"; broker's accept queue full: ListenOverflows +{overflows} (machine-wide; "
                   f"each such handshake completes on a retransmission after 1 s)"
                   if overflows else "")
                + f" (target: all OK in < {T_CONNECT_S:.0f} s at N=1000)")
            if failed:
                out("fleet: daemon log:\n" + daemon.log_tail())
            time.sleep(2.0)  # settle (store writes, TLS buffers released)

            # 2., 3. memory and descriptors per connected module
            rss, fds = daemon.meter.rss_kib(), daemon.meter.fds()
            brk = daemon.meter.rss_breakdown()
            heap, anon = daemon.meter.heap_kib()
            per_rss = (rss - base_rss) / (n - 1)
            per_fds = (fds - base_fds) / (n - 1)
            judged = transport == "tls-psk"
            if judged and per_rss > T_RSS_KIB:
                missed.append("rss")
            if per_fds > T_FDS:
                missed.append("fds")
            out(f"{tag} RSS {rss / 1024:.1f} MiB with {n} connected (before connecting "
                f"{idle_rss0 / 1024:.1f} MiB), {base_rss / 1024:.1f} MiB with 1 => "
                f"{per_rss:.1f} KiB per module (target <= {T_RSS_KIB} KiB"
                + (")" if judged else ", set for tls-psk)")
                + f"; RssAnon {brk['RssAnon'] / 1024:.1f} MiB ([heap] {heap / 1024:.1f}, other "
                f"anon {anon / 1024:.1f}), RssFile {brk['RssFile'] / 1024:.1f} MiB, "
                f"{daemon.meter.threads()} threads")
            out(f"{tag} fds {fds} with {n} connected, {base_fds} with 1 => {per_fds:.2f} per "
                f"module (target <= {T_FDS})")

            # 4. idle
            cpu = CpuMeter(daemon.meter, broker.meter)
            time.sleep(args.idle_seconds)
            d_idle, b_idle = cpu.pct()
            if d_idle >= T_IDLE_PCT:
                missed.append("idle")
            out(f"{tag} idle CPU {d_idle:.2f} % of one core over {args.idle_seconds:g} s "
                f"(broker {b_idle:.2f} %) (target < {T_IDLE_PCT:g} %)")

            # 5. steady load
            sub = Subscriber(run, broker.sub_port)
            ports.pump(0)  # nothing should be pending; drop it
            with Perf(args.perf, daemon.proc.pid, f"fleet-{transport}-load"):
                cpu = CpuMeter(daemon.meter, broker.meter)
                sent, acked, pub_failed, skipped, other = load(run, ports, n, args.load_seconds,
                                                               args.pub_qos)
                d_load, b_load = cpu.pct()
            deadline = time.monotonic() + 10
            while sub.count < sent and time.monotonic() < deadline:
                time.sleep(0.05)
            delivered = sub.count
            equal = delivered == sent and not skipped and not pub_failed and sub.bad == 0
            if not equal:
                missed.append("load")
            out(f"{tag} load {n} msg/s x {args.load_seconds:g} s ({PAYLOAD_LEN} B QoS "
                f"{args.pub_qos}): sent {sent}, +TCMQTTPUB:OK {acked}, FAIL {pub_failed}, not "
                f"sent {skipped}, delivered {delivered} => {'equal' if equal else 'NOT equal'} "
                f"(target: every message delivered); daemon CPU {d_load:.1f} %, broker "
                f"{b_load:.1f} % of one core"
                + (f"; other lines {other[:3]}" if other else "")
                + (f"; {sub.bad} of the wrong size" if sub.bad else ""))
            sub.close()
            sub = None

            # 6. SIGTERM (the PTYs stay open, as an MCU would keep them)
            with Perf(args.perf, daemon.proc.pid, f"fleet-{transport}-exit"):
                secs, rc = daemon.terminate()
            if secs >= T_EXIT_S or rc != 0:
                missed.append("exit")
            out(f"{tag} SIGTERM to exit {secs:.3f} s, status {rc} (target < {T_EXIT_S:g} s)")
        finally:
            if sub:
                sub.close()
            if ports:
                ports.close()
            if daemon:
                daemon.kill()
            broker.stop()
    return missed


def bench_fleet(run, args):
    n = args.n
    if n < 2:
        raise run.BenchError("fleet needs -n 2 or more")
    transports = ["tcp", "tls-psk"] if args.transport == "both" else [args.transport]
    preflight(run, n)

    def out(line):
        print(line, flush=True)

    missed, errors = {}, []
    for transport in transports:
        try:
            missed[transport] = fleet_transport(run, args, n, transport, out)
        except run.BenchError as e:
            errors.append(f"{transport}: {e}")
            print(f"bench fleet[{transport}] N={n}: FAILED: {e}", file=sys.stderr, flush=True)
    if errors:
        raise run.BenchError("; ".join(e.splitlines()[0] for e in errors))
    args.over_target |= any(missed.values())
    verdict = ", ".join(f"{t}: " + (("missed " + " ".join(m)) if m else "all targets met")
                        for t, m in missed.items())
    return f"bench fleet: N={n} {verdict}"


def add_options(ap):
    ap.add_argument("--transport", choices=("tcp", "tls-psk", "both"), default="both",
                    help="fleet: the modules' MQTT transport (default both)")
    ap.add_argument("--idle-seconds", type=float, default=30.0,
                    help="fleet: idle CPU window (default 30)")
    ap.add_argument("--load-seconds", type=int, default=60,
                    help="fleet: steady-load duration (default 60)")
    ap.add_argument("--pub-qos", type=int, choices=(0, 1), default=0,
                    help="fleet: QoS of the load's AT+TCMQTTPUB (default 0)")
    ap.add_argument("--perf", metavar="DIR", default=None,
                    help="fleet: perf record the daemon during connect, load and exit into DIR")


def register(run):
    """Registers `fleet` with run.py (run: run.py's module object)."""
    run.plugin("fleet", lambda args: bench_fleet(run, args), add_options, DEFAULT_N)


def main():
    sys.path.insert(0, HERE)
    import run  # pylint: disable=import-outside-toplevel
    register(run)
    if not any(a in run.BENCHES for a in sys.argv[1:]):  # default: only ours
        sys.argv.insert(1, "fleet")
    return run.main()


if __name__ == "__main__":
    sys.exit(main())
