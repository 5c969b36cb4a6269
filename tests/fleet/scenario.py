"""scenario.py - the MCU scenarios the Locust fleet driver plays (tests/fleet/README.md).

A scenario is a JSON file: variables, then the steps of three phases
(setup once per module, loop repeated, teardown at the end). This file
loads and checks it (load), expands ${var} references for one module
(Vars), and plays steps over a line-oriented serial link (Player), calling
report(request_type, name, response_time_ms, length, exception) once per AT
command and per awaited URC. No Locust import here: locustfile.py wires
report() to Locust's request event.

Matching is by line: the bytes from the module are split at LF, CR
removed, empty lines dropped. An AT step's reply lines must arrive after
the command, in order; lines in between that are not replies go to a pool
that later URC steps look in first (a URC often comes before the final OK
of the command that caused it)."""

import json
import random
import re
import time

DEFAULT_TIMEOUT = 5.0
# Lines that end an AT command with an error whatever the step expects
# (ESP-AT and the tencent firmware's final errors, 3GPP's CME/CMS errors).
DEFAULT_FAIL = [r"ERROR", r"\+CME ERROR:.*", r"\+CMS ERROR:.*", r"busy [ps]\.\.\.", r"CMD (FORMAT|PARSE) ERR"]
POOL_MAX = 1000  # unclaimed lines kept for URC steps (the oldest go first)
STEP_KEYS = {
    "at": {"at", "reply", "fail", "timeout", "name", "report", "prompt", "data", "data_eol"},
    "urc": {"urc", "fail", "timeout", "name", "since", "report"},
    "sync": {"sync", "reply", "timeout", "name", "report", "every"},
    "think": {"think"},
    "repeat": {"repeat", "steps"},
}
TOP_KEYS = {"name", "description", "dialect", "vars", "iterations", "setup", "loop", "teardown",
            "fail", "eol"}
SYNC_EVERY = 0.2  # seconds between the tries of a sync step
_VAR = re.compile(r"\$\{(\w+)(?::([^}]*))?\}")


class ScenarioError(Exception):
    """The scenario file is wrong (raised at load, before any traffic)."""


class StepFailed(Exception):
    """A reply or URC did not come as expected (the Locust request's exception)."""


# --------------------------------------------------------------------------- loading


def _kind(step, where):
    if not isinstance(step, dict):
        raise ScenarioError("%s: a step is an object" % where)
    kinds = [k for k in STEP_KEYS if k in step]
    if len(kinds) != 1:
        raise ScenarioError("%s: a step has exactly one of %s" % (where, ", ".join(sorted(STEP_KEYS))))
    kind = kinds[0]
    extra = set(step) - STEP_KEYS[kind]
    if extra:
        raise ScenarioError("%s: unknown key %s in a %s step" % (where, sorted(extra)[0], kind))
    return kind


def _matcher(spec, where):
    """"text" (the whole line) or {"regex": "..."} (must match the whole line)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict) and set(spec) == {"regex"} and isinstance(spec["regex"], str):
        try:
            re.compile(spec["regex"])
        except re.error as e:
            raise ScenarioError("%s: bad regex: %s" % (where, e)) from None
        return spec
    raise ScenarioError('%s: a line is "text" or {"regex": "..."}' % where)


def _check_steps(steps, where):
    if not isinstance(steps, list):
        raise ScenarioError("%s: a list of steps" % where)
    for i, step in enumerate(steps):
        w = "%s[%d]" % (where, i)
        kind = _kind(step, w)
        if kind == "repeat":
            if not isinstance(step["repeat"], int) or step["repeat"] < 1:
                raise ScenarioError("%s.repeat: an integer >= 1" % w)
            _check_steps(step.get("steps"), w + ".steps")
            continue
        if kind == "think":
            t = step["think"]
            ok = (isinstance(t, (int, float)) and t >= 0) or (
                isinstance(t, list) and len(t) == 2 and all(isinstance(x, (int, float)) for x in t)
                and 0 <= t[0] <= t[1])
            if not ok:
                raise ScenarioError("%s.think: seconds, or [min, max]" % w)
            continue
        if kind == "urc" and isinstance(step["urc"], dict):
            step["urc"] = _matcher(step["urc"], w + ".urc")
        elif not isinstance(step[kind], str) or not step[kind]:
            raise ScenarioError("%s.%s: a non-empty string" % (w, kind))
        reply = step.get("reply", ["OK"])
        if kind == "sync" and isinstance(reply, (str, dict)):
            reply = [reply]
        if kind in ("at", "sync"):
            if not isinstance(reply, list) or not reply:
                raise ScenarioError("%s.reply: a non-empty list of lines" % w)
            step["reply"] = [_matcher(r, w + ".reply") for r in reply]
        if kind == "at" and "data" in step:
            prompt = step.setdefault("prompt", ["OK", ">"])
            if not isinstance(prompt, list) or not prompt:
                raise ScenarioError("%s.prompt: a non-empty list of lines" % w)
            step["prompt"] = [_matcher(p, w + ".prompt") for p in prompt]
            if not isinstance(step["data"], str) or not isinstance(step.get("data_eol", ""), str):
                raise ScenarioError("%s.data, data_eol: strings" % w)
        elif kind == "at" and ("prompt" in step or "data_eol" in step):
            raise ScenarioError("%s: prompt and data_eol go with data" % w)
        step["fail"] = [_matcher(f, w + ".fail") for f in step.get("fail", [])]
        timeout = step.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ScenarioError("%s.timeout: seconds > 0" % w)
        every = step.get("every", SYNC_EVERY)
        if not isinstance(every, (int, float)) or every <= 0:
            raise ScenarioError("%s.every: seconds > 0" % w)
        if step.get("since", "command") not in ("command", "step"):
            raise ScenarioError('%s.since: "command" or "step"' % w)


def parse(doc, where="scenario"):
    """Checks a scenario (a dict from JSON) and returns it with defaults set."""
    if not isinstance(doc, dict):
        raise ScenarioError("%s: a JSON object" % where)
    extra = set(doc) - TOP_KEYS
    if extra:
        raise ScenarioError("%s: unknown key %s" % (where, sorted(extra)[0]))
    variables = doc.setdefault("vars", {})
    if not isinstance(variables, dict) or not all(isinstance(v, (str, int, float)) for v in variables.values()):
        raise ScenarioError("%s.vars: an object of strings and numbers" % where)
    iterations = doc.setdefault("iterations", 0)
    if not isinstance(iterations, int) or iterations < 0:
        raise ScenarioError("%s.iterations: an integer >= 0 (0: until Locust stops)" % where)
    doc["fail"] = [_matcher(f, where + ".fail") for f in doc.get("fail", DEFAULT_FAIL)]
    if doc.setdefault("eol", "\r\n") not in ("\r\n", "\r", "\n"):
        raise ScenarioError('%s.eol: "\\r\\n", "\\r" or "\\n"' % where)
    for phase in ("setup", "loop", "teardown"):
        steps = doc.setdefault(phase, [])
        _check_steps(steps, "%s.%s" % (where, phase))
    if not doc["loop"]:
        raise ScenarioError("%s.loop: at least one step" % where)
    return doc


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        raise ScenarioError("%s: %s" % (path, e)) from None
    return parse(doc, path)


# --------------------------------------------------------------------------- variables


class Vars:
    """${name} and ${name:spec} (a Python format spec, e.g. ${n:03}) for one
    module: n (its index), seq (the loop pass, from 0), the scenario's vars
    (themselves expanded, in file order; `overrides` replace their values)
    and now_ms (wall clock)."""

    def __init__(self, scenario_vars, n, overrides=None):
        self.values = {"n": n, "seq": 0}
        scenario_vars = dict(scenario_vars, **(overrides or {}))
        for key, value in scenario_vars.items():
            self.values[key] = self.expand(value) if isinstance(value, str) else value

    def expand(self, text):
        def one(m):
            key, spec = m.group(1), m.group(2) or ""
            if key == "now_ms":
                value = int(time.time() * 1000)
            elif key in self.values:
                value = self.values[key]
            else:
                raise ScenarioError("unknown variable ${%s}" % key)
            return format(value, spec)
        return _VAR.sub(one, text)


# --------------------------------------------------------------------------- playing


def _matches(spec, line):
    if isinstance(spec, str):
        return line == spec
    return re.fullmatch(spec["regex"], line) is not None


def command_name(line):
    """AT+TCMQTTCONN=1,... -> AT+TCMQTTCONN; queries and tests keep their
    suffix (AT+TCMQTTSTATE?, AT+CWJAP=?) since they are other requests."""
    if line.endswith("=?"):
        return line
    return line.split("=", 1)[0]


def urc_prefix(text):
    """+TCMQTTCONN:OK -> +TCMQTTCONN; WIFI GOT IP -> WIFI GOT IP."""
    return re.split(r"[:,]", text, 1)[0]


class Player:
    """Plays steps over `link` (an object with send(bytes) and
    next_line(deadline) -> (arrival, line) or None at the deadline; raises
    OSError when the link is gone)."""

    def __init__(self, scenario, link, variables, report, think_scale=1.0, sleep=time.sleep):
        self.scenario = scenario
        self.link = link
        self.vars = variables
        self.report = report
        self.think_scale = think_scale
        self.sleep = sleep
        self.pool = []          # (arrival, line) not claimed by any step
        self.last_command = time.perf_counter()

    def run(self, steps):
        """Plays steps in order; raises StepFailed at the first failure."""
        for step in steps:
            if "repeat" in step:
                for _ in range(step["repeat"]):
                    self.run(step["steps"])
            elif "think" in step:
                t = step["think"]
                seconds = random.uniform(t[0], t[1]) if isinstance(t, list) else t
                if seconds * self.think_scale > 0:
                    self.sleep(seconds * self.think_scale)
            elif "sync" in step:
                self._sync(step)
            elif "at" in step:
                self._at(step)
            else:
                self._urc(step)

    def forget(self):
        """Drops the pool and what is already received (after a failure, the
        next pass must not match stale lines)."""
        self.pool = []
        while self.link.next_line(0) is not None:
            pass

    # -- one step each

    def _fire(self, step, kind, name, started, end, length, exc):
        if step.get("report", True):
            # a URC taken from the pool may have come before the anchor: 0 ms
            self.report(kind, step.get("name", name), max(0.0, end - started) * 1000.0, length, exc)
        if exc is not None:
            raise exc

    def _pooled(self, line):
        self.pool.append(line)
        del self.pool[:-POOL_MAX]

    def _send(self, line):
        # leftovers from before this command are URCs for later steps
        while True:
            got = self.link.next_line(0)
            if got is None:
                break
            self._pooled(got)
        started = time.perf_counter()
        self.link.send((line + self.scenario["eol"]).encode("latin-1"))
        self.last_command = started
        return started

    def _at(self, step):
        """A command; with "data", a data-entry command: the prompt lines, then
        the data, then the reply lines, all one request."""
        data = None
        if "data" in step:
            data = self.vars.expand(step["data"])
            self.vars.values["data_len"] = len(data.encode("latin-1"))
        line = self.vars.expand(step["at"])
        started = self._send(line)
        deadline = started + step.get("timeout", DEFAULT_TIMEOUT)
        exc, end, length = None, started, 0
        if data is not None:
            exc, end, length = self._await_replies(dict(step, reply=step["prompt"]), deadline)
            if exc is None:
                self.link.send((data + step.get("data_eol", "")).encode("latin-1"))
        if exc is None:
            exc, end, more = self._await_replies(step, deadline)
            length += more
        self._fire(step, "AT", command_name(line), started, end, length, exc)

    def _await_replies(self, step, deadline):
        """(exception or None, time of the last reply, bytes of the replies)."""
        want = [self._expand_spec(s) for s in step["reply"]]
        fails = step["fail"] + self.scenario["fail"]
        got, length = 0, 0
        while got < len(want):
            item = self.link.next_line(deadline)
            if item is None:
                return (StepFailed("timeout after %.1f s waiting for %s" % (
                    step.get("timeout", DEFAULT_TIMEOUT), _show(want[got]))), time.perf_counter(), length)
            arrival, text = item
            if _matches(want[got], text):
                got += 1
                length += len(text) + 2
                if got == len(want):
                    return None, arrival, length
            elif any(_matches(f, text) for f in fails):
                return StepFailed("got %r, expected %s" % (text, _show(want[got]))), arrival, length
            else:
                self._pooled(item)
        return None, time.perf_counter(), length

    def _sync(self, step):
        """Sends the line every `every` seconds until the reply comes (a module
        that is still booting discards what it receives; a modem is not yet
        registered); one request, timed from the first try."""
        line = self.vars.expand(step["sync"])
        deadline = time.perf_counter() + step.get("timeout", DEFAULT_TIMEOUT)
        first = None
        while True:
            started = self._send(line)
            first = first or started
            every = step.get("every", SYNC_EVERY)
            exc, end, length = self._await_replies(dict(step, fail=[]), min(deadline, started + every))
            if exc is None:
                self.pool = []  # what came before the module answered is boot noise
                return self._fire(step, "AT", command_name(line), first, end, length, None)
            if time.perf_counter() >= deadline:
                return self._fire(step, "AT", command_name(line), first, time.perf_counter(), 0,
                                  StepFailed("no %s to %r within %.1f s" % (
                                      _show(step["reply"][-1]), line, step.get("timeout", DEFAULT_TIMEOUT))))

    def _urc(self, step):
        started = self.last_command if step.get("since", "command") == "command" else time.perf_counter()
        want = self._expand_spec(step["urc"])
        prefix = urc_prefix(want) if isinstance(want, str) else None
        name = prefix or want["regex"]
        fails = step["fail"]

        def verdict(text):
            if _matches(want, text):
                return "ok"
            if any(_matches(f, text) for f in fails) or (
                    prefix and prefix != want and urc_prefix(text) == prefix):
                return "fail"
            return None

        for i, (arrival, text) in enumerate(self.pool):
            v = verdict(text)
            if v:
                del self.pool[i]
                exc = None if v == "ok" else StepFailed("got %r, expected %s" % (text, _show(want)))
                return self._fire(step, "URC", name, started, arrival, len(text) + 2, exc)
        timeout = step.get("timeout", DEFAULT_TIMEOUT)
        deadline = time.perf_counter() + timeout
        while True:
            item = self.link.next_line(deadline)
            if item is None:
                return self._fire(step, "URC", name, started, time.perf_counter(), 0,
                                  StepFailed("timeout after %.1f s waiting for %s" % (timeout, _show(want))))
            v = verdict(item[1])
            if v:
                exc = None if v == "ok" else StepFailed("got %r, expected %s" % (item[1], _show(want)))
                return self._fire(step, "URC", name, started, item[0], len(item[1]) + 2, exc)
            self._pooled(item)

    def _expand_spec(self, spec):
        if isinstance(spec, str):
            return self.vars.expand(spec)
        return {"regex": self.vars.expand(spec["regex"])}


def _show(spec):
    return repr(spec) if isinstance(spec, str) else "/%s/" % spec["regex"]
