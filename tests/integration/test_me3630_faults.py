"""test_me3630_faults.py - AT+CLOUDCONN when the network fails (issue 9),
for the me3630 `tcp` and `tls` transports, against the peers of faults.py.

Reference §8.2: CLOUDCONN blocks until CONNACK; a refusal or a timeout is
`+CME ERROR: <n>` with 100 ("unknown"), the one code the dialect gives every
failed connect (ME_E_SERVER in me3630.h). Refused, reset and unreachable
connects answer at once; a silent peer at aliyun.connect_timeout_ms. The
module stays usable afterwards: not connected (CLOUDSTATE 0), the
authentication still held, so CLOUDCONN can be tried again, and AT+CMEE
chooses how the error reads (0: ERROR, 2: text)."""

import time

import pytest

from faults import KINDS, assert_failed_in_time, fault_peer  # noqa: F401  (fixture)
from test_me3630_cloud import AUTH, OK, attach, cmd, me_module, state

TIMEOUT_MS = 2000  # aliyun.connect_timeout_ms for the silent peer
CME_100 = b"\r\n+CME ERROR: 100\r\n"


def timed_cmd(port, line, reply, wait=10.0):
    t0 = time.monotonic()
    cmd(port, line, reply, timeout=wait)
    return time.monotonic() - t0


# What the peer must have seen before it reset the connection.
FIRST_BYTES = {"tcp": b"\x10", "tls": b"\x16\x03"}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_cloudconn_failure_code_and_timing(make_daemon, tmp_path, certs, fault_peer, transport,
                                           kind):
    host, peer_port, srv = fault_peer(kind)
    aliyun = {"transport": transport, "mqtt_host": host, "connect_timeout_ms": TIMEOUT_MS,
              "ca_file": str(certs / "ca.crt")}
    d = make_daemon([me_module(tmp_path, peer_port, aliyun=aliyun)])
    port = d.port()
    attach(port)
    cmd(port, AUTH, OK + b"\r\n+ALIAUTH: OK\r\n")
    took = timed_cmd(port, "AT+CLOUDCONN", CME_100)
    assert_failed_in_time(kind, took, TIMEOUT_MS, srv, FIRST_BYTES[transport])
    state(port, 0)
    if kind == "silent":
        return
    # still authenticated: again, with the other AT+CMEE forms
    for cmee, reply in ((2, b"\r\n+CME ERROR: unknown\r\n"), (0, b"\r\nERROR\r\n")):
        cmd(port, "AT+CMEE=%d" % cmee, OK)
        took = timed_cmd(port, "AT+CLOUDCONN", reply)
        assert_failed_in_time(kind, took, TIMEOUT_MS, srv, FIRST_BYTES[transport])
    state(port, 0)
