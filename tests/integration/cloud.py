"""cloud.py - runs scripts/vmodule-cloud as the suite's Tencent cloud peer.

The suite's fake peers for dynamic registration, the gateway, $sys time and
OTA are this tool, run as a user runs it: CloudTool(args) starts
`vmodule-cloud <args> --json` and reads the one-JSON-object-per-line events
it prints on stdout on a thread; wait_event(kind, **fields) returns the
first event (from a given index on) of that kind whose fields match, and
finish() waits for the exit code. Stderr is kept for failure messages.
sync() makes sure every event the tool printed before it is read here
(`serve` answers SIGUSR1 with a "sync" event), so a test can count events
that happened before something it saw elsewhere.

cert_dir(certs, hosts) is a --cert-dir for the tool whose CA is the suite's
test CA (certs/ca.crt), so a module trusting that CA trusts the tool too."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VMODULE_CLOUD = os.environ.get("VMODULE_CLOUD") or str(REPO / "scripts" / "vmodule-cloud")
sys.path.insert(0, str(REPO / "scripts"))
from vmcloud import tls  # noqa: E402


def cert_dir(certs, hosts):
    """certs/vmodule-cloud: the suite's CA and a server certificate for
    hosts signed by it (made once; tls.ensure_certs keeps it after)."""
    d = Path(certs) / "vmodule-cloud"
    d.mkdir(mode=0o700, exist_ok=True)
    for name in ("ca.crt", "ca.key"):
        if not (d / name).exists():
            shutil.copy(Path(certs) / name, d / name)
    tls.ensure_certs(str(d), tuple(hosts))
    return d


class CloudTool:
    def __init__(self, args, env=None):
        self.args = [sys.executable if sys.executable.startswith("/usr/bin/") else
                     "/usr/bin/python3", VMODULE_CLOUD] + [str(a) for a in args] + ["--json"]
        self.events = []
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env or os.environ.copy())
        self._err = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._te = threading.Thread(target=lambda: self._err.extend(self.p.stderr), daemon=True)
        self._t.start()
        self._te.start()

    def _read(self):
        for raw in self.p.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                try:
                    ev = json.loads(line)
                    if isinstance(ev, dict):
                        self.events.append(ev)
                except ValueError:
                    pass
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def stderr(self):
        return b"".join(self._err).decode("utf-8", "replace")

    def _context(self):
        return "\nstdout:\n%s\nstderr:\n%s" % ("\n".join(self.lines[-30:]), self.stderr()[-2000:])

    def find(self, kind, start=0, **fields):
        with self.cond:
            for ev in self.events[start:]:
                if ev.get("event") == kind and all(ev.get(k) == v for k, v in fields.items()):
                    return ev
        return None

    def count(self, kind, **fields):
        with self.cond:
            return sum(1 for ev in self.events if ev.get("event") == kind and
                       all(ev.get(k) == v for k, v in fields.items()))

    def wait_event(self, kind, timeout=10.0, start=0, **fields):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                ev = self.find(kind, start, **fields)
                if ev is not None:
                    return ev
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self._t.is_alive()):
                    raise AssertionError("no %s event %r from vmodule-cloud%s"
                                         % (kind, fields, self._context()))
                self.cond.wait(min(left, 0.2))

    def sync(self, timeout=10.0):
        with self.cond:
            start = len(self.events)
        self.signal(signal.SIGUSR1)
        self.wait_event("sync", timeout, start)

    def reload(self, timeout=10.0):
        """SIGHUP: the tool reads its --config again; returns once it has."""
        with self.cond:
            start = len(self.events)
        self.signal(signal.SIGHUP)
        self.wait_event("reloaded", timeout, start)

    def synced(self, kind):
        """Every event of kind printed so far (sync() first: nothing in flight)."""
        self.sync()
        with self.cond:
            return [e for e in self.events if e.get("event") == kind]

    def finish(self, timeout=30.0):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("vmodule-cloud did not exit%s" % self._context())
        self._t.join(5)
        return rc

    def signal(self, sig):
        self.p.send_signal(sig)

    def close(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._t.join(5)
