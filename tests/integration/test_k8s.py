"""test_k8s.py - the Kubernetes files of conf/k8s/ (README "Kubernetes").

Parsed with python3-yaml, no cluster: the kinds; the StatefulSet's
serviceName is the headless Service (clusterIP None) and the selector
labels of both match the pod template's; the Service's ports are the
ConfigMap config's tcp_listen base .. base + count - 1, named serial-NN;
the container runs the ConfigMap's start.sh and mounts what it reads and
writes; resource requests and limits are set.

start.sh is run with sh as it runs in a pod (HOSTNAME=vmodule-3), with a
stand-in vmoduled on PATH that records its command line and config: the
config must be the template with "first" = 3 x count and nothing else
changed. That config must then be accepted by the real vmoduled: it runs
with only the endpoints moved to free loopback ports and the state under
tmp_path, and its control socket must list modules tc00300..tc00399 with
the ports base..base+99.
"""

import json
import os
import signal
import socket
import subprocess
import textwrap

import pytest
import yaml

import ctl
from conftest import REPO, free_port_range, wait_for

K8S = REPO / "conf" / "k8s"
ORDINAL = 3


def docs():
    out = {}
    for f in sorted(K8S.glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            assert d["kind"] not in out, "two %s objects" % d["kind"]
            out[d["kind"]] = d
    return out


@pytest.fixture(name="k8s", scope="module")
def k8s_fixture():
    return docs()


def template_config(k8s):
    return json.loads(k8s["ConfigMap"]["data"]["vmoduled.json"])


def fleet_entry(k8s):
    mods = template_config(k8s)["modules"]
    assert len(mods) == 1, "one templated entry per pod"
    return mods[0]


def base_port(entry):
    host, _, port = entry["tcp_listen"].rpartition(":")
    return host, int(port)


def test_the_files_hold_a_configmap_a_headless_service_and_a_statefulset(k8s):
    assert set(k8s) == {"ConfigMap", "Service", "StatefulSet"}
    for d in k8s.values():
        assert d["apiVersion"] == ("apps/v1" if d["kind"] == "StatefulSet" else "v1")
    assert k8s["Service"]["spec"]["clusterIP"] == "None"


def test_statefulset_names_the_service_and_selects_its_own_pods(k8s):
    sts, svc = k8s["StatefulSet"]["spec"], k8s["Service"]
    assert sts["serviceName"] == svc["metadata"]["name"]
    labels = sts["template"]["metadata"]["labels"]
    assert sts["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert sts["replicas"] >= 1


def test_service_ports_are_the_module_endpoints(k8s):
    entry = fleet_entry(k8s)
    host, base = base_port(entry)
    # reachable from other pods: not loopback
    assert host == "0.0.0.0"
    ports = k8s["Service"]["spec"]["ports"]
    assert [p["port"] for p in ports] == list(range(base, base + entry["count"]))
    assert [p["name"] for p in ports] == ["serial-%02d" % i for i in range(entry["count"])]
    assert all(p.get("protocol", "TCP") == "TCP" for p in ports)
    assert all(p.get("targetPort", p["port"]) == p["port"] for p in ports)
    # an EndpointSlice holds at most 100 ports
    assert len(ports) <= 100


def test_config_template_gives_every_module_its_own_identity(k8s):
    entry = fleet_entry(k8s)
    assert entry["first"] == 0 and 1 <= entry["count"] <= 100
    assert "{n:05}" in entry["name"]
    assert entry["tencent"]["connid"] == "{n:05}"
    assert "pty_link" not in entry  # no PTY: a pod's modules are reached over TCP only


def container(k8s):
    (c,) = k8s["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    return c


def test_container_runs_start_sh_from_the_configmap(k8s):
    c = container(k8s)
    pod = k8s["StatefulSet"]["spec"]["template"]["spec"]
    assert c["command"] == ["/bin/sh", "/etc/vmodule/start.sh"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/vmodule"]]["configMap"]["name"] == \
        k8s["ConfigMap"]["metadata"]["name"]
    assert "emptyDir" in volumes[mounts["/run/vmodule"]]  # start.sh writes the config there
    claims = [t["metadata"]["name"] for t in k8s["StatefulSet"]["spec"]["volumeClaimTemplates"]]
    assert mounts["/var/lib/vmodule"] in claims  # the flash, kept per ordinal
    assert template_config(k8s)["state_dir"] == "/var/lib/vmodule"


def test_container_has_requests_limits_and_no_privileges(k8s):
    c = container(k8s)
    for kind in ("requests", "limits"):
        assert set(c["resources"][kind]) == {"cpu", "memory"}
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert k8s["StatefulSet"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def run_start_sh(k8s, tmp_path, hostname):
    """Runs the ConfigMap's start.sh as a pod would; a stand-in vmoduled
    records its arguments and the config it was given."""
    (tmp_path / "bin").mkdir(exist_ok=True)
    stub = tmp_path / "bin" / "vmoduled"
    stub.write_text(textwrap.dedent("""\
        #!/bin/sh
        printf '%s\\n' "$@" > "$STUB_OUT.args"
        cp "$2" "$STUB_OUT"
        """))
    stub.chmod(0o755)
    template = tmp_path / "template.json"
    template.write_text(k8s["ConfigMap"]["data"]["vmoduled.json"])
    script = tmp_path / "start.sh"
    script.write_text(k8s["ConfigMap"]["data"]["start.sh"])
    (tmp_path / "run").mkdir(exist_ok=True)
    env = dict(os.environ, HOSTNAME=hostname, VMODULE_TEMPLATE=str(template),
               VMODULE_CONFIG=str(tmp_path / "run" / "vmoduled.json"),
               STUB_OUT=str(tmp_path / "seen.json"),
               PATH="%s:%s" % (tmp_path / "bin", os.environ.get("PATH", "/usr/bin:/bin")))
    return subprocess.run(["/bin/sh", str(script)], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=10, check=False)


def test_start_sh_sets_first_from_the_pod_ordinal(k8s, tmp_path):
    cp = run_start_sh(k8s, tmp_path, "vmodule-%d" % ORDINAL)
    assert cp.returncode == 0, cp.stderr
    args = (tmp_path / "seen.json.args").read_text().split("\n")[:-1]
    assert args == ["-c", str(tmp_path / "run" / "vmoduled.json")]
    got = json.loads((tmp_path / "seen.json").read_text())
    want = template_config(k8s)
    count = want["modules"][0]["count"]
    want["modules"][0]["first"] = ORDINAL * count
    assert got == want
    assert "modules %d..%d" % (ORDINAL * count, ORDINAL * count + count - 1) in cp.stderr


def test_start_sh_refuses_a_hostname_without_ordinal(k8s, tmp_path):
    cp = run_start_sh(k8s, tmp_path, "vmodule")
    assert cp.returncode == 2
    assert cp.stderr == "start.sh: no StatefulSet ordinal in hostname 'vmodule'\n"
    assert not (tmp_path / "seen.json").exists()


def test_pod_config_is_accepted_by_vmoduled(k8s, tmp_path, vmoduled_bin):
    cp = run_start_sh(k8s, tmp_path, "vmodule-%d" % ORDINAL)
    assert cp.returncode == 0, cp.stderr
    config = json.loads((tmp_path / "seen.json").read_text())
    entry = config["modules"][0]
    count, first = entry["count"], entry["first"]
    base = free_port_range(count)
    entry["tcp_listen"] = "127.0.0.1:%d" % base
    config["state_dir"] = str(tmp_path / "state")
    config["control_socket"] = str(tmp_path / "ctl.sock")
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(config, indent=2))
    with open(tmp_path / "vmoduled.log", "wb") as log:
        proc = subprocess.Popen([vmoduled_bin, "-c", str(path)], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    try:
        def listening():
            assert proc.poll() is None, (tmp_path / "vmoduled.log").read_text()
            try:
                ctl.connect(tmp_path / "ctl.sock").close()
                return True
            except OSError:
                return False
        wait_for(listening, timeout=10, what="the control socket")
        c = ctl.Ctl(tmp_path / "ctl.sock")
        try:
            listed = c.request("list")
            assert listed["ok"], listed
            names = [m["name"] for m in listed["result"]]
            assert names == ["tc%05d" % n for n in range(first, first + count)]
            for pos in (0, count - 1):
                st = c.request("status", "tc%05d" % (first + pos))
                assert st["ok"] and st["result"]["tcp"] == "127.0.0.1:%d" % (base + pos), st
        finally:
            c.close()
        socket.create_connection(("127.0.0.1", base + count - 1), timeout=5).close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, (tmp_path / "vmoduled.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
