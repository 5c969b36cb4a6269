"""policy.py - what `vmodule-cloud serve` answers: the command-line options
merged with the --config JSON file, which is read again on SIGHUP.

The file holds any of these keys (each replaces the option of the same
meaning; "results" and the secret tables are merged over the options):
  {"time": "auto" | UNIX_SECONDS | "none",
   "results": {"bind": 0, "unbind": 0, "online": 0, "offline": 0,
               "describe_sub_devices": 0},       (a code, or "none"/null: no answer)
   "sub_devices": {"PID/DN": "SUB_DEVICE_SECRET"},
   "products": {"PID": "PRODUCT_SECRET"},
   "devices": {"DN": "PSK"},                     (the PSK handed out to that device)
   "raw_replies": {"KIND": ["TEXT", ...]},       (sent instead of the answer)
   "decoys": ["TEXT", ...],                      (sent before every gateway answer)
   "require_bind": false, "version_reply": true,
   "dynreg_fault": "none", "dynreg_hold": false}
A Policy is never changed once made: a reload makes a new one."""
import json

GW_KINDS = ("bind", "unbind", "online", "offline", "describe_sub_devices")
RAW_KINDS = ("time", "report_version") + GW_KINDS
# what the registration server does instead of a normal answer (--dynreg-fault)
DYNREG_FAULTS = {
    "none": "answer normally",
    "code1021": "code 1021, device already registered",
    "http403": "HTTP 403 with an HTML page",
    "http404": "HTTP 404 with an HTML page",
    "garbage": "HTTP 200, a body that is not JSON",
    "cert": "success with a certificate device's payload (encryptionType 1)",
    "type_fraction": "success with encryptionType 2.5",
    "code_fraction": "v1: a good payload behind code 0.5",
    "code_1e300": "v1: a good payload behind code 1e300",
    "code_string": 'v1: a good payload behind code "0"',
    "hang": "read the request, never answer",
}
FIELDS = ("time", "results", "sub_devices", "products", "devices", "raw_replies", "decoys",
          "require_bind", "version_reply", "dynreg_fault", "dynreg_hold")


def parse_time(v):
    """'auto' | UNIX_SECONDS | 'none' (None) -> 'auto' | int | None."""
    if v is None or v == "none":
        return None
    if v == "auto":
        return "auto"
    if isinstance(v, bool):
        raise ValueError("time must be auto, none or unix seconds")
    try:
        t = int(v)
    except (TypeError, ValueError):
        raise ValueError("time must be auto, none or unix seconds, got %r" % (v,))
    if isinstance(v, float) or not 0 <= t < 2 ** 31:
        raise ValueError("time must be whole unix seconds below 2^31, got %r" % (v,))
    return t


def parse_code(kind, v):
    if kind not in GW_KINDS:
        raise ValueError("result kind must be one of %s, got %r" % (", ".join(GW_KINDS), kind))
    if v is None or v == "none":
        return None
    try:
        if isinstance(v, (bool, float)):
            raise ValueError
        return int(v)
    except (TypeError, ValueError):
        raise ValueError("result of %s must be an integer or none, got %r" % (kind, v))


def split_pair(text, sep, what):
    left, found, right = text.partition(sep)
    if not found or not left or not right:
        raise ValueError("expected %s" % what)
    return left, right


def parse_device_key(key):
    """'PID/DN' -> (pid, dn)."""
    return split_pair(key, "/", "PID/DN")


def check_product_secret(pid, secret):
    if len(secret) < 16:
        # §7.4: the first 16 characters are the AES key of the answer
        raise ValueError("the product secret of %s needs at least 16 characters" % pid)
    return secret


class Policy:
    def __init__(self, **kw):
        self.time = kw.get("time", "auto")
        self.results = dict.fromkeys(GW_KINDS, 0)
        self.results.update(kw.get("results") or {})
        self.sub_devices = dict(kw.get("sub_devices") or {})   # (pid, dn) -> secret
        self.products = dict(kw.get("products") or {})         # pid -> product secret
        self.devices = dict(kw.get("devices") or {})           # dn -> psk
        self.raw_replies = dict(kw.get("raw_replies") or {})   # kind -> [text]
        self.decoys = list(kw.get("decoys") or [])
        self.require_bind = bool(kw.get("require_bind", False))
        self.version_reply = bool(kw.get("version_reply", True))
        self.dynreg_fault = kw.get("dynreg_fault", "none")
        self.dynreg_hold = bool(kw.get("dynreg_hold", False))
        if self.dynreg_fault not in DYNREG_FAULTS:
            raise ValueError("dynreg fault must be one of %s, got %r"
                             % (", ".join(DYNREG_FAULTS), self.dynreg_fault))

    def merged(self, doc):
        """A new Policy: this one with the keys of a config document over it."""
        if not isinstance(doc, dict):
            raise ValueError("the config must be a JSON object")
        unknown = sorted(set(doc) - set(FIELDS))
        if unknown:
            raise ValueError("unknown config key(s): %s" % ", ".join(unknown))
        kw = {f: getattr(self, f) for f in FIELDS}
        if "time" in doc:
            kw["time"] = parse_time(doc["time"])
        kw["results"] = dict(self.results, **{k: parse_code(k, v) for k, v in
                                               _obj(doc, "results").items()})
        kw["sub_devices"] = dict(self.sub_devices)
        kw["sub_devices"].update({parse_device_key(k): _text(v, "sub-device secret")
                                  for k, v in _obj(doc, "sub_devices").items()})
        kw["products"] = dict(self.products, **{
            k: check_product_secret(k, _text(v, "product secret"))
            for k, v in _obj(doc, "products").items()})
        kw["devices"] = dict(self.devices, **{k: _text(v, "psk")
                                              for k, v in _obj(doc, "devices").items()})
        if "raw_replies" in doc:
            raw = _obj(doc, "raw_replies")
            for k, v in raw.items():
                if k not in RAW_KINDS or not isinstance(v, list) or \
                        not all(isinstance(t, str) for t in v):
                    raise ValueError("raw_replies: %r must be one of %s with a list of strings"
                                     % (k, ", ".join(RAW_KINDS)))
            kw["raw_replies"] = raw
        if "decoys" in doc:
            if not isinstance(doc["decoys"], list) or \
                    not all(isinstance(t, str) for t in doc["decoys"]):
                raise ValueError("decoys must be a list of strings")
            kw["decoys"] = doc["decoys"]
        for flag in ("require_bind", "version_reply", "dynreg_hold"):
            if flag in doc:
                if not isinstance(doc[flag], bool):
                    raise ValueError("%s must be true or false" % flag)
                kw[flag] = doc[flag]
        if "dynreg_fault" in doc:
            kw["dynreg_fault"] = doc["dynreg_fault"]
        return Policy(**kw)

    def merged_file(self, path):
        try:
            with open(path) as f:
                doc = json.load(f)
        except OSError as e:
            raise ValueError("cannot read %s: %s" % (path, e.strerror))
        except ValueError as e:
            raise ValueError("%s is not JSON: %s" % (path, e))
        return self.merged(doc)


def _obj(doc, key):
    v = doc.get(key) or {}
    if not isinstance(v, dict):
        raise ValueError("%s must be a JSON object" % key)
    return v


def _text(v, what):
    if not isinstance(v, str) or not v:
        raise ValueError("a %s must be a non-empty string" % what)
    return v
