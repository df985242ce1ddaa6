"""loopspy end-to-end: each program in tests/programs x each interpreter.

Every test asserts facts (kind, syscall, function, line, thread), never
durations.  See loopspy_e2e.py for the `# EXPECT:` marker syntax.
"""
import time

import pytest

from conftest import can_import
from loopspy_e2e import (PROGRAMS, SETTLE_SECONDS, Program, check_loops, check_marker,
                         check_schema, fail, record, run, single_marker)


def attach_and_check(interp, name, tmp_path, settle=SETTLE_SECONDS):
    """Start program `name`, attach once it runs, check its EXPECT marker."""
    program = PROGRAMS / name
    marker = single_marker(program)
    out = tmp_path / "report.json"
    with Program(interp.path, name, tmp_path) as prog:
        prog.wait_ready()
        time.sleep(settle)
        prog.assert_alive()
        report = record(prog.pid, out)
        prog.assert_alive()
    check_schema(report, out)
    if report["target"].get("pid") != prog.pid:
        fail("target.pid %r != %d" % (report["target"].get("pid"), prog.pid), report, out)
    # Main-thread loop: its tid is the pid.
    check_loops(report, [prog.pid], out)
    check_marker(report, program, marker, prog.pid, out)
    return report


def test_attach_already_running(interp, tmp_path):
    """The normal flow: the program has been running for a while (2 s) when
    loopspy attaches; time.sleep() in a coroutine is reported as a blocking
    syscall at the right line."""
    report = attach_and_check(interp, "sleep_in_coroutine.py", tmp_path, settle=2.0)
    if not isinstance(report.get("dropped_events"), int):
        fail("dropped_events is not an int", report)


@pytest.mark.parametrize("name", [
    "sync_http.py",       # blocking_syscall recvfrom in fetch_profile()
    "cpu_callback.py",    # stall in checksum()
    "fsync_many.py",      # stall with fsync in its breakdown, in save_journal()
    "subprocess_run.py",  # blocking_syscall wait4 in run_hook()
])
def test_pitfall(interp, name, tmp_path):
    attach_and_check(interp, name, tmp_path)


def test_uvloop(interp, tmp_path):
    if not can_import(interp, "uvloop"):
        pytest.skip("uvloop not importable by %s" % interp.path)
    attach_and_check(interp, "uvloop_sleep.py", tmp_path)


def test_two_loops(interp, tmp_path):
    program = PROGRAMS / "two_loops.py"
    marker = single_marker(program)
    out = tmp_path / "report.json"
    with Program(interp.path, program.name, tmp_path) as prog:
        prog.wait_ready(extra_lines=2)
        tids = {}
        for line in prog.extra:
            word, name, tid = line.split()
            assert word == "TID", line
            tids[name] = int(tid)
        assert set(tids) == {"good", "bad"}, prog.extra
        time.sleep(SETTLE_SECONDS)
        prog.assert_alive()
        report = record(prog.pid, out)
        prog.assert_alive()
    check_schema(report, out)
    check_loops(report, [tids["good"], tids["bad"]], out)
    check_marker(report, program, marker, tids["bad"], out)
    strays = [f for f in report["findings"] if f.get("tid") != tids["bad"]]
    if strays:
        fail("findings on threads other than bad (%d): %s" % (
            tids["bad"], [(f.get("kind"), f.get("tid"), f.get("syscall")) for f in strays]), report, out)


def test_healthy(interp, tmp_path):
    out = tmp_path / "report.json"
    with Program(interp.path, "healthy.py", tmp_path) as prog:
        prog.wait_ready()
        time.sleep(SETTLE_SECONDS)
        prog.assert_alive()
        report = record(prog.pid, out)
        prog.assert_alive()
    check_schema(report, out)
    check_loops(report, [prog.pid], out)
    if report["findings"] != []:
        fail("healthy program got findings", report, out)
    executor = [t for t in (lp.get("tid") for lp in report["loops"]) if t != prog.pid]
    if executor:
        fail("only the main thread runs a loop, got extra loops %s" % executor, report, out)


def test_run_exit_code(interp, tmp_path):
    """`loopspy run` traces from the first instruction and propagates the exit status."""
    program = PROGRAMS / "exit_code.py"
    marker = single_marker(program)
    out = tmp_path / "report.json"
    res, report = run([interp.path, program], out)
    if res.returncode != 3:
        fail("loopspy run exited %d, expected the command's status 3\nstdout:\n%s\nstderr:\n%s"
             % (res.returncode, res.stdout[-3000:], res.stderr[-3000:]), report, out)
    ready = [l for l in res.stdout.splitlines() if l.startswith("READY ")]
    if len(ready) != 1:
        fail("expected exactly one READY line in stdout, got %r" % ready, report, out)
    pid = int(ready[0].split()[1])
    check_schema(report, out)
    if report["target"].get("pid") != pid:
        fail("target.pid %r != program pid %d" % (report["target"].get("pid"), pid), report, out)
    check_loops(report, [pid], out)
    check_marker(report, program, marker, pid, out)


def test_loop_per_test_suite(interp, tmp_path):
    """`loopspy run -- pytest`-like: a new loop per test and synchronous
    code between them. Only the coroutine that blocks its loop is reported,
    not the setup code running while no loop exists."""
    program = PROGRAMS / "many_loops.py"
    marker = single_marker(program)
    out = tmp_path / "report.json"
    res, report = run([interp.path, program], out)
    if res.returncode != 0:
        fail("loopspy run exited %d\n%s" % (res.returncode, res.stderr[-2000:]), report, out)
    check_schema(report, out)
    pid = report["target"]["pid"]
    check_marker(report, program, marker, pid, out)
    others = [f for f in report["findings"]
              if not any(fr.get("function", "").split(".")[-1] == "blocking_test"
                         for fr in f.get("python_stack", []))]
    if others:
        fail("findings outside the blocking coroutine (sync code between loops?)", report, out)
