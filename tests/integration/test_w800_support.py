"""test_w800_support.py - helpers shared by the test_w800_*.py files (this
module holds no tests; it is named test_* only because the w800 tests own
that name space).

  start_w800(module=None, **w800)
                        fixture: a w800 module (echo off, Wi-Fi auto-joined,
                        fast reconnect) -> (daemon, port), banner and Wi-Fi
                        URCs consumed. Keyword arguments merge into "w800".
  w8_certs              session fixture: test CA, server certificate for
                        localhost/127.0.0.1, client certificate, unrelated CA.
  w8_peers              fixture: factory of broker-side paho clients (conftest.MqttPeer).
  connect(...)          AT+MQTTUSERCFG [+ CONNCFG] + MQTTCONN, checking bytes.
  mqtt_err(code)        the bytes of an MQTT handler error with AT+SYSLOG=1.
  NetNamespace          puts this process (and what it starts) in a private
                        network namespace: mosquitto 2.0.11's websockets
                        listener binds every interface whatever it is told.
  private_network       module fixture: the whole test module in a NetNamespace
                        (import it with autouse; yields the original namespace's
                        inode).
"""

import ctypes
import os
import subprocess

import pytest

from conftest import deep_merge, module_config

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
PROMPT = b"\r\nOK\r\n\r\n>"
DISC = b"+MQTTDISCONNECTED:0\r\n"
WIFI_UP = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"

WIFI = {"access_points": [{"ssid": "lab", "password": "secret123"}], "auto_join": "lab",
        "join_ms": 20}


def errcode(code):
    """An error reply with AT+SYSLOG=1."""
    return b"ERR CODE:0x%08x\r\n\r\nERROR\r\n" % code


def mqtt_err(code):
    """ERR CODE of an MQTT handler failure: 0x010a0000 | code."""
    return errcode(0x010A0000 | code)


def connected_urc(scheme, host, port, path="", reconnect=1):
    return b'+MQTTCONNECTED:0,%d,"%s","%d","%s",%d\r\n' % (
        scheme, host.encode(), port, path.encode(), reconnect)


def w800_module(tmp_path, name="w8", module=None, **w800):
    conf = {"wifi": dict(WIFI), "reconnect_interval_ms": 300}
    deep_merge(conf, w800)
    m = module_config(tmp_path, name, "w800", echo=False, w800=conf)
    return deep_merge(m, module or {})


@pytest.fixture
def start_w800(make_daemon, tmp_path):
    """start_w800(daemon_kw=None, module=None, **w800) -> (daemon, port);
    module: overrides of the module's own keys (baud, tx_buffer, ...)."""
    def start(daemon_kw=None, module=None, **w800):
        m = w800_module(tmp_path, module=module, **w800)
        d = make_daemon([m], **(daemon_kw or {}))
        p = d.port(m["name"])
        p.expect(WIFI_UP)
        return d, p
    return start


def ok(port, line, timeout=5.0):
    port.cmd(line)
    port.expect(OK, timeout)


def connect(port, broker_port, scheme=1, client_id="w8", user="", pw="", path="",
            host="127.0.0.1", reconnect=1, conncfg=None, timeout=10.0):
    """USERCFG, optional CONNCFG (a parameter string after the link id),
    CONN; expects +MQTTCONNECTED and OK."""
    ok(port, 'AT+MQTTUSERCFG=0,%d,"%s","%s","%s",0,0,"%s"' % (scheme, client_id, user, pw, path))
    if conncfg is not None:
        ok(port, "AT+MQTTCONNCFG=0," + conncfg)
    port.cmd('AT+MQTTCONN=0,"%s",%d,%d' % (host, broker_port, reconnect))
    wspath = ("/" + path) if scheme >= 6 else ""
    port.expect(connected_urc(scheme, host, broker_port, wspath, reconnect) + OK, timeout)


def sntp_sync(port):
    """The module takes the host clock through SNTP (needed by schemes 3, 5, 8, 10)."""
    ok(port, "AT+CIPSNTPCFG=1,8")
    port.expect(b"+TIME_UPDATED\r\n")


def subrecv(topic, payload):
    return b'+MQTTSUBRECV:0,"%s",%d,' % (topic.encode(), len(payload)) + payload + b"\r\n"


# ---------------------------------------------------------------- broker side


@pytest.fixture
def w8_peers(mqtt_peers):
    """Broker-side peers that also record the retain flag."""
    return lambda *a, **kw: mqtt_peers(*a, with_retain=True, **kw)


# ---------------------------------------------------------------- certificates


@pytest.fixture(scope="session")
def w8_certs(tmp_path_factory):
    """ca.crt signs server.crt (localhost, 127.0.0.1) and client.crt;
    other.crt is an unrelated CA."""
    d = tmp_path_factory.mktemp("w8certs")

    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "other"):
        run("req", "-x509", *ec, "-days", "2", "-subj", "/CN=w800 test %s" % ca,
            "-keyout", ca + ".key", "-out", ca + ".crt")
    (d / "server.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, subj, ext in (("server", "/CN=localhost", ["-extfile", "server.ext"]),
                            ("client", "/CN=w800-client", [])):
        run("req", *ec, "-subj", subj, "-keyout", name + ".key", "-out", name + ".csr")
        run("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", *ext, "-out", name + ".crt")
    return d


def tls_listener(certs, name, require_cert=False, **extra):
    lst = {"name": name, "cafile": str(certs / "ca.crt"), "certfile": str(certs / "server.crt"),
           "keyfile": str(certs / "server.key")}
    if require_cert:
        lst["require_certificate"] = True
    lst.update(extra)
    return lst


# ---------------------------------------------------------------- network namespace


CLONE_NEWNET = 0x40000000


class NetNamespace:
    """with NetNamespace(): ... runs the block (and every process started in
    it) in a fresh network namespace with only loopback up; the process
    returns to its own namespace afterwards. Needs CAP_SYS_ADMIN."""

    def __enter__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        if self.libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            os.close(self.orig)
            raise OSError(err, "unshare(CLONE_NEWNET): %s" % os.strerror(err))
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return self

    def __exit__(self, *exc):
        rc = self.libc.setns(self.orig, CLONE_NEWNET)
        os.close(self.orig)
        if rc != 0:
            raise OSError(ctypes.get_errno(), "setns back to the original network namespace")
        return False


@pytest.fixture(scope="module", autouse=True)
def private_network():
    """Autouse in every module that imports it: its tests run in a fresh
    NetNamespace (skipped where none can be made)."""
    orig = os.stat("/proc/thread-self/ns/net").st_ino
    try:
        ns = NetNamespace()
        ns.__enter__()
    except OSError as e:
        pytest.skip("no private network namespace for mosquitto's websockets listener: %s" % e)
    try:
        yield orig
    finally:
        ns.__exit__(None, None, None)


def listening_outside_loopback(pids):
    """Lines of `ss -ltnp` for the given processes on a non-loopback address."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    bad = []
    for line in out.splitlines():
        if not any("pid=%d," % p in line for p in pids):
            continue
        local = line.split()[3]
        if not (local.startswith("127.") or local.startswith("[::1]")):
            bad.append(line)
    return bad
