"""Two threads, each running its own asyncio event loop.

Thread "good" only awaits (asyncio.sleep and socket I/O); thread "bad" calls
time.sleep() from a coroutine.  After READY the program prints one line per
loop thread: "TID <name> <native tid>".
"""
import asyncio
import os
import signal
import socket
import threading
import time

tids = {}


def _quit(signum, frame):
    os._exit(0)


async def good_worker(ready):
    loop = asyncio.get_running_loop()
    left, right = socket.socketpair()
    left.setblocking(False)
    right.setblocking(False)
    tids["good"] = threading.get_native_id()
    ready.set()
    n = 0
    while True:
        n += 1
        await loop.sock_sendall(left, b"ping %d\n" % n)
        await loop.sock_recv(right, 1024)
        await asyncio.sleep(0.05)


def load_settings():
    time.sleep(0.2)  # EXPECT: blocking_syscall clock_nanosleep|pselect6
    return {"refresh": 0.3}


async def bad_worker(ready):
    tids["bad"] = threading.get_native_id()
    ready.set()
    while True:
        settings = load_settings()
        await asyncio.sleep(settings["refresh"])


def loop_thread(worker, ready):
    asyncio.run(worker(ready))


def main():
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    threads = []
    for name, worker in (("good", good_worker), ("bad", bad_worker)):
        ready = threading.Event()
        t = threading.Thread(target=loop_thread, args=(worker, ready), name=name, daemon=True)
        t.start()
        ready.wait()
        threads.append(t)
    print("READY %d" % os.getpid(), flush=True)
    for name in ("good", "bad"):
        print("TID %s %d" % (name, tids[name]), flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
