"""test_fleet.py - many modules in one daemon, and the kernel resources they share.

One vmoduled runs 300 tencent modules: more than the 128 inotify instances
fs.inotify.max_user_instances allows by default (counted over every process
of the user), which an instance per PTY used to hit. It must start, hold
exactly one inotify instance, serve its last module, and stop on SIGTERM
with every symlink removed. The file descriptor limit: the daemon raises its
soft RLIMIT_NOFILE to the hard limit, and warns when the hard limit is below
what its modules may need.

The limits are set for the daemon alone by a small exec wrapper, so nothing
here depends on this machine's own limits.
"""

import os
import resource
import sys
import time

from conftest import module_config

FLEET = 300
IDLE_TENCENT_FDS = 2  # PTY master and the held slave (src/module.c)
DAEMON_FDS = 16       # src/main.c


def fleet(tmp_path, n):
    return [module_config(tmp_path, "m%d" % i) for i in range(n)]


def fd_targets(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except FileNotFoundError:
            pass
    return out


def nofile_limits(pid):
    """(soft, hard) of "Max open files" in /proc/<pid>/limits."""
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files in /proc/%d/limits" % pid)


def with_nofile_limit(d, tmp_path, soft, hard):
    """Makes d start through a wrapper that sets RLIMIT_NOFILE, then execs
    vmoduled (same pid, same environment)."""
    wrapper = tmp_path / ("nofile-%d-%d" % (soft, hard))
    wrapper.write_text(
        "#!%s\nimport os, resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (%d, %d))\n"
        "os.execv(%r, [%r] + sys.argv[1:])\n" % (sys.executable, soft, hard, d.binary, d.binary))
    wrapper.chmod(0o755)
    d.binary = str(wrapper)
    return d


def test_300_modules_share_one_inotify_instance(make_daemon, tmp_path):
    d = make_daemon(fleet(tmp_path, FLEET))
    d.wait_log("running %d modules" % FLEET)
    fds = fd_targets(d.proc.pid)
    assert fds.count("anon_inode:inotify") == 1, "inotify instances: %d" % fds.count(
        "anon_inode:inotify")
    assert len(fds) <= FLEET * IDLE_TENCENT_FDS + DAEMON_FDS, \
        "%d descriptors for %d idle modules" % (len(fds), FLEET)

    d.port("m%d" % (FLEET - 1))  # the last module powers on at the open: its banner
    d.wait_log("[m%d] client opened" % (FLEET - 1))

    started = time.monotonic()
    assert d.stop(timeout=5) == 0  # every symlink removed
    assert time.monotonic() - started < 2.0, "SIGTERM to exit took %.2f s with %d modules" % (
        time.monotonic() - started, FLEET)


def test_soft_nofile_limit_is_raised_to_the_hard_limit(make_daemon, tmp_path):
    hard = min(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    d = with_nofile_limit(make_daemon(fleet(tmp_path, 3), start=False), tmp_path, 256, hard)
    d.start()
    d.wait_log("running 3 modules")
    assert nofile_limits(d.proc.pid) == (hard, hard)
    assert "RLIMIT_NOFILE" not in d.log_text()
    d.stop()


def test_warns_when_the_hard_nofile_limit_is_below_what_modules_need(make_daemon, tmp_path):
    # 10 idle modules hold 32 descriptors, but may need 7 each when busy
    d = with_nofile_limit(make_daemon(fleet(tmp_path, 10), start=False), tmp_path, 64, 64)
    d.start()
    d.wait_log("running 10 modules")
    assert nofile_limits(d.proc.pid) == (64, 64)
    warn = ("WARN [vmoduled] RLIMIT_NOFILE 64 is below the ~86 descriptors 10 modules need "
            "(7 per busy module, +2 with tcp_listen or unix_listen, +1 with trace; 16 for the "
            "daemon): raise "
            "the hard limit (LimitNOFILE= in systemd, --ulimit nofile= in Docker, ulimit -Hn)\n")
    assert d.log_text().count(warn) == 1, d.log_text()
    d.port("m9")  # still serves its modules
    d.stop()
