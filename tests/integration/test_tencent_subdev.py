"""test_tencent_subdev.py - the tencent dialect's sub-device commands of
firmware v2.2.0 and later, AT+TCSUBDEVINFOSET, AT+TCSUBDEVPRDSET and
AT+TCSUBDEVREG (tencent-at.md §3.12), and the gateway's bind with a stored
sub-device secret.

The reference gives the reply formats; the rest (limits, which parameters
each mode takes, 80 records in 5 sectors of 16, what a delete matches, the
missing state gates, the uint8_t that prints a registration failure) is the
v2.2.0 firmware's, read from its objects (tc_subdev.c says where). v2.1.1
has none of the three: they are unknown commands there.

AT+TCSUBDEVREG registers through the module's registration client against
`vmodule-cloud serve`, which checks every request itself (dynreg.py: exact
headers and body, timestamp, signature) and whose events show what the
module sent; the bind with a stored secret is checked by the same tool's
gateway, which verifies the signature with the sub-device secret it knows.
The lists must survive a daemon restart and go with AT+TCRESTORE."""

import base64
import json
import shutil
import tempfile
import time

import pytest

import cloud
from conftest import TEST_HOST, module_config, wait_for
from vmcloud import tccrypto  # on sys.path through cloud

PID, DN, SECRET = "CTQS08Y5LG", "Dev01", "ZHNkIGRzZCA="   # the gateway itself
SPID, SDN, SDN2 = "SUBPRD0001", "sub01", "sub02"           # its sub-devices
SSECRET = "c3ViIGRldmljZSBzZWNyZXQ="
SPRD_SECRET = "hzvf5LF9S0isvBhDSauWMaIk"                   # sub-device product secret
PSK = "lDZ6Uqt+I9E0wW7rvDUs7Q=="                           # what the cloud hands out
REGION = "ap-guangzhou"
CONNID = "Ab1Cd"
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
READY = b"\r\nready\r\n"
OK = b"\r\nOK\r\n"
UNKNOWN = b"ERR CODE:0x01090000\r\n\r\nERROR\r\n"
ERR_TYPE = b"ERR CODE:0x01050000\r\n\r\nERROR\r\n"
CME_PARA = b"+CME ERROR:204\r\n"
BUSY = b"ERR CODE:0x010b0000\r\n\r\nbusy p...\r\n"
SERVER_TIME = 1589786839

INFO_TEST = (b'+TCSUBDEVINFOSET:"MODE","PRODUCT_ID","DEVICE_NAME","DEVICE_SECRET_BCC",'
             b'"PRODUCT_REGION"\r\n' + OK)
PRD_TEST = (b'+TCSUBDEVPRDSET:"MODE","PRODUCT_ID","PRODUCT_SECRET_BCC","DEVICE_NAME",'
            b'"PRODUCT_REGION"\r\n' + OK)
REG_TEST = b'+TCSUBDEVREG:"PRODUCT_ID","DEVICE_NAME"\r\n' + OK


def bcc(s):
    r = 0
    for b in s.encode():
        r ^= b
    return r


# ------------------------------------------------------------------ the cloud


class SubCloud:
    """`vmodule-cloud serve` for these tests: dynamic registration over HTTPS
    (a certificate of the suite's CA) and, with a broker, the gateway and
    $sys time on it. Its --config holds the policy: the sub-device product
    and its secret, the psk handed out, sub-device secrets for bind
    signatures, the dynreg fault; configure() rewrites it and reloads."""

    def __init__(self, certs, broker_port=None, **policy):
        self.dir = tempfile.mkdtemp(prefix="subcloud-")
        self.config = self.dir + "/policy.json"
        self.policy = {"products": {SPID: SPRD_SECRET}, "devices": {SDN: PSK},
                       "time": SERVER_TIME, "sub_devices": {}, "dynreg_fault": "none"}
        self.policy.update(policy)
        self._write()
        hosts = ("127.0.0.1", "localhost", TEST_HOST)
        mqtt = ["--broker", "127.0.0.1:%d" % broker_port] if broker_port else ["--no-mqtt"]
        self.tool = cloud.CloudTool(["serve"] + mqtt + [
            "--cert-dir", cloud.cert_dir(certs, hosts), "--config", self.config] +
            [a for h in hosts for a in ("--cert-host", h)])
        ev = self.tool.wait_event("listening")
        self.url = ev["url"] + "/register/dev"
        self.v2_url = ev["url"] + "/device/register"

    def _write(self):
        with open(self.config, "w") as f:
            json.dump(self.policy, f)

    def configure(self, **policy):
        self.policy.update(policy)
        self._write()
        self.tool.reload()

    @property
    def requests(self):
        return self.tool.synced("http")

    @property
    def errors(self):
        return [e["error"] for e in self.requests if e["error"]]

    @property
    def connections(self):
        return len(self.tool.synced("connection"))

    def gateway_requests(self):
        return [(e["topic"], e["payload"]) for e in self.tool.synced("request")]

    def close(self):
        self.tool.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def subclouds(certs):
    made = []

    def make(**kw):
        c = SubCloud(certs, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


# ------------------------------------------------------------------ module helpers


def tc_module(tmp_path, firmware="2.2.0", chip=None, url=None, certs=None, wifi=WIFI,
              mqtt_port=1883, **extra):
    t = {"mqtt_transport": "tcp", "mqtt_host": "127.0.0.1", "mqtt_port": mqtt_port,
         "connid": CONNID, "wifi": wifi}
    if firmware:
        t["firmware"] = firmware
    if chip:
        t["chip"] = chip
    if url:
        t["dynreg_url"] = url
    if certs is not None:
        t["dynreg_ca_file"] = str(certs / "ca.crt")
    t.update(extra)
    return module_config(tmp_path, "tc0", "tencent", echo=False,
                         trace=str(tmp_path / "tc0.trace"), tencent=t)


def start(make_daemon, tmp_path, joined=True, **kw):
    daemon = make_daemon([tc_module(tmp_path, **kw)], log_level="debug")
    port = daemon.port()
    if joined:
        port.expect(JOINED)
    return daemon, port


def info_set(port, mode, pid, dn, *rest, result=b"OK"):
    args = ",".join(['%d' % mode, '"%s"' % pid, '"%s"' % dn] + ['"%s"' % r for r in rest])
    port.cmd("AT+TCSUBDEVINFOSET=" + args)
    port.expect(b"OK\r\n+TCSUBDEVINFOSET:" + result + b"\r\n")


def prd_set(port, mode, pid, secret, dn, *rest, result=b"OK"):
    args = ",".join(['%d' % mode, '"%s"' % pid, '"%s"' % secret, '"%s"' % dn] +
                    ['"%s"' % r for r in rest])
    port.cmd("AT+TCSUBDEVPRDSET=" + args)
    port.expect(b"OK\r\n+TCSUBDEVPRDSET:" + result + b"\r\n")


def info_line(pid, dn, secret, region=REGION):
    return b'+TCSUBDEVINFOSET:"%s","%s",%d,"%s"\r\n' % (pid.encode(), dn.encode(), bcc(secret),
                                                       region.encode())


def prd_line(pid, secret, dn, region=REGION):
    return b'+TCSUBDEVPRDSET:0,"%s",%d,"%s","%s"\r\n' % (pid.encode(), bcc(secret), dn.encode(),
                                                         region.encode())


def reg_line(pid, dn):
    return b'+TCSUBDEVREG:"%s","%s"\r\n' % (pid.encode(), dn.encode())


def query(port, cmd, lines):
    port.cmd(cmd + "?")
    port.expect(b"".join(lines) + OK)


def query_info(port, entries):
    """entries: (pid, dn, secret[, region]) in flash order; also AT+TCSUBDEVREG?,
    which lists the same records."""
    query(port, "AT+TCSUBDEVINFOSET", [info_line(*e) for e in entries])
    query(port, "AT+TCSUBDEVREG", [reg_line(e[0], e[1]) for e in entries])


def subdevreg(port, result, timeout=10.0, pid=SPID, dn=SDN):
    port.cmd('AT+TCSUBDEVREG="%s","%s"' % (pid, dn))
    port.expect(b"OK\r\n+TCSUBDEVREG:" + result + b"\r\n", timeout)


# ------------------------------------------------------------------ which firmware


def test_v211_answers_the_unknown_command_error(make_daemon, tmp_path):
    """v2.1.1 has no TCSUBDEV* (tencent-variants.md); its trace still hides
    the secrets of the lines it refuses."""
    daemon, port = start(make_daemon, tmp_path, firmware=None)  # the esp8266 default, 2.1.1
    lines = ['AT+TCSUBDEVINFOSET=?', 'AT+TCSUBDEVINFOSET?',
             'AT+TCSUBDEVINFOSET=0,"%s","%s","%s"' % (SPID, SDN, SSECRET),
             'AT+TCSUBDEVPRDSET=?', 'AT+TCSUBDEVPRDSET?',
             'AT+TCSUBDEVPRDSET=0,"%s","%s","%s"' % (SPID, SPRD_SECRET, SDN),
             'AT+TCSUBDEVREG=?', 'AT+TCSUBDEVREG?', 'AT+TCSUBDEVREG="%s","%s"' % (SPID, SDN),
             'AT+TCSUBDEVREG']
    for line in lines:
        port.cmd(line)
        port.expect(UNKNOWN)
    port.cmd("AT+TCVER")
    port.expect(b"Tencent Cloud IoT AT  version: QCloud_AT_ESP8266_v2.1.1\r\n")
    port.read_until(OK)
    daemon.stop()
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    assert 'AT+TCSUBDEVINFOSET=0,"%s","%s","***"' % (SPID, SDN) in trace
    assert SSECRET not in trace and SPRD_SECRET not in trace


def test_a_self_update_to_220_brings_the_commands(make_daemon, tmp_path):
    """The command set is the running build's: a 2.1.1 module whose flash
    holds a self-updated QCloud_AT_ESP8266_v2.2.0 (what tc_ota.c stores
    after UPDATERESET) has the sub-device commands after its boot."""
    daemon, port = start(make_daemon, tmp_path, firmware=None)
    port.cmd("AT+TCSUBDEVREG=?")
    port.expect(UNKNOWN)
    daemon.stop()
    path = daemon.state_path()
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc["tc_selfota"] = {"version": "QCloud_AT_ESP8266_v2.2.0"}
    path.write_text(json.dumps(doc))
    daemon.start()
    port = daemon.port()
    port.expect(JOINED)
    port.cmd("AT+TCSUBDEVREG=?")
    port.expect(REG_TEST)
    info_set(port, 0, SPID, SDN, SSECRET)
    query_info(port, [(SPID, SDN, SSECRET)])


@pytest.mark.parametrize("chip,firmware", [("esp8266", "2.2.0"), ("esp32", "2.2.0"),
                                           ("esp32c3", "2.4.0")])
def test_test_forms_and_empty_queries(make_daemon, tmp_path, chip, firmware):
    _, port = start(make_daemon, tmp_path, chip=chip, firmware=firmware)
    for cmd, reply in (("AT+TCSUBDEVINFOSET=?", INFO_TEST), ("AT+TCSUBDEVPRDSET=?", PRD_TEST),
                       ("AT+TCSUBDEVREG=?", REG_TEST), ("AT+TCSUBDEVINFOSET?", OK),
                       ("AT+TCSUBDEVPRDSET?", OK), ("AT+TCSUBDEVREG?", OK)):
        port.cmd(cmd)
        port.expect(reply)
    # no execute form
    for cmd in ("AT+TCSUBDEVINFOSET", "AT+TCSUBDEVPRDSET", "AT+TCSUBDEVREG"):
        port.cmd(cmd)
        port.expect(b"ERR CODE:0x010c0000\r\n\r\nERROR\r\n")


# ------------------------------------------------------------------ AT+TCSUBDEVINFOSET


def test_infoset_adds_replaces_and_deletes(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    info_set(port, 0, SPID, SDN, SSECRET)
    info_set(port, 0, SPID, SDN2, SECRET, "ap-shanghai")
    info_set(port, 0, "P" * 10, "d" * 48, "s" * 44, "r" * 24)  # the longest of each
    query_info(port, [(SPID, SDN, SSECRET), (SPID, SDN2, SECRET, "ap-shanghai"),
                      ("P" * 10, "d" * 48, "s" * 44, "r" * 24)])
    # the same record again; then one with the same names replaces it in place
    info_set(port, 0, SPID, SDN, SSECRET)
    info_set(port, 0, SPID, SDN, SECRET, "ap-beijing")
    query_info(port, [(SPID, SDN, SECRET, "ap-beijing"), (SPID, SDN2, SECRET, "ap-shanghai"),
                      ("P" * 10, "d" * 48, "s" * 44, "r" * 24)])
    # delete: the names are enough; a secret and a region may follow
    info_set(port, 1, SPID, SDN)
    info_set(port, 1, "P" * 10, "d" * 48, "anything", "anywhere")
    query_info(port, [(SPID, SDN2, SECRET, "ap-shanghai")])
    # deleting what is not stored is OK and changes nothing
    info_set(port, 1, "NOPE", SDN2)
    query_info(port, [(SPID, SDN2, SECRET, "ap-shanghai")])


def test_infoset_delete_matches_twelve_characters_of_the_name(make_daemon, tmp_path):
    """save_subdev_info_del compares the device name with strncmp(.., 12): a
    delete of "gateway-sub-0002" removes the first stored name sharing its
    first 12 characters, as on the module."""
    _, port = start(make_daemon, tmp_path)
    info_set(port, 0, SPID, "gateway-sub-0001", SSECRET)
    info_set(port, 0, SPID, "gateway-sub-0002", SECRET)
    info_set(port, 1, SPID, "gateway-sub-0002")
    query_info(port, [(SPID, "gateway-sub-0002", SECRET)])
    info_set(port, 1, SPID, "gateway-sub-")
    query_info(port, [])


def test_infoset_parameter_errors(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cases = [
        ('"0","%s","%s","%s"' % (SPID, SDN, SSECRET), ERR_TYPE),
        ('x,"%s","%s","%s"' % (SPID, SDN, SSECRET), ERR_TYPE),
        ('2,"%s","%s","%s"' % (SPID, SDN, SSECRET), CME_PARA),
        ('-1,"%s","%s","%s"' % (SPID, SDN, SSECRET), CME_PARA),
        ('0,"","%s","%s"' % (SDN, SSECRET), CME_PARA),
        ('0,"%s","%s","%s"' % ("P" * 11, SDN, SSECRET), CME_PARA),
        ('0,1,"%s","%s"' % (SDN, SSECRET), CME_PARA),
        ('0,"%s","","%s"' % (SPID, SSECRET), CME_PARA),
        ('0,"%s","%s","%s"' % (SPID, "d" * 49, SSECRET), CME_PARA),
        ('0,"%s","%s"' % (SPID, SDN), CME_PARA),                    # add without secret
        ('0,"%s","%s",""' % (SPID, SDN), CME_PARA),
        ('0,"%s","%s","%s"' % (SPID, SDN, "s" * 45), CME_PARA),
        ('0,"%s","%s","%s",""' % (SPID, SDN, SSECRET), CME_PARA),
        ('0,"%s","%s","%s","%s"' % (SPID, SDN, SSECRET, "r" * 25), CME_PARA),
        ('0,"%s","%s","%s","%s","x"' % (SPID, SDN, SSECRET, REGION), CME_PARA),
        ('1,"%s","%s",""' % (SPID, SDN), CME_PARA),                 # a delete's secret too
        ('1,"%s"' % SPID, CME_PARA),
        ('0', CME_PARA),
    ]
    for params, reply in cases:
        port.cmd("AT+TCSUBDEVINFOSET=" + params)
        port.expect(reply)
    query_info(port, [])
    port.expect_nothing_pending()


def test_eighty_records_fill_the_five_sectors(make_daemon, tmp_path):
    """16 records per 4 KiB sector, 5 sectors: the 81st add fails with 207; a
    record freed in the first sector takes the next add, which the query
    (sector by sector) then lists 16th."""
    _, port = start(make_daemon, tmp_path)
    names = ["d%02d" % i for i in range(80)]
    for dn in names:
        info_set(port, 0, SPID, dn, SSECRET)
    info_set(port, 0, SPID, "d80", SSECRET, result=b"FAIL,207")
    info_set(port, 0, SPID, "d05", SECRET)          # a replacement still fits
    info_set(port, 1, SPID, "d03")
    info_set(port, 0, SPID, "new", SSECRET)
    info_set(port, 0, SPID, "d81", SSECRET, result=b"FAIL,207")
    order = names[:3] + names[4:16] + ["new"] + names[16:]
    query(port, "AT+TCSUBDEVINFOSET", [info_line(SPID, dn, SECRET if dn == "d05" else SSECRET)
                                       for dn in order])


# ------------------------------------------------------------------ AT+TCSUBDEVPRDSET


def test_prdset_adds_replaces_and_deletes_with_the_secret(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    prd_set(port, 0, SPID, "p" * 32, "d" * 48, "r" * 24)
    query(port, "AT+TCSUBDEVPRDSET", [prd_line(SPID, SPRD_SECRET, SDN),
                                      prd_line(SPID, "p" * 32, "d" * 48, "r" * 24)])
    prd_set(port, 0, SPID, "0123456789abcdef", SDN, "ap-shanghai")  # same names: replaced
    query(port, "AT+TCSUBDEVPRDSET", [prd_line(SPID, "0123456789abcdef", SDN, "ap-shanghai"),
                                      prd_line(SPID, "p" * 32, "d" * 48, "r" * 24)])
    # a delete matches product, device name and product secret
    prd_set(port, 1, SPID, SPRD_SECRET, SDN)
    query(port, "AT+TCSUBDEVPRDSET", [prd_line(SPID, "0123456789abcdef", SDN, "ap-shanghai"),
                                      prd_line(SPID, "p" * 32, "d" * 48, "r" * 24)])
    prd_set(port, 1, SPID, "0123456789abcdef", SDN, "elsewhere")
    query(port, "AT+TCSUBDEVPRDSET", [prd_line(SPID, "p" * 32, "d" * 48, "r" * 24)])
    # the product list is not the device list
    query_info(port, [])


def test_prdset_parameter_errors(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path)
    cases = [
        ('"0","%s","%s","%s"' % (SPID, SPRD_SECRET, SDN), ERR_TYPE),
        ('2,"%s","%s","%s"' % (SPID, SPRD_SECRET, SDN), CME_PARA),
        ('0,"","%s","%s"' % (SPRD_SECRET, SDN), CME_PARA),
        ('0,"%s","%s","%s"' % ("P" * 11, SPRD_SECRET, SDN), CME_PARA),
        ('0,"%s","","%s"' % (SPID, SDN), CME_PARA),
        ('0,"%s","%s","%s"' % (SPID, "p" * 33, SDN), CME_PARA),
        ('0,"%s","%s",""' % (SPID, SPRD_SECRET), CME_PARA),
        ('0,"%s","%s","%s"' % (SPID, SPRD_SECRET, "d" * 49), CME_PARA),
        ('0,"%s","%s","%s","%s"' % (SPID, SPRD_SECRET, SDN, "r" * 25), CME_PARA),
        ('0,"%s","%s","%s","%s","x"' % (SPID, SPRD_SECRET, SDN, REGION), CME_PARA),
        ('0,"%s","%s"' % (SPID, SPRD_SECRET), CME_PARA),
        ('1,"%s","%s"' % (SPID, SPRD_SECRET), CME_PARA),            # a delete takes them all
    ]
    for params, reply in cases:
        port.cmd("AT+TCSUBDEVPRDSET=" + params)
        port.expect(reply)
    query(port, "AT+TCSUBDEVPRDSET", [])


# ------------------------------------------------------------------ persistence and gates


def test_lists_survive_a_restart_and_go_with_tcrestore(make_daemon, tmp_path):
    daemon, port = start(make_daemon, tmp_path)
    info_set(port, 0, SPID, SDN, SSECRET, "ap-shanghai")
    info_set(port, 0, SPID, SDN2, SECRET)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    daemon.restart()
    port = daemon.port()
    port.expect(JOINED)
    query_info(port, [(SPID, SDN, SSECRET, "ap-shanghai"), (SPID, SDN2, SECRET)])
    query(port, "AT+TCSUBDEVPRDSET", [prd_line(SPID, SPRD_SECRET, SDN)])
    daemon.kill9()
    daemon.start()
    port = daemon.port()
    port.expect(JOINED)
    query_info(port, [(SPID, SDN, SSECRET, "ap-shanghai"), (SPID, SDN2, SECRET)])
    port.cmd("AT+TCRESTORE")
    port.expect(b"OK\r\n" + READY + JOINED, 10)
    query_info(port, [])
    query(port, "AT+TCSUBDEVPRDSET", [])


def test_infoset_and_prdset_run_while_mqtt_runs_subdevreg_does_not(make_daemon, tmp_path,
                                                                    mosquitto, subclouds):
    """INFOSET and PRDSET have no state gate in the firmware; SUBDEVREG
    refuses 208 while the MQTT task runs (§3.12: always, not "may")."""
    broker = mosquitto()
    sub = subclouds()
    _, port = start(make_daemon, tmp_path, mqtt_port=broker.port, url=sub.url)
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)
    info_set(port, 0, SPID, SDN, SSECRET)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    query_info(port, [(SPID, SDN, SSECRET)])
    port.cmd('AT+TCSUBDEVREG="%s","%s"' % (SPID, SDN))
    port.expect(b"+CME ERROR:208\r\n")
    port.cmd('AT+TCSUBDEVREG="%s"' % SPID)  # the gate comes first
    port.expect(b"+CME ERROR:208\r\n")
    assert sub.connections == 0
    port.cmd("AT+TCMQTTSTATE?")
    port.expect(b"+TCMQTTSTATE:1\r\n" + OK)


# ------------------------------------------------------------------ AT+TCSUBDEVREG


def test_subdevreg_registers_and_stores_the_sub_device(make_daemon, tmp_path, subclouds, certs):
    """The request is the v1 one of the product info stored for exactly this
    sub-device (the tool checks it); the triple joins the device list with
    the product info's region, and survives a restart."""
    sub = subclouds()
    daemon, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    info_set(port, 0, SPID, "other", SECRET)
    prd_set(port, 0, SPID, "0123456789abcdef", SDN2)          # not this device
    prd_set(port, 0, SPID, SPRD_SECRET, SDN, "ap-shanghai")
    t0 = time.time()
    subdevreg(port, b"OK")
    assert sub.errors == []
    reqs = sub.requests
    assert len(reqs) == 1
    req = reqs[0]
    assert (req["method"], req["path"]) == ("POST", "/register/dev")
    body = json.loads(req["body"])
    assert (body["productId"], body["deviceName"]) == (SPID, SDN)
    assert abs(body["timestamp"] - t0) <= 60
    assert body["signature"] == tccrypto.v1_signature(SPID, SDN, SPRD_SECRET, body["nonce"],
                                                      body["timestamp"])
    entries = [(SPID, "other", SECRET), (SPID, SDN, PSK, "ap-shanghai")]
    query_info(port, entries)
    # the gateway's own triple is untouched
    port.cmd("AT+TCDEVINFOSET?")
    port.expect(b"+CME ERROR:207\r\n")
    daemon.restart()
    port = daemon.port()
    port.expect(JOINED)
    query_info(port, entries)
    # registering again: the cloud hands out the same psk, nothing changes
    subdevreg(port, b"OK")
    query_info(port, entries)


def test_subdevreg_without_its_product_info_fails_204_after_ok(make_daemon, tmp_path,
                                                                subclouds, certs):
    sub = subclouds()
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    subdevreg(port, b"FAIL,204")
    prd_set(port, 0, SPID, SPRD_SECRET, SDN2)   # the product, another device name
    info_set(port, 0, SPID, SDN, SSECRET)       # a device info is not a product info
    subdevreg(port, b"FAIL,204")
    assert sub.connections == 0
    query_info(port, [(SPID, SDN, SSECRET)])


def test_subdevreg_parameter_errors(make_daemon, tmp_path, subclouds, certs):
    sub = subclouds()
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    for params in ('"%s"' % SPID, '"%s","%s","x"' % (SPID, SDN), '"","%s"' % SDN,
                   '"%s","%s"' % ("P" * 11, SDN), '"%s",""' % SPID, '"%s","%s"' % (SPID, "d" * 49),
                   '1,"%s"' % SDN, '"%s",1' % SPID):
        port.cmd("AT+TCSUBDEVREG=" + params)
        port.expect(CME_PARA)
    assert sub.connections == 0
    subdevreg(port, b"OK")


def test_subdevreg_is_busy_while_the_request_is_in_flight(make_daemon, tmp_path, subclouds,
                                                          certs):
    sub = subclouds(dynreg_hold=True)
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    port.cmd('AT+TCSUBDEVREG="%s","%s"' % (SPID, SDN))
    port.expect(b"OK\r\n")
    wait_for(lambda: sub.requests, 5, "the registration request at the server")
    port.cmd("AT+TCSUBDEVINFOSET?")
    port.expect(BUSY)
    sub.configure(dynreg_hold=False)
    port.expect(b"+TCSUBDEVREG:OK\r\n", 10)
    query_info(port, [(SPID, SDN, PSK)])


# The firmware prints the code it got through a uint8_t (at_gw_subdev_reg_setup):
# 1021 -> 253, -9 -> 247, -10 -> 246, -1001 -> 23, 1010 -> 242; 202 stays.
@pytest.mark.parametrize("fault,code", [("code1021", b"253"), ("http403", b"247"),
                                        ("http404", b"246"), ("garbage", b"23"),
                                        ("cert", b"23")])
def test_subdevreg_failures_print_the_code_as_a_byte(make_daemon, tmp_path, subclouds, certs,
                                                     fault, code):
    sub = subclouds(dynreg_fault=fault)
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    info_set(port, 0, SPID, SDN, SSECRET)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    subdevreg(port, b"FAIL," + code)
    assert len(sub.requests) == 1 and sub.errors == []
    query_info(port, [(SPID, SDN, SSECRET)])  # the stored record is kept


def test_subdevreg_wrong_product_secret_fails_1010_as_242(make_daemon, tmp_path, subclouds,
                                                          certs):
    sub = subclouds()
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    prd_set(port, 0, SPID, "0123456789abcdefXYZ", SDN)
    subdevreg(port, b"FAIL,242")
    assert len(sub.errors) == 1 and sub.errors[0].startswith("signature ")
    query_info(port, [])


def test_subdevreg_failures_before_any_request(make_daemon, tmp_path, subclouds, certs):
    """A product secret under 16 characters (-1001 -> 23) and no Wi-Fi
    (-8 -> 248) fail without a connection."""
    sub = subclouds()
    no_auto_join = {"access_points": WIFI["access_points"], "join_ms": 0}
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs, joined=False,
                    wifi=no_auto_join)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    subdevreg(port, b"FAIL,248")
    port.cmd('AT+CWJAP="lab","labpass123"')
    port.expect(JOINED + OK)
    prd_set(port, 0, SPID, SPRD_SECRET[:15], SDN)
    subdevreg(port, b"FAIL,23")
    assert sub.connections == 0
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    subdevreg(port, b"OK")


def test_subdevreg_silent_server_fails_202(make_daemon, tmp_path, subclouds, certs):
    sub = subclouds(dynreg_fault="hang")
    _, port = start(make_daemon, tmp_path, url=sub.url, certs=certs, dynreg_timeout_ms=1500)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    t0 = time.monotonic()
    subdevreg(port, b"FAIL,202", timeout=6)
    assert 1.3 <= time.monotonic() - t0 <= 5.0
    query_info(port, [])


def test_subdevreg_over_the_v2_api(make_daemon, tmp_path, subclouds, certs):
    """tencent.dynreg_api v2 is the client's, so AT+TCSUBDEVREG speaks it too."""
    sub = subclouds()
    _, port = start(make_daemon, tmp_path, url=sub.v2_url, certs=certs, dynreg_api="v2")
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    subdevreg(port, b"OK")
    assert [r["path"] for r in sub.requests] == ["/device/register"]
    assert sub.errors == []
    query_info(port, [(SPID, SDN, PSK)])


# ------------------------------------------------------------------ the gateway's bind


def gateway(make_daemon, tmp_path, mosquitto, subclouds, certs, firmware="2.2.0"):
    """A connected gateway module and its cloud (registration and gateway)."""
    broker = mosquitto()
    sub = subclouds(broker_port=broker.port, sub_devices={"%s/%s" % (SPID, SDN): SSECRET})
    daemon, port = start(make_daemon, tmp_path, firmware=firmware, mqtt_port=broker.port,
                         url=sub.url, certs=certs)
    port.cmd('AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET))
    port.expect(b"OK\r\n+TCDEVINFOSET:OK\r\n")
    return daemon, port, sub


def mqtt_connect(port):
    port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
    port.expect(b"OK\r\n+TCMQTTCONN:OK\r\n", 10)


def bind_signed_with(sub, secret):
    """The last bind request the cloud saw was signed with secret."""
    reqs = [json.loads(p) for t, p in sub.gateway_requests() if t.startswith("$gateway/")]
    dev = reqs[-1]["payload"]["devices"][0]
    return reqs[-1]["type"] == "bind" and dev["signature"] == tccrypto.bind_signature(
        dev["product_id"], dev["device_name"], secret, dev["random"], dev["timestamp"])


def test_bind_without_a_secret_uses_the_stored_one(make_daemon, tmp_path, mosquitto, subclouds,
                                                   certs):
    """v2.2.0's at_gw_bind_setup: mode 0 with three parameters, or an empty
    fourth, signs with the secret AT+TCSUBDEVINFOSET stored; none stored is
    204 before anything is sent."""
    daemon, port, sub = gateway(make_daemon, tmp_path, mosquitto, subclouds, certs)
    mqtt_connect(port)
    port.cmd('AT+TCGWBIND=0,"%s","%s"' % (SPID, SDN))
    port.expect(CME_PARA)
    port.cmd('AT+TCGWBIND=0,"%s","%s",""' % (SPID, SDN))
    port.expect(CME_PARA)
    assert sub.gateway_requests() == []
    info_set(port, 0, SPID, SDN, SSECRET)
    port.cmd('AT+TCGWBIND=0,"%s","%s"' % (SPID, SDN))
    port.expect(b"OK\r\n+TCGWBIND:OK\r\n", 10)
    assert bind_signed_with(sub, SSECRET)
    port.cmd('AT+TCGWBIND=0,"%s","%s",""' % (SPID, SDN))
    port.expect(b"OK\r\n+TCGWBIND:OK\r\n", 10)  # 809 from the tool: bound already
    assert bind_signed_with(sub, SSECRET)
    assert sub.tool.synced("bad_signature") == []
    # a given secret still wins over the stored one (the cloud refuses it: 803)
    port.cmd('AT+TCGWBIND=0,"%s","%s","%s"' % (SPID, SDN, SECRET))
    port.expect(b"OK\r\n+TCGWBIND:FAIL,803\r\n", 10)
    assert bind_signed_with(sub, SECRET)
    for params in ('0,"%s","%s","%s","x"' % (SPID, SDN, SSECRET), '1,"%s","%s",""' % (SPID, SDN)):
        port.cmd("AT+TCGWBIND=" + params)
        port.expect(CME_PARA)


def test_registered_sub_device_binds_with_its_new_secret(make_daemon, tmp_path, mosquitto,
                                                         subclouds, certs):
    """End to end: AT+TCSUBDEVREG (MQTT down), then AT+TCGWBIND with no
    secret signs with the psk the cloud handed out."""
    daemon, port, sub = gateway(make_daemon, tmp_path, mosquitto, subclouds, certs)
    sub.configure(sub_devices={"%s/%s" % (SPID, SDN): PSK})
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    subdevreg(port, b"OK")
    mqtt_connect(port)
    port.cmd('AT+TCGWBIND=0,"%s","%s"' % (SPID, SDN))
    port.expect(b"OK\r\n+TCGWBIND:OK\r\n", 10)
    assert bind_signed_with(sub, PSK)
    port.cmd('AT+TCGWONLINE=0,"%s","%s"' % (SPID, SDN))
    port.expect(b"OK\r\n+TCGWONLINE:OK\r\n", 10)


# ------------------------------------------------------------------ secrets


def test_secrets_never_in_log_or_trace(make_daemon, tmp_path, subclouds, certs):
    psk = tccrypto.new_psk()
    sub = subclouds(devices={SDN: psk})
    daemon, port = start(make_daemon, tmp_path, url=sub.url, certs=certs)
    info_set(port, 0, SPID, SDN2, SSECRET)
    prd_set(port, 0, SPID, SPRD_SECRET, SDN)
    prd_set(port, 1, SPID, SPRD_SECRET, SDN2)
    subdevreg(port, b"OK")
    query_info(port, [(SPID, SDN2, SSECRET), (SPID, SDN, psk)])
    daemon.stop()
    log = daemon.log_text(all_runs=True)
    trace = (tmp_path / "tc0.trace").read_text(errors="replace")
    assert "AT+TCSUBDEVREG" in trace and log.strip()
    for text, name in ((log, "log"), (trace, "trace")):
        for s in (SSECRET, SPRD_SECRET, SPRD_SECRET[:16], psk, base64.b64decode(psk).hex()):
            assert s not in text, "%r found in the %s" % (s, name)
