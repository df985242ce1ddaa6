"""loopspy end-to-end: lock contention, GIL starvation, GC pauses, and an
idle thread pool that must stay silent. Facts only: kind, lock kind, the
waiter's line, the holder thread and its function, generation."""
import re

import pytest

from loopspy_e2e import PROGRAMS, SETTLE_SECONDS, Program, check_schema, fail, record


def marker_line(program, tag):
    """1-based line of the `# <tag>` comment in a program."""
    for no, line in enumerate((PROGRAMS / program).read_text().splitlines(), 1):
        if re.search(r"#\s*%s\b" % re.escape(tag), line):
            return no
    raise AssertionError("no %s marker in %s" % (tag, program))


def frames_at(stack, program, line=None, function=None):
    return [f for f in stack
            if str(f.get("file", "")).endswith("/" + program)
            and (line is None or f.get("line") == line)
            and (function is None or f.get("function", "").split(".")[-1] == function)]


def attach(interp, program, tmp_path, extra_lines=0):
    out = tmp_path / "report.json"
    prog = Program(interp.path, program, tmp_path)
    try:
        prog.wait_ready(extra_lines=extra_lines)
        import time
        time.sleep(SETTLE_SECONDS)
        prog.assert_alive()
        report = record(prog.pid, out)
        prog.assert_alive()
    finally:
        prog.stop()
    check_schema(report, out)
    return prog, report, out


def test_lock_contention(interp, tmp_path):
    program = "lock_wait.py"
    prog, report, out = attach(interp, program, tmp_path, extra_lines=1)
    writer_tid = int(prog.extra[0].split()[2])
    waiter_line = marker_line(program, "EXPECT-LOCK")
    holder_line = marker_line(program, "HOLDER")
    found = [f for f in report["findings"]
             if f["kind"] == "lock_contention" and f["tid"] == prog.pid
             and frames_at(f["python_stack"], program, waiter_line, "read_cache")]
    if not found:
        fail("no lock_contention at %s:%d in read_cache()" % (program, waiter_line), report, out)
    f = found[0]
    if f.get("lock_kind") != "threading.Lock":
        fail("lock_kind %r, expected threading.Lock" % f.get("lock_kind"), report, out)
    holders = f.get("holders") or []
    if not holders or holders[0].get("tid") != writer_tid:
        fail("top holder %r, expected the writer thread %d" % (holders[:1], writer_tid), report, out)
    if not frames_at(holders[0].get("python_stack", []), program, function="writer"):
        fail("holder stack does not show writer(): %r" % holders[0].get("python_stack"), report, out)
    # the same waits are not also reported as plain blocking futex calls
    plain = [x for x in report["findings"] if x["kind"] == "blocking_syscall" and x["syscall"] == "futex"]
    if plain:
        fail("lock waits also reported as blocking_syscall futex", report, out)


def test_gil_contention(interp, tmp_path):
    program = "gil_starvation.py"
    prog, report, out = attach(interp, program, tmp_path, extra_lines=2)
    crunchers = {int(line.split()[2]) for line in prog.extra}
    found = [f for f in report["findings"] if f["kind"] == "gil_contention" and f["tid"] == prog.pid]
    if not found:
        fail("no gil_contention on the loop thread", report, out)
    holders = found[0].get("holders") or []
    if not holders or holders[0].get("tid") not in crunchers:
        fail("top holder %r is not a cruncher thread %r" % (holders[:1], crunchers), report, out)
    if not frames_at(holders[0].get("python_stack", []), program, function="crunch"):
        fail("holder stack does not show crunch(): %r" % holders[0].get("python_stack"), report, out)
    if any(f["tid"] != prog.pid for f in report["findings"]):
        fail("findings on threads that are not the loop", report, out)


def test_gc_pause(interp, tmp_path):
    program = "gc_pause.py"
    prog, report, out = attach(interp, program, tmp_path)
    if report["target"]["runtime"].get("gc_timing", "").startswith("unavailable"):
        fail("GC timing unavailable: %s" % report["target"]["runtime"].get("gc_timing"), report, out)
    line = marker_line(program, "EXPECT-GC")
    found = [f for f in report["findings"]
             if f["kind"] == "gc_pause" and f["tid"] == prog.pid
             and frames_at(f["python_stack"], program, line, "build_graph")]
    if not found:
        fail("no gc_pause at %s:%d in build_graph()" % (program, line), report, out)
    # 3.8 builds only have compiler clones of collect(): timed, generation unknown
    expected = None if interp.version[:2] == (3, 8) else 2
    if found[0].get("generation") != expected:
        fail("generation %r, expected %r" % (found[0].get("generation"), expected), report, out)


def test_idle_pool_is_quiet(interp, tmp_path):
    prog, report, out = attach(interp, "idle_pool.py", tmp_path)
    if report["findings"]:
        fail("an idle thread pool and a healthy loop produced findings", report, out)
    if [l["tid"] for l in report["loops"]] != [prog.pid]:
        fail("loops %r, expected only the main thread" % report["loops"], report, out)
