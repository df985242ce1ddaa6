"""Helpers for the loopspy end-to-end tests.

Programs under tests/programs/ mark their culprit line with a comment

    <code>  # EXPECT: <kind> [<syscall>|<syscall>...]

kind is "stall" or "blocking_syscall"; the optional second word lists the
acceptable syscall names separated by "|".  Line numbers are 1-based.
"""
import ast
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import pytest

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parent.parent
PROGRAMS = REPO / "tests" / "programs"

LOOPSPY = Path(os.environ.get("LOOPSPY") or (REPO / "build" / "loopspy"))
# Seconds to record for, seconds to let a program run before attaching.
RECORD_SECONDS = float(os.environ.get("LOOPSPY_RECORD_SECONDS", "4"))
SETTLE_SECONDS = float(os.environ.get("LOOPSPY_SETTLE_SECONDS", "1"))
READY_TIMEOUT = 20.0
# Extra arguments for every `loopspy record` (debugging aid), e.g.
# LOOPSPY_RECORD_ARGS="--stall-threshold 50".
EXTRA_RECORD_ARGS = shlex.split(os.environ.get("LOOPSPY_RECORD_ARGS", ""))

MARKER_RE = re.compile(r"#\s*EXPECT:\s*(stall|blocking_syscall)\b(?:\s+([\w|]+))?")


# --------------------------------------------------------------------------
# Markers


@dataclass
class Marker:
    line: int  # 1-based
    kind: str  # "stall" | "blocking_syscall"
    syscalls: Tuple[str, ...]  # acceptable syscalls; empty = not checked
    function: str  # name of the function enclosing the line
    body: Tuple[int, int]  # first and last line of that function's body


def parse_markers(program: Path) -> List[Marker]:
    source = program.read_text()
    tree = ast.parse(source, str(program))
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    markers = []
    for lineno, text in enumerate(source.splitlines(), start=1):
        m = MARKER_RE.search(text)
        if not m:
            continue
        enclosing = [f for f in funcs if f.lineno <= lineno <= f.end_lineno]
        if not enclosing:
            raise ValueError("%s:%d: EXPECT marker outside a function" % (program, lineno))
        func = max(enclosing, key=lambda f: f.lineno)  # innermost
        syscalls = tuple(s for s in (m.group(2) or "").split("|") if s)
        markers.append(Marker(lineno, m.group(1), syscalls, func.name,
                              (func.body[0].lineno, func.end_lineno)))
    return markers


def single_marker(program: Path) -> Marker:
    markers = parse_markers(program)
    assert len(markers) == 1, "%s: expected exactly one EXPECT marker, got %r" % (program, markers)
    return markers[0]


# --------------------------------------------------------------------------
# Running programs


def clean_env():
    env = dict(os.environ)
    for key in list(env):
        # Keep the interpreter pristine: no PYTHONPATH/PYTHONHOME/asyncio
        # debug mode/dev mode from the caller's environment.
        if key.startswith("PYTHON") or key == "PYENV_VERSION":
            del env[key]
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Program:
    """A test program started with subprocess.Popen, in its own session."""

    def __init__(self, python: str, name: str, workdir: Path):
        self.name = name
        self.path = PROGRAMS / name
        self.stderr_path = workdir / ("%s.stderr" % name)
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [python, str(self.path)], stdout=subprocess.PIPE, stderr=self._stderr,
            stdin=subprocess.DEVNULL, env=clean_env(), start_new_session=True)
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.pid = None
        self.extra = []

    def _pump(self):
        for raw in self.proc.stdout:
            self._lines.put(raw.decode(errors="replace").rstrip("\n"))
        self._lines.put(None)

    def stderr(self):
        self._stderr.flush()
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def readline(self, deadline):
        try:
            line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail("%s: timed out waiting for output\nstderr:\n%s" % (self.name, self.stderr()),
                        pytrace=False)
        if line is None:
            self.proc.wait(5)
            pytest.fail("%s exited (status %s) before printing the expected lines\nstderr:\n%s"
                        % (self.name, self.proc.returncode, self.stderr()), pytrace=False)
        return line

    def wait_ready(self, extra_lines=0, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        line = self.readline(deadline)
        m = re.fullmatch(r"READY (\d+)", line)
        assert m, "%s: expected 'READY <pid>', got %r" % (self.name, line)
        self.pid = int(m.group(1))
        assert self.pid == self.proc.pid, "READY pid %d != started pid %d" % (self.pid, self.proc.pid)
        self.extra = [self.readline(deadline) for _ in range(extra_lines)]
        return self

    def assert_alive(self):
        if self.proc.poll() is not None:
            pytest.fail("%s died (status %s)\nstderr:\n%s"
                        % (self.name, self.proc.returncode, self.stderr()), pytrace=False)

    def stop(self):
        for sig, grace in ((signal.SIGTERM, 3), (signal.SIGKILL, 5)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Reap anything left in the program's session (e.g. sync_http's backend).
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------
# Running loopspy


def _load_report(out: Path, cmd, res):
    detail = "command: %s\nexit status: %s\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, cmd)), res.returncode, res.stdout[-4000:], res.stderr[-4000:])
    if not out.exists():
        pytest.fail("loopspy wrote no report to %s\n%s" % (out, detail), pytrace=False)
    try:
        return json.loads(out.read_text())
    except ValueError as e:
        pytest.fail("report %s is not valid JSON: %s\n%s" % (out, e, detail), pytrace=False)


def record(pid: int, out: Path, duration: float = None):
    duration = RECORD_SECONDS if duration is None else duration
    cmd = [str(LOOPSPY), "record", "-p", str(pid), "-d", "%g" % duration, "-o", str(out)]
    cmd += EXTRA_RECORD_ARGS
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    if res.returncode != 0:
        pytest.fail("loopspy record failed (status %d)\nstdout:\n%s\nstderr:\n%s"
                    % (res.returncode, res.stdout[-4000:], res.stderr[-4000:]), pytrace=False)
    return _load_report(out, cmd, res)


def run(argv, out: Path, timeout=120):
    """`loopspy run -o OUT -- ARGV...`; returns (CompletedProcess, report)."""
    cmd = [str(LOOPSPY), "run", "-o", str(out), "--"] + [str(a) for a in argv]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=clean_env())
    return res, _load_report(out, cmd, res)


# --------------------------------------------------------------------------
# Reading reports


def summarize(report) -> str:
    """Short human-readable view of a report, for failure messages."""
    if not isinstance(report, dict):
        return "report: %r" % (report,)
    out = []
    t = report.get("target") or {}
    out.append("target pid=%s command=%r runtime=%s" % (t.get("pid"), t.get("command"), t.get("runtime")))
    out.append("duration_ms=%s dropped_events=%s" % (report.get("duration_ms"), report.get("dropped_events")))
    loops = report.get("loops") or []
    out.append("loops (%d):" % len(loops))
    for lp in loops:
        out.append("  tid=%s name=%r iterations=%s lag_ms=%s busy=%s" % (
            lp.get("tid"), lp.get("thread_name"), lp.get("iterations"), lp.get("lag_ms"), lp.get("busy_ratio")))
    findings = report.get("findings") or []
    out.append("findings (%d):" % len(findings))
    for f in findings:
        out.append("  %s tid=%s (%s) syscall=%s count=%s total_ms=%s max_ms=%s" % (
            f.get("kind"), f.get("tid"), f.get("thread_name"), f.get("syscall"),
            f.get("count"), f.get("total_ms"), f.get("max_ms")))
        b = f.get("breakdown")
        if b:
            out.append("    breakdown on_cpu=%s blocked=%s runnable=%s syscalls=%s" % (
                b.get("on_cpu_ms"), b.get("blocked_ms"), b.get("runnable_ms"),
                [(s.get("syscall"), s.get("count")) for s in b.get("syscalls") or []]))
        stack = f.get("python_stack") or []
        for fr in stack[:12]:
            out.append("    at %s (%s:%s)" % (fr.get("function"), fr.get("file"), fr.get("line")))
        if len(stack) > 12:
            out.append("    ... %d more frames" % (len(stack) - 12))
    return "\n".join(out)


def fail(msg, report, report_path=None):
    text = "%s\n\n--- report summary ---\n%s" % (msg, summarize(report))
    if report_path:
        text += "\n(full report: %s)" % report_path
    print(text)
    pytest.fail(text, pytrace=False)


_LOOP_KEYS = ("tid", "thread_name", "iterations", "lag_ms", "busy_ratio")
_FINDING_KEYS = ("kind", "tid", "thread_name", "syscall", "count", "total_ms", "max_ms", "python_stack")


def schema_problems(report) -> List[str]:
    p = []
    if report.get("schema") != "loopspy-report/1":
        p.append("schema is %r" % report.get("schema"))
    for key in ("target", "duration_ms", "dropped_events", "loops", "findings"):
        if key not in report:
            p.append("missing top-level %r" % key)
    target = report.get("target") or {}
    for key in ("pid", "command", "runtime"):
        if key not in target:
            p.append("missing target.%s" % key)
    for lp in report.get("loops") or []:
        missing = [k for k in _LOOP_KEYS if k not in lp]
        if missing:
            p.append("loop %s missing %s" % (lp.get("tid"), missing))
        elif not all(k in (lp["lag_ms"] or {}) for k in ("p50", "p99", "max")):
            p.append("loop %s lag_ms incomplete: %r" % (lp.get("tid"), lp["lag_ms"]))
    for f in report.get("findings") or []:
        missing = [k for k in _FINDING_KEYS if k not in f]
        if f.get("kind") not in ("stall", "blocking_syscall", "lock_contention", "gil_contention", "gc_pause"):
            p.append("finding with unknown kind %r" % f.get("kind"))
        if f.get("kind") == "stall":
            b = f.get("breakdown")
            if not isinstance(b, dict):
                missing.append("breakdown")
            else:
                missing += ["breakdown." + k for k in ("on_cpu_ms", "blocked_ms", "runnable_ms", "syscalls")
                            if k not in b]
        if missing:
            p.append("%s finding tid=%s missing %s" % (f.get("kind"), f.get("tid"), missing))
        for fr in f.get("python_stack") or []:
            if not all(k in fr for k in ("function", "file", "line")):
                p.append("bad python_stack frame %r" % (fr,))
                break
    return p


def check_schema(report, report_path=None):
    problems = schema_problems(report)
    if problems:
        fail("report does not follow loopspy-report/1:\n  " + "\n  ".join(problems), report, report_path)


def loop_tids(report):
    return [lp.get("tid") for lp in report.get("loops") or []]


def check_loops(report, tids, report_path=None):
    if not report.get("loops"):
        fail("no event loop reported", report, report_path)
    missing = [t for t in tids if t not in loop_tids(report)]
    if missing:
        fail("loop thread(s) %s not in loops %s" % (missing, loop_tids(report)), report, report_path)


def _is_program_file(path, program: Path):
    return isinstance(path, str) and (path == str(program) or path == program.name
                                      or path.endswith("/" + program.name))


def _finding_problem(f, marker: Marker, program: Path, tid: int) -> Optional[str]:
    """None if finding f satisfies marker on thread tid, else why not."""
    folded = f.get("kind") == "blocking_syscall" and marker.kind == "stall" and marker.syscalls
    if f.get("kind") != marker.kind and not folded:
        return "kind %s" % f.get("kind")
    if f.get("tid") != tid:
        return "tid %s != loop tid %s" % (f.get("tid"), tid)
    if marker.syscalls:
        if f.get("kind") == "blocking_syscall":
            if f.get("syscall") not in marker.syscalls:
                return "syscall %r not in %s" % (f.get("syscall"), "|".join(marker.syscalls))
        else:
            seen = [s.get("syscall") for s in (f.get("breakdown") or {}).get("syscalls") or []]
            if not set(seen) & set(marker.syscalls):
                return "breakdown syscalls %s contain none of %s" % (seen, "|".join(marker.syscalls))
    frames = [fr for fr in f.get("python_stack") or [] if _is_program_file(fr.get("file"), program)]
    if not frames:
        return "no frame from %s in python_stack" % program.name
    if marker.kind == "stall" and not marker.syscalls:
        # CPU-bound: any line of the function's body will do.
        lo, hi = marker.body
        named = [fr for fr in frames if fr.get("function") == marker.function]
        if not named:
            return "no frame of function %s (program frames: %s)" % (
                marker.function, [(fr.get("function"), fr.get("line")) for fr in frames])
        if not any(isinstance(fr.get("line"), int) and lo <= fr["line"] <= hi for fr in named):
            return "%s frame lines %s not within %d-%d" % (
                marker.function, [fr.get("line") for fr in named], lo, hi)
        return None
    at_line = [fr for fr in frames if fr.get("line") == marker.line]
    if not at_line:
        return "no frame at %s:%d (program frames: %s)" % (
            program.name, marker.line, [(fr.get("function"), fr.get("line")) for fr in frames])
    if not any(fr.get("function") == marker.function for fr in at_line):
        return "frame at line %d has function %r, expected %r" % (
            marker.line, at_line[0].get("function"), marker.function)
    return None


def check_marker(report, program: Path, marker: Marker, tid: int, report_path=None):
    """Assert a finding matching marker exists on thread tid; return it."""
    reasons = []
    for i, f in enumerate(report.get("findings") or []):
        why = _finding_problem(f, marker, program, tid)
        if why is None:
            return f
        reasons.append("  finding #%d (%s): %s" % (i, f.get("kind"), why))
    want = "%s%s at %s:%d in %s() on tid %d" % (
        marker.kind, " [%s]" % "|".join(marker.syscalls) if marker.syscalls else "",
        program.name, marker.line, marker.function, tid)
    fail("no finding matches: %s\n%s" % (want, "\n".join(reasons) or "  (no findings)"),
         report, report_path)
