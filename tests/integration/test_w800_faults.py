"""test_w800_faults.py - AT+MQTTCONN when the network fails (issue 9), for
W800 schemes 1 (tcp), 2 (TLS, no verification), 6 (ws) and 7 (wss, no
verification), against the peers of faults.py:

- refused, reset and unreachable connects answer at once, a silent one at
  the command's own timeout (its 5th parameter), never earlier and never at
  the 15 s default; the bytes are those of reference §5.5,
  +MQTTDISCONNECTED:0 then ERROR (the ERR CODE line, 0x010a600b
  CLIENT_START_FAILED, only after AT+SYSLOG=1), and AT+MQTTCONN? shows
  state 2 afterwards;
- names with several addresses, through a hosts file in the daemon's own
  mount namespace (conftest.Daemon(hosts=...)): whichever address family
  comes first, the one the broker listens on is found at once; a silent
  first address costs its share of the timeout (half of it for two
  addresses), not all of it.

mosquitto 2.0.11 binds a websockets listener to every address unless it
is told `socket_domain ipv4` (then it binds the IPv4 address it is given) or
given "::1" (then it binds ::1 only); the tests use both, and still run in a
private network namespace (test_w800_support.private_network) like
test_w800_ws.py."""

import os
import re
import resource
import time

import pytest

from conftest import TEST_HOST
from faults import needs_v6
from faults import (  # noqa: F401  (fixture)
    KINDS, PROMPT_S, SilentServer, assert_failed_in_time, fault_peer, gai_file, hosts_file)
from test_w800_support import (  # noqa: F401  (fixtures)
    DISC, ERROR, OK, connected_urc, mqtt_err, ok, private_network, sntp_sync, start_w800,
    w8_peers)

SCHEMES = {"tcp": 1, "tls": 2, "ws": 6, "wss": 7}
TIMEOUT_MS = 3000      # AT+MQTTCONN's 5th parameter (its minimum) for the silent peer
START_FAILED = 0x600B  # ERR CODE extension of a failed MQTTCONN


def usercfg(port, scheme, path="mqtt"):
    ok(port, 'AT+MQTTUSERCFG=0,%d,"w8","","",0,0,"%s"' % (scheme, path if scheme >= 6 else ""))


def idle_line(scheme):
    return b'+MQTTCONN:0,2,%d,"","","",0\r\n' % scheme + OK


def timed_conn(port, host, peer_port, expected, timeout_ms=TIMEOUT_MS, wait=20.0):
    """AT+MQTTCONN with the 5th parameter; expects `expected` and returns the
    seconds from the command to its last byte."""
    t0 = time.monotonic()
    port.cmd('AT+MQTTCONN=0,"%s",%d,1,%d' % (host, peer_port, timeout_ms))
    port.expect(expected, timeout=wait)
    return time.monotonic() - t0


# ---------------------------------------------------------------- failures


# What the peer must have seen before it reset the connection.
FIRST_BYTES = {1: b"\x10", 2: b"\x16\x03", 6: b"GET /mqtt HTTP/1.1\r\n", 7: b"\x16\x03"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transport", list(SCHEMES))
def test_conn_failure_bytes_and_timing(start_w800, fault_peer, transport, kind):
    scheme = SCHEMES[transport]
    host, peer_port, srv = fault_peer(kind)
    _, port = start_w800()
    usercfg(port, scheme)
    took = timed_conn(port, host, peer_port, DISC + ERROR)
    assert_failed_in_time(kind, took, TIMEOUT_MS, srv, FIRST_BYTES[scheme])
    port.cmd("AT+MQTTCONN?")
    port.expect(idle_line(scheme))
    if kind == "silent":
        return
    # from state 2 again, with the error code shown
    ok(port, "AT+SYSLOG=1")
    took = timed_conn(port, host, peer_port, DISC + mqtt_err(START_FAILED))
    assert_failed_in_time(kind, took, TIMEOUT_MS, srv, FIRST_BYTES[scheme])
    port.cmd("AT+MQTTCONN?")
    port.expect(idle_line(scheme))


# ---------------------------------------------------------------- names with several addresses

# glibc sorts what a name resolves to (RFC 6724), whatever the order of the
# hosts file: ::1 comes before any IPv4 address, and 127.0.0.1 before any
# other IPv4 loopback address (it shares the longest prefix with the source
# address). A gai.conf that prefers IPv4, as some sites configure
# (faults.gai_file()), puts 127.0.0.1 before ::1; 127.0.0.2 and 127.0.0.3
# tie, so they keep the hosts file's order.

# what the name resolves to, whether IPv4 is preferred, where the broker
# listens, and the dead address the daemon must try first
ORDERS = {
    "ipv6-first": (["::1", "127.0.0.1"], False, "127.0.0.1", "::1"),
    "ipv4-first": (["127.0.0.1", "::1"], True, "::1", "127.0.0.1"),
}
# transport -> (scheme, broker listener); 3 and 8 check the certificate
# against TEST_HOST
NAMED = {"tcp": (1, "tcp"), "tls-verify": (3, "tls"), "ws": (6, "ws"), "wss": (7, "wss"),
         "wss-verify": (8, "wss")}
TCP_FAILED = r"(mqtt|ws): (TCP )?connect to %s (port %d )?failed"
NO_ANSWER = r"(mqtt|ws): no answer from %s (port %d )?in its share of the timeout"


@pytest.fixture
def named_broker(mosquitto, certs):
    """named_broker(host) -> a broker whose tcp, tls, ws and wss listeners
    are on `host` only (its plain listener, for the peers, on 127.0.0.1)."""
    def make(host, ports=None):
        tls = {"cafile": str(certs / "ca.crt"), "certfile": str(certs / "server.crt"),
               "keyfile": str(certs / "server.key")}
        only = {} if ":" in host else {"socket_domain": "ipv4"}  # else: every address
        ws = dict(only, protocol="websockets")
        listeners = [{"name": "plain"}, {"name": "tcp", "host": host},
                     dict(tls, name="tls", host=host), dict(ws, name="ws", host=host),
                     dict(tls, name="wss", host=host, **ws)]
        for l in listeners:
            if ports and l["name"] in ports:
                l["port"] = ports[l["name"]]
        return mosquitto(listeners=listeners)
    return make


def start_named(start_w800, tmp_path, certs, names, prefer_ipv4=False):
    """A w800 module whose daemon resolves TEST_HOST to `names` (in that
    order in its hosts file), with the suite's CA and the clock set."""
    kw = {"hosts": hosts_file(tmp_path / "hosts", {TEST_HOST: names}), "log_level": "debug",
          "gai": gai_file(tmp_path / "gai.conf", prefer_ipv4)}
    d, port = start_w800(daemon_kw=kw, ca_file=str(certs / "ca.crt"))
    sntp_sync(port)
    return d, port


def conn_named(port, scheme, broker_port, expected_s, timeout_ms=TIMEOUT_MS):
    """AT+MQTTCONN to TEST_HOST; returns its duration."""
    usercfg(port, scheme)
    path = "/mqtt" if scheme >= 6 else ""
    return timed_conn(port, TEST_HOST, broker_port,
                      connected_urc(scheme, TEST_HOST, broker_port, path) + OK,
                      timeout_ms=timeout_ms, wait=expected_s + 5)


def publish_through(port, broker, w8_peers, tag):
    peer = w8_peers(broker.port_of("plain"), "up/%s" % tag)
    ok(port, 'AT+MQTTPUB=0,"up/%s","via %s",1,0' % (tag, tag))
    assert peer.wait_msgs(1) == [("up/%s" % tag, b"via " + tag.encode(), False)]


@needs_v6
@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("transport", list(NAMED))
def test_name_whose_first_address_refuses(start_w800, named_broker, w8_peers, certs, tmp_path,
                                          transport, order):
    names, prefer_ipv4, listen, dead = ORDERS[order]
    scheme, listener = NAMED[transport]
    broker = named_broker(listen)
    d, port = start_named(start_w800, tmp_path, certs, names, prefer_ipv4)
    p = broker.port_of(listener)
    took = conn_named(port, scheme, p, PROMPT_S)
    assert took < PROMPT_S, took
    d.wait_log(re.compile(TCP_FAILED % (re.escape(dead), p)))  # tried first, refused
    publish_through(port, broker, w8_peers, transport)


SILENT_FIRST_MS = 4000


@pytest.mark.parametrize("transport", ["tcp", "ws", "wss"])
def test_name_whose_first_address_is_silent(start_w800, named_broker, w8_peers, certs, tmp_path,
                                            transport):
    """The silent address gets half the timeout (time left / addresses
    left), then the next one connects: half the timeout plus what a connect
    to that address takes (measured first, by number)."""
    scheme, listener = NAMED[transport]
    silent = SilentServer("127.0.0.2")
    try:
        broker = named_broker("127.0.0.3", ports={listener: silent.port})
        d, port = start_named(start_w800, tmp_path, certs, ["127.0.0.2", "127.0.0.3"])
        usercfg(port, scheme)
        base = timed_conn(port, "127.0.0.3", silent.port,
                          connected_urc(scheme, "127.0.0.3", silent.port,
                                        "/mqtt" if scheme >= 6 else "") + OK)
        ok(port, "AT+MQTTCLEAN=0")
        half = SILENT_FIRST_MS / 2000
        took = conn_named(port, scheme, silent.port, half, timeout_ms=SILENT_FIRST_MS)
        assert half - 0.05 <= took <= half + base + 0.3, (took, base)  # not all of it
        d.wait_log(re.compile(NO_ANSWER % (re.escape("127.0.0.2"), silent.port)))
        publish_through(port, broker, w8_peers, transport)
    finally:
        silent.close()


# ---------------------------------------------------------------- out of descriptors


@pytest.mark.parametrize("transport", ["tcp", "ws"])
def test_out_of_descriptors_fails_like_a_socket_failure(start_w800, mosquitto, transport):
    """No descriptor left: AT+MQTTCONN fails as for any failed socket, at
    once, and the log names EMFILE and the module; with descriptors back the
    same command connects."""
    scheme = SCHEMES[transport]
    broker = mosquitto(listeners=[{}, {"name": "ws", "protocol": "websockets",
                                       "socket_domain": "ipv4"}])
    peer_port = broker.port if transport == "tcp" else broker.port_of("ws")
    daemon, port = start_w800()
    usercfg(port, scheme)
    pid = daemon.proc.pid
    old = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    used = {int(n) for n in os.listdir("/proc/%d/fd" % pid)}
    first_free = next(i for i in range(len(used) + 1) if i not in used)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (first_free, old[1]))  # soft only
    took = timed_conn(port, "127.0.0.1", peer_port, DISC + ERROR)
    assert took < PROMPT_S
    line = daemon.wait_log("Too many open files")
    assert line.split()[1:3] == ["WARN", "[%s]" % daemon.module()["name"]], line
    resource.prlimit(pid, resource.RLIMIT_NOFILE, old)
    path = "/mqtt" if transport == "ws" else ""
    timed_conn(port, "127.0.0.1", peer_port, connected_urc(scheme, "127.0.0.1", peer_port, path) + OK)
