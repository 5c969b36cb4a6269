"""test_esp_basic.py - the ESP-AT basics every host sends, on both ESP-family
dialects (tencent: ESP8266 with an esp-at v2.0 core, w800: W800 with the 2.4
core its AT+GMR claims): AT+SYSRAM? (one figure before core v2.2, two from
v2.2; simulated heap, esp_basic.c), and AT+UART_CUR / AT+UART_DEF / AT+UART
(esp-at-core.md): the divided-rate read-back, the limits, DEF kept in the
store across AT+RST and a daemon restart, AT+RESTORE back to the factory
rate, and the TX pacing switching to the new rate right after the OK."""

import time

import pytest

from conftest import module_config

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
READY = b"\r\nready\r\n"
WIFI = {"access_points": [{"ssid": "lab", "password": "secret123"}], "join_ms": 20}
WIFI_UP = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"


def tc_error(code):
    """The tencent firmware prints its ERR CODE line before every ERROR."""
    return b"ERR CODE:0x%08x\r\n" % code + ERROR


# the engine's codes (include/vmodule/at.h)
PARA_NUM = lambda need, given: 0x01060000 | need << 8 | given  # noqa: E731
PARA_TYPE = 0x01050000
PARA_INVALID = 0x01070000
PARA_PARSE = 0x01080000


def w8_err(code):
    """w800 with AT+SYSLOG=1 (set by the fixture so that the code shows)."""
    return b"ERR CODE:0x%08x\r\n" % code + ERROR


ERR = {"tencent": tc_error, "w800": w8_err}


@pytest.fixture
def esp(make_daemon, tmp_path):
    """esp(dialect, **module overrides) -> (daemon, port): echo off, banner
    consumed; w800 with AT+SYSLOG=1."""
    def start(dialect, **overrides):
        m = module_config(tmp_path, dialect, dialect, echo=False, **overrides)
        m.setdefault(dialect, {})["wifi"] = WIFI
        d = make_daemon([m])
        p = d.port()
        if dialect == "w800":
            p.cmd("AT+SYSLOG=1")
            p.expect(OK)
        return d, p
    return start


def check(port, cases):
    for line, expected in cases:
        port.cmd(line)
        port.expect(expected)


def join(port):
    check(port, [('AT+CWJAP="lab","secret123"', WIFI_UP + OK)])


# ---------------------------------------------------------------- AT+SYSRAM?


def test_sysram_one_figure_on_the_tencent_v2_0_core(esp):
    """ESP8266, core v2.0: "+SYSRAM:%d", then the OK result code with no blank line."""
    _, port = esp("tencent")
    check(port, [
        ("AT+SYSRAM?", b"+SYSRAM:58972\r\nOK\r\n"),
        ("AT+SYSRAM?", b"+SYSRAM:58972\r\nOK\r\n"),
    ])
    join(port)  # the Wi-Fi link holds heap while up
    check(port, [
        ("AT+SYSRAM?", b"+SYSRAM:51764\r\nOK\r\n"),
        ("AT+CWQAP", OK + b"WIFI DISCONNECT\r\n"),
        ("AT+SYSRAM?", b"+SYSRAM:58972\r\nOK\r\n"),
    ])


def test_sysram_two_figures_on_the_w800(esp):
    """Core v2.2+: free heap, minimum free heap since boot (never above free,
    never rising, back to the start-up figure after a reset)."""
    _, port = esp("w800")
    check(port, [("AT+SYSRAM?", b"+SYSRAM:157248,152868\r\nOK\r\n")])
    join(port)
    check(port, [
        ("AT+SYSRAM?", b"+SYSRAM:134608,127796\r\nOK\r\n"),
        ("AT+CWQAP", OK + b"WIFI DISCONNECT\r\n"),
        ("AT+SYSRAM?", b"+SYSRAM:157248,127796\r\nOK\r\n"),
        ("AT+RST", OK + READY),
        ("AT+SYSLOG=1", OK),
        ("AT+SYSRAM?", b"+SYSRAM:157248,152868\r\nOK\r\n"),
    ])


def test_sysram_lower_while_mqtt_is_up(esp, mosquitto):
    broker = mosquitto()
    _, port = esp("w800")
    join(port)
    check(port, [
        ('AT+MQTTUSERCFG=0,1,"w8","","",0,0,""', OK),
        ('AT+MQTTCONN=0,"127.0.0.1",%d,0' % broker.port,
         b'+MQTTCONNECTED:0,1,"127.0.0.1","%d","",0\r\n' % broker.port + OK),
        # 134608 - 4968 (MQTT) = 129640; its connect peaked 1920 lower
        ("AT+SYSRAM?", b"+SYSRAM:129640,127720\r\nOK\r\n"),
        ("AT+MQTTCLEAN=0", OK),
        ("AT+SYSRAM?", b"+SYSRAM:134608,127720\r\nOK\r\n"),
    ])


OP_TYPE = 0x010C0000  # a form the command does not take


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_forms_the_core_does_not_have(esp, dialect):
    """AT+SYSRAM has only its query; the AT+UART* commands a query and a set
    (no test form, no execute form)."""
    _, port = esp(dialect)
    err = ERR[dialect]
    for line in ("AT+SYSRAM", "AT+SYSRAM=?", "AT+UART_CUR=?", "AT+UART_DEF=?", "AT+UART=?",
                 "AT+UART_CUR", "AT+UART_DEF", "AT+UART"):
        check(port, [(line, err(OP_TYPE))])
    check(port, [("AT+SYSRAM=1", err(OP_TYPE)), ("AT", OK)])


# ---------------------------------------------------------------- AT+UART_*

# what each dialect's chip reads back for 115200 and 9600
REAL = {"tencent": {115200: 115273, 9600: 9600, 921600: 930232},
        "w800": {115200: 115200, 9600: 9600, 921600: 921600}}


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_uart_queries_at_the_factory_settings(esp, dialect):
    """Configured baud 115200: the read-back is the divided rate, DEF the
    stored (here factory) values; flow control 1 (RTS) by default."""
    _, port = esp(dialect, baud=115200)
    r = REAL[dialect][115200]
    check(port, [
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,1,0,1\r\n" % r + OK),
        ("AT+UART?", b"+UART:%d,8,1,0,1\r\n" % r + OK),
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,0,1\r\n" + OK),
    ])


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_uart_unpaced_module_reports_115200(esp, dialect):
    """baud 0 (unpaced): the module reports the esp-at factory rate."""
    _, port = esp(dialect)
    check(port, [
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,1,0,1\r\n" % REAL[dialect][115200] + OK),
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,0,1\r\n" + OK),
    ])


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_uart_set_errors(esp, dialect):
    _, port = esp(dialect)
    err = ERR[dialect]
    for cmd in ("AT+UART_CUR", "AT+UART_DEF", "AT+UART"):
        check(port, [
            (cmd + "=115200,8,1,0", err(PARA_NUM(5, 4))),
            (cmd + "=115200,8,1,0,0,0", err(PARA_NUM(5, 6))),
            (cmd + '="115200",8,1,0,0', err(PARA_TYPE)),
            (cmd + "=115200,,1,0,0", err(PARA_PARSE)),
            (cmd + "=79,8,1,0,0", err(PARA_INVALID)),
            (cmd + "=5000001,8,1,0,0", err(PARA_INVALID)),
            (cmd + "=115200,4,1,0,0", err(PARA_INVALID)),
            (cmd + "=115200,9,1,0,0", err(PARA_INVALID)),
            (cmd + "=115200,8,0,0,0", err(PARA_INVALID)),
            (cmd + "=115200,8,4,0,0", err(PARA_INVALID)),
            (cmd + "=115200,8,1,3,0", err(PARA_INVALID)),
            (cmd + "=115200,8,1,0,4", err(PARA_INVALID)),
            (cmd + "=115200,8,1,-1,0", err(PARA_INVALID)),
        ])
    # nothing changed
    check(port, [
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,1,0,1\r\n" % REAL[dialect][115200] + OK),
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,0,1\r\n" + OK),
    ])


def test_uart_limits_of_the_cores(esp):
    """80 and 5000000 are accepted by v2.0 (tencent) and the W800's 2.4 core
    (5000000 is the ESP32 limit; the ESP8266 stops at 4500000 only from v2.2)."""
    for dialect in ("tencent", "w800"):
        d, port = esp(dialect)
        check(port, [
            ("AT+UART_CUR=80,8,1,0,0", OK),
            ("AT+UART_CUR=5000000,8,1,0,0", OK),
            ("AT+UART_CUR?", b"+UART_CUR:5000000,8,1,0,0\r\n" + OK),  # 80e6 / 16
        ])
        d.stop()


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
def test_uart_cur_is_ram_only(esp, dialect):
    """CUR changes the read-back, not DEF, and an AT+RST returns to DEF."""
    _, port = esp(dialect)
    real = REAL[dialect][921600]
    check(port, [
        ("AT+UART_CUR=921600,7,3,2,3", OK),
        ("AT+UART_CUR?", b"+UART_CUR:%d,7,3,2,3\r\n" % real + OK),
        ("AT+UART?", b"+UART:%d,7,3,2,3\r\n" % real + OK),
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,0,1\r\n" + OK),
        ("AT+RST", OK + READY),
    ])
    if dialect == "w800":
        check(port, [("AT+SYSLOG=1", OK)])
    check(port, [("AT+UART_CUR?", b"+UART_CUR:%d,8,1,0,1\r\n" % REAL[dialect][115200] + OK)])


def test_uart_odd_parity_reads_back_0_on_the_v2_0_core(esp):
    """esp-at #338: the v2.0 core (tencent's v2.1.1 firmware) reads odd
    parity back as 0; DEF? prints what was stored. The W800's core has it right."""
    _, port = esp("tencent")
    check(port, [
        ("AT+UART_DEF=115200,8,1,1,0", OK),
        ("AT+UART_CUR?", b"+UART_CUR:115273,8,1,0,0\r\n" + OK),
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,1,0\r\n" + OK),
        ("AT+UART_CUR=115200,8,1,2,0", OK),
        ("AT+UART_CUR?", b"+UART_CUR:115273,8,1,2,0\r\n" + OK),
    ])
    _, port = esp("w800")
    check(port, [
        ("AT+UART_CUR=115200,8,1,1,0", OK),
        ("AT+UART_CUR?", b"+UART_CUR:115200,8,1,1,0\r\n" + OK),
    ])


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
@pytest.mark.parametrize("cmd", ["AT+UART_DEF", "AT+UART"])
def test_uart_def_survives_reset_and_restart_until_restore(esp, dialect, cmd):
    d, port = esp(dialect)
    real = REAL[dialect][921600]

    def relogin():
        if dialect == "w800":
            check(port, [("AT+SYSLOG=1", OK)])

    check(port, [
        (cmd + "=921600,8,2,2,0", OK),
        ("AT+UART_DEF?", b"+UART_DEF:921600,8,2,2,0\r\n" + OK),
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,2,2,0\r\n" % real + OK),
    ])
    assert d.read_state()["uart"] == {"baud": 921600, "data_bits": 8, "stop_bits": 2,
                                      "parity": 2, "flow": 0}
    check(port, [("AT+RST", OK + READY)])
    relogin()
    check(port, [
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,2,2,0\r\n" % real + OK),
        ("AT+UART_DEF?", b"+UART_DEF:921600,8,2,2,0\r\n" + OK),
    ])
    d.restart()
    port = d.port()
    relogin()
    check(port, [
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,2,2,0\r\n" % real + OK),
        ("AT+UART_DEF?", b"+UART_DEF:921600,8,2,2,0\r\n" + OK),
        ("AT+RESTORE", OK + READY),
    ])
    relogin()
    check(port, [
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,0,1\r\n" + OK),
        ("AT+UART_CUR?", b"+UART_CUR:%d,8,1,0,1\r\n" % REAL[dialect][115200] + OK),
    ])
    assert "uart" not in d.read_state()


def test_uart_restore_returns_to_the_configured_baud(esp):
    """The factory rate is the module's configured baud."""
    d, port = esp("w800", baud=57600)
    check(port, [
        ("AT+UART_DEF=9600,8,1,0,0", OK),
        ("AT+UART_DEF?", b"+UART_DEF:9600,8,1,0,0\r\n" + OK),
        ("AT+RESTORE", OK + READY),
        ("AT+SYSLOG=1", OK),
        ("AT+UART_DEF?", b"+UART_DEF:57600,8,1,0,1\r\n" + OK),
        ("AT+UART_CUR?", b"+UART_CUR:57600,8,1,0,1\r\n" + OK),
    ])


def test_uart_stored_garbage_is_ignored(esp):
    """An invalid stored setting is checked at boot: factory values instead."""
    d, port = esp("tencent")
    check(port, [("AT+UART_DEF=9600,8,1,0,0", OK)])
    d.stop()
    state = d.read_state()
    state["uart"]["baud"] = 12
    d.state_path().write_text(__import__("json").dumps(state))
    d.start()
    port = d.port()
    check(port, [
        ("AT+UART_DEF?", b"+UART_DEF:115200,8,1,0,1\r\n" + OK),
        ("AT+UART_CUR?", b"+UART_CUR:115273,8,1,0,1\r\n" + OK),
    ])


# ---------------------------------------------------------------- pacing


def timed(port, line, expected):
    """Sends line, returns (seconds to the first reply byte, seconds to the last)."""
    port.cmd(line)
    t0 = time.monotonic()
    first = port.read_exact(1, timeout=10)
    t1 = time.monotonic()
    rest = port.expect(expected[1:], timeout=10)
    t2 = time.monotonic()
    assert first + rest == expected
    return t1 - t0, t2 - t0


def queries(port, reply, count):
    """count AT+UART_CUR? in turn: (bytes received, seconds taken)."""
    t = 0.0
    for _ in range(count):
        t += timed(port, "AT+UART_CUR?", reply)[1]
    return count * len(reply), t


@pytest.mark.parametrize("dialect", ["tencent", "w800"])
@pytest.mark.parametrize("baud", [0, 1200])
def test_uart_cur_9600_paces_the_replies(esp, dialect, baud):
    """After AT+UART_CUR=9600,8,1,0,0 the OK itself comes at the old rate
    (1200 baud: 120 B/s; or unpaced), the next replies at 9600 baud (960 B/s),
    also on a module configured unpaced: the MCU asked for a rate. Each reply's
    first byte may leave at once, so the lower bounds count the others."""
    _, port = esp(dialect, baud=baud)
    _, t_ok = timed(port, "AT+UART_CUR=9600,8,1,0,0", OK)
    if baud:
        assert t_ok >= 0.8 * (len(OK) - 1) / 120.0, "the OK took %.3f s" % t_ok
    assert t_ok < 5 * len(OK) / 120.0 + 1.0
    reply = b"+UART_CUR:9600,8,1,0,0\r\n" + OK
    n, t = queries(port, reply, 4)
    wire = (n - 4) / 960.0
    assert t >= 0.8 * wire, "%d bytes in %.3f s, the wire needs %.3f s" % (n, t, wire)
    assert t < 5 * wire + 1.0
    assert t < 0.5 * n / 120.0  # not the old 1200 baud
    # and back: 115200 once that OK is out; ten replies in far less than 9600 needs
    port.cmd("AT+UART_CUR=115200,8,1,0,0")
    port.expect(OK)
    n, t = queries(port, b"+UART_CUR:%d,8,1,0,0\r\n" % REAL[dialect][115200] + OK, 10)
    assert t < 0.5 * n / 960.0, "%d bytes in %.3f s" % (n, t)


def test_uart_cur_frame_length_counts(esp):
    """9600 with 8 data bits, even parity and 2 stop bits: 12 bits a byte,
    800 B/s: 4 x 30 bytes take about 150 ms, more than the 125 ms of 8N1."""
    _, port = esp("w800")
    check(port, [("AT+UART_CUR=9600,8,3,2,0", OK)])
    n, t = queries(port, b"+UART_CUR:9600,8,3,2,0\r\n" + OK, 4)
    assert t >= 0.8 * (n - 4) / 800.0 and t > (n - 4) / 960.0, "%d bytes in %.3f s" % (n, t)
