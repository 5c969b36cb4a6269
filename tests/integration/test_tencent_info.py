"""test_tencent_info.py - tencent dialect: identity and module information
that must survive a daemon restart, what AT+TCRESTORE erases, and secrets
that never reach a log or a trace (tencent-at.md §3.1-§3.4, §5).

The reply bytes of every form are covered by the golden transcripts in
tests/transcripts/tencent/; this file covers what a transcript cannot:
restarts, the state file, the log and the trace."""

import os
import stat

import pytest

from conftest import module_config

DEV_SECRET = "ZHNkIGRzZCA="            # BCC 116
PRD_SECRET = "UHJvZHVjdFNlY3JldDE2Ynl0ZXM="  # 28 chars
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "join_ms": 0}


def bcc(s):
    r = 0
    for b in s.encode():
        r ^= b
    return r


def query(port, line, reply):
    port.cmd(line)
    port.expect(reply + b"\r\nOK\r\n")


def provision(port):
    port.cmd('AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01","%s","na-ashburn"' % DEV_SECRET)
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
    port.cmd('AT+TCPRDINFOSET=1,"CTQS08Y5LG","%s","Dev02"' % PRD_SECRET)
    port.expect(b"OK\r\n+TCPRDINFOSET:OK\r\n")
    port.cmd('AT+TCMODINFOSET="QCloud-Test",4,2,1122304,1048576,0')
    port.expect(b"OK\r\n+TCMODINFOSET:OK\r\n")


DEV_Q = b'+TCDEVINFOSET:1,"CTQS08Y5LG","Dev01",116,"na-ashburn"\r\n'
PRD_Q = b'+TCPRDINFOSET:1,"CTQS08Y5LG",%d,"Dev02","ap-guangzhou"\r\n' % bcc(PRD_SECRET)
MOD_Q = b'+TCMODINFOSET:"QCloud-Test",4,2,1122304,1048576,0\r\n'


@pytest.fixture
def daemon(make_daemon, tmp_path):
    m = module_config(tmp_path, "tc0", "tencent", echo=False,
                      trace=str(tmp_path / "tc0.trace"), tencent={"wifi": WIFI})
    return make_daemon([m], log_level="debug")


def test_identity_and_module_info_survive_restart(daemon):
    port = daemon.port()
    provision(port)
    daemon.restart()
    port = daemon.port()
    query(port, "AT+TCDEVINFOSET?", DEV_Q)
    query(port, "AT+TCPRDINFOSET?", PRD_Q)
    query(port, "AT+TCMODINFOSET?", MOD_Q)
    state = daemon.read_state()
    assert state["tc_devinfo"]["pid"] == "CTQS08Y5LG"
    assert stat.S_IMODE(os.stat(daemon.state_path()).st_mode) == 0o600


def test_restore_erases_identity_keeps_module_info_and_wifi(daemon):
    port = daemon.port()
    provision(port)
    port.cmd('AT+CWJAP="lab","labpass123"')
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n\r\nOK\r\n")

    port.cmd("AT+TCRESTORE")
    port.expect(b"OK\r\n")
    port.wait_ready()
    # the stored access point is re-joined at power-on
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n")
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")
    port.cmd("AT+TCPRDINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")
    query(port, "AT+TCMODINFOSET?", MOD_Q)
    query(port, "AT+CWJAP?", b'+CWJAP:"lab","18:31:bf:4b:2c:01",6,-45,0,1,3,0,1\r\n')

    # and it stays erased across a restart
    daemon.restart()
    port = daemon.port()
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n")
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")
    state = daemon.read_state()
    assert "tc_devinfo" not in state and "tc_prdinfo" not in state
    assert state["tc_modinfo"]["name"] == "QCloud-Test"


def test_devinfo_result_line_comes_after_the_durable_write(daemon):
    """The result line comes only after the write: the state file already
    holds the new triple when +TCDEVINFOSET:OK arrives."""
    port = daemon.port()
    port.cmd('AT+TCDEVINFOSET=1,"PIDPIDPID1","DevX","%s"' % DEV_SECRET)
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
    assert daemon.read_state()["tc_devinfo"]["dn"] == "DevX"


def test_secrets_never_in_log_or_trace(daemon, tmp_path):
    port = daemon.port()
    provision(port)
    # also a rejected line and an echoed one
    port.cmd('AT+TCDEVINFOSET=1,"CTQS08Y5LG","Dev01","%s",""' % DEV_SECRET)
    port.expect(b"+CME ERROR:204\r\n")
    port.cmd("ATE1")
    port.expect(b"\r\nOK\r\n")
    line = 'AT+TCPRDINFOSET=1,"CTQS08Y5LG","%s","Dev03"' % PRD_SECRET
    port.cmd(line)
    port.expect(line.encode() + b"\r\nOK\r\n+TCPRDINFOSET:OK\r\n")
    daemon.stop()
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    log = daemon.log_text(all_runs=True)
    # the commands are there, redacted
    assert "AT+TCDEVINFOSET=1,\"CTQS08Y5LG\",\"Dev01\",\"***\"" in trace
    assert "AT+TCPRDINFOSET=1,\"CTQS08Y5LG\",\"***\",\"Dev03\"" in trace
    assert "device info stored: product CTQS08Y5LG, device Dev01" in log
    for secret in (DEV_SECRET, PRD_SECRET):
        assert secret not in trace
        assert secret not in log
