"""Like a test suite run under `loopspy run -- pytest`: one event loop per
test (asyncio.run), synchronous work between them (not a stall: no loop is
running), and one test whose coroutine blocks its loop. Exits 0."""
import asyncio
import os
import time


async def healthy_test():
    for _ in range(10):
        await asyncio.sleep(0.01)


def fixture_setup():
    time.sleep(0.25)             # between loops: not a finding
    return sum(range(2000000))   # CPU between loops: not a stall either


async def blocking_test():
    await asyncio.sleep(0.01)
    time.sleep(0.15)  # EXPECT: blocking_syscall clock_nanosleep|pselect6
    await asyncio.sleep(0.01)


def main():
    print("READY %d" % os.getpid(), flush=True)
    for _ in range(3):
        fixture_setup()
        asyncio.run(healthy_test())
    fixture_setup()
    asyncio.run(blocking_test())
    fixture_setup()


if __name__ == "__main__":
    main()
