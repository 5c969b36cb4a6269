"""test_w800_tls.py - W800 schemes 2-5 (MQTT over TLS) against real mosquitto
TLS listeners: no verification, server verified with the configured CA
(w800.ca_file; needs the SNTP clock), client certificate (w800.client_cert,
w800.client_key), both; a wrong CA and a missing client certificate fail as
on the module (+MQTTDISCONNECTED:0 then ERROR); the ClientHello carries SNI and
the AT+MQTTALPN names (seen by `openssl s_server`)."""

import re
import subprocess

import pytest

from conftest import free_port, wait_for
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, ERROR, OK, connect, ok, sntp_sync, start_w800, subrecv, tls_listener, w8_certs,
    w8_peers)


@pytest.fixture
def tls_broker(mosquitto, w8_certs):
    """Plain listener (for the peers), TLS, and TLS requiring a client certificate."""
    return mosquitto(listeners=[{"name": "plain"}, tls_listener(w8_certs, "tls"),
                                tls_listener(w8_certs, "mtls", require_cert=True)])


def roundtrip(port, broker, peers, tag):
    """Subscribe, publish, receive through the broker."""
    peer = peers(broker.port_of("plain"), "from/%s" % tag)
    ok(port, 'AT+MQTTSUB=0,"to/%s",1' % tag)
    ok(port, 'AT+MQTTPUB=0,"from/%s","hi %s",1,0' % (tag, tag))
    assert peer.wait_msgs(1) == [("from/%s" % tag, b"hi " + tag.encode(), False)]
    peer.publish("to/%s" % tag, b"\x00back\xff")
    port.expect(subrecv("to/%s" % tag, b"\x00back\xff"))


def certs_conf(certs, ca="ca.crt", client=True):
    conf = {"ca_file": str(certs / ca)}
    if client:
        conf.update(client_cert=str(certs / "client.crt"), client_key=str(certs / "client.key"))
    return conf


def test_scheme_2_tls_without_verification(start_w800, tls_broker, w8_peers):
    _, port = start_w800()  # no CA, no time needed
    connect(port, tls_broker.port_of("tls"), scheme=2)
    roundtrip(port, tls_broker, w8_peers, "s2")


def test_scheme_3_verifies_the_server(start_w800, tls_broker, w8_peers, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs, client=False))
    sntp_sync(port)
    connect(port, tls_broker.port_of("tls"), scheme=3, host="localhost")
    roundtrip(port, tls_broker, w8_peers, "s3")
    ok(port, "AT+MQTTCLEAN=0")
    connect(port, tls_broker.port_of("tls"), scheme=3, host="127.0.0.1")  # IP in the SAN


def test_scheme_3_needs_the_clock(start_w800, tls_broker, w8_certs):
    d, port = start_w800(**certs_conf(w8_certs, client=False))
    ok(port, 'AT+MQTTUSERCFG=0,3,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % tls_broker.port_of("tls"))
    port.expect(DISC + ERROR)
    d.wait_log("has no time yet")
    sntp_sync(port)
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % tls_broker.port_of("tls"))
    port.expect(b'+MQTTCONNECTED:0,3,"localhost","%d","",1\r\n' % tls_broker.port_of("tls") + OK)


def test_scheme_3_clock_check_can_be_disabled(start_w800, tls_broker, w8_certs):
    _, port = start_w800(require_sntp=False, **certs_conf(w8_certs, client=False))
    connect(port, tls_broker.port_of("tls"), scheme=3, host="localhost")


def test_scheme_3_with_a_wrong_ca_fails(start_w800, tls_broker, w8_certs):
    d, port = start_w800(**certs_conf(w8_certs, ca="other.crt", client=False))
    sntp_sync(port)
    ok(port, 'AT+MQTTUSERCFG=0,3,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % tls_broker.port_of("tls"))
    port.expect(DISC + ERROR)
    port.cmd("AT+MQTTCONN?")
    port.expect(b'+MQTTCONN:0,2,3,"","","",0\r\n' + OK)
    # scheme 2 does not look at the certificate
    ok(port, 'AT+MQTTUSERCFG=0,2,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % tls_broker.port_of("tls"))
    port.expect(b'+MQTTCONNECTED:0,2,"localhost","%d","",1\r\n' % tls_broker.port_of("tls") + OK)


def test_scheme_4_client_certificate(start_w800, tls_broker, w8_peers, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs, ca="other.crt"))  # CA unused by scheme 4
    connect(port, tls_broker.port_of("mtls"), scheme=4)
    roundtrip(port, tls_broker, w8_peers, "s4")


def test_scheme_4_without_a_client_certificate_is_refused(start_w800, tls_broker, mosquitto):
    d, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,4,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"127.0.0.1",%d,1' % tls_broker.port_of("mtls"))
    port.expect(DISC + ERROR)
    d.wait_log("no w800.client_cert configured")
    wait_for(lambda: "certificate" in tls_broker.log_text(), 5, "the broker's TLS refusal")


def test_scheme_5_both(start_w800, tls_broker, w8_peers, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs))
    sntp_sync(port)
    connect(port, tls_broker.port_of("mtls"), scheme=5, host="localhost")
    roundtrip(port, tls_broker, w8_peers, "s5")


def test_scheme_5_with_a_wrong_ca_fails(start_w800, tls_broker, w8_certs):
    _, port = start_w800(**certs_conf(w8_certs, ca="other.crt"))
    sntp_sync(port)
    ok(port, 'AT+MQTTUSERCFG=0,5,"w8","","",0,0,""')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,1' % tls_broker.port_of("mtls"))
    port.expect(DISC + ERROR)


# ---------------------------------------------------------------- ClientHello


class SServer:
    """`openssl s_server`: shows the SNI and ALPN list a client offers, and
    prints what it receives."""

    def __init__(self, certs, workdir):
        self.port = free_port()
        self.out = workdir / "s_server.out"
        with open(self.out, "wb") as f:
            self.proc = subprocess.Popen(
                ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port,
                 "-cert", str(certs / "server.crt"), "-key", str(certs / "server.key"),
                 "-alpn", "mqtt", "-trace"],
                stdin=subprocess.PIPE, stdout=f, stderr=subprocess.STDOUT)
        wait_for(lambda: b"ACCEPT" in self.out.read_bytes(), 5, "s_server to listen")

    def text(self):
        return self.out.read_bytes().decode("latin-1")

    def wait(self, what, timeout=5):
        return wait_for(lambda: what in self.text(), timeout, "s_server output %r" % what)

    def wait_sni(self, name, timeout=5):
        """The ClientHello's server_name extension (hex dump of -trace)."""
        rx = re.compile(r"extension_type=server_name\(0\), length=\d+\n\s+0000 - [^\n]*\.%s\n"
                        % re.escape(name))
        return wait_for(lambda: rx.search(self.text()), timeout, "SNI %r at s_server" % name)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def s_server(w8_certs, tmp_path):
    s = SServer(w8_certs, tmp_path)
    yield s
    s.stop()


def test_sni_and_alpn_in_the_client_hello(start_w800, s_server):
    _, port = start_w800()
    ok(port, 'AT+MQTTUSERCFG=0,2,"w8","","",0,0,""')
    ok(port, 'AT+MQTTALPN=0,2,"mqtt","x-vm"')
    port.cmd('AT+MQTTCONN=0,"localhost",%d,0,3000' % s_server.port)
    s_server.wait_sni("localhost")
    s_server.wait("ALPN protocols advertised by the client: mqtt, x-vm\n")
    port.expect(DISC + ERROR, timeout=6)  # s_server never answers CONNECT
