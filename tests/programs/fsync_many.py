"""Pitfall: many small synchronous write+fsync calls in one callback.

A "durable" journal that fsyncs after every entry of a batch, from a
coroutine.  Each fsync is short, but together they stall the loop.  The
journal lives in a temporary directory under /var/tmp (a real disk, not
tmpfs).  A batch has at least 200 entries; on disks with a fast (cached)
fsync it is made bigger so that one batch takes ~0.3 s.
"""
import asyncio
import os
import shutil
import signal
import tempfile
import time

WORKDIR = tempfile.mkdtemp(prefix="loopspy-fsync-", dir="/var/tmp")


def _quit(signum, frame):
    shutil.rmtree(WORKDIR, ignore_errors=True)
    os._exit(0)


def save_journal(path, entries, min_seconds=0.0):
    # keeps syncing (re-logging the batch) for at least min_seconds, so the
    # stall does not depend on how fast this disk's fsync is today
    deadline = time.perf_counter() + min_seconds
    with open(path, "wb") as journal:
        while True:
            for entry in entries:
                journal.write(entry)
                journal.flush()
                os.fsync(journal.fileno())  # EXPECT: stall fsync|fdatasync
            if time.perf_counter() >= deadline:
                break


def batch_size(target_seconds=0.3):
    probe = [b"probe\n"] * 50
    start = time.perf_counter()
    save_journal(os.path.join(WORKDIR, "probe.log"), probe)
    per_entry = max((time.perf_counter() - start) / len(probe), 1e-5)
    return min(5000, max(200, int(target_seconds / per_entry)))


async def handle_batch(batch_no, size):
    entries = [b"batch=%d entry=%d status=ok\n" % (batch_no, i) for i in range(size)]
    save_journal(os.path.join(WORKDIR, "journal.log"), entries, min_seconds=0.3)


async def main():
    size = batch_size()
    print("READY %d" % os.getpid(), flush=True)
    batch_no = 0
    while True:
        batch_no += 1
        await handle_batch(batch_no, size)
        await asyncio.sleep(0.4)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    try:
        asyncio.run(main())
    finally:
        shutil.rmtree(WORKDIR, ignore_errors=True)
