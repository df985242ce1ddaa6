"""A healthy asyncio program: must produce no findings.

- a local TCP echo server and a few clients talking to it with asyncio streams
- blocking work (time.sleep, file reads) pushed to the default executor with
  loop.run_in_executor(), so it runs on a worker thread, not on the loop
- plain asyncio.sleep() timers
"""
import asyncio
import os
import signal
import time


def _quit(signum, frame):
    os._exit(0)


async def handle_echo(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()


async def client(port, name):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while True:
        n += 1
        writer.write(("%s message %d\n" % (name, n)).encode())
        await writer.drain()
        await reader.readline()
        await asyncio.sleep(0.05)


def blocking_io():
    time.sleep(0.1)
    with open(__file__, "rb") as f:
        return len(f.read())


async def background_jobs():
    loop = asyncio.get_running_loop()
    while True:
        await loop.run_in_executor(None, blocking_io)
        await asyncio.sleep(0.2)


async def ticker():
    ticks = 0
    while True:
        ticks += 1
        await asyncio.sleep(0.1)


async def main():
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    tasks = [asyncio.ensure_future(client(port, "client%d" % i)) for i in range(3)]
    tasks.append(asyncio.ensure_future(background_jobs()))
    tasks.append(asyncio.ensure_future(ticker()))
    await asyncio.sleep(0.1)
    print("READY %d" % os.getpid(), flush=True)
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    asyncio.run(main())
