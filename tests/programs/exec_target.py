"""What exec_into.py becomes: another event loop, blocking in after_exec()."""
import asyncio
import os
import time


def after_exec():
    time.sleep(0.02)


async def main():
    print("EXECD %d" % os.getpid(), flush=True)
    while True:
        after_exec()
        await asyncio.sleep(0.01)


asyncio.run(main())
