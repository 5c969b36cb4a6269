"""test_ctl_wifi.py - the `wifi MODULE down|up` fault of the ESP family
(tencent and w800) through the control socket, against a real mosquitto
(issue 12; esp_wifi.c; w800-me3630-at.md §3, §5.5; tencent-at.md §4).

`down` takes every configured access point out of range: the joined station
prints WIFI DISCONNECT, the dialect's MQTT link goes as on the module
(tencent: +TCMQTTDISCON,-103 then its reconnect cycle, or -103 twice with
reconnect 0; w800: +MQTTDISCONNECTED:0, once per failed automatic attempt),
AT+CWJAP fails with +CWJAP:3 and AT+CWJAP? reports No AP. `up` lets the
station, which retries its AP as esp-at does, rejoin by itself (WIFI
CONNECTED, WIFI GOT IP) and the MQTT session come back (re-subscribed). The
`status` members "wifi" and "mqtt", the reconnect counter and the event log
follow; a wrong word or a verb of the other family is refused."""

import json
import re

import pytest

from conftest import module_config
from test_foundation import CIPSTA_NONE, CWJAP_LAB, err, xchg
from test_tencent_mqtt import TOPIC, connect as tc_connect, rcvpub, start as tc_start, \
    state as tc_state, subscribe as tc_subscribe
from test_w800_mqtt import skip_discs
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, OK, connect as w8_connect, connected_urc, ok, start_w800, subrecv, w8_peers)

DOWN = b"WIFI DISCONNECT\r\n"
UP = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
NO_AP = b"No AP\r\n" + OK
RECONNECTING = b"+TCMQTTRECONNECTING\r\n"
ERR_JOIN = 0x010A0000


def fault(daemon, module, *words):
    with daemon.ctl() as c:
        return c.request(words[0], module, *words[1:])


def fire(daemon, module, *words):
    r = fault(daemon, module, *words)
    assert r == {"ok": True, "result": {}}, r
    return r


def status(daemon, module):
    with daemon.ctl() as c:
        r = c.request("status", module)
    assert r["ok"], r
    return r["result"]


def events(daemon, module):
    with daemon.ctl() as c:
        r = c.request("events")
    assert r["ok"], r
    return [e for e in r["result"] if e.get("module") == module]


def after_urcs(port, expected, urc, timeout=10.0):
    """Reads up to the end of `expected`; what comes before it may only be
    repeats of `urc` (a reconnect cycle keeps printing while we talk)."""
    got = port.read_until(expected, timeout)
    head = got[:-len(expected)]
    assert head == urc * (len(head) // len(urc)), "unexpected bytes before %r: %r" % (expected, got)


def query(port, line, expected, urc):
    port.cmd(line)
    after_urcs(port, expected, urc)


# ------------------------------------------------------------------ tencent


def test_tencent_down_loses_mqtt_and_up_regains_it(make_daemon, tmp_path, mosquitto, mqtt_peers):
    broker = mosquitto()
    daemon, port = tc_start(make_daemon, tmp_path, broker.port)
    tc_connect(port)
    tc_subscribe(port)
    st = status(daemon, "tc0")
    assert st["wifi"] == {"state": "connected", "ssid": "lab", "ip": "192.168.1.100",
                          "access_point": "up"}
    assert st["mqtt"] == {"state": "connected", "broker": "127.0.0.1:%d" % broker.port,
                          "subscriptions": [TOPIC]}
    assert st["counters"]["reconnects"] == 0

    fire(daemon, "tc0", "wifi", "down")
    port.expect(DOWN + b"+TCMQTTDISCON,-103\r\n")
    query(port, "AT+TCMQTTSTATE?", b"+TCMQTTSTATE:0\r\n" + OK, RECONNECTING)
    query(port, "AT+CWJAP?", NO_AP, RECONNECTING)
    query(port, "AT+CIPSTA?", CIPSTA_NONE + OK, RECONNECTING)
    st = status(daemon, "tc0")
    assert st["wifi"] == {"state": "connecting", "ssid": "lab", "ip": None, "access_point": "down"}
    assert st["mqtt"]["state"] == "connecting"
    assert st["mqtt"]["subscriptions"] == [TOPIC]  # the SDK keeps its handler table

    fire(daemon, "tc0", "wifi", "up")
    got = port.read_until(b"+TCMQTTRECONNECTED\r\n", 20)
    assert re.fullmatch(rb"(\+TCMQTTRECONNECTING\r\n)*WIFI CONNECTED\r\nWIFI GOT IP\r\n"
                        rb"(\+TCMQTTRECONNECTING\r\n)*\+TCMQTTRECONNECTED\r\n", got), got
    tc_state(port, 1)
    port.cmd("AT+CWJAP?")
    port.expect(CWJAP_LAB + OK)
    peer = mqtt_peers(broker.port)
    peer.publish(TOPIC, b"after the outage")  # the subscription was renewed
    port.expect(rcvpub(TOPIC, b"after the outage"))
    st = status(daemon, "tc0")
    assert st["wifi"]["state"] == "connected" and st["wifi"]["access_point"] == "up"
    assert st["mqtt"]["state"] == "connected"
    assert st["counters"]["reconnects"] == 1
    assert st["counters"]["faults_fired"] == 2

    states = [(e["what"], e["state"]) for e in events(daemon, "tc0") if e["kind"] == "state"]
    i = states.index(("wifi", "disconnected"))
    assert ("mqtt", "disconnected") in states[i:]
    assert ("wifi", "connected") in states[i:] and ("mqtt", "connected") in states[i:]
    fired = [e["do"] for e in events(daemon, "tc0") if e["kind"] == "fault"]
    assert fired == ["wifi down", "wifi up"]


def test_tencent_reconnect_off_ends_the_task(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = tc_start(make_daemon, tmp_path, broker.port)
    tc_connect(port, params="1,5000,240,1,0")
    fire(daemon, "tc0", "wifi", "down")
    port.expect(DOWN + b"+TCMQTTDISCON,-103\r\n+TCMQTTDISCON,-103\r\n")
    assert status(daemon, "tc0")["mqtt"] == {"state": "disconnected", "broker": None,
                                            "subscriptions": []}
    fire(daemon, "tc0", "wifi", "up")
    port.expect(UP)  # the station rejoins; the MQTT task is gone
    tc_state(port, 0)
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+CME ERROR:208\r\n")


# ------------------------------------------------------------------ w800


def test_w800_down_loses_mqtt_and_up_regains_it(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    daemon, port = start_w800()
    w8_connect(port, broker.port)
    ok(port, 'AT+MQTTSUB=0,"t",1')
    st = status(daemon, "w8")
    assert st["mqtt"] == {"state": "connected", "broker": "127.0.0.1:%d" % broker.port,
                          "subscriptions": ["t"]}

    fire(daemon, "w8", "wifi", "down")
    port.expect(DOWN + DISC)
    port.cmd("AT+MQTTCONN?")
    skip_discs(port, b'+MQTTCONN:0,3,1,"127.0.0.1","%d","",1\r\n' % broker.port + OK)
    port.cmd("AT+CWJAP?")
    skip_discs(port, NO_AP)
    # automatic attempts keep failing (one +MQTTDISCONNECTED:0 each) while it is down
    port.read_until(DISC * 2, 5)
    st = status(daemon, "w8")
    assert st["wifi"] == {"state": "connecting", "ssid": "lab", "ip": None, "access_point": "down"}
    assert st["mqtt"]["state"] == "connecting"

    fire(daemon, "w8", "wifi", "up")
    skip_discs(port, UP)
    skip_discs(port, connected_urc(1, "127.0.0.1", broker.port))
    peer = w8_peers(broker.port)
    peer.publish("t", b"back", qos=1)  # re-subscribed after CONNECTED
    port.expect(subrecv("t", b"back"))
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,6,1,"127.0.0.1","%d","",1\r\n' % broker.port + OK)
    st = status(daemon, "w8")
    assert st["wifi"]["state"] == "connected" and st["mqtt"]["state"] == "connected"
    assert st["counters"]["reconnects"] == 1


def test_w800_reconnect_off_stays_in_state_3(start_w800, mosquitto):
    broker = mosquitto()
    daemon, port = start_w800()
    w8_connect(port, broker.port, reconnect=0)
    fire(daemon, "w8", "wifi", "down")
    port.expect(DOWN + DISC)
    fire(daemon, "w8", "wifi", "up")
    port.expect(UP)
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,3,1,"127.0.0.1","%d","",0\r\n' % broker.port + OK)
    assert status(daemon, "w8")["mqtt"]["state"] == "disconnected"
    # the MCU reconnects by hand (v3.2 lets MQTTCONN proceed from state 3)
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,0' % broker.port)
    port.expect(connected_urc(1, "127.0.0.1", broker.port, reconnect=0) + OK)
    assert status(daemon, "w8")["counters"]["reconnects"] == 1


# ------------------------------------------------------------------ both: the station


def esp_module(tmp_path, dialect, join_ms=50, **wifi):
    w = {"access_points": [{"ssid": "lab", "password": "secret123"}], "auto_join": "lab",
         "join_ms": join_ms}
    w.update(wifi)
    w = {k: v for k, v in w.items() if v is not None}
    return module_config(tmp_path, "m0", dialect, echo=False, **{dialect: {"wifi": w}})


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_join_while_down_fails_ap_not_found(make_daemon, tmp_path, dialect):
    daemon = make_daemon([esp_module(tmp_path, dialect, auto_join=None)])
    port = daemon.port()
    xchg(port, 'AT+CWJAP="lab","secret123"', UP + OK, echo=False)  # stored, as in NVS
    fire(daemon, "m0", "wifi", "down")
    port.expect(DOWN)
    xchg(port, 'AT+CWJAP="lab","secret123"', b"+CWJAP:3\r\n" + err(dialect, ERR_JOIN), echo=False)
    xchg(port, "AT+CWJAP", b"+CWJAP:3\r\n" + err(dialect, ERR_JOIN), echo=False)  # the stored AP
    xchg(port, "AT+CWJAP?", NO_AP, echo=False)
    # the MCU took over with its own join: no rejoin behind its back once the AP is back
    fire(daemon, "m0", "wifi", "up")
    port.expect_silence(0.5)
    assert status(daemon, "m0")["wifi"]["state"] == "disconnected"
    xchg(port, 'AT+CWJAP="lab","secret123"', UP + OK, echo=False)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK, echo=False)


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_quit_ap_while_down_stops_the_retries(make_daemon, tmp_path, dialect):
    daemon = make_daemon([esp_module(tmp_path, dialect)])
    port = daemon.port()
    port.expect(UP)
    fire(daemon, "m0", "wifi", "down")
    port.expect(DOWN)
    xchg(port, "AT+CWQAP", OK, echo=False)  # no link: no second WIFI DISCONNECT
    fire(daemon, "m0", "wifi", "up")
    port.expect_silence(0.5)
    assert status(daemon, "m0")["wifi"] == {"state": "disconnected", "ssid": None, "ip": None,
                                            "access_point": "up"}


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_power_on_while_down_rejoins_when_up(make_daemon, tmp_path, dialect):
    """A power cycle keeps the radio world: the auto-connect at power-on
    finds nothing, says nothing, and keeps retrying until the AP is back."""
    daemon = make_daemon([esp_module(tmp_path, dialect)])
    port = daemon.port()
    port.expect(UP)
    fire(daemon, "m0", "wifi", "down")
    port.expect(DOWN)
    fire(daemon, "m0", "power", "cycle")
    port.expect(b"\r\nready\r\n")
    daemon.wait_log('wifi: auto-connect to "lab" failed (3)')
    assert status(daemon, "m0")["wifi"]["state"] == "connecting"  # retrying
    xchg(port, "AT+CWJAP?", NO_AP, echo=False)
    fire(daemon, "m0", "wifi", "up")
    port.expect(UP)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK, echo=False)


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_down_while_joining_fails_the_join(make_daemon, tmp_path, dialect):
    daemon = make_daemon([esp_module(tmp_path, dialect, join_ms=1500, auto_join=None)])
    port = daemon.port()
    port.cmd('AT+CWJAP="lab","secret123"')
    fire(daemon, "m0", "wifi", "down")  # before the 1.5 s join ends
    port.expect(b"+CWJAP:3\r\n" + err(dialect, ERR_JOIN), 5)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_bad_words_and_other_family_are_refused(make_daemon, tmp_path, dialect):
    daemon = make_daemon([esp_module(tmp_path, dialect)])
    port = daemon.port()
    port.expect(UP)
    for words, error in [
            (("wifi",), "wifi: expected down or up"),
            (("wifi", "sideways"), "wifi: expected down or up"),
            (("wifi", "down", "now"), "wifi: expected down or up"),
            (("wifi", "up"), "wifi up: the access point is already up"),
            (("cell", "deregister"), "cell: not a fault of the %s dialect" % dialect)]:
        assert fault(daemon, "m0", *words) == {"ok": False, "error": error}
    fire(daemon, "m0", "wifi", "down")
    port.expect(DOWN)
    assert fault(daemon, "m0", "wifi", "down") == {
        "ok": False, "error": "wifi down: the access point is already down"}
    port.expect_nothing_pending()
    assert status(daemon, "m0")["counters"]["faults_fired"] == 1


def test_scheduled_wifi_fault_checked_at_load(run_vmoduled, tmp_path):
    cfg = tmp_path / "c.json"
    m = esp_module(tmp_path, "tencent")
    m["faults"] = [{"at_ms": 100, "do": "wifi sideways"}]
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "s"), "modules": [m]}))
    cp = run_vmoduled(["-c", str(cfg)])
    assert cp.returncode != 0
    assert "modules[0].faults[0].do: wifi: expected down or up" in cp.stderr, cp.stderr


def test_scheduled_wifi_down_and_up(make_daemon, tmp_path):
    m = esp_module(tmp_path, "tencent")
    m["faults"] = [{"after": "WIFI GOT IP", "do": "wifi down"}, {"at_ms": 600, "do": "wifi up"}]
    daemon = make_daemon([m])
    port = daemon.port()
    port.expect(UP + DOWN + UP, 5)
    fired = [e["do"] for e in events(daemon, "m0") if e["kind"] == "fault"]
    assert fired == ["wifi down", "wifi up"]
