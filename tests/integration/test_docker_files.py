"""test_docker_files.py - the container files, checked without Docker.

Dockerfile, .dockerignore, conf/docker-compose.yml, conf/compose.json and
conf/docker.json are read as Docker would read them (a small parser for each
that covers what these files use), and the configurations are run: the real
build/vmoduled starts on each with only the host-side parts rewritten (state
directory, PTY links, TCP endpoints on loopback free ports), and for
conf/compose.json the modules then reach a real mosquitto and the real
vmodule-cloud through the compose service names ("mosquitto", "cloud"),
which a private hosts file resolves to 127.0.0.1. The README's "Docker"
section says what was verified with a Docker engine by hand."""
import copy
import json
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from cloud import CloudTool
from conftest import free_port, wait_for
from faults import hosts_file

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
COMPOSE = CONF / "docker-compose.yml"
ESP = ("tencent", "w800")


# ---------------------------------------------------------------- parsers


def dockerfile():
    """[(INSTRUCTION, args text)] of the Dockerfile, continuation lines joined."""
    out, cur = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur += line.rstrip()
        if cur.endswith("\\"):
            cur = cur[:-1] + " "
            continue
        word, _, rest = cur.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def stages():
    return [m.group(1) for i, a in dockerfile() if i == "FROM"
            for m in [re.search(r"\s+AS\s+(\S+)$", a, re.I)] if m]


def dockerignore_excludes(path):
    """Whether `docker build .` leaves `path` (relative, '/'-separated) out:
    the last pattern matching it or one of its parent directories wins
    ('!' re-includes); '**' spans directories, '*' and '?' do not."""
    pats = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines()
            if l.strip() and not l.lstrip().startswith("#")]
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    excluded = False
    for pat in pats:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        rx = re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*") \
            .replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(rx, p) for p in prefixes):
            excluded = not neg
    return excluded


def compose():
    with open(COMPOSE, encoding="utf-8") as f:
        return yaml.safe_load(f)


def expand(text):
    """${VAR:-default} and ${VAR} with every VAR unset, as compose would."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "",
                  text)


def published(entry):
    """(host_ip, host_port, container_port) of a compose `ports` entry."""
    if isinstance(entry, dict):
        return entry.get("host_ip"), str(entry.get("published", "")), str(entry["target"])
    parts = expand(str(entry)).split("/")[0].split(":")
    parts = [None] * (3 - len(parts)) + parts
    return parts[0], parts[1], parts[2]


def option(command, name):
    return command[command.index(name) + 1]


def load_conf(name):
    with open(CONF / name, encoding="utf-8") as f:
        return json.load(f)


# ---------------------------------------------------------------- the repository


def test_top_level_is_the_fixed_layout():
    cp = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True)
    if cp.returncode != 0:
        pytest.skip("not a git checkout: %s" % cp.stderr.strip())
    top = {p.split("/")[0] for p in cp.stdout.splitlines()}
    assert {t for t in top if not t.startswith(".")} == \
        {"src", "include", "conf", "scripts", "tests", "Makefile", "Dockerfile", "README.md"}


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_examples_publish_on_loopback_only():
    # `-p` of `docker run` publishes; compose's `-p` names the project
    publish = re.compile(r"docker (run|create)\s.*\s(-p|--publish)[\s=]")
    comments = [l for l in (REPO / "Dockerfile").read_text().splitlines()
                if l.lstrip().startswith("#") and publish.search(l)]
    assert comments, "the Dockerfile's comments show no `docker run -p` example"
    for line in comments:
        for value in re.findall(r"\s(?:-p|--publish)[\s=]+(\S+)", line):
            assert value.startswith("127.0.0.1:"), line


def test_dockerfile_copy_sources_exist_and_reach_the_build():
    copies = [a for i, a in dockerfile() if i in ("COPY", "ADD")]
    assert copies
    names = stages()
    for args in copies:
        words = args.split()
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")][:-1]
        src_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
        if src_stage:
            assert src_stage[0] in names, "COPY %s: no stage %s" % (args, src_stage[0])
            continue
        for p in paths:
            assert (REPO / p).exists(), "COPY source %s does not exist" % p
            assert not dockerignore_excludes(p), "COPY source %s is in .dockerignore" % p
            if (REPO / p).is_dir():
                files = [f for f in (REPO / p).rglob("*") if f.is_file()
                         and "__pycache__" not in f.parts]
                kept = [f for f in files if not dockerignore_excludes(str(f.relative_to(REPO)))]
                assert kept, "every file of %s is in .dockerignore" % p


def test_dockerignore_leaves_out_build_trees_and_git():
    for path in ("build/vmoduled", "build/src/main.o", "build-asan/vmoduled",
                 "build-fuzz/fuzz_at", ".git/HEAD", "scripts/vmcloud/__pycache__/cli.pyc"):
        assert dockerignore_excludes(path), path
    for path in ("Makefile", "src/main.c", "include", "conf/docker.json", "scripts/vmcloud/cli.py"):
        assert not dockerignore_excludes(path), path


def test_dockerfile_ships_vmodulectl_and_the_cloud_target():
    text = (REPO / "Dockerfile").read_text()
    assert {"build", "cloud", "mosquitto"} <= set(stages())
    assert "COPY --from=build /src/build/vmodulectl /usr/local/bin/vmodulectl" in text
    health = [a for i, a in dockerfile() if i == "HEALTHCHECK"]
    assert any('"/usr/local/bin/vmodulectl", "list"' in a for a in health), health
    assert re.search(r"python3-paho-mqtt", text)
    assert "COPY scripts/vmcloud " in text and "COPY scripts/vmodule-cloud " in text


# ---------------------------------------------------------------- compose file


def test_compose_publishes_every_port_on_loopback_only():
    services = compose()["services"]
    seen = 0
    for name, svc in services.items():
        assert svc.get("network_mode") != "host", name
        for entry in svc.get("ports", []):
            host_ip, host_port, _ = published(entry)
            assert host_ip == "127.0.0.1", "%s publishes %r beyond loopback" % (name, entry)
            assert host_port, "%s: %r has no fixed host port" % (name, entry)
            seen += 1
    assert seen >= 2
    ports = [published(p) for p in services["vmoduled"]["ports"]]
    assert ports == [("127.0.0.1", "5555-5557", "5555-5557")]


def test_compose_services_reference_files_that_exist():
    doc = compose()
    assert set(doc["services"]) == {"mosquitto", "cloud", "vmoduled"}
    for name, svc in doc["services"].items():
        build = svc["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == REPO, name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        if "target" in build:
            assert build["target"] in stages(), name
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith((".", "/")):
                assert (COMPOSE.parent / src).exists(), "%s mounts missing %s" % (name, src)
            else:
                assert src in (doc.get("volumes") or {}), "%s: volume %s undeclared" % (name, src)
        for dep in svc.get("depends_on", []):
            assert dep in doc["services"], name
    mounts = doc["services"]["vmoduled"]["volumes"]
    assert "./compose.json:/etc/vmodule/vmoduled.json:ro" in mounts


def test_compose_json_points_at_the_compose_services():
    doc = compose()
    svc = doc["services"]
    cloud = svc["cloud"]["command"]
    mods = {m["name"]: m for m in load_conf("compose.json")["modules"]}
    tc = mods["tencent0"]["tencent"]
    assert (tc["mqtt_host"], tc["mqtt_port"], tc["mqtt_transport"]) == ("mosquitto", 1883, "tcp")
    al = mods["me3630-0"]["me3630"]["aliyun"]
    assert (al["mqtt_host"], al["mqtt_port"], al["transport"]) == ("mosquitto", 1883, "tcp")
    assert option(cloud, "--broker") == "mosquitto:1883"
    # the cloud's registration server, by its service name, with a certificate for that name
    url = urlsplit(tc["dynreg_url"])
    http_port = int(option(cloud, "--http-port"))
    assert (url.scheme, url.hostname, url.port) == ("https", "cloud", http_port)
    assert "cloud" in [cloud[i + 1] for i, w in enumerate(cloud) if w == "--cert-host"]
    # its CA, through the volume the cloud writes its certificate directory to
    cert_dir = option(cloud, "--cert-dir")
    vol = next(v.split(":")[0] for v in svc["cloud"]["volumes"] if v.split(":")[1] == cert_dir)
    mount = next(v.split(":")[1] for v in svc["vmoduled"]["volumes"] if v.split(":")[0] == vol)
    assert tc["dynreg_ca_file"] == tc["ota_ca_file"] == mount + "/ca.crt"
    for m in mods.values():
        assert m["tcp_listen"].startswith("0.0.0.0:"), m["name"]


# ---------------------------------------------------------------- the configs run


def host_side(cfg, tmp_path):
    """The configuration with what belongs to the container's filesystem and
    network moved to tmp_path and loopback free ports; nothing else changes."""
    cfg = copy.deepcopy(cfg)
    cfg["state_dir"] = str(tmp_path / "state")
    for m in cfg["modules"]:
        m["pty_link"] = str(tmp_path / ("tty-" + m["name"]))
        m["tcp_listen"] = "127.0.0.1:0"
    return cfg


def answer_at(port, timeout=15.0):
    """Sends AT until the module answers it (a booting module drops input, and
    the power-on policy decides when it boots); returns everything read."""
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        port.cmd("AT")
        until = min(deadline, time.monotonic() + 0.75)
        while b"AT\r\n\r\nOK\r\n" not in port._pending and time.monotonic() < until:
            port._fill(1 << 16, until)
        seen += port._take(len(port._pending))
        if b"AT\r\n\r\nOK\r\n" in seen:
            return seen
    pytest.fail("%s never answered AT with AT\\r\\n\\r\\nOK\\r\\n; got %r" % (port.name, seen))


def start_conf(make_daemon, tmp_path, cfg, **kw):
    d = make_daemon(cfg["modules"], start=False, **kw)
    d.config = cfg
    d.start()
    return d


@pytest.mark.parametrize("name", ["compose.json", "docker.json"])
def test_container_config_runs_and_every_module_answers(make_daemon, tmp_path, name):
    cfg = host_side(load_conf(name), tmp_path)
    d = start_conf(make_daemon, tmp_path, cfg)
    assert d.tcp_ports.keys() == {m["name"] for m in cfg["modules"]}
    ports = [d.tcp(m["name"]) for m in cfg["modules"]]  # opened first: they boot together
    for port in ports:
        answer_at(port)
    assert d.stop() == 0


def test_compose_json_modules_reach_broker_and_cloud_by_service_name(
        make_daemon, mosquitto, tmp_path):
    broker = mosquitto()
    svc = compose()["services"]
    cmd = list(svc["cloud"]["command"])
    http_port = free_port()
    for opt, value in (("--broker", "127.0.0.1:%d" % broker.port),
                       ("--http-host", "127.0.0.1"), ("--http-port", str(http_port)),
                       ("--cert-dir", str(tmp_path / "certs"))):
        cmd[cmd.index(opt) + 1] = value
    # a product for AT+TCDEVREG, as a compose override adds one (README)
    cloud = CloudTool(cmd + ["--product", "CTQS08Y5LG:hzvf5LF9S0isvBhDSauWMaIk"])
    try:
        cloud.wait_event("listening")
        cfg = host_side(load_conf("compose.json"), tmp_path)
        tc = next(m for m in cfg["modules"] if m["name"] == "tencent0")["tencent"]
        tc["mqtt_port"] = broker.port
        tc["dynreg_url"] = tc["dynreg_url"].replace(":8443/", ":%d/" % http_port)
        tc["dynreg_ca_file"] = str(tmp_path / "certs" / "ca.crt")
        hosts = hosts_file(tmp_path / "hosts", {"mosquitto": ["127.0.0.1"],
                                                "cloud": ["127.0.0.1"]})
        d = start_conf(make_daemon, tmp_path, cfg, hosts=hosts)
        port = d.tcp("tencent0")
        seen = answer_at(port)
        if b"WIFI GOT IP\r\n" not in seen:
            port.read_until(b"WIFI GOT IP\r\n", 10)
        port.cmd('AT+TCPRDINFOSET=1,"CTQS08Y5LG","hzvf5LF9S0isvBhDSauWMaIk","Dev01"')
        port.expect(b'AT+TCPRDINFOSET=1,"CTQS08Y5LG","hzvf5LF9S0isvBhDSauWMaIk","Dev01"\r\n'
                    b"OK\r\n+TCPRDINFOSET:OK\r\n")
        port.cmd("AT+TCDEVREG")
        port.expect(b"AT+TCDEVREG\r\nOK\r\n+TCDEVREG:OK\r\n", 15)
        port.cmd("AT+TCMQTTCONN=1,5000,240,1,1")
        port.expect(b"AT+TCMQTTCONN=1,5000,240,1,1\r\nOK\r\n+TCMQTTCONN:OK\r\n", 15)
        wait_for(lambda: "CTQS08Y5LGDev01" in broker.log_text(), 5, "the module at the broker")
        d.wait_log("mqtt: connected to mosquitto:%d" % broker.port)
    finally:
        cloud.close()
