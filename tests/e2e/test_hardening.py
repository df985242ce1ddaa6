"""Hardening (docs/safety.md): bad input, faults, hostile targets, privileges.

Each test proves one guarantee of docs/safety.md with real BPF (root).
Durations are short (1-3 s per loopspy session); assertions are facts
(exit status, messages, report fields, kernel objects), never timings.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from loopspy_e2e import LOOPSPY, PROGRAMS, REPO, clean_env

PY = "/usr/bin/python3"
PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

EXIT_USAGE, EXIT_TARGET, EXIT_OUTPUT = 2, 3, 4


# --------------------------------------------------------------------------
# helpers


def loopspy(*args, timeout=60, env=None, prefix=()):
    return subprocess.run(list(prefix) + [str(LOOPSPY)] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def pyenv(pattern):
    """A pyenv interpreter matching versions/<pattern>/bin/python*, or None."""
    for path in sorted(glob.glob(str(PYENV / pattern / "bin" / "python[23].*"))):
        if re.search(r"python\d\.\d+$", path) and os.access(path, os.X_OK):
            return path
    return None


class Target:
    """A process started with Popen that prints "READY <pid>" first; the
    other lines it prints are collected in .lines."""

    def __init__(self, argv, env=None, cwd=None):
        e = clean_env()
        e.update(env or {})
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=e, cwd=cwd, start_new_session=True)
        self.lines = []
        self._cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.wait_line(lambda l: l.startswith("READY "), 20)
        self.pid = int(line.split()[1])

    def _pump(self):
        for raw in self.proc.stdout:
            with self._cv:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self.lines.append(None)
            self._cv.notify_all()

    def wait_line(self, pred, timeout=20):
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines:
                    if line is not None and pred(line):
                        return line
                if None in self.lines:
                    pytest.fail("target exited before the expected line; stderr:\n%s"
                                % self.proc.stderr.read().decode(errors="replace")[-2000:])
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("target: timed out waiting for a line; got %r" % self.lines)
                self._cv.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def load(path):
    assert path.exists(), "no report at %s" % path
    return json.loads(path.read_text())


def frames(report):
    return [fr for f in report["findings"] for fr in f["python_stack"]]


def bpf_fds(pid):
    """The BPF programs, maps and links a process holds: {kind: set(ids)}."""
    out = {"prog": set(), "map": set(), "link": set()}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            info = open("/proc/%d/fdinfo/%s" % (pid, fd)).read()
        except OSError:
            continue
        for kind in out:
            m = re.search(r"^%s_id:\s*(\d+)" % kind, info, re.M)
            if m:
                out[kind].add(int(m.group(1)))
    return out


def bpf_ids(kind):
    """Ids of every BPF prog/map/link on the system (bpftool)."""
    res = subprocess.run(["bpftool", "-j", kind, "show"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    return {o["id"] for o in json.loads(res.stdout or "[]")}


def map_entries(map_id):
    res = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return len(json.loads(res.stdout or "[]"))


def map_ids_by_name(pid):
    names = {}
    for mid in bpf_fds(pid)["map"]:
        res = subprocess.run(["bpftool", "-j", "map", "show", "id", str(mid)], capture_output=True, text=True)
        if res.returncode == 0:
            names[json.loads(res.stdout)["name"]] = mid
    return names


def wait_attached(lp, timeout=20):
    """Until the loopspy process holds BPF links (attached)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lp.poll() is not None:
            pytest.fail("loopspy exited early (%s): %s" % (lp.returncode, lp.stderr.read()))
        try:
            if bpf_fds(lp.pid)["link"]:
                return
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    pytest.fail("loopspy did not attach within %d s" % timeout)


def record_bg(pid, out, *args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.Popen([str(LOOPSPY), "record", "-p", str(pid), "-o", str(out)] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)


@pytest.fixture(scope="session")
def cbin(tmp_path_factory):
    """The C test programs, compiled once."""
    d = tmp_path_factory.mktemp("cbin")
    built = {}
    for name, extra in (("epoll_loop", []), ("hostile_target", [str(REPO / "probes" / "cpython_layouts.c")])):
        exe = d / name
        res = subprocess.run(["gcc", "-O1", "-g", "-Wall", "-Werror", "-I", str(REPO / "probes"),
                              str(PROGRAMS / (name + ".c"))] + extra + ["-lpthread", "-o", str(exe)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        built[name] = exe
    return built


@pytest.fixture
def shared_dir():
    """A directory every user can enter (tmp_path is root's only)."""
    d = tempfile.mkdtemp(prefix="loopspy-hard-", dir="/tmp")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# 1. bad input: a clear error, a documented exit status, no partial output


def free_pid():
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    for pid in range(pid_max - 1, 1, -1):
        if not os.path.exists("/proc/%d" % pid):
            return pid
    pytest.skip("no free pid")


def test_no_such_pid(tmp_path):
    out = tmp_path / "r.json"
    res = loopspy("record", "-p", free_pid(), "-d", "1", "-o", out)
    assert res.returncode == EXIT_TARGET, res.stderr
    assert "no such process" in res.stderr
    assert not out.exists() and os.listdir(tmp_path) == []


def test_kernel_thread(tmp_path):
    out = tmp_path / "r.json"
    res = loopspy("record", "-p", 2, "-d", "1", "-o", out)  # kthreadd
    assert res.returncode == EXIT_TARGET, res.stderr
    assert "kernel thread" in res.stderr
    assert os.listdir(tmp_path) == []


def test_thread_id_and_zombie(tmp_path):
    """A thread's id names its process; a zombie has exited."""
    code = ("import threading,time,os; t=threading.Thread(target=time.sleep,args=(30,)); t.start();"
            "print('READY %d' % os.getpid(), flush=True); print('TID %d' % t.native_id, flush=True); t.join()")
    with Target([PY, "-c", code]) as t:
        tid = int(t.wait_line(lambda l: l.startswith("TID")).split()[1])
        res = loopspy("record", "-p", tid, "-d", "1")
        assert res.returncode == EXIT_TARGET, res.stderr
        assert "is a thread of process %d" % t.pid in res.stderr
        assert "loopspy record -p %d" % t.pid in res.stderr
    zombie = subprocess.Popen(["true"])
    deadline = time.monotonic() + 10
    while open("/proc/%d/stat" % zombie.pid).read().split(")")[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    res = loopspy("record", "-p", zombie.pid, "-d", "1", "-o", tmp_path / "z.json")
    zombie.wait()
    assert res.returncode == EXIT_TARGET, res.stderr
    assert "has exited" in res.stderr
    assert not (tmp_path / "z.json").exists()


def test_pid_exits_during_attach(tmp_path):
    """Killed while loopspy loads its probes: an error (no report), or, if
    it went just after attaching, a report that says the target exited."""
    out = tmp_path / "r.json"
    with Target([PY, "-c", "import os,time; print('READY %d' % os.getpid(), flush=True); time.sleep(60)"]) as t:
        lp = subprocess.Popen([str(LOOPSPY), "record", "-p", str(t.pid), "-d", "20", "-o", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not bpf_fds(lp.pid)["prog"]:  # its first program is loaded: attaching
            assert lp.poll() is None and time.monotonic() < deadline, lp.stderr.read()
            time.sleep(0.001)
        os.killpg(t.pid, signal.SIGKILL)
        stdout, stderr = lp.communicate(timeout=30)
    if lp.returncode == EXIT_TARGET:
        assert "exited while loopspy was attaching" in stderr, stderr
        assert os.listdir(tmp_path) == []
    else:
        assert lp.returncode == 0, stderr
        assert load(out)["end_reason"] == "target_exit"


def test_unprivileged(shared_dir):
    """Without privileges: which capability is missing, exit 1, no output;
    `loopspy doctor` says the same and exits 1."""
    out = shared_dir / "r.json"
    with Target([PY, "-c", "import os,time; print('READY %d' % os.getpid(), flush=True); time.sleep(30)"]) as t:
        res = loopspy("record", "-p", t.pid, "-d", "1", "-o", out, prefix=NOBODY)
    assert res.returncode == 1, res.stderr
    assert "missing CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE" in res.stderr, res.stderr
    assert "hint:" in res.stderr
    res = loopspy("run", "-d", "1", "-o", out, "--", "true", prefix=NOBODY)
    assert res.returncode == 1, res.stderr
    assert "cannot trace a command: missing CAP_BPF, CAP_PERFMON (" in res.stderr, res.stderr
    assert not out.exists()
    res = loopspy("doctor", prefix=NOBODY)
    assert res.returncode == 1, res.stdout + res.stderr
    assert re.search(r"FAIL \] capabilities +missing CAP_BPF, CAP_PERFMON", res.stdout), res.stdout
    assert re.search(r"FAIL \] BPF programs +do not load: not permitted", res.stdout), res.stdout


def test_doctor():
    res = loopspy("doctor")
    assert res.returncode == 0, res.stdout + res.stderr
    for what in ("BTF", "bpf() syscall", "map ringbuf", "tracefs", "syscall tracepoints", "BPF programs",
                 "tracepoint syscalls/sys_enter_epoll_wait", "tp_btf sched_switch", "tp_btf sched_wakeup",
                 "tp_btf sched_process_exec", "tp_btf sched_process_fork", "perf_event task-clock",
                 "uprobes", "USDT", "ring buffer", "capabilities"):
        assert re.search(r"\[  ok  \] %s\b" % re.escape(what), res.stdout), what + "\n" + res.stdout
    for what in ("kprobes", "fentry", "CPython processes|pid \\d+"):
        assert re.search(r"\[ info \] (%s)" % what, res.stdout), what + "\n" + res.stdout
    assert "result: loopspy works on this machine" in res.stdout


def test_not_python(cbin, tmp_path):
    """A C event loop: the loop and its blocking call are found, stacks are
    empty, and why is said once (stderr) and in the report."""
    out = tmp_path / "r.json"
    with Target([cbin["epoll_loop"]]) as t:
        res = loopspy("record", "-p", t.pid, "-d", "1.5", "-o", out)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("not CPython") == 1, res.stderr
    assert res.stdout.count("no Python stacks") == 1, res.stdout
    r = load(out)
    rt = r["target"]["runtime"]
    assert rt["name"] == "unknown" and rt["python_stacks"] is False
    assert "not a CPython process" in rt["python_stacks_unavailable"]
    assert [lp["tid"] for lp in r["loops"]] == [t.pid]
    blocking = [f for f in r["findings"] if f["kind"] == "blocking_syscall" and f["syscall"] == "clock_nanosleep"]
    assert blocking and all(f["python_stack"] == [] for f in r["findings"]), r["findings"]


@pytest.mark.parametrize("version", ["2.7*", "3.6*", "3.7*"])
def test_unsupported_python(version, tmp_path):
    """CPython versions without stack support (pyenv builds on this
    machine): named in the report, with why stacks are missing."""
    py = pyenv(version)
    if not py:
        pytest.skip("no pyenv CPython %s" % version)
    out = tmp_path / "r.json"
    res = loopspy("run", "-o", out, "--", py, PROGRAMS / "legacy_loop.py", env=dict(clean_env(), LEGACY_SECONDS="1.5"))
    assert res.returncode == 0, res.stderr
    r = load(out)
    rt = r["target"]["runtime"]
    assert rt["name"] == "cpython" and rt["version"].startswith(version.rstrip("*")), rt
    assert rt["python_stacks"] is False
    assert "is not supported for stacks (3.8-3.13 are)" in rt["python_stacks_unavailable"], rt
    assert r["loops"], "the loop is found on any version"
    assert "no Python stacks: CPython %s is not supported" % rt["version"] in res.stdout


@pytest.mark.parametrize("args,message", [
    (["record", "-p", "1", "-d", "-5"], "cannot use duration '-5'"),
    (["record", "-p", "1", "-d", "10x"], "cannot use duration '10x'"),
    (["record", "-p", "1", "-d", "0"], "cannot use duration '0'"),
    (["record", "-p", "1", "--stall-threshold", "100kg"], "cannot use threshold '100kg'"),
    (["record", "-p", "1", "--stall-threshold", "-1ms"], "cannot use threshold '-1ms'"),
    (["record", "-p", "1", "--block-threshold", "nan"], "cannot use threshold 'nan'"),
    (["record", "-p", "1", "--sample-hz", "abc"], "cannot use sample rate 'abc'"),
    (["record", "-p", "1", "--sample-hz", ""], "cannot use sample rate ''"),
    (["record", "-p", "1", "--sample-hz", "99999999999999999999"], "cannot use sample rate"),
    (["record", "-p", "abc"], "cannot use pid 'abc'"),
    (["record", "-p", "-3"], "cannot use pid '-3'"),
    (["record", "-p", "0"], "cannot use pid '0'"),
    (["record", "-d", "1"], "no pid given"),
    (["record", "-p", "1", "--fail-on", "stall>5kg"], "cannot use --fail-on"),
    (["record", "-p", "1", "--max-regression", "-4"], "cannot use --max-regression"),
    (["record", "-p", "1", "--bogus"], "unrecognized option"),
    (["run", "-d", "1"], "no command given"),
    (["report", str(REPO / "tests/fixtures/clean.json"), "--format", "pdf"], "cannot use format 'pdf'"),
    (["report", str(REPO / "tests/fixtures/clean.json"), "-o", "out.pdf"], "cannot guess the format"),
    (["diff", str(REPO / "tests/fixtures/clean.json")], "expected two reports"),
    (["doctor", "extra"], "cannot use argument 'extra'"),
    (["frobnicate"], "unknown command"),
])
def test_bad_cli_values(args, message, tmp_path):
    res = loopspy(*(args + (["-o", tmp_path / "r.json"] if args[0] in ("record", "run") else [])))
    assert res.returncode == EXIT_USAGE, (res.returncode, res.stderr)
    assert message in res.stderr, res.stderr
    assert res.stderr.startswith("loopspy: ") or "usage" in res.stderr, res.stderr
    assert os.listdir(tmp_path) == []


def test_unwritable_output_checked_first(tmp_path):
    """Checked before anything is attached: no BPF is loaded, the target is
    not touched; a symlink is refused and what it points to is untouched."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "link.json"
    link.symlink_to(victim)
    (tmp_path / "dir.json").mkdir()
    cases = [(tmp_path / "no" / "such" / "r.json", "No such file or directory"),
             (link, "it is a symbolic link"), (tmp_path / "dir.json", "Is a directory"),
             (Path("/proc/self/r.json"), "cannot write report")]
    with Target([PY, "-c", "import os,time; print('READY %d' % os.getpid(), flush=True); time.sleep(30)"]) as t:
        for path, why in cases:
            lp = subprocess.Popen([str(LOOPSPY), "record", "-p", str(t.pid), "-d", "5", "-o", str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            loaded = set()
            while lp.poll() is None:
                try:
                    loaded |= bpf_fds(lp.pid)["prog"]
                except FileNotFoundError:
                    pass
            stderr = lp.stderr.read()
            assert lp.returncode == EXIT_OUTPUT, (path, stderr)
            assert why in stderr and "hint:" in stderr, stderr
            assert "attached" not in stderr and not loaded, (path, stderr, loaded)
    assert victim.read_text() == "precious\n" and link.is_symlink()
    assert sorted(os.listdir(tmp_path)) == ["dir.json", "link.json", "victim"]


# --------------------------------------------------------------------------
# 2. faults survived, nothing lost


def test_target_exits_mid_record(tmp_path):
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "legacy_loop.py"], env={"LEGACY_SECONDS": "2.5"}) as t:
        res = loopspy("record", "-p", t.pid, "-d", "30", "-o", out)
    assert res.returncode == 0, res.stderr
    r = load(out)
    assert r["end_reason"] == "target_exit"
    assert r["duration_ms"] < 29000
    assert r["loops"] and any(fr["function"] == "slow_io" for fr in frames(r)), r["findings"]


def exec_check(r, before="exec_into.py", after="exec_target.py"):
    """No frame is named after the other program's code."""
    for f in r["findings"]:
        for fr in f["python_stack"]:
            if fr["function"] == "before_exec":
                assert fr["file"].endswith(before), fr
            if fr["function"] == "after_exec":
                assert fr["file"].endswith(after), fr
            if fr["file"].endswith(before):
                assert fr["function"] in ("before_exec", "main", "<module>"), fr


def test_exec_into_another_python(tmp_path):
    """Debian's 3.11 exec's a pyenv 3.12 (or itself): the runtime is found
    again after the exec, stacks of both programs are right, never mixed."""
    other = pyenv("3.12*") or PY
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "exec_into.py", other, PROGRAMS / "exec_target.py"],
                env={"EXEC_DELAY": "0.5", "EXEC_AFTER_ITERATIONS": "25"}) as t:
        lp = record_bg(t.pid, out, "-d", "3.5")
        t.wait_line(lambda l: l.startswith("EXECD"))
        stdout, stderr = lp.communicate(timeout=30)
    assert lp.returncode == 0, stderr
    assert "%d executed %s" % (t.pid, os.path.realpath(other)) in stderr, stderr
    r = load(out)
    exec_check(r)
    fns = {fr["function"] for fr in frames(r)}
    assert {"before_exec", "after_exec"} <= fns, r["findings"]
    assert r["target"]["runtime"]["python_stacks"] is True
    if other != PY:
        assert r["target"]["runtime"]["version"].startswith("3.12"), r["target"]["runtime"]


def test_exec_into_non_python(tmp_path):
    """exec into /bin/sleep: from then on no stacks (never garbage), and the
    report says the target is no longer CPython."""
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "exec_into.py", "/bin/sleep", "30"],
                env={"EXEC_DELAY": "0.5", "EXEC_AFTER_ITERATIONS": "25"}) as t:
        res = loopspy("record", "-p", t.pid, "-d", "3", "-o", out)
    assert res.returncode == 0, res.stderr
    assert "executed /usr/bin/sleep" in res.stderr, res.stderr
    r = load(out)
    exec_check(r)
    assert {fr["file"].rsplit("/", 1)[-1] for fr in frames(r) if "/python3" not in fr["file"]} <= {"exec_into.py"}
    assert any(fr["function"] == "before_exec" for fr in frames(r))
    assert r["target"]["runtime"]["python_stacks"] is False


@pytest.mark.parametrize("follow", [False, True], ids=["ignored", "followed"])
def test_fork(follow, tmp_path):
    """A forked worker with its own loop: ignored by default; with
    --follow-children its loop and its blocking call are reported too,
    named after its own code (its own memory)."""
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "fork_worker.py"], env={"FORK_DELAY": "0.8"}) as t:
        res = loopspy("record", "-p", t.pid, "-d", "2.5", "-o", out, *(["--follow-children"] if follow else []))
        child = int(t.wait_line(lambda l: l.startswith("CHILD")).split()[1])
    assert res.returncode == 0, res.stderr
    r = load(out)
    tids = {lp["tid"]: lp["thread_name"] for lp in r["loops"]}
    by_fn = {f["python_stack"][0]["function"]: f for f in r["findings"] if f["python_stack"]}
    assert "parent_block" in by_fn and by_fn["parent_block"]["tid"] == t.pid
    if follow:
        assert tids.get(child) == "MainThread (pid %d)" % child, tids
        assert "child_block" in by_fn and by_fn["child_block"]["tid"] == child, by_fn.keys()
        assert "following child %d of %d" % (child, t.pid) in res.stderr
    else:
        assert child not in tids and "child_block" not in by_fn, (tids, by_fn.keys())


def test_run_follow_children(tmp_path):
    out = tmp_path / "r.json"
    res = loopspy("run", "--follow-children", "-d", "2.5", "-o", out, "--", PY, PROGRAMS / "fork_worker.py",
                  env=dict(clean_env(), FORK_DELAY="0.5"))
    assert res.returncode in (0, 143), res.stderr
    fns = {fr["function"] for fr in frames(load(out))}
    assert {"parent_block", "child_block"} <= fns, fns


def test_thread_churn(tmp_path):
    """Thousands of threads a second come and go: loopspy keeps up, its
    per-thread maps stay small (exit hooks), the report is sane."""
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "thread_churn.py"]) as t:
        lp = record_bg(t.pid, out, "-d", "3")
        wait_attached(lp)
        time.sleep(1.5)
        maps = map_ids_by_name(lp.pid)
        live = {name: map_entries(maps[name]) for name in ("threads", "pending", "fwaits")}
        stdout, stderr = lp.communicate(timeout=30)
        os.kill(t.pid, signal.SIGTERM)
        started, seconds = t.wait_line(lambda l: l.startswith("THREADS")).split()[1::2]
    assert lp.returncode == 0, stderr
    rate = int(started) / float(seconds)
    assert rate > 1000, "only %.0f threads/s" % rate
    # a handful of live threads, not one entry per thread ever seen
    assert live["threads"] < 200 and live["pending"] < 200 and live["fwaits"] < 200, live
    r = load(out)
    assert r["dropped_events"] == 0
    assert [lp_["tid"] for lp_ in r["loops"]] == [t.pid] and r["loops"][0]["iterations"] > 10
    assert any(fr["function"] == "blocking_call" for fr in frames(r))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_flushes_report(sig, tmp_path):
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "sleep_in_coroutine.py"]) as t:
        lp = record_bg(t.pid, out, "-d", "60")
        wait_attached(lp)
        time.sleep(1.2)
        lp.send_signal(sig)
        stdout, stderr = lp.communicate(timeout=30)
    assert lp.returncode == 0, stderr
    r = load(out)
    assert r["end_reason"] == "signal"
    assert any(fr["function"] == "refresh_cache" for fr in frames(r)), r["findings"]
    assert "loopspy: " in stdout  # the summary too


def test_run_sigterm_passed_on(tmp_path):
    out = tmp_path / "r.json"
    lp = subprocess.Popen([str(LOOPSPY), "run", "-o", str(out), "--", PY, str(PROGRAMS / "sleep_in_coroutine.py")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    wait_attached(lp)
    time.sleep(1.5)
    lp.send_signal(signal.SIGTERM)
    stdout, stderr = lp.communicate(timeout=30)
    r = load(out)
    assert r["end_reason"] == "target_exit", r["end_reason"]
    assert lp.returncode == r["target"]["exit_status"], (lp.returncode, r["target"]["exit_status"])


def usdt_semaphore(pid):
    """The python:gc__start USDT semaphore of Debian's non-PIE python3.11
    in pid (the kernel's reference count), or None when not applicable."""
    exe = os.path.realpath("/proc/%d/exe" % pid)
    head = subprocess.run(["readelf", "-h", exe], capture_output=True, text=True).stdout
    notes = subprocess.run(["readelf", "-n", exe], capture_output=True, text=True).stdout
    m = re.search(r"Name: gc__start\s+Location: \S+, Base: \S+, Semaphore: (0x[0-9a-f]+)", notes)
    if "EXEC (Executable file)" not in head or not m:
        return None
    with open("/proc/%d/mem" % pid, "rb") as f:
        f.seek(int(m.group(1), 16))
        return int.from_bytes(f.read(2), "little")


def test_sigkill_leaves_nothing_attached(tmp_path):
    """SIGKILL: every BPF program, map and link loopspy held is gone (the
    kernel releases them with its fds), and the USDT semaphore it raised in
    the target is back to 0."""
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "sleep_in_coroutine.py"]) as t:
        sem_before = usdt_semaphore(t.pid)
        lp = record_bg(t.pid, out, "-d", "60")
        wait_attached(lp)
        time.sleep(1.0)
        held = bpf_fds(lp.pid)
        assert held["prog"] and held["map"] and held["link"], held
        assert held["prog"] <= bpf_ids("prog") and held["link"] <= bpf_ids("link")
        sem_during = usdt_semaphore(t.pid)
        lp.kill()
        lp.wait(10)
        deadline = time.monotonic() + 10
        while True:
            left = {k: held[k] & bpf_ids(k) for k in held}
            if not any(left.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not any(left.values()), "still loaded after SIGKILL: %s" % left
        uprobes = open("/sys/kernel/tracing/uprobe_events").read() if os.path.exists(
            "/sys/kernel/tracing/uprobe_events") else ""
        assert "_%d_" % lp.pid not in uprobes, uprobes
        if sem_before is not None:
            assert sem_before == 0 and sem_during >= 1, (sem_before, sem_during)
            assert usdt_semaphore(t.pid) == 0
        t.proc.poll()
        assert t.proc.returncode is None, "the target died with loopspy"
    assert not out.exists(), "a partial report after SIGKILL"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".r.json")]


def test_ringbuf_overflow(tmp_path):
    """A storm while loopspy cannot read (stopped) overflows a small ring
    buffer (test knob LOOPSPY_RINGBUF_BYTES): the drops are counted and
    reported, the loop statistics (kernel side) stay right."""
    out = tmp_path / "r.json"
    with Target([PY, PROGRAMS / "event_storm.py"], env={"STORM_DELAY": "1"}) as t:
        lp = record_bg(t.pid, out, "-d", "4", env={"LOOPSPY_RINGBUF_BYTES": "16384"})
        wait_attached(lp)
        t.wait_line(lambda l: l == "STORM")
        lp.send_signal(signal.SIGSTOP)
        t.wait_line(lambda l: l.startswith("STALLS"))
        lp.send_signal(signal.SIGCONT)
        stdout, stderr = lp.communicate(timeout=30)
    assert lp.returncode == 0, stderr
    r = load(out)
    assert r["dropped_events"] > 0, r["dropped_events"]
    assert "events were dropped (ring buffer full): the report undercounts" in stderr
    assert re.search(r"\d+ events, %d dropped" % r["dropped_events"], stdout), stdout
    assert r["loops"][0]["stalls"] == 5, r["loops"]
    assert sum(f["count"] for f in r["findings"] if f["kind"] == "stall") <= 5


def test_two_instances(tmp_path):
    outs = [tmp_path / "a.json", tmp_path / "b.json"]
    with Target([PY, PROGRAMS / "sleep_in_coroutine.py"]) as t:
        lps = [record_bg(t.pid, o, "-d", "2.5") for o in outs]
        results = [lp.communicate(timeout=30) for lp in lps]
        assert t.proc.poll() is None
    for lp, (stdout, stderr), o in zip(lps, results, outs):
        assert lp.returncode == 0, stderr
        r = load(o)
        assert any(fr["function"] == "refresh_cache" for fr in frames(r)), r["findings"]
        assert r["loops"][0]["tid"] == t.pid


# --------------------------------------------------------------------------
# 3. hostile target memory (a fake CPython, tests/programs/hostile_target.c)


@pytest.mark.parametrize("minor,scenario", [
    (11, "cycle"), (8, "cycle"), (13, "cycle"), (12, "selfloop"), (11, "deep"), (9, "garbage"), (13, "garbage"),
])
def test_hostile_memory(cbin, minor, scenario, tmp_path):
    out = tmp_path / "r.json"
    with Target([cbin["hostile_target"], minor, scenario]) as t:
        res = loopspy("record", "-p", t.pid, "-d", "1.2", "-o", out)
        assert t.proc.poll() is None, "the target died"
    assert res.returncode == 0, res.stderr
    r = load(out)
    assert r["target"]["runtime"]["version"].startswith("3.%d" % minor)
    assert r["target"]["runtime"]["python_stacks"] is True, r["target"]["runtime"]
    stacks = [f["python_stack"] for f in r["findings"] if f["syscall"] == "clock_nanosleep"]
    assert stacks, r["findings"]
    st = stacks[0]
    for fr in st:
        assert len(fr["function"]) <= 256 and len(fr["file"]) <= 256, fr
    names = [fr["function"] for fr in st]
    if scenario == "cycle":
        assert len(st) == 48 and names == ["hostile_a", "hostile_b"] * 24, names
        assert {fr["line"] for fr in st} == {100, 200}
    elif scenario == "selfloop":
        assert names == ["hostile_self"] * 48
    elif scenario == "deep":
        assert names == ["hostile_deep"] * 48
    else:
        # unreadable code, a non-code object: dropped; the rest is shown
        assert names == ["hostile_long" + "A" * 244, "hostile_nonascii", "hostile_negtable", "hostile_hugetable",
                         "hostile_junktable"], names
        assert st[1]["file"] == "?" and st[2]["line"] is None and st[3]["line"] is None, st


# --------------------------------------------------------------------------
# 6. privileges


def test_setuid_refused(shared_dir):
    exe = shared_dir / "loopspy"
    shutil.copy(LOOPSPY, exe)
    os.chown(exe, 0, 0)
    os.chmod(exe, 0o4755)
    res = subprocess.run(NOBODY + [str(exe), "report", str(REPO / "tests" / "fixtures" / "clean.json")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1, res.stderr
    assert "cannot run setuid or setgid (uid 65534, effective uid 0" in res.stderr, res.stderr
    assert res.stdout == ""


def privilege_calls(*args, env=None):
    env = dict(env or os.environ)
    if "ASAN_OPTIONS" in env:  # (SANITIZE=1) LeakSanitizer cannot run under strace
        env["ASAN_OPTIONS"] += ":detect_leaks=0"
    res = subprocess.run(["strace", "-f", "-qq", "-e", "trace=setresuid,setresgid,setgroups,prctl",
                          str(LOOPSPY)] + [str(a) for a in args], capture_output=True, text=True, timeout=60,
                         env=env)
    return res


def test_report_and_diff_drop_privileges(tmp_path):
    """As root, report files are parsed and rendered by a child that became
    nobody (or the sudo user) for good; the report is still written."""
    if not shutil.which("strace"):
        pytest.skip("strace not installed")
    fixture = REPO / "tests" / "fixtures" / "pitfalls.json"
    out = tmp_path / "r.html"
    res = privilege_calls("report", fixture, "-o", out)
    assert res.returncode == 0, res.stderr
    assert re.search(r"setgroups\(0, NULL\) += 0", res.stderr), res.stderr
    assert re.search(r"setresuid\(65534, 65534, 65534\) += 0", res.stderr), res.stderr
    assert re.search(r"setresuid\(0, 0, 0\) += -1 EPERM", res.stderr), res.stderr
    assert "PR_SET_NO_NEW_PRIVS" in res.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    res = privilege_calls("diff", fixture, REPO / "tests" / "fixtures" / "pitfalls_baseline.json",
                          env=dict(os.environ, SUDO_UID="4321", SUDO_GID="4321"))
    assert res.returncode in (0, 5), res.stderr
    assert re.search(r"setresuid\(4321, 4321, 4321\) += 0", res.stderr), res.stderr
    assert "result:" in res.stdout
    # a bad report is still a clean exit 6 from the worker
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "loopspy-report/1", "target": 5}')
    res = loopspy("report", bad, "-o", tmp_path / "bad.md")
    assert res.returncode == 6 and "cannot read report" in res.stderr, res.stderr
    assert not (tmp_path / "bad.md").exists()


def test_report_output_never_through_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "out.md"
    link.symlink_to(victim)
    res = loopspy("report", REPO / "tests" / "fixtures" / "clean.json", "-o", link)
    assert res.returncode == EXIT_OUTPUT and "it is a symbolic link" in res.stderr, res.stderr
    assert victim.read_text() == "precious\n"
