"""dynreg.py - the dynamic registration server of `vmodule-cloud serve`:
HTTPS (http.server + ssl, certificates of tls.py) playing the Tencent
gateway's two APIs.

v1, POST /register/dev (tencent-at.md §7.2, what the AT firmware sends):
the exact headers (Accept: text/xml,application/json;*/*, Content-Type:
application/x-www-form-urlencoded), the exact JSON body with its key order,
a positive 31-bit nonce, a timestamp within 60 s of now and the signature.
Answer {"code":0,"message":"success","len":N,"payload":"...","requestId":..}.

v2, POST /device/register (§7.3, seed 003): Content-Type application/json,
body {"ProductId":..,"DeviceName":..}, X-TC-Algorithm hmacsha256 or
hmacsha1, X-TC-Timestamp (within 60 s), X-TC-Nonce, X-TC-Signature over
the string to sign with the Host header as sent. Answer
{"Response":{"Len":N,"Payload":"...","RequestId":..}}.

Both hand out {"encryptionType":2,"psk":"<psk>"} encrypted per §7.4; the
psk of a device is the policy's (--psk DN:PSK) or one made on its first
registration and kept for the run.

Inferred (the references give no more): an unknown product is code 1004
"product not exists", a request not in the expected form 1006 "bad param",
a wrong signature or timestamp 1010 "signature check failed"; v2 carries
the same codes in {"Response":{"Error":{"Code":1010,"Message":..},
"RequestId":..}} with HTTP 200. A device registering again gets the same
psk (code 0). Any other path is HTTP 404.

Every connection is an event ("connection"; "tls_error" when the
handshake fails), every request one "http" event, emitted before the
answer is written: method, path, headers, body (none of them carries a
secret), the status it gets (null for the "hang" fault) and "error" (what
was wrong with it, or null). TLS runs in the per-connection thread, so a
client that never finishes its handshake stalls nothing."""
import http.server
import json
import re
import ssl
import threading
import time

from vmcloud import httpd, tccrypto

V1_PATH, V2_PATH = "/register/dev", "/device/register"
V1_ACCEPT = "text/xml,application/json;*/*"
V1_CONTENT_TYPE = "application/x-www-form-urlencoded"
V1_BODY = re.compile(
    rb'\{"deviceName":"(?P<dn>[^"\\]*)","nonce":(?P<nonce>[1-9][0-9]*),'
    rb'"productId":"(?P<pid>[^"\\]*)","timestamp":(?P<ts>[1-9][0-9]*),'
    rb'"signature":"(?P<sig>[A-Za-z0-9+/=]*)"\}')
V2_BODY = re.compile(rb'\{"ProductId":"(?P<pid>[^"\\]*)","DeviceName":"(?P<dn>[^"\\]*)"\}')
MAX_SKEW = 60
MAX_BODY = 65536
NOT_FOUND = b"<html><body>404 Not Found</body></html>"
MESSAGES = {0: "success", 1004: "product not exists", 1006: "bad param",
            1010: "signature check failed", 1021: "device already registered"}
CERT_PLAINTEXT = ('{"encryptionType":1,"clientCert":"-----BEGIN CERTIFICATE-----\\nMIIB\\n'
                  '-----END CERTIFICATE-----\\n","clientKey":"-----BEGIN PRIVATE KEY-----'
                  '\\nMIIE\\n-----END PRIVATE KEY-----\\n"}')
MALFORMED_CODES = {"code_fraction": b"0.5", "code_1e300": b"1e300", "code_string": b'"0"'}


class Refused(Exception):
    """A request the cloud refuses: code and what was wrong."""

    def __init__(self, code, why, bad_signature=False):
        super().__init__(why)
        self.code = code
        self.bad_signature = bad_signature


def psk_plaintext(psk):
    return '{"encryptionType":2,"psk":"%s"}' % psk


def _timestamp_ok(ts):
    return abs(ts - time.time()) <= MAX_SKEW


def check_v1(headers, body, products):
    """(pid, dn) of a good v1 request, else raises Refused."""
    errs = []
    if headers.get("Accept") != V1_ACCEPT:
        errs.append("Accept: %r" % headers.get("Accept"))
    if headers.get("Content-Type") != V1_CONTENT_TYPE:
        errs.append("Content-Type: %r" % headers.get("Content-Type"))
    m = V1_BODY.fullmatch(body)
    if not m:
        raise Refused(1006, "; ".join(errs + ["body not in the §7.2 form: %r" % body[:200]]))
    pid, dn = m["pid"].decode(), m["dn"].decode()
    nonce, ts, sig = int(m["nonce"]), int(m["ts"]), m["sig"].decode()
    if errs:
        raise Refused(1006, "; ".join(errs))
    if pid not in products:
        raise Refused(1004, "unknown product %s" % pid)
    if not 1 <= nonce <= 0x7FFFFFFF:
        errs.append("nonce %d is not a positive 31-bit integer" % nonce)
    if not _timestamp_ok(ts):
        errs.append("timestamp %d is %.0f s from now" % (ts, ts - time.time()))
    bad_sig = sig != tccrypto.v1_signature(pid, dn, products[pid], nonce, ts)
    if bad_sig:
        errs.append("signature %r does not match" % sig)
    if errs:
        raise Refused(1010, "; ".join(errs), bad_sig)
    return pid, dn


def check_v2(headers, body, products):
    """(pid, dn) of a good v2 request, else raises Refused."""
    ctype = headers.get("Content-Type") or ""
    algo = headers.get("X-TC-Algorithm") or ""
    ts, nonce, sig = (headers.get("X-TC-" + h) for h in ("Timestamp", "Nonce", "Signature"))
    m = V2_BODY.fullmatch(body)
    errs = []
    if not ctype.split(";")[0].strip() == "application/json":
        errs.append("Content-Type: %r" % ctype)
    if algo.lower() not in tccrypto.V2_HASHES:
        errs.append("X-TC-Algorithm: %r" % algo)
    if not (ts or "").isdigit() or not (nonce or "").isdigit() or not sig:
        errs.append("X-TC-Timestamp, X-TC-Nonce and X-TC-Signature are needed")
    if not m:
        errs.append("body not in the §7.3 form: %r" % body[:200])
    if errs:
        raise Refused(1006, "; ".join(errs))
    pid, dn = m["pid"].decode(), m["dn"].decode()
    if pid not in products:
        raise Refused(1004, "unknown product %s" % pid)
    if not _timestamp_ok(int(ts)):
        errs.append("timestamp %s is %.0f s from now" % (ts, int(ts) - time.time()))
    want = tccrypto.v2_signature(products[pid], headers.get("Host") or "", algo, ts, nonce, body)
    if sig != want:
        errs.append("signature %r does not match" % sig)
    if errs:
        raise Refused(1010, "; ".join(errs), sig != want)
    return pid, dn


def _json(obj):
    return 200, "application/json", json.dumps(obj, separators=(",", ":")).encode()


class Registry:
    """Decides the answer to one request under a policy: (status, type, body)."""

    def __init__(self, events):
        self.events = events
        self.psks = {}       # dn -> psk made here
        self.count = 0
        self.lock = threading.Lock()

    def psk_for(self, policy, dn):
        with self.lock:
            if dn in policy.devices:
                return policy.devices[dn]
            return self.psks.setdefault(dn, tccrypto.new_psk())

    def answer(self, policy, path, headers, body):
        """-> (status, content type, body, error text or None, whether the
        signature was wrong)."""
        with self.lock:
            self.count += 1
            rid = "vmodule-cloud-%d" % self.count
        fault = policy.dynreg_fault
        if path not in (V1_PATH, V2_PATH):
            return 404, "text/html", NOT_FOUND, "no such path", False
        v2 = path == V2_PATH
        try:
            pid, dn = (check_v2 if v2 else check_v1)(headers, body, policy.products)
            error, code, bad_sig = None, 0, False
        except Refused as r:
            error, code, bad_sig = str(r), r.code, r.bad_signature
        if fault == "http404":
            return 404, "text/html", NOT_FOUND, error, bad_sig
        if fault == "http403":
            return 403, "text/html", b"<html><body>403 Forbidden</body></html>", error, bad_sig
        if fault == "garbage":
            return 200, "text/html", b"<html>not json</html>", error, bad_sig
        if code == 0 and fault == "code1021":
            code = 1021
        if code:
            if v2:
                return _json({"Response": {"Error": {"Code": code, "Message": MESSAGES[code]},
                                           "RequestId": rid}}) + (error, bad_sig)
            return _json({"code": code, "message": MESSAGES[code],
                          "requestId": rid}) + (error, bad_sig)
        secret = policy.products[pid]
        plain = CERT_PLAINTEXT if fault == "cert" else psk_plaintext(self.psk_for(policy, dn))
        if fault == "type_fraction":
            plain = plain.replace('"encryptionType":2', '"encryptionType":2.5')
        payload = tccrypto.encrypt_payload(secret, plain)
        self.events.emit("registered", "registered %s/%s (%s)" % (pid, dn, "v2" if v2 else "v1"),
                         product=pid, device=dn, api="v2" if v2 else "v1")
        if v2:
            return _json({"Response": {"Len": len(plain), "Payload": payload,
                                       "RequestId": rid}}) + (None, False)
        if fault in MALFORMED_CODES:
            return (200, "application/json",
                b'{"code":%s,"message":"success","len":%d,"payload":"%s","requestId":"%s"}'
                % (MALFORMED_CODES[fault], len(plain), payload.encode(), rid.encode()),
                None, False)
        return _json({"code": 0, "message": "success", "len": len(plain), "payload": payload,
                      "requestId": rid}) + (None, False)


class DynregServer:
    """serve(policy_getter) on (host, port) with the certificate pair;
    hold_changed() wakes the answers held by the dynreg_hold policy."""

    def __init__(self, host, port, cert, key, events, policy):
        self.events = events
        self.policy = policy            # a callable: the current Policy
        self.registry = Registry(events)
        self.cond = threading.Condition()
        self.closing = False
        owner = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                owner.on_request(self, self.rfile.read(min(max(n, 0), MAX_BODY)))

            def do_GET(self):
                owner.on_request(self, b"")

            def log_message(self, *a):
                pass

        self.httpd = httpd.Server(
            host, port, Handler, ctx,
            on_connect=lambda peer: events.emit("connection", "connection from %s"
                                                % peer.rsplit(":", 1)[0], peer=peer),
            on_tls_error=lambda err: events.emit("tls_error", "TLS handshake failed: %s" % err,
                                                 error=err))
        self.port = self.httpd.port

    def start(self):
        self.httpd.start()

    def hold_changed(self):
        with self.cond:
            self.cond.notify_all()

    def _wait(self, held):
        with self.cond:
            self.cond.wait_for(lambda: self.closing or not held(), 3600)

    def on_request(self, handler, body):
        headers = {k: v for k, v in handler.headers.items()}
        policy = self.policy()
        # header names are looked up case-insensitively, as any HTTP server does
        status, ctype, data, error, bad_sig = self.registry.answer(
            policy, handler.path, handler.headers, body)
        hang = policy.dynreg_fault == "hang"
        self.events.emit("http", "%s %s -> %s%s" % (handler.command, handler.path,
                                                    "no answer" if hang else status,
                                                    " (%s)" % error if error else ""),
                         method=handler.command, path=handler.path, headers=headers,
                         body=body.decode("utf-8", "replace"), status=None if hang else status,
                         error=error)
        if bad_sig:
            self.events.emit("bad_signature", "bad registration signature on %s" % handler.path,
                             path=handler.path, error=error)
        if hang:
            self._wait(lambda: True)
            handler.close_connection = True
            return
        self._wait(lambda: self.policy().dynreg_hold)
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self):
        with self.cond:
            self.closing = True
            self.cond.notify_all()
        self.httpd.close()
