"""Pitfall: a coroutine takes a threading.Lock held by a worker thread.

A cache refreshed by a background "cache-writer" thread that holds the lock
while it rebuilds; the request path reads the cache under the same lock from
the event loop, so the loop waits for the writer.
"""
import asyncio
import os
import signal
import threading
import time

cache_lock = threading.Lock()
cache = {}


def writer():
    generation = 0
    while True:
        with cache_lock:
            generation += 1
            time.sleep(0.25)  # HOLDER: rebuilding the cache under the lock
            cache["generation"] = generation
        time.sleep(0.05)


def read_cache():
    with cache_lock:  # EXPECT-LOCK: threading.Lock
        return cache.get("generation")


async def handle_request():
    return read_cache()


async def main():
    worker = threading.Thread(target=writer, name="cache-writer", daemon=True)
    worker.start()
    print("READY %d" % os.getpid(), flush=True)
    print("TID writer %d" % worker.native_id, flush=True)
    while True:
        await handle_request()
        await asyncio.sleep(0.2)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    signal.signal(signal.SIGINT, lambda *a: os._exit(0))
    asyncio.run(main())
