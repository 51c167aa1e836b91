"""The Python side of versus.rs: CPython's asyncio, or uvloop, as a child process that stays up.

`python3 loops.py asyncio|uvloop bench` prints the loop's name (or "!" and why not), then answers each line
`BENCHMARK COUNT` on its stdin with the nanoseconds per operation of COUNT operations, so that
the Rust bench can interleave these samples with its own. Callbacks and tasks come in batches
of 1,000, each run to the end: in batches of 100,000, CPython's garbage collector makes them
dearer.

`python3 loops.py asyncio|uvloop echo` serves TCP echo on 127.0.0.1 and an OS-chosen port,
which it prints, then answers each line on its stdin with its CPU time so far, as the Rust
servers do.
"""

import asyncio
import os
import resource
import sys
import threading
import time

KIND, MODE = sys.argv[1], sys.argv[2]
if KIND == "uvloop":
    try:
        import uvloop
    except ImportError:
        print("! uvloop is not installed for this python3 (pip install uvloop)", flush=True)
        sys.exit(1)
    NEW_LOOP, NAME = uvloop.new_event_loop, "uvloop " + uvloop.__version__
else:
    NEW_LOOP, NAME = asyncio.new_event_loop, "asyncio, CPython " + sys.version.split()[0]
BATCH = 1000


def noop():
    pass


async def nothing():
    pass


async def yields(count):
    for _ in range(count):
        await asyncio.sleep(0)


def run_until_complete(loop, count):
    for _ in range(count):
        loop.run_until_complete(loop.create_task(asyncio.sleep(0)))


def call_soon(loop, count):
    for _ in range(count // BATCH):
        for _ in range(BATCH):
            loop.call_soon(noop)
        loop.call_soon(loop.stop)
        loop.run_forever()


def call_later(loop, count):
    for _ in range(count // BATCH):
        for _ in range(BATCH):
            loop.call_later(0, noop)
        loop.call_later(0, loop.stop)
        loop.run_forever()


def create_task(loop, count):
    for _ in range(count // BATCH):
        for _ in range(BATCH):
            last = loop.create_task(nothing())
        loop.run_until_complete(last)


def yield_loop(loop, count):
    """asyncio asks its selector in every iteration: one poll per yield, like tokio's yield_now."""
    loop.run_until_complete(yields(count))


BENCHMARKS = {f.__name__: f for f in [run_until_complete, call_soon, call_later, create_task, yield_loop]}


def bench():
    loop = NEW_LOOP()
    asyncio.set_event_loop(loop)
    print(NAME, flush=True)
    for line in sys.stdin:
        name, count = line.split()
        count = int(count)
        start = time.perf_counter_ns()
        BENCHMARKS[name](loop, count)
        print((time.perf_counter_ns() - start) / count, flush=True)


class Echo(asyncio.BufferedProtocol):
    """Writes back what it reads, reading into 64 KiB as the Rust servers do."""

    def connection_made(self, transport):
        self.transport = transport
        self.buffer = memoryview(bytearray(64 * 1024))

    def get_buffer(self, sizehint):
        return self.buffer

    def buffer_updated(self, nbytes):
        # A copy: a write that the socket cannot take at once keeps what it is given.
        self.transport.write(bytes(self.buffer[:nbytes]))


def usage_on_stdin():
    """Answers each line with this process's CPU time so far, user then total, in ns."""
    for _ in sys.stdin:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        user, total = usage.ru_utime, usage.ru_utime + usage.ru_stime
        print(round(user * 1e9), round(total * 1e9), flush=True)
    os._exit(0)


def serve_echo():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = NEW_LOOP()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(Echo, "127.0.0.1", 0, backlog=1024))
    print(server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=usage_on_stdin, daemon=True).start()
    loop.run_forever()


bench() if MODE == "bench" else serve_echo()
