"""test_ctl_net.py - `net MODULE down|up|reset|blackhole|delay MS|dns-fail|
dns-ok` through the control socket (issue 12), on the module's real
connections: libmosquitto to a real mosquitto (plain TCP, TLS-PSK, TLS and
WebSocket), libcurl to a real HTTPS server (tencent dynamic registration and
OTA download, served by vmodule-cloud).

What each verb must do, and what proves it here:
- down: the next connect is refused by the kernel (an RST answers its SYN:
  the namespace's Tcp OutRsts counter moves) and the dialect prints what it
  prints for a refused connect, at once; up lets the next one through.
- reset: every established link gets a TCP RST (Tcp EstabResets moves) and
  the dialect reports the loss as for a broker that reset it; it reconnects
  when the dialect does.
- blackhole (modules with "fault_injection" only): nothing passes either
  way, so the MQTT keepalive expires with the URCs of a dead link, the
  broker's own keepalive drops the session, and an HTTPS download stalls
  until its idle timeout; up lets everything through again.
- delay MS: every byte waits MS each way: a QoS 1 publish round trip
  (PUBLISH out, PUBACK back) takes at least 2 x MS.
- dns-fail / dns-ok: a host name does not resolve (the lookup fails as for
  an unknown name) / resolves again.

The whole module runs in a private network namespace (like the WebSocket
tests: mosquitto's websockets listener binds every address), which also
makes the kernel's TCP counters this module's own."""
import re
import time

import pytest

from conftest import TEST_HOST, wait_for
from faults import hosts_file
from test_me3630_cloud import AUTH, OK as ME_OK, attach, cmd, me_module, state as me_state
from test_tencent_dynreg import DynregServer, set_product, tc_module as dynreg_module
from test_tencent_faults import CONNECT_FAIL, TRANSPORTS, broker_for, module as tc_fault_module
from test_tencent_mqtt import JOINED, TOPIC, provision, state as tc_state
from test_tencent_ota import (ENTER, SUCCESS, Ota, downloading, fail_report, http_events, image,
                              ota_certs, read_image)  # noqa: F401  (fixture)
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, ERROR, OK, connected_urc, ok, private_network, start_w800, w8_peers)

PROMPT = 1.5  # seconds: what the kernel reports at once is reported at once
TC_CONN = "AT+TCMQTTCONN=1,10000,240,1,1"
TC_OK = b"OK\r\n+TCMQTTCONN:OK\r\n"
TC_LOST = b"+TCMQTTDISCON,-103\r\n"
TC_BACK = rb"(\+TCMQTTRECONNECTING\r\n)+\+TCMQTTRECONNECTED\r\n"
CME_100 = b"\r\n+CME ERROR: 100\r\n"
NO_RELAY = 'net %s: needs "fault_injection": true in the module\'s config'


# ------------------------------------------------------------------ helpers


def net(d, module, *words):
    """Applies `net MODULE words...`; it must be accepted."""
    with d.ctl() as c:
        r = c.request("net", module, *words)
    assert r.get("ok") is True, r
    return r


def net_refused(d, module, *words):
    with d.ctl() as c:
        r = c.request("net", module, *words)
    assert r.get("ok") is False, r
    return r["error"]


def net_status(d, module):
    with d.ctl() as c:
        r = c.request("status", module)
    assert r["ok"], r
    return r["result"].get("net")


def tcp_counters():
    """The Tcp line of /proc/net/snmp in this (private) namespace."""
    rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Tcp:")]
    return dict(zip(rows[0][1:], map(int, rows[1][1:])))


def wait_counter(name, before, what):
    wait_for(lambda: tcp_counters()[name] > before, 5, what)


def faulty(m):
    m["fault_injection"] = True
    return m


def tencent(make_daemon, tmp_path, certs, transport, broker_port, host="127.0.0.1",
            injection=False, **daemon_kw):
    m = tc_fault_module(tmp_path, certs, transport, host, broker_port)
    if injection:
        faulty(m)
    d = make_daemon([m], log_level="debug", **daemon_kw)
    port = d.port()
    port.expect(JOINED)
    provision(port)
    return d, port


def tc_connect(port):
    port.cmd(TC_CONN)
    port.expect(TC_OK, 10)


def tc_conn_fails(port, code):
    """AT+TCMQTTCONN fails with code at once."""
    t0 = time.monotonic()
    port.cmd(TC_CONN)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % code, PROMPT)
    assert time.monotonic() - t0 < PROMPT


def pub_round_trip(port, payload="rt"):
    """Seconds from AT+TCMQTTPUB (QoS 1) to its PUBACK's +TCMQTTPUB:OK."""
    t0 = time.monotonic()
    port.cmd('AT+TCMQTTPUB="%s",1,"%s"' % (TOPIC, payload))
    port.expect(b"OK\r\n+TCMQTTPUB:OK\r\n", 10)
    return time.monotonic() - t0


def skip_discs(port, expected, timeout=20.0):
    """Reads up to the end of `expected`; everything before it must be
    +MQTTDISCONNECTED:0 lines (failed automatic attempts). Returns their number."""
    got = port.read_until(expected, timeout)
    head = got[:-len(expected)]
    assert head == DISC * (len(head) // len(DISC)), "unexpected bytes before %r: %r" % (
        expected, head)
    return len(head) // len(DISC)


def w8_conn(port, broker_port, scheme=1, path="", keepalive=None, reconnect=1):
    ok(port, 'AT+MQTTUSERCFG=0,%d,"w8","","",0,0,"%s"' % (scheme, path))
    if keepalive:
        ok(port, 'AT+MQTTCONNCFG=0,%d,0,"w8/will","gone",0,0' % keepalive)
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,%d' % (broker_port, reconnect))


def w8_connected(broker_port, scheme=1, path=""):
    return connected_urc(scheme, "127.0.0.1", broker_port, ("/" + path) if scheme >= 6 else "")


# ------------------------------------------------------------------ the verbs' words


def test_bad_words_are_refused_and_nothing_changes(make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    d, _ = tencent(make_daemon, tmp_path, certs, "tcp", broker.port)
    assert net_status(d, "tc0") is None  # no net fault yet: nothing made, nothing shown
    for words, error in ((["delay", "60001"], "net delay: MS must be 0..60000"),
                         (["delay", "-1"], "net delay: MS must be 0..60000"),
                         (["delay", "5x"], "net delay: MS must be 0..60000"),
                         (["delay"], "net delay: MS must be 0..60000"),
                         (["down", "now"], 'net down: unexpected "now"'),
                         (["sideways"], "net sideways: unknown (expected one of down, up, reset, "
                                        "blackhole, delay MS, dns-fail, dns-ok)"),
                         ([], "net: expected one of down, up, reset, blackhole, delay MS, "
                              "dns-fail, dns-ok")):
        assert net_refused(d, "tc0", *words) == error
    assert net_status(d, "tc0") is None


def test_blackhole_and_delay_need_fault_injection(make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port)
    tc_connect(port)
    assert net_refused(d, "tc0", "blackhole") == NO_RELAY % "blackhole"
    assert net_refused(d, "tc0", "delay", "100") == NO_RELAY % "delay"
    # the link is untouched: no relay was put in its way
    assert pub_round_trip(port) < 0.5
    assert "net relay" not in d.log_text()


def test_status_shows_the_net_state(make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    m = faulty(tc_fault_module(tmp_path, certs, "tcp", "127.0.0.1", broker.port))
    d = make_daemon([m])
    d.port().expect(JOINED)
    net(d, "tc0", "down")
    net(d, "tc0", "delay", "250")
    net(d, "tc0", "dns-fail")
    assert net_status(d, "tc0") == {"down": True, "blackhole": False, "delay_ms": 250,
                                    "dns_fail": True}
    net(d, "tc0", "blackhole")
    assert net_status(d, "tc0")["blackhole"] is True
    net(d, "tc0", "up")  # lifts down, blackhole and delay; not the resolver's fault
    assert net_status(d, "tc0") == {"down": False, "blackhole": False, "delay_ms": 0,
                                    "dns_fail": True}
    net(d, "tc0", "dns-ok")
    assert net_status(d, "tc0")["dns_fail"] is False


# ------------------------------------------------------------------ down / up


@pytest.mark.parametrize("injection", [False, True], ids=["direct", "relayed"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tencent_down_refuses_at_once_then_up(make_daemon, tmp_path, certs, mosquitto, transport,
                                              injection):
    broker = broker_for(mosquitto, tmp_path, certs, transport)
    d, port = tencent(make_daemon, tmp_path, certs, transport, broker.port, injection=injection)
    net(d, "tc0", "down")
    rsts = tcp_counters()["OutRsts"]
    tc_conn_fails(port, CONNECT_FAIL[transport])
    assert "Connection refused" in d.wait_log("mqtt: connect to 127.0.0.1")
    assert tcp_counters()["OutRsts"] > rsts  # the kernel refused a real SYN
    tc_state(port, 0)
    net(d, "tc0", "up")
    tc_connect(port)
    tc_state(port, 1)


def test_tencent_down_while_connected_keeps_the_link_and_refuses_the_reconnect(
        make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port)
    tc_connect(port)
    net(d, "tc0", "down")
    assert pub_round_trip(port) < 0.5  # an established link is not a new connect
    broker.restart()
    port.expect(TC_LOST, 5)
    # every automatic attempt is refused: the task keeps trying
    port.expect(b"+TCMQTTRECONNECTING\r\n", 5)
    d.wait_log(re.compile(r"mqtt: connect to 127\.0\.0\.1:%d failed: .*Connection refused"
                          % broker.port))
    tc_state(port, 0)
    net(d, "tc0", "up")
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*\+TCMQTTRECONNECTED\r\n", b"TED\r\n", 15)
    tc_state(port, 1)


def test_w800_down_refuses_at_once_then_up(start_w800, mosquitto):
    broker = mosquitto()
    d, port = start_w800()
    net(d, "w8", "down")
    t0 = time.monotonic()
    w8_conn(port, broker.port)
    port.expect(DISC + ERROR, PROMPT)
    assert time.monotonic() - t0 < PROMPT
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,2,1,"","","",0\r\n' + OK)
    net(d, "w8", "up")
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    port.expect(w8_connected(broker.port) + OK)


def test_me3630_down_refuses_at_once_then_up(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    d = make_daemon([me_module(tmp_path, broker.port)])
    port = d.port()
    attach(port)
    cmd(port, AUTH, ME_OK + b"\r\n+ALIAUTH: OK\r\n")
    net(d, "me0", "down")
    t0 = time.monotonic()
    cmd(port, "AT+CLOUDCONN", CME_100, PROMPT)
    assert time.monotonic() - t0 < PROMPT
    me_state(port, 0)
    net(d, "me0", "up")
    cmd(port, "AT+CLOUDCONN", ME_OK)
    me_state(port, 1)


# ------------------------------------------------------------------ reset


@pytest.mark.parametrize("injection", [False, True], ids=["direct", "relayed"])
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tencent_reset_is_a_lost_link_then_reconnect(make_daemon, tmp_path, certs, mosquitto,
                                                     transport, injection):
    broker = broker_for(mosquitto, tmp_path, certs, transport)
    d, port = tencent(make_daemon, tmp_path, certs, transport, broker.port, injection=injection)
    tc_connect(port)
    before = tcp_counters()
    net(d, "tc0", "reset")
    port.expect(TC_LOST, PROMPT)
    port.expect_regex(TC_BACK, b"TED\r\n", 10)
    after = tcp_counters()
    assert after["OutRsts"] > before["OutRsts"]
    assert after["EstabResets"] > before["EstabResets"]
    tc_state(port, 1)
    assert pub_round_trip(port) < 1.0


def test_reset_without_a_link_is_harmless(make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port)
    net(d, "tc0", "reset")
    assert "net reset: 0 links reset" in d.wait_log("net reset:")
    tc_connect(port)


def test_w800_reset_is_a_lost_link_then_reconnect(start_w800, mosquitto):
    broker = mosquitto()
    d, port = start_w800()
    w8_conn(port, broker.port)
    port.expect(w8_connected(broker.port) + OK)
    resets = tcp_counters()["EstabResets"]
    net(d, "w8", "reset")
    port.expect(DISC, PROMPT)
    skip_discs(port, w8_connected(broker.port), 10)
    assert tcp_counters()["EstabResets"] > resets


def test_me3630_reset_loses_the_session(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    d = make_daemon([me_module(tmp_path, broker.port)], log_level="debug")
    port = d.port()
    attach(port)
    cmd(port, AUTH, ME_OK + b"\r\n+ALIAUTH: OK\r\n")
    cmd(port, "AT+CLOUDCONN", ME_OK)
    resets = tcp_counters()["EstabResets"]
    net(d, "me0", "reset")
    d.wait_log("Aliyun MQTT: session lost")
    port.expect_nothing_pending()  # the ME3630 has no URC for it (reference §8.2)
    me_state(port, 0)
    assert tcp_counters()["EstabResets"] > resets
    cmd(port, "AT+CLOUDCONN", ME_OK)  # the authentication is still held
    me_state(port, 1)


@pytest.fixture
def ws_broker(mosquitto):
    return mosquitto(listeners=[{"name": "plain"}, {"name": "ws", "protocol": "websockets"}])


@pytest.mark.parametrize("injection", [False, True], ids=["direct", "relayed"])
def test_websocket_down_reset_up(start_w800, ws_broker, injection):
    """Scheme 6: the relay's broker link is the one the faults act on."""
    ws = ws_broker.port_of("ws")
    d, port = start_w800(module={"fault_injection": injection}, daemon_kw={"log_level": "debug"})
    net(d, "w8", "down")
    t0 = time.monotonic()
    w8_conn(port, ws, scheme=6, path="mqtt")
    port.expect(DISC + ERROR, PROMPT)
    assert time.monotonic() - t0 < PROMPT
    assert "connection refused" in d.wait_log("ws: TCP connect to").lower()
    net(d, "w8", "up")
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % ws)
    port.expect(w8_connected(ws, 6, "mqtt") + OK)
    resets = tcp_counters()["EstabResets"]
    net(d, "w8", "reset")
    port.expect(DISC, PROMPT)
    skip_discs(port, w8_connected(ws, 6, "mqtt"), 10)
    assert tcp_counters()["EstabResets"] > resets


# ------------------------------------------------------------------ blackhole


KEEPALIVE = 5  # s: the shortest keepalive libmosquitto (and so the w800 here) takes


def test_w800_blackhole_expires_the_keepalive_then_up_reconnects(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    will = w8_peers(broker.port, "w8/will")
    d, port = start_w800(module={"fault_injection": True}, reconnect_interval_ms=300)
    w8_conn(port, broker.port, keepalive=KEEPALIVE)
    port.expect(w8_connected(broker.port) + OK)
    net(d, "w8", "blackhole")
    t0 = time.monotonic()
    # libmosquitto's PINGREQ goes unanswered: the link is declared dead
    # between one and two keepalives later (esp-mqtt: "No PING_RESP")
    port.expect(DISC, 2 * KEEPALIVE + 3)
    took = time.monotonic() - t0
    assert KEEPALIVE - 0.5 <= took <= 2 * KEEPALIVE + 2, took
    assert "keepalive timeout" in d.wait_log("mqtt: connection to 127.0.0.1")
    # the broker's own keepalive (1.5 x) ends the session: the will goes out
    assert will.wait_msgs(1, 3 * KEEPALIVE) == [("w8/will", b"gone", False)]
    assert re.search(r"Client w8 \S* ?has exceeded timeout", broker.log_text()), broker.log_text()
    net(d, "w8", "up")
    skip_discs(port, w8_connected(broker.port), 20)
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,4,1,"127.0.0.1","%d","",1\r\n' % broker.port + OK)


def test_tencent_blackhole_then_up_before_the_keepalive_loses_nothing(make_daemon, tmp_path,
                                                                      certs, mosquitto):
    """A path that comes back before anyone gave up: TCP retransmits, so the
    held publish arrives and its PUBACK comes back."""
    broker = mosquitto()
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port, injection=True)
    tc_connect(port)
    port.cmd('AT+TCMQTTSUB="%s",1' % TOPIC)
    port.expect(b"OK\r\n+TCMQTTSUB:OK\r\n")
    net(d, "tc0", "blackhole")
    port.cmd('AT+TCMQTTPUB="%s",1,"held"' % TOPIC)
    port.expect(b"OK\r\n")
    port.expect_silence(1.0)  # neither the PUBACK nor our own copy
    net(d, "tc0", "up")
    got = port.read_until(b"+TCMQTTPUB:OK\r\n", 5)
    assert got == b'+TCMQTTRCVPUB:"%s",4,"held"\r\n+TCMQTTPUB:OK\r\n' % TOPIC.encode()
    tc_state(port, 1)


class NetOta(Ota):
    """The OTA harness with a module whose config enables faults."""

    def start(self, connect=True, **tencent):
        from test_tencent_mqtt import tc_module
        tencent.setdefault("ota_ca_file", str(self.certs / "ca.crt"))
        self.daemon = self.make_daemon([faulty(tc_module(self.tmp, self.broker.port, **tencent))],
                                       log_level="debug")
        self.port = self.daemon.port()
        self.port.expect(JOINED)
        if connect:
            self.connect()
        return self.port


@pytest.fixture
def net_ota(make_daemon, tmp_path, mosquitto, ota_certs):
    o = NetOta(make_daemon, tmp_path, mosquitto, ota_certs)
    yield o
    o.close()


def test_https_download_stalls_in_a_blackhole_then_resumes(net_ota):
    ota = net_ota
    data = image(300000, 21)
    port = ota.start(ota_read_timeout_ms=1000)
    tool = ota.push(ota.file(data), "8.0.0", "--rate", 100000)
    ota.enable()
    port.expect(ENTER, 10)
    downloading(ota, "8.0.0")
    net(ota.daemon, "tc0", "blackhole")
    # the download's idle timeout fires (TC_E_TIMEOUT), its report waits in
    # the blackhole with everything else the module sends
    ota.daemon.wait_log(re.compile(r"OTA: download of \S+ 8\.0\.0 failed \(202\)"), 15)
    net(ota.daemon, "tc0", "up")
    port.expect(ENTER + SUCCESS, 30)
    assert tool.finish() == 0
    assert ota.wait_reports(0).count(fail_report(-5, b"time_out", "8.0.0")) == 1
    ranges = [e["range"] for e in http_events(tool, 2)]
    assert ranges[0] == "bytes=0-300000"
    start = int(ranges[1].split("=")[1].split("-")[0])
    assert 0 < start < len(data)  # resumed from what arrived before the blackhole
    assert read_image(port) == data


# ------------------------------------------------------------------ delay


DELAY_MS = 400


def test_delay_each_way_then_up(make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port, injection=True)
    tc_connect(port)
    fast = pub_round_trip(port)
    assert fast < 0.3, fast
    net(d, "tc0", "delay", DELAY_MS)
    slow = pub_round_trip(port)
    # PUBLISH out and PUBACK back each wait DELAY_MS
    assert 2 * DELAY_MS / 1000 <= slow < 2 * DELAY_MS / 1000 + 0.5, slow
    net(d, "tc0", "delay", 0)
    assert pub_round_trip(port) < 0.3
    net(d, "tc0", "delay", DELAY_MS)
    net(d, "tc0", "up")
    assert pub_round_trip(port) < 0.3


def test_delay_on_a_new_connect_and_tls(make_daemon, tmp_path, certs, mosquitto):
    """Under delay the connect itself costs round trips (TCP, TLS, CONNACK)."""
    broker = broker_for(mosquitto, tmp_path, certs, "tls")
    d, port = tencent(make_daemon, tmp_path, certs, "tls", broker.port, injection=True)
    net(d, "tc0", "delay", 200)
    t0 = time.monotonic()
    tc_connect(port)
    # SYN/SYN-ACK, the TLS 1.3 flight and CONNECT/CONNACK: at least 3 round trips
    assert time.monotonic() - t0 >= 3 * 0.4
    slow = pub_round_trip(port)
    assert 0.4 <= slow < 0.9, slow


# ------------------------------------------------------------------ dns-fail / dns-ok


def test_tencent_mqtt_dns_fail_then_ok(make_daemon, tmp_path, certs, mosquitto):
    broker = mosquitto()
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1"]})
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port, host=TEST_HOST,
                      hosts=hosts)
    net(d, "tc0", "dns-fail")
    tc_conn_fails(port, CONNECT_FAIL["tcp"])
    line = d.wait_log("mqtt: connect to %s" % TEST_HOST)
    assert "DNS lookup failed" in line, line
    net(d, "tc0", "dns-ok")
    tc_connect(port)


@pytest.mark.parametrize("scheme", [1, 6], ids=["tcp", "ws"])
def test_w800_dns_fail_then_ok(start_w800, mosquitto, tmp_path, scheme):
    broker = mosquitto(listeners=[{"name": "tcp"}, {"name": "ws", "protocol": "websockets"}])
    bport = broker.port_of("tcp" if scheme == 1 else "ws")
    path = "mqtt" if scheme == 6 else ""
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1"]})
    d, port = start_w800(daemon_kw={"hosts": hosts, "log_level": "debug"})
    net(d, "w8", "dns-fail")
    ok(port, 'AT+MQTTUSERCFG=0,%d,"w8","","",0,0,"%s"' % (scheme, path))
    t0 = time.monotonic()
    port.cmd('AT+MQTTCONN=0,"%s",%d,1' % (TEST_HOST, bport))
    port.expect(DISC + ERROR, PROMPT)
    assert time.monotonic() - t0 < PROMPT
    assert re.search(r"(DNS lookup failed|cannot resolve %s)" % re.escape(TEST_HOST),
                     d.log_text()), d.log_text()
    net(d, "w8", "dns-ok")
    port.cmd('AT+MQTTCONN=0,"%s",%d,1' % (TEST_HOST, bport))
    port.expect(connected_urc(scheme, TEST_HOST, bport, ("/" + path) if path else "") + OK)


def test_dns_fail_leaves_addresses_alone(make_daemon, tmp_path, certs, mosquitto):
    """A numeric address is not looked up, on the real module either."""
    broker = mosquitto()
    d, port = tencent(make_daemon, tmp_path, certs, "tcp", broker.port)
    net(d, "tc0", "dns-fail")
    tc_connect(port)


def test_https_dns_fail_down_then_ok(make_daemon, tmp_path, certs):
    server = DynregServer(certs)
    try:
        hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1"]})
        url = "https://%s:%d/register/dev" % (TEST_HOST, server.port)
        d = make_daemon([dynreg_module(tmp_path, url, ca_file=certs / "ca.crt",
                                       timeout_ms=10000)], hosts=hosts, log_level="debug")
        port = d.port()
        port.expect(JOINED)
        set_product(port)
        for verb in ("dns-fail", "down"):
            net(d, "tc0", verb)
            t0 = time.monotonic()
            port.cmd("AT+TCDEVREG")
            port.expect(b"OK\r\n+TCDEVREG:FAIL,-8\r\n", PROMPT)
            assert time.monotonic() - t0 < PROMPT
            net(d, "tc0", "dns-ok" if verb == "dns-fail" else "up")
        assert "Could not resolve host: %s" % TEST_HOST in d.log_text()
        port.cmd("AT+TCDEVREG")
        port.expect(b"OK\r\n+TCDEVREG:OK\r\n", 10)
        assert len(server.requests) == 1  # neither failure reached the server
    finally:
        server.close()
