#!/usr/bin/python3
"""loopspy overhead benchmark: `make bench` runs this as root.

Four asyncio workloads (bench/targets.py) are measured untraced and under
loopspy, loopspy --no-stacks, strace -f -T, PYTHONASYNCIODEBUG=1 and a
bpftrace script, side by side in one run: every traced window sits between
two untraced windows of the same target (B L B N B P ... per round: both
loopspy modes and one peer in turn, the order rotating between rounds), each
ratio is traced / mean(neighbouring untraced windows), and the tables show
the median over rounds. Also measured: tracer CPU and peak RSS, loopspy
events and drops, the time from a stall's start until `loopspy top` shows
it, and the BPF programs' own cost (run counts and ns per run, BPF stats).

Prints the tables and writes docs/performance.md. Environment knobs:
BENCH_ROUNDS (default 5), BENCH_SECONDS (window length, default 2),
BENCH_WORKLOADS (comma list of aiohttp,echo,storm,threads), BENCH_OUT
(default docs/performance.md; "-" prints only), BENCH_LOOPSPY (the binary,
default build/loopspy), BENCH_STALLS (stalls per workload for the top
measurement, default 3), BENCH_QUIET_WAIT (seconds the whole run may spend
waiting for other tracers on the machine to go away, default 45),
BENCH_SEED. Logs and the raw results: build/bench/.
"""
import ctypes
import datetime
import fcntl
import json
import os
import platform
import random
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
WORK = os.path.join(ROOT, "build", "bench")
LOGS = os.path.join(WORK, "logs")
LOOPSPY = os.environ.get("BENCH_LOOPSPY") or os.path.join(ROOT, "build", "loopspy")
PYTHON = "/usr/bin/python3"
TARGETS = os.path.join(BENCH, "targets.py")
BT_SCRIPT = os.path.join(BENCH, "syscall_latency.bt")
ECHO_LOAD = os.path.join(WORK, "echo_load")

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
WORKLOADS = [w for w in os.environ.get("BENCH_WORKLOADS", "aiohttp,echo,storm,threads").split(",") if w]
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "docs", "performance.md"))
STALLS = int(os.environ.get("BENCH_STALLS", "3"))
# seconds, over the whole run, to wait for other tracers to go away
QUIET_WAIT = [float(os.environ.get("BENCH_QUIET_WAIT", "45"))]
SEED = int(os.environ.get("BENCH_SEED", "1"))
SETTLE = 0.3        # after a tracer is attached, before the window starts
STALL_MS = 600      # each stall for the top measurement
CLK_TCK = os.sysconf("SC_CLK_TCK")

BUDGET = {
    "aiohttp": 0.98, "echo": 0.97, "storm": 0.95,
    "cpu": 0.05, "stall_ms": 200.0, "rss_mib": 64.0,
}

PEERS = ["loopspy", "nostacks", "strace", "asynciodebug", "bpftrace", "epollonly"]
# every round: both loopspy modes and one of these, in turn
OTHERS = ["strace", "asynciodebug", "bpftrace"]
# workloads that also measure the epoll-tracepoints-only floor every round
FLOOR_WORKLOADS = ("aiohttp", "echo", "storm")
PEER_TITLE = {
    "loopspy": "loopspy record",
    "nostacks": "loopspy record --no-stacks",
    "strace": "strace -f -T -o /dev/null",
    "asynciodebug": "PYTHONASYNCIODEBUG=1",
    "bpftrace": "bpftrace raw_syscalls per tid",
    "epollonly": "diagnostic: bpftrace on the epoll_wait syscall tracepoints only",
}
EPOLL_ONLY = os.path.join(BENCH, "epoll_only.bt")


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# processes: everything started is registered and killed on the way out

STARTED = []
STOPPED = []


def spawn(cmd, name, **kw):
    """Popen in its own session (so its group can be ended), stdout/stderr
    to build/bench/logs/NAME.log unless given."""
    logf = None
    if "stdout" not in kw:
        logf = open(os.path.join(LOGS, name + ".log"), "wb")
        kw["stdout"] = logf
        kw.setdefault("stderr", subprocess.STDOUT)
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    if logf:
        logf.close()
    p.logpath = os.path.join(LOGS, name + ".log")
    p.rusage = None
    STARTED.append(p)
    return p


def reap(p, timeout):
    """Waits for p; kills its group when it does not exit in time."""
    deadline = time.monotonic() + timeout
    while p.returncode is None:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            p.rusage = ru
            break
        if time.monotonic() >= deadline:
            kill_group(p, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.01)
    if p in STARTED:
        STARTED.remove(p)
    return p.returncode


def kill_group(p, sig):
    try:
        os.killpg(p.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p is None or p.returncode is not None:
        return
    kill_group(p, signal.SIGCONT)
    kill_group(p, sig)
    reap(p, timeout)


def cleanup():
    for p in list(STARTED):
        kill_group(p, signal.SIGCONT)
        kill_group(p, signal.SIGKILL)
        try:
            reap(p, 5)
        except ChildProcessError:
            pass
    for fn in list(STOPPED):
        fn()


def on_signal(sig, frame):
    raise KeyboardInterrupt("signal %d" % sig)


class Lines:
    """Line reader with timeouts on a pipe."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.buf = b""

    def next(self, timeout, prefix=None):
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                line = line.decode(errors="replace").strip()
                if prefix is None or line.startswith(prefix):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no %r line in %.0f s" % (prefix or "", timeout))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                data = os.read(self.fd, 65536)
                if not data:
                    raise RuntimeError("target closed its output (exited?)")
                self.buf += data


def wait_log(p, marker, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(p.logpath, "rb") as f:
            if marker in f.read():
                return True
        if p.poll() is not None:
            break
        time.sleep(0.02)
    with open(p.logpath, "rb") as f:
        tail = f.read()[-2000:].decode(errors="replace")
    raise RuntimeError("%s: no %r (exit %s): %s" % (p.args[0], marker, p.returncode, tail))


TRACE_TYPES = {"tracepoint", "raw_tracepoint", "raw_tracepoint_writable", "tracing", "perf_event", "kprobe"}


def tracing_progs():
    """Ids of the tracing BPF programs loaded on the machine."""
    try:
        r = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=10)
        return {d["id"] for d in json.loads(r.stdout) if d.get("type") in TRACE_TYPES}
    except (OSError, ValueError, subprocess.SubprocessError):
        return set()


def proc_cpu(pid):
    """utime + stime of a process from /proc/PID/stat, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------
# targets and their load

class Target:
    def __init__(self, kind, debug=False, tag=""):
        env = dict(os.environ)
        env.pop("PYTHONASYNCIODEBUG", None)
        if debug:
            env["PYTHONASYNCIODEBUG"] = "1"
        self.kind = kind
        self.p = spawn([PYTHON, TARGETS, kind], "target-%s%s" % (kind, tag), stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.pid = self.p.pid
        self.out = Lines(self.p.stdout)
        self.port = int(self.out.next(30, "ready").split()[1])

    def cmd(self, line):
        self.p.stdin.write((line + "\n").encode())
        self.p.stdin.flush()

    def pause(self):
        kill_group(self.p, signal.SIGSTOP)

    def resume(self):
        kill_group(self.p, signal.SIGCONT)

    def close(self):
        if self.p.returncode is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
            reap_deadline = time.monotonic() + 3
            while self.p.poll() is None and time.monotonic() < reap_deadline:
                time.sleep(0.02)
            stop(self.p, signal.SIGKILL)
        if self.p in STARTED:
            STARTED.remove(self.p)


class Workload:
    key = title = unit = load = ""

    def measure(self, t, secs):
        raise NotImplementedError

    def background(self, t, secs):
        """Start load for secs without waiting; returns what end_background takes."""
        raise NotImplementedError

    def end_background(self, t, h):
        pass


class Aiohttp(Workload):
    key, unit = "aiohttp", "req/s"
    title = "(a) aiohttp hello world"
    load = "`wrk -t1 -c16` on 127.0.0.1"

    def _wrk(self, t, secs, name):
        return spawn(["wrk", "-t1", "-c16", "-d%ds" % max(1, round(secs)), "--timeout", "5s",
                      "http://127.0.0.1:%d/" % t.port], name)

    def measure(self, t, secs):
        w = self._wrk(t, secs, "wrk")
        if reap(w, secs + 30) != 0:
            raise RuntimeError("wrk failed: " + open(w.logpath).read()[-500:])
        text = open(w.logpath).read()
        m = re.search(r"Requests/sec:\s*([\d.]+)", text)
        if not m:
            raise RuntimeError("wrk printed no rate: " + text[-500:])
        if "Non-2xx" in text or "Socket errors" in text:
            log("  note: wrk saw errors: " + " ".join(l.strip() for l in text.splitlines()
                                                    if "Non-2xx" in l or "Socket errors" in l))
        return float(m.group(1))

    def background(self, t, secs):
        return self._wrk(t, secs, "wrk-bg")

    def end_background(self, t, h):
        stop(h, signal.SIGINT)


class Echo(Workload):
    key, unit = "echo", "round trips/s"
    title = "(b) asyncio TCP echo"
    load = "16 connections ping-ponging 64-byte messages (`bench/echo_load.c`)"

    def _load(self, t, secs, name):
        return spawn([ECHO_LOAD, str(t.port), "16", "%g" % secs, "64"], name)

    def measure(self, t, secs):
        w = self._load(t, secs, "echo_load")
        if reap(w, secs + 30) != 0:
            raise RuntimeError("echo_load failed: " + open(w.logpath).read()[-500:])
        return float(open(w.logpath).read().split()[-1])

    def background(self, t, secs):
        return self._load(t, secs, "echo_load-bg")

    def end_background(self, t, h):
        stop(h, signal.SIGINT)


class Commanded(Workload):
    def measure(self, t, secs):
        t.cmd("run %g" % secs)
        return float(t.out.next(secs + 60, "result").split()[1])

    def background(self, t, secs):
        t.cmd("run %g" % secs)
        return secs

    def end_background(self, t, h):
        t.cmd("stop")
        t.out.next(h + 60, "result")


class Storm(Commanded):
    key, unit = "storm", "getppid/s"
    title = "(c) syscall storm on the loop thread"
    load = "`os.getppid()` in a tight loop in a coroutine, `await asyncio.sleep(0)` every 1000 calls"


class Threads(Commanded):
    key, unit = "threads", "iterations/s"
    title = "(d) 200 idle threads + a busy loop"
    load = ("200 threads waking every 0.5-1 s; the loop runs back-to-back iterations of a short "
            "callback (`sum(range(5000))`, ~20 µs) and `await asyncio.sleep(0)`")


WORKLOAD_CLASSES = {c.key: c for c in (Aiohttp, Echo, Storm, Threads)}


# ---------------------------------------------------------------------------
# tracers

class Tracer:
    """One attached tracer (or none for the baseline)."""

    def __init__(self, mode, pid, tag):
        self.mode = mode
        self.json = None
        self.p = None
        if mode in ("loopspy", "nostacks"):
            self.json = os.path.join(WORK, "report-%s.json" % tag)
            cmd = [LOOPSPY, "record", "-p", str(pid), "-d", "600", "-o", self.json]
            if mode == "nostacks":
                cmd.append("--no-stacks")
            self.p = spawn(cmd, "tracer-" + tag, stdin=subprocess.DEVNULL)
            wait_log(self.p, b"loopspy: attached to", 30)
        elif mode == "strace":
            self.p = spawn(["strace", "-f", "-T", "-p", str(pid), "-o", "/dev/null"], "tracer-" + tag,
                           stdin=subprocess.DEVNULL)
            wait_log(self.p, b"attached", 30)
        elif mode in ("bpftrace", "epollonly"):
            script = BT_SCRIPT if mode == "bpftrace" else EPOLL_ONLY
            self.p = spawn(["bpftrace", script, str(pid)], "tracer-" + tag, stdin=subprocess.DEVNULL)
            wait_log(self.p, b"Attaching", 60)
        if self.p:
            self.settle()

    def settle(self):
        # let strace finish attaching every thread (its log stops growing),
        # then SETTLE more
        last, deadline = -1, time.monotonic() + (10 if self.mode == "strace" else 0)
        while time.monotonic() < deadline:
            size = os.path.getsize(self.p.logpath)
            if size == last:
                break
            last = size
            time.sleep(0.2)
        time.sleep(SETTLE)

    def cpu(self):
        return proc_cpu(self.p.pid) if self.p else None

    def finish(self):
        """Stops it; returns {hwm_kib, events, dropped, duration_s}."""
        res = {}
        if not self.p:
            return res
        # VmHWM until the process is gone (it is monotonic: the last value
        # read covers writing the report). Not ru_maxrss: that includes the
        # forked harness before exec.
        hwm = proc_hwm_kib(self.p.pid)
        kill_group(self.p, signal.SIGINT)
        deadline = time.monotonic() + 30
        while self.p.returncode is None and time.monotonic() < deadline:
            hwm = max(hwm, proc_hwm_kib(self.p.pid))
            pid, status, _ = os.wait4(self.p.pid, os.WNOHANG)
            if pid == self.p.pid:
                self.p.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.005)
        rc = reap(self.p, 5)
        res["hwm_kib"] = hwm
        if self.json:
            if rc != 0:
                raise RuntimeError("loopspy exited %s: %s" % (rc, open(self.p.logpath).read()[-800:]))
            with open(self.json) as f:
                rep = json.load(f)
            res["events"] = rep.get("events", 0)
            res["dropped"] = rep.get("dropped_events", 0)
            res["loops"] = len(rep.get("loops") or [])
            if not res["loops"]:
                log("  warning: loopspy found no event loop in %s" % self.json)
            res["duration_s"] = rep.get("duration_ms", 0) / 1000.0
        return res


# ---------------------------------------------------------------------------
# one workload: rounds of B P B P ...

def window(w, t, mode, secs, tag):
    """One measurement window; returns a dict of results."""
    if mode == "asynciodebug":
        # the same program restarted with asyncio's debug mode; the normal
        # target is stopped meanwhile so it cannot take CPU
        t.pause()
        dt = Target(w.key, debug=True, tag="-debug")
        try:
            w.measure(dt, 1)  # warm-up, like the normal target's
            f0 = tracing_progs()
            rate = w.measure(dt, secs)
            f1 = tracing_progs()
        finally:
            dt.close()
            t.resume()
        return {"rate": rate, "foreign": len(f0 | f1)}
    tr = Tracer(mode, t.pid, tag) if mode != "base" else None
    try:
        ours = set(prog_ids(tr.p.pid)) if tr and tr.p else set()
        f0 = tracing_progs() - ours
        c0, t0 = (tr.cpu() if tr else None), time.monotonic()
        rate = w.measure(t, secs)
        c1, t1 = (tr.cpu() if tr else None), time.monotonic()
        f1 = tracing_progs() - ours
    except BaseException:
        if tr and tr.p:
            stop(tr.p, signal.SIGKILL)
        raise
    # other tracers on the machine (another loopspy's syscall tracepoints
    # slow every syscall of every process): the window is not clean
    res = {"rate": rate, "foreign": len(f0 | f1)}
    if tr:
        res.update(tr.finish())
        # the kernel frees a dead tracer's programs asynchronously: wait for
        # them so the next window does not count them as another tracer's
        deadline = time.monotonic() + 5
        while ours & tracing_progs() and time.monotonic() < deadline:
            time.sleep(0.05)
        if c0 is not None:
            res["cpu"] = (c1 - c0) / (t1 - t0)
            res["cpu_s"], res["win_s"] = c1 - c0, t1 - t0
    return res


def wait_quiet():
    """Other tracers loaded (other users of the machine): wait for them to
    go, within what is left of QUIET_WAIT. True when it waited."""
    if not tracing_progs() or QUIET_WAIT[0] <= 0:
        return False
    t0 = time.monotonic()
    while QUIET_WAIT[0] > time.monotonic() - t0:
        time.sleep(0.5)
        if not tracing_progs():
            break
    QUIET_WAIT[0] -= time.monotonic() - t0
    return True


def run_workload(w, have):
    log("== %s: %d rounds of %g s windows" % (w.title, ROUNDS, SECONDS))
    t_start = time.monotonic()
    others = [p for p in OTHERS if p in have]
    every = ["loopspy", "nostacks"]
    if w.key in FLOOR_WORKLOADS and "epollonly" in have:
        every.append("epollonly")
    t = Target(w.key)
    results = {p: [] for p in every + others}
    bases = []
    try:
        w.measure(t, 1)  # the first window after a start is slow (warm-up)
        seq = []
        for r in range(ROUNDS):
            rnd = every + ([others[r % len(others)]] if others else [])
            k = r % len(rnd)
            seq += rnd[k:] + rnd[:k]
        prev = window(w, t, "base", SECONDS, "base")
        bases.append(prev)
        for i, mode in enumerate(seq):
            if wait_quiet():
                prev = window(w, t, "base", SECONDS, "base")
                bases.append(prev)
            res = window(w, t, mode, SECONDS, "%s-%s-%d" % (w.key, mode, i))
            nxt = window(w, t, "base", SECONDS, "base")
            bases.append(nxt)
            res["ratio"] = res["rate"] / ((prev["rate"] + nxt["rate"]) / 2)
            res["clean"] = not (prev["foreign"] or res["foreign"] or nxt["foreign"])
            results[mode].append(res)
            log("  %-14s %10.1f %s  ratio %.3f%s%s" % (
                mode, res["rate"], w.unit, res["ratio"],
                "  cpu %.1f%%" % (100 * res["cpu"]) if "cpu" in res else "",
                "" if res["clean"] else "  (other tracers were loaded)"))
            prev = nxt
        log("  rounds took %.0f s" % (time.monotonic() - t_start))
        bpf = bpf_stats_pass(w, t)
        stall = [stall_pass(w, t, "250ms")]
        if w.key == "aiohttp":
            stall.append(stall_pass(w, t, "50ms"))
    finally:
        t.close()
    log("  %s took %.0f s" % (w.key, time.monotonic() - t_start))
    return {"bases": bases, "peers": results, "bpf": bpf, "stall": stall}


# ---------------------------------------------------------------------------
# BPF program costs: BPF_ENABLE_STATS (kernel.bpf_stats_enabled while held)

BPF_ENABLE_STATS = 32
BPF_STATS_RUN_TIME = 0
NR_BPF = 321  # x86_64


class BpfStats:
    """Turns on run-time stats for BPF programs. Prefers the BPF_ENABLE_STATS
    command, whose fd turns them off again when closed or when this process
    dies; falls back to the kernel.bpf_stats_enabled sysctl, restored on
    the way out."""

    SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"

    def __init__(self):
        self.fd = -1
        self.saved = None
        self.how = ""

    def __enter__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.create_string_buffer(struct.pack("I", BPF_STATS_RUN_TIME) + b"\0" * 12)
        fd = libc.syscall(NR_BPF, BPF_ENABLE_STATS, attr, 16)
        if fd >= 0:
            self.fd = fd
            self.how = "BPF_ENABLE_STATS (same switch as kernel.bpf_stats_enabled=1, released when the fd closes)"
            return self
        with open(self.SYSCTL) as f:
            self.saved = f.read().strip()
        STOPPED.append(self.restore)
        with open(self.SYSCTL, "w") as f:
            f.write("1")
        self.how = "sysctl kernel.bpf_stats_enabled=1 (restored to %s afterwards)" % self.saved
        return self

    def restore(self):
        if self.saved is not None:
            with open(self.SYSCTL, "w") as f:
                f.write(self.saved)
            self.saved = None
        if self.restore in STOPPED:
            STOPPED.remove(self.restore)

    def __exit__(self, *a):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.restore()


def prog_ids(pid):
    ids = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if "bpf-prog" not in os.readlink("/proc/%d/fd/%s" % (pid, fd)):
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.append(int(line.split()[1]))
        except OSError:
            pass
    return sorted(set(ids))


def prog_show(ids):
    """One `bpftool prog show` for all programs (one snapshot in time)."""
    r = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, check=True)
    return {d["id"]: d for d in json.loads(r.stdout) if d.get("id") in ids}


def bpf_stats_pass(w, t):
    """One more loopspy window with BPF stats on: per program runs/s and
    ns/run over the window. Not used for the throughput ratios (stats cost
    two clock reads per run)."""
    if not shutil.which("bpftool"):
        return None
    log("  BPF stats window")
    with BpfStats() as st:
        tr = Tracer("loopspy", t.pid, "%s-bpfstats" % w.key)
        try:
            ids = prog_ids(tr.p.pid)
            s0, t0 = prog_show(ids), time.monotonic()
            w.measure(t, max(SECONDS, 2))
            s1, t1 = prog_show(ids), time.monotonic()
        finally:
            res = tr.finish()
    progs = []
    for i in ids:
        if i not in s0 or i not in s1:
            continue
        a, b = s0[i], s1[i]
        cnt = b.get("run_cnt", 0) - a.get("run_cnt", 0)
        ns = b.get("run_time_ns", 0) - a.get("run_time_ns", 0)
        progs.append({
            "name": b.get("name", "?"), "type": b.get("type", "?"),
            "xlated_insns": b.get("bytes_xlated", 0) // 8, "jited_bytes": b.get("bytes_jited", 0),
            "runs_per_s": cnt / (t1 - t0), "ns_per_run": ns / cnt if cnt else None,
            "cpu_share": ns / 1e9 / (t1 - t0),
        })
    return {"how": st.how, "progs": progs, "dropped": res.get("dropped", 0)}


# ---------------------------------------------------------------------------
# stall visibility: `loopspy top` in a pseudo-terminal

def top_available():
    r = subprocess.run([LOOPSPY, "top", "--help"], capture_output=True)
    return r.returncode == 0


def stall_pass(w, t, delay):
    """While the workload's load runs, the target stalls its loop at known
    times (CLOCK_MONOTONIC printed by the target); `loopspy top` runs in a
    pty and the time its screen first carries "STALLED" is taken when those
    bytes reach the terminal."""
    if not top_available():
        return {"error": "loopspy top is not available"}
    log("  stall visibility (loopspy top -d %s)" % delay)
    rng = random.Random(SEED)
    secs = STALLS * 2.5 + 5  # load for longer than the stalls take; ended early
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 45, 160, 0, 0))
    env = dict(os.environ, TERM="xterm-256color", LANG="C.UTF-8")
    top = None
    bg = w.background(t, secs)
    lat, missed = [], 0
    try:
        top = spawn([LOOPSPY, "top", "-p", str(t.pid), "-d", delay], "top-%s" % w.key,
                    stdin=slave, stdout=slave, stderr=slave, env=env)
        os.close(slave)
        slave = -1

        def pump(until, want):
            tail = b""
            while True:
                left = until - time.monotonic()
                if left <= 0:
                    return None
                r, _, _ = select.select([master], [], [], left)
                if not r:
                    continue
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return None
                if want and want in tail + data:
                    return time.monotonic()
                tail = (tail + data)[-16:]

        pump(time.monotonic() + 1.5, None)  # attached, first frames drawn
        for _ in range(STALLS):
            # a random phase against top's refresh cadence
            pump(time.monotonic() + rng.uniform(0.3, 0.8), None)
            t.cmd("stall %d" % STALL_MS)
            start = float(t.out.next(10, "stall").split()[1])
            seen = pump(start + STALL_MS / 1000.0 + 1.0, b"STALLED")
            if seen is None:
                missed += 1
            else:
                lat.append((seen - start) * 1000)
            pump(time.monotonic() + 0.3, None)
        os.write(master, b"q")
        if reap(top, 10) != 0:
            log("  note: loopspy top exited %s" % top.returncode)
    finally:
        if slave >= 0:
            os.close(slave)
        if top:
            stop(top, signal.SIGTERM)
        os.close(master)
        w.end_background(t, bg)
    return {"delay": delay, "lat_ms": lat, "missed": missed}


# ---------------------------------------------------------------------------
# reporting

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_rate(x):
    return "%.0f" % x if x is not None else "n/a"


def fmt_ratio(rs):
    rs = [r for r in rs if r is not None]
    if not rs:
        return "n/a"
    return "%.3f (%.2f-%.2f)" % (statistics.median(rs), min(rs), max(rs))


def cpu_share(rs):
    """Tracer CPU over all the windows given: total CPU / total time (the
    10 ms ticks of /proc/PID/stat are too coarse for one short window)."""
    rs = [x for x in rs if "cpu_s" in x]
    t = sum(x["win_s"] for x in rs)
    return sum(x["cpu_s"] for x in rs) / t if t else None


def fmt_pct(x):
    return "%.2f%%" % (100 * x) if x is not None else "n/a"


def fmt_mib(kib):
    return "%.1f MiB" % (kib / 1024.0) if kib else "n/a"


def noise(bases):
    """Median relative difference of adjacent untraced windows (the clean
    pairs when there are any)."""
    pairs = [(a, b) for a, b in zip(bases, bases[1:]) if a["rate"]]
    clean = [(a, b) for a, b in pairs if not a["foreign"] and not b["foreign"]]
    d = [abs(b["rate"] / a["rate"] - 1) for a, b in (clean or pairs)]
    return statistics.median(d) if d else None


def pick(rs):
    """The samples a median is taken over: the clean ones (no other tracer
    loaded on the machine during the three windows) when there are any."""
    clean = [x for x in rs if x.get("clean", True)]
    return clean or rs


def workload_table(w, r):
    rows = [["tracer", "throughput vs untraced, median (min-max)", "tracer CPU (of one core)",
             "tracer peak RSS", "loopspy events (/s)", "dropped"]]
    for p in PEERS:
        rs = r["peers"].get(p)
        if rs is None:
            continue
        if not rs:
            tool = {"strace": "strace", "bpftrace": "bpftrace", "epollonly": "bpftrace"}.get(p)
            why = "not installed" if tool and not shutil.which(tool) else "not measured: too few rounds"
            rows.append([PEER_TITLE[p], "n/a (%s)" % why, "", "", "", ""])
            continue
        used = pick(rs)
        cpu = cpu_share(used)
        hwm = max([x.get("hwm_kib", 0) for x in rs] or [0])
        if p in ("loopspy", "nostacks"):
            ev = sum(x["events"] for x in rs)
            evs = med([x["events"] / x["duration_s"] for x in rs if x.get("duration_s")])
            evt = "%d (%.1f/s)" % (ev, evs or 0)
            dr = str(sum(x["dropped"] for x in rs))
        else:
            evt = dr = "n/a"
        ratio = fmt_ratio([x["ratio"] for x in used])
        nclean = sum(1 for x in rs if x.get("clean", True))
        if nclean and nclean < len(rs):
            ratio += " [%d of %d rounds clean]" % (nclean, len(rs))
        elif not nclean:
            ratio += " [no clean round]"
        rows.append([PEER_TITLE[p], ratio,
                     fmt_pct(cpu) if p != "asynciodebug" else "n/a (in the target)",
                     fmt_mib(hwm) if p != "asynciodebug" else "n/a", evt, dr])
    return rows


def bpf_table(res):
    """One row per program: its size, then per workload runs/s x ns/run =
    share of one core."""
    keys = [k for k in WORKLOADS if (res.get(k) or {}).get("bpf")]
    if not keys:
        return None
    short = {"aiohttp": "(a) aiohttp", "echo": "(b) echo", "storm": "(c) storm", "threads": "(d) threads"}
    rows = [["program", "type", "xlated insns", "jited bytes"] +
            ["%s: runs/s x ns/run = CPU" % short[k] for k in keys]]
    progs = {}
    for k in keys:
        for p in res[k]["bpf"]["progs"]:
            progs.setdefault(p["name"], p)
    order = sorted(progs, key=lambda n: -max(next((p["cpu_share"] for p in res[k]["bpf"]["progs"]
                                                    if p["name"] == n), 0) for k in keys))
    for n in order:
        row = [n, progs[n]["type"], str(progs[n]["xlated_insns"]), str(progs[n]["jited_bytes"])]
        for k in keys:
            p = next((p for p in res[k]["bpf"]["progs"] if p["name"] == n), None)
            if not p or not p["ns_per_run"]:
                row.append("-")
            else:
                row.append("%.*f x %.0f ns = %s" % (1 if p["runs_per_s"] < 10 else 0, p["runs_per_s"],
                                                     p["ns_per_run"], fmt_pct(p["cpu_share"])))
        rows.append(row)
    rows.append(["all programs", "", "", ""] +
                [fmt_pct(sum(p["cpu_share"] for p in res[k]["bpf"]["progs"])) for k in keys])
    return rows


def text_table(rows):
    wid = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for k, r in enumerate(rows):
        out.append("  ".join(c.ljust(wid[i]) for i, c in enumerate(r)).rstrip())
        if k == 0:
            out.append("  ".join("-" * x for x in wid))
    return "\n".join(out)


def md_table(rows):
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    for r in rows[1:]:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def budget_lines(res):
    lines = []

    def ratio_line(key, label):
        r = res.get(key)
        if not r:
            return
        rs = r["peers"]["loopspy"]
        m = med([x["ratio"] for x in pick(rs)])
        clean = any(x.get("clean", True) for x in rs)
        note = "" if clean else \
            " (not conclusive: no round was free of other tracers, whose cost the untraced windows shared)"
        fl = r["peers"].get("epollonly")
        if fl:
            note += "; floor for any design on syscall tracepoints (epoll tracepoints only, trivial program): %.3f" % (
                med([x["ratio"] for x in pick(fl)]))
        lines.append((m >= BUDGET[key] if clean else ("?", m >= BUDGET[key]),
                      "%s throughput >= %.2f of untraced: %.3f%s" % (label, BUDGET[key], m, note)))

    ratio_line("aiohttp", "aiohttp")
    ratio_line("echo", "echo")
    ratio_line("storm", "syscall storm")
    if res.get("aiohttp"):
        c = cpu_share(pick(res["aiohttp"]["peers"]["loopspy"]))
        b = res["aiohttp"].get("bpf")
        bc = sum(p["cpu_share"] for p in b["progs"]) if b else None
        tot = c + (bc or 0)
        lines.append((tot <= BUDGET["cpu"],
                      "tracer CPU <= 5%% of one core at aiohttp saturation: %.2f%% (user space %.2f%% + BPF "
                      "programs %s, which run in the traced and other tasks)" % (
                          100 * tot, 100 * c, fmt_pct(bc) if b else "not measured")))
    for key in ("aiohttp", "echo"):
        if res.get(key):
            d = sum(x["dropped"] for x in res[key]["peers"]["loopspy"] + res[key]["peers"]["nostacks"])
            lines.append((d == 0, "zero dropped events in %s: %d dropped (all loopspy windows)" % (key, d)))
    lat, missed, err = [], 0, None
    for key, r in res.items():
        for s in r.get("stall") or []:
            if "error" in s:
                err = s["error"]
            elif s["delay"] == "250ms":
                lat += s["lat_ms"]
                missed += s["missed"]
    if err:
        lines.append((None, "stall visible <= 200 ms after it starts: not measured (%s)" % err))
    elif lat or missed:
        worst = max(lat) if lat else float("inf")
        lines.append((worst <= BUDGET["stall_ms"] and not missed,
                      "stall visible <= 200 ms after it starts (every stall, `loopspy top` default refresh): "
                      "median %.0f ms, max %.0f ms, %d of %d not seen" % (
                          med(lat) or 0, max(lat) if lat else 0, missed, len(lat) + missed)))
    hwm = [x.get("hwm_kib", 0) for r in res.values() for p in ("loopspy", "nostacks") for x in r["peers"][p]]
    if hwm:
        lines.append((max(hwm) / 1024 <= BUDGET["rss_mib"],
                      "tracer peak RSS <= 64 MiB: %.1f MiB (max over all loopspy runs)" % (max(hwm) / 1024.0)))
    return lines


def verdict(ok):
    if isinstance(ok, tuple):  # ("?", result): measured, but not conclusive
        return "PASS?" if ok[1] else "FAIL?"
    return "PASS " if ok else ("n/a  " if ok is None else "FAIL ")


def machine_facts():
    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        mem = "%.1f GiB" % (int(f.readline().split()[1]) / 1048576.0)
    aio = run([PYTHON, "-c", "import aiohttp; print(aiohttp.__version__)"])
    commit = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    return [
        ("kernel", platform.release()),
        ("CPU", "%s, %d CPUs" % (cpu, os.cpu_count())),
        ("memory", mem),
        ("load average at start", " ".join("%.2f" % x for x in os.getloadavg())),
        ("Python (targets)", run([PYTHON, "-c", "import sys; print(sys.version.split()[0])"]) + ", aiohttp " + aio),
        ("loopspy", run([LOOPSPY, "version"]) + ", commit " + commit + (" + local changes" if dirty else "")),
        ("peers", "; ".join(x for x in (
            run(["strace", "-V"]).splitlines()[0] if shutil.which("strace") else "",
            run(["bpftrace", "--version"]) if shutil.which("bpftrace") else "",
            run(["wrk", "-v"]).split(" Copyright")[0] if shutil.which("wrk") else "") if x)),
    ]


def limits_section(res):
    """What the throughput ratios are made of, with this run's numbers."""
    def ratio(key, peer):
        r = res.get(key)
        rs = r["peers"].get(peer) if r else None
        return "%.3f" % med([x["ratio"] for x in pick(rs)]) if rs else "not measured"
    return ["## What limits the throughput ratios", "",
            "- **Any syscall tracepoint taxes every syscall on the machine.** loopspy times loop "
            "iterations with the entry tracepoints of `epoll_wait`/`epoll_pwait`/`epoll_pwait2` (and "
            "`close`). While any syscall tracepoint is attached, the kernel sets the tracepoint work flag "
            "on every task, so every syscall of every process takes the traced slow path, whichever "
            "syscall the tracepoint is for (a C `getppid()` loop here: 118 -> 166 ns per call). The "
            "diagnostic row (`bench/epoll_only.bt`: the same entry tracepoint, a trivial program) is that "
            "floor: %s on the syscall storm, %s on echo, %s on aiohttp in this run. fentry on "
            "`do_epoll_wait` would avoid it, but fentry/fexit are not permitted on this kernel and kprobes "
            "are compiled out; a uprobe on libc's `epoll_wait` costs microseconds per call (a trap), more "
            "than the tracepoint at these iteration rates." % (
                ratio("storm", "epollonly"), ratio("echo", "epollonly"), ratio("aiohttp", "epollonly")),
            "- **What loopspy adds on top of the floor** (loopspy %s vs floor %s on echo): its epoll-entry "
            "program on every iteration (ns/run in the BPF table: ~100 k iterations/s on echo), "
            "`sched_switch`/`sched_wakeup` for the target's threads, and the CPU sampler, which "
            "interrupts a saturated loop thread 499 times per second of its CPU time." % (
                ratio("echo", "loopspy"), ratio("echo", "epollonly")),
            "- **Tried and kept** (each measured with A/B windows on aiohttp + `wrk -t1 -c16`): the CPU "
            "sampler was a 499 Hz per-CPU `cpu-clock` event in frequency mode, which cost the aiohttp server "
            "5-7% of its throughput (0.93 with it, 0.99 with loopspy's other probes alone); per-thread "
            "`task-clock` events on loop threads only, with a fixed period, cost nothing measurable (0.99). "
            "Iterations used to be timed between the epoll exit and entry tracepoints; timing them from entry "
            "to entry (a wait that sleeps is seen at `sched_switch`) dropped three programs and ~85 ns per "
            "iteration, and the floor with only the entry tracepoint is higher than with both (storm: "
            "0.73 -> 0.85 in the runs before and after). Target tgids are checked in a small mmap'ed array "
            "before any map lookup or clock read (`sched_switch` 291 -> 75 ns per run machine-wide).",
            "- **Not tried**: task-local storage instead of the threads LRU hash (one lookup per "
            "iteration and per switch of a target thread).", ""]


def render(res, facts, elapsed, started):
    """The text (stdout) and the markdown (docs/performance.md)."""
    txt, md = [], []
    md += ["# Performance", "",
           "Generated by `make bench` (`bench/run.py`) on %s in %.0f s; rerun it to refresh. Numbers are "
           "from one run on the machine below; every ratio was measured side by side in that run." %
           (started, elapsed), ""]
    md += ["## Budget", ""]
    bl = budget_lines(res)
    for ok, line in bl:
        txt.append("%s  %s" % (verdict(ok), line))
        md.append("- **%s** %s" % (verdict(ok).strip(), line))
    md += ["", "## Throughput, tracer cost, events", ""]
    md += ["Throughput is the target's rate traced divided by the mean of the untraced windows just "
           "before and after (median over rounds, range in brackets). Tracer CPU is the tracer "
           "process's utime+stime (`/proc/PID/stat`, 10 ms ticks) summed over its windows and divided by their "
           "total length, in user space "
           "and syscalls only: BPF programs run in the traced threads' context and are costed "
           "separately below. Peak RSS is VmHWM, read until the tracer exits (so it covers writing the report). "
           "Events are ring-buffer records loopspy processed (`events` in its JSON report); dropped "
           "is `dropped_events` summed over every loopspy window.", ""]
    allr = [x for r in res.values() for rs in r["peers"].values() for x in rs]
    dirty = sum(1 for x in allr if not x.get("clean", True))
    line = ("Other tracing BPF programs (not the measured tracer's) were loaded during %d of %d rounds%s." % (
        dirty, len(allr), ": those rounds are left out of the medians where clean ones exist" if dirty else ""))
    txt += ["", line]
    md += [line, ""]
    for key in WORKLOADS:
        r = res.get(key)
        if not r:
            continue
        w = WORKLOAD_CLASSES[key]
        nb = noise(r["bases"])
        head = "%s: untraced median %s %s over %d windows; adjacent untraced windows differ by a median %s" % (
            w.title, fmt_rate(med([b["rate"] for b in r["bases"]])), w.unit, len(r["bases"]), fmt_pct(nb))
        rows = workload_table(w, r)
        txt += ["", head, "load: " + w.load.replace("`", ""), text_table(rows)]
        md += ["### " + w.title, "", "Load: %s. Untraced: median %s %s over %d windows; adjacent untraced "
               "windows differ by a median %s (the noise floor)." % (
                   w.load, fmt_rate(med([b["rate"] for b in r["bases"]])), w.unit, len(r["bases"]), fmt_pct(nb)), "",
               md_table(rows), ""]
        if r["peers"].get("epollonly"):
            md += ["The diagnostic row attaches only the `syscalls:sys_enter_epoll_wait` "
                   "tracepoint loopspy uses for loop iterations, with a trivial bpftrace program (`bench/epoll_only.bt`). "
                   "Enabling any syscall tracepoint makes every syscall of every task on the machine take "
                   "the kernel's traced entry/exit path, whichever syscall the tracepoint is for, so its "
                   "ratio is the floor for any design built on syscall tracepoints.", ""]
    # stall visibility
    rows = [["workload (under its load)", "top refresh", "stalls", "start -> visible: median", "min", "max",
             "not seen"]]
    err = None
    for key in WORKLOADS:
        for s in (res.get(key) or {}).get("stall") or []:
            if "error" in s:
                err = s["error"]
                continue
            l = s["lat_ms"]
            rows.append([WORKLOAD_CLASSES[key].title, "-d " + s["delay"] + (" (default)" if s["delay"] == "250ms" else ""),
                         str(len(l) + s["missed"]), "%.0f ms" % med(l) if l else "n/a",
                         "%.0f ms" % min(l) if l else "n/a", "%.0f ms" % max(l) if l else "n/a", str(s["missed"])])
    txt += ["", "Stall visibility: %d ms CPU stalls on the loop thread, `loopspy top` in a pty" % STALL_MS]
    md += ["## Time from a stall's start to its appearance", ""]
    if err:
        txt.append("not measured: " + err)
        md += ["Not measured: %s." % err, ""]
    else:
        txt.append(text_table(rows))
        md += ["While each workload's load runs, the target blocks its loop with %d ms of CPU work at "
               "random moments, printing `time.monotonic()` when it starts; `loopspy top -p PID` runs "
               "in a pseudo-terminal (160x45) and the stall counts as visible when the bytes of its "
               "`>> STALLED` row reach the terminal (read by the harness as they arrive). An iteration "
               "is a stall only once it is %d ms old (the default threshold), so that is the floor; "
               "`top` reads loop state from the kernel every 100 ms and redraws every `-d` (default "
               "250 ms)." % (STALL_MS, 100), "", md_table(rows), ""]
    # BPF
    md += ["## BPF hot path", ""]
    txt += ["", "BPF programs (loopspy record, stats on during one extra window per workload)"]
    rows = bpf_table(res)
    if rows:
        how = next(res[k]["bpf"]["how"] for k in WORKLOADS if (res.get(k) or {}).get("bpf"))
        md += ["Measured in one extra `loopspy record` window per workload (not used for the ratios) "
               "with run-time stats enabled through %s. runs/s and ns/run are `run_cnt` and "
               "`run_time_ns` deltas from `bpftool prog show` over the window, for the programs the "
               "loopspy process holds (found through `/proc/PID/fdinfo`); CPU = run time / window, in "
               "shares of one core. Stats add two clock reads to every run, so ns/run is a slight "
               "overestimate. `sched_switch`, `sched_wakeup`, the process hooks and the CPU sampler fire "
               "for every task on the machine and filter by pid in BPF; the epoll tracepoints fire for "
               "every process's epoll waits (the load generators' too). xlated insns = `bytes_xlated`/8 "
               "(`-`: it did not run in the window)." % how, "", md_table(rows), ""]
        txt += ["", text_table(rows)]
    md += limits_section(res)
    md += ["## Method", "",
           "- Each workload runs one long-lived target (`bench/targets.py`, Debian `/usr/bin/python3`), "
           "warmed up with one 1 s window (the first window after a start is consistently slow here).",
           "- %d rounds; each round measures `loopspy record`, `loopspy record --no-stacks` and one of "
           "strace, `PYTHONASYNCIODEBUG=1`, bpftrace in turn (and, for aiohttp, echo and the storm, the "
           "epoll-only diagnostic), in an order rotating between rounds. Every traced %g s window sits between two "
           "untraced %g s windows of the same target (`B L B N B S B ...`) and its ratio is taken against "
           "their mean; medians over rounds are shown with the range. Tracers are attached before the "
           "window (loopspy: until it prints `attached`; strace: `attached`; bpftrace: `Attaching`), "
           "then %.1f s to settle; they are stopped with SIGINT after it." % (ROUNDS, SECONDS, SECONDS, SETTLE),
           "- Other tracers on the machine distort the ratios: any loaded syscall tracepoint (another "
           "loopspy, bpftrace, perf) puts every syscall of every task on the kernel's traced path, so the "
           "untraced windows pay part of the price too. The harness lists the tracing BPF programs "
           "(`bpftool prog show`) around every window and, before each round, waits for foreign ones to go "
           "(at most `BENCH_QUIET_WAIT` seconds over the run); a round with programs that are not the "
           "measured tracer's is marked not clean, and medians use only clean rounds when there are any "
           "(the table says how many).",
           "- `PYTHONASYNCIODEBUG=1` needs a restart: the same target is started with it (and warmed up) "
           "while the normal target is stopped with SIGSTOP, so the two never share the CPUs.",
           "- Peers: `strace -f -T -p PID -o /dev/null`; `bpftrace bench/syscall_latency.bt PID` "
           "(raw_syscalls enter/exit filtered by pid, a latency histogram per tid and syscall); "
           "`loopspy record -p PID -o report.json` with and without `--no-stacks`.",
           "- The load generator runs on the same 2 CPUs as the target and the tracer (as it would on a "
           "small production host): tracer CPU competes with both.",
           "- Knobs (environment): `BENCH_ROUNDS`, `BENCH_SECONDS`, `BENCH_WORKLOADS`, `BENCH_STALLS`, "
           "`BENCH_QUIET_WAIT`, `BENCH_LOOPSPY` (another binary), `BENCH_OUT`.",
           ""]
    md += ["## Machine", ""] + ["- %s: %s" % kv for kv in facts] + [""]
    txt += ["", "machine: " + "; ".join("%s: %s" % kv for kv in facts)]
    return "\n".join(txt), "\n".join(md)


def main():
    if os.geteuid() != 0:
        sys.exit("bench: needs root (BPF, strace -p)")
    if not os.access(LOOPSPY, os.X_OK):
        sys.exit("bench: %s is missing: run make" % LOOPSPY)
    for w in WORKLOADS:
        if w not in WORKLOAD_CLASSES:
            sys.exit("bench: unknown workload %s (aiohttp, echo, storm, threads)" % w)
    os.makedirs(LOGS, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", ECHO_LOAD, os.path.join(BENCH, "echo_load.c")], check=True)
    peers = [p for p in PEERS if p not in ("strace", "bpftrace", "epollonly") or
             shutil.which(p if p != "epollonly" else "bpftrace")]
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    facts = machine_facts()
    t0 = time.monotonic()
    res = {}
    try:
        for key in WORKLOADS:
            r = run_workload(WORKLOAD_CLASSES[key](), peers)
            for p in PEERS:
                if p != "epollonly" or key in FLOOR_WORKLOADS:
                    r["peers"].setdefault(p, [])
            res[key] = r
    finally:
        cleanup()
    elapsed = time.monotonic() - t0
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump({"results": res, "facts": facts, "elapsed_s": elapsed, "started": started}, f, indent=1)
    txt, md = render(res, facts, elapsed, started)
    print(txt)
    print("\nbench: %.0f s" % elapsed)
    if OUT != "-":
        with open(OUT, "w") as f:
            f.write(md)
        print("bench: wrote %s" % os.path.relpath(OUT, ROOT))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt as e:
        sys.exit("bench: interrupted (%s); everything it started was stopped" % e)
