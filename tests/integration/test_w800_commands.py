"""test_w800_commands.py - the w800 dialect's MQTT command layer: queries,
usage texts, AT+SYSLOG and the error styles, and the validation of
w800-me3630-at.md §5 in ESP-AT's order (each case names the parameter ESP-AT
checks first; codes are shown with AT+SYSLOG=1). Needs no broker except for
the connected-state checks (plain mosquitto), and the dialect's config keys."""

import json

import pytest

from test_w800_support import (  # noqa: F401  (fixtures)
    ERROR, OK, PROMPT, connect, errcode, mqtt_err, ok, start_w800)


def check(port, cases):
    for line, expected in cases:
        port.cmd(line)
        port.expect(expected)


def syslog_on(port):
    ok(port, "AT+SYSLOG=1")


USERCFG_OK = 'AT+MQTTUSERCFG=0,1,"w8","user","pw",0,0,""'


# ---------------------------------------------------------------- queries and usage


def test_queries_before_any_configuration(start_w800):
    _, port = start_w800()
    check(port, [
        ("AT+MQTTUSERCFG?", b'+MQTTUSERCFG:0,0,"","","",0,0,""\r\n' + OK),
        ("AT+MQTTCONNCFG?", b'+MQTTCONNCFG:0,0,0,"","",0,0\r\n' + OK),
        ("AT+MQTTALPN?", OK),
        ("AT+MQTTCONN?", b'+MQTTCONN:0,0,0,"","","",0\r\n' + OK),
        ("AT+MQTTSUB?", b'+MQTTSUB:0,0,"",0\r\n' + OK),
    ])


def test_queries_show_what_was_set(start_w800):
    _, port = start_w800()
    check(port, [
        ('AT+MQTTUSERCFG=0,7,"id\\"1","u\\,ser","p\\\\w",0,0,"mqtt"', OK),
        ("AT+MQTTUSERCFG?", b'+MQTTUSERCFG:0,7,"id"1","u,ser","***",0,0,"mqtt"\r\n' + OK),
        ("AT+MQTTCONN?", b'+MQTTCONN:0,1,7,"","","",0\r\n' + OK),
        ('AT+MQTTCONNCFG=0,0,1,"will/t","bye",2,1', OK),
        # keepalive 0 is shown as stored (it means 120 s)
        ("AT+MQTTCONNCFG?", b'+MQTTCONNCFG:0,0,1,"will/t","bye",2,1\r\n' + OK),
        ("AT+MQTTCONN?", b'+MQTTCONN:0,2,7,"","","",0\r\n' + OK),
        ("AT+MQTTSUB?", b'+MQTTSUB:0,2,"",0\r\n' + OK),
        ('AT+MQTTALPN=0,2,"mqtt","x-test"', OK),
        ("AT+MQTTALPN?", b'+MQTTALPN:0,"mqtt"\r\n+MQTTALPN:0,"x-test"\r\n' + OK),
        ("AT+MQTTALPN=0,0", OK),
        ("AT+MQTTALPN?", OK),
        # USERCFG again: back to state 1, the connection settings stay
        ('AT+MQTTUSERCFG=0,1,"a","","",0,0,""', OK),
        ("AT+MQTTCONN?", b'+MQTTCONN:0,1,1,"","","",0\r\n' + OK),
        ("AT+MQTTCONNCFG?", b'+MQTTCONNCFG:0,0,1,"will/t","bye",2,1\r\n' + OK),
        ("AT+MQTTCLEAN=0", OK),
        ("AT+MQTTUSERCFG?", b'+MQTTUSERCFG:0,0,"","","",0,0,""\r\n' + OK),
        ("AT+MQTTCONNCFG?", b'+MQTTCONNCFG:0,0,0,"","",0,0\r\n' + OK),
        ("AT+MQTTCONN?", b'+MQTTCONN:0,0,0,"","","",0\r\n' + OK),
    ])


USAGE = {
    "AT+MQTTUSERCFG=?": b'AT+MQTTUSERCFG?\r\nAT+MQTTUSERCFG=<LinkID>,<scheme>,<"client_id">,'
                        b'<"username">,<"password">,<cert_key_ID>,<CA_ID>,<"path">\r\n'
                        b'example:AT+MQTTUSERCFG=0,1,"test","hello","123456",0,0,""\r\n',
    "AT+MQTTLONGCLIENTID=?": b"AT+MQTTLONGCLIENTID=<LinkID>,<length>\r\n"
                             b"example:AT+MQTTLONGCLIENTID=0,10\r\n",
    "AT+MQTTLONGUSERNAME=?": b"AT+MQTTLONGUSERNAME=<LinkID>,<length>\r\n"
                             b"example:AT+MQTTLONGUSERNAME=0,10\r\n",
    "AT+MQTTLONGPASSWORD=?": b"AT+MQTTLONGPASSWORD=<LinkID>,<length>\r\n"
                             b"example:AT+MQTTLONGPASSWORD=0,10\r\n",
    "AT+MQTTCONNCFG=?": b'AT+MQTTCONNCFG?\r\nAT+MQTTCONNCFG=<LinkID>,<keepalive>,'
                        b'<disable_clean_session>,<"lwt_topic">,<"lwt_msg">,<lwt_qos>,'
                        b'<lwt_retain>\r\nexample:AT+MQTTCONNCFG=0,50,0,"lwtt","lwtm",0,0\r\n',
    "AT+MQTTALPN=?": b'AT+MQTTALPN?\r\nAT+MQTTALPN=<LinkID>,<alpn_counts>[,<"alpn">]'
                     b'[,<"alpn">][,<"alpn">]\r\n'
                     b'example:AT+MQTTALPN=0,2,"mqtt-ca.cn","mqtt-ca.us"\r\n',
    "AT+MQTTCONN=?": b'AT+MQTTCONN?\r\nAT+MQTTCONN=<LinkID>,<"host">,<port>,<reconnect>\r\n'
                     b'example:AT+MQTTCONN=0,"192.168.200.2",8883,1\r\n',
    "AT+MQTTPUB=?": b'AT+MQTTPUB=<LinkID>,<"topic">,<"data">,<qos>,<retain>\r\n'
                    b'example:AT+MQTTPUB=0,"123","Hello",0,0\r\n',
    "AT+MQTTPUBRAW=?": b'AT+MQTTPUBRAW=<LinkID>,<"topic">,<length>,<qos>,<retain>\r\n'
                       b'example:AT+MQTTPUBRAW=0,"123",25,0,0\r\n',
    "AT+MQTTSUB=?": b'AT+MQTTSUB?\r\nAT+MQTTSUB=<LinkID>,<"topic">,<qos>\r\n'
                    b'example:AT+MQTTSUB=0,"123",0\r\n',
    "AT+MQTTUNSUB=?": b'AT+MQTTUNSUB=<LinkID>,<"topic">\r\nexample:AT+MQTTUNSUB=0,"123"\r\n',
    "AT+MQTTCLEAN=?": b"AT+MQTTCLEAN=<LinkID>\r\nexample:AT+MQTTCLEAN=0\r\n",
}


def test_usage_texts(start_w800):
    _, port = start_w800()
    check(port, [(cmd, text + OK) for cmd, text in USAGE.items()])


# ---------------------------------------------------------------- AT+SYSLOG, error styles


def test_syslog_switches_err_code_lines(start_w800):
    _, port = start_w800()
    check(port, [
        ("AT+SYSLOG?", b"+SYSLOG:0\r\n" + OK),
        ("AT+FAKE", ERROR),
        ("AT+MQTTCLEAN=0", ERROR),
        ("AT+SYSLOG=2", ERROR),
        ("AT+SYSLOG=1", OK),
        ("AT+SYSLOG?", b"+SYSLOG:1\r\n" + OK),
        ("AT+FAKE", errcode(0x01090000)),
        ("AT+SYSLOG=2", errcode(0x01070000)),
        ("AT+SYSLOG", errcode(0x010C0000)),
        ("AT+MQTTCLEAN=0", mqtt_err(0x6003)),
        ("AT+SYSLOG=0", OK),
        ("AT+MQTTCLEAN=0", ERROR),
        ("AT+SYSLOG=1", OK),
    ])
    # a reset forgets it
    port.cmd("AT+RST")
    port.expect(OK + b"\r\nready\r\n")
    port.expect(b"WIFI CONNECTED\r\nWIFI GOT IP\r\n")
    check(port, [("AT+SYSLOG?", b"+SYSLOG:0\r\n" + OK), ("AT+FAKE", ERROR)])


def test_esp_at_error_style_by_name(start_w800):
    _, port = start_w800(error_style="esp-at")
    check(port, [("AT+FAKE", ERROR), ('AT+MQTTUSERCFG=0,11,"a","","",0,0,""', ERROR)])


def test_w800_error_style(start_w800):
    _, port = start_w800(error_style="w800")
    check(port, [
        ("AT+FAKE", b"\r\nCMD FORMAT ERR\r\n"),
        ('AT+MQTTUSERCFG=0,11,"a","","",0,0,""', b"\r\nCMD PARSE ERR\r\n"),
        ("AT+CWMODE=7", b"\r\nCMD PARSE ERR\r\n"),
        # not a parameter problem: the plain ERROR
        ('AT+MQTTPUB=0,"t","d",0,0', ERROR),
        ("AT+MQTTCLEAN=0", ERROR),
        ("AT+SYSLOG=1", OK),
        ("AT+FAKE", b"ERR CODE:0x01090000\r\n\r\nCMD FORMAT ERR\r\n"),
        ('AT+MQTTCONN=0,"h",1883,2', b"ERR CODE:0x010a6001\r\n\r\nERROR\r\n"),
        (USERCFG_OK, OK),
        ('AT+MQTTCONN=0,"h",1883,2', b"ERR CODE:0x010a6040\r\n\r\nCMD PARSE ERR\r\n"),
    ])


# ---------------------------------------------------------------- validation (§5), state 0..2


LONG = "x" * 65


def test_usercfg_validation_order(start_w800):
    _, port = start_w800()
    syslog_on(port)
    check(port, [
        ('AT+MQTTUSERCFG=1,1,"a","b","c",0,0,""', mqtt_err(0x6011)),
        ('AT+MQTTUSERCFG="0",1,"a","b","c",0,0,""', mqtt_err(0x6010)),
        ('AT+MQTTUSERCFG=1,11,"a","b","c",2,2,"p"', mqtt_err(0x6011)),  # link first
        ('AT+MQTTUSERCFG=0,11,"a","b","c",2,2,"p"', mqtt_err(0x6013)),  # then scheme
        ('AT+MQTTUSERCFG=0,0,"a","b","c",0,0,""', mqtt_err(0x6013)),
        ('AT+MQTTUSERCFG=0,"1","a","b","c",0,0,""', mqtt_err(0x6012)),
        ('AT+MQTTUSERCFG=0,1,a,"b","c",0,0,""', mqtt_err(0x6014)),
        ('AT+MQTTUSERCFG=0,1,"a",,"c",0,0,""', mqtt_err(0x6017)),
        ('AT+MQTTUSERCFG=0,1,"a","%s","c",0,0,""' % LONG, mqtt_err(0x6019)),
        ('AT+MQTTUSERCFG=0,1,"a","b",3,0,0,""', mqtt_err(0x601A)),
        ('AT+MQTTUSERCFG=0,1,"a","b","%s",0,0,""' % LONG, mqtt_err(0x601C)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c","0",0,""', mqtt_err(0x601D)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",2,2,""', mqtt_err(0x601E)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,2,""', mqtt_err(0x6020)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,,""', mqtt_err(0x601F)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,0,path', mqtt_err(0x6027)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,0,"%s"' % ("p" * 33), mqtt_err(0x6029)),
        # a missing parameter is that parameter's READ_FAILED; the count comes last
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,0', mqtt_err(0x6027)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,0,"",1', mqtt_err(0x6008)),
        ('AT+MQTTUSERCFG=0,1,"a","b","c",0,0,"%s"' % ("p" * 32), OK),
        ('AT+MQTTUSERCFG=0,10,"","","",1,1,""', OK),  # empty id: a warning only
        ("AT+MQTTCONN?", b'+MQTTCONN:0,1,10,"","","",0\r\n' + OK),
    ])


def test_conncfg_validation_order(start_w800):
    _, port = start_w800()
    syslog_on(port)
    check(port, [
        ('AT+MQTTCONNCFG=0,60,0,"","",0,0', mqtt_err(0x6001)),
        (USERCFG_OK, OK),
        ('AT+MQTTCONNCFG=1,7201,0,"","",0,0', mqtt_err(0x6011)),
        ('AT+MQTTCONNCFG=0,7201,2,"","",3,2', mqtt_err(0x602D)),
        ('AT+MQTTCONNCFG=0,-1,0,"","",0,0', mqtt_err(0x602D)),
        ('AT+MQTTCONNCFG=0,"60",0,"","",0,0', mqtt_err(0x602B)),
        ('AT+MQTTCONNCFG=0,60,2,"","",0,0', mqtt_err(0x602F)),
        ('AT+MQTTCONNCFG=0,60,,"","",0,0', mqtt_err(0x602E)),
        ('AT+MQTTCONNCFG=0,60,0,"%s","",0,0' % ("t" * 129), mqtt_err(0x6032)),
        ('AT+MQTTCONNCFG=0,60,0,t,"",0,0', mqtt_err(0x6030)),
        ('AT+MQTTCONNCFG=0,60,0,"t","%s",0,0' % ("m" * 129), mqtt_err(0x6035)),
        ('AT+MQTTCONNCFG=0,60,0,"t",5,0,0', mqtt_err(0x6033)),
        ('AT+MQTTCONNCFG=0,60,0,"t","m",3,0', mqtt_err(0x6037)),
        ('AT+MQTTCONNCFG=0,60,0,"t","m",,0', mqtt_err(0x6036)),
        ('AT+MQTTCONNCFG=0,60,0,"t","m",1,2', mqtt_err(0x6039)),
        ('AT+MQTTCONNCFG=0,60,0,"t","m",1,"1"', mqtt_err(0x6038)),
        ('AT+MQTTCONNCFG=0,60,0,"t"', mqtt_err(0x6033)),
        ('AT+MQTTCONNCFG=0,60,0,"t","m",1,1,1', mqtt_err(0x6008)),
        ('AT+MQTTCONNCFG=0,7200,0,"%s","%s",1,1' % ("t" * 50, "m" * 128), OK),
        ("AT+MQTTCONN?", b'+MQTTCONN:0,2,1,"","","",0\r\n' + OK),
    ])


def test_alpn_and_long_validation(start_w800):
    _, port = start_w800()
    syslog_on(port)
    check(port, [
        ('AT+MQTTALPN=0,1,"mqtt"', mqtt_err(0x6002)),
        ("AT+MQTTLONGCLIENTID=0,10", mqtt_err(0x6002)),
        (USERCFG_OK, OK),
        ('AT+MQTTALPN=1,1,"mqtt"', mqtt_err(0x6011)),
        ('AT+MQTTALPN=0,6,"a","b","c","d","e","f"', errcode(0x01070000)),
        ('AT+MQTTALPN=0,"1","a"', errcode(0x01050000)),
        ('AT+MQTTALPN=0,2,"a"', mqtt_err(0x6008)),
        ('AT+MQTTALPN=0,1,"a","b"', mqtt_err(0x6008)),
        ("AT+MQTTALPN=0,1,a", errcode(0x01050000)),
        ('AT+MQTTALPN=0,1,""', errcode(0x01070000)),
        ('AT+MQTTALPN=0,5,"a","b","c","d","e"', OK),
        ("AT+MQTTLONGCLIENTID=1,10", mqtt_err(0x6011)),
        ("AT+MQTTLONGCLIENTID=0,0", mqtt_err(0x6016)),
        ("AT+MQTTLONGCLIENTID=0,1025", mqtt_err(0x6016)),
        ('AT+MQTTLONGCLIENTID=0,"5"', mqtt_err(0x6014)),
        ("AT+MQTTLONGCLIENTID=0,5,1", mqtt_err(0x6008)),
        ("AT+MQTTLONGUSERNAME=0,1025", mqtt_err(0x6019)),
        ("AT+MQTTLONGUSERNAME=0,", mqtt_err(0x6017)),
        ("AT+MQTTLONGPASSWORD=0,1025", mqtt_err(0x601C)),
        ("AT+MQTTLONGPASSWORD=0,x", mqtt_err(0x601A)),
        ('AT+MQTTCONNCFG=0,60,0,"","",0,0', OK),  # state 2 still takes LONG* and ALPN
        ('AT+MQTTALPN=0,1,"mqtt"', OK),
    ])
    port.cmd("AT+MQTTLONGCLIENTID=0,4")
    port.expect(PROMPT)
    port.send(b"a\r\nb")
    port.expect(OK)
    port.cmd("AT+MQTTUSERCFG?")
    port.expect(b'+MQTTUSERCFG:0,1,"a\r\nb","user","***",0,0,""\r\n' + OK)


def test_conn_validation_order(start_w800):
    _, port = start_w800()
    syslog_on(port)
    host = "h" * 129
    check(port, [
        ('AT+MQTTCONN=0,"h",1883,1', mqtt_err(0x6001)),
        (USERCFG_OK, OK),
        ('AT+MQTTCONN=1,"h",1883,1', mqtt_err(0x6011)),
        ('AT+MQTTCONN=0,"",70000,2', mqtt_err(0x603B)),
        ('AT+MQTTCONN=0,h,1883,1', mqtt_err(0x603A)),
        ('AT+MQTTCONN=0,"%s",1883,1' % host, mqtt_err(0x603C)),
        ('AT+MQTTCONN=0,"a b",1883,1', mqtt_err(0x6052)),
        ('AT+MQTTCONN=0,"h/x",1883,1', mqtt_err(0x6052)),
        ('AT+MQTTCONN=0,"h","1883",1', mqtt_err(0x603D)),
        ('AT+MQTTCONN=0,"h",65536,2', mqtt_err(0x603E)),
        ('AT+MQTTCONN=0,"h",1883,2', mqtt_err(0x6040)),
        ('AT+MQTTCONN=0,"h",1883,"1"', mqtt_err(0x603F)),
        ('AT+MQTTCONN=0,"h",1883', mqtt_err(0x603F)),
        ('AT+MQTTCONN=0,"h",1883,1,100', errcode(0x01070000)),
        ('AT+MQTTCONN=0,"h",1883,1,5000,1', mqtt_err(0x6008)),
        # not connected: the link commands
        ('AT+MQTTPUB=0,"t","d",0,0', mqtt_err(0x6006)),
        ('AT+MQTTPUB=1,"t","d",0,0', mqtt_err(0x6011)),
        ('AT+MQTTPUBRAW=0,"t",5,0,0', mqtt_err(0x6006)),
        ('AT+MQTTSUB=0,"t",0', mqtt_err(0x6006)),
        ('AT+MQTTUNSUB=0,"t"', mqtt_err(0x6006)),
        ("AT+MQTTCLEAN=1", mqtt_err(0x6011)),
        ("AT+MQTTCLEAN=0,1", mqtt_err(0x6008)),
        ("AT+MQTTCLEAN=0", OK),
        ("AT+MQTTCLEAN=0", mqtt_err(0x6003)),
    ])


def test_clean_idle_knob(start_w800):
    _, port = start_w800(clean_idle_ok=True)
    check(port, [("AT+MQTTCLEAN=0", OK), ("AT+MQTTCLEAN=1", ERROR)])


def test_legacy_string_aliases(start_w800):
    _, port = start_w800()
    check(port, [
        ('AT+MQTTCLIENTID=0,"legacy"', ERROR),
        (USERCFG_OK, OK),
        ('AT+MQTTCLIENTID=0,"legacy"', OK),
        ('AT+MQTTUSERNAME=0,"lu"', OK),
        ('AT+MQTTPASSWORD=0,"lp"', OK),
        ("AT+MQTTUSERCFG?", b'+MQTTUSERCFG:0,1,"legacy","lu","***",0,0,""\r\n' + OK),
    ])


# ---------------------------------------------------------------- validation, connected


def test_validation_while_connected(start_w800, mosquitto):
    broker = mosquitto()
    _, port = start_w800()
    syslog_on(port)
    connect(port, broker.port)
    check(port, [
        (USERCFG_OK, mqtt_err(0x6002)),
        ('AT+MQTTCONNCFG=0,60,0,"","",0,0', mqtt_err(0x6002)),
        ('AT+MQTTALPN=0,1,"mqtt"', mqtt_err(0x6002)),
        ("AT+MQTTLONGPASSWORD=0,5", mqtt_err(0x6002)),
        ('AT+MQTTCONN=0,"127.0.0.1",%d,1' % broker.port, mqtt_err(0x6004)),
        ('AT+MQTTPUB=0,"","d",0,0', mqtt_err(0x6042)),
        ('AT+MQTTPUB=0,t,"d",0,0', mqtt_err(0x6041)),
        ('AT+MQTTPUB=0,"%s","d",0,0' % ("t" * 129), mqtt_err(0x6043)),
        ('AT+MQTTPUB=0,"t",d,3,2', mqtt_err(0x6044)),
        ('AT+MQTTPUB=0,"t","d",3,2', mqtt_err(0x6048)),
        ('AT+MQTTPUB=0,"t","d","0",0', mqtt_err(0x6047)),
        ('AT+MQTTPUB=0,"t","d",0,2', mqtt_err(0x604A)),
        ('AT+MQTTPUB=0,"t","d",0', mqtt_err(0x6049)),
        ('AT+MQTTPUB=0,"t","d",0,0,0', mqtt_err(0x6008)),
        ('AT+MQTTPUB=0,"a/#","d",0,0', mqtt_err(0x600C)),  # libmosquitto refuses: publish failed
        ('AT+MQTTPUB=0,"t","",0,0', OK),
        ('AT+MQTTPUBRAW=0,"t",0,0,0', mqtt_err(0x604C)),
        ('AT+MQTTPUBRAW=0,"t",5761,0,0', mqtt_err(0x604C)),
        ('AT+MQTTPUBRAW=0,"t","5",0,0', mqtt_err(0x604B)),
        ('AT+MQTTPUBRAW=0,"",5,3,0', mqtt_err(0x6042)),
        ('AT+MQTTPUBRAW=0,"t",5,0,0,1', mqtt_err(0x6008)),
        ('AT+MQTTSUB=0,"",0', mqtt_err(0x6042)),
        ('AT+MQTTSUB=0,"t",3', mqtt_err(0x6048)),
        ('AT+MQTTSUB=0,"t"', mqtt_err(0x6047)),
        ('AT+MQTTSUB=0,"t",0,0', mqtt_err(0x6008)),
        ('AT+MQTTSUB=0,"a/#/b",0', mqtt_err(0x600D)),
        ('AT+MQTTUNSUB=0,""', mqtt_err(0x6042)),
        ('AT+MQTTUNSUB=0,"t",0', mqtt_err(0x6008)),
    ])


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("w800,message", [
    ({"error_style": "loud"}, 'modules[0].w800.error_style: must be "esp-at" or "w800"'),
    ({"ca_file": "/nonexistent/ca.pem"}, "modules[0].w800.ca_file: cannot read /nonexistent/ca.pem"),
    ({"client_cert": "/etc/hostname"},
     "modules[0].w800.client_key: client_cert and client_key go together"),
    ({"reconnect_interval_ms": 5}, "modules[0].w800.reconnect_interval_ms: must be an integer "
                                   "between 100 and 3600000"),
    ({"clean_idle_ok": 1}, "modules[0].w800.clean_idle_ok: must be true or false"),
    ({"bogus": 1}, "modules[0].w800.bogus: unknown key"),
])
def test_config_errors(run_vmoduled, tmp_path, w800, message):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"state_dir": str(tmp_path / "st"), "modules": [
        {"name": "a", "dialect": "w800", "pty_link": str(tmp_path / "tty"), "w800": w800}]}))
    cp = run_vmoduled(["-c", cfg])
    assert cp.returncode == 2
    assert cp.stderr == "vmoduled: config: %s\n" % message
    assert not (tmp_path / "tty").exists()


def test_passwords_never_reach_trace_log_or_replies(start_w800, tmp_path):
    """USERCFG, the legacy MQTTPASSWORD and the LONGPASSWORD data phase: the
    password is redacted in the trace, absent from the debug log, and
    AT+MQTTUSERCFG? shows "***" for it."""
    trace = tmp_path / "w8.trace"
    d, port = start_w800(daemon_kw={"log_level": "debug"}, module={"trace": str(trace)})
    ok(port, 'AT+MQTTUSERCFG=0,1,"w8","user","pw-usercfg-1",0,0,""')
    ok(port, 'AT+MQTTPASSWORD=0,"pw-legacy-2"')
    port.cmd("AT+MQTTLONGPASSWORD=0,12")
    port.expect(PROMPT)
    port.send(b"pw-longpw-3!")
    port.expect(OK)
    port.cmd("AT+MQTTUSERCFG?")
    port.expect(b'+MQTTUSERCFG:0,1,"w8","user","***",0,0,""\r\n' + OK)
    text = trace.read_text()
    assert 'AT+MQTTUSERCFG=0,1,\\"w8\\",\\"user\\",\\"***\\"' in text or \
        'AT+MQTTUSERCFG=0,1,"w8","user","***"' in text, text
    assert "<data 12 bytes, secret: ok>" in text, text
    for secret in ("pw-usercfg-1", "pw-legacy-2", "pw-longpw-3"):
        assert secret not in text
        assert secret not in d.log_text()
