"""Pitfall: a coroutine builds a large cyclic object graph and collects it.

Each request builds a graph of self-referencing nodes and calls gc.collect()
on the event loop thread: a full (generation 2) collection blocks the loop.
"""
import asyncio
import gc
import os
import signal


class Node:
    def __init__(self, parent=None):
        self.parent = parent
        self.children = []
        self.me = self


def build_graph(n=200000):
    root = Node()
    nodes = [Node(root) for _ in range(n)]
    root.children = nodes
    del root, nodes
    gc.collect()  # EXPECT-GC: 2


async def handle_rebuild():
    build_graph()


async def main():
    gc.disable()  # only the explicit collection runs: one clear culprit
    print("READY %d" % os.getpid(), flush=True)
    while True:
        await handle_rebuild()
        await asyncio.sleep(0.3)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    signal.signal(signal.SIGINT, lambda *a: os._exit(0))
    asyncio.run(main())
