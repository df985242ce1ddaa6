"""Benchmark targets for bench/run.py (one file, the workload is argv[1]).

    /usr/bin/python3 bench/targets.py aiohttp|echo|storm|threads

Every target listens on 127.0.0.1 with an ephemeral port where it has one,
prints "ready PORT" (0 when it has none) on stdout, and takes commands on
stdin, one per line, answering on stdout:

    run SECONDS  storm/threads: run the workload for that long, answer
                 "result RATE" (getppid calls/s, loop iterations/s)
    stop         end a run early (it still answers)
    stall MS     block the event loop with CPU work for MS milliseconds;
                 "stall T" is printed first, T = time.monotonic() at its start
                 (CLOCK_MONOTONIC, comparable with the harness's clock)

A ticker wakes the loop every 50 ms so an idle target is still a loop.
EOF on stdin exits.
"""
import asyncio
import os
import socket
import sys
import threading
import time

STOP = [False]  # set by the "stop" command


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def bench_stall(ms):
    """The stall the harness looks for: pure CPU on the loop thread."""
    end = time.monotonic() + ms / 1000.0
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


async def storm(seconds):
    """Syscall storm on the loop thread: os.getppid() in a tight loop,
    yielding to the loop every 1000 calls."""
    getppid = os.getppid
    n = 0
    start = time.monotonic()
    end = start + seconds
    while True:
        for _ in range(1000):
            getppid()
        n += 1000
        if time.monotonic() >= end or STOP[0]:
            break
        await asyncio.sleep(0)
    return n / (time.monotonic() - start)


def callback_work():
    """What one loop iteration of the busy loop does (~20 us of CPU here)."""
    return sum(range(5000))


async def spin(seconds):
    """A busy loop: as many iterations (a short callback, then
    asyncio.sleep(0)) as it can."""
    n = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end and not STOP[0]:
        callback_work()
        await asyncio.sleep(0)
        n += 1
    return n / (time.monotonic() - start)


def idle_thread(i, stop):
    # mostly idle: wakes up every 0.5-1 s, does a little work, sleeps again
    delay = 0.5 + (i % 50) / 100.0
    while not stop.wait(delay):
        sum(range(50))


async def ticker():
    while True:
        await asyncio.sleep(0.05)


def control(loop, kind, done):
    """stdin commands, handled on the loop thread."""
    tasks = set()
    fd = sys.stdin.fileno()
    buf = [b""]

    def command(words):
        if words[0] == "stall":
            ms = float(words[1])
            say("stall %.6f" % time.monotonic())
            bench_stall(ms)
        elif words[0] == "stop":
            STOP[0] = True
        elif words[0] == "run":
            STOP[0] = False
            fn = storm if kind == "storm" else spin
            t = loop.create_task(fn(float(words[1])))
            tasks.add(t)
            t.add_done_callback(lambda t: (tasks.discard(t), say("result %.1f" % t.result())))

    def on_line():
        data = os.read(fd, 4096)
        if not data:
            loop.remove_reader(fd)
            done.set_result(None)
            return
        buf[0] += data
        *lines, buf[0] = buf[0].split(b"\n")
        for line in lines:
            words = line.decode().split()
            if words:
                command(words)

    loop.add_reader(fd, on_line)


def listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(512)
    s.setblocking(False)
    return s


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport

    def data_received(self, data):
        self.t.write(data)


async def main(kind):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    port = 0
    keep = []
    if kind == "aiohttp":
        from aiohttp import web

        async def hello(request):
            return web.Response(text="Hello, world")

        app = web.Application()
        app.router.add_get("/", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sock = listener()
        port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        keep.append(runner)
    elif kind == "echo":
        sock = listener()
        port = sock.getsockname()[1]
        keep.append(await loop.create_server(Echo, sock=sock))
    elif kind == "threads":
        stop = threading.Event()
        for i in range(200):
            threading.Thread(target=idle_thread, args=(i, stop), daemon=True, name="idle-%d" % i).start()
    elif kind != "storm":
        raise SystemExit("unknown target " + kind)
    keep.append(loop.create_task(ticker()))
    control(loop, kind, done)
    say("ready %d" % port)
    await done


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
