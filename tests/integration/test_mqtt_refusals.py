"""test_mqtt_refusals.py - what each dialect prints when the broker says no
(issue 10): a SUBACK return code 0x80, a SUBACK granting a lower QoS than
asked, a SUBACK withheld (then the link lost while it is awaited) and a
CONNACK refusal code 1..5 (and an unknown 6). mosquitto grants every
subscription and refuses connections only with 4/5, so the broker here is
the scripted one of mqtt_peer.py, over plain TCP (tencent `mqtt_transport:
tcp`, w800 scheme 1, me3630 `aliyun.transport: tcp`).

Expected bytes:
- tencent (tencent-at.md §3.9, §6.1; the SDK's _handle_suback_packet): a
  refused filter is `OK\\r\\n+TCMQTTSUB:FAIL,-108\\r\\n` and never enters the
  handler table (not listed, not renewed after a reconnect); a lower grant
  is success, listed with the QoS asked for; CONNACK 1..5 are
  `+TCMQTTCONN:FAIL,-113..-117` (-112 for an unknown code). An SDK service's
  own refused subscription (the gateway's reply topic) is asked for again
  by the next command.
- w800 (w800-me3630-at.md §5.5, §5.8): the reference names no bytes for a
  refused SUBACK; the dialect treats it as a failed subscribe with QoS > 0
  (which waits for SUBACK): `\\r\\nERROR\\r\\n`, with AT+SYSLOG=1 the ERR CODE
  of 0x600D first; the topic is not tracked and the state stays 4. QoS 0
  answers OK before any SUBACK (ESP-AT semantics). A refused connect is
  `+MQTTDISCONNECTED:0\\r\\n\\r\\nERROR\\r\\n` (0x600B), state 2.
- me3630 (§8.2, §8.3): OK, then `\\r\\n+CMD ERROR: <-2>\\r\\n` when any topic of
  the CLOUDSUB was refused (the granted ones stay subscribed); a refused
  CLOUDCONN is `\\r\\n+CME ERROR: 100\\r\\n`."""

import re

import pytest

from mqtt_peer import REFUSED, mqtt_peer  # noqa: F401  (fixture)
from test_me3630_cloud import AUTH, attach, me_module
from test_me3630_cloud import OK as ME_OK
from test_me3630_cloud import cmd as me_cmd
from test_me3630_cloud import state as me_state
from test_tencent_mqtt import JOINED, PID, DN, provision, tc_module
from test_tencent_mqtt import state as tc_state
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, ERROR, OK, connect, connected_urc, mqtt_err, ok, start_w800)

# Filters ending in /denied are refused, those ending in /mute get no SUBACK;
# everything else is granted as asked.
DENY = [(r".*/denied", REFUSED), (r".*/mute", None)]
CONNACK_CODES = [1, 2, 3, 4, 5, 6]  # 6: not a 3.1.1 code


def subscribe_packet(peer, topic):
    return peer.wait_packet("SUBSCRIBE", lambda p: p.filters[0][0] == topic)


# ------------------------------------------------------------------ tencent

TC_GRANTED = "%s/%s/data" % (PID, DN)
TC_DENIED = "%s/%s/denied" % (PID, DN)


def tc_start(make_daemon, tmp_path, peer, **tencent):
    daemon = make_daemon([tc_module(tmp_path, peer.port, transport="tcp", **tencent)],
                         log_level="debug")
    port = daemon.port()
    port.expect(JOINED)
    return daemon, port


def tc_connect(port):
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


def test_tencent_refused_subscription_is_fail_108(make_daemon, tmp_path, mqtt_peer):
    peer = mqtt_peer(suback=DENY)
    _, port = tc_start(make_daemon, tmp_path, peer)
    tc_connect(port)
    port.cmd('AT+TCMQTTSUB="%s",1' % TC_DENIED)
    port.expect(b"OK\r\n+TCMQTTSUB:FAIL,-108\r\n")
    assert subscribe_packet(peer, TC_DENIED).filters == [(TC_DENIED, 1)]
    # not in the handler table; the connection is still up
    port.cmd("AT+TCMQTTSUB?")
    port.expect(b"\r\nOK\r\n")
    tc_state(port, 1)


def test_tencent_granted_next_to_refused(make_daemon, tmp_path, mqtt_peer):
    """Only the granted filter is listed, and only it is renewed after the
    link comes back."""
    peer = mqtt_peer(suback=DENY)
    _, port = tc_start(make_daemon, tmp_path, peer)
    tc_connect(port)
    port.cmd('AT+TCMQTTSUB="%s",0' % TC_GRANTED)
    port.expect(b"OK\r\n+TCMQTTSUB:OK\r\n")
    port.cmd('AT+TCMQTTSUB="%s",0' % TC_DENIED)
    port.expect(b"OK\r\n+TCMQTTSUB:FAIL,-108\r\n")
    port.cmd("AT+TCMQTTSUB?")
    port.expect(b'+TCMQTTSUB:"%s",0\r\n\r\nOK\r\n' % TC_GRANTED.encode())
    # a message on the granted filter is delivered
    peer.publish(TC_GRANTED, b"hi")
    port.expect(b'+TCMQTTRCVPUB:"%s",2,"hi"\r\n' % TC_GRANTED.encode())
    # the link drops and comes back: one SUBSCRIBE, for the granted filter
    peer.drop_clients()
    port.expect(b"+TCMQTTDISCON,-103\r\n")
    port.read_until(b"+TCMQTTRECONNECTED\r\n", timeout=10)
    again = peer.wait_packet("SUBSCRIBE", lambda p: p.conn == 1)
    assert again.filters == [(TC_GRANTED, 0)]
    port.cmd("AT+TCMQTTSUB?")
    port.expect(b'+TCMQTTSUB:"%s",0\r\n\r\nOK\r\n' % TC_GRANTED.encode())
    assert [p.filters for p in peer.received("SUBSCRIBE") if p.conn == 1] == [[(TC_GRANTED, 0)]]


def test_tencent_lower_granted_qos_is_success(make_daemon, tmp_path, mqtt_peer):
    """The SDK keeps the QoS it asked for in its handler table."""
    peer = mqtt_peer(suback=[(".*", 0)])
    _, port = tc_start(make_daemon, tmp_path, peer)
    tc_connect(port)
    port.cmd('AT+TCMQTTSUB="%s",1' % TC_GRANTED)
    port.expect(b"OK\r\n+TCMQTTSUB:OK\r\n")
    assert subscribe_packet(peer, TC_GRANTED).filters == [(TC_GRANTED, 1)]
    port.cmd("AT+TCMQTTSUB?")
    port.expect(b'+TCMQTTSUB:"%s",1\r\n\r\nOK\r\n' % TC_GRANTED.encode())


@pytest.mark.parametrize("code", CONNACK_CODES)
def test_tencent_connack_refusal_codes(make_daemon, tmp_path, mqtt_peer, code):
    peer = mqtt_peer(connack=code)
    _, port = tc_start(make_daemon, tmp_path, peer)
    provision(port)
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    sdk = {1: -113, 2: -114, 3: -115, 4: -116, 5: -117, 6: -112}[code]  # §6.1; -112: unknown
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % sdk)
    assert peer.received("CONNECT")[0].client_id == PID + DN
    tc_state(port, 0)
    # the task ended: setters work again
    provision(port)



def test_tencent_refused_gateway_topic_is_asked_again(make_daemon, tmp_path, mqtt_peer):
    """An SDK service's own subscription refused: the command fails with
    -108, and the next one subscribes again (the SDK keeps NACKed filters out
    of its handler table, so IOT_MQTT_IsSubReady() stays false) instead of
    publishing its request to a topic whose answer can never arrive."""
    gw_res = "$gateway/operation/result/%s/%s" % (PID, DN)
    peer = mqtt_peer(suback=[(re.escape(gw_res), REFUSED)])
    _, port = tc_start(make_daemon, tmp_path, peer, gateway_timeout_ms=2000)
    tc_connect(port)
    port.cmd('AT+TCGWONLINE=0,"SUBPRD0001","sub01"')
    port.expect(b"OK\r\n+TCGWONLINE:FAIL,-108\r\n")
    assert not peer.received("PUBLISH")  # no request without its reply topic
    peer.suback = []
    port.cmd('AT+TCGWONLINE=0,"SUBPRD0001","sub01"')
    port.expect(b"OK\r\n")
    peer.wait_packet("SUBSCRIBE", lambda p: p.filters == [(gw_res, 0)], count=2)
    req = peer.wait_packet("PUBLISH")
    assert req.topic == "$gateway/operation/%s/%s" % (PID, DN)
    peer.publish(gw_res, b'{"type":"online","payload":{"devices":[{"product_id":"SUBPRD0001",'
                         b'"device_name":"sub01","result":0}]}}')
    port.expect(b"+TCGWONLINE:OK\r\n")

# ------------------------------------------------------------------ w800


def test_w800_refused_subscription_is_error(start_w800, mqtt_peer):
    peer = mqtt_peer(suback=DENY)
    _, port = start_w800()
    connect(port, peer.port)
    port.cmd('AT+MQTTSUB=0,"t/denied",1')
    port.expect(ERROR)
    assert subscribe_packet(peer, "t/denied").filters == [("t/denied", 1)]
    ok(port, "AT+SYSLOG=1")
    port.cmd('AT+MQTTSUB=0,"u/denied",2')
    port.expect(mqtt_err(0x600D))
    # nothing tracked, and no SUBSCRIBED event: still state 4
    port.cmd("AT+MQTTSUB?")
    port.expect(OK)
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,4,1,"127.0.0.1","%d","",1\r\n' % peer.port + OK)


def test_w800_qos0_subscribe_does_not_wait_for_the_refusal(start_w800, mqtt_peer):
    """§5.8: QoS 0 is OK once the SUBSCRIBE is queued, whatever comes back."""
    peer = mqtt_peer(suback=DENY)
    _, port = start_w800()
    connect(port, peer.port)
    ok(port, 'AT+MQTTSUB=0,"z/denied",0')
    assert subscribe_packet(peer, "z/denied").filters == [("z/denied", 0)]
    port.cmd("AT")
    port.expect(OK)


def test_w800_granted_next_to_refused(start_w800, mqtt_peer):
    peer = mqtt_peer(suback=DENY)
    _, port = start_w800()
    connect(port, peer.port)
    ok(port, 'AT+MQTTSUB=0,"t/ok",1')
    port.cmd('AT+MQTTSUB=0,"t/denied",1')
    port.expect(ERROR)
    port.cmd("AT+MQTTSUB?")
    port.expect(b'+MQTTSUB:0,6,"t/ok",1\r\n' + OK)
    # the refused topic can be asked again (it is not "ALREADY SUBSCRIBE")
    port.cmd('AT+MQTTSUB=0,"t/denied",1')
    port.expect(ERROR)
    assert len([p for p in peer.received("SUBSCRIBE") if p.filters[0][0] == "t/denied"]) == 2


def test_w800_lower_granted_qos_is_ok(start_w800, mqtt_peer):
    """ESP-AT tracks the QoS the command asked for."""
    peer = mqtt_peer(suback=[(".*", 1)])
    _, port = start_w800()
    connect(port, peer.port)
    ok(port, 'AT+MQTTSUB=0,"t/q",2')
    assert subscribe_packet(peer, "t/q").filters == [("t/q", 2)]
    port.cmd("AT+MQTTSUB?")
    port.expect(b'+MQTTSUB:0,6,"t/q",2\r\n' + OK)


def test_w800_withheld_suback_then_link_loss(start_w800, mqtt_peer):
    """No SUBACK: ERROR at w800.command_timeout_ms; the link dropping while
    one is awaited: +MQTTDISCONNECTED:0 and ERROR (§5.8, issue #478 trace),
    then the automatic reconnect."""
    peer = mqtt_peer(suback=DENY)
    _, port = start_w800(command_timeout_ms=500)
    connect(port, peer.port)
    port.cmd('AT+MQTTSUB=0,"t/mute",1')
    port.expect(ERROR, timeout=3)
    port.cmd("AT+MQTTSUB?")
    port.expect(OK)
    port.cmd('AT+MQTTSUB=0,"u/mute",1')
    peer.wait_packet("SUBSCRIBE", lambda p: p.filters[0][0] == "u/mute")
    peer.drop_clients()
    port.expect(DISC + ERROR)
    port.expect(connected_urc(1, "127.0.0.1", peer.port), timeout=5)


@pytest.mark.parametrize("code", CONNACK_CODES)
def test_w800_connack_refusal_codes(start_w800, mqtt_peer, code):
    peer = mqtt_peer(connack=code)
    _, port = start_w800()
    ok(port, "AT+SYSLOG=1")
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % peer.port)
    port.expect(DISC + mqtt_err(0x600B))
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,2,1,"","","",0\r\n' + OK)
    # a failed first connect is not retried
    assert peer.accepted == 1


# ------------------------------------------------------------------ me3630

ME_PK_DN = "/tE5jVn6MWfi/l1mKM0xGE6ia1KifkKaS"


def me_start(make_daemon, tmp_path, peer):
    daemon = make_daemon([me_module(tmp_path, peer.port)], log_level="debug")
    port = daemon.port()
    attach(port)
    me_cmd(port, AUTH, ME_OK + b"\r\n+ALIAUTH: OK\r\n")
    return daemon, port


def test_me3630_refused_subscription_is_cmd_error_2(make_daemon, tmp_path, mqtt_peer):
    peer = mqtt_peer(suback=DENY)
    _, port = me_start(make_daemon, tmp_path, peer)
    me_cmd(port, "AT+CLOUDCONN", ME_OK)
    topic = ME_PK_DN + "/denied"
    me_cmd(port, "AT+CLOUDSUB=%s,1" % topic, ME_OK + b"\r\n+CMD ERROR: <-2>\r\n")
    assert subscribe_packet(peer, topic).filters == [(topic, 1)]
    me_state(port, 1)


def test_me3630_granted_next_to_refused(make_daemon, tmp_path, mqtt_peer):
    """One CLOUDSUB, two topics, one refused: the command reports the
    failure, the granted topic is subscribed (its messages arrive) and the
    refused one can be tried again (it did not take a table slot)."""
    peer = mqtt_peer(suback=DENY)
    _, port = me_start(make_daemon, tmp_path, peer)
    me_cmd(port, "AT+CLOUDCONN", ME_OK)
    good, bad = ME_PK_DN + "/data", ME_PK_DN + "/denied"
    me_cmd(port, "AT+CLOUDSUB=%s,0,%s,1" % (good, bad), ME_OK + b"\r\n+CMD ERROR: <-2>\r\n")
    assert [p.filters for p in peer.received("SUBSCRIBE")] == [[(good, 0)], [(bad, 1)]]
    peer.publish(good, b"hello")
    port.expect(b"\r\n+CLOUDPUBLISH:0,%s,5,hello\r\n" % good.encode())
    me_cmd(port, "AT+CLOUDSUB=%s,1" % bad, ME_OK + b"\r\n+CMD ERROR: <-2>\r\n")
    assert len(peer.received("SUBSCRIBE")) == 3


def test_me3630_lower_granted_qos_is_suback_ok(make_daemon, tmp_path, mqtt_peer):
    peer = mqtt_peer(suback=[(".*", 0)])
    _, port = me_start(make_daemon, tmp_path, peer)
    me_cmd(port, "AT+CLOUDCONN", ME_OK)
    topic = ME_PK_DN + "/data"
    me_cmd(port, "AT+CLOUDSUB=%s,1" % topic, ME_OK + b"\r\n+CLOUDSUBACK: <OK>\r\n")
    assert subscribe_packet(peer, topic).filters == [(topic, 1)]


def test_me3630_withheld_suback_then_link_loss(make_daemon, tmp_path, mqtt_peer):
    """No SUBACK within aliyun.ack_timeout_ms: +CMD ERROR: <-3> and the topic
    is not kept; the link dropping while one is awaited: <-1> (no handle)."""
    peer = mqtt_peer(suback=DENY)
    daemon = make_daemon([me_module(tmp_path, peer.port, aliyun={"ack_timeout_ms": 500})],
                         log_level="debug")
    port = daemon.port()
    attach(port)
    me_cmd(port, AUTH, ME_OK + b"\r\n+ALIAUTH: OK\r\n")
    me_cmd(port, "AT+CLOUDCONN", ME_OK)
    mute = ME_PK_DN + "/mute"
    me_cmd(port, "AT+CLOUDSUB=%s,1" % mute, ME_OK)
    port.expect(b"\r\n+CMD ERROR: <-3>\r\n", timeout=3)
    daemon.wait_log("no SUBACK within 500 ms")
    me_cmd(port, "AT+CLOUDSUB=%s,0" % mute, ME_OK)
    peer.wait_packet("SUBSCRIBE", lambda p: p.filters == [(mute, 0)])
    peer.drop_clients()
    port.expect(b"\r\n+CMD ERROR: <-1>\r\n")
    me_state(port, 0)


@pytest.mark.parametrize("code", CONNACK_CODES)
def test_me3630_connack_refusal_codes(make_daemon, tmp_path, mqtt_peer, code):
    peer = mqtt_peer(connack=code)
    _, port = me_start(make_daemon, tmp_path, peer)
    me_cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 100\r\n")
    me_state(port, 0)
    assert peer.received("CONNECT")[0].username == "l1mKM0xGE6ia1KifkKaS&tE5jVn6MWfi"


# ------------------------------------------------------------------ the peer itself


def test_peer_answers_publish_and_unsubscribe(start_w800, mqtt_peer):
    """The scripted broker's other answers, through a w800 session: QoS 1/2
    PUBLISH acknowledged, UNSUBSCRIBE acknowledged, and go_silent() leaves
    a QoS 1 publish without its PUBACK."""
    peer = mqtt_peer()
    _, port = start_w800()
    connect(port, peer.port)
    ok(port, 'AT+MQTTPUB=0,"p/1","one",1,0')
    ok(port, 'AT+MQTTPUB=0,"p/2","two",2,0')
    pubs = peer.received("PUBLISH")
    assert [(p.topic, p.payload, p.qos) for p in pubs] == [("p/1", b"one", 1), ("p/2", b"two", 2)]
    peer.wait_packet("PUBREL")
    ok(port, 'AT+MQTTSUB=0,"s",1')
    ok(port, 'AT+MQTTUNSUB=0,"s"')
    assert peer.received("UNSUBSCRIBE")[0].filters == ["s"]
    peer.go_silent()
    port.cmd('AT+MQTTPUB=0,"p/3","three",1,0')
    peer.wait_packet("PUBLISH", lambda p: p.topic == "p/3")
    port.expect_silence(0.3)
