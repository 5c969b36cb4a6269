"""fleetrun.py - starts the Locust fleet driver (locustfile.py) as real
processes and reads its reports; shared by tests/integration/test_fleet_locust.py
and tests/bench/bench_locust.py.

  port_block(n)            a base port with n free consecutive loopback ports
  modules(...)             n module configs of a dialect with tcp_listen on base + i
  LocustRun(...)           a master and k workers (or one process), headless,
                           --csv into a directory; wait() -> exit status
  read_stats(prefix)       the rows of <prefix>_stats.csv by (type, name)
  summary(stats)           per-command count, failures, median, p95, p99

Command line: `fleetrun.py config -n 1000 --base 7000 --broker-port 1883`
prints such a config (tests/fleet/README.md); `fleetrun.py summary PREFIX`
prints the summary of a --csv report."""

import csv
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOCUSTFILE = os.path.join(HERE, "locustfile.py")
SCENARIOS = os.path.join(HERE, "scenarios")
PYTHON = "/usr/bin/python3"


def locust_cmd():
    exe = shutil.which("locust") or "/usr/bin/locust"
    return [exe] if os.access(exe, os.X_OK) else [PYTHON, "-m", "locust"]


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_block(n, host="127.0.0.1", tries=50):
    """A base such that base .. base + n - 1 are all free now (bound and
    released one by one, below the ephemeral range the kernel hands out)."""
    for _ in range(tries):
        base = random.randrange(20000, 32000 - n)
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                socks.append(s)
                s.bind((host, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no %d consecutive free ports on %s" % (n, host))


WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "join_ms": 0}
PREFIX = {"tencent": "tc", "w800": "w8-", "me3630": "me"}


def dialect_settings(dialect, host, broker_port):
    """The dialect object the example scenarios need: the access point (no
    auto-join: the scenario's AT+CWJAP joins) and, for tencent and me3630,
    the broker over plain TCP (a w800 scenario names it in AT+MQTTCONN)."""
    if dialect == "tencent":
        return {"mqtt_transport": "tcp", "mqtt_host": host, "mqtt_port": broker_port, "wifi": WIFI}
    if dialect == "w800":
        return {"wifi": WIFI}
    return {"network": {"registration_ms": 0, "call_ms": 0},
            "aliyun": {"transport": "tcp", "mqtt_host": host, "mqtt_port": broker_port, "auth_ms": 0}}


def modules(workdir, n, base, broker_port, dialect="tencent", host="127.0.0.1", first=0,
            broker_host=None, **extra):
    """Module configs <prefix><first>.. (tc0, w8-0, me0 ...), unpaced, no boot
    delay, serial endpoint host:base + i, broker broker_host (default host)."""
    mods = []
    for i in range(n):
        name = "%s%d" % (PREFIX[dialect], first + i)
        m = {"name": name, "dialect": dialect,
             "pty_link": os.path.join(workdir, "tty-" + name),
             "tcp_listen": "%s:%d" % (host, base + i),
             "baud": 0, "boot_ms": 0,
             dialect: dialect_settings(dialect, broker_host or host, broker_port)}
        m.update(extra)
        mods.append(m)
    return mods


class LocustRun:
    """Headless Locust: one process (workers=0) or a master on a free
    loopback port plus `workers` worker processes. Logs go to
    <workdir>/locust-{master,worker<i>}.log; --csv to <workdir>/fleet."""

    def __init__(self, workdir, scenario, target, users, workers=0, spawn_rate=100,
                 run_time="60s", extra=(), worker_env=None):
        self.workdir = workdir
        self.csv_prefix = os.path.join(workdir, "fleet")
        self.html = os.path.join(workdir, "fleet.html")
        self.procs = []
        self.logs = []
        env = dict(os.environ)
        env.pop("VMFLEET_WORKER_INDEX", None)
        common = ["-f", LOCUSTFILE, "--vm-scenario", scenario, "--vm-target", target] + list(extra)
        head = ["--headless", "-u", str(users), "-r", str(spawn_rate), "--run-time", run_time,
                "--csv", self.csv_prefix, "--html", self.html, "--only-summary", "--stop-timeout", "10"]
        if workers:
            port = free_port()
            self._start("master", common + head + [
                "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--expect-workers", str(workers), "--expect-workers-max-wait", "30"], env)
            for i in range(workers):  # worker_env: extra environment of each worker
                wenv = dict(env, **(worker_env[i] if worker_env else {}))
                self._start("worker%d" % i, common + [
                    "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)], wenv)
        else:
            self._start("master", common + head, env)

    def _start(self, role, args, env):
        path = os.path.join(self.workdir, "locust-%s.log" % role)
        self.logs.append(path)
        with open(path, "wb") as log:
            self.procs.append(subprocess.Popen(locust_cmd() + args, stdin=subprocess.DEVNULL,
                                               stdout=log, stderr=log, env=env,
                                               start_new_session=True, cwd=self.workdir))

    def wait(self, timeout):
        """The master's exit status; the workers follow it. Kills everything
        left at the timeout (and returns None)."""
        deadline = time.monotonic() + timeout
        status = None
        try:
            status = self.procs[0].wait(max(0.1, deadline - time.monotonic()))
            for p in self.procs[1:]:
                p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        self.stop()
        return status

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()

    def log_text(self, role="master"):
        with open(os.path.join(self.workdir, "locust-%s.log" % role), errors="replace") as f:
            return f.read()

    def stats(self):
        return read_stats(self.csv_prefix)


def read_stats(prefix):
    """{(type, name): row dict} of <prefix>_stats.csv, the Aggregated row left out."""
    with open(prefix + "_stats.csv", newline="") as f:
        return {(r["Type"], r["Name"]): r for r in csv.DictReader(f) if r["Name"] != "Aggregated"}


def summary(stats):
    """Lines: type, name, requests, failures, median, p95, p99 (ms)."""
    out = ["%-4s %-18s %8s %8s %8s %8s %8s" % ("type", "name", "requests", "failures", "median",
                                               "p95", "p99")]
    for (kind, name), r in sorted(stats.items()):
        out.append("%-4s %-18s %8s %8s %8s %8s %8s" % (kind, name, r["Request Count"], r["Failure Count"],
                                                       r["50%"], r["95%"], r["99%"]))
    return out


def main(argv):
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="fleetrun.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    cfg = sub.add_parser("config", help="print a vmoduled config of N modules")
    cfg.add_argument("-n", type=int, required=True, help="modules")
    cfg.add_argument("--dialect", choices=sorted(PREFIX), default="tencent")
    cfg.add_argument("--first", type=int, default=0, help="index of the first (names tc<first>...)")
    cfg.add_argument("--base", type=int, required=True, help="tcp_listen port of the first module")
    cfg.add_argument("--host", default="127.0.0.1", help="tcp_listen address")
    cfg.add_argument("--broker-host", default=None, help="the broker (default: --host)")
    cfg.add_argument("--broker-port", type=int, default=1883)
    cfg.add_argument("--state-dir", default="/var/lib/vmodule")
    cfg.add_argument("--tty-dir", default="/run/vmodule", help="where the PTY links go")
    summ = sub.add_parser("summary", help="per-command figures of a --csv report")
    summ.add_argument("prefix", help="the --csv prefix")
    args = ap.parse_args(argv)
    if args.cmd == "summary":
        print("\n".join(summary(read_stats(args.prefix))))
        return 0
    mods = modules(args.tty_dir, args.n, args.base, args.broker_port, args.dialect, args.host, args.first,
                   args.broker_host)
    json.dump({"state_dir": args.state_dir, "modules": mods}, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
