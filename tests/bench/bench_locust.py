#!/usr/bin/python3
"""bench_locust.py - the Locust fleet driver (tests/fleet/) against N tencent
modules in ONE vmoduled, for run.py (`make bench`; not part of `make test`).

locust: one local mosquitto (plain TCP, `max_connections -1`) and one
  vmoduled with N tencent modules (default 1000; baud 0, boot 0, serial
  over tcp_listen on N consecutive loopback ports, the access point of the
  example scenario), then a headless Locust master and --locust-workers
  workers (default 2) on loopback, N users, spawn rate --locust-rate
  (default 200/s), playing tests/fleet/scenarios/tencent_telemetry.json
  (sync, ATE0, TCDEVINFOSET, CWJAP, TCMQTTCONN, TCMQTTSUB, then
  TCMQTTPUB every 10 s) for --locust-passes loop passes (default 3), then
  the teardown (TCMQTTDISCONN). Printed: Locust's per-command figures from
  its --csv report (requests, failures, median, p95, p99 in ms; Locust
  rounds them to whole ms), the wall time, and the daemon's and broker's CPU
  over the run. No target: the figures are what a firmware team would see
  from a fleet this size; a failure is reported and fails the bench.

The bench raises its own RLIMIT_NOFILE soft limit to the hard limit (the
daemon, the broker and Locust inherit it), as bench_fleet.py does.

Wiring: run.py calls register(<its own module object>), or run this file:
/usr/bin/python3 tests/bench/bench_locust.py [-n N] [--locust-workers K] ..."""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fleet"))
import bench_fleet  # noqa: E402
import fleetrun  # noqa: E402

DEFAULT_N = 1000
SCENARIO = os.path.join(fleetrun.SCENARIOS, "tencent_telemetry.json")


def bench_locust(run, args):
    n = args.n
    bench_fleet.preflight(run, n)
    with tempfile.TemporaryDirectory(prefix="vmodule-bench-locust.") as work:
        broker = bench_fleet.FleetBroker(run, work, "tcp", n)
        daemon = lr = None
        try:
            base = fleetrun.port_block(n)
            daemon = bench_fleet.FleetDaemon(run, work, n, "tcp", broker.port,
                                             fleetrun.modules(work, n, base, broker.port))
            daemon.wait_started(60)
            cpu = bench_fleet.CpuMeter(daemon.meter, broker.meter)
            t0 = time.monotonic()
            # a pass is a publish and a 10 s think: passes * 10 s, plus the
            # spawn and the setup; the run-time is only a safety net
            run_time = int(args.locust_passes * 10 + n / args.locust_rate + 120)
            lr = fleetrun.LocustRun(work, SCENARIO, "tcp:127.0.0.1:%d" % base, n,
                                    workers=args.locust_workers, spawn_rate=args.locust_rate,
                                    run_time="%ds" % run_time,
                                    extra=["--vm-iterations", str(args.locust_passes)])
            status = lr.wait(run_time + 60)
            wall = time.monotonic() - t0
            d_cpu, b_cpu = cpu.pct()
            if status is None:
                raise run.BenchError("locust did not finish:\n" + lr.log_text()[-3000:])
            try:
                stats = lr.stats()
            except OSError as e:
                raise run.BenchError("no locust report (%s):\n%s" % (e, lr.log_text()[-3000:]))
            connected = daemon.log_text().count("] mqtt: connected to")
        finally:
            if lr:
                lr.stop()
            if daemon:
                daemon.terminate()
                daemon.kill()
            broker.stop()
    for line in fleetrun.summary(stats):
        print("locust: " + line, flush=True)
    requests = sum(int(r["Request Count"]) for r in stats.values())
    failures = sum(int(r["Failure Count"]) for r in stats.values())
    pub = stats.get(("AT", "AT+TCMQTTPUB"), {})
    conn = stats.get(("URC", "+TCMQTTCONN"), {})
    if failures or status != 0 or connected != n:
        raise run.BenchError(f"{failures} failures in {requests} requests, {connected} of {n} "
                             f"modules connected, locust exit status {status}")
    return (f"bench locust: N={n} users on {args.locust_workers} workers, {requests} requests, "
            f"0 failures, {wall:.1f} s; AT+TCMQTTPUB median {pub.get('50%')} ms p95 {pub.get('95%')} "
            f"p99 {pub.get('99%')}; +TCMQTTCONN median {conn.get('50%')} ms p99 {conn.get('99%')}; "
            f"daemon {d_cpu:.1f}% / broker {b_cpu:.1f}% of a core")


def add_options(ap):
    ap.add_argument("--locust-workers", type=int, default=2,
                    help="locust: worker processes (default 2)")
    ap.add_argument("--locust-rate", type=float, default=200.0,
                    help="locust: users spawned per second (default 200)")
    ap.add_argument("--locust-passes", type=int, default=3,
                    help="locust: loop passes (TCMQTTPUB + 10 s) per user (default 3)")


def register(run):
    """Registers `locust` with run.py (run: run.py's module object)."""
    run.plugin("locust", lambda args: bench_locust(run, args), add_options, DEFAULT_N)


def main():
    sys.path.insert(0, HERE)
    import run  # pylint: disable=import-outside-toplevel
    register(run)
    if not any(a in run.BENCHES for a in sys.argv[1:]):  # default: only ours
        sys.argv.insert(1, "locust")
    return run.main()


if __name__ == "__main__":
    sys.exit(main())
