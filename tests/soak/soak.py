"""`make soak`: loopspy attached for a long time to a busy target with
thread churn (soak_target.py). Every interval it prints loopspy's RSS, the
entries of each of its BPF maps and the drop counter; at the end it checks
that RSS and map sizes stayed flat after warm-up (bounded LRU maps, no
leak) and that no event was dropped at steady state, and prints the report's
figures. Exit 0 when flat, 1 otherwise.

Warm-up is 40% of the run (at most 240 s): long enough for the LRU maps to
fill and for the model's bounded structures to reach their size — the
event timeline (a ring of MODEL_TIMELINE_MAX events, ~800 KiB, which the
target fills at ~150 events/s) and the symbol cache. After it, RSS may not
grow by more than 1 MiB.

usage: soak.py --loopspy PATH [--seconds 600] [--interval S] [--python P]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAPS = ("threads", "pending", "fwaits", "locks", "lockpairs", "loops", "gcs", "targets")


def bpf_fd_ids(pid, kind):
    ids = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            for line in open("/proc/%d/fdinfo/%s" % (pid, fd)):
                if line.startswith(kind + "_id:"):
                    ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def bpftool(*args):
    res = subprocess.run(["bpftool", "-j"] + [str(a) for a in args], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError("bpftool %s: %s" % (" ".join(map(str, args)), res.stderr.strip()))
    return json.loads(res.stdout or "null")


def maps_of(pid):
    out = {}
    for mid in bpf_fd_ids(pid, "map"):
        m = bpftool("map", "show", "id", mid)
        out[m["name"]] = m
    return out


def dropped(counters_id):
    """Sum over CPUs of counters[LS_CNT_DROPPED] (key 0)."""
    obj = bpftool("map", "lookup", "id", counters_id, "key", 0, 0, 0, 0)
    total = 0
    if "formatted" in obj:
        for v in obj["formatted"]["values"]:
            total += int(v["value"])
        return total
    for v in obj["values"]:
        total += int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little")
    return total


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loopspy", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=0)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    interval = a.interval or max(5.0, a.seconds / 20)
    warmup = min(240.0, a.seconds * 0.4)
    out = a.out or os.path.join(os.path.dirname(a.loopspy), "soak.json")

    target = subprocess.Popen([a.python, os.path.join(HERE, "soak_target.py")], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    pid = int(target.stdout.readline().split()[1])
    lp = subprocess.Popen([a.loopspy, "record", "-p", str(pid), "-d", "%g" % a.seconds, "-o", out, "-q"],
                          stderr=subprocess.PIPE, text=True)
    samples = []
    failures = []
    try:
        t0 = time.monotonic()
        while not bpf_fd_ids(lp.pid, "link"):
            if lp.poll() is not None:
                sys.exit("soak: loopspy exited: %s" % lp.stderr.read())
            time.sleep(0.05)
        maps = maps_of(lp.pid)
        counters = maps["counters"]["id"]
        print("soak: %g s attached to pid %d (soak_target.py), a sample every %g s, warm-up %g s"
              % (a.seconds, pid, interval, warmup))
        hdr = "%7s %9s" % ("t(s)", "rss(KiB)") + "".join(" %9s" % m for m in MAPS) + " %8s" % "dropped"
        print(hdr)
        print("%7s %9s" % ("", "max") + "".join(" %9d" % maps[m]["max_entries"] for m in MAPS) + " %8s" % "")
        next_t = 0.0
        while lp.poll() is None:
            now = time.monotonic() - t0
            if now < next_t:
                time.sleep(min(0.5, next_t - now))
                continue
            next_t += interval
            try:
                s = {"t": now, "rss": rss_kb(lp.pid), "dropped": dropped(counters)}
                for m in MAPS:
                    s[m] = len(bpftool("map", "dump", "id", maps[m]["id"]) or [])
            except (RuntimeError, OSError, ValueError) as e:
                if lp.poll() is not None:
                    break
                raise
            samples.append(s)
            print("%7.0f %9d" % (s["t"], s["rss"]) + "".join(" %9d" % s[m] for m in MAPS)
                  + " %8d" % s["dropped"], flush=True)
        lp.wait()
    finally:
        if lp.poll() is None:
            lp.kill()
        os.killpg(target.pid, signal.SIGKILL)
        target.wait()
    err = lp.stderr.read()
    if lp.returncode != 0:
        failures.append("loopspy exited with %d: %s" % (lp.returncode, err.strip()[-500:]))

    steady = [s for s in samples if s["t"] >= warmup]
    if len(steady) < 4:
        failures.append("too few samples after warm-up (%d)" % len(steady))
    else:
        base, last = steady[0], steady[-1]
        peak = max(s["rss"] for s in steady)
        growth = peak - base["rss"]
        print("loopspy RSS: %d KiB after warm-up, peak %d KiB, last %d KiB (%+d KiB)"
              % (base["rss"], peak, last["rss"], growth))
        if growth > 1024:
            failures.append("RSS grew by %d KiB after warm-up (%d -> %d KiB)" % (growth, base["rss"], peak))
        half = len(steady) // 2
        for m in MAPS:
            first = max(s[m] for s in steady[:half])
            second = max(s[m] for s in steady[half:])
            cap = maps[m]["max_entries"]
            print("map %-10s max %6d entries, first half peak %6d, second half peak %6d" % (m, cap, first, second))
            if second > cap:
                failures.append("map %s holds %d entries, more than its %d" % (m, second, cap))
            if second > first + max(64, cap // 20):
                failures.append("map %s keeps growing: %d -> %d entries" % (m, first, second))
        if last["dropped"] != base["dropped"]:
            failures.append("%d events dropped at steady state" % (last["dropped"] - base["dropped"]))
        print("dropped events: %d during warm-up, %d at steady state" % (base["dropped"],
                                                                         last["dropped"] - base["dropped"]))
    try:
        r = json.load(open(out))
        loops = r.get("loops") or [{}]
        print("report %s: %.0f s, %d events, %d dropped, %d findings; loop iterations %s, stalls %s"
              % (out, r["duration_ms"] / 1000, r.get("events", 0), r["dropped_events"], len(r["findings"]),
                 loops[0].get("iterations"), loops[0].get("stalls")))
    except (OSError, ValueError, KeyError) as e:
        failures.append("no valid report at %s: %s" % (out, e))
    if failures:
        for f in failures:
            print("soak: FAIL: " + f)
        sys.exit(1)
    print("soak: ok: RSS and map sizes flat, no drops at steady state")


if __name__ == "__main__":
    main()
