"""Pitfall: CPU-bound pure-Python work done directly in a coroutine.

Every upload is checksummed byte by byte in Python on the event-loop thread;
each checksum takes ~0.3 s and nothing else can run meanwhile.
"""
import asyncio
import os
import signal
import time


def _quit(signum, frame):
    os._exit(0)


def checksum(data):
    total = 0
    for byte in data:
        total = (total * 31 + byte) & 0xFFFFFFFF  # EXPECT: stall
    return total


def payload_size(target_seconds=0.3):
    """Size the payload so that one checksum takes ~target_seconds here."""
    probe = os.urandom(200000)
    start = time.perf_counter()
    checksum(probe)
    elapsed = max(time.perf_counter() - start, 1e-4)
    return max(len(probe), int(len(probe) * target_seconds / elapsed))


async def handle_upload(data):
    digest = checksum(data)
    return "%08x" % digest


async def main():
    upload = os.urandom(payload_size())
    print("READY %d" % os.getpid(), flush=True)
    while True:
        await handle_upload(upload)
        await asyncio.sleep(0.4)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    asyncio.run(main())
