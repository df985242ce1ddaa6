"""Healthy: a ThreadPoolExecutor whose workers mostly sit idle on their work
queue, a loop that hands them short blocking jobs with run_in_executor, and
asyncio timers. Must produce no findings."""
import asyncio
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor


def blocking_job(i):
    time.sleep(0.02)  # runs on a worker thread: fine
    return i


async def main():
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="pool")
    # start all workers once, then keep most of them idle
    await asyncio.gather(*(loop.run_in_executor(pool, blocking_job, i) for i in range(8)))
    print("READY %d" % os.getpid(), flush=True)
    i = 0
    while True:
        i += 1
        await loop.run_in_executor(pool, blocking_job, i)
        await asyncio.sleep(0.05)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    signal.signal(signal.SIGINT, lambda *a: os._exit(0))
    asyncio.run(main())
