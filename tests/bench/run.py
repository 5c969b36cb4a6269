#!/usr/bin/python3
"""run.py - vmodule benchmarks (`make bench`; not part of `make test`).

Each benchmark is a function registered with @bench; it starts what it needs
(the daemon with a config written to a temp dir, a baseline peer, later a
broker), measures, stops everything and returns one summary line:

    bench <name>: <figures> (target ...)

Run all:  VMODULED=build/vmoduled /usr/bin/python3 tests/bench/run.py
One:      ... run.py at_roundtrip -n 5000
Fleet:    ... run.py fleet -n 200 --transport tcp --idle-seconds 5 --load-seconds 10
          (bench_fleet.py: N modules in one daemon; -n is the module count there)
Locust:   ... run.py locust -n 1000 --locust-workers 2 --locust-passes 3
          (bench_locust.py: the tests/fleet driver, per-command latency)

at_roundtrip: N sequential `AT\\r\\n` -> `\\r\\nOK\\r\\n` round trips over the
module's PTY (baud 0 = unpaced, echo off), against a baseline measured in the
same run: a minimal PTY peer in a child process that owns a raw PTY master and
answers `\\r\\nOK\\r\\n` to every `AT\\r\\n`. Both are driven by the same client
code, alternating in blocks so machine noise hits both alike. The ratio tells
what the daemon adds on top of the kernel PTY and a context switch.
"""

import argparse
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BENCHES = {}
# Extra command-line options: functions add(argparse parser) that benchmark
# modules append in their register().
OPTIONS = []
# -n per benchmark when it is not given (round trips or messages for most;
# modules for fleet); DEFAULT_N_ALL for those not listed.
DEFAULT_N_ALL = 2000
DEFAULT_N = {}


def bench(fn):
    """Registers a benchmark: fn(args) -> summary line."""
    BENCHES[fn.__name__.removeprefix("bench_")] = fn
    return fn


def plugin(name, fn, add_options=None, default_n=None):
    """Registers the benchmark `name` of another file once: fn(args) ->
    summary line, with its command-line options and its default -n."""
    if name in BENCHES:
        return
    BENCHES[name] = fn
    if add_options:
        OPTIONS.append(add_options)
    if default_n is not None:
        DEFAULT_N[name] = default_n


# --------------------------------------------------------------------------
# helpers shared by benchmarks


class BenchError(Exception):
    pass


def percentile(sorted_samples, q):
    """Nearest-rank percentile of an ascending list (q in 0..100), in the
    samples' unit."""
    n = len(sorted_samples)
    rank = max(1, -(-q * n // 100))  # ceil(q*n/100), at least 1
    return sorted_samples[min(n, rank) - 1]


def open_serial(path):
    """Opens a PTY slave the way an MCU host program would: raw, no echo."""
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


def read_until(fd, want, timeout):
    """Reads until the accumulated bytes end with `want`; returns them all."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(want):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise BenchError(f"timeout waiting for {want!r}; got {buf!r}")
        try:
            buf += os.read(fd, 4096)
        except BlockingIOError:
            pass
    return buf


def drain(fd):
    """Discards whatever is already readable (boot banner, URCs)."""
    while select.select([fd], [], [], 0)[0]:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            return


def roundtrips(fd, n, cmd=b"AT\r\n", reply=b"\r\nOK\r\n"):
    """n sequential cmd -> reply round trips; returns the times in ns.
    Every reply must be exactly `reply` (a wrong byte fails the benchmark)."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        os.write(fd, cmd)
        got = read_until(fd, reply, 5.0)
        samples.append(clock() - t0)
        if got != reply:
            raise BenchError(f"expected {reply!r}, got {got!r}")
    return samples


def sync(fd, cmd=b"AT\r\n", reply=b"\r\nOK\r\n", tries=20):
    """Sends cmd until one reply comes back exactly (input during boot is
    discarded by the module, so the first tries may get no answer)."""
    for _ in range(tries):
        drain(fd)
        os.write(fd, cmd)
        try:
            if read_until(fd, reply, 0.5) == reply:
                return
        except BenchError:
            continue
    raise BenchError(f"no {reply!r} after {tries} tries")


class Daemon:
    """vmoduled with a config written to a temp dir. A thread collects its
    stderr; every log line is a moment to check whether all PTY links exist
    (the daemon logs as it creates them)."""

    def __init__(self, binary, modules, workdir, log_level="info"):
        self.workdir = workdir
        self.links = [m["pty_link"] for m in modules]
        self.cfg = {"state_dir": os.path.join(workdir, "state"),
                    "log_level": log_level, "modules": modules}
        self.cfg_path = os.path.join(workdir, "vmoduled.json")
        with open(self.cfg_path, "w") as f:
            json.dump(self.cfg, f, indent=2)
        self.log = []
        self.changed = threading.Event()
        self.proc = subprocess.Popen([binary, "-c", self.cfg_path], stdin=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read_log, daemon=True)
        self.reader.start()

    def _read_log(self):
        for raw in self.proc.stderr:
            self.log.append(raw.decode(errors="replace").rstrip("\n"))
            self.changed.set()
        self.changed.set()  # the daemon exited: wake the waiter

    def _linked(self):
        return all(os.path.islink(x) for x in self.links)

    def wait_linked(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not self._linked() and self.proc.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # Woken by the next log line; the short cap covers a daemon that
            # creates its last link without logging afterwards.
            self.changed.wait(min(left, 0.05))
            self.changed.clear()
        if not self._linked() or self.proc.poll() is not None:
            self.stop()
            raise BenchError("vmoduled did not start:\n" + "\n".join(self.log))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode


class BaselinePeer:
    """A child process of this script (--baseline-peer) that owns a raw PTY
    master and answers every `AT\\r\\n` with `\\r\\nOK\\r\\n`: the floor that a
    PTY-based module could reach."""

    def __init__(self):
        # The C peer (build/bench/pty_echo, built by `make bench`) is the honest
        # floor; the Python one is a fallback when it was not built.
        native = os.path.join(os.path.dirname(vmoduled_path()), "bench", "pty_echo")
        cmd = [native] if os.access(native, os.X_OK) else [sys.executable, os.path.abspath(__file__), "--baseline-peer"]
        self.kind = "C" if cmd[0] == native else "python"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.path = self.proc.stdout.readline().decode().strip()
        if not self.path.startswith("/dev/"):
            raise BenchError(f"baseline peer did not start (said {self.path!r})")

    def stop(self):
        self.proc.stdin.close()  # EOF on stdin: the peer exits
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def baseline_peer_main():
    master, slave = os.openpty()
    tty.setraw(master)  # termios on the master applies to the slave: raw, no echo
    os.set_blocking(master, False)
    print(os.ttyname(slave), flush=True)
    pending = b""
    # The held slave fd keeps the master from reporting HUP between clients.
    while True:
        ready = select.select([master, sys.stdin], [], [])[0]
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            return 0
        if master in ready:
            try:
                pending += os.read(master, 4096)
            except BlockingIOError:
                continue
            while b"\r\n" in pending:
                line, pending = pending.split(b"\r\n", 1)
                if line == b"AT":
                    os.write(master, b"\r\nOK\r\n")


def vmoduled_path():
    path = os.environ.get("VMODULED") or os.path.join(ROOT, "build", "vmoduled")
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} not found: run `make` first or set VMODULED")
    return path


# --------------------------------------------------------------------------
# benchmarks


@bench
def bench_at_roundtrip(args):
    n, block = args.n, 200
    with tempfile.TemporaryDirectory(prefix="vmodule-bench.") as work:
        link = os.path.join(work, "ttyVM0")
        daemon = Daemon(vmoduled_path(), [{
            "name": "bench0", "dialect": "tencent", "pty_link": link,
            "baud": 0, "echo": False, "boot_ms": 0}], work)
        peer = None
        fds = []
        try:
            daemon.wait_linked()
            peer = BaselinePeer()
            kind = peer.kind
            vm_fd = open_serial(link)
            fds.append(vm_fd)
            base_fd = open_serial(peer.path)
            fds.append(base_fd)
            sync(vm_fd)
            sync(base_fd)
            roundtrips(vm_fd, args.warmup)
            roundtrips(base_fd, args.warmup)
            vm, base = [], []
            while len(vm) < n:
                k = min(block, n - len(vm))
                vm += roundtrips(vm_fd, k)
                base += roundtrips(base_fd, k)
        finally:
            for fd in fds:
                os.close(fd)
            if peer:
                peer.stop()
            rc = daemon.stop()
        if rc != 0:
            raise BenchError(f"vmoduled exited with status {rc}:\n" + "\n".join(daemon.log))
    vm.sort()
    base.sort()
    p50, p99 = percentile(vm, 50) / 1000, percentile(vm, 99) / 1000
    b50, b99 = percentile(base, 50) / 1000, percentile(base, 99) / 1000
    ratio = p50 / b50
    args.over_target |= ratio > 1.2
    return (f"bench at_roundtrip: p50={p50:.1f}us p99={p99:.1f}us "
            f"baseline({kind} pty echo) p50={b50:.1f}us p99={b99:.1f}us ratio_p50={ratio:.2f}x (target <= 1.2x)")


# Later: bench_mqtt_uplink (AT+...PUB at baud 0 -> subscriber on a local
# mosquitto) and bench_mqtt_downlink (broker publish -> URC on the PTY), each a
# @bench function returning its summary line the same way.


import bench_tencent  # noqa: E402  (adds the Tencent MQTT benchmarks)
bench_tencent.register(sys.modules[__name__])
import bench_w800  # noqa: E402  (adds the W800 WebSocket-vs-TCP benchmark)
bench_w800.register(sys.modules[__name__])
import bench_fleet  # noqa: E402  (adds P5: N tencent modules in one daemon)
bench_fleet.register(sys.modules[__name__])
import bench_ota  # noqa: E402  (adds P4: the tencent OTA download and read-out)
bench_ota.register(sys.modules[__name__])
import bench_locust  # noqa: E402  (adds the Locust fleet driver on N tencent modules)
bench_locust.register(sys.modules[__name__])
import bench_templates  # noqa: E402  (adds fleet_start: 10,000 templated unix-socket modules)
bench_templates.register(sys.modules[__name__])


def main():
    if sys.argv[1:] == ["--baseline-peer"]:
        return baseline_peer_main()
    ap = argparse.ArgumentParser(description="vmodule benchmarks")
    ap.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(BENCHES)})")
    ap.add_argument("-n", type=int, default=None,
                    help=f"measured round trips or messages (default {DEFAULT_N_ALL}); fleet: "
                    f"modules (default {DEFAULT_N.get('fleet')}); locust: modules/users (default "
                    f"{DEFAULT_N.get('locust')})")
    ap.add_argument("--warmup", type=int, default=100, help="unmeasured round trips first")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a figure misses its target")
    for add in OPTIONS:
        add(ap)
    args = ap.parse_args()
    args.over_target = False
    n_given = args.n
    names = args.names or list(BENCHES)
    unknown = [x for x in names if x not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    failed = False
    for name in names:
        args.n = n_given if n_given is not None else DEFAULT_N.get(name, DEFAULT_N_ALL)
        try:
            print(BENCHES[name](args), flush=True)
        except BenchError as e:
            print(f"bench {name}: FAILED: {e}", file=sys.stderr, flush=True)
            failed = True
    if failed:
        return 2
    return 1 if args.strict and args.over_target else 0


if __name__ == "__main__":
    sys.exit(main())
