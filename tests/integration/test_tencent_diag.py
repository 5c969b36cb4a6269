"""test_tencent_diag.py - the tencent dialect's diagnostic commands
(tencent-at.md §3.14): AT+TCLOG, the SDK log level kept in RAM and guarded by
the firmware's password, and AT+NTP, the module clock that SNTP sets (the
host's time once Wi-Fi is up; seconds since boot before, as on an ESP8266).
The firmware waits for SNTP in one-second polls, nine at most; the command is
pending meanwhile."""

import time

import pytest

from conftest import module_config

WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "join_ms": 0}
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
BUSY = b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"


@pytest.fixture
def start(make_daemon, tmp_path):
    def start(joined=True):
        wifi = dict(WIFI, auto_join="lab") if joined else WIFI
        m = module_config(tmp_path, "tc0", "tencent", echo=False, tencent={"wifi": wifi})
        port = make_daemon([m]).port()
        if joined:
            port.expect(JOINED)
        return port
    return start


def query(port, line, reply):
    port.cmd(line)
    port.expect(reply + b"\r\nOK\r\n")


def clock(port):
    """AT+NTP? -> the seconds it prints."""
    port.cmd("AT+NTP?")
    m = port.expect_regex(rb"Current system time: (\d+)\r\n\r\nOK\r\n", b"\r\nOK\r\n")
    return int(m.group(1))


def test_tclog_level_needs_the_password(start):
    port = start()
    query(port, "AT+TCLOG=?", b"+TCLOG: <log_level>\r\n")
    query(port, "AT+TCLOG?", b"+TCLOG: 1\r\n")  # ERROR after boot
    port.cmd("AT+TCLOG=86013388,4")
    port.expect(b"\r\nOK\r\n")
    query(port, "AT+TCLOG?", b"+TCLOG: 4\r\n")
    port.cmd("AT+TCLOG=86013388,0")
    port.expect(b"\r\nOK\r\n")
    query(port, "AT+TCLOG?", b"+TCLOG: 0\r\n")
    port.cmd("AT+TCLOG=12345,3")  # a wrong password forces ERROR, and says OK
    port.expect(b"\r\nOK\r\n")
    query(port, "AT+TCLOG?", b"+TCLOG: 1\r\n")


def test_tclog_bad_input(start):
    port = start()
    port.cmd("AT+TCLOG=86013388,5")
    port.expect(b"+CME ERROR:204\r\n")
    port.cmd("AT+TCLOG=3")  # what the AT SDK sends: one parameter is an ERROR here
    port.expect(b"ERR CODE:0x01060201\r\n\r\nERROR\r\n")
    port.cmd('AT+TCLOG="86013388",1')
    port.expect(b"ERR CODE:0x01050000\r\n\r\nERROR\r\n")
    port.cmd("AT+TCLOG=86013388,1,2")
    port.expect(b"ERR CODE:0x01060203\r\n\r\nERROR\r\n")
    query(port, "AT+TCLOG?", b"+TCLOG: 1\r\n")


def test_tclog_level_is_lost_at_reset(start):
    port = start()
    port.cmd("AT+TCLOG=86013388,3")
    port.expect(b"\r\nOK\r\n")
    port.cmd("AT+RST")
    port.expect(b"\r\nOK\r\n")
    port.wait_ready()
    port.expect(JOINED)
    query(port, "AT+TCLOG?", b"+TCLOG: 1\r\n")


def test_ntp_sets_the_clock_from_the_host(start):
    port = start()
    up = clock(port)
    assert 0 <= up < 60  # seconds since boot: the clock is not set yet
    t0 = time.monotonic()
    port.cmd("AT+NTP")
    port.cmd("AT")  # the first poll is one second away
    port.expect(BUSY)
    got = int(port.expect_regex(rb"\+NTP:(\d+)\r\n", b"\r\n", timeout=5).group(1))
    assert 0.9 <= time.monotonic() - t0 < 3
    assert abs(got - time.time()) <= 2
    port.expect_silence(0.2)  # no OK after the exec form
    now = clock(port)
    assert abs(now - time.time()) <= 2


def test_ntp_set_form_prints_ok_first(start):
    port = start()
    port.cmd('AT+NTP="CST-8","time1.cloud.tencent.com"')
    port.expect(b"OK\r\n")
    got = int(port.expect_regex(rb"\+NTP:(\d+)\r\n", b"\r\n", timeout=5).group(1))
    assert abs(got - time.time()) <= 2
    port.cmd('AT+NTP="CST-8"')
    port.expect(b"+CME ERROR:204\r\n")
    port.cmd("AT+NTP=8,1")
    port.expect(b"+CME ERROR:204\r\n")


def test_ntp_without_wifi_gives_up_after_nine_polls(start):
    port = start(joined=False)
    t0 = time.monotonic()
    port.cmd("AT+NTP")
    got = int(port.expect_regex(rb"\+NTP:(\d+)\r\n", b"\r\n", timeout=15).group(1))
    waited = time.monotonic() - t0
    assert 8.5 <= waited < 12
    assert got < 60  # still seconds since boot
    up = clock(port)
    assert got <= up < 60
