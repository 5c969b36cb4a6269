"""test_w800_mqtt.py - the w800 dialect against a real mosquitto over plain
TCP (scheme 1): the state numbers of §4, publishing (MQTTPUB, MQTTPUBRAW of
every byte value), +MQTTSUBRECV of binary and large payloads, the topic table
(ALREADY SUBSCRIBE, ALREADY FULL SUBSCRIBE, NO UNSUBSCRIBE), the busy reply
while a command waits for the network, connect failures, broker restarts with
reconnect on and off, the last will, and 1024-byte credentials checked by the
broker's password file."""

import re
import socket
import subprocess

import paho.mqtt.client as paho
import pytest

from conftest import wait_for
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, ERROR, OK, PROMPT, connect, connected_urc, mqtt_err, ok, start_w800,
    subrecv, w8_peers)


def query(port, line, expected):
    port.cmd(line)
    port.expect(expected)


def conn_line(state, broker_port, reconnect=1, scheme=1):
    return b'+MQTTCONN:0,%d,%d,"127.0.0.1","%d","",%d\r\n' % (state, scheme, broker_port,
                                                             reconnect) + OK


def skip_discs(port, expected, timeout=10.0):
    """Reads up to the end of `expected`; everything before it must be
    repeated +MQTTDISCONNECTED:0 (one per failed automatic attempt)."""
    got = port.read_until(expected, timeout)
    head = got[:-len(expected)]
    assert head == DISC * (len(head) // len(DISC)), "unexpected bytes before %r: %r" % (
        expected, head)
    return len(head) // len(DISC)


def broker_log_wait(broker, pattern, timeout=5.0):
    rx = re.compile(pattern)
    return wait_for(lambda: rx.search(broker.log_text()), timeout, "mosquitto log %r" % pattern)


# ---------------------------------------------------------------- state numbers


def test_state_numbers_through_a_session(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800()
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,0,0,"","","",0\r\n' + OK)
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","","",0,0,""')
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,1,1,"","","",0\r\n' + OK)
    ok(port, 'AT+MQTTCONNCFG=0,30,0,"","",0,0')
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,2,1,"","","",0\r\n' + OK)
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    port.expect(connected_urc(1, "127.0.0.1", broker.port) + OK)
    query(port, "AT+MQTTCONN?", conn_line(4, broker.port))
    query(port, "AT+MQTTSUB?", OK)  # connected, nothing tracked
    ok(port, 'AT+MQTTSUB=0,"a",1')
    query(port, "AT+MQTTCONN?", conn_line(6, broker.port))
    ok(port, 'AT+MQTTSUB=0,"b/+",2')
    query(port, "AT+MQTTSUB?", b'+MQTTSUB:0,6,"a",1\r\n+MQTTSUB:0,6,"b/+",2\r\n' + OK)
    ok(port, 'AT+MQTTUNSUB=0,"a"')
    query(port, "AT+MQTTCONN?", conn_line(6, broker.port))
    ok(port, 'AT+MQTTUNSUB=0,"b/+"')
    query(port, "AT+MQTTCONN?", conn_line(5, broker.port))
    query(port, "AT+MQTTSUB?", OK)
    port.cmd('AT+MQTTUNSUB=0,"never"')
    port.expect(b"NO UNSUBSCRIBE\r\n" + OK)
    ok(port, "AT+MQTTCLEAN=0")
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,0,0,"","","",0\r\n' + OK)
    query(port, "AT+MQTTSUB?", b'+MQTTSUB:0,0,"",0\r\n' + OK)


def test_qos0_subscribe_reaches_state_6_at_suback(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    _, port = start_w800()
    connect(port, broker.port)
    ok(port, 'AT+MQTTSUB=0,"q0",0')  # OK once queued
    peer = w8_peers(broker.port)
    peer.publish("q0", b"x")
    port.expect(subrecv("q0", b"x"))  # the SUBACK came before this message
    query(port, "AT+MQTTCONN?", conn_line(6, broker.port))
    query(port, "AT+MQTTSUB?", b'+MQTTSUB:0,6,"q0",0\r\n' + OK)


# ---------------------------------------------------------------- publish


def test_pub_qos_levels_and_escapes(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    peer = w8_peers(broker.port, "up/#", qos=2)
    _, port = start_w800()
    connect(port, broker.port)
    ok(port, 'AT+MQTTPUB=0,"up/0","hello",0,0')
    ok(port, 'AT+MQTTPUB=0,"up/1","\\"{\\"timestamp\\":\\"20201121085253\\"}\\"",1,0')
    ok(port, 'AT+MQTTPUB=0,"up/2","a\\,b\\\\c",2,1')
    msgs = peer.wait_msgs(3)
    assert sorted(msgs) == [("up/0", b"hello", False),
                            ("up/1", b'"{"timestamp":"20201121085253"}"', False),
                            ("up/2", b"a,b\\c", False)]
    late = w8_peers(broker.port, "up/2")  # the retained message
    assert late.wait_msgs(1) == [("up/2", b"a,b\\c", True)]


def test_multiline_publish_arrives_whole(start_w800, mosquitto, w8_peers):
    """Raw line feeds inside the quotes stay in the payload (issue 10): only CR
    LF ends an ESP-AT command line."""
    broker = mosquitto()
    peer = w8_peers(broker.port, "up/#")
    _, port = start_w800()
    connect(port, broker.port)
    port.send(b'AT+MQTTPUB=0,"up/ml","{\\"action\\":\\"test\\"\\,\n    \\"time\\":1796175627\\,\n'
              b'    \\"text\\":\\"x\\"}",1,0\r\n')
    port.expect(OK)
    assert peer.wait_msgs(1) == [
        ("up/ml", b'{"action":"test",\n    "time":1796175627,\n    "text":"x"}', False)]
    query(port, "AT+MQTTCONN?", conn_line(4, broker.port))
    port.expect_nothing_pending()


def test_pubraw_every_byte_value(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    peer = w8_peers(broker.port, "raw/#")
    _, port = start_w800()
    connect(port, broker.port)
    ok(port, 'AT+MQTTSUB=0,"raw/a",1')
    payload = bytes(range(256)) + b"\r\n+++\r\nAT\r\n" + bytes(range(255, -1, -1))
    port.cmd('AT+MQTTPUBRAW=0,"raw/a",%d,0,0' % len(payload))
    port.expect(PROMPT)
    port.send(payload)
    port.expect(b"+MQTTPUB:OK\r\n")  # QoS 0: at once, before the echo comes back
    port.expect(subrecv("raw/a", payload))
    big = bytes(i * 7 % 256 for i in range(5760))
    port.cmd('AT+MQTTPUBRAW=0,"raw/b",5760,1,0')
    port.expect(PROMPT)
    port.send(big)
    port.expect(b"+MQTTPUB:OK\r\n")  # QoS 1: after the PUBACK
    assert peer.wait_msgs(2) == [("raw/a", payload, False), ("raw/b", big, False)]


def test_subrecv_binary_empty_and_large(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    # one URC larger than the default 64 KiB TX queue would overflow it
    _, port = start_w800(module={"tx_buffer": 1 << 20})
    connect(port, broker.port)
    ok(port, 'AT+MQTTSUB=0,"down/#",1')
    peer = w8_peers(broker.port)
    for topic, payload in (("down/bin", bytes(range(256)) * 4), ("down/empty", b""),
                           ("down/big", bytes(i % 251 for i in range(200000)))):
        peer.publish(topic, payload)
        port.expect(subrecv(topic, payload), timeout=10)


def test_subrecv_chunk_knob(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    _, port = start_w800(subrecv_chunk=1000)
    connect(port, broker.port)
    ok(port, 'AT+MQTTSUB=0,"c",0')
    payload = bytes(i % 256 for i in range(2500))
    w8_peers(broker.port).publish("c", payload)
    port.expect(subrecv("c", payload[:1000]) + subrecv("c", payload[1000:2000]) +
                subrecv("c", payload[2000:]))


# ---------------------------------------------------------------- the topic table


def test_already_subscribe_and_full_table(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    _, port = start_w800()
    connect(port, broker.port)
    for i in range(10):
        ok(port, 'AT+MQTTSUB=0,"t/%d",%d' % (i, i % 3))
    port.cmd('AT+MQTTSUB=0,"t/3",1')
    port.expect(b"ALREADY SUBSCRIBE\r\n" + OK)
    port.cmd('AT+MQTTSUB=0,"t/10",1')
    port.expect(b"ALREADY FULL SUBSCRIBE\r\n" + OK)
    port.cmd('AT+MQTTSUB=0,"t/11",0')
    port.expect(b"ALREADY FULL SUBSCRIBE\r\n" + OK)
    port.cmd("AT+MQTTSUB?")
    port.expect(b"".join(b'+MQTTSUB:0,6,"t/%d",%d\r\n' % (i, i % 3) for i in range(10)) + OK)
    # the 11th topic was subscribed at the broker all the same
    w8_peers(broker.port).publish("t/10", b"eleven")
    port.expect(subrecv("t/10", b"eleven"))
    ok(port, 'AT+MQTTUNSUB=0,"t/0"')
    ok(port, 'AT+MQTTSUB=0,"t/12",0')  # a slot is free again
    port.cmd('AT+MQTTUNSUB=0,"t/10"')
    port.expect(b"NO UNSUBSCRIBE\r\n" + OK)


def test_full_table_refuse_knob(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    _, port = start_w800(full_subscribe_refuse=True)
    connect(port, broker.port)
    ok(port, "AT+SYSLOG=1")
    for i in range(10):
        ok(port, 'AT+MQTTSUB=0,"t/%d",1' % i)
    port.cmd('AT+MQTTSUB=0,"t/10",1')
    port.expect(b"ALREADY FULL SUBSCRIBE\r\n" + mqtt_err(0x600D))
    peer = w8_peers(broker.port)
    peer.publish("t/10", b"not subscribed")  # nothing comes for this one...
    peer.publish("t/9", b"tracked")          # ...so this is the next URC
    port.expect(subrecv("t/9", b"tracked"))


# ---------------------------------------------------------------- busy, failures


@pytest.fixture
def silent_server():
    """A TCP listener that accepts and never answers (no CONNACK)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    yield srv.getsockname()[1]
    srv.close()


def test_busy_while_conn_pending_then_timeout(start_w800, silent_server):
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1,3000' % silent_server)
    port.expect_silence(0.3)
    port.cmd("AT")
    port.expect(b"\r\nbusy p...\r\n")
    port.cmd("AT+SYSLOG=1")  # dropped, not executed
    port.expect(b"\r\nbusy p...\r\n")
    port.expect(DISC + ERROR, timeout=5)
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,2,1,"","","",0\r\n' + OK)
    query(port, "AT+SYSLOG?", b"+SYSLOG:0\r\n" + OK)


def test_bare_rst_while_busy_forces_a_restart(start_w800, silent_server):
    """ESP-AT v3: AT+RST is the one line a busy module does not drop."""
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1,3000' % silent_server)
    port.expect_silence(0.2)
    port.cmd("AT+RST")
    port.expect(b"\r\nWill force to restart!!!\r\n\r\nready\r\nWIFI CONNECTED\r\nWIFI GOT IP\r\n")
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,0,0,"","","",0\r\n' + OK)


def test_busy_with_syslog_and_conn_failure_code(start_w800, silent_server):
    _, port = start_w800()
    ok(port, "AT+SYSLOG=1")
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,0,3000' % silent_server)
    port.expect_silence(0.2)
    port.cmd("AT")
    port.expect(b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n")
    port.expect(DISC + mqtt_err(0x600B), timeout=5)


def test_connect_refused_and_no_wifi(start_w800, mosquitto):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % dead_port)
    port.expect(DISC + ERROR)
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,2,1,"","","",0\r\n' + OK)
    port.cmd('AT+MQTTCONN=0,"no-such-host.invalid",1883,0')
    port.expect(DISC + ERROR)
    # without Wi-Fi nothing is reachable
    broker = mosquitto()
    port.cmd("AT+CWQAP")
    port.expect(OK + b"WIFI DISCONNECT\r\n")
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    port.expect(DISC + ERROR)
    port.cmd('AT+CWJAP="lab","secret123"')
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n" + OK)
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    port.expect(connected_urc(1, "127.0.0.1", broker.port) + OK)


def test_bad_password_is_refused(start_w800, mosquitto, tmp_path):
    pwfile = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), "dev", "right"], check=True)
    broker = mosquitto(options={"password_file": str(pwfile)}, allow_anonymous=False)
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","dev","wrong",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    port.expect(DISC + ERROR)
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","dev","right",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    port.expect(connected_urc(1, "127.0.0.1", broker.port) + OK)


# ---------------------------------------------------------------- link loss


def test_qos1_publish_when_the_link_dies(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800()
    connect(port, broker.port, reconnect=0)
    broker.pause()  # no PUBACK will come
    port.cmd('AT+MQTTPUB=0,"t","x",1,0')
    port.expect_silence(0.2)
    port.cmd("AT")
    port.expect(b"\r\nbusy p...\r\n")
    broker.kill()
    port.expect(DISC + ERROR)
    query(port, "AT+MQTTCONN?", conn_line(3, broker.port, reconnect=0))


def test_pubraw_when_the_link_dies_while_waiting_for_puback(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800()
    connect(port, broker.port, reconnect=0)
    broker.pause()
    port.cmd('AT+MQTTPUBRAW=0,"t",3,1,0')
    port.expect(PROMPT)
    port.send(b"abc")
    port.expect_silence(0.2)
    broker.kill()
    port.expect(DISC + b"+MQTTPUB:FAIL\r\n")


def test_pubraw_when_the_link_died_during_the_data(start_w800, mosquitto):
    broker = mosquitto()
    d, port = start_w800()
    connect(port, broker.port, reconnect=0)
    port.cmd('AT+MQTTPUBRAW=0,"t",3,0,0')
    port.expect(PROMPT)
    broker.kill()
    d.wait_log("MQTT: connection to 127.0.0.1:%d lost" % broker.port)
    port.expect_silence(0.1)  # no URC inside the data phase
    port.send(b"abc")
    port.expect(DISC + b"+MQTTPUB:FAIL\r\n")
    query(port, "AT+MQTTCONN?", conn_line(3, broker.port, reconnect=0))


def test_ack_timeout(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800(command_timeout_ms=500)
    connect(port, broker.port, reconnect=0)
    broker.pause()
    port.cmd('AT+MQTTSUB=0,"t",1')
    port.expect(ERROR, timeout=3)
    port.cmd('AT+MQTTPUBRAW=0,"t",1,2,0')
    port.expect(PROMPT)
    port.send(b"z")
    port.expect(b"+MQTTPUB:FAIL\r\n", timeout=3)
    broker.resume()


def test_broker_restart_with_reconnect(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    _, port = start_w800(reconnect_interval_ms=200)
    connect(port, broker.port, reconnect=1)
    ok(port, 'AT+MQTTSUB=0,"r/+",1')
    broker.kill()
    port.expect(DISC)
    ok(port, "AT+SYSLOG=1")
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port)
    skip_discs(port, mqtt_err(0x6051))  # auto-reconnect in progress
    port.cmd("AT+MQTTSUB?")
    skip_discs(port, b'+MQTTSUB:0,3,"r/+",1\r\n' + OK)
    broker.start()
    skip_discs(port, connected_urc(1, "127.0.0.1", broker.port))
    # the tracked topics were subscribed again
    w8_peers(broker.port).publish("r/1", b"back")
    port.expect(subrecv("r/1", b"back"))
    query(port, "AT+MQTTCONN?", conn_line(6, broker.port))


def test_broker_restart_without_reconnect(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800(reconnect_interval_ms=200)
    connect(port, broker.port, reconnect=0)
    ok(port, 'AT+MQTTSUB=0,"s",1')
    broker.kill()
    port.expect(DISC)
    broker.start()
    port.expect_silence(1.0)  # five reconnect intervals: no attempt
    query(port, "AT+MQTTCONN?", conn_line(3, broker.port, reconnect=0))
    # the document wants MQTTCLEAN and a new configuration; ESP-AT v3.2 also
    # lets a new MQTTCONN through (decision: permissive)
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,0' % broker.port)
    port.expect(connected_urc(1, "127.0.0.1", broker.port, reconnect=0) + OK)
    ok(port, "AT+MQTTCLEAN=0")
    connect(port, broker.port, reconnect=0)


def test_wifi_loss_drops_mqtt_and_reconnects_after(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800(reconnect_interval_ms=200)
    connect(port, broker.port, reconnect=1)
    port.cmd("AT+CWQAP")
    port.expect(OK + b"WIFI DISCONNECT\r\n" + DISC)
    port.cmd('AT+CWJAP="lab","secret123"')
    skip_discs(port, b"WIFI CONNECTED\r\nWIFI GOT IP\r\n" + OK)
    skip_discs(port, connected_urc(1, "127.0.0.1", broker.port))


# ---------------------------------------------------------------- last will, CLEAN


def test_last_will_when_the_link_dies(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    peer = w8_peers(broker.port, "w8/will")
    _, port = start_w800()
    connect(port, broker.port, client_id="willy", reconnect=0,
            conncfg='60,0,"w8/will","gone for good",1,0')
    port.cmd("AT+CWQAP")  # Wi-Fi lost: the TCP link dies without DISCONNECT
    port.expect(OK + b"WIFI DISCONNECT\r\n" + DISC)
    assert peer.wait_msgs(1) == [("w8/will", b"gone for good", False)]
    broker_log_wait(broker, r"Client willy closed its connection")


def test_last_will_when_the_daemon_dies(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    peer = w8_peers(broker.port, "w8/will")
    d, port = start_w800()
    connect(port, broker.port, client_id="willy", conncfg='60,0,"w8/will","power cut",0,1')
    d.kill9()
    assert peer.wait_msgs(1) == [("w8/will", b"power cut", False)]


def test_clean_disconnects_gracefully(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    peer = w8_peers(broker.port, "w8/will")
    _, port = start_w800()
    connect(port, broker.port, client_id="tidy", conncfg='60,0,"w8/will","unexpected",0,0')
    ok(port, "AT+MQTTCLEAN=0")
    broker_log_wait(broker, r"Client tidy disconnected\.")
    peer.publish("w8/will", b"sentinel")
    assert peer.wait_msgs(1) == [("w8/will", b"sentinel", False)]


# ---------------------------------------------------------------- long credentials


def long_value(port, cmd, value):
    port.cmd("AT+MQTTLONG%s=0,%d" % (cmd, len(value)))
    port.expect(PROMPT)
    port.send(value)
    port.expect(OK)


def test_1024_byte_client_id_username_password(start_w800, mosquitto, tmp_path):
    user = ("u" * 1000 + "0123456789abcdefghijklmn").encode()
    password = bytes(0x21 + i % 90 for i in range(1024))
    client_id = ("c" * 1023 + "!").encode()
    assert len(user) == len(password) == len(client_id) == 1024
    pwfile = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), user, password], check=True)
    broker = mosquitto(options={"password_file": str(pwfile)}, allow_anonymous=False)
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,1,"short","short","short",0,0,""')
    long_value(port, "CLIENTID", client_id)
    long_value(port, "USERNAME", user)
    long_value(port, "PASSWORD", password)
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,0' % broker.port)
    port.expect(connected_urc(1, "127.0.0.1", broker.port, reconnect=0) + OK)
    # the password file accepted the 1024-byte pair; the broker knows the
    # module by the whole 1024-byte id: a client taking that id pushes it out
    # (mosquitto's log lines are cut at 1000 characters, so they cannot tell)
    taker = paho.Client(client_id=client_id.decode(), protocol=paho.MQTTv311)
    taker.username_pw_set(user.decode(), password.decode())
    taker.connect("127.0.0.1", broker.port, 60)
    taker.loop_start()
    try:
        port.expect(DISC)
    finally:
        taker.loop_stop()
        taker.disconnect()
    ok(port, "AT+MQTTCLEAN=0")
    # one byte off: the broker refuses
    ok(port, 'AT+MQTTUSERCFG=0,1,"short","short","short",0,0,""')
    long_value(port, "USERNAME", user)
    long_value(port, "PASSWORD", password[:-1])
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,0' % broker.port)
    port.expect(DISC + ERROR)


# ---------------------------------------------------------------- reset


def test_reset_forgets_the_session(start_w800, mosquitto, w8_peers):
    broker = mosquitto()
    peer = w8_peers(broker.port, "w8/will")
    _, port = start_w800()
    connect(port, broker.port, client_id="rst", conncfg='60,0,"w8/will","reset",0,0')
    ok(port, 'AT+MQTTSUB=0,"x",0')
    port.cmd("AT+RST")
    port.expect(OK + b"\r\nready\r\n" + b"WIFI CONNECTED\r\nWIFI GOT IP\r\n")
    assert peer.wait_msgs(1) == [("w8/will", b"reset", False)]  # a power cut for the broker
    query(port, "AT+MQTTCONN?", b'+MQTTCONN:0,0,0,"","","",0\r\n' + OK)
    query(port, "AT+MQTTUSERCFG?", b'+MQTTUSERCFG:0,0,"","","",0,0,""\r\n' + OK)
    peer.publish("x", b"nobody listens")
    connect(port, broker.port, client_id="rst2")
    port.expect_nothing_pending()
