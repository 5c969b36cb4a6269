#!/usr/bin/python3
"""bench_templates.py - fleet_start: one templated entry ("count": N,
default 10000) of tencent modules, each on its own unix socket and no PTY,
in ONE vmoduled, for run.py (`make bench`; not part of `make test`).

Two starts of the same configuration: the first makes the N state
directories, the second finds them. For each: the time from spawning the
daemon to its control socket accepting (made once every module has
started; target < 1.5 s at N = 10000, "about a second"), VmRSS, the
descriptors (one listener per module), the last module's boot banner on
its socket, and SIGTERM to exit with every socket file removed. The
sockets go to a tmpfs directory (/dev/shm) when there is one, as under
/run in production: creating 10,000 socket files on ext4 costs the kernel
more (seconds right after 10,000 files were deleted there).

Run alone: /usr/bin/python3 tests/bench/bench_templates.py [-n N]"""

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_N = 10000
T_START_S = 1.5


def _status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _accepting(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def _banner(path, timeout=10.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    buf = b""
    try:
        while b"\r\nready\r\n" not in buf:
            chunk = s.recv(256)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return b"\r\nready\r\n" in buf


def _one_start(run, binary, cfg_path, ctl, socks, n, log):
    if os.path.exists(ctl):
        os.unlink(ctl)
    t0 = time.monotonic()
    proc = subprocess.Popen([binary, "-c", cfg_path], stdin=subprocess.DEVNULL, stdout=log,
                            stderr=log)
    try:
        while not _accepting(ctl):
            if proc.poll() is not None:
                raise run.BenchError("vmoduled exited with status %d" % proc.returncode)
            if time.monotonic() - t0 > 60:
                raise run.BenchError("vmoduled did not start within 60 s")
            time.sleep(0.002)
        started = time.monotonic() - t0
        rss = _status(proc.pid, "VmRSS")
        fds = len(os.listdir("/proc/%d/fd" % proc.pid))
        if not _banner(os.path.join(socks, "b%d.sock" % (n - 1))):
            raise run.BenchError("no banner from the last module")
        t1 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(30)
        stopped = time.monotonic() - t1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = len(os.listdir(socks))
    if rc != 0 or left:
        raise run.BenchError("exit status %d, %d socket files left" % (rc, left))
    return started, rss, fds, stopped


def bench_fleet_start(run, args):
    n = args.n
    binary = run.vmoduled_path()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="vmodule-bench.")
    socks = tempfile.mkdtemp(prefix="vmb-", dir=shm)
    try:
        cfg = {"state_dir": os.path.join(work, "state"), "log_level": "warn",
               "modules": [{"name": "b{n:05}", "dialect": "tencent", "count": n, "baud": 0,
                            "boot_ms": 0, "unix_listen": os.path.join(socks, "b{n}.sock")}]}
        cfg_path = os.path.join(work, "vmoduled.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        ctl = os.path.join(work, "state", "control.sock")
        figures = []
        with open(os.path.join(work, "vmoduled.log"), "ab") as log:
            for _ in ("fresh", "again"):
                figures.append(_one_start(run, binary, cfg_path, ctl, socks, n, log))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(socks, ignore_errors=True)
    (s1, rss1, fds, e1), (s2, rss2, _, e2) = figures
    if max(s1, s2) > T_START_S:
        args.over_target = True
    return ("bench fleet_start: %d unix-socket modules started in %.2f s (state dirs made) / "
            "%.2f s (found) (target < %.1f s), RSS %.0f MiB (%.1f KiB per module), %d fds, "
            "SIGTERM to exit %.2f / %.2f s; sockets on %s" % (
                n, s1, s2, T_START_S, max(rss1, rss2) / 1024, max(rss1, rss2) / n, fds, e1, e2,
                shm or "the temp dir's file system"))


def register(run):
    """Registers `fleet_start` with run.py (run: run.py's module object)."""
    run.plugin("fleet_start", lambda args: bench_fleet_start(run, args), default_n=DEFAULT_N)


def main():
    sys.path.insert(0, HERE)
    import run  # pylint: disable=import-outside-toplevel
    register(run)
    if not any(a in run.BENCHES for a in sys.argv[1:]):
        sys.argv.insert(1, "fleet_start")
    return run.main()


if __name__ == "__main__":
    sys.exit(main())
