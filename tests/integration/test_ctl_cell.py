"""test_ctl_cell.py - the `cell MODULE ...` faults of the me3630 dialect
through the control socket, against a real mosquitto (issue 12; me_cell.c,
me_data.c, me_cloud.c; w800-me3630-at.md §7-§8, me3630-data.md).

deregister: registration falls to 2 (searching) with the 27.007 URCs, then
the data call ends with its URC and the CLOUD* session with it; AT+ZPAS?
says No Service, dialling fails with +CME ERROR: 30. register: camped
again; nothing redials by itself, the MCU dials and connects again (a
reconnect in `status`). signal N: the rssi of AT+CSQ. sim-out: registration
0, the call lost, +CME ERROR: 10 for +CPIN? and the SIM reads; sim-in: back
(locked again with a PIN). datacall-drop: the network ends the call (the URC
of each command that dialled it), the session goes, registration stays. The
"cell" and "mqtt" members of `status` and the event log follow; wrong words
and verbs of the other family are refused with nothing on the line."""

import json

import pytest

from conftest import wait_for
from test_ctl_wifi import events, fault, fire, status
from test_me3630_cloud import OK, TOPIC, attach, auth, cmd, me_module, publish_urc, state, \
    subscribe
from test_me3630_data import ECM_DOWN, ECM_UP, ZIP_LOST, ZIP_UP, cme, zipcall

NO_SERVICE = b'\r\n+ZPAS: "No Service","CAMPED"\r\n' + OK


def start(make_daemon, tmp_path, broker_port=1, **kw):
    daemon = make_daemon([me_module(tmp_path, broker_port, **kw)], log_level="debug")
    return daemon, daemon.port()


def cloud_up(port):
    """Dialled with AT+ZIPCALL, authenticated, connected, subscribed."""
    zipcall(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    subscribe(port, (TOPIC, 0))


def broker_saw_close(broker):
    wait_for(lambda: "closed its connection" in broker.log_text(), 5,
             "the broker to see the module's link close")


def cell(daemon):
    return status(daemon, "me0")["cell"]


# ------------------------------------------------------------------ deregister / register


def test_deregister_loses_call_and_cloud_register_lets_the_mcu_redial(
        make_daemon, tmp_path, mosquitto, mqtt_peers):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    cmd(port, "AT+CREG=1", OK)
    cmd(port, "AT+CEREG=1", OK)
    cloud_up(port)
    st = status(daemon, "me0")
    assert st["cell"] == {"registered": True, "stat": 1, "csq": 24, "sim": "ready",
                          "datacall": "up", "network": "up"}
    assert st["mqtt"] == {"state": "connected", "broker": "127.0.0.1:%d" % broker.port,
                          "subscriptions": [TOPIC]}
    assert st["counters"]["reconnects"] == 0

    fire(daemon, "me0", "cell", "deregister")
    port.expect(b"\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n" + ZIP_LOST)
    broker_saw_close(broker)
    cmd(port, "AT+CREG?", b"\r\n+CREG: 1,2\r\n" + OK)
    cmd(port, "AT+CEREG?", b"\r\n+CEREG: 1,2\r\n" + OK)
    cmd(port, "AT+CGREG?", b"\r\n+CGREG: 0,2\r\n" + OK)
    cmd(port, "AT+ZPAS?", NO_SERVICE)
    cmd(port, "AT+COPS?", b"\r\n+COPS: 0\r\n" + OK)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 0\r\n" + OK)
    cmd(port, "AT+ZIPCALL?", b"\r\n+ZIPCALL: 0\r\n" + OK)
    state(port, 0)
    cmd(port, "AT+CLOUDPUB=%s,0,hi" % TOPIC, cme(3))
    cmd(port, "AT+ZIPCALL=1", cme(30))
    cmd(port, "AT+ZECMCALL=1", cme(30))
    st = status(daemon, "me0")
    assert st["cell"] == {"registered": False, "stat": 2, "csq": 24, "sim": "ready",
                          "datacall": "down", "network": "gone"}
    assert st["mqtt"] == {"state": "disconnected", "broker": None, "subscriptions": []}

    fire(daemon, "me0", "cell", "register")
    port.expect(b"\r\n+CREG: 1\r\n\r\n+CEREG: 1\r\n")
    port.expect_silence(0.3)  # no redial, no reconnect: the MCU does that
    cmd(port, "AT+ZPAS?", b'\r\n+ZPAS: "LTE","CS_PS","FDD"\r\n' + OK)
    zipcall(port)
    cmd(port, "AT+CLOUDCONN", OK)  # the authentication outlived the call
    subscribe(port, (TOPIC, 0))
    mqtt_peers(broker.port).publish(TOPIC, b"back again", qos=0)
    port.expect(publish_urc(TOPIC, b"back again"))
    st = status(daemon, "me0")
    assert st["cell"]["registered"] and st["cell"]["datacall"] == "up"
    assert st["mqtt"]["state"] == "connected"
    assert st["counters"]["reconnects"] == 1

    states = [(e["what"], e["state"]) for e in events(daemon, "me0") if e["kind"] == "state"]
    i = states.index(("registration", "searching"), 2)  # the boot's came first
    assert states[i:i + 3] == [("registration", "searching"), ("datacall", "down"),
                               ("mqtt", "disconnected")]
    assert ("registration", "registered") in states[i:]


def test_deregistered_network_outlives_a_reset(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path)
    fire(daemon, "me0", "cell", "deregister")
    cmd(port, "AT+CFUN=1,1", OK)
    port.expect(b"\r\nready\r\n")
    cmd(port, "AT+CREG=1", OK)
    cmd(port, "AT+CREG?", b"\r\n+CREG: 1,2\r\n" + OK)  # searching, and it stays so
    fire(daemon, "me0", "cell", "register")
    port.expect(b"\r\n+CREG: 1\r\n")
    cmd(port, "AT+CREG?", b"\r\n+CREG: 1,1\r\n" + OK)


def test_register_takes_the_registration_time(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path, network={"registration_ms": 500})
    wait_for(lambda: cell(daemon)["registered"], 5, "the first registration")
    cmd(port, "AT+CREG=1", OK)
    fire(daemon, "me0", "cell", "deregister")
    port.expect(b"\r\n+CREG: 2\r\n")
    fire(daemon, "me0", "cell", "register")
    port.expect_silence(0.3)  # still camping: the registration takes 500 ms
    port.expect(b"\r\n+CREG: 1\r\n", 2)


# ------------------------------------------------------------------ signal


def test_signal_sets_the_csq_rssi(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path)
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 24,99\r\n" + OK)
    for n in (7, 0, 99, 31):
        fire(daemon, "me0", "cell", "signal", n)
        cmd(port, "AT+CSQ", b"\r\n+CSQ: %d,99\r\n" % n + OK)
    assert cell(daemon)["csq"] == 31
    fire(daemon, "me0", "power", "cycle")  # the radio world, not RAM
    port.expect(b"\r\nready\r\n")
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 31,99\r\n" + OK)
    for bad in (("32",), ("98",), ("-1",), ("x",), ()):
        assert fault(daemon, "me0", "cell", "signal", *bad) == {
            "ok": False, "error": "cell signal: N must be 0..31 or 99"}
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 31,99\r\n" + OK)


# ------------------------------------------------------------------ SIM


def test_sim_out_and_in(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    cmd(port, "AT+CREG=1", OK)
    attach(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    fire(daemon, "me0", "cell", "sim-out")
    port.expect(b"\r\n+CREG: 0\r\n" + ECM_DOWN)
    broker_saw_close(broker)
    cmd(port, "AT+CPIN?", cme(10))
    cmd(port, "AT+CIMI", cme(10))
    cmd(port, "AT+ZGETICCID", cme(10))
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 99,99\r\n" + OK)
    cmd(port, "AT+CREG?", b"\r\n+CREG: 1,0\r\n" + OK)
    cmd(port, "AT+ZPAS?", NO_SERVICE)
    cmd(port, "AT^SYSINFO", b"\r\n^SYSINFO: 0,0,0,0,255\r\n" + OK)
    cmd(port, "AT+ZECMCALL=1", cme(10))
    cmd(port, "AT+CMEE=2", OK)
    cmd(port, "AT+CPIN?", b"\r\n+CME ERROR: SIM not inserted\r\n")
    state(port, 0)
    assert cell(daemon) == {"registered": False, "stat": 0, "csq": 99, "sim": "absent",
                            "datacall": "down", "network": "up"}
    assert fault(daemon, "me0", "cell", "sim-out") == {
        "ok": False, "error": "cell sim-out: there is no SIM in the module"}

    fire(daemon, "me0", "cell", "sim-in")
    port.expect(b"\r\n+CREG: 2\r\n\r\n+CREG: 1\r\n")
    cmd(port, "AT+CPIN?", b"\r\n+CPIN: READY\r\n" + OK)
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 24,99\r\n" + OK)
    attach(port)
    cmd(port, "AT+CLOUDCONN", OK)
    assert status(daemon, "me0")["counters"]["reconnects"] == 1
    assert fault(daemon, "me0", "cell", "sim-in") == {
        "ok": False, "error": "cell sim-in: a SIM is already in the module"}


def test_sim_in_is_locked_again_by_its_pin(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path, sim={"pin": "1234"})
    cmd(port, "AT+CPIN=1234", OK)
    cmd(port, "AT+CREG=1", OK)
    wait_for(lambda: cell(daemon)["registered"], 5, "registration after the PIN")
    fire(daemon, "me0", "cell", "sim-out")
    port.expect(b"\r\n+CREG: 0\r\n")
    fire(daemon, "me0", "cell", "sim-in")
    cmd(port, "AT+CPIN?", b"\r\n+CPIN: SIM PIN\r\n" + OK)  # no registration before the PIN
    assert cell(daemon)["sim"] == "pin"
    cmd(port, "AT+CPIN=1234", OK + b"\r\n+CREG: 2\r\n\r\n+CREG: 1\r\n")


def test_sim_in_a_module_configured_without_one(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path, sim={"present": False})
    cmd(port, "AT+CPIN?", cme(10))
    fire(daemon, "me0", "cell", "sim-in")
    wait_for(lambda: cell(daemon)["registered"], 5, "registration with the new SIM")
    cmd(port, "AT+CPIN?", b"\r\n+CPIN: READY\r\n" + OK)


# ------------------------------------------------------------------ datacall-drop


@pytest.mark.parametrize("dial,lost", [("zip", ZIP_LOST), ("ecm", ECM_DOWN),
                                       ("both", ZIP_LOST + ECM_DOWN)])
def test_datacall_drop_loses_the_session_keeps_registration(
        make_daemon, tmp_path, mosquitto, dial, lost):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    if dial in ("zip", "both"):
        zipcall(port)
    if dial in ("ecm", "both"):
        attach(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    fire(daemon, "me0", "cell", "datacall-drop")
    port.expect(lost)
    broker_saw_close(broker)
    state(port, 0)
    cmd(port, "AT+CREG?", b"\r\n+CREG: 0,1\r\n" + OK)
    cmd(port, "AT+ZIPCALL?", b"\r\n+ZIPCALL: 0\r\n" + OK)
    cmd(port, "AT+CGACT?", b"\r\n+CGACT: 1,0\r\n" + OK)
    assert cell(daemon)["datacall"] == "down" and cell(daemon)["registered"]
    assert fault(daemon, "me0", "cell", "datacall-drop") == {
        "ok": False, "error": "cell datacall-drop: no data call is up"}
    zipcall(port)
    cmd(port, "AT+CLOUDCONN", OK)


def test_datacall_drop_with_the_conn_lost_urc_knob(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port,
                         aliyun={"conn_lost_urc": "+CLOUDSTATE: 0"})
    zipcall(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    fire(daemon, "me0", "cell", "datacall-drop")
    port.expect(ZIP_LOST + b"\r\n+CLOUDSTATE: 0\r\n")


def test_datacall_drop_while_dialling_fails_the_dial(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path, network={"call_ms": 2000})
    port.send("AT+ZECMCALL=1\r")
    wait_for(lambda: cell(daemon)["datacall"] == "connecting", 5, "the dial to start")
    fire(daemon, "me0", "cell", "datacall-drop")
    port.expect(cme(30))


# ------------------------------------------------------------------ refusals and schedule


def test_bad_words_and_other_family_are_refused(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path)
    usage = "cell: expected deregister, register, signal N, sim-out, sim-in or datacall-drop"
    for words, error in [(("cell",), usage), (("cell", "reboot"), usage),
                         (("cell", "sim-out", "now"), usage),
                         (("cell", "register"), "cell register: the module is not deregistered"),
                         (("wifi", "down"), "wifi: not a fault of the me3630 dialect")]:
        assert fault(daemon, "me0", *words) == {"ok": False, "error": error}
    fire(daemon, "me0", "cell", "deregister")
    assert fault(daemon, "me0", "cell", "deregister") == {
        "ok": False, "error": "cell deregister: the network is already gone"}
    port.expect_nothing_pending()  # AT+CREG=0: a deregistration says nothing
    assert status(daemon, "me0")["counters"]["faults_fired"] == 1


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_cell_refused_on_the_esp_family(make_daemon, tmp_path, dialect):
    from test_ctl_wifi import esp_module
    daemon = make_daemon([esp_module(tmp_path, dialect)])
    daemon.port()
    assert fault(daemon, "m0", "cell", "sim-out") == {
        "ok": False, "error": "cell: not a fault of the %s dialect" % dialect}
    assert status(daemon, "m0")["wifi"]["access_point"] == "up"  # its own status hook


def test_scheduled_datacall_drop_after_the_dial(make_daemon, tmp_path):
    m = me_module(tmp_path, 1)
    m["faults"] = [{"after": r"\+ZIPCALL: 1,", "do": "cell datacall-drop"}]
    daemon = make_daemon([m])
    port = daemon.port()
    zipcall(port)
    port.expect(ZIP_LOST)
    assert [e["do"] for e in events(daemon, "me0") if e["kind"] == "fault"] == [
        "cell datacall-drop"]


def test_scheduled_cell_fault_checked_at_load(run_vmoduled, tmp_path):
    m = me_module(tmp_path, 1)
    m["faults"] = [{"at_ms": 10, "do": "cell signal 40"}]
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "s"), "modules": [m]}))
    cp = run_vmoduled(["-c", str(cfg)])
    assert cp.returncode != 0
    assert "modules[0].faults[0].do: cell signal: N must be 0..31 or 99" in cp.stderr, cp.stderr
