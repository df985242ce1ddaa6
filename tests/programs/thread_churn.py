"""Threads created and destroyed at a high rate (CHURN_THREADS at a time,
each living a moment) while the event loop runs and blocks in
blocking_call() once in a while. Prints "READY <pid>", and on SIGTERM the
number of threads it started: "THREADS <n> SECONDS <s>"."""
import asyncio
import os
import signal
import sys
import threading
import time

started = 0
t0 = time.monotonic()


def _quit(signum, frame):
    sys.stdout.write("THREADS %d SECONDS %.2f\n" % (started, time.monotonic() - t0))
    sys.stdout.flush()
    os._exit(0)


def churn():
    global started
    batch = int(os.environ.get("CHURN_THREADS", "8"))
    while True:
        ts = [threading.Thread(target=lambda: None) for _ in range(batch)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        started += batch


def blocking_call():
    time.sleep(0.01)


async def main():
    print("READY %d" % os.getpid(), flush=True)
    while True:
        blocking_call()
        await asyncio.sleep(0.05)


signal.signal(signal.SIGTERM, _quit)
for _ in range(int(os.environ.get("CHURNERS", "2"))):
    threading.Thread(target=churn, daemon=True).start()
asyncio.run(main())
