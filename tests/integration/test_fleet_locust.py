"""test_fleet_locust.py - the Locust fleet driver (tests/fleet/) against a real
vmoduled and a real mosquitto.

Six tencent modules (unpaced, serial over tcp_listen on six consecutive
loopback ports) are played by a Locust master and two workers (real
processes, master on a free loopback port), headless, three loop passes per
user with no think time: the --csv report must hold every command and URC of
the example scenario with the right counts and no failure, the two workers
must have taken disjoint halves of the modules, and each module must have
connected once to the broker under its own device name. A scenario that
expects a wrong reply must count one failure per pass and no success for
that row. One module is also reached through its unix socket endpoint
(unix_listen) by a single-process run."""

import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fleet"))
import fleetrun  # noqa: E402

SCENARIO = os.path.join(fleetrun.SCENARIOS, "tencent_telemetry.json")
N, WORKERS, PASSES = 6, 2, 3
PID = "FLEETLOCST"
FAST = ["--vm-iterations", str(PASSES), "--vm-think-scale", "0"]


def fleet(make_daemon, mosquitto, tmp_path, n=N, dialect="tencent"):
    broker = mosquitto()
    base = fleetrun.port_block(n)
    daemon = make_daemon(fleetrun.modules(str(tmp_path), n, base, broker.port, dialect))
    return broker, daemon, base


def run(tmp_path, target, scenario=SCENARIO, users=N, workers=WORKERS, timeout=40, extra=(),
        worker_env=None):
    work = tmp_path / ("locust-%d" % len(list(tmp_path.glob("locust-*"))))
    work.mkdir()
    lr = fleetrun.LocustRun(str(work), scenario, target, users, workers=workers, run_time="35s",
                            extra=FAST + list(extra), worker_env=worker_env)
    status = lr.wait(timeout)
    assert status is not None, "locust did not finish within %d s; master log:\n%s" % (
        timeout, lr.log_text()[-4000:])
    return lr, status


def per_user_counts(passes=PASSES):
    """(type, name) -> requests each user makes in the example scenario."""
    once = [("LINK", "connect"), ("AT", "AT"), ("AT", "ATE0"), ("AT", "AT+TCDEVINFOSET"),
            ("URC", "+TCDEVINFOSET"), ("AT", "AT+CWJAP"), ("URC", "WIFI GOT IP"),
            ("AT", "AT+TCMQTTCONN"), ("URC", "+TCMQTTCONN"), ("AT", "AT+TCMQTTSUB"),
            ("URC", "+TCMQTTSUB"), ("AT", "AT+TCMQTTDISCONN")]
    counts = {k: 1 for k in once}
    counts[("AT", "AT+TCMQTTPUB")] = passes
    counts[("URC", "+TCMQTTPUB")] = passes
    return counts


def test_master_and_two_workers_report_every_command(make_daemon, mosquitto, tmp_path):
    broker, daemon, base = fleet(make_daemon, mosquitto, tmp_path)
    lr, status = run(tmp_path, "tcp:127.0.0.1:%d" % base)
    stats = lr.stats()
    want = {k: v * N for k, v in per_user_counts().items()}
    got = {k: int(r["Request Count"]) for k, r in stats.items()}
    assert got == want, "\n".join(fleetrun.summary(stats)) + "\n" + lr.log_text()[-3000:]
    failures = {k: r["Failure Count"] for k, r in stats.items() if r["Failure Count"] != "0"}
    assert not failures, failures
    assert status == 0, lr.log_text()[-3000:]
    assert os.path.getsize(lr.html) > 0

    # each worker took its own half: worker w, user s -> module 3w + s (the
    # master numbers the workers in the order they connect)
    taken = {}
    for proc in range(WORKERS):
        found = re.findall(r"vmfleet: worker (\d+) user \d+ -> module (\d+) at ",
                           lr.log_text("worker%d" % proc))
        assert len({w for w, _ in found}) == 1, found  # one index per process
        for w, n in found:
            taken.setdefault(int(w), []).append(int(n))
    per = N // WORKERS
    assert {w: sorted(ns) for w, ns in taken.items()} == {
        w: list(range(w * per, (w + 1) * per)) for w in range(WORKERS)}, taken
    # ... and the broker saw each module once, as its own device
    log = broker.log_text()
    for n in range(N):
        client = "%sdev%04d" % (PID, n)
        assert len(re.findall(r"New client connected from \S+ as %s " % client, log)) == 1, client
        assert "[tc%d] mqtt: connected to" % n in daemon.log_text(), n


def test_pinned_worker_index_and_box_local_ports(make_daemon, mosquitto, tmp_path):
    """A worker with VMFLEET_WORKER_INDEX=1 on a "box" of its own (--vm-box-local):
    its users play modules 3, 4, 5 (device names dev0003..) on the box's
    ports base + 0, 1, 2."""
    broker, daemon, base = fleet(make_daemon, mosquitto, tmp_path, n=3)
    lr, status = run(tmp_path, "tcp:127.0.0.1:%d" % base, users=3, workers=1,
                     extra=["--vm-per-worker", "3", "--vm-box-local"],
                     worker_env=[{"VMFLEET_WORKER_INDEX": "1"}])
    assert status == 0, lr.log_text()[-3000:]
    stats = lr.stats()
    assert {k: int(r["Request Count"]) for k, r in stats.items()} == {
        k: 3 * v for k, v in per_user_counts().items()}, "\n".join(fleetrun.summary(stats))
    found = sorted(re.findall(r"worker 1 user \d+ -> module (\d+) at tcp:127.0.0.1:(\d+)",
                              lr.log_text("worker0")))
    assert found == [(str(3 + s), str(base + s)) for s in range(3)], found
    for n in range(3, 6):
        assert len(re.findall(r"New client connected from \S+ as %sdev%04d " % (PID, n),
                              broker.log_text())) == 1, n


OTHER_DIALECTS = {
    # scenario, requests of one user with PASSES loop passes, the module's log line once connected
    "w800": ("w800_telemetry.json", {
        ("LINK", "connect"): 1, ("AT", "AT"): 1, ("AT", "ATE0"): 1, ("AT", "AT+CWMODE"): 1,
        ("AT", "AT+CWJAP"): 1, ("URC", "WIFI GOT IP"): 1, ("AT", "AT+MQTTUSERCFG"): 1,
        ("AT", "AT+MQTTCONN"): 1, ("URC", "+MQTTCONNECTED"): 1, ("AT", "AT+MQTTSUB"): 1,
        ("AT", "AT+MQTTPUB"): PASSES, ("AT", "AT+MQTTCLEAN"): 1}, "w800-%04d"),
    "me3630": ("me3630_telemetry.json", {
        ("LINK", "connect"): 1, ("AT", "AT"): 1, ("AT", "ATE0"): 1, ("AT", "AT+CPIN?"): 1,
        ("AT", "AT+ZPAS?"): 1, ("AT", "AT+ZECMCALL"): 1, ("AT", "AT+CLOUDAUTH"): 1,
        ("URC", "+ALIAUTH"): 1, ("AT", "AT+CLOUDCONN"): 1, ("AT", "AT+CLOUDSUB"): 1,
        ("URC", "+CLOUDSUBACK"): 1, ("AT", "AT+CLOUDPUB"): PASSES, ("AT", "AT+CLOUDDISCONN"): 1},
        "tE5jVn6MWfi.dev%04d"),
}


@pytest.mark.parametrize("dialect", sorted(OTHER_DIALECTS))
def test_w800_and_me3630_scenarios(make_daemon, mosquitto, tmp_path, dialect):
    """The other example scenarios, one process, two modules: every request
    succeeds and each module connects once under its own client id."""
    scenario, counts, client = OTHER_DIALECTS[dialect]
    broker, daemon, base = fleet(make_daemon, mosquitto, tmp_path, n=2, dialect=dialect)
    lr, status = run(tmp_path, "tcp:127.0.0.1:%d" % base, os.path.join(fleetrun.SCENARIOS, scenario),
                     users=2, workers=0, extra=["--vm-var", "broker_port=%d" % broker.port])
    stats = lr.stats()
    got = {k: (int(r["Request Count"]), int(r["Failure Count"])) for k, r in stats.items()}
    assert got == {k: (2 * v, 0) for k, v in counts.items()}, \
        "\n".join(fleetrun.summary(stats)) + "\n" + lr.log_text()[-3000:]
    assert status == 0
    for n in range(2):
        assert len(re.findall(r"New client connected from \S+ as %s[ |]" % re.escape(client % n),
                              broker.log_text())) == 1, (client % n, broker.log_text()[-2000:])


DATA_ENTRY = {
    # scenario, its loop: one data-entry publish at QoS 1, topic and payload seen at the broker
    "tencent": ("tencent_telemetry.json", [
        {"at": "AT+TCMQTTPUBL=\"${pid}/${dn}/data\",1,${data_len}", "data": "{\"seq\":${seq}}",
         "data_eol": "\r\n", "reply": ["+TCMQTTPUBL:OK"]}],
        "AT+TCMQTTPUBL", PID + "/dev0000/data", b'{"seq":%d}'),
    "w800": ("w800_telemetry.json", [
        {"at": "AT+MQTTPUBRAW=0,\"${client}/data\",${data_len},1,0", "data": "seq ${seq}",
         "reply": ["+MQTTPUB:OK"]}],
        "AT+MQTTPUBRAW", "w800-0000/data", b"seq %d"),
}


@pytest.mark.parametrize("dialect", sorted(DATA_ENTRY))
def test_data_entry_publish(make_daemon, mosquitto, mqtt_peers, tmp_path, dialect):
    """A data step: the prompt lines (tencent "OK" ">" CR LF, w800 "OK" and a
    ">" with no line end), then the data, then the result: one request per
    pass, and the broker gets each payload."""
    scenario, loop, name, topic, payload = DATA_ENTRY[dialect]
    broker, daemon, base = fleet(make_daemon, mosquitto, tmp_path, n=1, dialect=dialect)
    peer = mqtt_peers(broker.port, topic)
    with open(os.path.join(fleetrun.SCENARIOS, scenario)) as f:
        doc = json.load(f)
    doc["loop"] = loop
    path = tmp_path / "publ.json"
    path.write_text(json.dumps(doc))
    lr, status = run(tmp_path, "tcp:127.0.0.1:%d" % base, str(path), users=1, workers=0,
                     extra=["--vm-var", "broker_port=%d" % broker.port])
    row = lr.stats()[("AT", name)]
    assert (row["Request Count"], row["Failure Count"]) == (str(PASSES), "0"), \
        "\n".join(fleetrun.summary(lr.stats()))
    assert status == 0
    assert peer.wait_msgs(PASSES) == [(topic, payload % i) for i in range(PASSES)]


def test_wrong_expected_reply_counts_failures(make_daemon, mosquitto, tmp_path):
    """The loop expects +TCMQTTPUB:FAIL: the module's +TCMQTTPUB:OK fails
    that request at once (same URC prefix, no timeout), once per pass."""
    broker, daemon, base = fleet(make_daemon, mosquitto, tmp_path, n=2)
    with open(SCENARIO) as f:
        doc = json.load(f)
    doc["loop"][1]["urc"] = "+TCMQTTPUB:FAIL"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    lr, status = run(tmp_path, "tcp:127.0.0.1:%d" % base, str(bad), users=2, workers=0, timeout=30)
    stats = lr.stats()
    row = stats[("URC", "+TCMQTTPUB")]
    assert (row["Request Count"], row["Failure Count"]) == (str(2 * PASSES), str(2 * PASSES)), \
        "\n".join(fleetrun.summary(stats))
    assert stats[("AT", "AT+TCMQTTPUB")]["Failure Count"] == "0"
    with open(lr.csv_prefix + "_failures.csv") as f:
        failures = f.read()
    assert "got '+TCMQTTPUB:OK', expected '+TCMQTTPUB:FAIL'" in failures, failures
    assert status != 0  # Locust's exit status on failures


def test_unix_socket_target(make_daemon, mosquitto, tmp_path):
    """unix:/path/tc{n}.sock against the module's own unix_listen endpoint."""
    broker = mosquitto()
    sock = tmp_path / "tc0.sock"
    mods = fleetrun.modules(str(tmp_path), 1, fleetrun.port_block(1), broker.port, "tencent")
    mods[0]["unix_listen"] = str(sock)
    make_daemon(mods)
    lr, status = run(tmp_path, "unix:%s" % (tmp_path / "tc{n}.sock"), users=1, workers=0,
                     timeout=30)
    stats = lr.stats()
    got = {k: int(r["Request Count"]) for k, r in stats.items()}
    assert got == per_user_counts(), "\n".join(fleetrun.summary(stats))
    assert status == 0, lr.log_text()[-3000:]
    assert "-> module 0 at unix:%s" % sock in lr.log_text()


@pytest.mark.parametrize("target", ["tcp:127.0.0.1", "udp:1.2.3.4:5", "unix:/run/x.sock"])
def test_bad_target_is_refused_at_start(tmp_path, target):
    lr, status = run(tmp_path, target, users=1, workers=0, timeout=20)
    assert status == 2
    assert "tcp:HOST:BASEPORT" in lr.log_text() or "{n}" in lr.log_text(), lr.log_text()[-2000:]


@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(lop=[]), "unknown key lop"),
    (lambda d: d["loop"].insert(0, {"at": "AT", "urc": "X"}), "a step has exactly one of"),
    (lambda d: d["setup"].append({"urc": {"regex": "("}}), "bad regex"),
    (lambda d: d["loop"].append({"think": [3, 1]}), "think: seconds, or [min, max]"),
])
def test_bad_scenario_is_refused_at_start(tmp_path, edit, message):
    with open(SCENARIO) as f:
        doc = json.load(f)
    edit(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    lr, status = run(tmp_path, "tcp:127.0.0.1:7000", str(bad), users=1, workers=0, timeout=20)
    assert status == 2
    assert message in lr.log_text(), lr.log_text()[-2000:]


def test_a_worker_without_users_does_not_hold_the_run(make_daemon, mosquitto, tmp_path):
    """Two workers, one user: the idle worker reports done at once, so the run
    ends after the user's passes, not at --run-time. (Two modules: the user
    plays module 0 or 1, as the worker that gets it has index 0 or 1.)"""
    broker, daemon, base = fleet(make_daemon, mosquitto, tmp_path, n=2)
    lr, status = run(tmp_path, "tcp:127.0.0.1:%d" % base, users=1, workers=2, timeout=20)
    assert status == 0, lr.log_text()[-3000:]
    assert int(lr.stats()[("AT", "AT+TCMQTTPUB")]["Request Count"]) == PASSES
    assert "--run-time limit reached" not in lr.log_text()
