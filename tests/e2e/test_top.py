"""`loopspy top` end-to-end, in detached tmux sessions of a fixed size.

Each test starts a pitfall program (Debian's python3 only: the dashboard,
not the interpreters, is under test here), runs `loopspy top` in a tmux
pane, reads the screen with `tmux capture-pane` and types with
`tmux send-keys`. The pane runs a small script that records top's exit
status and the terminal modes (`stty -a`) after it returns.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from loopspy_e2e import LOOPSPY, PROGRAMS, Program, single_marker

PYTHON = "/usr/bin/python3"
TMUX = shutil.which("tmux")
SCREEN_TIMEOUT = 20.0

pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux)")

# SGR parameters that set a colour (not 39/49, the defaults)
COLOUR_SGR = re.compile(r"\x1b\[([0-9;]*)m")


def has_colour(text):
    for m in COLOUR_SGR.finditer(text):
        for p in filter(None, m.group(1).split(";")):
            n = int(p)
            if 30 <= n <= 38 or 40 <= n <= 48 or 90 <= n <= 97 or 100 <= n <= 107:
                return True
    return False


def seconds(text):
    """'215 ms' / '1.21 s' / '2m05s' -> seconds."""
    m = re.fullmatch(r"([\d.]+) (ms|s)", text)
    if m:
        return float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
    m = re.fullmatch(r"(\d+)m(\d+)s", text)
    if m:
        return int(m.group(1)) * 60 + int(m.group(2))
    raise ValueError("not a duration: %r" % text)


class Pane:
    """`loopspy top ARGS` in a detached tmux session of cols x rows."""

    def __init__(self, tmp_path: Path, args, cols=160, rows=45, env=None):
        self.sock = "loopspy-e2e-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.cwd = tmp_path
        self.status = tmp_path / "top.status"
        self.stty = tmp_path / "stty.after"
        script = tmp_path / "pane.sh"
        exports = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        exports.update(env or {})
        script.write_text(
            "cd %s\n" % sh_quote(str(tmp_path))
            + "".join("export %s=%s\n" % (k, sh_quote(v)) for k, v in exports.items())
            + "printf 'before-top\\n'\n"
            + " ".join(sh_quote(str(a)) for a in [LOOPSPY, "top"] + list(args)) + "\n"
            + "echo $? > %s.tmp && mv %s.tmp %s\n" % ((sh_quote(str(self.status)),) * 3)
            + "stty -a > %s 2>&1\n" % sh_quote(str(self.stty))
            + "printf 'after-top\\n'\n"
            + "exec sleep 600\n")
        env_client = dict(os.environ)
        env_client.setdefault("TERM", "xterm")
        self._env = env_client
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "top", "-x", str(cols), "-y", str(rows),
                  "sh %s" % sh_quote(str(script)))
        self.last = ""

    def tmux(self, *args, check=True):
        return subprocess.run([TMUX, "-L", self.sock] + list(args), capture_output=True, text=True,
                              timeout=30, check=check, env=self._env)

    def capture(self, escapes=False):
        args = ["capture-pane", "-p", "-t", "top"] + (["-e"] if escapes else [])
        self.last = self.tmux(*args).stdout
        return self.last

    def keys(self, *keys):
        """Key names (Enter, Escape, Up...) or single characters."""
        for k in keys:
            if len(k) == 1:
                self.tmux("send-keys", "-t", "top", "-l", k)
            else:
                self.tmux("send-keys", "-t", "top", k)

    def text(self, s):
        self.tmux("send-keys", "-t", "top", "-l", s)

    def resize(self, cols, rows):
        self.tmux("resize-window", "-t", "top", "-x", str(cols), "-y", str(rows))

    def wait_for(self, pred, what, timeout=SCREEN_TIMEOUT):
        """Polls the screen until pred(screen) is true; returns the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.capture()
            if pred(screen):
                return screen
            if self.status.exists() and not what.startswith("exit"):
                self.fail("loopspy top exited (status %s) while waiting for %s"
                          % (self.status.read_text().strip(), what))
            if time.monotonic() > deadline:
                self.fail("timed out after %.0f s waiting for %s" % (timeout, what))
            time.sleep(0.1)

    def wait_text(self, *needles, timeout=SCREEN_TIMEOUT):
        return self.wait_for(lambda s: all(n in s for n in needles), "%r on screen" % (needles,), timeout)

    def wait_gone(self, *needles, timeout=SCREEN_TIMEOUT):
        return self.wait_for(lambda s: not any(n in s for n in needles), "%r to leave the screen" % (needles,),
                             timeout)

    def exit_status(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while not self.status.exists():
            if time.monotonic() > deadline:
                self.fail("loopspy top did not exit within %.0f s" % timeout)
            time.sleep(0.05)
        return int(self.status.read_text().strip())

    def fail(self, msg):
        pytest.fail("%s\n--- screen ---\n%s" % (msg, self.last or self.capture()), pytrace=False)

    def close(self):
        self.tmux("kill-server", check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def finding_row(screen, needle):
    for line in screen.splitlines():
        if needle in line and ("blocking_syscall" in line or line.startswith("stall")):
            return line
    return None


def row_count(row):
    """COUNT column of a finding row: KIND SYSCALL/LOCK COUNT TOTAL..."""
    return int(row.split()[2])


def assert_restored(pane):
    """After top returned: the dashboard is gone (alternate screen left) and
    the terminal is back in cooked mode with echo."""
    screen = pane.wait_text("after-top", timeout=10)
    for gone in ("FINDINGS", "LOOPS", "q quit"):
        if gone in screen:
            pane.fail("the dashboard is still on the screen after top exited (%r)" % gone)
    assert "before-top" in screen, screen
    modes = pane.stty.read_text().split()
    for mode in ("echo", "icanon", "isig", "icrnl"):
        assert mode in modes and "-" + mode not in modes, "terminal mode %s not restored: %s" % (mode, modes)
    return screen


def test_top_needs_a_terminal(tmp_path):
    """stdout to a pipe: a clear message pointing at `record`, exit 2, and
    nothing is attached (the pid is never even checked)."""
    start = time.monotonic()
    res = subprocess.run([str(LOOPSPY), "top", "-p", "999999999"], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "not a terminal" in res.stderr, res.stderr
    assert "loopspy record" in res.stderr, res.stderr
    assert res.stdout == ""
    assert time.monotonic() - start < 5
    res = subprocess.run([str(LOOPSPY), "top"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "no pid or command" in res.stderr, res.stderr


def test_top_dashboard_keys(tmp_path):
    """Attached by pid to time.sleep() in a coroutine: the loop and the
    blocking call with its line show up; every key does what it says."""
    program = PROGRAMS / "sleep_in_coroutine.py"
    marker = single_marker(program)
    where = "%s %s:%d" % (marker.function, program.name, marker.line)
    with Program(PYTHON, program.name, tmp_path) as prog, \
            Pane(tmp_path, ["-p", str(prog.wait_ready().pid)]) as pane:
        screen = pane.wait_text(where, "blocking_syscall", "MainThread")
        row = finding_row(screen, where)
        assert row and any(s in row for s in marker.syscalls), row
        assert "pid %d" % prog.pid in screen and "CPython" in screen, screen
        assert "FINDINGS" in screen and "sort: total" in screen
        assert has_colour(pane.capture(escapes=True)), "no colours without NO_COLOR"

        # s cycles the sort
        for name in ("count", "max", "recent", "total"):
            pane.keys("s")
            pane.wait_text("sort: %s" % name)

        # Enter: the detail view with the whole stack; Esc goes back
        pane.keys("Enter")
        screen = pane.wait_text("DETAIL", "Python stack (innermost first)")
        assert "%s:%d" % (program, marker.line) in screen, screen
        assert re.search(r"\bmain\s+\S*%s:\d+" % re.escape(program.name), screen), screen
        assert "Durations of the last" in screen, screen
        pane.keys("Escape")
        pane.wait_gone("DETAIL", "Python stack")
        pane.wait_text("FINDINGS", where)

        # / filters: nothing matches, Esc clears, a function name matches
        pane.keys("/")
        pane.text("zz_no_such_thing")
        pane.wait_text("filter: zz_no_such_thing_")
        pane.keys("Enter")
        pane.wait_text('no finding matches "zz_no_such_thing"')
        pane.keys("Escape")
        pane.wait_gone("no finding matches")
        pane.keys("/")
        pane.text(marker.function[:7].upper())
        pane.keys("Enter")
        pane.wait_text('matching "%s"' % marker.function[:7].upper(), where)
        pane.keys("Escape")
        pane.wait_gone("matching")

        # ? help, any key back
        pane.keys("?")
        pane.wait_text("HELP", "cycle the sort")
        pane.keys("Escape")
        pane.wait_gone("HELP")

        # p pauses the display (the uptime stops), p resumes
        pane.keys("p")
        screen = pane.wait_text("PAUSED")
        up = re.search(r"up (\d+:\d+)", screen).group(1)
        time.sleep(1.5)
        assert "up %s " % up in pane.capture(), pane.last
        pane.keys("p")
        pane.wait_gone("PAUSED")
        pane.wait_for(lambda s: "up %s " % up not in s, "the uptime to move again")

        # w writes a JSON snapshot in the current directory
        pane.keys("w")
        screen = pane.wait_text("wrote ")
        path = Path(re.search(r"wrote (\S+\.json)", screen).group(1))
        assert path.parent == tmp_path and path.name.startswith("loopspy-%d-" % prog.pid), path
        report = json.loads(path.read_text())
        assert report["schema"] == "loopspy-report/1"
        assert report["target"]["pid"] == prog.pid
        assert any(fr["function"] == marker.function for f in report["findings"]
                   for fr in f["python_stack"]), report["findings"]

        # r resets: the counts start again
        screen = pane.wait_for(lambda s: finding_row(s, where) and row_count(finding_row(s, where)) >= 4,
                               "the blocking call to be counted 4 times")
        before = row_count(finding_row(screen, where))
        pane.keys("r")
        screen = pane.wait_text("reset: findings and loop history")
        row = finding_row(screen, where)
        assert row is None or row_count(row) < before, (before, row)

        pane.keys("q")
        assert pane.exit_status() == 0
        assert_restored(pane)
        prog.assert_alive()


def test_top_live_stall(tmp_path):
    """`top -- CMD`: a 3 s CPU stall is shown while it is in progress, named
    by function and line, and its counter grows; when the command exits the
    dashboard says so and keeps the data until q."""
    program = PROGRAMS / "long_stall.py"
    marker = single_marker(program)
    live = re.compile(r">> STALLED ([\d.]+ m?s) in %s %s:\d+" % (re.escape(marker.function), re.escape(program.name)))
    with Pane(tmp_path, ["--", PYTHON, str(program)]) as pane:
        screen = pane.wait_for(lambda s: live.search(s), "a live STALLED marker")
        first = seconds(live.search(screen).group(1))
        screen = pane.wait_for(lambda s: live.search(s) and seconds(live.search(s).group(1)) >= first + 0.5,
                               "the live stall counter to grow past %.2f s" % (first + 0.5))
        assert seconds(live.search(screen).group(1)) < 3.5, screen
        # once over, it is a finding with the culprit's function
        where = "%s %s:" % (marker.function, program.name)
        screen = pane.wait_for(lambda s: finding_row(s, where), "the stall finding", timeout=10)
        pid = int(re.search(r"loopspy top  pid (\d+)", screen).group(1))
        os.kill(pid, signal.SIGTERM)
        screen = pane.wait_text("TARGET EXITED")
        assert finding_row(screen, where), screen
        assert "STALLED" not in screen
        time.sleep(0.6)
        assert "TARGET EXITED" in pane.capture() and finding_row(pane.last, where), pane.last
        pane.keys("q")
        assert pane.exit_status() == 0
        screen = assert_restored(pane)
        # what the command printed is shown after the dashboard
        assert "READY %d" % pid in screen, screen


def test_top_small_terminal_resize_no_color(tmp_path):
    """40x10 with NO_COLOR, shrunk to 24x5 and grown to 120x30 while it runs;
    --iterations ends it by itself."""
    program = PROGRAMS / "sleep_in_coroutine.py"
    marker = single_marker(program)
    with Program(PYTHON, program.name, tmp_path) as prog, \
            Pane(tmp_path, ["-p", str(prog.wait_ready().pid), "--delay", "100", "--iterations", "80"],
                 cols=40, rows=10, env={"NO_COLOR": "1"}) as pane:
        screen = pane.wait_text("MainThread", "blocking_syscall")
        assert all(len(line) <= 40 for line in screen.splitlines()), screen
        assert not has_colour(pane.capture(escapes=True)), "colours despite NO_COLOR:\n%r" % pane.last
        pane.resize(24, 5)
        pane.wait_for(lambda s: s.strip() and "before-top" not in s, "a redraw at 24x5")
        time.sleep(0.5)
        assert not pane.status.exists(), "top exited at 24x5"
        pane.resize(120, 30)
        pane.wait_text("FINDINGS", "%s %s:%d" % (marker.function, program.name, marker.line))
        assert pane.exit_status(timeout=20) == 0
        assert_restored(pane)
