"""test_me3630_cell.py - the me3630 dialect's cellular side
(w800-me3630-at.md §7): power-on without a banner, the simulated
registration with its delay and 27.007 URCs, AT+CFUN, the ECM data call,
the module reset, the V.250 line framing (CR ends a line, LF ignored where a
line starts, kept inside one), and the rule that without SIM, PIN,
registration or data call nothing reaches the network (checked at a real
mosquitto).

Byte-exact dialogues without timing live in tests/transcripts/me3630/."""

import time

import pytest

from conftest import module_config, wait_for
from test_me3630_cloud import AUTH, OK, cmd, connections

READY = b"\r\nready\r\n"


def me_module(tmp_path, name="me0", boot_urcs=("ready",), **me):
    cfg = {"boot_urcs": list(boot_urcs), "network": {"registration_ms": 0, "call_ms": 10}}
    for k, v in me.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return module_config(tmp_path, name, "me3630", echo=False, me3630=cfg)


def start(make_daemon, tmp_path, **me):
    daemon = make_daemon([me_module(tmp_path, **me)], log_level="debug")
    return daemon, daemon.port()


def test_no_banner_by_default_and_input_ignored_while_booting(make_daemon, tmp_path):
    """A real ME3630 prints nothing at power-on; drivers wait, then poll with
    AT (§7). Power is applied when the port is first opened."""
    m = me_module(tmp_path, boot_urcs=())
    m["boot_ms"] = 1000
    daemon = make_daemon([m])
    port = daemon.port(wait_ready=False)
    port.send("AT\r")  # still booting: dropped
    port.expect_silence(1.3)
    cmd(port, "AT", OK)


def test_registration_takes_its_time_and_reports_urcs(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path, network={"registration_ms": 600})
    cmd(port, "AT+CREG?", b"\r\n+CREG: 0,2\r\n" + OK)  # still searching after boot
    cmd(port, "AT+CREG=1", OK)
    cmd(port, "AT+CEREG=2", OK)
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 24,99\r\n" + OK)
    cmd(port, "AT+COPS?", b"\r\n+COPS: 0\r\n" + OK)
    cmd(port, "AT+ZECMCALL=1", b"\r\n+CME ERROR: 30\r\n")  # no network service yet
    port.expect(b'\r\n+CREG: 1\r\n\r\n+CEREG: 1,"2A5F","0B7C1D2",7\r\n', timeout=5)
    cmd(port, "AT+CREG?", b"\r\n+CREG: 1,1\r\n" + OK)
    # radio off and on again: deregistration, then a new registration delay
    cmd(port, "AT+CFUN=0", OK + b"\r\n+CREG: 0\r\n\r\n+CEREG: 0\r\n")
    cmd(port, "AT+CFUN?", b"\r\n+CFUN: 0\r\n" + OK)
    cmd(port, "AT+CSQ", b"\r\n+CSQ: 99,99\r\n" + OK)
    cmd(port, "AT+ZPAS?", b'\r\n+ZPAS: "No Service","CAMPED"\r\n' + OK)
    t1 = time.monotonic()
    cmd(port, "AT+CFUN=1", OK + b"\r\n+CREG: 2\r\n\r\n+CEREG: 2\r\n")
    port.expect(b'\r\n+CREG: 1\r\n\r\n+CEREG: 1,"2A5F","0B7C1D2",7\r\n', timeout=5)
    assert time.monotonic() - t1 >= 0.55
    cmd(port, "AT+CFUN=4", OK + b"\r\n+CREG: 0\r\n\r\n+CEREG: 0\r\n")
    cmd(port, "AT+CFUN=1,1", OK)  # reset: the module reboots
    port.wait_ready()
    cmd(port, "AT+CREG?", b"\r\n+CREG: 0,2\r\n" + OK)  # URC settings gone with the reset


def test_unavailable_network_keeps_searching(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"available": False})
    cmd(port, "AT+CREG?", b"\r\n+CREG: 0,2\r\n" + OK)
    cmd(port, "AT+CFUN=1,0", OK)
    cmd(port, "AT+CGREG?", b"\r\n+CGREG: 0,2\r\n" + OK)


def test_data_call_setup_is_pending_and_queryable(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"call_ms": 500})
    cmd(port, "AT+ZECMCALL?", b"\r\n+ZECMCALL: DISCONNECT\r\n" + OK)
    port.send("AT+ZECMCALL=1\r")
    port.send("AT\r")  # busy while dialling
    port.expect(b"\r\nERROR\r\n")
    port.expect(b"\r\n+ZECMCALL: CONNECT\r\n" + OK, timeout=5)
    cmd(port, "AT+ZECMCALL?",
        b"\r\n+ZECMCALL: IPV4, 10.64.12.34, 10.64.12.35, 210.21.196.6, 221.5.88.88\r\n" + OK)
    cmd(port, "AT+ZECMCALL=1", b"\r\n+ZECMCALL: CONNECT\r\n" + OK)
    cmd(port, "AT+ZECMCALL=0", b"\r\n+ZECMCALL: DISCONNECT\r\n" + OK)
    cmd(port, "AT+ZECMCALL=2", b"\r\nERROR\r\n")


def test_data_call_address_comes_from_the_config(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"ip": "100.64.1.2", "gateway": "100.64.1.1",
                                                    "dns": ["8.8.8.8", "1.1.1.1"]})
    cmd(port, "AT+ZECMCALL=1", b"\r\n+ZECMCALL: CONNECT\r\n" + OK)
    cmd(port, "AT+ZECMCALL?", b"\r\n+ZECMCALL: IPV4, 100.64.1.2, 100.64.1.1, 8.8.8.8, 1.1.1.1\r\n" + OK)


@pytest.mark.parametrize("case,me,code", [
    ("sim absent", {"sim": {"present": False}}, 10),
    ("pin required", {"sim": {"pin": "4321"}}, 11),
    ("not registered", {"network": {"available": False}}, 30),
    ("data call down", {}, 3),
])
def test_nothing_reaches_the_network_without_a_data_path(make_daemon, tmp_path, mosquitto,
                                                         case, me, code):
    broker = mosquitto()
    me = dict(me)
    me["aliyun"] = {"transport": "tcp", "mqtt_host": "127.0.0.1", "mqtt_port": broker.port,
                    "auth_ms": 10}
    _, port = start(make_daemon, tmp_path, **me)
    before = connections(broker)
    cmd(port, AUTH, OK + b"\r\n+CME ERROR: %d\r\n" % code)
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: %d\r\n" % code)
    cmd(port, "AT+CLOUDCONN=120,1,4", b"\r\n+CME ERROR: %d\r\n" % code)
    cmd(port, "AT+CLOUDSUB=/a/b,0", OK + b"\r\n+CMD ERROR: <-1>\r\n")
    cmd(port, "AT+CLOUDPUB=/a/b,0,x", b"\r\n+CME ERROR: 3\r\n")
    port.expect_silence(0.3)  # no late +ALIAUTH
    assert connections(broker) == before


def test_boot_urcs_and_cmee_come_from_the_config(make_daemon, tmp_path):
    m = me_module(tmp_path, boot_urcs=("+ZIND: 8", "+ZREADY"), cmee=2)
    daemon = make_daemon([m])
    port = daemon.port(wait_ready=False)
    port.expect(b"\r\n+ZIND: 8\r\n\r\n+ZREADY\r\n", timeout=10)
    cmd(port, "AT+CMEE?", b"\r\n+CMEE: 2\r\n" + OK)
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: operation not allowed\r\n")


@pytest.mark.parametrize("me,message", [
    ({"imei": "12345"}, "me3630.imei: must be a string of 15 to 15 digits"),
    ({"sim": {"pin": "12"}}, "me3630.sim.pin: must be a string of 4 to 8 digits"),
    ({"network": {"rat": "5G"}}, 'me3630.network.rat: must be one of "LTE", "UMTS", "GSM"'),
    ({"aliyun": {"signmethod": "sha1"}}, "me3630.aliyun.signmethod: must be"),
    ({"aliyun": {"bogus": 1}}, "me3630.aliyun.bogus: unknown key"),
    ({"bogus": 1}, "me3630.bogus: unknown key"),
])
def test_bad_config_is_one_line_naming_the_key(run_vmoduled, tmp_path, me, message):
    import json
    m = module_config(tmp_path, "me0", "me3630", me3630=me)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "s"), "modules": [m]}))
    r = run_vmoduled(["-c", cfg])
    assert r.returncode == 2
    assert r.stderr.startswith("vmoduled: config: modules[0]." + message), r.stderr
    assert r.stderr.count("\n") == 1


# ------------------------------------------------------------------ framing (V.250)

CSQ = b"\r\n+CSQ: 24,99\r\n" + OK
ERROR = b"\r\nERROR\r\n"


def test_cr_ends_a_line_and_the_lf_after_it_is_ignored(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    port.send(b"AT\r")
    port.expect(OK)
    port.send(b"\n")                   # the LF of that CR, in the next read
    port.send(b"AT+CSQ\r\n")
    port.expect(CSQ)
    port.expect_nothing_pending()


def test_empty_lines_and_lfs_where_a_line_starts_are_ignored(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    port.send(b"\r\r\n\n\n\rAT\r")
    port.expect(OK)
    port.expect_nothing_pending()


def test_lone_lf_inside_a_line_is_part_of_it(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    port.send(b"AT+CSQ\n")
    port.send(b"\r")                   # no reply in between: the LF did not end the line
    port.expect(ERROR)
    cmd(port, "AT+CSQ", CSQ)


def test_every_line_of_a_read_runs(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    port.send(b"AT\rAT+CSQ\r\nAT+NOPE\r")
    port.expect(OK + CSQ + ERROR)


def test_echo_repeats_the_line_with_its_terminator(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cmd(port, "ATE1", OK)
    port.send(b"AT+CSQ\r\n")
    port.expect(b"AT+CSQ\r\n" + CSQ)
    port.send(b"\nAT\r")
    port.expect(b"\nAT\r" + OK)


def test_every_line_while_busy_gets_error(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"call_ms": 500})
    port.send(b"AT+ZECMCALL=1\r")
    port.send(b"AT\rAT+CSQ\r")         # one busy reply per line, whatever the reads
    port.expect(ERROR * 2)
    port.expect(b"\r\n+ZECMCALL: CONNECT\r\n" + OK, timeout=5)
