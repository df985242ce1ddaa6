"""A small asyncio service with three classic pitfalls, for `make demo`.

- refresh_cache() calls time.sleep() inside a coroutine (blocks the loop)
- render_report() computes a checksum in pure Python (CPU-bound callback)
- archive() runs subprocess.run() from a coroutine
Everything else is healthy: a TCP echo server and clients using streams.
It runs for about 3 seconds and exits 0.
"""
import asyncio
import subprocess
import time


def refresh_cache():
    time.sleep(0.12)  # pitfall: blocks the event loop


def checksum(data):
    total = 0
    for byte in data:
        total = (total * 31 + byte) & 0xFFFFFFFF  # pitfall: CPU-bound on the loop
    return total


async def render_report():
    return checksum(bytes(range(256)) * 16000)


async def archive():
    subprocess.run(["sleep", "0.11"], check=True)  # pitfall: waits on the loop


async def handle_echo(reader, writer):
    while True:
        data = await reader.readline()
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()


async def client(port, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(n):
        writer.write(b"ping %d\n" % i)
        await writer.drain()
        await reader.readline()
        await asyncio.sleep(0.01)
    writer.close()


async def main():
    server = await asyncio.start_server(handle_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients = [asyncio.create_task(client(port, 150)) for _ in range(4)]
    for _ in range(3):
        await asyncio.sleep(0.3)
        refresh_cache()
        await asyncio.sleep(0.05)
        await render_report()
        await asyncio.sleep(0.05)
        await archive()
    await asyncio.gather(*clients)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
