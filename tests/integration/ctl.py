"""ctl.py - the suite's client of vmoduled's control socket (README "Control
socket"): one JSON object per line each way. Ctl(path).request(cmd, module,
*args, **fields) sends {"cmd", "module", "args": [...], **fields} and returns
the reply object ({"ok": true, "result": ...} or {"ok": false, "error": ...}).
stream(cmd, ...) sends a following request (events -f, trace -f) and returns
the connection's line iterator after the first reply.

vmodulectl(args) runs build/vmodulectl (VMODULECTL env, else next to
VMODULED) and returns the CompletedProcess: the CLI is what users run, this
module is for reading what the daemon answers byte for byte.

A socket path longer than sun_path (tmp_path names can be) is reached
through /proc/self/fd/<directory fd>/<name>, as vmodulectl does."""
import json
import os
import socket
import subprocess
from pathlib import Path

SUN_PATH_MAX = 107


def vmodulectl_bin():
    if os.environ.get("VMODULECTL"):
        return os.environ["VMODULECTL"]
    d = os.environ.get("VMODULED")
    return str(Path(d).parent / "vmodulectl") if d else "build/vmodulectl"


def vmodulectl(socket_path, *args, timeout=30, input=None):
    return subprocess.run([vmodulectl_bin(), "-s", str(socket_path)] + [str(a) for a in args],
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
                          if input is None else None, input=input)


def connect(path):
    path = str(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if len(path.encode()) <= SUN_PATH_MAX:
        s.connect(path)
        return s
    d = os.open(os.path.dirname(path), os.O_PATH)
    try:
        s.connect("/proc/self/fd/%d/%s" % (d, os.path.basename(path)))
    finally:
        os.close(d)
    return s


class Ctl:
    def __init__(self, path, timeout=10.0):
        self.sock = connect(path)
        self.sock.settimeout(timeout)
        self.f = self.sock.makefile("rb")

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_line(self):
        line = self.f.readline()
        if not line:
            raise EOFError("control socket closed")
        return json.loads(line)

    def request(self, cmd, module=None, *args, **fields):
        req = {"cmd": cmd}
        if module is not None:
            req["module"] = module
        if args:
            req["args"] = [str(a) for a in args]
        req.update(fields)
        self.send_raw((json.dumps(req) + "\n").encode())
        return self.read_line()

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
