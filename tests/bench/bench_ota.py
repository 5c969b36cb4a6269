"""bench_ota.py - P4 (issue 11): the tencent OTA download and read-out.

tencent_ota_download: a 4 MiB image from one local HTTPS server
(`vmodule-cloud ota push --serve-only`), fetched by the module (unpaced,
from +TCOTASTATUS:ENTERUPDATE to UPDATESUCCESS: TLS, the Range GET, the
threadpool writes, fsync, MD5 and the record) and by the `curl` command line
to /dev/null, alternating, median of 3 each. Target: module >= 0.9x curl.

tencent_ota_readout: AT+TCREADFWDATA=2048 of a 64 KiB image at 115200 baud
(8N1: 11,520 B/s on the wire) vs that wire limit. Target: within 5 %."""
import contextlib
import hashlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import bench_tencent  # noqa: E402
from bench_tencent import PID, DN, SECRET, Broker, expect  # noqa: E402

WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}


def start(run, work, broker_port, baud, ca):
    link = os.path.join(work, "ttyOTA")
    daemon = run.Daemon(run.vmoduled_path(), [{
        "name": "bench-ota", "dialect": "tencent", "pty_link": link, "baud": baud, "echo": False,
        "boot_ms": 0, "tx_buffer": 1 << 20,
        "tencent": {"chip": "esp32", "mqtt_transport": "tcp", "mqtt_host": "127.0.0.1",
                    "mqtt_port": broker_port, "wifi": WIFI, "ota_ca_file": ca}}], work)
    daemon.wait_linked()
    fd = run.open_serial(link)
    run.sync(fd)
    run.drain(fd)
    for line, reply in (
            (b'AT+TCMODINFOSET="bench",4,5,2621440,8388608,1', b"OK\r\n+TCMODINFOSET:OK\r\n"),
            (b'AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID.encode(), DN.encode(), SECRET.encode()),
             b"OK\r\n+TCDEVINFOSET:OK\r\n"),
            (b"AT+TCMQTTCONN=1,10000,240,1,1", b"OK\r\n+TCMQTTCONN:OK\r\n"),
            (b'AT+TCOTASET=1,"1.0.0"', b"OK\r\n+TCOTASET:OK\r\n")):
        os.write(fd, line + b"\r\n")
        expect(run, fd, reply)
    return daemon, fd


class Server:
    def __init__(self, work, data):
        from cloud import CloudTool  # noqa: E402  (tests/integration/cloud.py)
        path = os.path.join(work, "fw.bin")
        with open(path, "wb") as f:
            f.write(data)
        self.tool = CloudTool(["ota", "push", "--serve-only", path, "--cert-dir",
                               os.path.join(work, "certs")])
        ev = self.tool.wait_event("listening")
        self.url, self.ca = ev["url"], ev["ca"]

    def close(self):
        self.tool.close()


def push(broker_port, url, data, version):
    import paho.mqtt.publish as publish  # noqa: E402
    msg = json.dumps({"file_size": len(data), "md5sum": hashlib.md5(data).hexdigest(),
                      "type": "update_firmware", "url": url, "version": version},
                     separators=(",", ":"))
    publish.single("$ota/update/%s/%s" % (PID, DN), msg, qos=1, hostname="127.0.0.1",
                   port=broker_port)


@contextlib.contextmanager
def setup(run, data, baud):
    """A broker, ota push serving data, and one connected module listening
    for OTA at baud: yields (broker_port, server, fd); everything stopped after."""
    with tempfile.TemporaryDirectory(prefix="vmodule-bench.") as work:
        broker = Broker(run, work)
        srv = Server(work, data)
        daemon = fd = None
        try:
            daemon, fd = start(run, work, broker.port, baud, srv.ca)
            yield broker.port, srv, fd
        finally:
            if daemon:
                bench_tencent.stop_module(run, daemon, fd)
            srv.close()
            broker.stop()


def bench_download(run, args):
    data = os.urandom(4 << 20)
    mod, cli = [], []
    with setup(run, data, 0) as (broker_port, srv, fd):
        for i in range(3):
            t0 = time.monotonic()
            cp = subprocess.run(["curl", "-sS", "-o", "/dev/null", "--cacert", srv.ca, srv.url],
                                capture_output=True)
            if cp.returncode:
                raise run.BenchError("curl failed: " + cp.stderr.decode())
            cli.append(time.monotonic() - t0)
            push(broker_port, srv.url, data, "2.0.%d" % i)
            expect(run, fd, b"+TCOTASTATUS:ENTERUPDATE\r\n", 30)
            t0 = time.monotonic()
            expect(run, fd, b"+TCOTASTATUS:UPDATESUCCESS\r\n", 120)
            mod.append(time.monotonic() - t0)
            os.write(fd, b'AT+TCOTASET=1,"1.0.0"\r\n')  # the task ended: listen again
            expect(run, fd, b"OK\r\n+TCOTASET:OK\r\n")
    m, c = sorted(mod)[1], sorted(cli)[1]
    ratio = c / m
    args.over_target |= ratio < 0.9
    mib = len(data) / (1 << 20)
    return (f"bench tencent_ota_download: 4 MiB over HTTPS: module {mib / m:.1f} MiB/s "
            f"({m * 1000:.0f} ms, ENTERUPDATE to UPDATESUCCESS, median of 3), curl "
            f"{mib / c:.1f} MiB/s ({c * 1000:.0f} ms) => {ratio:.2f}x (target >= 0.9x)")


def read_chunk(run, fd, n):
    """One AT+TCREADFWDATA=<n> with echo off: exactly OK, the head, n bytes, CR LF."""
    head = b"OK\r\n+TCREADFWDATA:%d," % n
    want, reply = len(head) + n + 2, b""
    os.write(fd, b"AT+TCREADFWDATA=%d\r\n" % n)
    while len(reply) < want:
        if not select.select([fd], [], [], 10)[0]:
            raise run.BenchError("AT+TCREADFWDATA: no reply")
        try:
            reply += os.read(fd, want - len(reply))
        except BlockingIOError:
            pass
    if not reply.startswith(head) or not reply.endswith(b"\r\n"):
        raise run.BenchError("AT+TCREADFWDATA: %r..." % reply[:40])
    return reply[len(head):-2]


def bench_readout(run, args):
    data = os.urandom(64 * 1024)
    with setup(run, data, 115200) as (broker_port, srv, fd):
        push(broker_port, srv.url, data, "2.0.0")
        expect(run, fd, b"+TCOTASTATUS:ENTERUPDATE\r\n+TCOTASTATUS:UPDATESUCCESS\r\n", 60)
        os.write(fd, b"AT+TCFWINFO?\r\n")
        run.read_until(fd, b",8388608\r\n", 10)
        got, t0 = b"", time.monotonic()
        while len(got) < len(data):
            got += read_chunk(run, fd, 2048)
        secs = time.monotonic() - t0
    if got != data:
        raise run.BenchError("the image read back differs")
    rate = len(data) / secs
    ratio = rate / 11520
    args.over_target |= ratio < 0.95
    return (f"bench tencent_ota_readout: 64 KiB by AT+TCREADFWDATA=2048 at 115200 baud: "
            f"{rate:.0f} B/s of image = {100 * ratio:.1f}% of the 11520 B/s wire limit "
            f"(target >= 95%)")


def register(run):
    def download(args):
        return bench_download(run, args)

    def readout(args):
        return bench_readout(run, args)

    download.__name__, readout.__name__ = "bench_tencent_ota_download", "bench_tencent_ota_readout"
    run.bench(download)
    run.bench(readout)
