"""An event loop that blocks in before_exec(), then exec's another program
(argv[1:]; by default this interpreter running exec_target.py) with the
same pid. loopspy must find the new program's runtime, and never name its
frames after the old program's code objects (or the other way round)."""
import asyncio
import os
import sys
import time

ITERATIONS = int(os.environ.get("EXEC_AFTER_ITERATIONS", "40"))


def before_exec():
    time.sleep(0.02)


async def main():
    print("READY %d" % os.getpid(), flush=True)
    await asyncio.sleep(float(os.environ.get("EXEC_DELAY", "1")))
    for _ in range(ITERATIONS):
        before_exec()
        await asyncio.sleep(0.01)
    argv = sys.argv[1:] or [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "exec_target.py")]
    sys.stdout.flush()
    os.execv(argv[0], argv)


asyncio.run(main())
