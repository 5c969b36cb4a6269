"""test_ctl_serial.py - `serial MODULE drop PPM|corrupt PPM|clear|unplug|plug`
through the control socket (issue 12), on the real PTY and TCP endpoint.

drop and corrupt act where bytes leave the TX queue, after pacing, with a
PRNG seeded from the module's name: 1000000 ppm hits every byte, 0 none, a
rate in between lands near its share. unplug is a USB module vanishing: the
MCU's open fd sees hang-up, the symlink goes, the TCP endpoint drops its
client and refuses new ones; the module keeps running (RAM state kept) and
what it writes meanwhile is lost. plug brings a new /dev/pts/N behind the
same symlink and the TCP endpoint back."""

import errno
import os
import select
import socket
import time

import pytest

from conftest import TcpPort, module_config, wait_for

AT_REPLY = b"AT\r\n\r\nOK\r\n"  # echo on (power-on default), then the reply


def serial_status(d, name):
    with d.ctl() as c:
        r = c.request("status", name)
    assert r["ok"], r
    return r["result"]["serial"]


def ctl_ok(d, *words):
    with d.ctl() as c:
        r = c.request(*words)
    assert r.get("ok") is True, r
    return r


def ctl_error(d, *words):
    with d.ctl() as c:
        r = c.request(*words)
    assert r.get("ok") is False and set(r) == {"ok", "error"}, r
    return r["error"]


def wait_serial(d, name, key, at_least, timeout=5.0):
    """Waits until the status counter serial.<key> reaches at_least."""
    return wait_for(lambda: serial_status(d, name)[key] >= at_least and serial_status(d, name),
                    timeout, "serial.%s >= %d" % (key, at_least))


def serial_events(d, name):
    with d.ctl() as c:
        r = c.request("events")
    assert r["ok"], r
    return [e["state"] for e in r["result"]
            if e.get("module") == name and e.get("kind") == "state" and e.get("what") == "serial"]


def hung_up(fd):
    """True when fd shows the hang-up a vanished USB serial device gives:
    poll reports POLLHUP and a read returns end of file (or EIO)."""
    p = select.poll()
    p.register(fd, select.POLLIN)
    events = p.poll(2000)
    if not events or not events[0][1] & select.POLLHUP:
        return False
    try:
        return os.read(fd, 64) == b""
    except OSError as e:
        return e.errno == errno.EIO


def is_subsequence(small, big):
    it = iter(big)
    return all(b in it for b in small)


def big_urc(n):
    """A URC text of n printable bytes ending in CR LF (control socket words)."""
    body = "".join(chr(0x21 + (i % 90)) for i in range(n - 2)).replace("\\", "/")
    return body + "\\r\\n", (body + "\r\n").encode()


# ---------------------------------------------------------------- drop / corrupt


def test_serial_drop_all_then_clear_gives_exact_bytes_again(start_module):
    d, port = start_module("tencent", name="m0")
    ctl_ok(d, "serial", "m0", "drop", "1000000")
    port.cmd("AT")
    wait_serial(d, "m0", "dropped", len(AT_REPLY))
    port.expect_nothing_pending()
    ctl_ok(d, "serial", "m0", "clear")
    port.cmd("AT")
    port.expect(AT_REPLY)
    st = serial_status(d, "m0")
    assert st == {"drop_ppm": 0, "corrupt_ppm": 0, "dropped": len(AT_REPLY), "corrupted": 0,
                  "lost_unplugged": 0, "plugged": True}


def test_serial_corrupt_all_flips_exactly_one_bit_of_every_byte(start_module):
    d, port = start_module("tencent", name="m0")
    ctl_ok(d, "serial", "m0", "corrupt", "1000000")
    assert serial_status(d, "m0")["corrupt_ppm"] == 1000000
    port.cmd("AT")
    got = port.read_exact(len(AT_REPLY))
    assert len(got) == len(AT_REPLY)
    flips = [bin(a ^ b).count("1") for a, b in zip(got, AT_REPLY)]
    assert flips == [1] * len(AT_REPLY), (got, flips)
    assert serial_status(d, "m0")["corrupted"] == len(AT_REPLY)
    ctl_ok(d, "serial", "m0", "corrupt", "0")
    port.cmd("AT")
    port.expect(AT_REPLY)


def test_serial_drop_half_of_4_kib_lands_near_half_in_order(start_module):
    d, port = start_module("tencent", name="m0")
    ctl_ok(d, "serial", "m0", "drop", "500000")
    sent = b""
    for _ in range(4):
        word, text = big_urc(1000)
        ctl_ok(d, "urc", "m0", word)
        sent += text
    st = wait_serial(d, "m0", "dropped", 1)
    got = port.read_available(0.0)
    deadline = time.monotonic() + 5
    while len(got) + st["dropped"] < len(sent) and time.monotonic() < deadline:
        got += port.read_exact(len(sent) - len(got) - st["dropped"], 0.2)
        st = serial_status(d, "m0")
    assert len(got) + st["dropped"] == len(sent), (len(got), st)
    assert 0.4 * len(sent) < st["dropped"] < 0.6 * len(sent), st
    assert is_subsequence(got, sent), "kept bytes are not the output in order"
    port.expect_nothing_pending()


def test_serial_dropped_bytes_still_take_their_wire_time(start_module):
    """At 9600 baud (960 bytes/s) 480 dropped bytes take 0.5 s to leave."""
    d, port = start_module("tencent", name="m0", baud=9600)
    ctl_ok(d, "serial", "m0", "drop", "1000000")
    word, text = big_urc(480)
    t0 = time.monotonic()
    ctl_ok(d, "urc", "m0", word)
    wait_serial(d, "m0", "dropped", len(text))
    assert time.monotonic() - t0 >= 0.45
    ctl_ok(d, "serial", "m0", "clear")
    port.expect_nothing_pending()
    port.cmd("AT")
    port.expect(AT_REPLY)


# ---------------------------------------------------------------- unplug / plug


def test_serial_unplug_hangs_up_the_open_port_and_removes_the_link(start_module):
    d, port = start_module("tencent", name="m0")
    link, old_pts = d.link("m0"), os.readlink(d.link("m0"))
    port.cmd("ATE0")
    port.expect("ATE0\r\n\r\nOK\r\n")
    ctl_ok(d, "serial", "m0", "unplug")
    assert hung_up(port.fileno())
    assert not os.path.lexists(link)
    assert not os.path.exists(old_pts)
    st = serial_status(d, "m0")
    assert st["plugged"] is False
    with d.ctl() as c:
        assert c.request("status", "m0")["result"]["serial_open"] is False
    # what the module writes while unplugged is lost
    ctl_ok(d, "urc", "m0", "+LOST\\r\\n")
    wait_serial(d, "m0", "lost_unplugged", 7)
    ctl_ok(d, "serial", "m0", "plug")
    assert os.path.islink(link)
    new_pts = os.readlink(link)
    assert new_pts != old_pts and os.path.exists(new_pts)
    again = d.port("m0", wait_ready=False)
    again.cmd("AT")
    again.expect(b"\r\nOK\r\n")  # no banner, ATE0 kept: power stayed on, RAM state kept
    again.expect_nothing_pending()
    assert serial_status(d, "m0")["plugged"] is True
    assert serial_events(d, "m0") == ["unplugged", "plugged"]


def test_serial_unplug_then_plug_without_a_client_powers_on_at_the_first_open(make_daemon,
                                                                              tmp_path):
    d = make_daemon([module_config(tmp_path, "m0")])
    # the control socket is made after the symlinks (main.c): make_daemon does not wait for it
    wait_for(d.ctl_path.exists, 5, "the control socket")
    ctl_ok(d, "serial", "m0", "unplug")
    assert not os.path.lexists(d.link("m0"))
    ctl_ok(d, "serial", "m0", "plug")
    port = d.port("m0")  # the banner: power is applied at the first open, as before
    port.cmd("AT")
    port.expect(AT_REPLY)


def test_serial_tcp_endpoint_unplug_drops_the_client_and_refuses_then_plug_accepts(make_daemon,
                                                                                   tmp_path):
    d = make_daemon([module_config(tmp_path, "m0", tcp_listen="127.0.0.1:0")])
    tcp = d.tcp("m0")
    tcp.wait_ready()
    tcp.cmd("AT")
    tcp.expect(AT_REPLY)
    ctl_ok(d, "serial", "m0", "unplug")
    assert tcp.read_to_eof() == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", d.tcp_port("m0")), timeout=2).close()
    assert not os.path.lexists(d.link("m0"))
    ctl_ok(d, "serial", "m0", "plug")
    again = TcpPort("127.0.0.1", d.tcp_port("m0"), name="tcp[m0] again")
    d.ports.append(again)
    again.cmd("AT")
    again.expect(AT_REPLY)
    assert os.path.islink(d.link("m0"))


def test_serial_survives_unplug_plug_cycles_and_daemon_stop_while_unplugged(make_daemon,
                                                                            tmp_path):
    d = make_daemon([module_config(tmp_path, "m0", tcp_listen="127.0.0.1:0")])
    port = d.port("m0")
    for _ in range(3):
        ctl_ok(d, "serial", "m0", "unplug")
        assert hung_up(port.fileno())
        ctl_ok(d, "serial", "m0", "plug")
        port = d.port("m0", wait_ready=False)
        port.cmd("AT")
        port.expect(AT_REPLY)
    ctl_ok(d, "serial", "m0", "unplug")
    d.stop()  # exits 0 with no symlink left


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("words,error", [
    ([], "serial: missing action (drop PPM|corrupt PPM|clear|unplug|plug)"),
    (["shake"], 'serial: unknown action "shake" (drop PPM|corrupt PPM|clear|unplug|plug)'),
    (["drop"], "serial drop: PPM must be 0..1000000"),
    (["drop", "1000001"], "serial drop: PPM must be 0..1000000"),
    (["drop", "-1"], "serial drop: PPM must be 0..1000000"),
    (["drop", "5%"], "serial drop: PPM must be 0..1000000"),
    (["corrupt", ""], "serial corrupt: PPM must be 0..1000000"),
    (["corrupt", "1", "2"], "serial corrupt: PPM must be 0..1000000"),
    (["clear", "all"], "serial clear: takes no argument"),
    (["unplug", "now"], "serial unplug: takes no argument"),
    (["plug"], "serial plug: the port is not unplugged"),
])
def test_serial_bad_words_are_refused_and_disturb_nothing(start_module, words, error):
    d, port = start_module("tencent", name="m0")
    assert ctl_error(d, "serial", "m0", *words) == error
    assert serial_status(d, "m0") == {"drop_ppm": 0, "corrupt_ppm": 0, "dropped": 0,
                                      "corrupted": 0, "lost_unplugged": 0, "plugged": True}
    port.cmd("AT")
    port.expect(AT_REPLY)
    assert serial_events(d, "m0") == []


def test_serial_unplug_twice_is_refused(start_module):
    d, port = start_module("tencent", name="m0")
    ctl_ok(d, "serial", "m0", "unplug")
    assert ctl_error(d, "serial", "m0", "unplug") == "serial unplug: the port is already unplugged"
    assert serial_events(d, "m0") == ["unplugged"]


def test_serial_bad_rate_in_scheduled_faults_is_a_config_error(run_vmoduled, tmp_path):
    cfg = {"state_dir": str(tmp_path / "state"),
           "modules": [module_config(tmp_path, "m0",
                                     faults=[{"at_ms": 0, "do": "serial corrupt 2000000"}])]}
    path = tmp_path / "bad.json"
    import json
    path.write_text(json.dumps(cfg))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode != 0
    assert "serial corrupt: PPM must be 0..1000000" in cp.stderr, cp.stderr


def test_serial_scheduled_drop_fires_at_power_on(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, "m0",
                                   faults=[{"at_ms": 0, "do": "serial drop 1000000"}])])
    port = d.port("m0", wait_ready=False)
    wait_serial(d, "m0", "dropped", len(b"\r\nready\r\n"))
    port.expect_nothing_pending()


def test_serial_through_vmodulectl(start_module):
    import ctl
    d, port = start_module("tencent", name="m0")
    r = ctl.vmodulectl(d.ctl_path, "serial", "m0", "drop", "2000000")
    assert (r.returncode, r.stdout, r.stderr) == (
        1, b"", b"vmodulectl: serial drop: PPM must be 0..1000000\n")
    r = ctl.vmodulectl(d.ctl_path, "serial", "m0", "unplug")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")
    assert hung_up(port.fileno())
    r = ctl.vmodulectl(d.ctl_path, "status", "m0")
    assert r.returncode == 0
    assert "\nserial.plugged: false\n" in r.stdout.decode(), r.stdout
