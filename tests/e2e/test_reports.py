"""loopspy reports and the CI gate, end to end.

- `loopspy report` on the fixed fixtures matches tests/golden/ (the same
  goldens the unit test build/tests/test_render checks; regenerate them with
  `make golden`), SARIF passes the official validator, JUnit parses, the HTML
  page is self-contained and loads in headless Chromium;
- malformed, truncated and wrong-version inputs exit 6 with a message;
- --fail-on / --baseline exit statuses with real programs: a pitfall
  introduced into a clean program fails the gate (5) and every report points
  at the new line; the clean program passes.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from loopspy_e2e import LOOPSPY, PROGRAMS, REPO, SETTLE_SECONDS, Program, clean_env

FIXTURES = REPO / "tests" / "fixtures"
GOLDEN = REPO / "tests" / "golden"
PYTHON = "/usr/bin/python3"
EXIT_USAGE, EXIT_OUTPUT, EXIT_GATE, EXIT_INPUT = 2, 4, 5, 6
RULES = "stall>100ms,blocking_syscall,lag_p99>20ms,gil_contention>5%"


def loopspy(*args, timeout=60, check=None, **kw):
    res = subprocess.run([str(LOOPSPY.resolve())] + [str(a) for a in args], capture_output=True, text=True,
                         timeout=timeout, **kw)
    assert res.returncode >= 0, "loopspy killed by signal %d\nstderr:\n%s" % (-res.returncode, res.stderr)
    if check is not None:
        assert res.returncode == check, "loopspy %s: exit %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(map(str, args)), res.returncode, check, res.stdout[-3000:], res.stderr[-3000:])
    return res


# --------------------------------------------------------------------------
# Rendering the fixtures


@pytest.mark.parametrize("ext", ["md", "html", "xml", "sarif", "folded", "trace.json", "json"])
def test_report_matches_golden(tmp_path, ext):
    """The command picks the format from the extension and writes exactly
    what the golden holds."""
    out = tmp_path / ("report." + ext)
    loopspy("report", FIXTURES / "pitfalls.json", "-o", out, "--source-root", "/srv/app", check=0)
    assert out.read_bytes() == (GOLDEN / ("pitfalls." + ext)).read_bytes(), \
        "%s differs from tests/golden/pitfalls.%s (run `make golden` if intended)" % (out, ext)


def test_report_gate_and_diff_match_goldens(tmp_path):
    for ext in ("md", "xml", "sarif", "html"):
        out = tmp_path / ("gate." + ext)
        res = loopspy("report", FIXTURES / "pitfalls.json", "-o", out, "--source-root", "/srv/app",
                      "--fail-on", RULES, check=EXIT_GATE)
        assert "gate failed: 5 violations" in res.stderr
        assert out.read_bytes() == (GOLDEN / ("pitfalls.gate." + ext)).read_bytes()
    res = loopspy("report", FIXTURES / "pitfalls.json", "--format", "md", "--source-root", "/srv/app",
                  "--baseline", FIXTURES / "pitfalls_baseline.json", "--max-regression", "20%",
                  check=EXIT_GATE)
    golden = (GOLDEN / "pitfalls.baseline.md").read_text()
    # the golden names the baseline by its fixture name, the command by its path
    assert res.stdout == golden.replace("`pitfalls_baseline.json`", "`%s`" % (FIXTURES / "pitfalls_baseline.json"))
    res = loopspy("diff", FIXTURES / "pitfalls_baseline.json", FIXTURES / "pitfalls.json",
                  "--max-regression", "20", check=EXIT_GATE)
    assert res.stdout == (GOLDEN / "pitfalls.diff.txt").read_text()
    assert "new since the baseline: blocking_syscall clock_nanosleep at refresh_cache" in res.stderr
    # against itself: nothing new, exit 0
    loopspy("diff", FIXTURES / "pitfalls.json", FIXTURES / "pitfalls.json", "--max-regression", "0", check=0)
    # "-" reads the report from stdin
    with open(FIXTURES / "pitfalls.json") as f:
        res = loopspy("report", "-", "--source-root", "/srv/app", stdin=f, check=0)
    assert res.stdout == (GOLDEN / "pitfalls.md").read_text()
    # default: Markdown on stdout, and a passing gate exits 0
    res = loopspy("report", FIXTURES / "clean.json", "--fail-on", RULES, check=0)
    assert res.stdout.startswith("## loopspy: 0 findings")
    assert "gate passed" in res.stderr


def _validator():
    """argv of the official SARIF validator, or pytest.skip when the npm
    registry cannot be reached."""
    npx = shutil.which("npx")
    if not npx:
        pytest.fail("npx is missing (Debian package npm)")
    cmd = [npx, "--yes", "@microsoft/sarif-multitool"]
    try:
        res = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        res = None
    if res is None or res.returncode != 0:
        ping = subprocess.run(["npm", "ping"], capture_output=True, text=True, timeout=120)
        if ping.returncode != 0:
            pytest.skip("npm registry unreachable, SARIF validator not run: %s" % ping.stderr.strip()[-300:])
        pytest.fail("sarif-multitool does not run:\n%s" % (res.stderr[-2000:] if res else "timeout"))
    return cmd


def sarif_validate(paths):
    """Runs the validator; returns {path: [error lines]}. It exits 0 even
    with errors, so its output is read."""
    cmd = _validator()
    res = subprocess.run(cmd + ["validate"] + [str(p) for p in paths], capture_output=True, text=True,
                         timeout=600, cwd=tempfile.gettempdir())
    assert "Analysis completed successfully" in res.stdout, res.stdout + res.stderr
    errors = {str(p): [] for p in paths}
    for line in res.stdout.splitlines():
        m = re.match(r"(.*?)\(\d+(?:,\d+)?\): error ", line)
        if m:
            errors.setdefault(m.group(1), []).append(line)
    return errors, res.stdout


def test_sarif_validator(tmp_path):
    outs = []
    for fixture, extra in (("pitfalls.json", ["--fail-on", RULES]), ("pitfalls.json", []), ("clean.json", []),
                           ("nostacks.json", []), ("hostile.json", ["--fail-on", "stall"])):
        out = tmp_path / ("%s%d.sarif" % (fixture[:-5], len(outs)))
        loopspy("report", FIXTURES / fixture, "-o", out, *extra)
        outs.append(out)
    # proves errors are detected at all: a result without ruleId or message
    bad = tmp_path / "bad.sarif"
    bad.write_text('{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x"}},"results":[{"message":{}}]}]}')
    errors, text = sarif_validate(outs + [bad])
    assert errors[str(bad)], "the validator found no error in a broken file:\n" + text
    for out in outs:
        assert not errors[str(out)], "SARIF validator errors:\n" + "\n".join(errors[str(out)])


def test_sarif_locations():
    """One rule per kind; results at the innermost frame in the user's code,
    relative to --source-root; the stack as a code flow."""
    res = loopspy("report", FIXTURES / "pitfalls.json", "--format", "sarif", "--source-root", "/srv/app",
                  "--fail-on", "stall>100ms", check=EXIT_GATE)
    run = json.loads(res.stdout)["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [
        "stall", "blocking_syscall", "lock_contention", "gil_contention", "gc_pause"]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == "file:///srv/app/"
    where = {}
    for r in run["results"]:
        loc = r["locations"][0]["physicalLocation"]
        where[(r["ruleId"], r.get("properties", {}).get("syscall"))] = (
            loc["artifactLocation"]["uri"], loc["region"]["startLine"], r["level"])
        flow = r["codeFlows"][0]["threadFlows"][0]["locations"]
        assert flow[-1]["nestingLevel"] == len(flow) - 1
    assert where[("stall", None)] == ("reports.py", 21, "error")
    # subprocess.py frames skipped: the caller in the user's code
    assert where[("blocking_syscall", "wait4")] == ("server.py", 30, "warning")
    # a GIL wait seen only in the loop's machinery: the holder's code
    assert where[("gil_contention", "futex")] == ("jobs.py", 16, "warning")
    # the gc pause has no Python stack: left out, counted
    assert run["properties"]["unlocated_sites"] == 1 and len(run["results"]) == 5


def test_junit_parses():
    res = loopspy("report", FIXTURES / "pitfalls.json", "--format", "junit", "--source-root", "/srv/app",
                  "--fail-on", RULES, check=EXIT_GATE)
    root = ET.fromstring(res.stdout.encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["loopspy.findings", "loopspy.loops"]
    total = failed = 0
    for s in suites:
        cases = s.findall("testcase")
        fails = [c for c in cases if c.find("failure") is not None]
        assert int(s.get("tests")) == len(cases) and int(s.get("failures")) == len(fails)
        assert s.get("errors") == "0" and float(s.get("time")) >= 0
        for c in cases:
            assert c.get("name") and c.get("classname") and float(c.get("time")) >= 0
            f = c.find("failure")
            if f is not None:
                assert f.get("message") and f.get("type") and f.text
        total += len(cases)
        failed += len(fails)
    assert int(root.get("tests")) == total and int(root.get("failures")) == failed
    names = {c.get("name"): c for c in suites[0].findall("testcase")}
    failing = sorted(n for n, c in names.items() if c.find("failure") is not None)
    assert failing == ["blocking_syscall clock_nanosleep at refresh_cache (cache.py:15)",
                       "blocking_syscall wait4 at archive (server.py:30)",
                       "stall at checksum (reports.py:21)"]
    stall = names["stall at checksum (reports.py:21)"]
    assert stall.get("file") == "reports.py" and stall.get("line") == "21"
    assert stall.find("failure").get("type") == "stall>100ms"
    loops = {c.get("name"): c for c in suites[1].findall("testcase")}
    assert loops["loop worker-loop"].find("failure") is not None
    assert loops["loop MainThread"].find("failure") is None
    # no rules: a listing where everything passes
    res = loopspy("report", FIXTURES / "hostile.json", "--format", "junit", check=0)
    root = ET.fromstring(res.stdout.encode())
    assert root.get("failures") == "0" and root.get("tests") == "3"


def chromium(args, timeout=120):
    exe = shutil.which("chromium")
    if not exe:
        pytest.fail("chromium is missing (Debian package chromium, installed by .ci/deps.sh)")
    profile = tempfile.mkdtemp(prefix="loopspy-chromium-")
    try:
        return subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=" + profile,
             "--enable-logging=stderr", "--v=0"] + args,
            capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def test_html_self_contained_and_loads(tmp_path):
    """No URL, no script; Chromium builds the whole DOM (the SVG charts, the
    escaped hostile strings) and takes a screenshot. The page has no
    JavaScript, so there is nothing to throw; a Content-Security-Policy
    would log any blocked external load, and none is logged."""
    page = tmp_path / "report.html"
    hostile = tmp_path / "hostile.html"
    loopspy("report", FIXTURES / "pitfalls.json", "-o", page, "--fail-on", RULES, check=EXIT_GATE)
    loopspy("report", FIXTURES / "hostile.json", "-o", hostile)
    for p in (page, hostile):
        text = p.read_text()
        assert "http://" not in text and "https://" not in text
        assert "<script" not in text and "src=" not in text
        assert re.findall(r'href="([^"]*)"', text) == [h for h in re.findall(r'href="([^"]*)"', text)
                                                       if h.startswith("#site-")]
    shot = tmp_path / "shot.png"
    res = chromium(["--window-size=1280,2000", "--screenshot=%s" % shot, page.as_uri()])
    assert res.returncode == 0, res.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    for p, want in ((page, "Stall flame graph"), (hostile, "Main|Thread*_&lt;b&gt;")):
        res = chromium(["--dump-dom", p.as_uri()])
        assert res.returncode == 0, res.stderr[-3000:]
        dom = res.stdout
        assert "<h1>loopspy report</h1>" in dom and want in dom
        assert dom.count("<svg") >= 3
        assert "<script" not in dom, "a report string became markup"
        assert "</html>" in dom
        for line in res.stderr.splitlines():
            assert "Refused to" not in line and "Uncaught" not in line, line


# --------------------------------------------------------------------------
# Hostile input


def _bad_inputs(tmp_path):
    good = (FIXTURES / "pitfalls.json").read_text()
    cases = {
        "not-json.json": ("this is not JSON\n", "syntax error at line 1, column 1"),
        "truncated.json": (good[: len(good) // 2], "ends early (truncated file?)"),
        "empty.json": ("", "empty file"),
        "v2.json": (good.replace('"loopspy-report/1"', '"loopspy-report/2"'), "unsupported report version"),
        "other.json": ('{"version": "2.1.0", "runs": []}', "not a loopspy report"),
        "wrong-type.json": (good.replace('"duration_ms": 2780.4', '"duration_ms": "2780.4"'),
                            "duration_ms: expected a number"),
        "bad-frame.json": (good.replace('"line": 21', '"line": [21]', 1),
                           "findings[0].python_stack[0].line: expected an integer or null"),
    }
    out = {}
    for name, (text, why) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        out[p] = why
    out[tmp_path / "missing.json"] = "No such file or directory"
    out[tmp_path] = "Is a directory"
    return out


def test_bad_input_reports(tmp_path):
    for path, why in _bad_inputs(tmp_path).items():
        for args in (["report", path], ["report", path, "-o", tmp_path / "x.sarif"],
                     ["diff", path, FIXTURES / "pitfalls.json"], ["diff", FIXTURES / "pitfalls.json", path],
                     ["report", FIXTURES / "pitfalls.json", "--baseline", path]):
            res = loopspy(*args, check=EXIT_INPUT)
            assert "loopspy: cannot read report %s: " % path in res.stderr and why in res.stderr, res.stderr
            assert "hint:" in res.stderr


def test_bad_command_lines(tmp_path):
    pitfalls = FIXTURES / "pitfalls.json"
    for args in (["report"], ["report", pitfalls, pitfalls], ["report", pitfalls, "--format", "pdf"],
                 ["report", pitfalls, "-o", tmp_path / "report.txt"], ["report", pitfalls, "--fail-on", "stal"],
                 ["report", pitfalls, "--fail-on", "lag_p99"], ["report", pitfalls, "--max-regression", "x"],
                 ["report", pitfalls, "--max-regression", "5"], ["diff", pitfalls],
                 ["diff", pitfalls, pitfalls, "--max-regression", "-1"],
                 # rules are checked before anything is attached or started
                 ["run", "--fail-on", "stall>fast", "--", "/bin/false"],
                 ["record", "-p", "1", "--fail-on", ""]):
        res = loopspy(*args, check=EXIT_USAGE)
        assert res.stderr.startswith("loopspy: cannot ") or res.stderr.startswith("usage:"), res.stderr
    # an unreadable baseline: before attaching, too
    res = loopspy("record", "-p", "1", "--baseline", tmp_path / "none.json", check=EXIT_INPUT)
    assert "cannot read report" in res.stderr
    res = loopspy("report", pitfalls, "-o", tmp_path / "no" / "such" / "dir.md", check=EXIT_OUTPUT)
    assert "cannot write output" in res.stderr
    # never through a symlink
    link = tmp_path / "link.md"
    link.symlink_to(tmp_path / "target.md")
    loopspy("report", pitfalls, "-o", link, check=EXIT_OUTPUT)
    assert not (tmp_path / "target.md").exists()


# --------------------------------------------------------------------------
# The gate with real programs


def test_record_gate(tmp_path):
    """`record --fail-on`: 5 on a pitfall program, 0 on a healthy one."""
    for name, want in (("sleep_in_coroutine.py", EXIT_GATE), ("healthy.py", 0)):
        out = tmp_path / (name + ".json")
        with Program(PYTHON, name, tmp_path) as prog:
            prog.wait_ready()
            time.sleep(SETTLE_SECONDS)
            res = loopspy("record", "-p", prog.pid, "-d", "2", "-q", "-o", out,
                          "--fail-on", "stall>150ms,blocking_syscall,lag_p99>50ms", timeout=60, check=want)
            prog.assert_alive()
        report = json.loads(out.read_text())
        if want:
            assert re.search(r"blocking_syscall: blocking_syscall \w+ at refresh_cache \(.*"
                             r"sleep_in_coroutine.py:18\)", res.stderr), res.stderr
        else:
            assert "gate failed" not in res.stderr, res.stderr
            assert not [f for f in report["findings"] if f["kind"] in ("stall", "blocking_syscall")], \
                report["findings"]


def test_run_command_status_first(tmp_path):
    """A failing command fails with its own status even when the gate fails."""
    res = loopspy("run", "-q", "--fail-on", "blocking_syscall", "-o", tmp_path / "r.json", "--",
                  PYTHON, PROGRAMS / "exit_code.py", env=clean_env(), timeout=60, check=3)
    assert "gate failed" in res.stderr


def _make_app(path, pitfall):
    """healthy.py as a CI checkout would have it; with pitfall, the
    ticker coroutine also calls time.sleep(0.15) (the line is returned)."""
    src = (PROGRAMS / "healthy.py").read_text()
    anchor = "        ticks += 1\n"
    assert anchor in src
    if pitfall:
        src = src.replace(anchor, anchor + "        time.sleep(0.15)  # the pitfall of this pull request\n")
    path.write_text(src)
    lines = src.splitlines()
    return next((i + 1 for i, l in enumerate(lines) if "time.sleep(0.15)" in l), None)


def _ci_run(app, out, *gate):
    return loopspy("run", "-q", "-d", "2.5", "-o", out, *gate, "--", PYTHON, app,
                   env=clean_env(), timeout=90, cwd=str(app.parent))


def test_baseline_ci_flow(tmp_path):
    """The CI story: main's recording is the baseline; a pull request that
    adds a blocking call fails `run --baseline --fail-on` with status 5 and
    every report names the new line; the unchanged program passes."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    app = checkout / "app.py"
    _make_app(app, pitfall=False)
    base = tmp_path / "main.loopspy.json"
    res = _ci_run(app, base)
    assert res.returncode == 0, res.stderr
    gate = ("--baseline", base, "--fail-on", "stall>100ms,blocking_syscall,lock_contention")

    # the clean program against its baseline
    res = _ci_run(app, tmp_path / "clean.json", *gate)
    assert res.returncode == 0, "clean program failed the gate:\n" + res.stderr
    loopspy("diff", base, tmp_path / "clean.json", check=0)

    # the pull request
    line = _make_app(app, pitfall=True)
    pr = tmp_path / "pr.loopspy.json"
    res = _ci_run(app, pr, *gate)
    assert res.returncode == EXIT_GATE, "exit %d\n%s" % (res.returncode, res.stderr)
    assert "(new since the baseline)" in res.stderr and "app.py:%d" % line in res.stderr, res.stderr
    res = loopspy("diff", base, pr, check=EXIT_GATE)
    assert re.search(r"^new +blocking_syscall \w+ at ticker \(.*app\.py:%d\)" % line, res.stdout, re.M), res.stdout

    # every report points at the offending line (paths relative to the checkout)
    rep = {}
    for ext in ("sarif", "xml", "md", "html"):
        rep[ext] = tmp_path / ("pr." + ext)
        res = loopspy("report", pr, "-o", rep[ext], "--baseline", base, "--fail-on", "blocking_syscall",
                      "--source-root", checkout, check=EXIT_GATE)
    run = json.loads(rep["sarif"].read_text())["runs"][0]
    errors = [r for r in run["results"] if r["level"] == "error"]
    assert len(errors) == 1, errors
    loc = errors[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "app.py", "uriBaseId": "SRCROOT"}
    assert loc["region"]["startLine"] == line
    failed = [c for c in ET.parse(rep["xml"]).getroot().iter("testcase") if c.find("failure") is not None]
    assert len(failed) == 1 and failed[0].get("file") == "app.py" and failed[0].get("line") == str(line)
    assert "`ticker` in `app.py:%d`" % line in rep["md"].read_text()
    assert "<code>ticker</code> in <code>app.py:%d</code>" % line in rep["html"].read_text()
    errors, text = sarif_validate([rep["sarif"]])
    assert not errors[str(rep["sarif"])], text
