"""An epoll event loop any CPython runs, 2.7 included (no asyncio): waits
in epoll, blocks 5 ms in time.sleep() per iteration, for LEGACY_SECONDS
(default 2), then exits. loopspy finds the loop on any version; on the
versions it cannot walk (2.7, 3.6, 3.7) the report says why stacks are
missing."""
import os
import select
import sys
import time


def slow_io():
    time.sleep(0.005)


def main():
    ep = select.epoll()
    sys.stdout.write("READY %d\n" % os.getpid())
    sys.stdout.flush()
    deadline = time.time() + float(os.environ.get("LEGACY_SECONDS", "2"))
    while time.time() < deadline:
        ep.poll(0.002)
        slow_io()


main()
