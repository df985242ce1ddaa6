"""Pitfall: CPU-bound worker threads starve the event loop of the GIL.

Two "cruncher" threads run pure-Python number crunching; the loop serves a
timer every millisecond and must win the GIL back each time.
"""
import asyncio
import os
import signal
import threading


def crunch():
    total = 0
    while True:
        for i in range(200000):
            total = (total * 31 + i) & 0xFFFFFFFF  # HOLDER: pure Python holds the GIL


async def heartbeat():
    while True:
        await asyncio.sleep(0.001)


async def main():
    workers = [threading.Thread(target=crunch, name="cruncher", daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    print("READY %d" % os.getpid(), flush=True)
    for w in workers:
        print("TID cruncher %d" % w.native_id, flush=True)
    await heartbeat()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    signal.signal(signal.SIGINT, lambda *a: os._exit(0))
    asyncio.run(main())
