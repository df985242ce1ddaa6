"""An event storm: STORMS loop iterations (default 5), each making
thousands of tiny sleeps (every one an event for loopspy) and lasting
~150 ms (a stall). Prints "READY <pid>", "STORM" when the storm starts,
"STALLS <n>" when it is over, and keeps its loop idle until killed."""
import asyncio
import os
import time


def storm():
    end = time.monotonic() + 0.15
    while time.monotonic() < end:
        time.sleep(0.00002)


async def main():
    print("READY %d" % os.getpid(), flush=True)
    await asyncio.sleep(float(os.environ.get("STORM_DELAY", "0.5")))
    n = int(os.environ.get("STORMS", "5"))
    print("STORM", flush=True)
    for _ in range(n):
        storm()
        await asyncio.sleep(0.05)
    print("STALLS %d" % n, flush=True)
    while True:
        await asyncio.sleep(0.05)


asyncio.run(main())
