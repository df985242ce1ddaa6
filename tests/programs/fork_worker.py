"""A parent event loop that forks a worker process with its own event loop
(like gunicorn/uvicorn workers). Both block: parent_block() in the parent,
child_block() in the child. loopspy ignores the child unless
--follow-children."""
import asyncio
import os
import signal
import time


def parent_block():
    time.sleep(0.02)


def child_block():
    time.sleep(0.03)


async def child_main():
    while True:
        child_block()
        await asyncio.sleep(0.01)


async def parent_main(child):
    print("CHILD %d" % child, flush=True)
    try:
        while True:
            parent_block()
            await asyncio.sleep(0.01)
    finally:
        os.kill(child, signal.SIGKILL)


def main():
    print("READY %d" % os.getpid(), flush=True)
    time.sleep(float(os.environ.get("FORK_DELAY", "1")))
    child = os.fork()
    if child == 0:
        asyncio.run(child_main())
        os._exit(0)
    signal.signal(signal.SIGTERM, lambda *a: (os.kill(child, signal.SIGKILL), os._exit(0)))
    asyncio.run(parent_main(child))


main()
