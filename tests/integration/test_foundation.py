"""test_foundation.py - the foundation contract of vmoduled, byte for byte.

Covers the CLI and config validation, the serial line of the ESP-AT family
(tencent, w800): echo, framing, line limit, the four command forms, error
replies, reboot, GMR, the simulated Wi-Fi station, persistence across
restarts, SNTP, the TCP serial endpoint, several modules in one process,
pacing and TX overflow accounting, and secrets in traces and logs.

Tests run with baud 0 and boot_ms 50 (conftest.module_config) unless they
test pacing or boot timing.
"""

import calendar
import json
import signal
import os
import re
import socket
import stat
import time

import pytest

from conftest import READY, TcpPort, escape, module_config, wait_for

OK = b"\r\nOK\r\n"
W800_ERROR = b"\r\nERROR\r\n"
TENCENT_BUSY = b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
W800_BUSY = b"\r\nbusy p...\r\n"
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
DISCONNECTED = b"WIFI DISCONNECT\r\n"
NO_AP = b"No AP\r\n"

ERR_NO_AT = 0x01030000
ERR_TOO_LONG = 0x01040000
ERR_PARA_TYPE = 0x01050000
ERR_PARA_INVALID = 0x01070000
ERR_PARA_PARSE = 0x01080000
ERR_UNKNOWN = 0x01090000
ERR_JOIN = 0x010A0000
ERR_FORM = 0x010C0000

GMR = {
    "tencent": (b"AT version:2.0.0.0(88c2cde - Jul  9 2019 11:03:33)\r\n"
                b"SDK version:AT_ESP8266_v1.1.0_20190812_RC-25-g836292b-dirty\r\n"
                b"compile time:Jun 17 2020 16:25:24\r\n"
                b"Bin version:1.0.0(ESP8266_QCLOUD)\r\n"),
    "w800": (b"AT version:2.4.0.0(w800sim - W800 - Nov 21 2026 00:00:00)\r\n"
             b"SDK version:wm_iot_sdk v2.2.1\r\n"
             b"compile time(w800sim):Nov 21 2026 00:00:00\r\n"
             b"Bin version:2.4.0(W800)\r\n"),
}

SECRET = "secret123"
LAB_AP = {"ssid": "lab", "password": SECRET}
CWJAP_LAB = b'+CWJAP:"lab","18:31:bf:4b:2c:01",6,-45,0,1,3,0,1\r\n'
CIPSTA_LAB = (b'+CIPSTA:ip:"192.168.1.100"\r\n+CIPSTA:gateway:"192.168.1.1"\r\n'
              b'+CIPSTA:netmask:"255.255.255.0"\r\n')
CIPSTA_NONE = (b'+CIPSTA:ip:"0.0.0.0"\r\n+CIPSTA:gateway:"0.0.0.0"\r\n'
               b'+CIPSTA:netmask:"0.0.0.0"\r\n')
JOIN_LAB = 'AT+CWJAP="lab","%s"' % SECRET

DIALECTS = ["tencent", "w800"]


def err(dialect, code):
    """The dialect's error reply for an ESP-AT error code."""
    if dialect == "tencent":
        return b"ERR CODE:0x%08x\r\n\r\nERROR\r\n" % code
    return W800_ERROR


def busy(dialect):
    return TENCENT_BUSY if dialect == "tencent" else W800_BUSY


def wifi(dialect, join_ms=100, aps=(LAB_AP,), **extra):
    """Module overrides giving the dialect a Wi-Fi environment."""
    w = {"access_points": [dict(ap) for ap in aps], "join_ms": join_ms}
    w.update(extra)
    return {dialect: {"wifi": w}}


def xchg(port, line, reply, echo=True, timeout=5.0):
    """Sends line + CR LF; expects its echo (if on) followed by reply."""
    data = line.encode("latin-1") + b"\r\n"
    port.send(data)
    port.expect((data if echo else b"") + reply, timeout)


def echo_off(port):
    xchg(port, "ATE0", OK)


def join_lab(port, echo=True):
    xchg(port, JOIN_LAB, JOINED + OK, echo=echo)


# ------------------------------------------------------------------ echo


@pytest.mark.parametrize("dialect", DIALECTS)
def test_echo_is_on_at_power_on(start_module, dialect):
    _, port = start_module(dialect)
    xchg(port, "AT", OK)
    port.expect_nothing_pending()


def test_echo_writes_each_byte_as_it_is_received(start_module):
    _, port = start_module()
    port.send(b"AT+GM")
    port.expect(b"AT+GM")  # before the line is complete
    port.send(b"R\r\n")
    port.expect(b"R\r\n" + GMR["tencent"] + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_ate0_is_echoed_then_echo_is_off_until_ate1(start_module, dialect):
    _, port = start_module(dialect)
    xchg(port, "ATE0", OK)            # ATE0 itself is still echoed
    xchg(port, "AT", OK, echo=False)
    xchg(port, "ATE1", OK, echo=False)  # echo still off while ATE1 arrives
    xchg(port, "AT", OK)


def test_echo_false_in_config_starts_without_echo(start_module):
    _, port = start_module(echo=False)
    xchg(port, "AT", OK, echo=False)
    xchg(port, "ATE1", OK, echo=False)
    xchg(port, "AT", OK)


# ------------------------------------------------------------- the four forms


def test_four_forms_tencent(start_module):
    _, port = start_module(echo=False)
    # test form not registered
    xchg(port, "AT+CWMODE=?", err("tencent", ERR_FORM), echo=False)
    xchg(port, "AT+CIPSTA=?", err("tencent", ERR_FORM), echo=False)
    # execute form not registered
    xchg(port, "AT+CWMODE", err("tencent", ERR_FORM), echo=False)
    # query
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK, echo=False)
    # set, with and without the optional second parameter
    xchg(port, "AT+CWMODE=2", OK, echo=False)
    xchg(port, "AT+CWMODE?", b"+CWMODE:2\r\n" + OK, echo=False)
    xchg(port, "AT+CWMODE=3,0", OK, echo=False)
    xchg(port, "AT+CWMODE?", b"+CWMODE:3\r\n" + OK, echo=False)
    xchg(port, "AT+CWMODE=0", OK, echo=False)
    xchg(port, "AT+CWMODE?", b"+CWMODE:0\r\n" + OK, echo=False)
    # execute (not connected: no URC follows)
    xchg(port, "AT+CWQAP", OK, echo=False)
    port.expect_nothing_pending()


def test_four_forms_w800(start_module):
    _, port = start_module("w800")
    xchg(port, "AT+CWMODE=?", W800_ERROR)
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)
    xchg(port, "AT+CWMODE=3", OK)
    xchg(port, "AT+CWMODE?", b"+CWMODE:3\r\n" + OK)
    xchg(port, "AT+CWQAP", OK)


@pytest.mark.parametrize("value", ["4", "9", "0,2"])
def test_cwmode_out_of_range_is_an_invalid_parameter(start_module, value):
    _, port = start_module(echo=False)
    xchg(port, "AT+CWMODE=" + value, err("tencent", ERR_PARA_INVALID), echo=False)
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK, echo=False)


@pytest.mark.parametrize("line,code", [
    ('AT+CWMODE="1"', ERR_PARA_TYPE),        # a string where a number belongs
    ("AT+CWMODE=1x", ERR_PARA_TYPE),
    ("AT+CWJAP=lab,x", ERR_PARA_TYPE),        # strings must be quoted
    ('AT+CWJAP="lab', ERR_PARA_PARSE),        # unterminated string
])
def test_malformed_parameters(start_module, line, code):
    _, port = start_module(echo=False, **wifi("tencent"))
    xchg(port, line, err("tencent", code), echo=False)
    xchg(port, "AT+CWJAP?", NO_AP + OK, echo=False)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_unknown_command(start_module, dialect):
    _, port = start_module(dialect)
    xchg(port, "AT+FOO", err(dialect, ERR_UNKNOWN))
    xchg(port, "AT+FOO=1,\"x\"", err(dialect, ERR_UNKNOWN))
    xchg(port, "AT", OK)


@pytest.mark.parametrize("line", ["at", "At+GMR", "HELLO"])
def test_line_not_starting_with_upper_case_at(start_module, line):
    _, port = start_module(echo=False)
    xchg(port, line, err("tencent", ERR_NO_AT), echo=False)
    xchg(port, "AT", OK, echo=False)


# ---------------------------------------------------------- framing, limits


def test_line_of_256_bytes_is_executed_257_is_too_long(start_module):
    _, port = start_module(echo=False)
    line256 = "AT+" + "X" * 251            # + CR LF = 256 bytes: executed (unknown)
    line257 = "AT+" + "X" * 252            # + CR LF = 257 bytes: too long
    assert len(line256) + 2 == 256 and len(line257) + 2 == 257
    xchg(port, line256, err("tencent", ERR_UNKNOWN), echo=False)
    xchg(port, line257, err("tencent", ERR_TOO_LONG), echo=False)
    xchg(port, "AT", OK, echo=False)


def test_overlong_line_is_never_executed_errors_once_next_line_ok(start_module):
    _, port = start_module(echo=False)
    # a valid command made too long: must not run (CWMODE stays 1)
    xchg(port, "AT+CWMODE=2" + "0" * 600, err("tencent", ERR_TOO_LONG), echo=False)
    # exactly one error reply: the next line's reply follows immediately
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK, echo=False)
    port.expect_nothing_pending()


def test_overlong_line_is_still_echoed_byte_for_byte(start_module):
    _, port = start_module()
    line = "AT+" + "Y" * 1000
    xchg(port, line, err("tencent", ERR_TOO_LONG))
    xchg(port, "AT", OK)


def test_overlong_line_w800(start_module):
    _, port = start_module("w800", echo=False)
    xchg(port, "AT+" + "Z" * 400, W800_ERROR, echo=False)
    xchg(port, "AT", OK, echo=False)


# The esp-at core's framing (esp-at-core.md "Line framing"): only CR LF ends a
# line. Each send() here is one read on the daemon's side: a test waits for
# the reply before it sends again.

FORCE_RESTART = b"\r\nWill force to restart!!!\r\n"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_lone_cr_waits_for_its_lf(start_module, dialect):
    _, port = start_module(dialect)
    port.send(b"AT\r")
    port.expect(b"AT\r")               # echoed, no reply yet
    port.send(b"\n")
    port.expect(b"\n" + OK)
    port.expect_nothing_pending()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_lone_cr_or_lf_after_the_name_is_an_unknown_command(start_module, dialect):
    _, port = start_module(dialect, echo=False)
    port.send(b"AT\rAT\r\n")
    port.expect(err(dialect, ERR_UNKNOWN))
    port.send(b"AT\n")
    port.send(b"\r\n")                 # no reply in between: the LF stayed in the line
    port.expect(err(dialect, ERR_UNKNOWN))
    port.send(b"AT+CWMODE\n?\r\n")
    port.expect(err(dialect, ERR_UNKNOWN))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_bare_crlf_is_an_error_and_a_leftover_lf_spoils_the_next_line(start_module, dialect):
    _, port = start_module(dialect, echo=False)
    port.send(b"\r\n")
    port.expect(err(dialect, ERR_NO_AT))
    port.send(b"\n")
    port.send(b"AT\r\n")
    port.expect(err(dialect, ERR_NO_AT))
    port.send(b"\r\n\r\nAT\r\n")       # after an error the rest of the read is the next line
    port.expect(err(dialect, ERR_NO_AT) * 2 + OK)
    port.expect_nothing_pending()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rest_of_a_read_after_an_accepted_command_gets_busy_once(start_module, dialect):
    _, port = start_module(dialect, echo=False)
    port.send(b"AT\r\nAT+CWMODE=2\r\nAT+CWMODE=3\r\n")
    port.expect(OK + busy(dialect))
    port.expect_nothing_pending()
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK, echo=False)  # neither ran
    port.send(b"AT+FOO\r\nAT+CWMODE?\r\n")
    port.expect(err(dialect, ERR_UNKNOWN) + b"+CWMODE:1\r\n" + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rest_of_a_read_after_an_accepted_command_is_echoed(start_module, dialect):
    _, port = start_module(dialect)
    port.send(b"AT\r\nAT+GMR\r\nAT")
    port.expect(b"AT\r\n" + OK + b"AT+GMR\r\nAT" + busy(dialect))
    port.send(b"\r\n")                 # the discarded "AT" is not continued
    port.expect(b"\r\n" + err(dialect, ERR_NO_AT))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_at_rst_in_the_rest_of_a_read_forces_a_restart(start_module, dialect):
    _, port = start_module(dialect, echo=False)
    port.send(b"AT\r\nAT+RST\r\n")
    port.expect(OK + FORCE_RESTART + READY)
    xchg(port, "AT", OK, echo=False)   # echo back to its configured state


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_read_while_busy_gets_busy_and_is_dropped(start_module, dialect):
    _, port = start_module(dialect, echo=False, **wifi(dialect, join_ms=1500))
    port.cmd(JOIN_LAB)
    port.send(b"AT+CWMODE=2")          # no CR LF: busy all the same
    port.expect(busy(dialect))
    port.send(b"\r\nAT\r\n")
    port.expect(busy(dialect))
    port.expect(JOINED + OK, timeout=10)
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK, echo=False)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_at_rst_in_a_busy_read_forces_a_restart(start_module, dialect):
    _, port = start_module(dialect, echo=False, **wifi(dialect, join_ms=3000))
    port.cmd(JOIN_LAB)
    port.send(b"AT\r\nAT+RST\r\n")
    port.expect(FORCE_RESTART + READY)
    port.expect_silence(0.2)           # the join died with the reboot
    xchg(port, "AT+CWJAP?", NO_AP + OK, echo=False)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_nul_drops_what_came_before_it(start_module, dialect):
    _, port = start_module(dialect, echo=False)
    port.send(b"AT+CWMODE=2\x00AT+CWMODE?\r\n")
    port.expect(b"+CWMODE:1\r\n" + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_lone_cr_and_lf_count_towards_the_limit(start_module, dialect):
    _, port = start_module(dialect, echo=False)
    port.send(b"AT+" + b"X" * 250 + b"\r\r\n")  # 256 bytes with its CR LF
    port.expect(err(dialect, ERR_UNKNOWN))
    port.send(b"AT+" + b"X" * 251 + b"\n\r\n")  # 257
    port.expect(err(dialect, ERR_TOO_LONG))
    xchg(port, "AT", OK, echo=False)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_256_bytes_without_crlf_are_dropped_silently(start_module, dialect):
    _, port = start_module(dialect)
    chunk = b"AT+CWMODE=2" + b"0" * 245
    assert len(chunk) == 256
    port.send(chunk)
    port.expect(chunk)                 # echoed only
    port.send(b"AT\r\n")               # the tail of the over-long line
    port.expect(b"AT\r\n" + err(dialect, ERR_TOO_LONG))
    port.send(b"AT+" + b"X" * 252 + b"\r")  # 256 bytes ending in CR: the CR is kept
    port.expect(b"AT+" + b"X" * 252 + b"\r")
    port.send(b"\n")
    port.expect(b"\n" + err(dialect, ERR_TOO_LONG))
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)


# ------------------------------------------------------------ boot and reset


def test_power_on_banner_comes_after_boot_ms(make_daemon, tmp_path):
    t0 = time.monotonic()
    d = make_daemon([module_config(tmp_path, boot_ms=600)])
    port = d.port(wait_ready=False)
    port.expect(READY, timeout=10)
    assert time.monotonic() - t0 >= 0.55, "banner before boot_ms elapsed"
    xchg(port, "AT", OK)


def test_input_during_power_on_boot_is_discarded(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, boot_ms=800)])
    port = d.port(wait_ready=False)
    port.send(b"AT+CWMODE=2\r\n")
    port.expect(READY, timeout=10)      # no echo, no reply before or after the banner
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_rst_replies_ok_then_banner_after_boot_and_resets_echo(start_module, dialect):
    _, port = start_module(dialect, boot_ms=400)
    echo_off(port)
    port.cmd("AT+RST")
    port.expect(OK)
    t_ok = time.monotonic()
    port.send(b"AT\r\n")               # during the reboot: discarded
    port.expect(READY)
    assert time.monotonic() - t_ok >= 0.3, "banner came before boot_ms"
    xchg(port, "AT", OK)               # echo is back on (configured default)


def test_rst_restores_configured_echo_off(start_module):
    _, port = start_module(echo=False)
    xchg(port, "ATE1", OK, echo=False)
    xchg(port, "AT+RST", OK)
    port.expect(READY)
    xchg(port, "AT", OK, echo=False)


# ------------------------------------------------------------------- GMR


@pytest.mark.parametrize("dialect", DIALECTS)
def test_gmr(start_module, dialect):
    _, port = start_module(dialect)
    xchg(port, "AT+GMR", GMR[dialect] + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_gmr_lines_from_config(start_module, dialect):
    lines = ["AT version:9.9.9", "custom build"]
    _, port = start_module(dialect, **{dialect: {"gmr": lines}})
    xchg(port, "AT+GMR", b"AT version:9.9.9\r\ncustom build\r\n" + OK)


# ------------------------------------------------------------------- Wi-Fi


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cwjap_success_query_and_cipsta(start_module, dialect):
    _, port = start_module(dialect, **wifi(dialect))
    xchg(port, "AT+CWJAP?", NO_AP + OK)
    xchg(port, "AT+CIPSTA?", CIPSTA_NONE + OK)
    join_lab(port)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK)
    xchg(port, "AT+CIPSTA?", CIPSTA_LAB + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cwjap_wrong_password(start_module, dialect):
    _, port = start_module(dialect, **wifi(dialect))
    xchg(port, 'AT+CWJAP="lab","wrong"', b"+CWJAP:2\r\n" + err(dialect, ERR_JOIN))
    xchg(port, "AT+CWJAP?", NO_AP + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cwjap_unknown_ssid(start_module, dialect):
    _, port = start_module(dialect, **wifi(dialect))
    xchg(port, 'AT+CWJAP="nowhere","x"', b"+CWJAP:3\r\n" + err(dialect, ERR_JOIN))
    xchg(port, "AT+CWJAP?", NO_AP + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cwjap_busy_reply_while_joining(start_module, dialect):
    _, port = start_module(dialect, **wifi(dialect, join_ms=1500))
    t0 = time.monotonic()
    port.cmd(JOIN_LAB)
    port.expect(JOIN_LAB.encode() + b"\r\n")
    # the join is pending: every line gets the busy reply and is dropped
    xchg(port, "AT", busy(dialect))
    xchg(port, "AT+CWMODE=2", busy(dialect))
    port.expect(JOINED + OK, timeout=10)
    assert time.monotonic() - t0 >= 1.3, "join completed before join_ms"
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)  # the busy CWMODE=2 was dropped


def test_cwjap_when_connected_disconnects_first(start_module):
    _, port = start_module(**wifi("tencent"))
    join_lab(port)
    xchg(port, JOIN_LAB, DISCONNECTED + JOINED + OK)


def test_cwjap_needs_station_mode(start_module):
    _, port = start_module(echo=False, **wifi("tencent"))
    xchg(port, "AT+CWMODE=2", OK, echo=False)
    port.cmd(JOIN_LAB)
    port.expect_regex(rb"ERR CODE:0x01[0-9a-f]{6}\r\n\r\nERROR\r\n", b"ERROR\r\n")
    xchg(port, "AT+CWJAP?", NO_AP + OK, echo=False)
    xchg(port, "AT+CWMODE=3", OK, echo=False)
    join_lab(port, echo=False)


def test_cwjap_exec_rejoins_the_stored_ap_or_errors_without_one(start_module):
    _, port = start_module(echo=False, **wifi("tencent"))
    port.cmd("AT+CWJAP")
    port.expect_regex(rb"ERR CODE:0x01[0-9a-f]{6}\r\n\r\nERROR\r\n", b"ERROR\r\n")
    join_lab(port, echo=False)
    xchg(port, "AT+CWQAP", OK + DISCONNECTED, echo=False)
    xchg(port, "AT+CWJAP", JOINED + OK, echo=False)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK, echo=False)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_cwqap_disconnects(start_module, dialect):
    _, port = start_module(dialect, **wifi(dialect))
    join_lab(port)
    xchg(port, "AT+CWQAP", OK + DISCONNECTED)
    xchg(port, "AT+CWJAP?", NO_AP + OK)
    xchg(port, "AT+CIPSTA?", CIPSTA_NONE + OK)
    xchg(port, "AT+CWQAP", OK)  # not connected: no URC
    port.expect_nothing_pending()


def test_access_point_defaults_by_index_and_explicit_keys(start_module):
    aps = [LAB_AP, {"ssid": "lab2", "password": "pw2"},
           {"ssid": "office", "password": "pw3", "bssid": "aa:bb:cc:dd:ee:0f", "channel": 11,
            "rssi": -70, "ip": "10.1.2.3", "gateway": "10.1.2.254", "netmask": "255.255.0.0"}]
    _, port = start_module(echo=False, **wifi("tencent", aps=aps))
    xchg(port, 'AT+CWJAP="lab2","pw2"', JOINED + OK, echo=False)
    xchg(port, "AT+CWJAP?", b'+CWJAP:"lab2","18:31:bf:4b:2c:02",6,-45,0,1,3,0,1\r\n' + OK,
         echo=False)
    xchg(port, "AT+CIPSTA?", b'+CIPSTA:ip:"192.168.1.101"\r\n+CIPSTA:gateway:"192.168.1.1"\r\n'
         b'+CIPSTA:netmask:"255.255.255.0"\r\n' + OK, echo=False)
    xchg(port, 'AT+CWJAP="office","pw3"', DISCONNECTED + JOINED + OK, echo=False)
    xchg(port, "AT+CWJAP?", b'+CWJAP:"office","aa:bb:cc:dd:ee:0f",11,-70,0,1,3,0,1\r\n' + OK,
         echo=False)
    xchg(port, "AT+CIPSTA?", b'+CIPSTA:ip:"10.1.2.3"\r\n+CIPSTA:gateway:"10.1.2.254"\r\n'
         b'+CIPSTA:netmask:"255.255.0.0"\r\n' + OK, echo=False)


# -------------------------------------------------------- restore, persistence


@pytest.mark.parametrize("dialect", DIALECTS)
def test_restore_clears_wifi_and_cwmode(start_module, dialect):
    d, port = start_module(dialect, **wifi(dialect))
    xchg(port, "AT+CWMODE=3", OK)
    join_lab(port)
    xchg(port, "AT+RESTORE", OK)
    port.expect(READY)
    xchg(port, "AT+CWJAP?", NO_AP + OK)
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)
    # and it stays cleared across a daemon restart (no re-join after the banner)
    d.restart()
    port = d.port()
    xchg(port, "AT+CWJAP?", NO_AP + OK)
    xchg(port, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_wifi_and_cwmode_persist_across_daemon_restart(start_module, dialect):
    d, port = start_module(dialect, **wifi(dialect))
    xchg(port, "AT+CWMODE=3", OK)
    join_lab(port)
    d.restart()
    port = d.port(wait_ready=False)
    port.expect(READY + JOINED)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK)
    xchg(port, "AT+CWMODE?", b"+CWMODE:3\r\n" + OK)


def test_rst_rejoins_the_stored_ap(start_module):
    _, port = start_module(**wifi("tencent"))
    join_lab(port)
    xchg(port, "AT+RST", OK)
    port.expect(READY + JOINED)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK)


def test_sigterm_finishes_the_pending_store_write(start_module):
    d, port = start_module(echo=False)
    xchg(port, "AT+CWMODE=2", OK, echo=False)
    d.stop()                          # right after the OK: the write may be in flight
    d.start()
    port = d.port()
    xchg(port, "AT+CWMODE?", b"+CWMODE:2\r\n" + OK, echo=False)


def test_auto_join_at_power_on(start_module):
    d, port = start_module(wait_ready=False, **wifi("tencent", auto_join="lab"))
    port.expect(READY + JOINED)
    xchg(port, "AT+CWJAP?", CWJAP_LAB + OK)


def test_stored_ap_wins_over_auto_join(start_module):
    aps = [LAB_AP, {"ssid": "lab2", "password": "pw2"}]
    d, port = start_module(wait_ready=False, **wifi("tencent", aps=aps, auto_join="lab"))
    port.expect(READY + JOINED)
    xchg(port, 'AT+CWJAP="lab2","pw2"', DISCONNECTED + JOINED + OK)
    d.restart()
    port = d.port(wait_ready=False)
    port.expect(READY + JOINED)
    xchg(port, "AT+CWJAP?", b'+CWJAP:"lab2","18:31:bf:4b:2c:02",6,-45,0,1,3,0,1\r\n' + OK)


def test_state_file_is_a_private_json_object(start_module):
    d, port = start_module(echo=False, **wifi("tencent"))
    join_lab(port, echo=False)
    path = d.state_path()
    wait_for(path.exists, 5, "state file %s" % path)
    d.stop()                          # all writes finished
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, "state file mode %o" % mode
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    leftovers = [p.name for p in path.parent.iterdir() if p.name != "state.json"]
    assert not leftovers, "temporary files left beside state.json: %s" % leftovers


# ------------------------------------------------------------------- SNTP


def test_sntp_time_is_1970_before_sync(start_module):
    _, port = start_module(echo=False)
    port.cmd("AT+CIPSNTPTIME?")
    port.expect_regex(rb"\+CIPSNTPTIME:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d "
                      rb"\d\d:\d\d:\d\d 1970\r\nOK\r\n", b"OK\r\n")


def test_sntp_config_time_updated_and_time(start_module):
    _, port = start_module(echo=False, **wifi("tencent"))
    join_lab(port, echo=False)
    xchg(port, 'AT+CIPSNTPCFG=1,8,"pool.ntp.org"', OK + b"+TIME_UPDATED\r\n", echo=False)
    xchg(port, "AT+CIPSNTPCFG?", b'+CIPSNTPCFG:1,8,"pool.ntp.org"\r\n' + OK, echo=False)
    port.cmd("AT+CIPSNTPTIME?")
    m = port.expect_regex(rb"\+CIPSNTPTIME:([A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3]\d "
                          rb"\d\d:\d\d:\d\d \d{4})\r\nOK\r\n", b"OK\r\n")
    shown = calendar.timegm(time.strptime(m.group(1).decode(), "%a %b %d %H:%M:%S %Y"))
    assert abs(shown - (time.time() + 8 * 3600)) < 5, "time %s is not UTC+8" % m.group(1)


# ------------------------------------------------------------- process life


def test_sigterm_removes_symlinks_and_exits_0(make_daemon, tmp_path):
    mods = [module_config(tmp_path, "a"), module_config(tmp_path, "b", "w800")]
    d = make_daemon(mods)
    for m in mods:
        assert os.path.islink(m["pty_link"])
        assert os.readlink(m["pty_link"]).startswith("/dev/pts/")
    d.port("a")
    d.stop()                       # asserts exit 0 and that both links are gone


def test_sigint_also_exits_0_and_removes_symlink(make_daemon, tmp_path):
    m = module_config(tmp_path)
    d = make_daemon([m])
    d.port()
    d.signal(signal.SIGINT)
    assert d.proc.wait(10) == 0
    assert not os.path.lexists(m["pty_link"])


def test_startup_log_lines(make_daemon, tmp_path):
    m = module_config(tmp_path, tcp_listen="127.0.0.1:0")
    d = make_daemon([m])
    log = d.log_text()
    pts = os.readlink(m["pty_link"])
    line_re = r"^\S+ INFO \[m0\] pty %s linked at %s$" % (re.escape(pts), re.escape(m["pty_link"]))
    assert re.search(line_re, log, re.M), "no line matching %s in log:\n%s" % (line_re, log)
    tcp_re = r"^\S+ INFO \[m0\] tcp serial endpoint on 127\.0\.0\.1:(\d+)$"
    match = re.search(tcp_re, log, re.M)
    assert match, "no line matching %s in log:\n%s" % (tcp_re, log)
    assert int(match.group(1)) > 0
    socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=2).close()


def test_log_level_option_filters_lines(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, boot_ms=300)], args=["--log-level", "error"])
    port = d.port(wait_ready=False)
    port.send(b"AT\r\n")                  # input during boot: a debug line at most
    port.expect(READY)
    xchg(port, "AT+FOO", err("tencent", ERR_UNKNOWN))
    d.stop()
    noisy = [l for l in d.log_text().splitlines() if re.match(r"\S+ (WARN|INFO|DEBUG) ", l)]
    assert not noisy, "lines below error with --log-level error: %s" % noisy


def test_log_level_debug_from_config(make_daemon, tmp_path):
    d = make_daemon([module_config(tmp_path, boot_ms=300)], log_level="debug")
    port = d.port(wait_ready=False)
    port.send(b"AT\r\n")                  # discarded during boot, logged at debug
    port.expect(READY)
    d.wait_log(re.compile(r"^\S+ DEBUG \[m0\] ", re.M))


def test_version(run_vmoduled):
    cp = run_vmoduled(["--version"])
    assert cp.returncode == 0
    assert re.fullmatch(r"vmoduled \d+\.\d+\.\d+\S*\n", cp.stdout), repr(cp.stdout)
    assert cp.stderr == ""


def test_help(run_vmoduled):
    cp = run_vmoduled(["--help"])
    assert cp.returncode == 0
    assert cp.stderr == ""
    assert "usage" in cp.stdout.lower()
    for opt in ["-c", "--dialect", "--link", "--state-dir", "--baud", "--tcp", "--log-level",
                "--version", "--help"]:
        assert opt in cp.stdout, "--help does not mention %s:\n%s" % (opt, cp.stdout)


def test_single_module_mode(make_daemon, tmp_path):
    link = str(tmp_path / "ttyCLI")
    state = tmp_path / "cli-state"
    argv = ["--dialect", "w800", "--link", link, "--state-dir", state, "--baud", "0",
            "--tcp", "127.0.0.1:0", "--log-level", "debug"]
    mod = {"name": "w800", "pty_link": link, "tcp_listen": "127.0.0.1:0"}
    d = make_daemon([mod], argv=argv)
    port = d.port()                       # default boot_ms applies
    xchg(port, "AT+GMR", GMR["w800"] + OK)
    xchg(port, "AT+CWMODE=2", OK)
    assert "[w800]" in d.log_text()
    assert d.tcp_port() > 0
    d.stop()
    assert (state / "w800" / "state.json").is_file()
    d.start()
    xchg(d.port(), "AT+CWMODE?", b"+CWMODE:2\r\n" + OK)


# ------------------------------------------------------- config and CLI errors


def _base_config(tmp_path):
    return {"state_dir": str(tmp_path / "state-new"),
            "modules": [module_config(tmp_path, "m0"), module_config(tmp_path, "m1", "w800")]}


def _set(path_keys, value):
    def edit(cfg):
        obj = cfg
        for k in path_keys[:-1]:
            obj = obj.setdefault(k, {}) if isinstance(k, str) else obj[k]
        obj[path_keys[-1]] = value
    return edit


def _delete(path_keys):
    def edit(cfg):
        obj = cfg
        for k in path_keys[:-1]:
            obj = obj[k]
        del obj[path_keys[-1]]
    return edit


def _tencent_wifi(cfg):
    cfg["modules"][0]["tencent"] = {"wifi": {"access_points": [dict(LAB_AP)]}}
    return cfg["modules"][0]["tencent"]["wifi"]


def _dup_name(cfg):
    cfg["modules"][1]["name"] = "m0"


CONFIG_ERRORS = [
    ("baud_negative", _set(["modules", 0, "baud"], -1), "modules[0].baud"),
    ("baud_string", _set(["modules", 0, "baud"], "fast"), "modules[0].baud"),
    ("baud_fraction", _set(["modules", 1, "baud"], 9600.5), "modules[1].baud"),
    ("bad_dialect", _set(["modules", 0, "dialect"], "esp32"), "modules[0].dialect"),
    ("missing_pty_link", _delete(["modules", 1, "pty_link"]), "modules[1].pty_link"),
    ("duplicate_name", _dup_name, "modules[1].name"),
    ("bad_name", _set(["modules", 0, "name"], "bad name!"), "modules[0].name"),
    ("long_name", _set(["modules", 0, "name"], "n" * 33), "modules[0].name"),
    ("unknown_module_key", _set(["modules", 0, "bogus"], 1), "modules[0].bogus"),
    ("unknown_top_key", _set(["bogus"], 1), "bogus"),
    ("echo_not_bool", _set(["modules", 0, "echo"], "yes"), "modules[0].echo"),
    ("boot_ms_negative", _set(["modules", 0, "boot_ms"], -5), "modules[0].boot_ms"),
    ("tcp_listen_bad", _set(["modules", 0, "tcp_listen"], "nohostport"), "modules[0].tcp_listen"),
    ("log_level_bad", _set(["log_level"], "loud"), "log_level"),
    ("modules_empty", _set(["modules"], []), "modules"),
    ("unknown_wifi_key", lambda c: _tencent_wifi(c).update(bogus=1),
     "modules[0].tencent.wifi.bogus"),
    ("unknown_ap_key", lambda c: _tencent_wifi(c)["access_points"][0].update(bogus=1),
     "modules[0].tencent.wifi.access_points[0].bogus"),
    ("join_ms_string", lambda c: _tencent_wifi(c).update(join_ms="1s"),
     "modules[0].tencent.wifi.join_ms"),
]


def _assert_config_error(cp, key, tmp_path, cfg):
    assert cp.returncode == 2, "exit status %s, stderr %r" % (cp.returncode, cp.stderr)
    lines = cp.stderr.splitlines()
    assert len(lines) == 1, "expected one stderr line, got %r" % cp.stderr
    assert lines[0].startswith("vmoduled: "), lines[0]
    if key:
        assert key in lines[0], "%r does not name %s" % (lines[0], key)
    assert cp.stdout == ""
    for m in cfg.get("modules", []):
        if isinstance(m, dict) and isinstance(m.get("pty_link"), str):
            assert not os.path.lexists(m["pty_link"]), "symlink %s was created" % m["pty_link"]
    assert not (tmp_path / "state-new").exists(), "state dir was created"


@pytest.mark.parametrize("case,edit,key", CONFIG_ERRORS, ids=[c[0] for c in CONFIG_ERRORS])
def test_config_error_exits_2_with_one_line_naming_the_key(run_vmoduled, tmp_path, case, edit,
                                                          key):
    cfg = _base_config(tmp_path)
    edit(cfg)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    cp = run_vmoduled(["-c", path])
    _assert_config_error(cp, key, tmp_path, cfg)
    if case == "unknown_module_key":
        assert cp.stderr == "vmoduled: config: modules[0].bogus: unknown key\n"


def test_config_not_json_exits_2(run_vmoduled, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"modules": [')
    cp = run_vmoduled(["-c", path])
    _assert_config_error(cp, None, tmp_path, {})


def test_config_file_missing_exits_2(run_vmoduled, tmp_path):
    cp = run_vmoduled(["-c", tmp_path / "absent.json"])
    _assert_config_error(cp, "absent.json", tmp_path, {})


@pytest.mark.parametrize("args,key", [
    (["--bogus"], "--bogus"),
    (["--dialect", "tencent"], "--link"),
    (["--dialect", "esp32", "--link", "L"], "esp32"),
    (["--dialect", "tencent", "--link", "L", "--baud", "-5"], "--baud"),
    (["--dialect", "tencent", "--link", "L", "--tcp", "nohostport"], "--tcp"),
    (["--dialect", "tencent", "--link", "L", "--log-level", "loud"], "--log-level"),
], ids=["unknown_option", "dialect_without_link", "bad_dialect", "bad_baud", "bad_tcp",
        "bad_log_level"])
def test_cli_error_exits_2_with_one_line(run_vmoduled, tmp_path, args, key):
    args = [str(tmp_path / "ttyX") if a == "L" else a for a in args]
    args += ["--state-dir", str(tmp_path / "state-new")] if "--link" in args else []
    cp = run_vmoduled(args)
    _assert_config_error(cp, key, tmp_path, {"modules": [{"pty_link": str(tmp_path / "ttyX")}]})


# ------------------------------------------------------------ TCP endpoint


def test_tcp_endpoint_carries_the_byte_stream(make_daemon, tmp_path):
    m = module_config(tmp_path, tcp_listen="127.0.0.1:0")
    d = make_daemon([m])
    pty = d.port()
    tcp = d.tcp()
    xchg(tcp, "AT", OK)                            # exact bytes through TCP
    xchg(tcp, "AT+GMR", GMR["tencent"] + OK)
    # input from the PTY is accepted too, but the output goes to the TCP client
    pty.send(b"AT+CWMODE?\r\n")
    tcp.expect(b"AT+CWMODE?\r\n+CWMODE:1\r\n" + OK)
    pty.expect_nothing_pending()

    # a second client is refused with one line and closed
    second = TcpPort("127.0.0.1", d.tcp_port())
    assert second.read_to_eof() == b"ERROR: serial port busy (another client is connected)\r\n"
    second.close()
    xchg(tcp, "AT", OK)                            # the first client is unaffected

    # once the client has gone the output returns to the PTY; the close is
    # only observable through where the next reply goes, so poll with AT
    tcp.close()
    deadline = time.monotonic() + 5
    while True:
        pty.send(b"AT\r\n")
        got = pty.read_available(0.2)
        if got:
            assert got == b"AT\r\n" + OK, escape(got)
            break
        assert time.monotonic() < deadline, "output never returned to the PTY"
    xchg(pty, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)


def test_tcp_client_receives_urcs_and_banner_after_rst(make_daemon, tmp_path):
    m = module_config(tmp_path, tcp_listen="127.0.0.1:0", **wifi("tencent"))
    d = make_daemon([m])
    d.port()
    tcp = d.tcp()
    join_lab(tcp)
    xchg(tcp, "AT+RST", OK)
    tcp.expect(READY + JOINED)


# ---------------------------------------------------------- several modules


def test_two_modules_are_independent(make_daemon, tmp_path):
    a = module_config(tmp_path, "a", **wifi("tencent", join_ms=2000))
    b = module_config(tmp_path, "b", "w800")
    d = make_daemon([a, b])
    pa, pb = d.port("a"), d.port("b")
    pa.cmd(JOIN_LAB)
    pa.expect(JOIN_LAB.encode() + b"\r\n")
    t0 = time.monotonic()
    xchg(pb, "AT", OK)
    assert time.monotonic() - t0 < 0.5, "b's reply was delayed by a's join"
    xchg(pa, "AT", TENCENT_BUSY)
    xchg(pb, "AT+CWMODE=2", OK)
    xchg(pb, "AT+CWJAP?", NO_AP + OK)
    pa.expect(JOINED + OK, timeout=10)
    xchg(pa, "AT+CWMODE?", b"+CWMODE:1\r\n" + OK)
    xchg(pb, "AT+CWMODE?", b"+CWMODE:2\r\n" + OK)
    xchg(pa, "ATE0", OK)
    xchg(pb, "AT", OK)                      # b's echo is its own
    d.stop()
    assert d.state_path("a") != d.state_path("b")
    assert d.state_path("b").is_file()


# ------------------------------------------------------------- pacing, TX


@pytest.mark.parametrize("baud,nbytes", [(115200, 10240), (9600, 960)])
def test_pacing_at_baud(start_module, baud, nbytes):
    _, port = start_module(baud=baud)
    data = b"A" * nbytes                       # no terminator: pure echo load
    expected = nbytes / (baud / 10)
    t0 = time.monotonic()
    port.send(data)
    port.expect(data, timeout=expected * 3 + 2)
    elapsed = time.monotonic() - t0
    assert abs(elapsed - expected) <= expected * 0.05, \
        "%d echoed bytes took %.3f s at %d baud, expected %.3f s +-5%%" % (
            nbytes, elapsed, baud, expected)


def test_unpaced_with_baud_0(start_module):
    _, port = start_module(baud=0)
    data = b"A" * 10240
    t0 = time.monotonic()
    port.send(data)
    port.expect(data)
    elapsed = time.monotonic() - t0
    assert elapsed < 0.2, "unpaced echo of 10240 bytes took %.3f s" % elapsed


@pytest.mark.parametrize("tx_buffer", [None, 8192])
def test_tx_overflow_drops_and_accounts_exactly(start_module, tx_buffer):
    extra = {"tx_buffer": tx_buffer} if tx_buffer else {}
    d, port = start_module(name="m0", baud=0, **extra)
    sent = 300 * 1024
    port.send(b"A" * sent)                     # nobody reads meanwhile
    d.wait_log("TX overflow: the MCU is not reading, dropping output")
    received = 0
    deadline = time.monotonic() + 20
    ended = re.compile(r"\[m0\] TX overflow ended: (\d+) bytes dropped \((\d+) total\)")
    while True:
        chunk = port.read_available(0.2)
        received += len(chunk)
        assert chunk.count(b"A") == len(chunk), "non-echo bytes in the output"
        m = ended.search(d.log_text())
        if m and not chunk:
            break
        assert time.monotonic() < deadline, "overflow never ended (received %d)" % received
    dropped, total = int(m.group(1)), int(m.group(2))
    assert dropped > 0 and dropped == total
    assert dropped == sent - received, "dropped %d, sent %d, received %d" % (
        dropped, sent, received)
    log = d.log_text()
    warn = re.findall(r"^\S+ WARN \[m0\] TX overflow: the MCU is not reading, dropping output$",
                      log, re.M)
    assert len(warn) == 1, "overflow warning logged %d times" % len(warn)
    assert re.search(r"^\S+ INFO \[m0\] TX overflow ended: \d+ bytes dropped \(\d+ total\)$",
                     log, re.M)


# ------------------------------------------------------------------ secrets


def test_trace_and_log_never_show_the_wifi_password(start_module, tmp_path):
    trace = tmp_path / "m0.trace"
    d, port = start_module(trace=str(trace), daemon_kw={"log_level": "debug"},
                           **wifi("tencent"))
    join_lab(port)
    xchg(port, 'AT+CWJAP="lab","hunter2-wrong"', DISCONNECTED + b"+CWJAP:2\r\n"
         + err("tencent", ERR_JOIN))
    wait_for(lambda: trace.exists() and "+CWJAP:2" in trace.read_text(errors="replace"), 5,
             "the trace to record the failed join")
    d.stop()
    text = trace.read_text(errors="replace")
    # the password parameter is replaced by *** in both directions (input and
    # its echo), for both joins
    redacted = re.escape('AT+CWJAP="lab","***"\\r\\n')
    for direction in "><":
        entries = re.findall(r"^\S+ %s %s$" % (direction, redacted), text, re.M)
        assert len(entries) == 2, "expected two %r entries %s in the trace:\n%s" % (
            direction, redacted, text)
    for secret in (SECRET, "secret", "hunter2"):
        assert secret not in text, "%r in the trace:\n%s" % (secret, text)
        assert secret not in d.log_text(all_runs=True), "%r in the daemon log" % secret
