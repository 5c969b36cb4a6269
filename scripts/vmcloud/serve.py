"""serve.py - `vmodule-cloud serve`: the Tencent cloud's services for
vmoduled's tencent modules, on a real MQTT broker and over HTTPS.

MQTT (one client; it subscribes $sys/operation/+/+, $gateway/operation/+/+
and $ota/report/+/+, so it serves every device on the broker):
- server time (§7.7): {"type":"get","resource":["time"]} on
  $sys/operation/<pid>/<dn> is answered {"type":"get","time":T} on
  $sys/operation/result/<pid>/<dn>; --time auto (the clock), a fixed
  UNIX_SECONDS, or none (never answered).
- the gateway (§7.6) on $gateway/operation/<pid>/<dn>, answered on
  $gateway/operation/result/<pid>/<dn>: bind (the signature is checked with
  the sub-device secret of --sub-device; a wrong signature or an unknown
  sub-device is answered 803), unbind, online, offline (each device of the
  request answered {"product_id","device_name","result"} with the same
  "type"), describe_sub_devices (the devices bound through this tool). The
  result of each kind is --gw-result KIND=CODE (default 0; none = no answer).
- report_version (§7.5) on $ota/report/<pid>/<dn>: answered
  {"result_code":0,"result_msg":"success","type":"report_version_rsp",
  "version":V} on $ota/update/<pid>/<dn> unless --no-version-reply.
HTTPS: dynamic registration v1 and v2 (dynreg.py).

Inferred behaviour (the references say nothing; chosen here):
- a bind of a device bound already through this tool answers 809 (repeated
  bind) when the configured bind result is 0; a successful bind (0 or 809)
  binds, an unbind answered 0 unbinds;
- unbind, online and offline of a device that was never bound answer the
  configured result (0) unless --require-bind, with which they answer -1
  (gateway not bound to the sub-device);
- a bind with a signmethod other than hmacsha1/hmacsha256 answers 804, an
  authtype other than psk 801; the timestamp is not checked for expiry (the
  module signs with the time this tool gave it);
- a request that is not JSON or lacks its fields gets no answer (it still
  is a "request" event); so does an unknown gateway type;
- the answers carry no result_msg on the gateway (the references show none).

Events: "listening" once at start; "request" for every MQTT message, "reply"
for everything published; "bad_signature" for a refused bind; "reloaded" /
"reload_failed" after SIGHUP; "sync" after SIGUSR1 (a reader that sees it has
seen every event printed before); "resubscribed" after a broker came back; the
HTTP events of dynreg.py. No secret is ever printed. SIGTERM/SIGINT end the
tool with exit 0."""
import json
import os
import signal
import sys
import threading
import time

from vmcloud import dynreg, mqttc, tccrypto, tls
from vmcloud.events import Events
from vmcloud.policy import (DYNREG_FAULTS, GW_KINDS, RAW_KINDS, Policy, check_product_secret,
                            parse_code, parse_device_key, parse_time, split_pair)

DEFAULT_CERT_DIR = os.path.join(os.path.expanduser("~"), ".local", "state", "vmodule-cloud",
                                "certs")
SUBSCRIPTIONS = ("$sys/operation/+/+", "$gateway/operation/+/+", "$ota/report/+/+")
SIGN_METHODS = ("hmacsha1", "hmacsha256")


def _compact(obj):
    return json.dumps(obj, separators=(",", ":"))


class MqttService:
    """The MQTT side: on_message runs on paho's network thread."""

    def __init__(self, events, policy):
        self.events = events
        self.policy = policy            # a callable: the current Policy
        self.bound = {}                 # (gw pid, gw dn) -> [(pid, dn)] in bind order
        self.lock = threading.Lock()
        self.client = None

    def reply(self, topic, payload):
        self.client.publish(topic, payload, 0)
        self.events.emit("reply", "reply %s %s" % (topic, payload), topic=topic, payload=payload)

    def on_message(self, topic, payload):
        text = payload.decode("utf-8", "replace")
        self.events.emit("request", "request %s %s" % (topic, text), topic=topic, payload=text)
        parts = topic.split("/")
        if len(parts) != 4:
            return
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        pol = self.policy()
        where = (parts[2], parts[3])
        if parts[:2] == ["$sys", "operation"]:
            self.on_sys(pol, where, msg)
        elif parts[:2] == ["$gateway", "operation"]:
            self.on_gateway(pol, where, msg)
        elif parts[:2] == ["$ota", "report"]:
            self.on_ota(pol, where, msg)

    def on_sys(self, pol, where, msg):
        res = msg.get("resource")
        if msg.get("type") != "get" or not isinstance(res, list) or "time" not in res:
            return
        topic = "$sys/operation/result/%s/%s" % where
        if "time" in pol.raw_replies:
            for raw in pol.raw_replies["time"]:
                self.reply(topic, raw)
        elif pol.time is not None:
            t = int(time.time()) if pol.time == "auto" else pol.time
            self.reply(topic, _compact({"type": "get", "time": t}))

    def on_ota(self, pol, where, msg):
        report = msg.get("report")
        if msg.get("type") != "report_version" or not pol.version_reply or \
                not isinstance(report, dict) or not isinstance(report.get("version"), str):
            return
        topic = "$ota/update/%s/%s" % where
        for raw in pol.raw_replies.get("report_version") or [
                _compact({"result_code": 0, "result_msg": "success", "type": "report_version_rsp",
                          "version": report["version"]})]:
            self.reply(topic, raw)

    def on_gateway(self, pol, gw, msg):
        kind = msg.get("type")
        if kind not in GW_KINDS:
            return
        devices = [] if kind == "describe_sub_devices" else _devices(msg)
        if devices is None:
            return
        topic = "$gateway/operation/result/%s/%s" % gw
        if kind in pol.raw_replies:
            for raw in pol.raw_replies[kind]:
                self.reply(topic, raw)
            return
        if pol.results.get(kind) is None:
            return
        if kind == "describe_sub_devices":
            with self.lock:
                listed = [{"product_id": p, "device_name": d} for p, d in self.bound.get(gw, [])]
            answer = {"type": kind, "payload": {"devices": listed}}
        else:
            answer = {"type": kind, "payload": {"devices": [
                dict(product_id=d["product_id"], device_name=d["device_name"],
                     result=self.result(pol, gw, kind, d)) for d in devices]}}
        for decoy in pol.decoys:
            self.reply(topic, decoy)
        self.reply(topic, _compact(answer))

    def result(self, pol, gw, kind, dev):
        """The result code for one device of an online/offline/bind/unbind."""
        key = (dev["product_id"], dev["device_name"])
        code = pol.results[kind]
        with self.lock:
            bound = self.bound.setdefault(gw, [])
            if kind == "bind":
                code = self.bind_result(pol, gw, dev, code)
                if code == 0 and key in bound:
                    code = 809
                if code in (0, 809) and key not in bound:
                    bound.append(key)
            elif pol.require_bind and key not in bound:
                code = -1
            elif kind == "unbind" and code == 0 and key in bound:
                bound.remove(key)
        return code

    def bind_result(self, pol, gw, dev, code):
        method = dev.get("signmethod")
        if method not in SIGN_METHODS:
            return 804
        if dev.get("authtype") != "psk":
            return 801
        key = (dev["product_id"], dev["device_name"])
        secret = pol.sub_devices.get(key)
        try:
            ok = secret is not None and dev.get("signature") == tccrypto.bind_signature(
                key[0], key[1], secret, dev["random"], dev["timestamp"], method)
        except (KeyError, TypeError):
            ok = False
        if not ok:
            why = "unknown sub-device" if secret is None else "signature does not match"
            self.events.emit("bad_signature", "bad bind signature for %s/%s via %s/%s: %s"
                             % (key + gw + (why,)), gateway="%s/%s" % gw, product=key[0],
                             device=key[1], error=why)
            return 803
        return code


def _devices(msg):
    """The devices of an online/offline/bind/unbind request, or None."""
    payload = msg.get("payload")
    devs = payload.get("devices") if isinstance(payload, dict) else None
    if not isinstance(devs, list) or not devs:
        return None
    for d in devs:
        if not isinstance(d, dict) or not isinstance(d.get("product_id"), str) or \
                not isinstance(d.get("device_name"), str):
            return None
    return devs


# ------------------------------------------------------------------ the command line


def _kv(text, what, sep="=", secret=False):
    try:
        return split_pair(text, sep, what)
    except ValueError as e:  # an option that holds a secret is never quoted
        raise ValueError(str(e) if secret else "%s, got %r" % (e, text))


def base_policy(args):
    """The Policy of the command-line options; ValueError on a bad one. The
    messages never quote a secret."""
    results = {}
    for item in args.gw_result:
        kind, code = _kv(item, "KIND=CODE")
        results[kind] = parse_code(kind, code)
    raw = {}
    for item in args.raw_reply:
        kind, text = _kv(item, "KIND=TEXT")
        if kind not in RAW_KINDS:
            raise ValueError("raw reply kind must be one of %s" % ", ".join(RAW_KINDS))
        raw.setdefault(kind, []).append(text)
    sub = {}
    for item in args.sub_device:
        dev, secret = _kv(item, "PID/DN:SECRET", ":", secret=True)
        sub[parse_device_key(dev)] = secret
    products = {}
    for item in args.product:
        pid, secret = _kv(item, "PID:PRODUCT_SECRET", ":", secret=True)
        products[pid] = check_product_secret(pid, secret)
    devices = dict(_kv(item, "DN:PSK", ":", secret=True) for item in args.psk)
    return Policy(time=parse_time(args.time), results=results, sub_devices=sub,
                  products=products, devices=devices, raw_replies=raw, decoys=args.decoy,
                  require_bind=args.require_bind, version_reply=not args.no_version_reply,
                  dynreg_fault=args.dynreg_fault, dynreg_hold=args.dynreg_hold)


def register(sub):
    p = sub.add_parser(
        "serve", help="answer $sys time, the gateway, report_version and dynamic registration",
        description="The Tencent cloud for vmoduled's tencent modules: $sys/operation time, "
        "the gateway protocol, report_version replies on MQTT, dynamic registration "
        "(v1 /register/dev, v2 /device/register) over HTTPS. SIGHUP reloads --config.")
    g = p.add_argument_group("MQTT")
    g.add_argument("--broker", metavar="HOST:PORT", help="the MQTT broker the modules use")
    g.add_argument("--no-mqtt", action="store_true", help="registration server only")
    g.add_argument("--client-id", help="MQTT client id (default: a unique one)")
    g.add_argument("--time", default="auto", metavar="auto|UNIX_SECONDS|none",
                   help="server time answered to $sys/operation (none: never answer)")
    g.add_argument("--gw-result", action="append", default=[], metavar="KIND=CODE",
                   help="result answered to a gateway request, KIND one of %s; CODE an "
                   "integer or none (no answer); repeatable" % ", ".join(GW_KINDS))
    g.add_argument("--sub-device", action="append", default=[], metavar="PID/DN:SECRET",
                   help="a sub-device secret to check bind signatures with; repeatable")
    g.add_argument("--require-bind", action="store_true",
                   help="online/offline/unbind of a device never bound answer -1")
    g.add_argument("--no-version-reply", action="store_true",
                   help="do not answer report_version on $ota/update")
    g.add_argument("--raw-reply", action="append", default=[], metavar="KIND=TEXT",
                   help="publish TEXT instead of the answer to KIND (%s); repeatable, in order"
                   % ", ".join(RAW_KINDS))
    g.add_argument("--decoy", action="append", default=[], metavar="TEXT",
                   help="publish TEXT on the gateway result topic before every answer")
    g = p.add_argument_group("dynamic registration (HTTPS)")
    g.add_argument("--no-http", action="store_true", help="no registration server")
    g.add_argument("--http-host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    g.add_argument("--http-port", type=int, default=0, help="port (default 0: a free one)")
    g.add_argument("--cert-dir", default=DEFAULT_CERT_DIR,
                   help="where the CA and the server certificate are kept (made once; a "
                   "ca.crt/ca.key put there is used to sign the server certificate)")
    g.add_argument("--cert-host", action="append", default=[], metavar="NAME",
                   help="a name or address of the server certificate (default 127.0.0.1, "
                   "::1, localhost); repeatable")
    g.add_argument("--product", action="append", default=[], metavar="PID:PRODUCT_SECRET",
                   help="a product that allows dynamic registration; repeatable")
    g.add_argument("--psk", action="append", default=[], metavar="DN:PSK",
                   help="the device secret handed to DN (default: one made per device)")
    g.add_argument("--dynreg-fault", default="none", choices=sorted(DYNREG_FAULTS),
                   help="answer registrations wrongly: " + "; ".join(
                       "%s: %s" % kv for kv in sorted(DYNREG_FAULTS.items())))
    g.add_argument("--dynreg-hold", action="store_true",
                   help="hold every registration answer until a reload clears dynreg_hold")
    p.add_argument("--config", metavar="FILE", help="JSON policy, read again on SIGHUP "
                   "(keys: time, results, sub_devices, products, devices, raw_replies, decoys, "
                   "require_bind, version_reply, dynreg_fault, dynreg_hold)")
    p.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    p.set_defaults(func=lambda args: run(p, args))


def run(parser, args):
    if bool(args.broker) == args.no_mqtt:
        parser.error("give --broker HOST:PORT, or --no-mqtt")
    if args.no_mqtt and args.no_http:
        parser.error("--no-mqtt and --no-http leave nothing to serve")
    try:
        if args.broker:
            mqttc.parse_broker(args.broker)
        if not 0 <= args.http_port < 65536:
            raise ValueError("--http-port must be 0..65535")
        policy = base_policy(args)
        current = policy.merged_file(args.config) if args.config else policy
    except ValueError as e:
        parser.error(str(e))
    state = {"policy": current}
    events = Events(args.json)
    server = None
    client = None
    done = threading.Event()
    try:
        if not args.no_http:
            hosts = tuple(args.cert_host) or tls.DEFAULT_HOSTS
            ca, cert, key = tls.ensure_certs(args.cert_dir, hosts)
            server = dynreg.DynregServer(args.http_host, args.http_port, cert, key, events,
                                         lambda: state["policy"])
        if args.broker:
            svc = MqttService(events, lambda: state["policy"])
            client = mqttc.Client(args.broker, svc.on_message, client_id=args.client_id,
                                  reconnect_max_s=2,
                                  on_resubscribed=lambda: events.emit(
                                      "resubscribed", "subscribed again after a reconnect",
                                      broker=args.broker))
            svc.client = client
            client.connect()
            for t in SUBSCRIPTIONS:
                client.subscribe(t, 1)
    except (OSError, ValueError) as e:
        print("vmodule-cloud serve: %s" % e, file=sys.stderr)
        if server:
            server.close()
        return 1

    def reload(signum, frame):
        try:
            state["policy"] = policy.merged_file(args.config) if args.config else policy
        except ValueError as e:
            events.emit("reload_failed", "reload failed, policy kept: %s" % e, error=str(e))
            return
        if server:
            server.hold_changed()
        events.emit("reloaded", "reloaded %s" % (args.config or "(no --config)"),
                    config=args.config)

    signal.signal(signal.SIGHUP, reload)
    signal.signal(signal.SIGUSR1, lambda s, f: events.emit("sync", "sync"))
    signal.signal(signal.SIGTERM, lambda s, f: done.set())
    signal.signal(signal.SIGINT, lambda s, f: done.set())
    listening = {"broker": args.broker}
    text = []
    if args.broker:
        text.append("MQTT on %s" % args.broker)
    if server:
        server.start()
        h = args.http_host
        h = "127.0.0.1" if h in ("0.0.0.0", "") else "[::1]" if h == "::" else \
            "[%s]" % h if ":" in h else h
        listening.update(url="https://%s:%d" % (h, server.port), ca=ca)
        text.append("registration on %s (v1 %s, v2 %s), CA %s\n  point a tencent module at it: "
                    '"tencent": {"dynreg_url": "%s%s", "dynreg_ca_file": "%s"}'
                    % (listening["url"], dynreg.V1_PATH, dynreg.V2_PATH, ca, listening["url"],
                       dynreg.V1_PATH, ca))
    events.emit("listening", "vmodule-cloud serve: " + "; ".join(text), **listening)
    while not done.wait(0.1):  # a signal taken by another thread runs at the next wakeup
        pass
    if server:
        server.close()
    if client:
        client.close()
    return 0
