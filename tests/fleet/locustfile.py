"""locustfile.py - the vmodule fleet driver: each Locust user plays an MCU
against ONE virtual module's serial endpoint (TCP or unix socket), running a
scenario file (scenario.py; format in tests/fleet/README.md). Every AT
command and every awaited URC is a Locust request (type "AT" or "URC", named
after the command or the URC's prefix), so the web UI, --csv and --html show
per-command latency and failures.

Module of a user: n = first + worker_index * per_worker + slot, slot being
the user's place among the users of its process (0, 1, ...). worker_index
comes from Locust's master (2.11+), or VMFLEET_WORKER_INDEX; per_worker from
--vm-per-worker, else -u divided by --expect-workers on the master, else the
users of the process.

With a scenario "iterations" (or --vm-iterations) each user plays that many
loop passes, then its teardown; once every user of every worker is done, the
master (or the single process) quits, writing its reports.

  locust -f tests/fleet/locustfile.py --headless -u 6 -r 100 \\
      --vm-scenario tests/fleet/scenarios/tencent_telemetry.json --vm-target tcp:127.0.0.1:7000"""

import gc
import logging
import math
import os
import sys
import time

import gevent
import locust.runners
from locust import User, events, task
from locust.exception import StopUser
from locust.runners import LocalRunner, MasterRunner, WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC, StatsCSVFileWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import link as vlink  # noqa: E402
import scenario as vscenario  # noqa: E402

log = logging.getLogger("vmfleet")

# Debian bookworm's python3-locust 2.12.1-1 has an empty version string
# (locust/_version.py), and a master refuses a worker whose "client_ready"
# carries an empty version as "an old (pre 2.0) worker": give it one.
if not locust.runners.__version__:
    locust.runners.__version__ = "2.12.1+debian"
TEARDOWN_BUDGET_S = 5.0  # a stopping user waits this long at most for its teardown replies


@events.init_command_line_parser.add_listener
def _options(parser):
    g = parser.add_argument_group("vmodule fleet")
    g.add_argument("--vm-scenario", env_var="VMFLEET_SCENARIO", default="",
                   help="scenario JSON file (tests/fleet/scenarios/...)")
    g.add_argument("--vm-target", env_var="VMFLEET_TARGET", default="",
                   help="tcp:HOST:BASEPORT (module n on BASEPORT + n - first) or unix:/path/tc{n}.sock")
    g.add_argument("--vm-first", env_var="VMFLEET_FIRST", type=int, default=0,
                   help="index of the first module (the config template's first)")
    g.add_argument("--vm-per-worker", env_var="VMFLEET_PER_WORKER", type=int, default=0,
                   help="modules per worker (0: users / expect-workers)")
    g.add_argument("--vm-box-local", env_var="VMFLEET_BOX_LOCAL", action="store_true", default=False,
                   help="each worker host runs its own vmoduled: tcp ports count from the "
                   "worker's first module, not from --vm-first")
    g.add_argument("--vm-iterations", env_var="VMFLEET_ITERATIONS", type=int, default=-1,
                   help="loop passes per user, then stop (-1: the scenario's; 0: until stopped)")
    g.add_argument("--vm-var", action="append", default=[], metavar="NAME=VALUE",
                   help="sets a scenario variable (repeatable), e.g. --vm-var broker_port=1883")
    g.add_argument("--vm-think-scale", env_var="VMFLEET_THINK_SCALE", type=float, default=1.0,
                   help="multiplies every think time (0: none)")


# --------------------------------------------------------------------------- process-wide state


class _Fleet:
    """What the users of one process share: their slots and the done count."""

    def __init__(self):
        self.slots = set()
        self.done = 0
        self.done_sent = False
        self.workers_done = set()
        self.scenarios = {}

    def take_slot(self):
        slot = 0
        while slot in self.slots:
            slot += 1
        self.slots.add(slot)
        return slot

    def scenario(self, path):
        if path not in self.scenarios:
            self.scenarios[path] = vscenario.load(path)
        return self.scenarios[path]


FLEET = _Fleet()


def worker_index(runner):
    env = os.environ.get("VMFLEET_WORKER_INDEX")
    if env is not None:
        return int(env)
    index = getattr(runner, "worker_index", 0)
    if index < 0:
        raise vscenario.ScenarioError("the master sent no worker index (Locust < 2.11): "
                                      "set VMFLEET_WORKER_INDEX on each worker")
    return index


def var_overrides(items):
    out = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not name.isidentifier():
            raise vscenario.ScenarioError("--vm-var %r: NAME=VALUE" % item)
        out[name] = value
    return out


@events.init.add_listener
def _init(environment, runner=None, **kw):
    opts = environment.parsed_options
    if isinstance(runner, MasterRunner) or isinstance(runner, LocalRunner):
        if opts and not opts.vm_per_worker and opts.num_users:
            workers = opts.expect_workers if isinstance(runner, MasterRunner) else 1
            opts.vm_per_worker = math.ceil(opts.num_users / max(1, workers))
    if isinstance(runner, MasterRunner):
        runner.register_message("vmfleet_done", _worker_done)
    if opts and not isinstance(runner, WorkerRunner):
        # fail at once on the master / single process, not once per user
        # (SystemExit passes through Locust's event handler; an error would not)
        try:
            vscenario.load(opts.vm_scenario)
            vlink.parse_target(opts.vm_target)
            var_overrides(opts.vm_var)
        except (vscenario.ScenarioError, vlink.TargetError) as e:
            log.error("vmfleet: %s", e)
            sys.exit(2)


def _worker_done(environment, msg, **kw):
    FLEET.workers_done.add(msg.node_id)
    runner = environment.runner
    log.info("vmfleet: worker %s done (%d of %d)", msg.data.get("index"), len(FLEET.workers_done),
             runner.worker_count)
    if len(FLEET.workers_done) >= runner.worker_count:
        gevent.spawn(runner.quit)


def _user_done(environment, count=1):
    """One user finished its iterations; the last of the process tells the master
    (its stats first, so they arrive before the master quits) or quits."""
    FLEET.done += count
    runner = environment.runner
    if FLEET.done < runner.target_user_count or FLEET.done_sent:
        return
    FLEET.done_sent = True
    if isinstance(runner, WorkerRunner):
        runner._send_stats()  # pylint: disable=protected-access
        runner.send_message("vmfleet_done", {"index": runner.worker_index})
    else:
        gevent.spawn(runner.quit)


@events.init.add_listener
def _zero_users(environment, runner=None, **kw):
    """A worker the master gave no user (more workers than users) is done at once."""
    if not isinstance(runner, WorkerRunner):
        return

    def spawned(user_count, **kw):
        iterations = environment.parsed_options.vm_iterations
        if user_count == 0 and (iterations > 0 or (iterations < 0 and FLEET.scenario(
                environment.parsed_options.vm_scenario)["iterations"] > 0)):
            _user_done(environment, 0)
    environment.events.spawning_complete.add_listener(spawned)


@events.quitting.add_listener
def _final_csv(environment, **kw):
    """Locust 2.12 writes --csv once a second and has no final write: give its
    writer one more turn now that the figures are final, then flush it."""
    opts = environment.parsed_options
    if not opts or not opts.csv_prefix or isinstance(environment.runner, WorkerRunner):
        return
    gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.2)
    for obj in gc.get_objects():
        if isinstance(obj, StatsCSVFileWriter):
            obj.requests_flush()
            obj.failures_flush()
            obj.exceptions_flush()
            obj.stats_history_flush()


# --------------------------------------------------------------------------- the user


class ModuleUser(User):
    """An MCU wired to one virtual module."""

    def wait_time(self):
        return 0  # the scenario's think steps pace the user

    def on_start(self):
        opts = self.environment.parsed_options
        self.slot = FLEET.take_slot()
        self.link = None
        self.set_up = False
        self.torn_down = False
        self.passes = 0
        self.scenario = FLEET.scenario(opts.vm_scenario)
        self.iterations = opts.vm_iterations if opts.vm_iterations >= 0 else self.scenario["iterations"]
        self.think_scale = opts.vm_think_scale
        runner = self.environment.runner
        per_worker = opts.vm_per_worker or runner.target_user_count
        index = worker_index(runner)
        if self.slot >= per_worker:
            raise vscenario.ScenarioError("user %d of worker %d: more users than --vm-per-worker %d" % (
                self.slot, index, per_worker))
        self.n = opts.vm_first + index * per_worker + self.slot
        port_first = self.n - self.slot if opts.vm_box_local else opts.vm_first
        self.family, self.addr, self.where = vlink.address(vlink.parse_target(opts.vm_target), self.n,
                                                           port_first)
        self.vars = vscenario.Vars(self.scenario["vars"], self.n, var_overrides(opts.vm_var))
        log.info("vmfleet: worker %d user %d -> module %d at %s", index, self.slot, self.n, self.where)

    def _report(self, request_type, name, response_time, length, exception):
        self.environment.events.request.fire(
            request_type=request_type, name=name, response_time=response_time,
            response_length=length, exception=exception, context={"module": self.n})

    def _connect(self):
        started = time.perf_counter()
        try:
            self.link = vlink.Link(self.family, self.addr)
            exc = None
        except OSError as e:
            exc = e
        self._report("LINK", "connect", (time.perf_counter() - started) * 1000, 0, exc)
        if exc:
            raise vscenario.StepFailed("%s: %s" % (self.where, exc))
        self.player = vscenario.Player(self.scenario, self.link, self.vars, self._report,
                                       self.think_scale, gevent.sleep)

    def _drop_link(self, why):
        self._report("LINK", "lost", 0, 0, vscenario.StepFailed("%s: %s" % (self.where, why)))
        self.link.close()
        self.link = None
        self.set_up = False

    @task
    def play(self):
        self.passes += 1
        self.vars.values["seq"] = self.passes - 1
        try:
            if self.link is None:
                self._connect()
            if not self.set_up:
                self.player.run(self.scenario["setup"])
                self.set_up = True
            self.player.run(self.scenario["loop"])
        except vscenario.StepFailed:
            if self.link is not None:
                self.player.forget()
        except OSError as e:
            self._drop_link(e)
        if self.iterations and self.passes >= self.iterations:
            self._finish()

    def _finish(self):
        self._teardown()
        _user_done(self.environment)
        raise StopUser()

    def _teardown(self):
        if self.torn_down or self.link is None:
            return
        self.torn_down = True
        try:
            with gevent.Timeout(TEARDOWN_BUDGET_S, vscenario.StepFailed("teardown took too long")):
                self.player.run(self.scenario["teardown"])
        except (vscenario.StepFailed, OSError):
            pass

    def on_stop(self):
        if getattr(self, "link", None) is not None:
            self._teardown()
            self.link.close()
            self.link = None
        FLEET.slots.discard(getattr(self, "slot", None))
