"""For `loopspy run`: a short-lived program with one blocking pitfall.

Runs its event loop for ~1.5 s, calling time.sleep(0.15) from a coroutine
every 0.3 s, then exits with status 3.
"""
import asyncio
import os
import signal
import sys
import time


def _quit(signum, frame):
    os._exit(0)


def read_sensor():
    time.sleep(0.15)  # EXPECT: blocking_syscall clock_nanosleep|pselect6
    return 21.5


async def sample(readings):
    readings.append(read_sensor())


async def main():
    loop = asyncio.get_running_loop()
    print("READY %d" % os.getpid(), flush=True)
    readings = []
    deadline = loop.time() + 1.5
    while loop.time() < deadline:
        await sample(readings)
        await asyncio.sleep(0.3)
    return len(readings)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    asyncio.run(main())
    sys.exit(3)
