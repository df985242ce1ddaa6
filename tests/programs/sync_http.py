"""Pitfall: a synchronous HTTP client (urllib) called from a coroutine.

The program starts its own slow HTTP backend (~0.2 s per answer) in a child
process on 127.0.0.1 with an ephemeral port, then an async handler calls a
helper that uses urllib.request.urlopen() -- blocking the event loop while the
backend thinks.
"""
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

_backend = None


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.2)  # the backend is slow; that is not the pitfall
        body = json.dumps({"user": self.path.rsplit("/", 1)[-1], "plan": "pro"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Backend(ThreadingMixIn, HTTPServer):
    daemon_threads = True


def serve_backend():
    """Child process: serve until the parent goes away (stdin reaches EOF)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = Backend(("127.0.0.1", 0), SlowHandler)
    print(server.server_address[1], flush=True)

    def watch_parent():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    server.serve_forever()


def start_backend():
    global _backend
    _backend = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--backend"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(_backend.stdout.readline())
    return "http://127.0.0.1:%d" % port


def _quit(signum, frame):
    if _backend is not None:
        _backend.kill()
    os._exit(0)


def fetch_profile(base_url, user):
    with urllib.request.urlopen("%s/profile/%s" % (base_url, user)) as resp:  # EXPECT: blocking_syscall recvfrom|read|poll|connect
        return json.loads(resp.read().decode())


async def handle_request(base_url, user):
    profile = fetch_profile(base_url, user)
    return "%s is on the %s plan" % (profile["user"], profile["plan"])


async def main(base_url):
    print("READY %d" % os.getpid(), flush=True)
    n = 0
    while True:
        n += 1
        await handle_request(base_url, "user%d" % n)
        await asyncio.sleep(0.3)


if __name__ == "__main__":
    if sys.argv[1:] == ["--backend"]:
        serve_backend()
        sys.exit(0)
    signal.signal(signal.SIGTERM, _quit)
    signal.signal(signal.SIGINT, _quit)
    # Talk to the local backend directly, whatever *_proxy says.
    urllib.request.install_opener(
        urllib.request.build_opener(urllib.request.ProxyHandler({})))
    asyncio.run(main(start_backend()))
