"""test_tencent_gateway.py - the tencent dialect's gateway commands,
AT+TCGWONLINE and AT+TCGWBIND, against a real mosquitto and a scripted
cloud (tencent-at.md §3.11, §6.1, §7.6, §7.7).

The module is a gateway whose own triple is PID/DN; it publishes gateway
requests on $gateway/operation/<pid>/<dn> and server-time requests on
$sys/operation/<pid>/<dn>, and expects the replies on the matching
.../result/... topics. `Cloud`, the tool users run (`vmodule-cloud serve`),
plays the Tencent side: every request is one of its events, and it answers
according to the test's policy, checking bind signatures itself (§7.6).

"Nothing was published" is always proved with a barrier: a later request
that does reach the cloud must be the next one recorded (one publisher, one
connection, QoS 0: the broker keeps the order)."""

import base64
import hashlib
import hmac
import json
import re
import time

import pytest

from cloud import CloudTool
from conftest import module_config, wait_for
from test_tencent_mqtt import start  # the same tencent module on a local broker

PID, DN = "CTQS08Y5LG", "Dev01"     # the gateway itself
SECRET = "ZHNkIGRzZCA="
CONNID = "Ab1Cd"
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
TOPIC = "%s/%s/data" % (PID, DN)     # a user topic

SPID, SDN = "SUBPRD0001", "sub01"    # sub-devices
SDN2 = "sub02"
SSECRET = "c3ViIGRldmljZSBzZWNyZXQ="  # "sub device secret"
SERVER_TIME = 1589786839

GW_REQ = "$gateway/operation/%s/%s" % (PID, DN)
GW_RES = "$gateway/operation/result/%s/%s" % (PID, DN)
SYS_REQ = "$sys/operation/%s/%s" % (PID, DN)
SYS_RES = "$sys/operation/result/%s/%s" % (PID, DN)
TIME_REQUEST = b'{"type": "get", "resource": ["time"]}'

BUSY = b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
ERR_TYPE = b"ERR CODE:0x01050000\r\n\r\nERROR\r\n"
CME_PARA = b"+CME ERROR:204\r\n"
CME_STATE = b"+CME ERROR:208\r\n"
NONE_ONLINE = b"\r\nOK\r\n"


# ------------------------------------------------------------------ messages (§7.6)


def bind_signature(spid, sdn, secret, random_, timestamp):
    """§7.6: base64(raw HMAC-SHA1(key = the secret string itself, as ASCII,
    msg = "<pid><dn>;<random>;<timestamp>"))."""
    text = "%s%s;%d;%d" % (spid, sdn, random_, timestamp)
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def gw_request(kind, spid, sdn):
    """online / offline / unbind request, exactly as the module must publish it."""
    return ('{"type":"%s","payload":{"devices":[{"product_id":"%s","device_name":"%s"}]}}'
            % (kind, spid, sdn)).encode()


def gw_reply(kind, spid, sdn, result):
    return ('{"type":"%s","payload":{"devices":[{"product_id":"%s","device_name":"%s",'
            '"result":%d}]}}' % (kind, spid, sdn, result)).encode()


def bind_request_re(spid, sdn, timestamp=SERVER_TIME):
    """The bind request with the signature and the random left open."""
    return re.compile(
        rb'\{"type":"bind","payload":\{"devices":\[\{"product_id":"%s","device_name":"%s",'
        rb'"signature":"([A-Za-z0-9+/]{27}=)","random":(\d+),"timestamp":%d,'
        rb'"signmethod":"hmacsha1","authtype":"psk"\}\]\}\}'
        % (re.escape(spid.encode()), re.escape(sdn.encode()), timestamp))


class Cloud:
    """The Tencent cloud's gateway and time services: `vmodule-cloud serve
    --no-http` on the broker, which checks bind signatures itself (§7.6).

    Its policy (the tool's --config file, reloaded with SIGHUP by
    configure(), which returns once the tool has reloaded):
      results      kind -> result code answered to an online/offline/bind/
                   unbind request, or None for no answer at all (default 0);
      time         unix seconds answered to the time request, or "none";
      raw_replies  kind ("time", "online", ...) -> raw payloads answered
                   instead of the answer, in order (malformed replies);
      decoys       payloads published on the gateway result topic before
                   every real gateway answer (replies the module must ignore);
      secrets      (pid, dn) -> sub-device secret, to check bind signatures:
                   a wrong or unverifiable one is answered 803 and is a
                   "bad_signature" event (bad_binds).
    requests: every (topic, payload) the module published, in order, from
    the tool's "request" events."""

    def __init__(self, port, workdir, **policy):
        self.config = workdir / ("cloud-%d.json" % time.monotonic_ns())
        self.policy = {"results": {}, "time": SERVER_TIME, "sub_devices": {}}
        self._update(policy)
        self.tool = CloudTool(["serve", "--broker", "127.0.0.1:%d" % port, "--no-http",
                               "--config", self.config])
        self.tool.wait_event("listening")

    def _update(self, policy):
        for k, v in policy.items():
            if k == "secrets":
                self.policy["sub_devices"].update({"%s/%s" % key: s for key, s in v.items()})
            elif k == "results":
                self.policy["results"].update(v)
            elif k in ("raw_replies", "decoys"):  # payloads: bytes here, text in the file
                self.policy[k] = ({kind: [r.decode() for r in rs] for kind, rs in v.items()}
                                  if k == "raw_replies" else [d.decode() for d in v])
            else:
                self.policy[k] = v
        self.config.write_text(json.dumps(self.policy))

    def configure(self, **policy):
        self._update(policy)
        self.tool.reload()

    @property
    def requests(self):
        return [(e["topic"], e["payload"].encode()) for e in self.tool.synced("request")]

    @property
    def bad_binds(self):
        return self.tool.synced("bad_signature")

    def wait_resubscribed(self, timeout=20.0):
        """After a broker restart: the tool has subscribed again."""
        self.tool.wait_event("resubscribed", timeout)

    def close(self):
        self.tool.close()

    def wait_requests(self, n, timeout=5.0):
        wait_for(lambda: len(self.requests) >= n, timeout, "%d request(s) at the cloud" % n)
        return self.requests


@pytest.fixture
def clouds(tmp_path):
    """clouds(broker_port, **policy) -> Cloud, subscribed; all closed at teardown."""
    made = []

    def make(port, **policy):
        c = Cloud(port, tmp_path, **policy)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


# ------------------------------------------------------------------ module helpers


def provision(port):
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")


def mqtt_connect(port):
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)


def online(port, spid=SPID, sdn=SDN, mode=0, result=b"OK"):
    port.cmd('AT+TCGWONLINE=%d,"%s","%s"' % (mode, spid, sdn))
    port.expect(b"OK\r\n+TCGWONLINE:" + result + b"\r\n")


def bind(port, spid=SPID, sdn=SDN, secret=SSECRET, result=b"OK"):
    port.cmd('AT+TCGWBIND=0,"%s","%s","%s"' % (spid, sdn, secret))
    port.expect(b"OK\r\n+TCGWBIND:" + result + b"\r\n")


def unbind(port, spid=SPID, sdn=SDN, result=b"OK"):
    port.cmd('AT+TCGWBIND=1,"%s","%s"' % (spid, sdn))
    port.expect(b"OK\r\n+TCGWBIND:" + result + b"\r\n")


def online_list(port, devices):
    port.cmd("AT+TCGWONLINE?")
    port.expect(b"".join(b'+TCGWONLINE:"%s,%s"\r\n' % (p.encode(), d.encode())
                         for p, d in devices) + b"\r\nOK\r\n")


def on(kind, spid=SPID, sdn=SDN):
    """A request as Cloud.requests records it."""
    return (GW_REQ, gw_request(kind, spid, sdn))


TIME_REQ = (SYS_REQ, TIME_REQUEST)


@pytest.fixture
def gw(make_daemon, tmp_path, mosquitto, clouds):
    """A connected gateway module with its cloud: (daemon, port, broker, cloud)."""
    broker = mosquitto()
    cloud = clouds(broker.port)
    daemon, port = start(make_daemon, tmp_path, broker.port)
    provision(port)
    mqtt_connect(port)
    return daemon, port, broker, cloud


# ------------------------------------------------------------------ signature (no daemon)


def test_bind_signature_reference_vector():
    assert bind_signature("CTQS08Y5LG", "Dev01", "ZHNkIGRzZCA=", 121213, 1589786839) == \
        "acMt0i3y7VMm4TyiR/HC+mv/iCU="


# ------------------------------------------------------------------ forms and gating


def test_test_forms_and_queries(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path, 1)
    port.cmd("AT+TCGWONLINE=?")
    port.expect(b'+TCGWONLINE:"MODE","PRODUCT_ID","DEVICE_NAME"\r\n\r\nOK\r\n')
    port.cmd("AT+TCGWBIND=?")
    port.expect(b'+TCGWBIND:"MODE","PRODUCT_ID","DEVICE_NAME","DEVICE_SECRET"\r\n\r\nOK\r\n')
    port.cmd("AT+TCGWBIND?")  # v2.1.1 registers no query form
    port.expect(b"ERR CODE:0x010c0000\r\n\r\nERROR\r\n")
    port.cmd("AT+TCGWONLINE?")
    port.expect(NONE_ONLINE)


def test_not_connected_is_208(make_daemon, tmp_path, mosquitto, clouds):
    broker = mosquitto()
    cloud = clouds(broker.port)
    daemon, port = start(make_daemon, tmp_path, broker.port)
    provision(port)
    commands = ('AT+TCGWONLINE=0,"%s","%s"' % (SPID, SDN),
                'AT+TCGWONLINE=1,"%s","%s"' % (SPID, SDN),
                'AT+TCGWBIND=0,"%s","%s","%s"' % (SPID, SDN, SSECRET),
                'AT+TCGWBIND=1,"%s","%s"' % (SPID, SDN))
    for c in commands:
        port.cmd(c)
        port.expect(CME_STATE)
    mqtt_connect(port)
    online(port)
    assert cloud.wait_requests(1) == [on("online")]
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+TCMQTTDISCON,2\r\n\r\nOK\r\n")
    for c in commands:
        port.cmd(c)
        port.expect(CME_STATE)
    port.expect_nothing_pending()


def test_online_parameter_errors_publish_nothing(gw):
    daemon, port, broker, cloud = gw
    cases = [
        ('x,"%s","%s"' % (SPID, SDN), ERR_TYPE),
        ('2,"%s","%s"' % (SPID, SDN), CME_PARA),
        ('0,"","%s"' % SDN, CME_PARA),
        ('0,"%s","%s"' % ("P" * 11, SDN), CME_PARA),
        ('0,"%s",""' % SPID, CME_PARA),
        ('0,"%s","%s"' % (SPID, "d" * 49), CME_PARA),
        ('0,"%s"' % SPID, CME_PARA),
        ('0,"%s","%s","extra"' % (SPID, SDN), CME_PARA),
        ('1,"%s","%s","extra"' % (SPID, SDN), CME_PARA),
    ]
    for params, reply in cases:
        port.cmd("AT+TCGWONLINE=" + params)
        port.expect(reply)
    online_list(port, [])
    # barrier: the first thing the cloud ever saw is this request
    online(port)
    assert cloud.wait_requests(1) == [on("online")]


def test_bind_parameter_errors_publish_nothing(gw):
    daemon, port, broker, cloud = gw
    cases = [
        ('"0","%s","%s","%s"' % (SPID, SDN, SSECRET), ERR_TYPE),
        ('2,"%s","%s","%s"' % (SPID, SDN, SSECRET), CME_PARA),
        ('0,"","%s","%s"' % (SDN, SSECRET), CME_PARA),
        ('0,"%s","%s","%s"' % ("P" * 11, SDN, SSECRET), CME_PARA),
        ('0,"%s","","%s"' % (SPID, SSECRET), CME_PARA),
        ('0,"%s","%s","%s"' % (SPID, "d" * 49, SSECRET), CME_PARA),
        ('0,"%s"' % SPID, CME_PARA),                                   # no device name
        ('0,"%s","%s"' % (SPID, SDN), CME_PARA),                       # bind without secret
        ('0,"%s","%s","%s"' % (SPID, SDN, "s" * 45), CME_PARA),
        ('0,"%s","%s","%s","extra"' % (SPID, SDN, SSECRET), CME_PARA),
        ('1,"%s","%s","%s"' % (SPID, SDN, SSECRET), CME_PARA),         # unbind with secret
        ('1,"%s"' % SPID, CME_PARA),
    ]
    for params, reply in cases:
        port.cmd("AT+TCGWBIND=" + params)
        port.expect(reply)
    unbind(port)  # barrier (and no time request either)
    assert cloud.wait_requests(1) == [on("unbind")]


def test_longest_names_and_secret_are_accepted(gw):
    daemon, port, broker, cloud = gw
    spid, sdn, secret = "P" * 10, "d" * 48, "s" * 44
    cloud.configure(secrets={(spid, sdn): secret})
    online(port, spid, sdn)
    online_list(port, [(spid, sdn)])
    bind(port, spid, sdn, secret)
    reqs = cloud.wait_requests(3)
    assert reqs[:2] == [on("online", spid, sdn), TIME_REQ]
    assert bind_request_re(spid, sdn).fullmatch(reqs[2][1]), reqs[2]
    assert cloud.bad_binds == []


# ------------------------------------------------------------------ online / offline


def test_online_query_offline(gw):
    daemon, port, broker, cloud = gw
    online(port, SPID, SDN)
    assert cloud.wait_requests(1) == [on("online")]
    online(port, SPID, SDN2)
    online_list(port, [(SPID, SDN), (SPID, SDN2)])  # in the order they went online
    online(port, SPID, SDN, mode=1)
    online_list(port, [(SPID, SDN2)])
    assert cloud.wait_requests(3) == [on("online"), on("online", SPID, SDN2), on("offline")]
    online(port, SPID, SDN2, mode=1)
    online_list(port, [])
    # a device that went offline can come back
    online(port, SPID, SDN)
    online_list(port, [(SPID, SDN)])
    assert len(cloud.wait_requests(5)) == 5


def test_online_twice_fails_224_without_publishing(gw):
    daemon, port, broker, cloud = gw
    online(port)
    online(port, result=b"FAIL,-224")
    online_list(port, [(SPID, SDN)])
    online(port, mode=1)  # barrier
    assert cloud.wait_requests(2) == [on("online"), on("offline")]


def test_eleventh_sub_device_fails_221_without_publishing(gw):
    """At most 10 sessions are kept (README: the SDK's list is unbounded)."""
    daemon, port, broker, cloud = gw
    names = ["s%02d" % i for i in range(11)]
    for dn in names[:10]:
        online(port, SPID, dn)
    online(port, SPID, names[10], result=b"FAIL,-221")
    online_list(port, [(SPID, dn) for dn in names[:10]])
    online(port, SPID, names[0], mode=1)  # barrier: the 11th published nothing
    assert cloud.wait_requests(11) == [on("online", SPID, dn) for dn in names[:10]] + [
        on("offline", SPID, names[0])]


def test_offline_twice_fails_225_without_publishing(gw):
    daemon, port, broker, cloud = gw
    online(port)
    online(port, mode=1)
    online(port, mode=1, result=b"FAIL,-225")
    online_list(port, [])
    online(port, SPID, SDN2)  # barrier
    assert cloud.wait_requests(3) == [on("online"), on("offline"), on("online", SPID, SDN2)]


def test_offline_without_session_fails_222_without_publishing(gw):
    daemon, port, broker, cloud = gw
    online(port, mode=1, result=b"FAIL,-222")
    online(port)  # barrier
    assert cloud.wait_requests(1) == [on("online")]


def test_online_rejected_by_the_cloud_fails_1001(gw):
    daemon, port, broker, cloud = gw
    cloud.configure(results={"online": -1})  # gateway not bound to the sub-device
    online(port, result=b"FAIL,-1001")
    online_list(port, [])
    cloud.configure(results={"online": 0})
    online(port)  # not considered online: no -224
    online_list(port, [(SPID, SDN)])
    assert cloud.wait_requests(2) == [on("online"), on("online")]


def test_online_without_reply_fails_223_and_lines_get_busy(make_daemon, tmp_path, mosquitto,
                                                          clouds):
    broker = mosquitto()
    cloud = clouds(broker.port, results={"online": None})
    daemon, port = start(make_daemon, tmp_path, broker.port, gateway_timeout_ms=1500)
    provision(port)
    mqtt_connect(port)
    t0 = time.monotonic()
    port.cmd('AT+TCGWONLINE=0,"%s","%s"' % (SPID, SDN))
    port.expect(b"OK\r\n")
    cloud.wait_requests(1)
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(BUSY)
    port.cmd("AT+TCGWONLINE?")
    port.expect(BUSY)
    port.expect(b"+TCGWONLINE:FAIL,-223\r\n", 5)
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed < 5, elapsed
    online_list(port, [])
    port.cmd("AT+TCMQTTSTATE?")  # the link is still up
    port.expect(b"+TCMQTTSTATE:1\r\n\r\nOK\r\n")
    cloud.configure(results={"online": 0})
    online(port)
    assert cloud.wait_requests(2) == [on("online"), on("online")]


@pytest.mark.parametrize("decoy", [
    gw_reply("online", SPID, SDN2, -1),   # another sub-device
    gw_reply("offline", SPID, SDN, -1),   # another type
    gw_reply("bind", SPID, SDN, 803),     # another type
])
def test_replies_for_something_else_are_ignored(gw, decoy):
    daemon, port, broker, cloud = gw
    cloud.configure(decoys=[decoy])
    online(port)  # a decoy taken for the answer would give FAIL
    online_list(port, [(SPID, SDN)])


def test_gateway_traffic_is_not_user_traffic(gw, mqtt_peers):
    daemon, port, broker, cloud = gw
    port.cmd('AT+TCMQTTSUB="%s",0' % TOPIC)
    port.expect(b"OK\r\n+TCMQTTSUB:OK\r\n")
    cloud.configure(secrets={(SPID, SDN): SSECRET})
    online(port)
    online(port, mode=1)
    bind(port)
    unbind(port)
    port.expect_silence(0.5)  # no +TCMQTTRCVPUB of any reply
    port.cmd("AT+TCMQTTSUB?")  # the internal subscriptions are not listed
    port.expect(b'+TCMQTTSUB:"%s",0\r\n\r\nOK\r\n' % TOPIC.encode())
    # the user's own subscription still delivers
    mqtt_peers(broker.port).publish(TOPIC, b"user data", qos=0)
    port.expect(b'+TCMQTTRCVPUB:"%s",9,"user data"\r\n' % TOPIC.encode())


def test_sessions_die_with_the_mqtt_task(gw):
    daemon, port, broker, cloud = gw
    online(port)
    online(port, SPID, SDN2)
    port.cmd("AT+TCMQTTDISCONN")
    port.expect(b"+TCMQTTDISCON,2\r\n\r\nOK\r\n")
    mqtt_connect(port)
    online_list(port, [])
    online(port)  # a new session, not -224
    online_list(port, [(SPID, SDN)])
    assert cloud.wait_requests(3) == [on("online"), on("online", SPID, SDN2), on("online")]


def test_broker_restart_renews_the_internal_subscription(gw):
    daemon, port, broker, cloud = gw
    online(port)
    broker.kill()
    port.expect(b"+TCMQTTDISCON,-103\r\n")
    port.expect(b"+TCMQTTRECONNECTING\r\n", 5)
    broker.start()
    port.expect_regex(rb"(\+TCMQTTRECONNECTING\r\n)*\+TCMQTTRECONNECTED\r\n",
                      b"+TCMQTTRECONNECTED\r\n", 20)
    cloud.wait_resubscribed()  # the new broker knows no old subscription
    seen = len(cloud.requests)
    online(port, SPID, SDN2)  # the reply needs the module's renewed subscription
    assert cloud.wait_requests(seen + 1)[seen:] == [on("online", SPID, SDN2)]
    # the sessions belong to the task, which survived the reconnect
    online_list(port, [(SPID, SDN), (SPID, SDN2)])


# ------------------------------------------------------------------ bind / unbind


def test_bind_asks_the_server_time_and_signs(gw):
    daemon, port, broker, cloud = gw
    cloud.configure(secrets={(SPID, SDN): SSECRET})
    bind(port)
    reqs = cloud.wait_requests(2)
    assert reqs[0] == TIME_REQ
    topic, payload = reqs[1]
    assert topic == GW_REQ
    m = bind_request_re(SPID, SDN).fullmatch(payload)
    assert m, payload
    assert m.group(1).decode() == bind_signature(SPID, SDN, SSECRET, int(m.group(2)),
                                                 SERVER_TIME)
    assert cloud.bad_binds == []
    assert len(reqs) == 2


@pytest.mark.parametrize("result,line", [(809, b"OK"), (803, b"FAIL,803")])
def test_bind_cloud_results(gw, result, line):
    daemon, port, broker, cloud = gw
    cloud.configure(secrets={(SPID, SDN): SSECRET}, results={"bind": result})
    bind(port, result=line)
    assert cloud.bad_binds == []


def test_bind_without_time_reply_fails_223(make_daemon, tmp_path, mosquitto, clouds):
    broker = mosquitto()
    cloud = clouds(broker.port, time="none", secrets={(SPID, SDN): SSECRET})
    daemon, port = start(make_daemon, tmp_path, broker.port, gateway_timeout_ms=1500)
    provision(port)
    mqtt_connect(port)
    t0 = time.monotonic()
    port.cmd('AT+TCGWBIND=0,"%s","%s","%s"' % (SPID, SDN, SSECRET))
    port.expect(b"OK\r\n")
    cloud.wait_requests(1)
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(BUSY)
    port.expect(b"+TCGWBIND:FAIL,-223\r\n", 5)
    elapsed = time.monotonic() - t0
    assert 1.3 <= elapsed < 5, elapsed
    unbind(port)  # barrier: no bind request went out
    assert cloud.wait_requests(2) == [TIME_REQ, on("unbind")]


# Replies to the time request that are not a whole number of seconds the
# SDK's 32-bit long can hold (tc_replies.h). 1e300 was an undefined
# double->int64 cast that signed with -9223372036854775808.
MALFORMED_TIMES = [b'{"type":"get","time":1e300}', b'{"type":"get","time":-1}',
                   b'{"type":"get","time":1589786839.5}', b'{"type":"get","time":2147483648}',
                   b'{"type":"get","time":"1589786839"}', b'{"type":"get"}', b'not json']


@pytest.mark.parametrize("reply", MALFORMED_TIMES)
def test_bind_with_a_malformed_time_reply_fails_223(make_daemon, tmp_path, mosquitto, clouds,
                                                    reply):
    """A malformed time reply is no reply: nothing is signed with it, the
    bind times out as without an answer."""
    broker = mosquitto()
    cloud = clouds(broker.port, raw_replies={"time": [reply]}, secrets={(SPID, SDN): SSECRET})
    daemon, port = start(make_daemon, tmp_path, broker.port, gateway_timeout_ms=1500)
    provision(port)
    mqtt_connect(port)
    port.cmd('AT+TCGWBIND=0,"%s","%s","%s"' % (SPID, SDN, SSECRET))
    port.expect(b"OK\r\n")
    daemon.wait_log("gateway: malformed server time reply ignored")
    port.expect(b"+TCGWBIND:FAIL,-223\r\n", 5)
    unbind(port)  # barrier: no bind request went out
    assert cloud.wait_requests(2) == [TIME_REQ, on("unbind")]


def test_bind_signs_with_the_good_time_reply_after_a_malformed_one(gw):
    daemon, port, broker, cloud = gw
    cloud.configure(raw_replies={"time": [MALFORMED_TIMES[0],
                                          b'{"type":"get","time":%d}' % SERVER_TIME]},
                    secrets={(SPID, SDN): SSECRET})
    bind(port)
    reqs = cloud.wait_requests(2)
    assert reqs[0] == TIME_REQ
    assert bind_request_re(SPID, SDN).fullmatch(reqs[1][1]), reqs[1][1]
    assert cloud.bad_binds == []


@pytest.mark.parametrize("result", [b"0.5", b"1e300", b"-1e300", b'"0"'])
def test_a_malformed_gateway_result_is_ignored(make_daemon, tmp_path, mosquitto, clouds, result):
    """A result that is not a whole number in the int range does not count
    (0.5 was taken as 0, success); the command times out."""
    broker = mosquitto()
    cloud = clouds(broker.port, raw_replies={"online": [
        b'{"type":"online","payload":{"devices":[{"product_id":"%s","device_name":"%s",'
        b'"result":%s}]}}' % (SPID.encode(), SDN.encode(), result)]})
    daemon, port = start(make_daemon, tmp_path, broker.port, gateway_timeout_ms=1500)
    provision(port)
    mqtt_connect(port)
    online(port, result=b"FAIL,-223")
    online_list(port, [])


@pytest.mark.parametrize("result,line", [(0, b"OK"), (802, b"FAIL,802")])
def test_unbind(gw, result, line):
    daemon, port, broker, cloud = gw
    cloud.configure(results={"unbind": result})
    unbind(port, result=line)
    assert cloud.wait_requests(1) == [on("unbind")]  # no time request


def test_sub_device_secret_never_in_log_or_trace(gw, tmp_path):
    daemon, port, broker, cloud = gw
    cloud.configure(secrets={(SPID, SDN): SSECRET})
    bind(port)
    # a rejected line carrying the secret, too
    port.cmd('AT+TCGWBIND=1,"%s","%s","%s"' % (SPID, SDN, SSECRET))
    port.expect(CME_PARA)
    daemon.stop()
    log = daemon.log_text(all_runs=True)
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    assert 'AT+TCGWBIND=0,"%s","%s","***"' % (SPID, SDN) in trace
    for text, name in ((log, "log"), (trace, "trace")):
        assert SSECRET not in text, "the sub-device secret is in the %s" % name


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("value", [999, 60001, "2000"])
def test_config_gateway_timeout_range(run_vmoduled, tmp_path, value):
    cfg = {"state_dir": str(tmp_path / "state"),
           "modules": [module_config(tmp_path, "tc0", "tencent",
                                     tencent={"gateway_timeout_ms": value})]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2
    assert "modules[0].tencent.gateway_timeout_ms: " in cp.stderr, cp.stderr


def test_config_gateway_timeout_limits_accepted(make_daemon, tmp_path):
    daemon = make_daemon([
        module_config(tmp_path, "a", "tencent", tencent={"gateway_timeout_ms": 1000}),
        module_config(tmp_path, "b", "tencent", tencent={"gateway_timeout_ms": 60000})])
    for name in ("a", "b"):
        daemon.port(name)
