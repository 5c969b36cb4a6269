"""test_store_kill9.py - the module's "flash" survives SIGKILL at any moment.

The store replaces state.json atomically (temp file, fsync, rename, fsync of
the directory). This test kills the daemon with SIGKILL at random moments
while AT+CWMODE writes are being committed, and checks after every kill that
state.json is either absent (only possible before the first write) or a valid
JSON object holding either the mode stored before the round or one of the
modes sent during it; and that the next start answers AT+CWMODE? with exactly
what the file holds (so no temp file left by a kill confuses a restart).

The kill moments come from a seeded random.Random, so a failure reproduces
with the same seed (VM_KILL9_SEED overrides it).
"""

import json
import os
import random
import time

from conftest import module_config

SEED = int(os.environ.get("VM_KILL9_SEED", "20261121"))
ROUNDS = 30
OK = b"\r\nOK\r\n"


def stored_cwmode(doc):
    """Where the daemon keeps CWMODE in state.json (its esp_wifi layout:
    {"wifi": {"mode": N, ...}}). The only place this test knows the layout."""
    return doc["wifi"]["mode"]


def read_state(path):
    """None if absent; otherwise the parsed document (the test fails on a
    damaged file)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise AssertionError("state.json is not valid JSON after SIGKILL (%s): %r" % (e, text))
    assert isinstance(doc, dict), "state.json is not a JSON object: %r" % text
    return doc


def test_store_survives_sigkill_at_any_moment(make_daemon, tmp_path):
    rng = random.Random(SEED)
    mod = module_config(tmp_path, "k0", echo=False, boot_ms=10)
    d = make_daemon([mod], start=False)
    path = d.state_path()
    stored = None  # mode in state.json after the previous kill (None: no file yet)
    t_start = time.monotonic()

    for rnd in range(ROUNDS):
        d.start()
        port = d.port()
        # the restarted module reports exactly what the file holds
        port.cmd("AT+CWMODE?")
        port.expect(b"+CWMODE:%d\r\n" % (stored or 1) + OK)

        first = rng.randint(1, 3)
        modes = [(first - 1 + i) % 3 + 1 for i in range(rng.randint(3, 12))]
        if rng.random() < 0.5:
            # one command at a time: each commit lands while the previous
            # write is in flight, so the store keeps writing until the kill
            for n in modes:
                port.cmd("AT+CWMODE=%d" % n)
                port.expect(OK)
        else:
            # a burst: the kill may land before, during or after the write
            port.send(b"".join(b"AT+CWMODE=%d\r\n" % n for n in modes))
        # the random kill moment is the point of this test, hence the sleep
        time.sleep(rng.uniform(0, 0.004) if rng.random() < 0.7 else rng.uniform(0, 0.03))
        d.kill9()

        doc = read_state(path)
        where = "round %d (seed %d), sent %s, previously stored %s" % (rnd, SEED, modes, stored)
        if doc is None:
            assert stored is None, "state.json vanished after SIGKILL in " + where
            continue
        mode = stored_cwmode(doc)
        assert mode == stored or mode in modes, "state.json holds cwmode %r in %s" % (mode, where)
        stored = mode

    assert stored is not None, "no round ever persisted a mode (kills always too early?)"
    # a final clean start over whatever the last kill left behind
    d.start()
    port = d.port()
    port.cmd("AT+CWMODE?")
    port.expect(b"+CWMODE:%d\r\n" % stored + OK)
    d.stop()
    assert stored_cwmode(read_state(path)) == stored
    assert time.monotonic() - t_start < 30, "the kill loop is too slow"
