"""test_tencent_gwquery.py - AT+TCGWBIND? of the tencent dialect, the
sub-devices bound to the gateway, against a real mosquitto and
`vmodule-cloud serve` (tencent-at.md §3.11, §7.6; seed 003 "查询拓扑关系").

v2.1.1 registers no query form. From v2.2.0 on the module publishes
{"type":"describe_sub_devices"} on $gateway/operation/<pid>/<dn> and prints
one +TCGWBIND:"<pid>","<dn>" per sub-device of the cloud's reply, then OK.
What the v2.2.0 objects show [LIB220 qcloud_at_cmd.c at_gw_bind_query,
gateway_common.c] and these tests hold the emulator to:
- the handler checks no state: without a connection the request fails and
  the handler returns FAIL, the core ERROR (not +CME ERROR:208);
- no reply within the budget is the same ERROR, with no line before it;
- the SDK prepends each listed device to its list, so the lines come last
  first; entries without both names are skipped, names are cut to 10 / 48
  characters, a reply over 1024 bytes is dropped.
The cloud tool lists the devices bound through it, in bind order."""

import time

import pytest

from test_tencent_gateway import clouds  # noqa: F401 pylint: disable=unused-import (fixture)
from test_tencent_gateway import (BUSY, GW_REQ, SPID, SDN, SDN2, SSECRET, bind, mqtt_connect, on,
                                  provision, unbind)
from test_tencent_mqtt import start

DESCRIBE = (GW_REQ, b'{"type":"describe_sub_devices"}')
ERROR_EXEC = b"ERR CODE:0x010a0000\r\n\r\nERROR\r\n"   # the handler's FAIL
NO_QUERY_FORM = b"ERR CODE:0x010c0000\r\n\r\nERROR\r\n"
SDN3 = "sub03"
SECRETS = {(SPID, d): SSECRET for d in (SDN, SDN2, SDN3)}


def listing(devices):
    """The query's bytes for sub-devices in the order printed."""
    return b"".join(b'+TCGWBIND:"%s","%s"\r\n' % (p.encode(), d.encode())
                    for p, d in devices) + b"\r\nOK\r\n"


def describe_reply(entries):
    """A describe_sub_devices answer (raw JSON text) listing entries as given."""
    return ('{"type":"describe_sub_devices","payload":{"devices":[%s]}}' % ",".join(entries)
            ).encode()


def entry(pid, dn):
    return '{"product_id":"%s","device_name":"%s"}' % (pid, dn)


def gateway(make_daemon, tmp_path, mosquitto, clouds, firmware="2.2.0", connect=True, **kw):
    """A provisioned gateway module of firmware with its cloud (secrets of
    sub01..sub03 known): (daemon, port, broker, cloud)."""
    broker = mosquitto()
    cloud = clouds(broker.port, secrets=SECRETS)
    daemon, port = start(make_daemon, tmp_path, broker.port, firmware=firmware, **kw)
    provision(port)
    if connect:
        mqtt_connect(port)
    return daemon, port, broker, cloud


def query(port, expected, timeout=5.0):
    port.cmd("AT+TCGWBIND?")
    port.expect(expected, timeout)


# ------------------------------------------------------------------ which firmware


def test_v211_has_no_query_form_and_publishes_nothing(make_daemon, tmp_path, mosquitto, clouds):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds,
                                          firmware="2.1.1")
    query(port, NO_QUERY_FORM)
    unbind(port)  # barrier: the first request the cloud saw
    assert cloud.wait_requests(1) == [on("unbind")]


@pytest.mark.parametrize("chip,firmware", [("esp8266", "2.2.0"), ("esp32", "2.2.0"),
                                           ("esp32", "2.4.0"), ("esp32c3", "2.4.0")])
def test_no_sub_device_bound_is_a_bare_ok(make_daemon, tmp_path, mosquitto, clouds, chip,
                                         firmware):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds,
                                          firmware=firmware, chip=chip)
    query(port, b"\r\nOK\r\n")
    assert cloud.wait_requests(1) == [DESCRIBE]


# ------------------------------------------------------------------ the list


def test_one_bound_sub_device(make_daemon, tmp_path, mosquitto, clouds):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds)
    bind(port)
    query(port, listing([(SPID, SDN)]))
    reqs = cloud.wait_requests(3)  # time, bind, describe
    assert reqs[2] == DESCRIBE and len(reqs) == 3
    assert cloud.bad_binds == []


def test_several_bound_sub_devices_come_last_first(make_daemon, tmp_path, mosquitto, clouds):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds)
    for dn in (SDN, SDN2, SDN3):
        bind(port, sdn=dn)
    query(port, listing([(SPID, SDN3), (SPID, SDN2), (SPID, SDN)]))
    unbind(port, sdn=SDN2)
    query(port, listing([(SPID, SDN3), (SPID, SDN)]))
    reqs = cloud.wait_requests(9)  # a time request and a bind each, then these
    assert reqs[6:] == [DESCRIBE, on("unbind", SPID, SDN2), DESCRIBE]
    # the query changes nothing: asked again, the same
    query(port, listing([(SPID, SDN3), (SPID, SDN)]))


def test_the_cloud_list_is_printed_as_the_sdk_reads_it(make_daemon, tmp_path, mosquitto,
                                                       clouds):
    """Seed 003's five devices, last first; entries without both names
    skipped; a product id over 10 and a name over 48 characters cut."""
    seed = [("XKFA0000LX", n) for n in ("2OGDy7Ws8mG0000YUe", "5gcEHg3Yuvm00002p8",
                                         "hmIjq0gEFcf0000F5X", "x9pVpmdRmET0000mkM",
                                         "zmHv6o6n4G30000Bgh")]
    odd = ['{"product_id":"%s"}' % SPID, '{"device_name":"%s"}' % SDN,
           '{"product_id":7,"device_name":"%s"}' % SDN, '"not an object"',
           entry("LONGPRODUCT1", "d" * 50)]
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds)
    cloud.configure(raw_replies={"describe_sub_devices": [
        describe_reply([entry(p, d) for p, d in seed] + odd)]})
    query(port, listing([("LONGPRODUC", "d" * 48)] + seed[::-1]))


@pytest.mark.parametrize("devices", ['{}', '"none"', 'null'])
def test_devices_that_are_no_list_give_an_empty_list(make_daemon, tmp_path, mosquitto, clouds,
                                                     devices):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds)
    cloud.configure(raw_replies={"describe_sub_devices": [
        b'{"type":"describe_sub_devices","payload":{"devices":%s}}' % devices.encode()]})
    query(port, b"\r\nOK\r\n")


def test_replies_that_are_not_the_list_are_ignored(make_daemon, tmp_path, mosquitto, clouds):
    """Not the list: another type, no payload.devices, not JSON, and a list
    over the SDK's 1024-byte receive buffer (dropped whole, though its first
    1023 bytes hold a whole list); the list after them is the answer."""
    big = describe_reply([entry(SPID, SDN3)])
    big += b" " * (1025 - len(big))
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds)
    cloud.configure(raw_replies={"describe_sub_devices": [
        b'{"type":"online","payload":{"devices":[{"product_id":"%s","device_name":"%s",'
        b'"result":0}]}}' % (SPID.encode(), SDN.encode()),
        b'{"type":"describe_sub_devices"}',
        b'{"type":"describe_sub_devices","payload":{}}',
        b'not json',
        big,
        describe_reply([entry(SPID, SDN2)])]})
    query(port, listing([(SPID, SDN2)]))


def test_a_list_of_1024_bytes_is_cut_to_1023(make_daemon, tmp_path, mosquitto, clouds):
    """The SDK keeps 1023 bytes of a 1024-byte payload: a list that ends
    before that is read, one whose end is cut is no reply."""
    whole = describe_reply([entry(SPID, SDN)])
    whole += b" " * (1024 - len(whole))
    base = describe_reply([entry(SPID, SDN2)])
    cut = describe_reply([entry(SPID, SDN2), entry(SPID, "d" * (1024 - len(base) - 45))])
    assert len(whole) == len(cut) == 1024, (len(whole), len(cut))
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds,
                                          gateway_timeout_ms=1000)
    cloud.configure(raw_replies={"describe_sub_devices": [whole]})
    query(port, listing([(SPID, SDN)]))
    cloud.configure(raw_replies={"describe_sub_devices": [cut]})
    query(port, ERROR_EXEC, 5)


# ------------------------------------------------------------------ failures


def test_without_a_connection_the_query_is_error(make_daemon, tmp_path, mosquitto, clouds):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds,
                                          connect=False)
    query(port, ERROR_EXEC)  # the MQTT task never ran
    mqtt_connect(port)
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+TCMQTTDISCON,2\r\n\r\nOK\r\n")
    query(port, ERROR_EXEC)  # after a disconnect
    mqtt_connect(port)
    unbind(port)  # barrier: nothing was published before
    assert cloud.wait_requests(1) == [on("unbind")]


def test_while_reconnecting_the_query_is_error(make_daemon, tmp_path, mosquitto, clouds):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds)
    broker.kill()
    port.expect(b"+TCMQTTDISCON,-103\r\n")
    port.cmd("AT+TCGWBIND?")  # the task still runs, not connected
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*" + ERROR_EXEC.replace(b"+", rb"\+"),
                      b"\r\nERROR\r\n")


def test_no_reply_is_error_after_the_budget_and_lines_get_busy(make_daemon, tmp_path, mosquitto,
                                                               clouds):
    daemon, port, broker, cloud = gateway(make_daemon, tmp_path, mosquitto, clouds,
                                          gateway_timeout_ms=1500)
    bind(port)
    cloud.configure(results={"describe_sub_devices": None})
    t0 = time.monotonic()
    port.cmd("AT+TCGWBIND?")
    assert cloud.wait_requests(3)[2] == DESCRIBE
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(BUSY)
    port.cmd("AT+TCGWBIND?")
    port.expect(BUSY)
    port.expect(ERROR_EXEC, 5)  # nothing printed before it
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed < 5, elapsed
    daemon.wait_log("gateway: no describe_sub_devices reply")
    port.cmd("AT+TCMQTTSTATE?")  # the link is still up
    port.expect(b"+TCMQTTSTATE:1\r\n\r\nOK\r\n")
    cloud.configure(results={"describe_sub_devices": 0})
    query(port, listing([(SPID, SDN)]))
    reqs = cloud.wait_requests(4)
    assert reqs[3] == DESCRIBE and len(reqs) == 4  # the busy query published nothing

