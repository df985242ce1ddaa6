"""loopspy agent end-to-end: discovery, the Prometheus exposition, and a real
Prometheus server scraping it.

The programs run from copies in the test's own directory so that the
agent's --match selects them and nothing that other tests (or people) run
from tests/programs at the same time.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from loopspy_e2e import LOOPSPY, PROGRAMS, REPO, Program, single_marker

PYTHON = "/usr/bin/python3"
NAMES = ("sleep_in_coroutine.py", "cpu_callback.py", "healthy.py")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ALERT_RULES = REPO / "docs" / "loopspy-alerts.yml"


def ere_escape(text):
    """Escape text for a POSIX extended regex (regcomp)."""
    return re.sub(r"([.\[\]()*+?{}|^$\\])", r"\\\1", text)


def copy_programs(tmp_path):
    d = tmp_path / "progs"
    d.mkdir()
    for name in NAMES:
        shutil.copy(PROGRAMS / name, d / name)
    match = ere_escape(str(d)) + r"/(sleep_in_coroutine|cpu_callback|healthy)\.py"
    return d, match


def start(copy_dir, name, workdir):
    # Program joins its name to tests/programs; an absolute name wins.
    return Program(PYTHON, str(copy_dir / name), workdir).wait_ready()


class Agent:
    """`loopspy agent` with its stderr collected line by line."""

    def __init__(self, args, workdir):
        self.log_path = workdir / "agent.stderr"
        self.proc = subprocess.Popen([str(LOOPSPY), "agent"] + args, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        with open(self.log_path, "w") as log:
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                log.write(line + "\n")
                log.flush()
                with self.cond:
                    self.lines.append(line)
                    self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines if l is not None)

    def wait_line(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if line is None:
                        pytest.fail("loopspy agent exited (status %s) before logging %r\nlog:\n%s"
                                    % (self.proc.poll(), pattern, self.log()), pytrace=False)
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail("loopspy agent did not log %r within %gs\nlog:\n%s"
                                % (pattern, timeout, self.log()), pytrace=False)
                self.cond.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


# --------------------------------------------------------------------------
# The exposition


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_exposition(text):
    """[(name, {labels}, value)]; asserts the text format's rules on the way."""
    samples, families, current = [], [], None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in families, "family %s appears twice" % name
            families.append(name)
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name == current and kind in ("counter", "gauge", "histogram"), line
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels = m.group(1), {}
        assert re.sub(r"_(bucket|sum|count)$", "", name) == current or name == current, \
            "%s outside its family %s" % (name, current)
        if m.group(3):
            pos = 0
            body = m.group(3)
            while pos < len(body):
                lm = LABEL_RE.match(body, pos)
                assert lm, "bad labels in %r" % line
                labels[lm.group(1)] = re.sub(r'\\(.)', lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                             lm.group(2))
                pos = lm.end()
        samples.append((name, labels, float(m.group(4))))
    return samples


def check_histograms(samples):
    """Buckets cumulative, +Inf == _count, for every loop."""
    loops = {}
    for name, labels, value in samples:
        if name.startswith("loopspy_loop_lag_seconds_"):
            key = (labels["pid"], labels["tid"])
            loops.setdefault(key, {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                loops[key]["buckets"].append((float(labels["le"]), value))
            elif name.endswith("_count"):
                loops[key]["count"] = value
    for key, h in loops.items():
        values = [v for _, v in h["buckets"]]
        bounds = [le for le, _ in h["buckets"]]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf"), key
        assert values == sorted(values), "buckets of %s not cumulative: %s" % (key, values)
        assert values[-1] == h["count"], "+Inf %s != count %s for %s" % (values[-1], h["count"], key)
    return loops


def site_samples(samples, name, pid, **want):
    out = []
    for n, labels, value in samples:
        if n == name and labels.get("pid") == str(pid) and all(labels.get(k) == v for k, v in want.items()):
            out.append((labels, value))
    return out


def test_agent_once(tmp_path):
    """--once: attach, observe, print one exposition, exit 0."""
    copy_dir, match = copy_programs(tmp_path)
    sleeper = start(copy_dir, "sleep_in_coroutine.py", tmp_path)
    healthy = start(copy_dir, "healthy.py", tmp_path)
    try:
        res = subprocess.run([str(LOOPSPY), "agent", "--once", "-d", "4", "--scan-interval", "0.5s",
                              "--match", match], capture_output=True, text=True, timeout=60)
    finally:
        sleeper.stop()
        healthy.stop()
    detail = "status %s\nstderr:\n%s\nstdout:\n%s" % (res.returncode, res.stderr[-3000:], res.stdout[-6000:])
    assert res.returncode == 0, detail
    for prog in (sleeper, healthy):
        assert re.search(r"attached to %d \(" % prog.pid, res.stderr), detail
    samples = parse_exposition(res.stdout)
    loops = check_histograms(samples)
    assert (str(healthy.pid), str(healthy.pid)) in loops, detail
    assert loops[(str(healthy.pid), str(healthy.pid))]["count"] > 0, detail
    marker = single_marker(PROGRAMS / "sleep_in_coroutine.py")
    sites = site_samples(samples, "loopspy_blocked_seconds_total", sleeper.pid, kind="blocking_syscall",
                         function=marker.function, line=str(marker.line))
    assert sites and sites[0][1] > 0, detail
    assert sites[0][0]["syscall"] in marker.syscalls, detail
    assert sites[0][0]["file"] == str(copy_dir / "sleep_in_coroutine.py"), detail
    assert sites[0][0]["thread"] == "MainThread" and sites[0][0]["tid"] == str(sleeper.pid), detail
    assert not site_samples(samples, "loopspy_findings_total", healthy.pid), detail
    info = site_samples(samples, "loopspy_target_info", sleeper.pid)
    assert info and info[0][0]["runtime"].startswith("CPython 3."), detail
    # promtool (shipped with Debian's prometheus) lints the format
    promtool = shutil.which("promtool")
    if promtool:
        lint = subprocess.run([promtool, "check", "metrics"], input=res.stdout, capture_output=True, text=True)
        assert lint.returncode == 0, "promtool check metrics:\n%s%s" % (lint.stdout, lint.stderr)


def test_agent_usage_errors(tmp_path):
    for args, code in ((["--match", "("], 2), (["--listen", "nonsense"], 2), (["-d", "3"], 2),
                       (["--max-targets", "1000"], 2), (["--exclude", "12,x"], 2)):
        res = subprocess.run([str(LOOPSPY), "agent"] + args, capture_output=True, text=True, timeout=30)
        assert res.returncode == code, "%s: status %s\n%s" % (args, res.returncode, res.stderr)
        assert res.stderr.startswith("loopspy: cannot "), res.stderr
    # the port is taken: exit 4
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        res = subprocess.run([str(LOOPSPY), "agent", "--listen", "127.0.0.1:%d" % s.getsockname()[1]],
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 4, res.stderr
    assert "loopspy: cannot listen on 127.0.0.1:" in res.stderr, res.stderr


# --------------------------------------------------------------------------
# A real Prometheus server


def prometheus_binary():
    exe = shutil.which("prometheus")
    if exe:
        return exe
    why = "not installed"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        res = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"],
                             capture_output=True, text=True, env=env, timeout=600)
        exe = shutil.which("prometheus")
        if exe:
            return exe
        why = "apt-get install prometheus failed: %s" % (res.stderr.strip()[-500:] or res.returncode)
    pytest.skip("the Prometheus end-to-end test needs Debian's prometheus package (%s)" % why)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, exe, agent_port, workdir):
        self.url = "http://127.0.0.1:%d" % free_port()
        cfg = workdir / "prometheus.yml"
        cfg.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
                       "rule_files: ['%s']\n"
                       "scrape_configs:\n  - job_name: loopspy\n    static_configs:\n"
                       "      - targets: ['127.0.0.1:%d']\n" % (ALERT_RULES, agent_port))
        data = workdir / "tsdb"
        data.mkdir()
        self.log_path = workdir / "prometheus.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [exe, "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % data,
             "--web.listen-address=%s" % self.url[len("http://"):]],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(workdir))
        deadline = time.monotonic() + 40
        while True:
            try:
                if http_get(self.url + "/-/ready", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, OSError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("prometheus did not become ready\n%s" % self.log(), pytrace=False)
            time.sleep(0.3)

    def log(self):
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]

    def query(self, promql):
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        _, _, body = http_get(url)
        doc = json.loads(body)
        assert doc.get("status") == "success", doc
        return doc["data"]["result"]

    def rules(self):
        _, _, body = http_get(self.url + "/api/v1/rules")
        return [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def wait_for(what, check, timeout, diagnose):
    """Polls check() until it returns a true value; fails with diagnose()."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            got = check()
        except AssertionError as e:
            got, last = None, str(e)
        if got:
            return got
        time.sleep(0.5)
    pytest.fail("timed out after %gs waiting for %s%s\n%s"
                % (timeout, what, "\nlast: %s" % last if last else "", diagnose()), pytrace=False)


def test_agent_prometheus(tmp_path):
    """Two programs with different pitfalls and a healthy one, scraped by a
    real Prometheus; a target is killed: the agent detaches, keeps serving,
    and the target's series go away after the grace period."""
    exe = prometheus_binary()
    copy_dir, match = copy_programs(tmp_path)
    progs, agent, prom = {}, None, None
    try:
        for name in NAMES:
            progs[name] = start(copy_dir, name, tmp_path)
        sleeper, cpu, healthy = (progs[n] for n in NAMES)
        agent = Agent(["--listen", "127.0.0.1:0", "--match", match, "--grace", "4s",
                       "--scan-interval", "0.5s"], tmp_path)
        port = int(agent.wait_line(r"serving http://127\.0\.0\.1:(\d+)/metrics", 60).group(1))
        for prog in progs.values():
            agent.wait_line(r"attached to %d \(" % prog.pid, 20)
        prom = Prometheus(exe, port, tmp_path)
        metrics_url = "http://127.0.0.1:%d/metrics" % port

        def diagnose():
            try:
                text = http_get(metrics_url)[2]
            except OSError as e:
                text = "(cannot fetch /metrics: %s)" % e
            sites = [l for l in text.splitlines() if l.startswith(("loopspy_findings_total",
                                                                    "loopspy_blocked_seconds_total"))]
            return "agent log:\n%s\n/metrics sites:\n%s\nprometheus log:\n%s" % (
                agent.log()[-3000:], "\n".join(sites)[-4000:], prom.log())

        def one(promql):
            res = prom.query(promql)
            assert len(res) <= 1, "%s: %d series: %s" % (promql, len(res), res)
            return res[0] if res else None

        sleep_marker = single_marker(PROGRAMS / "sleep_in_coroutine.py")
        cpu_marker = single_marker(PROGRAMS / "cpu_callback.py")

        def culprits_scraped():
            a = one('loopspy_blocked_seconds_total{pid="%d",kind="blocking_syscall",function="%s"}'
                    % (sleeper.pid, sleep_marker.function))
            b = one('loopspy_findings_total{pid="%d",kind="stall",function="%s"}'
                    % (cpu.pid, cpu_marker.function))
            c = one('loopspy_findings_total{pid="%d",kind="blocking_syscall",function="%s"}'
                    % (sleeper.pid, sleep_marker.function))
            d = one('loopspy_blocked_seconds_total{pid="%d",kind="stall",function="%s"}'
                    % (cpu.pid, cpu_marker.function))
            h = one('loopspy_loop_lag_seconds_count{pid="%d"}' % healthy.pid)
            if not (a and b and c and d and h):
                return None
            if min(float(x["value"][1]) for x in (a, b, c, d, h)) <= 0:
                return None
            return a, b

        a, b = wait_for("the culprit sites in Prometheus", culprits_scraped, 30, diagnose)
        assert a["metric"]["syscall"] in sleep_marker.syscalls, a
        assert a["metric"]["line"] == str(sleep_marker.line), a
        assert a["metric"]["file"] == str(copy_dir / "sleep_in_coroutine.py"), a
        assert a["metric"]["thread"] == "MainThread" and a["metric"]["comm"] == "python3", a
        lo, hi = cpu_marker.body
        assert lo <= int(b["metric"]["line"]) <= hi, b
        assert b["metric"]["file"] == str(copy_dir / "cpu_callback.py"), b
        assert b["metric"]["job"] == "loopspy", b
        # the healthy program is watched (its loop is there) and has no findings
        assert prom.query('loopspy_findings_total{pid="%d"}' % healthy.pid) == [], diagnose()
        assert prom.query('loopspy_blocked_seconds_total{pid="%d"}' % healthy.pid) == [], diagnose()
        assert prom.query('up{job="loopspy"} == 1'), diagnose()
        # the histogram works in PromQL: cpu_callback's p99 is one of its stalls
        p99 = wait_for("a p99 from histogram_quantile", lambda: one(
            'histogram_quantile(0.99, sum by (le) (rate(loopspy_loop_lag_seconds_bucket{pid="%d"}[1m])))'
            % cpu.pid), 15, diagnose)
        assert float(p99["value"][1]) >= 0.1, p99
        # docs/loopspy-alerts.yml loaded and evaluates against these metrics
        rules = wait_for("the alert rules to be evaluated", lambda: [
            r for r in prom.rules() if r.get("health") == "ok"] == prom.rules() and prom.rules(), 15, diagnose)
        assert {r["name"] for r in rules} >= {"AsyncioLoopStalled", "AsyncioLoopBlockingSite"}, rules

        # a target goes away
        os.kill(sleeper.pid, signal.SIGKILL)
        agent.wait_line(r"detached from %d \(.*the process exited" % sleeper.pid, 15)
        status, ctype, body = http_get("http://127.0.0.1:%d/healthz" % port)
        assert (status, body) == (200, "ok\n")
        status, ctype, body = http_get(metrics_url)
        assert status == 200 and ctype == CONTENT_TYPE, (status, ctype)
        agent.wait_line(r"removed the series of %d \(" % sleeper.pid, 15)
        status, ctype, body = http_get(metrics_url)
        assert status == 200
        parse_exposition(body)
        assert 'pid="%d"' % sleeper.pid not in body, "series of the killed target still served"
        assert 'pid="%d"' % cpu.pid in body
        wait_for("the killed target's series to go stale in Prometheus",
                 lambda: prom.query('loopspy_blocked_seconds_total{pid="%d"}' % sleeper.pid) == [],
                 15, diagnose)
        assert one('loopspy_findings_total{pid="%d",kind="stall"}' % cpu.pid), diagnose()
        assert agent.proc.poll() is None, diagnose()
    finally:
        status = agent.stop() if agent else 0
        if prom:
            prom.stop()
        for prog in progs.values():
            prog.stop()
    assert status == 0, "agent exited with %s\n%s" % (status, agent.log())


def test_alert_rules_documented():
    """docs/fleet.md shows docs/loopspy-alerts.yml as it is."""
    fleet = (REPO / "docs" / "fleet.md").read_text()
    assert ALERT_RULES.read_text() in fleet, "docs/fleet.md and docs/loopspy-alerts.yml differ"
