"""The busy target of `make soak`: an asyncio loop that is never idle for
long (small callbacks), makes a blocking call now and then, stalls every few
seconds, contends for a lock with worker threads, and churns threads
(CHURN_THREADS created and joined per batch, continuously). Prints
"READY <pid>"."""
import asyncio
import os
import threading
import time

lock = threading.Lock()


def churn():
    batch = int(os.environ.get("CHURN_THREADS", "4"))
    while True:
        ts = [threading.Thread(target=lambda: None) for _ in range(batch)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        time.sleep(0.001)


def worker():
    while True:
        with lock:
            time.sleep(0.003)
        time.sleep(0.01)


def blocking_call():
    time.sleep(0.002)


def cpu_burst():
    end = time.monotonic() + 0.12
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def with_lock():
    with lock:
        return 1


async def main():
    print("READY %d" % os.getpid(), flush=True)
    i = 0
    while True:
        i += 1
        sum(range(200))
        if i % 5 == 0:
            blocking_call()
        if i % 7 == 0:
            with_lock()
        if i % 2500 == 0:
            cpu_burst()
        await asyncio.sleep(0.002)


for _ in range(int(os.environ.get("CHURNERS", "1"))):
    threading.Thread(target=churn, daemon=True).start()
for _ in range(2):
    threading.Thread(target=worker, daemon=True).start()
asyncio.run(main())
