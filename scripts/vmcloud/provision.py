"""provision.py - `vmodule-cloud provision`: the phone app of Tencent's Wi-Fi
provisioning (tencent-at.md §3.13) and the cloud that binds its token.

softap SSID [PASSWORD]: the app has joined the module's softAP and sends
  {"cmdType":1,"ssid":..,"password":..,"token":..,"region":..} to its UDP
  server (--udp, default 127.0.0.1:8266).
smartconfig MODULE SSID [PASSWORD]: the radio part (ESP-TOUCH/AirKiss) is the
  daemon's control plane: {"cmd":"smartconfig","module":..,"args":[SSID,
  PASSWORD]} on the control socket (-s, what `vmodulectl smartconfig MODULE
  SSID PASSWORD` sends); then the app sends
  {"cmdType":0,"token":..,"region":..} to the UDP server.
The module answers {"cmdType":2,"productId":..,"deviceName":..,...}\r\n
(three times, 1 s apart: printed once), or {"cmdType":2,"deviceReply":
"Current_Error"|"Previous_Error","log":..} (a Current_Error ends the run).
The request is sent again every RESEND_S until the module answers (UDP).

The cloud role: subscribed to $thing/up/service/+/+ before anything is sent,
it answers the module's {"method":"app_bind_token","clientToken":C,"params":
{"token":T}} with {"method":"app_bind_token_reply","clientToken":C,"code":0,
"status":"success"} on $thing/down/service/<pid>/<dn> (the reply Tencent's
cloud sends), or code --refuse CODE with "status":"fail" (inferred: no
refusal is on record). A token other than the app's is not answered. The
firmware does not act on the code (it only logs a nonzero one), so the
tool's exit status, not the module's URC, tells a refusal.

smartconfig MODULE --stop: the app ends ESP-TOUCH before the module has
  joined (the firmware's "stopped by app", WIFI_CONNECT_FAILED,3,101):
  {"cmd":"smartconfig","module":..,"args":["stop"]} on the control socket.
--log-query (either mode, nothing else sent): {"cmdType":3} to the
  ESP-LOG-QUERY log server (--log-udp, default 127.0.0.1:9876), every line
  of its answer printed (it sends the answer twice: printed once).

Exit 0 when the token was bound (or the stop / log query done), 1 on a
refusal, a Current_Error, a control-socket refusal, --timeout or a signal,
2 on usage errors. The Wi-Fi password and the MQTT password are never
printed. The message logic runs on the main thread: the UDP reader, paho's
thread and the signal handlers only put items on a queue."""
import argparse
import json
import os
import queue
import signal
import socket
import threading
import time

from vmcloud.events import Events, add_json_arg
from vmcloud.mqttc import Client, parse_broker, parse_hostport

UP = "$thing/up/service/+/+"
DEFAULT_UDP = "127.0.0.1:8266"
DEFAULT_LOG_UDP = "127.0.0.1:9876"
DEFAULT_CTL = "/var/lib/vmodule/control.sock"
RESEND_S = 3.0          # longer than the module's three replies 1 s apart
LOG_QUIET_S = 1.0       # the log server's answer is complete after this much silence
MAX_DATAGRAM = 65535


def _compact(obj):
    return json.dumps(obj, separators=(",", ":"))


# ------------------------------------------------------------------ messages (§3.13)


def softap_request(ssid, password, token, region):
    return _compact({"cmdType": 1, "ssid": ssid, "password": password, "token": token,
                     "region": region}).encode()


def token_request(token, region):
    return _compact({"cmdType": 0, "token": token, "region": region}).encode()


LOG_REQUEST = b'{"cmdType":3}'


def bind_reply(client_token, code):
    return _compact({"method": "app_bind_token_reply", "clientToken": client_token,
                     "code": code, "status": "success" if code == 0 else "fail"})


def device_replies(data):
    """The JSON objects of one datagram from the module (each line one
    object, "\\r\\n" ended); what is not a JSON object is left out."""
    out = []
    for line in data.decode("utf-8", "replace").split("\r\n"):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def parse_bind_token(topic, payload):
    """(pid, dn, clientToken, token) of an app_bind_token on
    $thing/up/service/<pid>/<dn>, or None."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[:3] != ["$thing", "up", "service"]:
        return None
    try:
        msg = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        return None
    if not isinstance(msg, dict) or msg.get("method") != "app_bind_token":
        return None
    params = msg.get("params")
    token = params.get("token") if isinstance(params, dict) else None
    ct = msg.get("clientToken")
    if not isinstance(token, str) or not isinstance(ct, str):
        return None
    return parts[3], parts[4], ct, token


def log_lines(data):
    """The lines of one answer of the log server ("\\r\\n" ended)."""
    return [l for l in data.decode("utf-8", "replace").split("\r\n") if l]


# ------------------------------------------------------------------ the control socket


def ctl_request(path, request, timeout=10.0):
    """One request on vmoduled's control socket; the reply object. A path
    longer than sun_path is reached through /proc/self/fd as vmodulectl does."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    d = None
    try:
        if len(path.encode()) > 107:
            d = os.open(os.path.dirname(path) or ".", os.O_PATH)
            s.connect("/proc/self/fd/%d/%s" % (d, os.path.basename(path)))
        else:
            s.connect(path)
        s.sendall(_compact(request).encode() + b"\n")
        line = s.makefile("rb").readline()
    finally:
        if d is not None:
            os.close(d)
        s.close()
    try:
        reply = json.loads(line)
    except ValueError:
        raise OSError("the control socket answered %r" % line[:200])
    if not isinstance(reply, dict):
        raise OSError("the control socket answered %r" % line[:200])
    return reply


# ------------------------------------------------------------------ the command line


def _positive(text):
    try:
        n = float(text)
    except ValueError:
        n = 0
    if not n > 0:
        raise argparse.ArgumentTypeError("must be > 0, got %s" % text)
    return n


def _code(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n == 0:
        raise argparse.ArgumentTypeError("must be a non-zero integer, got %s" % text)
    return n


def register(sub):
    p = sub.add_parser("provision", help="the phone app of Wi-Fi provisioning (softap, "
                       "smartconfig) and the cloud that binds its token")
    psub = p.add_subparsers(dest="prov_mode", required=True)
    a = psub.add_parser("softap", help="send SSID, password and token to the module's softAP",
                        description="The app on the module's softAP: sends cmdType 1 to its UDP "
                        "server, prints the module's answer and binds the token it publishes. "
                        "Exit 0 bound, 1 refused/failed/timeout, 2 usage.")
    a.add_argument("ssid", nargs="?", metavar="SSID", help="the access point the module joins")
    a.add_argument("wifi_password", nargs="?", default="", metavar="PASSWORD",
                   help="its password (default empty: an open AP)")
    _common(a)
    a.set_defaults(func=run, parser=a)
    s = psub.add_parser("smartconfig", help="deliver SSID/password through the control socket, "
                        "then send the token",
                        description="ESP-TOUCH through vmoduled's control socket, then cmdType "
                        "0 to the module's UDP server, and the token bound as for softap. "
                        "--stop ends ESP-TOUCH instead (the module prints 3,101).")
    s.add_argument("module", nargs="?", metavar="MODULE", help="the module's name in vmoduled")
    s.add_argument("ssid", nargs="?", metavar="SSID", help="the access point the module joins")
    s.add_argument("wifi_password", nargs="?", default="", metavar="PASSWORD",
                   help="its password (default empty)")
    s.add_argument("-s", "--socket", default=os.environ.get("VMODULE_CONTROL") or DEFAULT_CTL,
                   help="vmoduled's control socket (default $VMODULE_CONTROL, else %s)"
                   % DEFAULT_CTL)
    s.add_argument("--stop", action="store_true",
                   help="end ESP-TOUCH before the module joined (stopped by the app)")
    _common(s)
    s.set_defaults(func=run, parser=s)


def _common(a):
    a.add_argument("--token", help="the bind token the app got from the cloud")
    a.add_argument("--region", default="ap-guangzhou",
                   help="the app's region, checked against the product's (default %(default)s)")
    a.add_argument("--udp", default=DEFAULT_UDP, metavar="HOST:PORT",
                   help="the module's UDP server (default %(default)s)")
    a.add_argument("--broker", metavar="HOST:PORT", help="the MQTT broker the module uses")
    a.add_argument("--username", help="MQTT user name (none by default)")
    a.add_argument("--password", help="MQTT password (never printed)")
    a.add_argument("--refuse", type=_code, metavar="CODE",
                   help="answer the token with this code instead of 0")
    a.add_argument("--timeout", type=_positive, default=300.0, metavar="S",
                   help="give up after S seconds (default %(default)s: the module's own limit)")
    a.add_argument("--log-query", action="store_true",
                   help="only ask the ESP-LOG-QUERY log server for the module's log lines")
    a.add_argument("--log-udp", default=DEFAULT_LOG_UDP, metavar="HOST:PORT",
                   help="the log server (default %(default)s)")
    add_json_arg(a)


def _check(args):
    """Usage errors exit 2 (argparse)."""
    err = args.parser.error
    smart = args.prov_mode == "smartconfig"
    for opt, port in (("udp", 8266), ("log_udp", 9876)):
        try:
            setattr(args, opt + "_addr", parse_hostport(getattr(args, opt), port))
        except ValueError as e:
            err("--%s: %s" % (opt.replace("_", "-"), e))
    if args.broker:
        try:
            parse_broker(args.broker)
        except ValueError:
            err("--broker must be HOST:PORT, got %r" % args.broker)
    if args.log_query or smart and args.stop:
        what = "--log-query" if args.log_query else "--stop"
        extra = (["SSID"] if args.ssid else []) + (["--token"] if args.token else []) + \
                (["--stop"] if smart and args.stop and args.log_query else [])
        if extra:
            err("%s takes no %s" % (what, ", ".join(extra)))
        if smart and args.stop and not args.module:
            err("--stop needs MODULE")
        return
    missing = (["MODULE"] if smart and not args.module else []) + \
              (["SSID"] if not args.ssid else []) + \
              [o for o in ("--token", "--broker") if not getattr(args, o[2:])]
    if missing:
        err("missing %s" % ", ".join(missing))
    if not 1 <= len(args.ssid.encode()) <= 32:
        err("SSID must be 1..32 bytes")
    if len(args.wifi_password.encode()) > 64:
        err("PASSWORD must be at most 64 bytes")


def run(args):
    _check(args)
    out = Events(args.json)
    inbox = queue.SimpleQueue()  # put() is safe in signal handlers
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda n, f: inbox.put(("signal", signal.Signals(n).name)))
    deadline = time.monotonic() + args.timeout
    if args.log_query:
        return LogQuery(args, out, inbox, deadline).run()
    if args.prov_mode == "smartconfig" and args.stop:
        return _ctl(args, out, {"cmd": "smartconfig", "module": args.module, "args": ["stop"]},
                    "stopped", "smartconfig of %s stopped" % args.module)
    return App(args, out, inbox, deadline).run()


def _ctl(args, out, request, kind, text):
    try:
        reply = ctl_request(args.socket, request)
    except OSError as e:
        out.error("control socket %s: %s" % (args.socket, e.strerror or e))
        return 1
    if not reply.get("ok"):
        out.error("vmoduled refused %s: %s" % (request["cmd"], reply.get("error")))
        return 1
    out.emit(kind, text, module=args.module)
    return 0


class Udp:
    """A connected UDP socket to the module; a thread puts every datagram
    on the inbox as (kind, bytes), and a refused send (nothing listens,
    ICMP port unreachable) as (kind, None)."""

    def __init__(self, addr, inbox, kind):
        host, port = addr
        info = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
        self.s = socket.socket(info[0], socket.SOCK_DGRAM)
        self.s.connect(info[4])
        self.s.settimeout(0.2)
        self.stopped = False
        self.t = threading.Thread(target=self._read, args=(inbox, kind), daemon=True)
        self.t.start()

    def _read(self, inbox, kind):
        while not self.stopped:
            try:
                inbox.put((kind, self.s.recv(MAX_DATAGRAM)))
            except socket.timeout:
                continue
            except ConnectionRefusedError:
                inbox.put((kind, None))
            except OSError:
                return

    def send(self, data):
        try:
            self.s.send(data)
        except ConnectionRefusedError:  # the refusal of an earlier send
            self.s.send(data)

    def close(self):
        self.stopped = True
        self.t.join(1)
        self.s.close()


def _wait(inbox, deadline, until=None):
    """The next inbox item, or None at the deadline (or at `until`)."""
    end = min(deadline, until) if until else deadline
    try:
        return inbox.get(timeout=max(0.0, end - time.monotonic()))
    except queue.Empty:
        return None


class App:
    def __init__(self, args, out, inbox, deadline):
        self.args, self.out, self.inbox, self.deadline = args, out, inbox, deadline
        self.smart = args.prov_mode == "smartconfig"
        self.request = token_request(args.token, args.region) if self.smart else \
            softap_request(args.ssid, args.wifi_password, args.token, args.region)
        self.device = None       # (pid, dn) from the module's answer
        self.copies = 0
        self.refused_udp = False
        self.early = []          # app_bind_token messages seen before the module's answer

    def run(self):
        client = udp = None
        try:
            client = Client(self.args.broker, lambda t, p: self.inbox.put(("mqtt", (t, p))),
                            username=self.args.username, password=self.args.password)
            client.connect()
            client.subscribe(UP, 1)
        except (OSError, ValueError) as e:
            self.out.error(str(e))
            return 1
        try:
            self.client = client
            self.out.emit("listening", "cloud on %s, waiting for app_bind_token on %s"
                          % (self.args.broker, UP), broker=self.args.broker, topic=UP)
            if self.smart:
                rc = _ctl(self.args, self.out, {"cmd": "smartconfig", "module": self.args.module,
                                                "args": [self.args.ssid, self.args.wifi_password]},
                          "delivered", "SSID %s delivered to %s by smartconfig"
                          % (self.args.ssid, self.args.module))
                if rc:
                    return rc
            try:
                udp = Udp(self.args.udp_addr, self.inbox, "udp")
            except OSError as e:
                self.out.error("UDP %s: %s" % (self.args.udp, e.strerror or e))
                return 1
            return self.loop(udp)
        finally:
            if udp:
                udp.close()
            client.close()

    def send(self, udp):
        udp.send(self.request)
        self.out.emit("sent", "sent cmdType %d to %s" % (1 - self.smart, self.args.udp),
                      cmdType=0 if self.smart else 1, to=self.args.udp)

    def loop(self, udp):
        self.send(udp)
        resend = time.monotonic() + RESEND_S
        while True:
            item = _wait(self.inbox, self.deadline, None if self.device else resend)
            if item is None:
                if time.monotonic() >= self.deadline:
                    self.out.emit("timeout", "timeout: %s after %g s" % (
                        "no app_bind_token" if self.device else "no answer from the module",
                        self.args.timeout), answered=self.device is not None)
                    return 1
                self.send(udp)
                resend = time.monotonic() + RESEND_S
                continue
            kind, value = item
            if kind == "signal":
                self.out.error("stopped by %s" % value)
                return 1
            rc = self.on_udp(value) if kind == "udp" else self.on_mqtt(*value)
            if rc is not None:
                return rc

    def on_udp(self, data):
        if data is None:
            if not self.refused_udp:
                self.refused_udp = True
                self.out.emit("unreachable", "nothing listens on %s (yet)" % self.args.udp,
                              to=self.args.udp)
            return None
        for msg in device_replies(data):
            if msg.get("cmdType") != 2:
                continue
            if "deviceReply" in msg:
                kind = msg.get("deviceReply")
                self.out.emit("device_error", "module: %s: %s" % (kind, msg.get("log")),
                              deviceReply=kind, log=msg.get("log"))
                if kind == "Current_Error":
                    self.out.emit("failed", "failed: the module reports a current error")
                    return 1
                continue
            self.copies += 1
            if self.device is None:
                self.device = (msg.get("productId"), msg.get("deviceName"))
                self.out.emit("device", "module %s/%s (region %s, protocol %s)"
                              % (self.device + (msg.get("productRegion"),
                                                msg.get("protoVersion"))),
                              productId=self.device[0], deviceName=self.device[1],
                              productRegion=msg.get("productRegion"),
                              protoVersion=msg.get("protoVersion"))
                early, self.early = self.early, []
                for topic, payload in early:
                    rc = self.on_mqtt(topic, payload)
                    if rc is not None:
                        return rc
        return None

    def on_mqtt(self, topic, payload):
        text = payload.decode("utf-8", "replace")
        self.out.emit("request", "request %s %s" % (topic, text), topic=topic, payload=text)
        got = parse_bind_token(topic, payload)
        if got is None:
            return None
        pid, dn, client_token, token = got
        if self.device is None:
            self.early.append((topic, payload))  # answered once the module said who it is
            return None
        if (pid, dn) != self.device:
            return None
        if token != self.args.token:
            self.out.emit("token_mismatch", "%s/%s sent another token, not answered" % (pid, dn),
                          productId=pid, deviceName=dn)
            return None
        code = self.args.refuse or 0
        reply = bind_reply(client_token, code)
        down = "$thing/down/service/%s/%s" % (pid, dn)
        self.client.publish(down, reply, qos=1, wait=True)
        self.out.emit("reply", "reply %s %s" % (down, reply), topic=down, payload=reply)
        if code:
            self.out.emit("refused", "refused: token answered code %d" % code, code=code)
            return 1
        self.out.emit("bound", "bound: %s/%s to the app's token" % (pid, dn),
                      productId=pid, deviceName=dn)
        return 0


class LogQuery:
    """{"cmdType":3} to the log server, sent again each second until it
    answers; its answer's lines, once each, when it has been quiet for
    LOG_QUIET_S."""

    def __init__(self, args, out, inbox, deadline):
        self.args, self.out, self.inbox, self.deadline = args, out, inbox, deadline

    def run(self):
        try:
            udp = Udp(self.args.log_udp_addr, self.inbox, "udp")
        except OSError as e:
            self.out.error("UDP %s: %s" % (self.args.log_udp, e.strerror or e))
            return 1
        try:
            return self.loop(udp)
        finally:
            udp.close()

    def loop(self, udp):
        seen, lines = set(), 0
        udp.send(LOG_REQUEST)
        self.out.emit("sent", "sent cmdType 3 to %s" % self.args.log_udp, cmdType=3,
                      to=self.args.log_udp)
        again = time.monotonic() + 1.0
        while True:
            item = _wait(self.inbox, self.deadline, again)
            if item is None:
                if lines and seen:
                    self.out.emit("done", "done: %d log line(s)" % lines, lines=lines)
                    return 0
                if time.monotonic() >= self.deadline:
                    self.out.emit("timeout", "timeout: no answer from the log server after %g s"
                                  % self.args.timeout)
                    return 1
                udp.send(LOG_REQUEST)
                again = time.monotonic() + 1.0
                continue
            kind, data = item
            if kind == "signal":
                self.out.error("stopped by %s" % data)
                return 1
            if kind != "udp" or data is None or data in seen:
                continue
            seen.add(data)
            for line in log_lines(data):
                lines += 1
                self.out.emit("log", line, line=line)
            again = time.monotonic() + LOG_QUIET_S
