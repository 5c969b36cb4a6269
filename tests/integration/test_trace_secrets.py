"""Secrets in malformed command lines (issue 10): the real daemon's trace file
never holds the secret bytes of a line whose parameters fail to parse; the
line is traced, in both directions (input and echo), redacted from its first
secret parameter on. Idle lines get the parse error, lines sent while a
command is pending get the busy reply; both are traced the same way."""
import re

import pytest

from conftest import escape, module_config, wait_for
from test_foundation import (ERR_PARA_PARSE, JOINED, OK, W800_ERROR, busy, err, join_lab,
                             wifi, xchg)

ME_ERROR = b"\r\nERROR\r\n"

# (dialect, line sent, line traced, the secret bytes)
CASES = [
    ("tencent", 'AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01","ZHNkIGRzZCA=',
     'AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01",***', "ZHNkIGRzZCA="),
    ("tencent", 'AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01","ZHNkIG,RzZCA=',
     'AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01",***', "RzZCA="),
    ("tencent", 'AT+CWJAP="lab","WifiPw-7781x', 'AT+CWJAP="lab",***', "WifiPw-7781x"),
    ("w800", 'AT+CWJAP="lab","WifiPw-7781x', 'AT+CWJAP="lab",***', "WifiPw-7781x"),
    ("w800", 'AT+MQTTUSERCFG=0,1,"id","user","pw-991', 'AT+MQTTUSERCFG=0,1,"id","user",***',
     "pw-991"),
    ("w800", 'AT+MQTTPASSWORD=0,"pw-3131', "AT+MQTTPASSWORD=0,***", "pw-3131"),
    ("me3630", 'AT+CLOUDAUTH=pk,dn,"secret', "AT+CLOUDAUTH=pk,dn,***", ',"secret'),  # the word is in tmp_path
    ("me3630", 'AT+CPIN="4711', "AT+CPIN=***", '"4711'),
]


def _module(tmp_path, dialect):
    extra = {"me3630": {"boot_urcs": ["ready"], "network": {"registration_ms": 0}}} \
        if dialect == "me3630" else wifi(dialect, join_ms=3000)
    return module_config(tmp_path, dialect, dialect, trace=str(tmp_path / "m.trace"), **extra)


def _parse_error(dialect):
    return ME_ERROR if dialect == "me3630" else err(dialect, ERR_PARA_PARSE)


def _assert_trace(daemon, tmp_path, line, traced, secret, times):
    trace = tmp_path / "m.trace"
    daemon.stop()
    text = trace.read_text(errors="replace")
    want = re.escape(escape(traced.encode() + b"\r\n"))
    for direction in "><":
        entries = re.findall(r"^\S+ %s %s$" % (direction, want), text, re.M)
        assert len(entries) == times, "expected %d %r entries %s in the trace:\n%s" % (
            times, direction, escape(traced.encode()), text)
    assert secret not in text, "%r of %r in the trace:\n%s" % (secret, line, text)
    assert secret not in daemon.log_text(all_runs=True), "%r in the daemon log" % secret


@pytest.mark.parametrize("dialect,line,traced,secret", CASES,
                         ids=["%s-%s" % (c[0], c[1][3:c[1].index("=")]) for c in CASES])
def test_malformed_secret_line_is_redacted_in_the_trace(make_daemon, tmp_path, dialect, line,
                                                        traced, secret):
    daemon = make_daemon([_module(tmp_path, dialect)], log_level="debug")
    port = daemon.port()
    xchg(port, line, _parse_error(dialect))
    xchg(port, "AT", OK)
    _assert_trace(daemon, tmp_path, line, traced, secret, 1)


@pytest.mark.parametrize("dialect,line,traced,secret",
                         [c for c in CASES if c[0] != "me3630"],
                         ids=["%s-%s" % (c[0], c[1][3:c[1].index("=")]) for c in CASES
                              if c[0] != "me3630"])
def test_malformed_secret_line_while_busy_is_redacted(make_daemon, tmp_path, dialect, line,
                                                      traced, secret):
    daemon = make_daemon([_module(tmp_path, dialect)], log_level="debug")
    port = daemon.port()
    port.send(b'AT+CWJAP="lab","secret123"\r\n')  # pending for join_ms
    port.expect(b'AT+CWJAP="lab","secret123"\r\n')
    xchg(port, line, busy(dialect))
    port.expect(JOINED + OK)
    _assert_trace(daemon, tmp_path, line, traced, secret, 1)


def test_empty_password_is_traced_empty(make_daemon, tmp_path):
    daemon = make_daemon([_module(tmp_path, "w800")], log_level="debug")
    port = daemon.port()
    line = 'AT+MQTTUSERCFG=0,1,"id","user","",0,0,""'
    xchg(port, line, OK)
    _assert_trace(daemon, tmp_path, line, line, "***", 1)
