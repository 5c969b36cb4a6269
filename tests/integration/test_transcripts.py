"""test_transcripts.py - replays every golden AT dialogue in tests/transcripts/.

Each file tests/transcripts/**/*.txt is one test case (parametrized by its
path relative to tests/transcripts). Adding a case is adding a file.

File format (one directive per line):

    # comment                  ignored (so are blank lines)
    @dialect NAME              the module's dialect (required: tencent, w800, ...)
    @module {json}             merged into the module config (repeatable; nested
                               objects merge, other values replace). The defaults
                               are the fast test defaults: baud 0, boot_ms 50.
    @broker default            start a plain mosquitto (anonymous, loopback) and
                               define ${BROKER_PORT}
    > text                     bytes sent to the module
    < text                     bytes expected from the module; consecutive `<`
                               lines are concatenated and compared exactly, as one
                               block (10 s timeout per block)
    ! wait_ready               expect the boot banner \\r\\nready\\r\\n (done
                               automatically once before the first line)
    ! silence SECONDS          expect no byte for SECONDS (only where silence is
                               the behaviour under test)

`@` lines must come before the dialogue. In `>`/`<` text everything after the
two-character prefix ("> " or "< ") is literal, spaces included, except the
escapes \\r \\n \\\\ \\" \\xNN. There is no implicit line end: write \\r\\n.
Placeholders ${BROKER_PORT} (after `@broker default`) and ${TMP} (the test's
temporary directory) are replaced in `@module` values and in `>`/`<` text.

At the end of the file, bytes that already arrived but were not expected fail
the test (no waiting: add `! silence` if the quiet period itself matters).
"""

import json
import socket
import re
from pathlib import Path

import pytest

from conftest import deep_merge, module_config

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "transcripts"
BLOCK_TIMEOUT = 10.0

_ESCAPE_RE = re.compile(rb"\\(x[0-9A-Fa-f]{2}|.)|\\$")
_SIMPLE = {b"r": b"\r", b"n": b"\n", b"\\": b"\\", b'"': b'"'}
_PLACEHOLDER_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TranscriptError(Exception):
    pass


def unescape(text, where):
    """Transcript text -> bytes (escapes \\r \\n \\\\ \\" \\xNN only)."""
    raw = text.encode("utf-8")

    def one(m):
        code = m.group(1)
        if code is None:
            raise TranscriptError("%s: dangling backslash at end of line" % where)
        if code in _SIMPLE:
            return _SIMPLE[code]
        if code[:1] == b"x" and len(code) == 3:
            return bytes([int(code[1:], 16)])
        raise TranscriptError("%s: unknown escape \\%s" % (where, code.decode("utf-8", "replace")))

    return _ESCAPE_RE.sub(one, raw)


def substitute(text, values, where):
    def one(m):
        if m.group(1) not in values:
            raise TranscriptError("%s: unknown placeholder ${%s} (known: %s)" % (
                where, m.group(1), ", ".join(sorted(values)) or "none"))
        return str(values[m.group(1)])
    return _PLACEHOLDER_RE.sub(one, text)


def parse(path):
    """Returns (headers, steps). headers: {"dialect", "modules" (list of raw
    JSON texts with line numbers), "broker"}; steps: list of (kind, arg,
    where) with kind in send/expect/wait_ready/silence; text is still raw."""
    headers = {"dialect": None, "modules": [], "broker": None}
    steps = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").split("\n"), 1):
        line = line.rstrip("\r")
        where = "%s:%d" % (path.name, lineno)
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("@"):
            if steps:
                raise TranscriptError("%s: @ directives must come before the dialogue" % where)
            word, _, rest = line[1:].partition(" ")
            rest = rest.strip()
            if word == "dialect" and rest:
                headers["dialect"] = rest
            elif word == "module" and rest:
                headers["modules"].append((rest, where))
            elif word == "broker" and rest == "default":
                headers["broker"] = rest
            else:
                raise TranscriptError("%s: unknown directive %r" % (where, line))
        elif line.startswith("> ") or line == ">":
            steps.append(("send", line[2:], where))
        elif line.startswith("< ") or line == "<":
            steps.append(("expect", line[2:], where))
        elif line.startswith("!"):
            words = line[1:].split()
            if words == ["wait_ready"]:
                steps.append(("wait_ready", None, where))
            elif len(words) == 2 and words[0] == "silence":
                try:
                    steps.append(("silence", float(words[1]), where))
                except ValueError:
                    raise TranscriptError("%s: bad duration %r" % (where, words[1])) from None
            else:
                raise TranscriptError("%s: unknown action %r" % (where, line))
        else:
            raise TranscriptError("%s: a line must start with #, @, >, < or !: %r" % (where, line))
    if not headers["dialect"]:
        raise TranscriptError("%s: no @dialect line" % path.name)
    return headers, steps


def collect():
    return sorted(p.relative_to(TRANSCRIPTS).as_posix() for p in TRANSCRIPTS.rglob("*.txt"))


def run_steps(port, steps, values):
    """Executes the dialogue: sends, and compares each block of `<` lines."""
    block, block_where = b"", None

    def flush():
        nonlocal block, block_where
        if block:
            port.name = "%s (block at %s)" % (port.name.split(" (")[0], block_where)
            port.expect(block, BLOCK_TIMEOUT)
        block, block_where = b"", None

    for kind, arg, where in steps:
        if kind == "expect":
            block += unescape(substitute(arg, values, where), where)
            block_where = block_where or where
            continue
        flush()
        if kind == "send":
            port.send(unescape(substitute(arg, values, where), where))
        elif kind == "wait_ready":
            port.wait_ready(BLOCK_TIMEOUT)
        elif kind == "silence":
            port.expect_silence(arg)
    flush()
    port.expect_nothing_pending()


@pytest.mark.parametrize("name", collect())
def test_transcript(name, tmp_path, make_daemon, mosquitto):
    path = TRANSCRIPTS / name
    headers, steps = parse(path)
    values = {"TMP": str(tmp_path)}
    if headers["broker"] == "default":
        values["BROKER_PORT"] = mosquitto().port

    mod = module_config(tmp_path, "tx0", headers["dialect"])
    for raw, where in headers["modules"]:
        try:
            extra = json.loads(substitute(raw, values, where))
        except json.JSONDecodeError as e:
            raise TranscriptError("%s: bad JSON in @module: %s" % (where, e)) from None
        if not isinstance(extra, dict):
            raise TranscriptError("%s: @module needs a JSON object" % where)
        deep_merge(mod, extra)

    daemon = make_daemon([mod])
    port = daemon.port(mod["name"], wait_ready=False)
    port.wait_ready(BLOCK_TIMEOUT)
    run_steps(port, steps, values)


def test_transcript_files_exist():
    """The runner must not silently pass with nothing to run."""
    assert collect(), "no transcripts found under %s" % TRANSCRIPTS


@pytest.mark.parametrize("text,expected", [
    (r"AT\r\n", b"AT\r\n"),
    (r'AT+CWJAP=\"a\\b\"', b'AT+CWJAP="a\\b"'),
    (r"\x00\xff\x41 ", b"\x00\xffA "),
    ("plain", b"plain"),
])
def test_unescape(text, expected):
    assert unescape(text, "t") == expected


@pytest.mark.parametrize("text", [r"\q", "end\\", r"\x4"])
def test_unescape_rejects_bad_escapes(text):
    with pytest.raises(TranscriptError):
        unescape(text, "t")


def test_parse_rejects_headers_after_dialogue(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("@dialect tencent\n> AT\\r\\n\n@module {}\n")
    with pytest.raises(TranscriptError, match="before the dialogue"):
        parse(p)


def test_placeholders_are_substituted_and_unknown_ones_rejected():
    assert substitute("x${BROKER_PORT}y${TMP}", {"BROKER_PORT": 1883, "TMP": "/t"}, "t") \
        == "x1883y/t"
    with pytest.raises(TranscriptError, match="BROKER_PORT"):
        substitute("${BROKER_PORT}", {"TMP": "/t"}, "t")


# An MQTT 3.1.1 CONNECT (clean session, keepalive 5, empty client id) and the
# CONNACK mosquitto answers it with.
_CONNECT = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 5, 0, 0])
_CONNACK = bytes([0x20, 2, 0, 0])


def _mqtt_connect(port, timeout=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(_CONNECT)
    return s


def test_broker_fixture_pause_resume_kill_restart_same_port(mosquitto):
    """The `@broker default` broker, and the controls later tests rely on."""
    b = mosquitto()
    with _mqtt_connect(b.port) as s:
        assert s.recv(4) == _CONNACK
    b.pause()                                   # SIGSTOP: accepts, never answers
    s = _mqtt_connect(b.port)
    s.settimeout(0.3)
    with pytest.raises(socket.timeout):
        s.recv(4)
    b.resume()                                  # SIGCONT: the pending CONNECT is answered
    s.settimeout(5)
    assert s.recv(4) == _CONNACK
    s.close()
    port = b.port
    b.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
    b.start()
    assert b.port == port
    with _mqtt_connect(b.port) as s:
        assert s.recv(4) == _CONNACK
    b.restart()
    with _mqtt_connect(b.port) as s:
        assert s.recv(4) == _CONNACK
