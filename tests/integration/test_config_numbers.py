"""Config numbers and duplicate keys (issue 10): the real daemon refuses a
number that is out of range, not an integer or infinite (1e999 is inf in
cJSON) before casting it, and a key given twice in any object, with exit
status 2 and one line naming the key. Under `make asan` (which adds
-fsanitize=float-cast-overflow) a cast of 1e300 would be a sanitizer report,
which fails run_vmoduled."""
import pytest

BAD_NUMBERS = ["1e300", "-1e300", "1.5", "1e999"]

# (dialect, module members with %s for the value, the key named in the error)
NUMBER_KEYS = [
    ("tencent", '"baud":%s', "modules[0].baud"),
    ("tencent", '"tencent":{"mqtt_port":%s}', "modules[0].tencent.mqtt_port"),
    ("tencent", '"tencent":{"wifi":{"join_ms":%s}}', "modules[0].tencent.wifi.join_ms"),
    ("w800", '"w800":{"reconnect_interval_ms":%s}', "modules[0].w800.reconnect_interval_ms"),
    ("w800", '"w800":{"wifi":{"access_points":[{"ssid":"lab","channel":%s}]}}',
     "modules[0].w800.wifi.access_points[0].channel"),
    ("me3630", '"me3630":{"network":{"csq":%s}}', "modules[0].me3630.network.csq"),
]


def _config(tmp_path, dialect, members):
    return ('{"state_dir":"%s","modules":[{"name":"m0","dialect":"%s","pty_link":"%s",%s}]}'
            % (tmp_path / "state", dialect, tmp_path / "tty0", members))


def _expect_config_error(run_vmoduled, tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    cp = run_vmoduled(["-c", path])
    assert cp.returncode == 2, "exit status %s, stderr %r" % (cp.returncode, cp.stderr)
    assert cp.stdout == ""
    lines = cp.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vmoduled: config: " + message), cp.stderr
    assert not (tmp_path / "tty0").exists()


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("dialect,members,key", NUMBER_KEYS, ids=[k[2] for k in NUMBER_KEYS])
def test_bad_number_is_a_config_error_naming_the_key(run_vmoduled, tmp_path, dialect, members,
                                                     key, value):
    _expect_config_error(run_vmoduled, tmp_path, _config(tmp_path, dialect, members % value),
                         key + ": must be an integer between ")


DUPLICATES = [
    ("tencent", '"tencent":{"gmr":["AT version:1"],"gmr":["AT version:2"]}',
     "modules[0].tencent.gmr"),
    ("tencent", '"baud":9600,"echo":true,"baud":0', "modules[0].baud"),
    ("w800", '"w800":{"wifi":{"access_points":[{"ssid":"a","password":"x","password":"y"}]}}',
     "modules[0].w800.wifi.access_points[0].password"),
    ("me3630", '"me3630":{"network":{"csq":9,"csq":20}}', "modules[0].me3630.network.csq"),
]


@pytest.mark.parametrize("dialect,members,key", DUPLICATES, ids=[k[2] for k in DUPLICATES])
def test_duplicate_key_is_a_config_error_naming_it(run_vmoduled, tmp_path, dialect, members, key):
    _expect_config_error(run_vmoduled, tmp_path, _config(tmp_path, dialect, members),
                         key + ": duplicate key")


def test_duplicate_top_level_key(run_vmoduled, tmp_path):
    text = _config(tmp_path, "tencent", '"baud":0')
    text = text[:-1] + ',"log_level":"info","log_level":"debug"}'
    _expect_config_error(run_vmoduled, tmp_path, text, "log_level: duplicate key")
