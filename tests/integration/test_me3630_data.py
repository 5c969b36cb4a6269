"""test_me3630_data.py - the me3630 dialect's packet data (issue 10,
shared/reference/me3630-data.md): AT+CGATT, AT+CGDCONT (kept in flash),
AT+CGACT, AT+CGPADDR and the module's own data call AT+ZIPCALL, with the
CLOUD* commands working after AT+ZIPCALL=1 as after AT+ZECMCALL=1, against a
real mosquitto.

One data call on context 1, whichever command dialled it: the queries agree
on its address, and every way it ends (ZIPCALL=0, ZECMCALL=0, CGACT=0,1,
CGATT=0, CFUN=0/4) tells the other command's user by its URC and drops the
Aliyun session. Lists (CGDCONT?, CGACT?, CGPADDR) are framed like ATI:
CR LF before the first line only."""

import pytest

from conftest import wait_for
from test_me3630_cell import me_module as cell_module
from test_me3630_cloud import (AUTH, DN, OK, PK, TOPIC, auth, cmd, connections, me_module,
                               publish_urc, state, subscribe)

IP = b"10.64.12.34"
ZIP_UP = b"\r\n+ZIPCALL: 1," + IP + b"\r\n"
ZIP_LOST = b"\r\n+ZIPCALL: 0,0.0.0.0\r\n"
ECM_UP = b"\r\n+ZECMCALL: CONNECT\r\n"
ECM_DOWN = b"\r\n+ZECMCALL: DISCONNECT\r\n"
ECM_QUERY = b"\r\n+ZECMCALL: IPV4, 10.64.12.34, 10.64.12.35, 210.21.196.6, 221.5.88.88\r\n"
DEFAULT_CONTEXT = b'+CGDCONT: 1,"IPV4V6","","0.0.0.0",0,0\r\n'
ERROR = b"\r\nERROR\r\n"
# what stops a data path, and its +CME code
NO_DATA_PATH = [({"sim": {"present": False}}, 10), ({"sim": {"pin": "4321"}}, 11),
                ({"network": {"available": False}}, 30)]
NO_DATA_PATH_IDS = ["sim-absent", "pin", "no-network"]


def cme(code):
    return b"\r\n+CME ERROR: %d\r\n" % code


def lines(*items):
    """A list reply: CR LF, then each line ending CR LF, then OK."""
    return b"\r\n" + b"".join(items) + OK


def start(make_daemon, tmp_path, **me):
    daemon = make_daemon([cell_module(tmp_path, **me)], log_level="debug")
    return daemon, daemon.port()


def zipcall(port):
    cmd(port, "AT+ZIPCALL=1", OK)
    port.expect(ZIP_UP)


def call_is_up(port):
    cmd(port, "AT+ZIPCALL?", ZIP_UP + OK)
    cmd(port, "AT+ZECMCALL?", ECM_QUERY + OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,1\r\n"))
    cmd(port, "AT+CGPADDR", lines(b"+CGPADDR: 1," + IP + b"\r\n"))


def call_is_down(port):
    cmd(port, "AT+ZIPCALL?", b"\r\n+ZIPCALL: 0\r\n" + OK)
    cmd(port, "AT+ZECMCALL?", ECM_DOWN + OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,0\r\n"))
    cmd(port, "AT+CGPADDR", lines(b"+CGPADDR: 1,0.0.0.0\r\n"))


# ------------------------------------------------------------------ AT+CGATT


def test_cgatt_query_set_test_and_errors(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 1\r\n" + OK)
    cmd(port, "AT+CGATT=?", b"\r\n+CGATT: (0,1)\r\n" + OK)
    cmd(port, "AT+CGATT=1", OK)
    cmd(port, "AT+CGATT=0", OK)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 0\r\n" + OK)
    cmd(port, "AT+CGATT=1", OK)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 1\r\n" + OK)
    for bad in ("AT+CGATT=2", "AT+CGATT=-1", "AT+CGATT=1,1", "AT+CGATT=", "AT+CGATT=x",
                "AT+CGATT"):
        cmd(port, bad, ERROR)
    # detached by radio off; attached again with the registration
    cmd(port, "AT+CFUN=0", OK)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 0\r\n" + OK)
    cmd(port, "AT+CGATT=1", cme(30))
    cmd(port, "AT+CFUN=1", OK)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 1\r\n" + OK)


@pytest.mark.parametrize("me,code", NO_DATA_PATH, ids=NO_DATA_PATH_IDS)
def test_cgatt_without_sim_or_network(make_daemon, tmp_path, me, code):
    _, port = start(make_daemon, tmp_path, **me)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 0\r\n" + OK)
    cmd(port, "AT+CGATT=1", cme(code))
    cmd(port, "AT+CGATT=0", OK)


def test_activation_after_detach_attaches_again(make_daemon, tmp_path):
    """27.007: activating a context when detached attaches first."""
    _, port = start(make_daemon, tmp_path)
    cmd(port, "AT+CGATT=0", OK)
    zipcall(port)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 1\r\n" + OK)
    cmd(port, "AT+CGATT=0", OK + ZIP_LOST)
    cmd(port, "AT+CGACT=1,1", OK)
    cmd(port, "AT+CGATT?", b"\r\n+CGATT: 1\r\n" + OK)


# ------------------------------------------------------------------ AT+CGDCONT


def test_cgdcont_set_query_and_errors(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cmd(port, "AT+CGDCONT?", lines(DEFAULT_CONTEXT))
    cmd(port, 'AT+CGDCONT=1,"IPV4V6","cmnet"', OK)  # as [OOS] sends it
    cmd(port, 'AT+CGDCONT=3,"ip","3gnet","0.0.0.0",0,0', OK)  # type case-insensitive
    cmd(port, 'AT+CGDCONT=16,"IPV6"', OK)  # no APN: the network's default
    cmd(port, "AT+CGDCONT?", lines(b'+CGDCONT: 1,"IPV4V6","cmnet","0.0.0.0",0,0\r\n',
                                   b'+CGDCONT: 3,"IP","3gnet","0.0.0.0",0,0\r\n',
                                   b'+CGDCONT: 16,"IPV6","","0.0.0.0",0,0\r\n'))
    for bad in ('AT+CGDCONT=0,"IP","x"', 'AT+CGDCONT=17,"IP","x"', 'AT+CGDCONT=1,"PPP","x"',
                'AT+CGDCONT=1,,"x"', 'AT+CGDCONT=1,"IP","%s"' % ("a" * 100),
                'AT+CGDCONT=1,"IP","x","",4', 'AT+CGDCONT=1,"IP","x","",0,5',
                'AT+CGDCONT=1,"IP","x","",0,0,0', "AT+CGDCONT=x", "AT+CGDCONT"):
        cmd(port, bad, ERROR)
    cmd(port, 'AT+CGDCONT=2,"IP","%s"' % ("a" * 99), OK)
    cmd(port, "AT+CGDCONT=2", OK)  # <cid> alone undefines
    cmd(port, "AT+CGDCONT=2", OK)  # already undefined
    cmd(port, "AT+CGDCONT=16", OK)
    cmd(port, "AT+CGDCONT?", lines(b'+CGDCONT: 1,"IPV4V6","cmnet","0.0.0.0",0,0\r\n',
                                   b'+CGDCONT: 3,"IP","3gnet","0.0.0.0",0,0\r\n'))
    # an active context cannot be undefined, but may be redefined
    cmd(port, "AT+CGACT=1,3", OK)
    cmd(port, "AT+CGDCONT=3", cme(3))
    cmd(port, 'AT+CGDCONT=3,"IP","other"', OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,0\r\n", b"+CGACT: 3,1\r\n"))


def test_cgdcont_persists_across_reset_and_restart(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path)
    cmd(port, 'AT+CGDCONT=1,"IP","cmnet"', OK)
    cmd(port, 'AT+CGDCONT=2,"IPV4V6","ims"', OK)
    assert daemon.read_state()["pdp"] == [{"cid": 1, "type": "IP", "apn": "cmnet"},
                                          {"cid": 2, "type": "IPV4V6", "apn": "ims"}]
    want = lines(b'+CGDCONT: 1,"IP","cmnet","0.0.0.0",0,0\r\n',
                 b'+CGDCONT: 2,"IPV4V6","ims","0.0.0.0",0,0\r\n')
    cmd(port, "AT+CFUN=1,1", OK)
    port.wait_ready()
    cmd(port, "AT+CGDCONT?", want)
    daemon.restart()
    port = daemon.port()
    cmd(port, "AT+CGDCONT?", want)
    # all undefined is stored too: no context, no data call
    cmd(port, "AT+CGDCONT=1", OK)
    cmd(port, "AT+CGDCONT=2", OK)
    daemon.restart()
    port = daemon.port()
    cmd(port, "AT+CGDCONT?", OK)
    cmd(port, "AT+CGACT?", OK)
    cmd(port, "AT+CGPADDR", OK)
    cmd(port, "AT+ZIPCALL=1", cme(3))
    cmd(port, "AT+ZECMCALL=1", cme(3))


def test_damaged_stored_context_is_skipped(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path)
    cmd(port, 'AT+CGDCONT=2,"IP","ok"', OK)
    daemon.stop()
    path = daemon.state_path()
    path.write_text('{"pdp": [{"cid": 99, "type": "IP", "apn": "x"}, '
                    '{"cid": 4, "type": "X25", "apn": "x"}, {"cid": 5, "type": "IP", "apn": "y"}]}')
    daemon.start()
    port = daemon.port()
    cmd(port, "AT+CGDCONT?", lines(b'+CGDCONT: 5,"IP","y","0.0.0.0",0,0\r\n'))
    daemon.wait_log("stored PDP context ignored")


# ------------------------------------------------------------------ AT+CGACT, AT+CGPADDR


def test_cgact_and_cgpaddr(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,0\r\n"))
    cmd(port, "AT+CGPADDR", lines(b"+CGPADDR: 1,0.0.0.0\r\n"))
    cmd(port, "AT+CGACT=1,1", OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,1\r\n"))
    cmd(port, "AT+CGPADDR", lines(b"+CGPADDR: 1," + IP + b"\r\n"))
    cmd(port, "AT+CGPADDR=1", lines(b"+CGPADDR: 1," + IP + b"\r\n"))
    # an active context is not the module's data call
    cmd(port, "AT+ZIPCALL?", b"\r\n+ZIPCALL: 0\r\n" + OK)
    cmd(port, "AT+CLOUDCONN", cme(3))
    cmd(port, 'AT+CGDCONT=3,"IP","x"', OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,1\r\n", b"+CGACT: 3,0\r\n"))
    cmd(port, "AT+CGPADDR=3,1", lines(b"+CGPADDR: 3,0.0.0.0\r\n", b"+CGPADDR: 1," + IP + b"\r\n"))
    cmd(port, "AT+CGACT=1", OK)  # every defined context
    cmd(port, "AT+CGPADDR", lines(b"+CGPADDR: 1," + IP + b"\r\n", b"+CGPADDR: 3,10.64.12.36\r\n"))
    cmd(port, "AT+CGACT=0,3", OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,1\r\n", b"+CGACT: 3,0\r\n"))
    cmd(port, "AT+CGACT=0", OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,0\r\n", b"+CGACT: 3,0\r\n"))
    # an undefined context; out of range
    cmd(port, "AT+CGACT=1,2", cme(3))
    cmd(port, "AT+CGPADDR=2", cme(3))
    cmd(port, "AT+CGPADDR=1,2", cme(3))
    for bad in ("AT+CGACT=2,1", "AT+CGACT=1,0", "AT+CGACT=1,17", "AT+CGACT=1,1,1", "AT+CGACT=",
                "AT+CGACT=1,", "AT+CGACT", "AT+CGPADDR=0", "AT+CGPADDR=17", "AT+CGPADDR=x",
                "AT+CGPADDR=1,"):
        cmd(port, bad, ERROR)


@pytest.mark.parametrize("me,code", NO_DATA_PATH, ids=NO_DATA_PATH_IDS)
def test_cgact_without_sim_or_network(make_daemon, tmp_path, me, code):
    _, port = start(make_daemon, tmp_path, **me)
    cmd(port, "AT+CGACT=1,1", cme(code))
    cmd(port, "AT+CGACT=1", cme(code))
    cmd(port, "AT+CGACT=0,1", OK)
    cmd(port, "AT+CGACT?", lines(b"+CGACT: 1,0\r\n"))


# ------------------------------------------------------------------ AT+ZIPCALL


def test_zipcall_forms_and_states(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"call_ms": 400})
    call_is_down(port)
    cmd(port, "AT+ZIPCALL=1", OK)  # OK at once, the address when the call is up
    cmd(port, "AT+ZIPCALL?", b"\r\n+ZIPCALL: 2\r\n" + OK)  # connecting
    cmd(port, "AT+ZIPCALL=1", OK)  # dialling already: one URC
    port.expect(ZIP_UP, timeout=5)
    port.expect_silence(0.2)
    call_is_up(port)
    cmd(port, "AT+ZIPCALL=1", OK + ZIP_UP)  # up already: the address again
    for bad in ("AT+ZIPCALL=2", "AT+ZIPCALL=-1", "AT+ZIPCALL=1,1", "AT+ZIPCALL=", "AT+ZIPCALL"):
        cmd(port, bad, ERROR)
    cmd(port, "AT+ZIPCALL=0", OK)  # hung up by its own user: no URC
    port.expect_silence(0.2)
    call_is_down(port)
    cmd(port, "AT+ZIPCALL=0", OK)


@pytest.mark.parametrize("me,code,text", [
    ({"sim": {"present": False}}, 10, b"SIM not inserted"),
    ({"sim": {"pin": "4321"}}, 11, b"SIM PIN required"),
    ({"network": {"available": False}}, 30, b"no network service")], ids=NO_DATA_PATH_IDS)
def test_zipcall_without_registration_fails(make_daemon, tmp_path, me, code, text):
    _, port = start(make_daemon, tmp_path, **me)
    cmd(port, "AT+ZIPCALL=1", cme(code))
    cmd(port, "AT+CMEE=2", OK)
    cmd(port, "AT+ZIPCALL=1", b"\r\n+CME ERROR: " + text + b"\r\n")
    cmd(port, "AT+CMEE=0", OK)
    cmd(port, "AT+ZIPCALL=1", ERROR)
    cmd(port, "AT+ZIPCALL?", b"\r\n+ZIPCALL: 0\r\n" + OK)


def test_zipcall_with_the_radio_off_fails(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cmd(port, "AT+CFUN=4", OK)
    cmd(port, "AT+ZIPCALL=1", cme(30))
    cmd(port, "AT+CFUN=1", OK)
    zipcall(port)


def test_zipcall_and_zecmcall_share_the_call(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"call_ms": 300})
    # ECM dialled: ZIPCALL sees it; ZIPCALL=0 ends it and tells the ECM user
    cmd(port, "AT+ZECMCALL=1", ECM_UP + OK, timeout=5)
    call_is_up(port)
    cmd(port, "AT+ZIPCALL=0", OK + ECM_DOWN)
    call_is_down(port)
    # ZIPCALL dialling, then ZECMCALL waits for the same dial
    cmd(port, "AT+ZIPCALL=1", OK)
    cmd(port, "AT+ZECMCALL=1", ECM_UP + OK + ZIP_UP, timeout=5)
    call_is_up(port)
    cmd(port, "AT+ZECMCALL=0", ECM_DOWN + OK + ZIP_LOST)
    call_is_down(port)
    # both asked: a loss tells both
    zipcall(port)
    cmd(port, "AT+ZECMCALL=1", ECM_UP + OK)
    cmd(port, "AT+CGATT=0", OK + ZIP_LOST + ECM_DOWN)
    call_is_down(port)


def test_radio_off_while_dialling_ends_the_dial(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, network={"call_ms": 1000})
    cmd(port, "AT+ZIPCALL=1", OK)
    cmd(port, "AT+CFUN=0", OK + ZIP_LOST)
    port.expect_silence(1.2)  # no late +ZIPCALL: 1
    cmd(port, "AT+CFUN=1", OK)
    call_is_down(port)


# ------------------------------------------------------------------ CLOUD* over ZIPCALL


def test_cloudconn_needs_a_data_call_and_works_after_zipcall(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    daemon = make_daemon([me_module(tmp_path, broker.port)], log_level="debug")
    port = daemon.port()
    before = connections(broker)
    cmd(port, AUTH, OK + cme(3))  # no data call: as before issue 10
    cmd(port, "AT+CGACT=1,1", OK)  # an active context is not enough
    cmd(port, AUTH, OK + cme(3))
    cmd(port, "AT+CLOUDCONN", cme(3))
    assert connections(broker) == before
    zipcall(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    assert connections(broker) == before + 1
    subscribe(port, (TOPIC, 0))
    cmd(port, "AT+CLOUDPUB=%s,0,helloworld" % TOPIC, OK + publish_urc(TOPIC, b"helloworld"))
    state(port, 1)


# every way the call ends: the command, its reply, then CLOUDCONN's code
CALL_ENDS = [
    ("AT+CGATT=0", OK + ZIP_LOST, 3),
    ("AT+CFUN=0", OK + ZIP_LOST, 30),  # and no network either
    ("AT+CFUN=4", OK + ZIP_LOST, 30),
    ("AT+CGACT=0,1", OK + ZIP_LOST, 3),
    ("AT+CGACT=0", OK + ZIP_LOST, 3),
    ("AT+ZECMCALL=0", ECM_DOWN + OK + ZIP_LOST, 3),
    ("AT+ZIPCALL=0", OK, 3),  # its own user: no URC
]


@pytest.mark.parametrize("line,reply,code", CALL_ENDS, ids=[c[0] for c in CALL_ENDS])
def test_link_loss_urc_and_the_cloud_session(make_daemon, tmp_path, mosquitto, line, reply, code):
    broker = mosquitto()
    daemon = make_daemon([me_module(tmp_path, broker.port)], log_level="debug")
    port = daemon.port()
    zipcall(port)
    auth(port)
    cmd(port, "AT+CLOUDCONN", OK)
    cmd(port, line, reply)
    wait_for(lambda: "Client %s.%s|" % (PK, DN) in broker.log_text() and
             "| closed its connection" in broker.log_text(), 5, "the broker to see the link drop")
    state(port, 0)
    cmd(port, "AT+CLOUDPUB=%s,0,hi" % TOPIC, cme(3))
    cmd(port, "AT+CLOUDCONN", cme(code))
    call_is_down(port)
