"""Pitfall: a long CPU-bound callback that freezes the loop for seconds.

Every few seconds a "report" is built in pure Python on the event-loop
thread; each one keeps the loop busy for ~3 s. Used by the `loopspy top`
tests: the dashboard must show the stall (and where it is) while it is
still in progress.
"""
import asyncio
import os
import signal
import time

STALL_SECONDS = 3.0


def _quit(signum, frame):
    os._exit(0)


def crunch_numbers(seconds):
    deadline = time.monotonic() + seconds
    total = 0
    while time.monotonic() < deadline:
        total = (total * 31 + 7) & 0xFFFFFFFF  # EXPECT: stall
    return total


async def heartbeat():
    while True:
        await asyncio.sleep(0.05)


async def main():
    beat = asyncio.ensure_future(heartbeat())
    print("READY %d" % os.getpid(), flush=True)
    try:
        while True:
            await asyncio.sleep(1.5)
            crunch_numbers(STALL_SECONDS)
    finally:
        beat.cancel()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    asyncio.run(main())
