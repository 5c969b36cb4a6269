"""ota.py - `vmodule-cloud ota push`: the Tencent console's firmware upgrade
task, on a real broker.

It serves FILE over HTTPS (or --http) with Range support and the faults of
httpd.Faults, publishes update_firmware (§7.5 of tencent-at.md) on
$ota/update/<pid>/<dn> QoS1, and prints every report the device sends on
$ota/report/<pid>/<dn>. Like a pending upgrade task, it pushes again each
time the device reports its version after a fail report (that is how the
module's retries get their push). It exits 0 on a done report; 1 on a fail
report the module does not retry (-4, MD5 mismatch), after --max-fails fail
reports, on --timeout, or on SIGINT/SIGTERM; 2 on usage errors.
--serve-only serves and prints but never publishes nor exits on reports.

The message logic runs on the main thread: paho's thread and the signal
handlers only put items on a queue."""
import argparse
import hashlib
import json
import os
import queue
import signal
import time

from vmcloud import tls
from vmcloud.events import Events, add_json_arg
from vmcloud.httpd import Faults, FileServer
from vmcloud.mqttc import Client, parse_broker

NOT_RETRIED = -4  # MD5 mismatch: the module gives up at once (§3.10 step 4)
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def _count(text):
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0, got %s" % text)
    return n


def _positive(text):
    n = float(text)
    if n <= 0:
        raise argparse.ArgumentTypeError("must be > 0, got %s" % text)
    return n


def register(sub):
    p = sub.add_parser("ota", help="firmware upgrades (ota push)")
    osub = p.add_subparsers(dest="ota_command", required=True)
    a = osub.add_parser(
        "push", help="serve FILE and push it to a device as update_firmware",
        description="Serve FILE over HTTPS (or HTTP) with Range support, publish update_firmware "
                    "on $ota/update/PID/DN and print the device's reports. Exit 0 on done, 1 on "
                    "fail/timeout, 2 on usage errors.")
    a.add_argument("file", metavar="FILE", help="the firmware image")
    a.add_argument("--broker", metavar="HOST:PORT", help="MQTT broker (optional with --serve-only)")
    a.add_argument("--product", metavar="PID", help="product id")
    a.add_argument("--device", metavar="DN", help="device name")
    a.add_argument("--version", metavar="V", help="firmware version announced in the push")
    a.add_argument("--username", help="MQTT user name (none by default)")
    a.add_argument("--password", help="MQTT password (never printed)")
    g = a.add_argument_group("download server")
    g.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    g.add_argument("--port", type=_count, default=0, help="port (default 0: a free port)")
    g.add_argument("--url-host", metavar="NAME", help="host name put in the URL (default --host)")
    g.add_argument("--file-name", metavar="NAME",
                   help="last part of the URL path (default: FILE's base name)")
    g.add_argument("--cert-dir", default=tls.DEFAULT_DIR,
                   help="where the CA and server certificate are kept (default %(default)s)")
    g = a.add_argument_group("when to push and when to stop")
    g.add_argument("--wait-version", action="store_true",
                   help="push only after the device's first report_version")
    g.add_argument("--serve-only", action="store_true",
                   help="serve and print, never publish, never exit on reports")
    g.add_argument("--max-fails", type=_count, default=4,
                   help="exit 1 after this many fail reports (default 4: first try + 3 retries)")
    g.add_argument("--timeout", type=_positive,
                   help="exit 1 after S seconds without done (default 600; none with --serve-only)")
    g = a.add_argument_group("faults (offsets count from the start of the file)")
    g.add_argument("--cut-at", type=_count, metavar="BYTES",
                   help="close the connection once the body reaches this offset (once)")
    g.add_argument("--cut-every", action="store_true", help="cut every request that reaches it")
    g.add_argument("--stall-at", type=_count, metavar="BYTES",
                   help="stop sending at this offset, connection held open (once)")
    g.add_argument("--stall-every", action="store_true", help="stall every request that reaches it")
    g.add_argument("--ignore-range", action="store_true",
                   help="answer ranged requests with 200 and the whole file")
    g.add_argument("--status", type=int, choices=(404, 416, 500), help="answer this to every GET")
    g.add_argument("--status-once", action="store_true", help="--status for the first GET only")
    g.add_argument("--bad-md5", action="store_true", help="publish a wrong md5sum")
    g.add_argument("--rate", type=_count, metavar="BYTES_PER_S", help="pace the body")
    add_json_arg(a)
    a.set_defaults(func=run, parser=a)


def _check(args):
    """Usage errors exit 2 (argparse)."""
    err = args.parser.error
    if not os.path.isfile(args.file):
        err("no such file: %s" % args.file)
    if args.broker:
        try:
            parse_broker(args.broker)
        except ValueError:
            err("--broker must be HOST:PORT, got %r" % args.broker)
    needed = ("product", "device") if args.serve_only else ("broker", "product", "device",
                                                            "version")
    if args.serve_only and not args.broker:
        needed = ()
    missing = ["--" + n for n in needed if not getattr(args, n)]
    if missing:
        err("missing %s" % ", ".join(missing))
    if args.cut_every and args.cut_at is None or args.stall_every and args.stall_at is None:
        err("--cut-every needs --cut-at, --stall-every needs --stall-at")
    if args.status_once and not args.status:
        err("--status-once needs --status")
    if args.rate == 0:
        err("--rate must be > 0")


def _number(value):
    """The report fields are strings ("42", "-5"): ints when they are numbers."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _http_text(ev):
    extra = (", cut" if ev["cut"] else "") + (", stalled" if ev["stalled"] else "")
    return "%s %s%s -> %s, %d bytes%s" % (ev["method"], ev["path"],
                                          " (Range: %s)" % ev["range"] if ev["range"] else "",
                                          ev["status"], ev["sent"], extra)


def run(args):
    _check(args)
    try:
        with open(args.file, "rb") as f:
            data = f.read()
    except OSError as e:
        args.parser.error("cannot read %s: %s" % (args.file, e.strerror))
    out = Events(args.json)
    url_host = args.url_host or WILDCARDS.get(args.host, args.host)
    context = ca = None
    try:
        if not args.http:
            extra = tuple(h for h in (args.host, url_host)
                          if h not in tls.DEFAULT_HOSTS and h not in WILDCARDS)
            ca, crt, key = tls.ensure_certs(os.path.abspath(args.cert_dir), tls.DEFAULT_HOSTS + extra)
            context = tls.server_context(crt, key)
        faults = Faults(args.cut_at, args.cut_every, args.stall_at, args.stall_every,
                        args.ignore_range, args.status, args.status_once, args.rate)
        server = FileServer(data, args.file_name or os.path.basename(args.file), args.host,
                            args.port, context, faults,
                            lambda ev: out.emit("http", _http_text(ev), **ev)).start()
    except (OSError, ValueError) as e:  # openssl failed, address in use or not ours
        out.error("cannot serve %s on %s port %d: %s" % (args.file, args.host, args.port, e))
        return 1
    url = server.url(url_host)
    try:
        return Push(args, out, data, url).run(
            # printed once the reports can be received too: a device may start then
            lambda: out.emit("listening", "serving %s%s" % (url, " (CA %s)" % ca if ca else ""),
                             url=url, ca=ca))
    finally:
        server.close()


class Push:
    def __init__(self, args, out, data, url):
        self.args, self.out = args, out
        md5 = hashlib.md5(data).hexdigest()
        if args.bad_md5:
            md5 = "%032x" % (int(md5, 16) ^ (1 << 128) - 1)  # every digit wrong
        self.message = json.dumps({"file_size": len(data), "md5sum": md5,
                                   "type": "update_firmware", "url": url,
                                   "version": args.version}, separators=(",", ":"))
        ids = (args.product, args.device)
        self.update_topic = "$ota/update/%s/%s" % ids
        self.report_topic = "$ota/report/%s/%s" % ids
        self.inbox = queue.SimpleQueue()  # put() is safe in signal handlers
        self.pushes = self.fails = 0
        self.repush = False

    def run(self, ready):
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda n, f: self.inbox.put(("signal", signal.Signals(n).name)))
        client = None
        if self.args.broker:
            client = Client(self.args.broker, lambda t, p: self.inbox.put(("report", p)),
                            username=self.args.username, password=self.args.password)
            try:
                client.connect()
                client.subscribe(self.report_topic, 1)
            except OSError as e:
                self.out.error(str(e))
                return 1
        try:
            self.client = client
            ready()
            if not (self.args.serve_only or self.args.wait_version):
                self.publish()
            return self.loop()
        finally:
            if client:
                client.close()

    def loop(self):
        timeout = self.args.timeout or (None if self.args.serve_only else 600.0)
        deadline = timeout and time.monotonic() + timeout
        while True:
            left = 1.0 if deadline is None else deadline - time.monotonic()
            try:
                kind, value = self.inbox.get(timeout=max(0.0, min(left, 1.0)))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    self.out.emit("timeout", "timeout: no done report after %g s" % timeout)
                    return 1
                continue
            if kind == "signal":
                self.out.error("stopped by %s" % value)
                return 1
            rc = self.on_report(value)
            if rc is not None:
                return rc

    def publish(self):
        self.client.publish(self.update_topic, self.message, qos=1)
        self.pushes += 1
        self.repush = False
        self.out.emit("published", "pushed %s to %s" % (self.message, self.update_topic),
                      topic=self.update_topic, payload=self.message)

    def on_report(self, payload):
        """Prints one report; returns the exit code when it ends the push."""
        text = payload.decode("utf-8", "replace")
        try:
            msg = json.loads(text)
        except ValueError:
            msg = None
        msg = msg if isinstance(msg, dict) else {}
        report = msg.get("report") if isinstance(msg.get("report"), dict) else {}
        progress = report.get("progress") if isinstance(report.get("progress"), dict) else {}
        kind, state = msg.get("type"), progress.get("state")
        percent, code = _number(progress.get("percent")), _number(progress.get("result_code"))
        version = report.get("version")
        if kind == "report_version":
            line = "device reports version %s" % version
        elif state == "downloading":
            line = "progress %s%%" % percent
        elif state:
            line = "device: %s%s" % (state, ", result_code %s" % code if state == "fail" else "")
        else:
            line = "report: %s" % text
        self.out.emit("report", line, payload=text, type=kind, state=state, percent=percent,
                      result_code=code, version=version)
        if self.args.serve_only:
            return None
        if kind == "report_version" and (self.repush or self.pushes == 0):
            self.publish()
        elif state == "done":
            self.out.emit("done", "done: the device has the image")
            return 0
        elif state == "fail":
            self.fails += 1
            if code == NOT_RETRIED or self.fails >= self.args.max_fails:
                self.out.emit("fail", "failed: result_code %s after %d fail report(s)"
                              % (code, self.fails), result_code=code, fails=self.fails)
                return 1
            self.repush = True
        return None
