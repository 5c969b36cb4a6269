"""test_me3630_cloud.py - the me3630 dialect's Aliyun CLOUD* commands against
a real mosquitto (w800-me3630-at.md §8-§10), in the `direct` auth mode.

Covers what the golden transcript of §8.8 (tests/transcripts/me3630/)
cannot: the Aliyun password checked by a broker password file for every
signmethod (computed here independently from the §9 recipe), a wrong secret
refused at CONNACK, the 8-topic limit, the numeric-length publish, binary
payloads both ways, broker loss and restart, data-call loss, the §8 knobs,
and secrets that never reach the log or the trace.

Broker-side peers are paho-mqtt clients (python3-paho-mqtt)."""

import hashlib
import hmac
import re
import subprocess

import pytest

from conftest import module_config, wait_for

PK, DN, DS = "tE5jVn6MWfi", "l1mKM0xGE6ia1KifkKaS", "3JfdFK4B56bRWfR5SSiEaaJYGO7PsSRh"
TS = "2524608000000"
TOPIC = "/%s/%s/data" % (PK, DN)
AUTH = "AT+CLOUDAUTH=%s,%s,%s" % (PK, DN, DS)
USERNAME = "%s&%s" % (DN, PK)
READY = b"\r\nready\r\n"
OK = b"\r\nOK\r\n"


def aliyun_password(alg, client_id="%s.%s" % (PK, DN), timestamp=TS, secret=DS):
    """§9.2: upper-case hex HMAC over the sorted name/value pairs."""
    content = "clientId%sdeviceName%sproductKey%s" % (client_id, DN, PK)
    if timestamp:
        content += "timestamp" + timestamp
    return hmac.new(secret.encode(), content.encode(), getattr(hashlib, alg)).hexdigest().upper()


# ------------------------------------------------------------------ helpers


def me_module(tmp_path, broker_port, name="me0", aliyun=None, **me):
    """A fast me3630 module (registered at once, quick data call) talking
    plain TCP to the test broker; `me` merges into the me3630 object."""
    cfg = {"boot_urcs": ["ready"], "network": {"registration_ms": 0, "call_ms": 10},
           "aliyun": {"transport": "tcp", "mqtt_host": "127.0.0.1", "mqtt_port": broker_port,
                      "auth_ms": 10, "connect_timeout_ms": 5000, "ack_timeout_ms": 3000}}
    cfg["aliyun"].update(aliyun or {})
    for k, v in me.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return module_config(tmp_path, name, "me3630", echo=False,
                         trace=str(tmp_path / (name + ".trace")), me3630=cfg)


def start(make_daemon, tmp_path, broker_port, **kw):
    daemon = make_daemon([me_module(tmp_path, broker_port, **kw)], log_level="debug")
    return daemon, daemon.port()


def cmd(port, line, reply, timeout=5):
    """Sends one command ending with CR (the 27.007 S3 character) and expects
    exactly reply."""
    port.send(line + "\r")
    port.expect(reply, timeout)


def attach(port):
    cmd(port, "AT+ZECMCALL=1", b"\r\n+ZECMCALL: CONNECT\r\n" + OK)


def auth(port, line=AUTH):
    cmd(port, line, OK + b"\r\n+ALIAUTH: OK\r\n")


def connect(port, line=AUTH):
    attach(port)
    auth(port, line)
    cmd(port, "AT+CLOUDCONN", OK)


def subscribe(port, *pairs):
    cmd(port, "AT+CLOUDSUB=" + ",".join("%s,%d" % p for p in pairs),
        OK + b"\r\n+CLOUDSUBACK: <OK>\r\n")


def publish_urc(topic, payload, pack_id=0, space=False):
    return b"\r\n+CLOUDPUBLISH:%s%d,%s,%d,%s\r\n" % (b" " if space else b"", pack_id,
                                                      topic.encode(), len(payload), payload)


def state(port, value):
    cmd(port, "AT+CLOUDSTATE?", b"\r\n+CLOUDSTATE: %d\r\n" % value + OK)


@pytest.fixture
def peers(mqtt_peers):
    return mqtt_peers


def password_broker(mosquitto, tmp_path, users):
    """A broker that only accepts the given {username: password}."""
    pw = tmp_path / "passwd"
    for i, (user, password) in enumerate(users.items()):
        subprocess.run(["mosquitto_passwd", "-b"] + (["-c"] if i == 0 else []) +
                       [str(pw), user, password], check=True, capture_output=True)
    return mosquitto(options={"password_file": str(pw)}, allow_anonymous=False)


def connections(broker):
    return broker.log_text().count("New connection from")


# ------------------------------------------------------------------ signing at a real broker


@pytest.mark.parametrize("signmethod,alg", [("hmacsha256", "sha256"), ("hmacsha1", "sha1"),
                                            ("hmacmd5", "md5")])
def test_password_of_every_signmethod_is_accepted_by_the_broker(
        make_daemon, tmp_path, mosquitto, signmethod, alg):
    broker = password_broker(mosquitto, tmp_path, {USERNAME: aliyun_password(alg)})
    _, port = start(make_daemon, tmp_path, broker.port, aliyun={"signmethod": signmethod})
    connect(port)
    state(port, 1)
    client_id = "%s.%s|securemode=3,signmethod=%s,timestamp=%s|" % (PK, DN, signmethod, TS)
    wait_for(lambda: "as %s (p2, c1, k120, u'%s')" % (client_id, USERNAME) in broker.log_text(),
             5, "the broker to log the signed client id and username")


def test_without_timestamp_the_reference_vector_is_used(make_daemon, tmp_path, mosquitto):
    """§9.3: no timestamp in clientId nor in the signed content."""
    assert aliyun_password("sha1", timestamp=None) == "2FEF82AA43735F34BAFC4AAD4C50376A663E699C"
    broker = password_broker(mosquitto, tmp_path, {USERNAME: aliyun_password("sha1", timestamp=None)})
    _, port = start(make_daemon, tmp_path, broker.port,
                    aliyun={"signmethod": "hmacsha1", "timestamp": None})
    connect(port)
    wait_for(lambda: "as %s.%s|securemode=3,signmethod=hmacsha1| " % (PK, DN) in broker.log_text(),
             5, "the client id without timestamp")


def test_configured_client_id_and_securemode_are_signed(make_daemon, tmp_path, mosquitto):
    broker = password_broker(mosquitto, tmp_path,
                             {USERNAME: aliyun_password("sha256", client_id="mcu-0001")})
    _, port = start(make_daemon, tmp_path, broker.port,
                    aliyun={"client_id": "mcu-0001", "securemode": 2})
    connect(port)
    wait_for(lambda: "as mcu-0001|securemode=2,signmethod=hmacsha256,timestamp=%s|" % TS
             in broker.log_text(), 5, "the configured client id")


def test_wrong_secret_is_refused_at_connack_then_the_right_one_connects(
        make_daemon, tmp_path, mosquitto):
    broker = password_broker(mosquitto, tmp_path, {USERNAME: aliyun_password("sha256")})
    daemon, port = start(make_daemon, tmp_path, broker.port)
    attach(port)
    # direct mode cannot know the secret is wrong: the broker says so at CONNACK
    auth(port, "AT+CLOUDAUTH=%s,%s,%s" % (PK, DN, "X" * 32))
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 100\r\n")
    state(port, 0)
    daemon.wait_log("connection failed")
    cmd(port, "AT+CLOUDPUB=%s,0,hi" % TOPIC, b"\r\n+CME ERROR: 3\r\n")
    # authenticate again with the right secret and connect
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    state(port, 1)


# ------------------------------------------------------------------ subscriptions


def test_eight_topics_in_one_cloudsub_and_a_ninth_refused(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    # full-length (64-byte) topics: eight pairs make a ~540-byte line, which
    # the module accepts (its line limit is 1024 bytes, not ESP-AT's 256)
    topics = [("/%s/%s/t%d/" % (PK, DN, i)).ljust(64, "x") for i in range(9)]
    assert all(len(t) == 64 for t in topics)
    # nine pairs in one command: a syntax error, nothing subscribed
    cmd(port, "AT+CLOUDSUB=" + ",".join("%s,0" % t for t in topics[:9]), b"\r\nERROR\r\n")
    subscribe(port, *[(t, i % 2) for i, t in enumerate(topics[:8])])
    peer = peers(broker.port)
    for i, t in enumerate(topics[:8]):
        peer.publish(t, b"m%d" % i, qos=0)
        port.expect(publish_urc(t, b"m%d" % i))
    # a ninth subscription is refused, and nothing reaches the broker
    cmd(port, "AT+CLOUDSUB=%s,0" % topics[8], OK + b"\r\n+CMD ERROR: <-2>\r\n")
    peer.publish(topics[8], b"lost", qos=0)
    # re-subscribing a topic already held does not count twice
    subscribe(port, (topics[0], 1))
    # after one unsubscribe the ninth fits
    cmd(port, "AT+CLOUDUNSUB=%s" % topics[1], OK + b"\r\n+CLOUDUNSUBACK: <OK>\r\n")
    subscribe(port, (topics[8], 0))
    peer.publish(topics[1], b"gone", qos=0)
    peer.publish(topics[8], b"ninth", qos=0)
    port.expect(publish_urc(topics[8], b"ninth"))
    port.expect_nothing_pending()


def test_a_driver_that_only_waits_for_ok_is_never_busy(make_daemon, tmp_path, mosquitto):
    """CLOUDSUB/CLOUDUNSUB answer OK at once; their acks come later as URCs."""
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    port.send("AT+CLOUDSUB=%s/a,0\r" % TOPIC)
    port.send("AT+CLOUDSUB=%s/b,0\r" % TOPIC)
    port.send("AT+CLOUDUNSUB=%s/a\r" % TOPIC)
    port.send("AT+CLOUDPUB=%s/b,0,hi\r" % TOPIC)
    got = port.read_until(publish_urc(TOPIC + "/b", b"hi"), timeout=5)
    assert got.count(OK) == 4 and b"ERROR" not in got, got
    assert got.count(b"\r\n+CLOUDSUBACK: <OK>\r\n") == 2, got
    assert got.count(b"\r\n+CLOUDUNSUBACK: <OK>\r\n") == 1, got
    # the order of the three acks among the OKs depends on the broker's speed;
    # every OK still precedes the ack of its own command
    assert got.index(b"+CLOUDSUBACK") > got.index(OK)


def test_qos1_delivery_carries_the_packet_id(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    subscribe(port, (TOPIC, 1))
    peers(broker.port).publish(TOPIC, b"qos1", qos=1)
    m = port.expect_regex(rb"\r\n\+CLOUDPUBLISH:(\d+)," + re.escape(TOPIC.encode()) + rb",4,qos1\r\n",
                          b"qos1\r\n")
    assert int(m.group(1)) > 0


# ------------------------------------------------------------------ publishing


def test_message_is_the_rest_of_the_line(make_daemon, tmp_path, mosquitto, peers):
    """§8: split only up to the field count; a quoted message loses its quotes."""
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    peer = peers(broker.port, topic=TOPIC)
    connect(port)
    for line, payload in [("temp=25,hum=60,ok", b"temp=25,hum=60,ok"),
                          ('{"temp":25}', b'{"temp":25}'),
                          ('{"temp":25,"hum":60}', b'{"temp":25,"hum":60}'),
                          ('{"a":"x,y","b":[1,2]}', b'{"a":"x,y","b":[1,2]}'),
                          ('"hello, world"', b"hello, world"),
                          ("a=b?c", b"a=b?c"),
                          ('{"a":1,\n "b":2}', b'{"a":1,\n "b":2}')]:  # a lone LF stays
        cmd(port, "AT+CLOUDPUB=%s,1,%s" % (TOPIC, line), OK)
        assert peer.wait_msgs(1)[-1] == (TOPIC, payload)
        peer.msgs.clear()


def test_numeric_length_publish_reads_binary_data(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    peer = peers(broker.port, topic=TOPIC)
    connect(port)
    data = bytes([0, 1, 0x0D, 0x0A, 0x2C, 0x22, 0xFF, 0x80]) + b"AT+CSQ\r\n+++"
    port.send("AT+CLOUDPUB=%s,1,%d\r" % (TOPIC, len(data)))
    port.expect(b"\r\n>")
    port.send(data)
    port.expect(OK)
    assert peer.wait_msgs(1) == [(TOPIC, data)]
    # the same with QoS 0 and the LF of a CR LF terminator: the LF is not data
    port.send("AT+CLOUDPUB=%s,0,3\r\n" % TOPIC)
    port.expect(b"\r\n>")
    port.send(b"xyz")
    port.expect(OK)
    assert peer.wait_msgs(2)[1] == (TOPIC, b"xyz")


def test_numeric_length_data_phase_times_out(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port, aliyun={"pub_data_timeout_ms": 300})
    peer = peers(broker.port, topic=TOPIC)
    connect(port)
    port.send("AT+CLOUDPUB=%s,0,10\r" % TOPIC)
    port.expect(b"\r\n>")
    port.send(b"short")
    port.expect(b"\r\nERROR\r\n", timeout=3)
    cmd(port, "AT", OK)
    assert peer.msgs == []


def test_numeric_length_mode_can_be_disabled(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port, aliyun={"numeric_length": False})
    peer = peers(broker.port, topic=TOPIC)
    connect(port)
    cmd(port, "AT+CLOUDPUB=%s,0,25" % TOPIC, OK)
    assert peer.wait_msgs(1) == [(TOPIC, b"25")]


def test_binary_payload_reaches_the_mcu_unchanged(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    subscribe(port, ("%s/#" % TOPIC, 0))
    payload = bytes(range(256))
    peers(broker.port).publish(TOPIC + "/bin", payload, qos=0)
    port.expect(publish_urc(TOPIC + "/bin", payload))


def test_qos1_publish_waits_for_puback_and_times_out(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port, aliyun={"ack_timeout_ms": 500})
    connect(port)
    broker.pause()
    port.send("AT+CLOUDPUB=%s,1,late\r" % TOPIC)
    port.send("AT\r")  # the module is busy waiting for PUBACK
    port.expect(b"\r\nERROR\r\n")
    port.expect(b"\r\n+CME ERROR: 100\r\n", timeout=3)
    broker.resume()


# ------------------------------------------------------------------ losing the link


def test_broker_restart_then_connect_again(make_daemon, tmp_path, mosquitto, peers):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    subscribe(port, (TOPIC, 0))
    broker.kill()
    daemon.wait_log("session lost")
    port.expect_nothing_pending()  # the ME3630 defines no URC for it (§8.2)
    state(port, 0)
    cmd(port, "AT+CLOUDPUB=%s,0,hi" % TOPIC, b"\r\n+CME ERROR: 3\r\n")
    cmd(port, "AT+CLOUDSUB=%s,0" % TOPIC, OK + b"\r\n+CMD ERROR: <-1>\r\n")
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 100\r\n")  # nobody listens
    broker.start()
    cmd(port, "AT+CLOUDCONN", OK)  # the authentication is still held
    subscribe(port, (TOPIC, 0))
    cmd(port, "AT+CLOUDPUB=%s,0,back" % TOPIC, OK + publish_urc(TOPIC, b"back"))


def test_conn_lost_urc_knob_reports_the_broker_loss(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port, aliyun={"conn_lost_urc": "+CLOUDSTATE: 0"})
    connect(port)
    broker.kill()
    port.expect(b"\r\n+CLOUDSTATE: 0\r\n")


def test_data_call_loss_drops_the_session(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    cmd(port, "AT+ZECMCALL=0", b"\r\n+ZECMCALL: DISCONNECT\r\n" + OK)
    wait_for(lambda: "Client %s.%s|" % (PK, DN) in broker.log_text() and
             "| closed its connection" in broker.log_text(), 5, "the broker to see the link drop")
    state(port, 0)
    cmd(port, "AT+CLOUDPUB=%s,0,hi" % TOPIC, b"\r\n+CME ERROR: 3\r\n")
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 3\r\n")  # no data call
    n = connections(broker)
    attach(port)
    cmd(port, "AT+CLOUDCONN", OK)
    assert connections(broker) == n + 1
    # radio off: the data call goes with a URC, then registration
    cmd(port, "AT+CFUN=0", OK + b"\r\n+ZECMCALL: DISCONNECT\r\n")
    state(port, 0)
    cmd(port, "AT+CFUN=1", OK)
    wait_for(lambda: daemon.log_text().count("network registration: 1") >= 2, 5,
             "the module to register again")
    attach(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)


def test_data_call_loss_during_authentication_is_a_cme_urc(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port, aliyun={"auth_ms": 2000})
    attach(port)
    cmd(port, AUTH, OK)
    cmd(port, "AT+ZECMCALL=0", b"\r\n+ZECMCALL: DISCONNECT\r\n" + OK + b"\r\n+CME ERROR: 100\r\n")
    port.expect_silence(0.3)  # and no late +ALIAUTH
    attach(port)
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 3\r\n")  # never authenticated


def test_clouddisconn_forgets_the_authentication(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    cmd(port, AUTH, b"\r\n+CME ERROR: 3\r\n")  # connected: CLOUDDISCONN first
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 3\r\n")
    cmd(port, "AT+CLOUDDISCONN", OK)
    wait_for(lambda: "disconnected" in broker.log_text(), 5, "a clean disconnect at the broker")
    cmd(port, "AT+CLOUDCONN", b"\r\n+CME ERROR: 3\r\n")  # "authenticate again"
    auth(port)
    cmd(port, "AT+CLOUDCONN=180,0,4", OK)
    wait_for(lambda: "(p2, c0, k180, u'%s')" % USERNAME in broker.log_text(), 5,
             "keepalive 180 and clean session 0 at the broker")


# ------------------------------------------------------------------ knobs and secrets


def test_urc_space_and_unsuback_knobs(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port,
                    aliyun={"urc_space": True, "unsuback_urc": False})
    connect(port)
    subscribe(port, (TOPIC, 0))
    cmd(port, "AT+CLOUDPUB=%s,0,x" % TOPIC, OK + publish_urc(TOPIC, b"x", space=True))
    cmd(port, "AT+CLOUDUNSUB=%s" % TOPIC, OK)
    cmd(port, "AT", OK)


def test_secret_never_reaches_log_or_trace(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon, port = start(make_daemon, tmp_path, broker.port)
    connect(port)
    daemon.stop()
    trace = (tmp_path / "me0.trace").read_text(errors="replace")
    assert "AT+CLOUDAUTH=%s,%s,***" % (PK, DN) in trace
    assert DS not in trace
    assert DS not in daemon.log_text(all_runs=True)
    assert aliyun_password("sha256") not in daemon.log_text(all_runs=True)


def test_line_limit_is_1024_bytes(make_daemon, tmp_path, mosquitto):
    """1023 characters + CR are one command; one more and the line is refused
    once, never executed, and the next line works."""
    broker = mosquitto()
    _, port = start(make_daemon, tmp_path, broker.port)
    cmd(port, "AT+CGMI;" + "x" * (1023 - 8), b"\r\nERROR\r\n")   # executed: unknown command
    cmd(port, "AT+CGMI;" + "x" * (1024 - 8), b"\r\nERROR\r\n")   # too long
    cmd(port, "AT", OK)
