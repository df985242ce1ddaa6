"""Pitfall: subprocess.run() (synchronous) inside a coroutine.

The loop waits for the child to finish (~0.2 s) instead of using
asyncio.create_subprocess_exec().
"""
import asyncio
import os
import signal
import subprocess


def _quit(signum, frame):
    os._exit(0)


def run_hook():
    subprocess.run(["sleep", "0.2"], check=True)  # EXPECT: blocking_syscall wait4|waitid|read|poll


async def on_deploy(n):
    run_hook()
    return n


async def main():
    print("READY %d" % os.getpid(), flush=True)
    n = 0
    while True:
        n += 1
        await on_deploy(n)
        await asyncio.sleep(0.3)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    asyncio.run(main())
