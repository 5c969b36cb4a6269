"""test_templates.py - templated modules: one entry with "count": N becomes
N modules, n running first..first+N-1, {n} / {n:W} / {n:0W} substituted in
the name, the endpoints, the trace and every string of the dialect object.

Checked on the running daemon: the expanded names (`list`), the paths and
ports (module n of an entry on base + its position), identities that come
from the dialect's strings as the MCU and the broker see them (AT+TCMODULE,
AT+CGSN, the MQTT username at a real mosquitto), an entry without count
left as it is. And as config errors (exit 2, one line naming the expanded
module): a bad placeholder, a name used twice, a port past 65535, count and
first out of range. A fleet of 1000 unix-socket modules starts, serves its
last module and stops quickly."""

import os
import shutil
import tempfile
import time

import pytest

from conftest import TcpPort, free_port_range, module_config, wait_for

JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
PID, SECRET = "CTQS08Y5LG", "ZHNkIGRzZCA="


@pytest.fixture
def sockdir():
    d = tempfile.mkdtemp(prefix="vmt-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def entry(tmp_path, name, count=None, first=None, dialect="tencent", pty=False, **kw):
    """A module entry, templated when count is given; no PTY unless pty."""
    m = module_config(tmp_path, name, dialect, echo=False, **kw)
    if not pty:
        del m["pty_link"]
    if count is not None:
        m["count"] = count
    if first is not None:
        m["first"] = first
    return m


def names(d):
    with d.ctl() as c:
        r = c.request("list")
    assert r["ok"], r
    return [m["name"] for m in r["result"]]


def status(d, name):
    with d.ctl() as c:
        r = c.request("status", name)
    assert r["ok"], r
    return r["result"]


def tcmodule(name, mac):
    return ("Module HW name: %s\r\nModule FW version: QCloud_AT_ESP8266_v2.1.1\r\n"
            "Module Mac addr: %s\r\nModule FW compiled time: Sep  3 2020 11:43:26\r\n"
            "Module Flash size: 2MB\r\n\r\nOK\r\n" % (name, mac)).encode()


# ------------------------------------------------------------------ expansion at work


def test_template_names_sockets_and_dialect_strings(make_daemon, tmp_path, sockdir):
    tmpl = entry(tmp_path, "tc{n:03}", count=3, first=5,
                 unix_listen=os.path.join(sockdir, "tc{n}.sock"),
                 trace=str(tmp_path / "tc{n:2}.trace"),
                 tencent={"module_name": "VM-{n:03}", "mac": "84:f3:eb:56:0e:{n:02}"})
    plain = entry(tmp_path, "plain", pty=True, tencent={"module_name": "X{n}"})
    d = make_daemon([plain, tmpl])
    assert names(d) == ["plain", "tc005", "tc006", "tc007"]
    for n in (5, 6, 7):
        path = os.path.join(sockdir, "tc%d.sock" % n)
        assert status(d, "tc%03d" % n)["unix"] == path
        u = d.unix("tc%03d" % n, path)
        u.wait_ready()
        u.cmd("AT+TCMODULE")
        u.expect(tcmodule("VM-%03d" % n, "84:f3:eb:56:0e:%02d" % n))
        wait_for(lambda: (tmp_path / ("tc%02d.trace" % n)).exists(), 5, "the trace of tc%03d" % n)
    # an entry without count is left as it is: braces and all
    p = d.port("plain")
    p.cmd("AT+TCMODULE")
    p.expect(tcmodule("X{n}", "84:f3:eb:56:0e:e9"))
    d.stop()
    for n in (5, 6, 7):
        assert not os.path.lexists(os.path.join(sockdir, "tc%d.sock" % n))


def test_template_tcp_port_is_base_plus_position(make_daemon, tmp_path):
    base = free_port_range(3)
    d = make_daemon([entry(tmp_path, "k{n}", count=3, first=30,  # a pod with ordinal 10
                           tcp_listen="127.0.0.1:%d" % base,
                           tencent={"module_name": "pod-{n}"})])
    assert names(d) == ["k30", "k31", "k32"]
    for pos, n in enumerate((30, 31, 32)):
        assert status(d, "k%d" % n)["tcp"] == "127.0.0.1:%d" % (base + pos)
        t = TcpPort("127.0.0.1", base + pos, name="tcp[k%d]" % n)
        d.ports.append(t)
        t.wait_ready()
        t.cmd("AT+TCMODULE")
        t.expect(tcmodule("pod-%d" % n, "84:f3:eb:56:0e:e9"))


def test_template_identity_reaches_the_broker(make_daemon, tmp_path, sockdir, mosquitto):
    broker = mosquitto()
    d = make_daemon([entry(tmp_path, "tc{n}", count=2, first=7,
                           unix_listen=os.path.join(sockdir, "tc{n}.sock"),
                           tencent={"mqtt_transport": "tcp", "mqtt_host": "127.0.0.1",
                                    "mqtt_port": broker.port, "connid": "C{n:04}",
                                    "wifi": WIFI})])
    for n in (7, 8):
        u = d.unix("tc%d" % n, os.path.join(sockdir, "tc%d.sock" % n))
        u.wait_ready()
        u.expect(JOINED)
        u.cmd('AT+TCDEVINFOSET=1,"%s","dev%d","%s"' % (PID, n, SECRET))
        u.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
        u.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
        u.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)
        seen = "as %sdev%d (p2, c1, k240, u'%sdev%d;21010406;C%04d;" % (PID, n, PID, n, n)
        wait_for(lambda: seen in broker.log_text(), 5, "the broker to log " + seen)


def test_template_me3630_imei(make_daemon, tmp_path, sockdir):
    d = make_daemon([entry(tmp_path, "me{n}", count=2, dialect="me3630",
                           unix_listen=os.path.join(sockdir, "me{n}.sock"),
                           me3630={"imei": "8690120345{n:05}", "boot_urcs": ["+BOOT: {n}"]})])
    for n in (0, 1):
        u = d.unix("me%d" % n, os.path.join(sockdir, "me%d.sock" % n))
        u.expect(b"\r\n+BOOT: %d\r\n" % n)
        u.send(b"AT+CGSN\r")
        u.expect(b"\r\n8690120345%05d\r\n\r\nOK\r\n" % n)


def test_template_fleet_of_1000_unix_modules(make_daemon, tmp_path, sockdir):
    d = make_daemon([entry(tmp_path, "f{n:04}", count=1000,
                           unix_listen=os.path.join(sockdir, "f{n}.sock"))], start=False)
    t0 = time.monotonic()
    d.start()
    started = time.monotonic() - t0
    assert len(names(d)) == 1000
    u = d.unix("f0999", os.path.join(sockdir, "f999.sock"))
    u.wait_ready()
    u.cmd("AT")
    u.expect(b"\r\nOK\r\n")
    assert started < 5, "1000 modules took %.2f s to start" % started
    t0 = time.monotonic()
    d.stop()
    assert time.monotonic() - t0 < 5
    assert os.listdir(sockdir) == []


# ------------------------------------------------------------------ config errors


HELP = "(use {n}, {n:W} or {n:0W} with W 1 to 10, {{ or }} for a brace)"


def tc(name="tc{n:03}", **kw):
    m = {"name": name, "dialect": "tencent", "unix_listen": "/tmp/vm-none/{n}.sock"}
    m.update(kw)
    return m


ERRORS = [
    ("placeholder_in_dialect", [tc(count=3, first=6, tencent={"module_name": "VM-{m}"})],
     'module "tc006": tencent.module_name: unknown placeholder "{m}" ' + HELP),
    ("placeholder_nested", [tc(count=2, tencent={"wifi": {"access_points": [
        {"ssid": "lab{n:00}"}]}})],
     'module "tc000": tencent.wifi.access_points[0].ssid: unknown placeholder "{n:00}" ' + HELP),
    ("placeholder_in_path", [tc(count=2, unix_listen="/tmp/{n")],
     'module "tc000": unix_listen: unclosed "{" ' + HELP),
    ("placeholder_in_name", [tc(name="tc{x}", count=2)],
     'modules[0].name: unknown placeholder "{x}" ' + HELP),
    ("expanded_value_checked", [tc(count=2, first=99, tencent={"mac": "84:f3:eb:56:0e:{n}"})],
     'module "tc100": tencent.mac: must be a MAC address like "84:f3:eb:56:0e:e9"'),
    ("name_twice_in_entry", [tc(name="tc", count=2)],
     'module "tc" (modules[0], n=1): name: "tc" is already used by module "tc" (modules[0], n=0)'),
    ("name_twice_across", [tc(name="a{n}", count=5), tc(name="a{n}", count=2, first=4)],
     'module "a4" (modules[1], n=4): name: "a4" is already used by module "a4" (modules[0], n=4)'),
    ("socket_twice", [tc(name="a{n}", count=2, unix_listen="/tmp/one.sock")],
     'module "a1" (modules[0], n=1): unix_listen: "/tmp/one.sock" is already used by module "a0" '
     '(modules[0], n=0)'),
    ("port_overflow", [tc(count=10, first=20, tcp_listen="127.0.0.1:65530")],
     'module "tc026": tcp_listen: port 65536 (65530 + 6) is past 65535'),
    ("count_zero", [tc(count=0)], "modules[0].count: must be an integer between 1 and 100000"),
    ("count_too_big", [tc(count=100001)],
     "modules[0].count: must be an integer between 1 and 100000"),
    ("first_without_count", [tc(name="tc", first=3)], "modules[0].first: only with count"),
    ("first_negative", [tc(count=2, first=-1)],
     "modules[0].first: must be an integer between 0 and 1000000000"),
    ("no_endpoint", [{"name": "tc{n}", "dialect": "tencent", "count": 2}],
     'module "tc0": pty_link: required without tcp_listen or unix_listen (a module needs a serial '
     'endpoint)'),
]


@pytest.mark.parametrize("modules,error", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_template_config_errors_name_the_expanded_module(run_vmoduled, tmp_path, modules, error):
    import json
    cfg = tmp_path / "vmoduled.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "state"), "modules": modules}))
    cp = run_vmoduled(["-c", cfg])
    assert cp.returncode == 2, cp.stderr
    assert cp.stderr == "vmoduled: config: %s\n" % error
    assert not (tmp_path / "state").exists()  # nothing was created
