"""Tencent OTA (issue 11, reference §3.10, §7.5), first increment: the version
report AT+TCOTASET=1 publishes, byte for byte, on a real mosquitto."""
from conftest import MqttPeer, wait_for
from test_tencent_gateway import PID, DN, mqtt_connect, provision
from test_tencent_mqtt import start

REPORT = "$ota/report/%s/%s" % (PID, DN)


class OtaCloud(MqttPeer):
    def __init__(self, port):
        self.got = []
        super().__init__(port)
        self.subscribe(REPORT, 1)

    def _on_message(self, c, u, msg):
        with self.lock:
            self.got.append((msg.topic, bytes(msg.payload)))


def test_otaset_reports_the_version(make_daemon, tmp_path, mosquitto):
    broker = mosquitto()
    cloud = OtaCloud(broker.port)
    try:
        daemon, port = start(make_daemon, tmp_path, broker.port)
        provision(port)
        mqtt_connect(port)
        port.cmd('AT+TCOTASET=1,"1.0.0"')
        port.expect(b"OK\r\n+TCOTASET:OK\r\n")
        wait_for(lambda: len(cloud.got) >= 1, 5, "the version report")
        assert cloud.got[0] == (REPORT, b'{"type": "report_version", "report":{"version":"1.0.0"}}')
    finally:
        cloud.c.disconnect()
        cloud.c.loop_stop()
