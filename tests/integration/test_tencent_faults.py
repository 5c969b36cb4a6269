"""test_tencent_faults.py - AT+TCMQTTCONN when the network fails, for each
transport (tcp, tls-psk, tls), and name resolution under a hosts file of the
test's own (issue 9).

What the firmware prints, read from the v2.1.1 image and the v2.2.0 QCloud
AT objects (tencent.h, TC_RC_SSL_CONNECT): over TLS every failure before the
handshake completes (lookup, refused, unreachable, reset, handshake) is
+TCMQTTCONN:FAIL,-703; over plain TCP (the SDK's network_tcp_connect) it is
-1, and a link closed before CONNACK is -608. A server that never answers
ends with the AT command's own wait: FAIL,202. Each failure is seen when it
happens, not at a timeout.

The peers (faults.py) are on loopback only; the daemon gets its own hosts
file through a private mount namespace, whatever /etc/hosts says."""

import base64
import os
import resource
import time

import pytest

from conftest import TEST_HOST
from faults import (UNREACHABLE_V4, ResetServer, SilentServer, closed_port, gai_file, hosts_file,
                    needs_v6)
from test_tencent_mqtt import JOINED, PID, DN, SECRET, provision, tc_module

TRANSPORTS = ["tcp", "tls-psk", "tls"]
CONNECT_FAIL = {"tcp": -1, "tls-psk": -703, "tls": -703}
PROMPT = 1.5  # seconds: a failure the kernel reports at once is answered at once


def broker_for(mosquitto, tmp_path, certs, transport, host="127.0.0.1"):
    """A mosquitto listener on host that accepts this module over transport."""
    if transport == "tls-psk":
        psk = tmp_path / "psk.txt"
        psk.write_text("%s%s:%s\n" % (PID, DN, base64.b64decode(SECRET).hex()))
        return mosquitto(listeners=[{"host": host, "psk_hint": "vmodule"}],
                         options={"psk_file": str(psk)})
    listener = {"host": host}
    if transport == "tls":
        listener.update(cafile=str(certs / "ca.crt"), certfile=str(certs / "server.crt"),
                        keyfile=str(certs / "server.key"))
    return mosquitto(listeners=[listener])


def module(tmp_path, certs, transport, host, port):
    extra = {"ca_file": str(certs / "ca.crt")} if transport == "tls" else {}
    return tc_module(tmp_path, port, transport=transport, mqtt_host=host, **extra)


def start(make_daemon, tmp_path, certs, transport, host, port, hosts=None, gai=None):
    daemon = make_daemon([module(tmp_path, certs, transport, host, port)], log_level="debug",
                         hosts=hosts, gai=gai)
    port_ = daemon.port()
    port_.expect(JOINED)
    provision(port_)
    return daemon, port_


def conn(port, timeout_ms):
    """Sends AT+TCMQTTCONN and returns the monotonic time it was sent."""
    port.cmd("AT+TCMQTTCONN=1,%d,240,1,1" % timeout_ms)
    return time.monotonic()


# ------------------------------------------------------------------ connect failures


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_refused_connect_fails_at_once(make_daemon, tmp_path, certs, transport):
    daemon, port = start(make_daemon, tmp_path, certs, transport, "127.0.0.1", closed_port())
    sent = conn(port, 10000)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % CONNECT_FAIL[transport], PROMPT)
    assert time.monotonic() - sent < PROMPT
    assert "Connection refused" in daemon.wait_log("mqtt: connect to 127.0.0.1")
    # the attempt is over: the next one may start
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(b"+TCMQTTSTATE:0\r\n\r\nOK\r\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unreachable_address_fails_at_once(make_daemon, tmp_path, certs, transport):
    daemon, port = start(make_daemon, tmp_path, certs, transport, UNREACHABLE_V4, 1883)
    sent = conn(port, 10000)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % CONNECT_FAIL[transport], PROMPT)
    assert time.monotonic() - sent < PROMPT
    assert "Network is unreachable" in daemon.wait_log("mqtt: connect to " + UNREACHABLE_V4)


@pytest.mark.parametrize("transport,code", [("tcp", -608), ("tls-psk", -703), ("tls", -703)])
def test_reset_after_accept_fails_at_once(make_daemon, tmp_path, certs, transport, code):
    """The server accepts, reads the first bytes (MQTT CONNECT or the TLS
    ClientHello) and resets the connection."""
    server = ResetServer(read_first=1)
    try:
        daemon, port = start(make_daemon, tmp_path, certs, transport, "127.0.0.1", server.port)
        sent = conn(port, 10000)
        port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % code, PROMPT)
        assert time.monotonic() - sent < PROMPT
        assert server.accepted == 1
    finally:
        server.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_silent_server_ends_with_the_command_timeout(make_daemon, tmp_path, certs, transport):
    server = SilentServer()
    try:
        daemon, port = start(make_daemon, tmp_path, certs, transport, "127.0.0.1", server.port)
        sent = conn(port, 1500)
        port.expect(b"OK\r\n+TCMQTTCONN:FAIL,202\r\n", 4)
        assert 1.4 < time.monotonic() - sent < 2.5
    finally:
        server.close()


def test_tls_psk_offers_the_firmware_cipher_suites(make_daemon, tmp_path, certs):
    """The SDK's TLS layer offers exactly TLS_PSK_WITH_AES_128_CBC_SHA (0x008C)
    and TLS_PSK_WITH_AES_256_CBC_SHA (0x008D), in that order; OpenSSL adds the
    renegotiation SCSV (0x00FF) as mbedtls does. The ClientHello is read off
    the wire by a server that then resets the connection."""
    server = ResetServer(read_first=1)
    try:
        daemon, port = start(make_daemon, tmp_path, certs, "tls-psk", "127.0.0.1", server.port)
        conn(port, 5000)
        port.expect(b"OK\r\n+TCMQTTCONN:FAIL,-703\r\n", PROMPT)
    finally:
        server.close()
    hello = server.received[0]
    assert hello[0] == 0x16 and hello[5] == 0x01, "not a ClientHello: %r" % hello[:8]
    at = 5 + 4 + 2 + 32  # record header, handshake header, version, random
    at += 1 + hello[at]  # session id
    n = int.from_bytes(hello[at:at + 2], "big")
    suites = [int.from_bytes(hello[at + 2 + i:at + 4 + i], "big") for i in range(0, n, 2)]
    assert suites == [0x008C, 0x008D, 0x00FF]


# ------------------------------------------------------------------ every address of a name


@needs_v6
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("first,broker_on", [("::1", "127.0.0.1"), ("127.0.0.1", "::1")])
def test_name_with_two_addresses_reaches_the_one_that_listens(make_daemon, mosquitto, tmp_path,
                                                              certs, transport, first, broker_on):
    """Debian's stock hosts file makes localhost ::1 first: a broker that
    listens on one family only is reached through the other address, at once
    (the first is refused), over every transport, TLS host check included.
    The resolver's order is set with gai.conf (it sorts whatever the hosts
    file says); the refused first attempt in the log proves it."""
    broker = broker_for(mosquitto, tmp_path, certs, transport, host=broker_on)
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["::1", "127.0.0.1"]})
    gai = gai_file(tmp_path / "gai.conf", prefer_ipv4=first == "127.0.0.1")
    daemon, port = start(make_daemon, tmp_path, certs, transport, TEST_HOST, broker.port, hosts,
                         gai)
    sent = conn(port, 5000)
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", PROMPT)
    assert time.monotonic() - sent < PROMPT
    daemon.wait_log("mqtt: TCP connect to %s failed: Connection refused" % first)
    assert "(%s, %s)" % (broker_on, transport) in daemon.wait_log("mqtt: connected to " + TEST_HOST)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_silent_first_address_gets_only_its_share_of_the_timeout(make_daemon, mosquitto, tmp_path,
                                                                  certs, transport):
    """127.0.0.4 drops the SYNs (a host that is down), 127.0.0.5 is the
    broker: the silent address gets half of the connect budget, then the next
    one connects, well inside the 4 s AT+TCMQTTCONN wait. (Two addresses
    equally far from our 127.0.0.1: getaddrinfo keeps their order.)"""
    broker = broker_for(mosquitto, tmp_path, certs, transport, host="127.0.0.5")
    silent = SilentServer("127.0.0.4", broker.port)
    try:
        hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.4", "127.0.0.5"]})
        daemon, port = start(make_daemon, tmp_path, certs, transport, TEST_HOST, broker.port,
                             hosts)
        sent = conn(port, 4000)
        port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 4.5)
        # the first attempt's budget is the command's 4 s + 1 s: a half each
        assert 2.0 < time.monotonic() - sent < 3.5
        daemon.wait_log("mqtt: no answer from 127.0.0.4 in its share of the timeout")
    finally:
        silent.close()


def test_suite_hosts_file_is_the_daemons_own(make_daemon, mosquitto, tmp_path, certs):
    """The daemon resolves through the hosts file it was given, not the
    machine's: a name only that file knows connects."""
    broker = broker_for(mosquitto, tmp_path, certs, "tcp")
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1"]})
    with open("/etc/hosts") as f:
        assert TEST_HOST not in f.read()
    daemon, port = start(make_daemon, tmp_path, certs, "tcp", TEST_HOST, broker.port, hosts)
    conn(port, 5000)
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


# ------------------------------------------------------------------ reconnection


@pytest.mark.parametrize("transport", ["tcp", "tls-psk"])
def test_reconnects_at_the_next_attempt_after_the_broker_is_back(make_daemon, mosquitto, tmp_path,
                                                                 certs, transport):
    """Broker killed, back 2 s later: the attempts made while it was down fail
    at once (refused), so the module reconnects at its next scheduled attempt,
    within one back-off step (at most 3.98 s) plus 1 s of the broker's return."""
    broker = broker_for(mosquitto, tmp_path, certs, transport)
    daemon, port = start(make_daemon, tmp_path, certs, transport, "127.0.0.1", broker.port)
    conn(port, 5000)
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")
    broker.kill()
    port.expect(b"+TCMQTTDISCON,-103\r\n", 5)
    time.sleep(2)  # the outage itself is what this test is about
    broker.start()
    back = time.monotonic()
    port.read_until(b"+TCMQTTRECONNECTED\r\n", 6)
    assert time.monotonic() - back < 3.98 + 1


# ------------------------------------------------------------------ out of descriptors


def first_free_fd(pid):
    used = {int(n) for n in os.listdir("/proc/%d/fd" % pid)}
    return next(i for i in range(len(used) + 1) if i not in used)


@pytest.mark.parametrize("transport", ["tcp", "tls-psk"])
def test_out_of_descriptors_is_reported_as_such(make_daemon, mosquitto, tmp_path, certs,
                                                transport):
    """With no descriptor left, the connect fails as the firmware's failed
    socket() does (the transport's connect code) and the log names EMFILE and
    the module, never "connection closed"; with descriptors back it works."""
    broker = broker_for(mosquitto, tmp_path, certs, transport)
    daemon, port = start(make_daemon, tmp_path, certs, transport, "127.0.0.1", broker.port)
    pid = daemon.proc.pid
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    limit = first_free_fd(pid)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, old[1]))  # soft only: root may lack CAP_SYS_RESOURCE
    conn(port, 5000)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % CONNECT_FAIL[transport], PROMPT)
    line = daemon.wait_log("Too many open files (EMFILE)")
    assert line.split()[1:3] == ["WARN", "[tc0]"], line
    assert "connection closed" not in daemon.log_text()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
    conn(port, 5000)
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unresolvable_name_fails_at_once(make_daemon, tmp_path, certs, transport):
    """A name the resolver does not know (the daemon's resolver reads its own
    hosts file only): over TLS the firmware's HAL only logs its -602 and the
    connect returns -703; over TCP -1."""
    hosts = hosts_file(tmp_path / "hosts", {TEST_HOST: ["127.0.0.1"]})
    daemon, port = start(make_daemon, tmp_path, certs, transport, "nowhere.vmodule.test", 1883,
                         hosts)
    sent = conn(port, 10000)
    port.expect(b"OK\r\n+TCMQTTCONN:FAIL,%d\r\n" % CONNECT_FAIL[transport], PROMPT)
    assert time.monotonic() - sent < PROMPT
    assert "DNS lookup failed" in daemon.wait_log("mqtt: connect to nowhere.vmodule.test")
