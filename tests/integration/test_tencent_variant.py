"""test_tencent_variant.py - tencent dialect: the ESP8266, ESP32 and ESP32-C3
builds of the QCloud AT firmware and its versions, chosen by tencent.chip and
tencent.firmware (tencent-variants.md): the identity strings of every build,
explicit config values winning over a build's, invalid combinations refused
naming the key, the AT+TCMQTTCONN command timeout limit per firmware against
a real mosquitto, and the comma-in-quotes rule per chip.

The transcripts tests/transcripts/tencent/module_info.txt (ESP8266 v2.1.1),
variant_esp32.txt (v2.2.0) and variant_esp32c3.txt (v2.4.0) hold one build
each in full; this file covers every build."""

import json

import pytest

from conftest import module_config

OK = b"\r\nOK\r\n"
PID, DN, SECRET = "CTQS08Y5LG", "Dev01", "ZHNkIGRzZCA="
TOPIC = "%s/%s/data" % (PID, DN)
WIFI = {"access_points": [{"ssid": "lab", "password": "labpass123"}], "auto_join": "lab",
        "join_ms": 0}
JOINED = b"WIFI CONNECTED\r\nWIFI GOT IP\r\n"
MAC = "84:f3:eb:56:0e:e9"

# chip, firmware -> (GMR lines, TCVER version, SDK, compile time, module name,
# flash MB, OTA base, OTA max, timeout max). The values the reference gives
# only as a format are the dialect's picks (README: inferred).
VARIANTS = {
    ("esp8266", "2.1.1"): (
        ["AT version:2.0.0.0(88c2cde - Jul  9 2019 11:03:33)",
         "SDK version:AT_ESP8266_v1.1.0_20190812_RC-25-g836292b-dirty",
         "compile time:Jun 17 2020 16:25:24",
         "Bin version:1.0.0(ESP8266_QCLOUD)"],
        "QCloud_AT_ESP8266_v2.1.1", None, "3.2.1", "Sep  3 2020 11:43:26",
        "ESP-DEFAULT-2MB", 2, 0x111000, 716800, 10000),
    ("esp8266", "2.2.0"): (
        ["AT version:2.2.0.0(b097cdf - ESP8266 - Jun 17 2021 12:57:45)",
         "SDK version:v3.4-43-ge9516e4",
         "compile time(4086544):Jun 15 2023 11:35:41",
         "Bin version:2.2.0(ESP8266_QCLOUD)"],
        "QCloud_AT_ESP8266_v2.2.0", "8b7f0a1", "v3.4-43-ge9516e4", "Jun 15 2023 11:28:10",
        "ESP-DEFAULT-2MB", 2, 0x111000, 716800, 20000),
    ("esp32", "2.2.0"): (
        ["AT version:2.2.0.0(c6fa6bf - ESP32 - Jul  2 2021 06:44:05)",
         "SDK version:v4.2-351-gce2c615",
         "compile time(49e573c):Jul  2 2021 07:03:58",
         "Bin version:2.2.0(ESP32_QCLOUD)"],
        "QCloud_AT_ESP32_v2.2.0", "8a09f2a", "v4.2-351-gce2c615", "Apr 29 2021 06:38:32",
        "", 4, 0x280000, 0x180000, 20000),
    ("esp32", "2.4.0"): (
        ["AT version:2.4.0.0(4c6eb5e - ESP32 - May 20 2022 03:11:58)",
         "SDK version:v4.3.2-553-g588436d",
         "compile time(d9fd150):May 20 2022 03:19:26",
         "Bin version:2.4.0(ESP32_QCLOUD)"],
        "QCloud_AT_ESP32_v2.4.0", "965ecb9", "v4.3.2-553-g588436d", "May 19 2022 11:38:05",
        "ESP-DEFAULT-4MB", 4, 0x280000, 0x180000, 20000),
    ("esp32c3", "2.2.0"): (
        ["AT version:2.2.0.0(90458f0 - ESP32C3 - Jun 18 2021 10:23:57)",
         "SDK version:v4.3-beta1",
         "compile time(49e573c):Jul  2 2021 07:09:12",
         "Bin version:2.2.0(ESP32C3_QCLOUD)"],
        "QCloud_AT_ESP32C3_v2.2.0", "8a09f2a", "v4.3-beta1", "Apr 29 2021 06:34:40",
        "ESP-DEFAULT-4MB", 4, 0x280000, 0x180000, 20000),
    ("esp32c3", "2.4.0"): (
        ["AT version:2.4.0.0(4c6eb5e - ESP32C3 - May 20 2022 03:13:40)",
         "SDK version:v4.3.2-553-g588436d",
         "compile time(d9fd150):May 20 2022 03:24:51",
         "Bin version:2.4.0(ESP32C3_QCLOUD)"],
        "QCloud_AT_ESP32C3_v2.4.0", "965ecb9", "v4.3.2-553-g588436d", "May 19 2022 11:34:52",
        "ESP-DEFAULT-4MB", 4, 0x230000, 0x1d0000, 20000),
}


def lines(*texts):
    return b"".join(t.encode() + b"\r\n" for t in texts)


def conn_test(timeout_max):
    return lines("+TCMQTTCONN:<TLSMODE_SELECTED>,<CMDTIMEOUT_VALUE(1000-%dms)>,"
                 "<KEEPALIVE>(60-690s),<CLEAN_SESSION>(0/1),<RECONNECT>(0/1)" % timeout_max)


def tcver(version, commit, sdk, compiled):
    first = ("Tencent Cloud IoT AT  version: %s" % version if commit is None
             else "Tencent Cloud IoT AT version: %s(%s)" % (version, commit))
    return lines(first, "Tencent Cloud IoT SDK version: " + sdk,
                 "Firmware compile time: " + compiled, "Tencent Technology Co. Ltd.")


def tcmodule(name, version, compiled, flash, mac=MAC):
    return lines("Module HW name: " + name, "Module FW version: " + version,
                 "Module Mac addr: " + mac, "Module FW compiled time: " + compiled,
                 "Module Flash size: %dMB" % flash)


def xchg(port, line, reply):
    port.cmd(line)
    port.expect(reply)


def start(make_daemon, tmp_path, **tencent):
    m = module_config(tmp_path, "tc0", "tencent", echo=False, tencent=tencent)
    daemon = make_daemon([m])
    return daemon, daemon.port()


def config_error(run_vmoduled, tmp_path, tencent):
    cfg = {"state_dir": str(tmp_path / "state"),
           "modules": [module_config(tmp_path, "tc0", "tencent", tencent=tencent)]}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cfg))
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2, cp.stderr
    out = cp.stderr.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("vmoduled: "), cp.stderr
    return out[0]


# ------------------------------------------------------------------ identity per build


@pytest.mark.parametrize("chip,firmware", sorted(VARIANTS))
def test_identity_of_each_build(make_daemon, tmp_path, chip, firmware):
    (gmr, version, commit, sdk, compiled, name, flash, base, size,
     timeout_max) = VARIANTS[chip, firmware]
    _, port = start(make_daemon, tmp_path, chip=chip, firmware=firmware)
    xchg(port, "AT+GMR", lines(*gmr) + OK)
    xchg(port, "AT+TCVER", tcver(version, commit, sdk, compiled) + OK)
    xchg(port, "AT+TCMODULE", tcmodule(name, version, compiled, flash) + OK)
    xchg(port, "AT+TCMODINFOSET?",
         b'+TCMODINFOSET:"%s",%d,5,%d,%d,1\r\n' % (name.encode(), flash, base, size) + OK)
    xchg(port, "AT+TCMQTTCONN=?", conn_test(timeout_max) + OK)


@pytest.mark.parametrize("tencent,variant", [
    ({}, ("esp8266", "2.1.1")),
    ({"chip": "esp8266"}, ("esp8266", "2.1.1")),
    ({"chip": "esp32"}, ("esp32", "2.2.0")),
    ({"chip": "esp32c3"}, ("esp32c3", "2.2.0")),
    ({"firmware": "2.2.0"}, ("esp8266", "2.2.0")),
])
def test_defaults_of_chip_and_firmware(make_daemon, tmp_path, tencent, variant):
    gmr, version, commit, sdk, compiled = VARIANTS[variant][:5]
    _, port = start(make_daemon, tmp_path, **tencent)
    xchg(port, "AT+GMR", lines(*gmr) + OK)
    xchg(port, "AT+TCVER", tcver(version, commit, sdk, compiled) + OK)


def test_explicit_values_win_over_the_build(make_daemon, tmp_path):
    _, port = start(make_daemon, tmp_path, chip="esp32", firmware="2.4.0",
                    gmr=["AT version:custom", "Bin version:9.9.9(MINE)"],
                    module_name="ESP-WROOM-32D", flash_mb=2, mac="24:0A:C4:00:11:22",
                    fw_version="QCloud_AT_ESP32_v2.4.1", sdk_version="v4.3.9",
                    compile_time="Jan  1 2024 00:00:00")
    xchg(port, "AT+GMR", lines("AT version:custom", "Bin version:9.9.9(MINE)") + OK)
    # the build's format (one space, its QCloud core commit) with the configured version
    xchg(port, "AT+TCVER",
         tcver("QCloud_AT_ESP32_v2.4.1", "965ecb9", "v4.3.9", "Jan  1 2024 00:00:00") + OK)
    xchg(port, "AT+TCMODULE", tcmodule("ESP-WROOM-32D", "QCloud_AT_ESP32_v2.4.1",
                                       "Jan  1 2024 00:00:00", 2, "24:0a:c4:00:11:22") + OK)
    # the OTA area stays the build's; the 20000 ms timeout limit too
    xchg(port, "AT+TCMODINFOSET?", b'+TCMODINFOSET:"ESP-WROOM-32D",2,5,2621440,1572864,1\r\n' + OK)
    xchg(port, "AT+TCMQTTCONN=?", conn_test(20000) + OK)


@pytest.mark.parametrize("chip,firmware,name", [
    ("esp8266", "2.2.0", "ESP-DEFAULT-4MB"),  # v2.2+: "ESP-DEFAULT-%dMB" of the flash size
    ("esp32", "2.4.0", "ESP-DEFAULT-2MB"),
    ("esp8266", "2.1.1", "ESP-DEFAULT-2MB"),  # v2.1.1: a literal
    ("esp32c3", "2.2.0", "ESP-DEFAULT-4MB"),  # 8a09f2a on the C3: a literal
])
def test_default_module_name_follows_a_configured_flash_size(make_daemon, tmp_path, chip,
                                                             firmware, name):
    flash = 6 - VARIANTS[chip, firmware][6]  # the other size
    _, port = start(make_daemon, tmp_path, chip=chip, firmware=firmware, flash_mb=flash)
    base, size = VARIANTS[chip, firmware][7:9]
    xchg(port, "AT+TCMODINFOSET?",
         b'+TCMODINFOSET:"%s",%d,5,%d,%d,1\r\n' % (name.encode(), flash, base, size) + OK)


@pytest.mark.parametrize("tencent,message", [
    ({"chip": "esp32s3"}, 'chip: must be "esp8266", "esp32" or "esp32c3"'),
    ({"chip": 8266}, 'chip: must be "esp8266", "esp32" or "esp32c3"'),
    ({"firmware": "2.4.0"}, 'firmware: must be "2.1.1" or "2.2.0" for esp8266'),
    ({"chip": "esp8266", "firmware": "2.0.0"}, 'firmware: must be "2.1.1" or "2.2.0" for esp8266'),
    ({"firmware": "2.1.1", "chip": "esp32"}, 'firmware: must be "2.2.0" or "2.4.0" for esp32'),
    ({"chip": "esp32c3", "firmware": 2.2}, 'firmware: must be "2.2.0" or "2.4.0" for esp32c3'),
    ({"chip": "esp32", "firmware": "2.2.0.0-long"},
     'firmware: must be "2.2.0" or "2.4.0" for esp32'),
])
def test_invalid_chip_or_firmware_is_a_config_error(run_vmoduled, tmp_path, tencent, message):
    line = config_error(run_vmoduled, tmp_path, tencent)
    assert "modules[0].tencent." + message in line, line


# ------------------------------------------------------------------ TCMQTTCONN timeout limit


def mqtt_module(make_daemon, tmp_path, broker, **variant):
    _, port = start(make_daemon, tmp_path, mqtt_transport="tcp", mqtt_host="127.0.0.1",
                    mqtt_port=broker.port, wifi=WIFI, **variant)
    port.expect(JOINED)
    xchg(port, 'AT+TCDEVINFOSET=1,"%s","%s","%s"' % (PID, DN, SECRET),
         b"OK\r\n+TCDEVINFOSET:OK\r\n")
    return port


@pytest.mark.parametrize("chip,firmware", [("esp8266", "2.2.0"), ("esp32", "2.2.0"),
                                           ("esp32c3", "2.4.0")])
def test_timeout_20000_accepted_from_v2_2(make_daemon, tmp_path, mosquitto, chip, firmware):
    port = mqtt_module(make_daemon, tmp_path, mosquitto(), chip=chip, firmware=firmware)
    xchg(port, "AT+TCMQTTCONN=1,20001,240,1,1", b"+CME ERROR:204\r\n")
    xchg(port, "AT+TCMQTTCONN=1,20000,240,1,1", b"OK\r\n+TCMQTTCONN:OK\r\n")
    xchg(port, "AT+TCMQTTCONN?", b"+TCMQTTCONN:1,20000,240,1,1\r\n" + OK)
    xchg(port, "AT+TCMQTTSTATE?", b"+TCMQTTSTATE:1\r\n" + OK)


def test_timeout_above_10000_refused_on_v2_1_1(make_daemon, tmp_path, mosquitto):
    port = mqtt_module(make_daemon, tmp_path, mosquitto())
    xchg(port, "AT+TCMQTTCONN=1,10001,240,1,1", b"+CME ERROR:204\r\n")
    xchg(port, "AT+TCMQTTCONN=1,20000,240,1,1", b"+CME ERROR:204\r\n")
    xchg(port, "AT+TCMQTTSTATE?", b"+TCMQTTSTATE:0\r\n" + OK)
    xchg(port, "AT+TCMQTTCONN=1,10000,240,1,1", b"OK\r\n+TCMQTTCONN:OK\r\n")
    xchg(port, "AT+TCMQTTCONN?", b"+TCMQTTCONN:1,10000,240,1,1\r\n" + OK)


# ------------------------------------------------------------------ comma inside quotes


@pytest.mark.parametrize("chip,firmware", sorted(VARIANTS))
def test_comma_inside_quotes_per_chip(make_daemon, tmp_path, mosquitto, chip, firmware):
    port = mqtt_module(make_daemon, tmp_path, mosquitto(), chip=chip, firmware=firmware)
    xchg(port, "AT+TCMQTTCONN=1,5000,240,1,1", b"OK\r\n+TCMQTTCONN:OK\r\n")
    xchg(port, 'AT+TCMQTTSUB="%s",0' % TOPIC, b"OK\r\n+TCMQTTSUB:OK\r\n")
    port.cmd('AT+TCMQTTPUB="%s",0,"x,y"' % TOPIC)
    if chip == "esp8266":
        # the core splits at the bare comma: `"x` and `y"` are unterminated
        port.expect(b"ERR CODE:0x01080000\r\n\r\nERROR\r\n")
        port.cmd('AT+TCMQTTPUB="%s",0,"x\\,y"' % TOPIC)  # what hosts send it
    port.expect(b"OK\r\n+TCMQTTPUB:OK\r\n" + b'+TCMQTTRCVPUB:"%s",3,"x,y"\r\n' % TOPIC.encode())
