"""test_tencent_mqtt.py - the tencent dialect's MQTT commands against a real
mosquitto (tencent-at.md §2, §3.5-§3.9, §4, §7.1).

Covers what the golden transcripts (tests/transcripts/tencent/a*.txt)
cannot: the three transports with real credentials checks (TLS-PSK with a
psk_file, plain TCP with a password_file holding the signed password, TLS
with a test CA), data-phase aborts, binary payloads both ways, the
subscription limit, PUBACK/CONNACK timeouts against a SIGSTOPped broker,
link loss, reconnection and give-up, Wi-Fi gating, and secrets that never
reach the log or the trace.

Broker-side peers are paho-mqtt clients (python3-paho-mqtt)."""

import base64
import hashlib
import hmac
import json
import subprocess
import time

import pytest

from conftest import module_config

PID, DN = "CTQS08Y5LG", "Dev01"
SECRET = "ZHNkIGRzZCA="          # raw key "dsd dsd " (reference §7.1 example)
WRONG_SECRET = "d3Jvbmcga2V5IQ=="  # "wrong key!"
CONNID = "Ab1Cd"
TOPIC = "%s/%s/data" % (PID, DN)
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
USERNAME = "%s%s;21010406;%s;2147483647" % (PID, DN, CONNID)


def signed_password(username, secret, alg):
    """§7.1: hex(HMAC(key = base64-decoded secret, msg = username)) + ";hmac<alg>"."""
    key = base64.b64decode(secret)
    digest = hmac.new(key, username.encode(), getattr(hashlib, alg)).hexdigest()
    return "%s;hmac%s" % (digest, alg)


# ------------------------------------------------------------------ helpers


def tc_module(tmp_path, port, transport="tcp", name="tc0", **tencent):
    t = {"mqtt_transport": transport, "mqtt_host": "127.0.0.1", "mqtt_port": port,
         "connid": CONNID, "wifi": WIFI}
    t.update(tencent)
    return module_config(tmp_path, name, "tencent", echo=False,
                         trace=str(tmp_path / (name + ".trace")), tencent=t)


def start(make_daemon, tmp_path, broker_port, **kw):
    daemon = make_daemon([tc_module(tmp_path, broker_port, **kw)], log_level="debug")
    port = daemon.port()
    port.expect(JOINED)
    return daemon, port


def provision(port, secret=SECRET):
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, secret))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")


def connect(port, params="1,5000,240,1,1", secret=SECRET, timeout=10):
    provision(port, secret)
    port.cmd("AT+TCMQTTCONN=" + params)
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", timeout)


def state(port, value):
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(b"+TCMQTTSTATE:%d\r\n\r\nOK\r\n" % value)


def subscribe(port, topic=TOPIC, qos=0):
    port.cmd('AT+TCMQTTSUB="%s",%d' % (topic, qos))
    port.expect(b"OK\r\n+TCMQTTSUB:OK\r\n")


def rcvpub(topic, payload):
    return b'+TCMQTTRCVPUB:"%s",%d,"%s"\r\n' % (topic.encode(), len(payload), payload)


@pytest.fixture
def peers(mqtt_peers):
    return mqtt_peers


# ------------------------------------------------------------------ transports (certs: conftest)


def psk_broker(mosquitto, tmp_path):
    psk = tmp_path / "psk.txt"
    psk.write_text("%s%s:%s\n" % (PID, DN, base64.b64decode(SECRET).hex()))
    return mosquitto(listeners=[{"psk_hint": "vmodule"}], options={"psk_file": str(psk)})


def test_tls_psk_connects_with_the_right_secret(make_daemon, tmp_path, mosquitto):
    broker = psk_broker(mosquitto, tmp_path)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tls-psk")
    connect(port)
    state(port, 1)
    subscribe(port)
    port.cmd('AT+TCMQTTPUB="%s",1,"over psk"' % TOPIC)
    port.expect(b"OK\r\n" + rcvpub(TOPIC, b"over psk") + b"+TCMQTTPUB:OK\r\n")
    assert ", tls-psk)" in daemon.wait_log("mqtt: connected to 127.0.0.1")


def test_tls_psk_wrong_secret_fails_with_tls_code(make_daemon, tmp_path, mosquitto):
    broker = psk_broker(mosquitto, tmp_path)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tls-psk")
    provision(port, WRONG_SECRET)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-703\r\n")
    state(port, 0)
    # the task ended: setters work again
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


def password_broker(mosquitto, tmp_path, secret=SECRET, alg="sha256"):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), USERNAME,
                    signed_password(USERNAME, secret, alg)], check=True, capture_output=True)
    return mosquitto(options={"password_file": str(pw)}, allow_anonymous=False)


@pytest.mark.parametrize("alg,sign_method", [("sha256", None), ("sha256", "hmacsha256"),
                                             ("sha1", "hmacsha1")])
def test_tcp_signed_password(make_daemon, tmp_path, mosquitto, alg, sign_method):
    """The broker only knows USERNAME with the password computed here from
    the same inputs, so a connect proves both formats (§7.1)."""
    broker = password_broker(mosquitto, tmp_path, alg=alg)
    extra = {"sign_method": sign_method} if sign_method else {}
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tcp", **extra)
    connect(port)
    state(port, 1)
    # MQTT 3.1.1 (p2), client id <pid><dn>, clean session and keepalive from the command
    assert "as %s%s (p2, c1, k240, u'%s')" % (PID, DN, USERNAME) in broker.log_text()


def test_connect_parameters_and_sdkappid_reach_the_broker(make_daemon, tmp_path, mosquitto):
    user = "%s%s;12010126;%s;2147483647" % (PID, DN, CONNID)
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), user,
                    signed_password(user, SECRET, "sha256")], check=True, capture_output=True)
    broker = mosquitto(options={"password_file": str(pw)}, allow_anonymous=False)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tcp", sdkappid="12010126")
    connect(port, "1,5000,300,0,1")
    assert "as %s%s (p2, c0, k300, u'%s')" % (PID, DN, user) in broker.log_text()


def test_reference_password_vectors():
    """The test's own signer reproduces the reference's worked example."""
    user = "CTQS08Y5LGDev01;21010406;Ab1Cd;2147483647"
    assert signed_password(user, SECRET, "sha1") == \
        "7d184d3a384a97ea8e830c375c5f46e76f2b1415;hmacsha1"
    assert signed_password(user, SECRET, "sha256") == \
        "530b0da568b7999c3def21ec83a25a37ac4036a02b22b998c0e2b32637cba9f0;hmacsha256"


def test_tcp_wrong_secret_is_not_authorised(make_daemon, tmp_path, mosquitto):
    broker = password_broker(mosquitto, tmp_path)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tcp")
    provision(port, WRONG_SECRET)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-117\r\n")


def test_tcp_sha1_password_rejected_by_sha256_broker(make_daemon, tmp_path, mosquitto):
    broker = password_broker(mosquitto, tmp_path, alg="sha256")
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tcp",
                         sign_method="hmacsha1")
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-117\r\n")


def tls_broker(mosquitto, certs, tmp_path):
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), USERNAME,
                    signed_password(USERNAME, SECRET, "sha256")], check=True, capture_output=True)
    return mosquitto(listeners=[{"cafile": str(certs / "ca.crt"),
                                 "certfile": str(certs / "server.crt"),
                                 "keyfile": str(certs / "server.key")}],
                     options={"password_file": str(pw)}, allow_anonymous=False)


def test_tls_with_ca_connects(make_daemon, tmp_path, mosquitto, certs):
    broker = tls_broker(mosquitto, certs, tmp_path)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tls",
                         ca_file=str(certs / "ca.crt"))
    connect(port)
    state(port, 1)
    assert ", tls)" in daemon.wait_log("mqtt: connected to 127.0.0.1")


def test_tls_with_wrong_ca_fails_with_tls_code(make_daemon, tmp_path, mosquitto, certs):
    broker = tls_broker(mosquitto, certs, tmp_path)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport="tls",
                         ca_file=str(certs / "otherca.crt"))
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-703\r\n")
    # the password never left the module: the broker saw no CONNECT
    assert USERNAME not in broker.log_text()


def test_tcmqttsrv_overrides_the_configured_host(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    # the configured host is unusable (port 1 on loopback refuses)
    daemon, port = start(make_daemon, tmp_path, 1, transport="tcp", mqtt_host="127.0.0.2")
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,2000,240,1,1")
    # network_tcp_connect()'s bare -1 (test_tencent_faults.py has them all)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-1\r\n")
    port.cmd('AT+TCMQTTSRV="127.0.0.1"')
    port.expect(b"OK\r\n+TCMQTTSRV:OK\r\n")
    # the port still comes from the config: point it at the broker
    daemon.config["modules"][0]["tencent"]["mqtt_port"] = broker.port
    daemon.restart()
    port = daemon.port()
    port.expect(JOINED)
    port.cmd('AT+TCMQTTSRV="127.0.0.1"')
    port.expect(b"OK\r\n+TCMQTTSRV:OK\r\n")
    port.cmd("AT+TCMQTTCONN=1,2000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


# ------------------------------------------------------------------ Wi-Fi gating


def test_connect_needs_wifi(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    no_auto_join = {"access_points": WIFI["access_points"], "join_ms": 0}
    daemon = make_daemon([tc_module(tmp_path, broker.port, wifi=no_auto_join)])
    port = daemon.port()
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    # the firmware's connect fails without a network: over plain TCP the SDK
    # returns -1 (over TLS -703, see test_default_broker_host_and_port)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-1\r\n")
    port.cmd('AT+CWJAP="lab","labpass123"')
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


@pytest.mark.parametrize("region,host,transport,port_,code", [
    (None, "CTQS08Y5LG.iotcloud.tencentdevices.com", "tls-psk", 8883, -703),
    ("na-ashburn", "CTQS08Y5LG.us-east.iotcloud.tencentdevices.com", "tls-psk", 8883, -703),
    ("ap-beijing", "CTQS08Y5LG.iotcloud.tencentdevices.com", "tcp", 1883, -1),
])
def test_default_broker_host_and_port(make_daemon, tmp_path, region, host, transport, port_, code):
    """Without Wi-Fi the host is only named, never resolved (no DNS query
    leaves the test machine): the lookup fails as in the firmware, where
    HAL_TLS_Connect() only logs its -602 and the TLS connect returns -703
    (plain TCP: -1)."""
    m = module_config(tmp_path, "tc0", "tencent", echo=False, tencent={
        "mqtt_transport": transport, "wifi": {"access_points": WIFI["access_points"]}})
    daemon = make_daemon([m])
    port = daemon.port()
    region_arg = ',"%s"' % region if region else ""
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"%s' % (PID, DN, SECRET, region_arg))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % code)
    daemon.wait_log("MQTT: cannot reach %s:%d: Wi-Fi is not connected" % (host, port_))


def test_wifi_drop_drops_mqtt_and_rejoin_reconnects(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    subscribe(port)
    port.cmd("AT+CWQAP")
    port.expect(b"\r\nOK\r\nWIFI DISCONNECT\r\n+TCMQTTDISCON,-103\r\n")
    state(port, 0)
    port.expect(b"+TCMQTTRECONNECTING\r\n", 5)
    port.cmd('AT+CWJAP="lab","labpass123"')
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n")
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*\+TCMQTTRECONNECTED\r\n",
                      b"+TCMQTTRECONNECTED\r\n", 15)
    state(port, 1)


# ------------------------------------------------------------------ framing


# issue 10: a host's JSON with raw line feeds inside the quotes (the esp-at core
# ends a command only at CR LF, so the payload is published whole)
MULTILINE_PUB = (b'AT+TCMQTTPUB="%s",1,"{\\"action\\":\\"test\\"\\,\n    \\"time\\":1796175627\\,\n'
                 b'    \\"text\\":\\"x\\"}"\r\n' % TOPIC.encode())
MULTILINE_PAYLOAD = b'{"action":"test",\n    "time":1796175627,\n    "text":"x"}'


def test_multiline_publish_arrives_whole(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    peer = peers(broker.port, TOPIC)
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    port.send(MULTILINE_PUB)
    port.expect(b"OK\r\n+TCMQTTPUB:OK\r\n")
    assert peer.wait_msgs(1) == [(TOPIC, MULTILINE_PAYLOAD)]
    state(port, 1)                     # the next reply pairs with the next command
    port.expect_nothing_pending()


# ------------------------------------------------------------------ data phase


@pytest.fixture
def connected(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port, publ_timeout_ms=1000)
    connect(port)
    subscribe(port)
    return daemon, port, broker


def publ(port, length, cmd="PUBL", qos=0):
    port.cmd('AT+TCMQTT%s="%s",%d,%d' % (cmd, TOPIC, qos, length))
    port.expect(b"OK\r\n>\r\n")


def marker_is_next(port):
    """Nothing was published by the aborted command: the next message on
    the topic is this marker."""
    port.cmd('AT+TCMQTTPUB="%s",0,"marker"' % TOPIC)
    port.expect(b"OK\r\n+TCMQTTPUB:OK\r\n" + rcvpub(TOPIC, b"marker"))


def test_publ_aborts_on_plus_plus_plus(connected):
    daemon, port, _ = connected
    publ(port, 100)
    port.send(b"abc+++\r\n")
    port.expect(b"+CME ERROR:204\r\n")
    marker_is_next(port)


def test_publ_aborts_on_short_payload(connected):
    daemon, port, _ = connected
    publ(port, 11)
    port.send(b"hello\r\n")
    port.expect(b"+CME ERROR:204\r\n")
    marker_is_next(port)


def test_publ_aborts_on_timeout(connected):
    daemon, port, _ = connected
    publ(port, 11)
    t0 = time.monotonic()
    port.send(b"hello")
    port.expect(b"+CME ERROR:204\r\n", 5)
    assert time.monotonic() - t0 >= 0.9
    marker_is_next(port)


def test_publ_rejects_wrong_terminator(connected):
    daemon, port, _ = connected
    publ(port, 11)
    port.send(b"hello,worldX\r\n")
    port.expect(b"+CME ERROR:204\r\n")
    marker_is_next(port)


def test_lines_during_qos1_wait_get_busy(connected):
    daemon, port, broker = connected
    broker.pause()
    port.cmd('AT+TCMQTTPUB="%s",1,"x"' % TOPIC)
    port.expect(b"OK\r\n")
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n")
    broker.resume()
    port.expect(rcvpub(TOPIC, b"x") + b"+TCMQTTPUB:OK\r\n")


def test_pubraw_carries_every_byte_value(connected, peers):
    daemon, port, broker = connected
    peer = peers(broker.port, TOPIC)
    data = bytes(range(256))
    publ(port, 256, cmd="PUBRAW", qos=1)
    port.send(data + b"\r\n")
    port.expect(rcvpub(TOPIC, data) + b"+TCMQTTPUBRAW:OK\r\n")
    assert peer.wait_msgs(1) == [(TOPIC, data)]


def test_publ_2048_bytes(connected, peers):
    daemon, port, broker = connected
    peer = peers(broker.port, TOPIC)
    data = bytes((i * 7) % 94 + 33 for i in range(2048)).replace(b"\\", b"/")
    publ(port, 2048, qos=1)
    port.send(data + b"\r\n")
    port.expect(rcvpub(TOPIC, data) + b"+TCMQTTPUBL:OK\r\n")
    assert peer.wait_msgs(1) == [(TOPIC, data)]


def test_rcvpub_of_binary_and_2k_payloads(connected, peers):
    daemon, port, broker = connected
    peer = peers(broker.port)
    binary = b'\x00\x01"\r\n,\\\xff"' + bytes(range(256))
    big = bytes(i % 251 for i in range(2048))
    peer.publish(TOPIC, binary)
    port.expect(rcvpub(TOPIC, binary))
    peer.publish(TOPIC, big, qos=0)
    port.expect(rcvpub(TOPIC, big))
    # messages on topics the module did not subscribe are not shown
    peer.publish("%s/%s/other" % (PID, DN), b"no")
    peer.publish(TOPIC, b"yes")
    port.expect(rcvpub(TOPIC, b"yes"))


def test_wildcard_subscription_and_unsubscribe(connected, peers):
    daemon, port, broker = connected
    peer = peers(broker.port)
    subscribe(port, "%s/+/evt/#" % PID, 1)
    peer.publish("%s/x/evt/a/b" % PID, b"1")
    port.expect(rcvpub("%s/x/evt/a/b" % PID, b"1"))
    port.cmd('AT+TCMQTTSUB?')
    port.expect(b'+TCMQTTSUB:"%s",0\r\n+TCMQTTSUB:"%s/+/evt/#",1\r\n\r\nOK\r\n'
                % (TOPIC.encode(), PID.encode()))
    port.cmd('AT+TCMQTTUNSUB="%s"' % TOPIC)
    port.expect(b"OK\r\n+TCMQTTUNSUB:OK\r\n")
    port.cmd('AT+TCMQTTSUB?')
    port.expect(b'+TCMQTTSUB:"%s/+/evt/#",1\r\n\r\nOK\r\n' % PID.encode())
    peer.publish(TOPIC, b"gone")
    peer.publish("%s/y/evt/c" % PID, b"2")
    port.expect(rcvpub("%s/y/evt/c" % PID, b"2"))


def test_eleventh_subscription_fails(connected):
    daemon, port, _ = connected
    for i in range(9):  # TOPIC is the first
        subscribe(port, "t/%d" % i)
    # re-subscribing an existing filter updates it
    subscribe(port, "t/0", 1)
    port.cmd('AT+TCMQTTSUB="t/overflow",0')
    port.expect(b"OK\r\n+TCMQTTSUB:FAIL,-107\r\n")
    port.cmd("AT+TCMQTTSUB?")
    lines = port.read_until(b"\r\nOK\r\n")
    assert lines.count(b"+TCMQTTSUB:") == 10
    assert b'+TCMQTTSUB:"t/0",1\r\n' in lines
    port.cmd('AT+TCMQTTUNSUB="t/3"')
    port.expect(b"OK\r\n+TCMQTTUNSUB:OK\r\n")
    subscribe(port, "t/overflow")


# ------------------------------------------------------------------ timeouts


def test_acks_that_never_come_fail_202_after_cmdtimeout(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port, "1,1000,240,1,1")
    subscribe(port, "a/c")
    broker.pause()
    t0 = time.monotonic()
    port.cmd('AT+TCMQTTPUB="%s",1,"lost"' % TOPIC)
    port.expect(b"OK\r\n+TCMQTTPUB:FAIL,202\r\n", 5)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 3, elapsed
    # the link itself is still up
    state(port, 1)
    port.cmd('AT+TCMQTTSUB="a/b",0')
    port.expect(b"OK\r\n+TCMQTTSUB:FAIL,202\r\n", 5)
    port.cmd('AT+TCMQTTUNSUB="a/c"')
    port.expect(b"OK\r\n+TCMQTTUNSUB:FAIL,202\r\n", 5)
    # QoS 0 needs no acknowledgement
    port.cmd('AT+TCMQTTPUB="%s",0,"q0"' % TOPIC)
    port.expect(b"OK\r\n+TCMQTTPUB:OK\r\n")
    broker.resume()


def test_connect_without_connack_fails_202(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    provision(port)
    broker.pause()
    t0 = time.monotonic()
    port.cmd("AT+TCMQTTCONN=1,1000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,202\r\n", 5)
    assert time.monotonic() - t0 >= 0.9
    state(port, 0)
    broker.resume()
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


# ------------------------------------------------------------------ link loss


def test_broker_restart_reconnects_and_resubscribes(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    subscribe(port, TOPIC, 1)
    state(port, 1)
    broker.kill()
    port.expect(b"+TCMQTTDISCON,-103\r\n")
    state(port, 0)
    # setters still see the task running; publishing needs the link
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"+CME ERROR:208\r\n")
    port.cmd('AT+TCMQTTPUB="%s",0,"x"' % TOPIC)
    port.expect(b"+CME ERROR:208\r\n")
    port.expect(b"+TCMQTTRECONNECTING\r\n", 5)
    broker.start()
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*\+TCMQTTRECONNECTED\r\n",
                      b"+TCMQTTRECONNECTED\r\n", 20)
    state(port, 1)
    # the subscription was renewed on the new broker (a clean one): our own
    # publish goes after the re-SUBSCRIBE on the same connection...
    port.cmd('AT+TCMQTTPUB="%s",1,"again"' % TOPIC)
    port.expect(b"OK\r\n" + rcvpub(TOPIC, b"again") + b"+TCMQTTPUB:OK\r\n")
    # ... and a message from another client arrives too
    peer = peers(broker.port)
    peer.publish(TOPIC, b"from peer")
    port.expect(rcvpub(TOPIC, b"from peer"))
    port.cmd("AT+TCMQTTSUB?")
    port.expect(b'+TCMQTTSUB:"%s",1\r\n\r\nOK\r\n' % TOPIC.encode())


def test_reconnect_disabled_ends_the_task(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port, "1,5000,240,1,0")
    subscribe(port)
    broker.kill()
    # the disconnect event, then the task's exit
    port.expect(b"+TCMQTTDISCON,-103\r\n+TCMQTTDISCON,-103\r\n")
    broker.start()
    port.expect_silence(3.0)  # no RECONNECTING / RECONNECTED
    state(port, 0)
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+CME ERROR:208\r\n")
    port.cmd("AT+TCMQTTSUB?")
    port.expect(b"\r\nOK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


def test_reconnect_gives_up_with_106(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    # a 2 s limit: the first failed attempt doubles the 1..2 s wait past it
    daemon, port = start(make_daemon, tmp_path, broker.port, reconnect_max_ms=2000)
    connect(port)
    broker.kill()
    port.expect(b"+TCMQTTDISCON,-103\r\n")
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)+\+TCMQTTDISCON,-106\r\n",
                      b"+TCMQTTDISCON,-106\r\n", 10)
    state(port, 0)
    provision(port)  # the task is gone: setters work


def test_disconnect_while_reconnecting(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    broker.kill()
    port.expect(b"+TCMQTTDISCON,-103\r\n")
    port.expect(b"+TCMQTTRECONNECTING\r\n", 5)
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+TCMQTTDISCON,2\r\n\r\nOK\r\n")
    state(port, 0)
    broker.start()
    port.expect_silence(2.5)


def test_reset_drops_the_session_silently(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    port.cmd("AT+RST")
    port.expect(b"\r\nOK\r\n")
    port.wait_ready()
    port.expect(JOINED)
    state(port, 0)
    port.cmd("AT+TCMQTTCONN?")
    port.expect(b"+TCMQTTCONN:1,5000,240,1,1\r\n\r\nOK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


# ------------------------------------------------------------------ secrets


@pytest.mark.parametrize("transport", ["tls-psk", "tcp"])
def test_secrets_never_in_log_or_trace(make_daemon, tmp_path, mosquitto, transport):
    if transport == "tls-psk":
        broker = psk_broker(mosquitto, tmp_path)
    else:
        broker = password_broker(mosquitto, tmp_path)
    daemon, port = start(make_daemon, tmp_path, broker.port, transport=transport)
    connect(port)
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+TCMQTTDISCON,2\r\n\r\nOK\r\n")
    daemon.stop()
    log = daemon.log_text(all_runs=True)
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    assert "mqtt: connected to" in log
    forbidden = [SECRET, base64.b64decode(SECRET).hex(), "dsd dsd",
                 signed_password(USERNAME, SECRET, "sha256").split(";")[0]]
    for text, name in ((log, "log"), (trace, "trace")):
        for s in forbidden:
            assert s not in text, "%r found in the %s" % (s, name)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("key,value,message", [
    ("mqtt_transport", "quic", 'mqtt_transport: must be "tls-psk", "tcp" or "tls"'),
    ("mqtt_port", 0, "mqtt_port: must be an integer between 1 and 65535"),
    ("sign_method", "md5", 'sign_method: must be "hmacsha256" or "hmacsha1"'),
    ("mac", "84:f3:eb:56:0e", "mac: must be a MAC address"),
    ("connid", "abc", "connid: must be 5 characters of [A-Za-z0-9]"),
    ("sdkappid", "12a", "sdkappid: must be a string of 1 to 15 digits"),
    ("module_name", "x" * 31, "module_name: must be 1 to 30 characters"),
    ("flash_mb", 3, "flash_mb: must be 2 or 4"),
    ("bogus", 1, "bogus: unknown key"),
])
def test_config_errors_name_the_key(run_vmoduled, tmp_path, key, value, message):
    cfg = {"state_dir": str(tmp_path / "state"),
           "modules": [module_config(tmp_path, "tc0", "tencent", tencent={key: value})]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmoduled: ")
    assert "modules[0].tencent." + message in lines[0], lines[0]


def test_config_tls_needs_ca_file(run_vmoduled, tmp_path):
    cfg = {"state_dir": str(tmp_path / "state"),
           "modules": [module_config(tmp_path, "tc0", "tencent",
                                     tencent={"mqtt_transport": "tls"})]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2
    assert "modules[0].tencent.ca_file: required" in cp.stderr
