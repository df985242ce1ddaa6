"""Pitfall: time.sleep() in a coroutine, on uvloop.

Same mistake as sleep_in_coroutine.py but the event loop is uvloop
(needs the uvloop package, e.g. Debian's python3-uvloop).
"""
import asyncio
import os
import signal
import time

import uvloop


def _quit(signum, frame):
    os._exit(0)


async def poll_inventory(state):
    time.sleep(0.2)  # EXPECT: blocking_syscall clock_nanosleep|pselect6
    state["polls"] = state.get("polls", 0) + 1


async def heartbeat():
    while True:
        await asyncio.sleep(0.05)


async def main():
    state = {}
    beat = asyncio.ensure_future(heartbeat())
    print("READY %d" % os.getpid(), flush=True)
    try:
        while True:
            await poll_inventory(state)
            await asyncio.sleep(0.3)
    finally:
        beat.cancel()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    if hasattr(uvloop, "run"):  # uvloop >= 0.18
        uvloop.run(main())
    else:
        uvloop.install()
        asyncio.run(main())
