"""Pitfall: time.sleep() inside a coroutine blocks the whole event loop.

A "rate limiter" written with the synchronous sleep: every call to
refresh_cache() freezes the loop for 0.2 s.
"""
import asyncio
import os
import signal
import time


def _quit(signum, frame):
    os._exit(0)


async def refresh_cache(cache):
    # Be nice to the upstream service... with the wrong kind of sleep.
    time.sleep(0.2)  # EXPECT: blocking_syscall clock_nanosleep|pselect6
    cache["generation"] = cache.get("generation", 0) + 1
    return cache


async def heartbeat():
    while True:
        await asyncio.sleep(0.05)


async def main():
    cache = {}
    beat = asyncio.ensure_future(heartbeat())
    print("READY %d" % os.getpid(), flush=True)
    try:
        while True:
            await refresh_cache(cache)
            await asyncio.sleep(0.3)
    finally:
        beat.cancel()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    asyncio.run(main())
