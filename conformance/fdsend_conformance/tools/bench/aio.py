"""Async rounds: fdsend.aio against anyio's send_fds/receive_fds, on one loop.

A round is what the synchronous bench's in-process round is (send one
message of 16 B with ``n`` fds over an AF_UNIX SOCK_STREAM pair, receive
it, close the fds), awaited in one coroutine on one running loop:

- ``inline``: the synchronous bench's inline floor (``sendmsg``/``recvmsg``
  written out) called in the coroutine, no await;
- ``aio``: ``await fdsend.aio.sendfds`` then ``await fdsend.aio.recvfds``;
- ``anyio``: ``await stream.send_fds`` then ``await stream.receive_fds``
  on anyio streams made once, before the timing (anyio's ordinary use);
- ``sync``: the synchronous reference called in the coroutine, no await
  (data is always ready, so this is the floor an async call can reach);
- ``sync+sleep0``: the same plus one ``await asyncio.sleep(0)``;
- ``awaited-sync``: each synchronous call inside a coroutine that does
  nothing else, awaited: what being a coroutine costs, the floor of any
  coroutine API that makes the synchronous call;
- ``cross-task``: one task sends ``rounds`` messages through
  ``fdsend.aio.sendfds`` while another receives them with
  ``fdsend.aio.recvfds`` (the sender waits whenever the buffer is full),
  per message.

Contestants run interleaved, batch by batch, and the median of the batches
is reported, with the ratios the issue targets. Run::

    python -m fdsend_conformance.tools.bench.aio [--loop asyncio|uvloop] [--reps 7] [--cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import socket
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

import fdsend
import fdsend.aio
from fdsend_conformance.tools.bench.rounds import INLINE

__all__ = ["ROUNDS", "main", "measure"]

ROUNDS = {1: 20000, 253: 2000}
PAYLOAD = b"\x5a" * 16

#: (sender, receiver, fds, rounds) -> elapsed ns
Round = Callable[[socket.socket, socket.socket, list[int], int], Awaitable[int]]


async def _inline(a: socket.socket, b: socket.socket, fds: list[int], rounds: int) -> int:
    return INLINE.in_process(a, b, PAYLOAD, fds, rounds)


async def _awaited_rounds(
    send: Callable[[socket.socket, bytes, int, list[int]], Awaitable[int]],
    receive: Callable[[socket.socket, int, int, int], Awaitable[fdsend.Received]],
    a: socket.socket,
    b: socket.socket,
    fds: list[int],
    rounds: int,
) -> int:
    """The timed loop of a contestant that awaits both calls of each round."""
    close, n = os.close, len(fds)
    start = time.perf_counter_ns()
    for _ in range(rounds):
        await send(a, PAYLOAD, 0, fds)
        _, got = await receive(b, 16, 0, n)
        for fd in got:
            close(fd)
    return time.perf_counter_ns() - start


async def _aio(a: socket.socket, b: socket.socket, fds: list[int], rounds: int) -> int:
    return await _awaited_rounds(fdsend.aio.sendfds, fdsend.aio.recvfds, a, b, fds, rounds)


async def _anyio(a: socket.socket, b: socket.socket, fds: list[int], rounds: int) -> int:
    from anyio.abc import UNIXSocketStream

    sender = await UNIXSocketStream.from_socket(a)
    receiver = await UNIXSocketStream.from_socket(b)
    close, n = os.close, len(fds)
    start = time.perf_counter_ns()
    for _ in range(rounds):
        await sender.send_fds(PAYLOAD, fds)
        _, got = await receiver.receive_fds(16, n)
        for fd in got:
            close(fd)
    return time.perf_counter_ns() - start


async def _sync(
    a: socket.socket, b: socket.socket, fds: list[int], rounds: int, sleep0: bool = False
) -> int:
    """The synchronous reference in the coroutine; with ``sleep0``, one ``sleep(0)`` a round."""
    send, receive, close, n = fdsend.sendfds, fdsend.recvfds, os.close, len(fds)
    sleep = asyncio.sleep
    start = time.perf_counter_ns()
    for _ in range(rounds):
        send(a, PAYLOAD, 0, fds)
        _, got = receive(b, 16, 0, n)
        for fd in got:
            close(fd)
        if sleep0:
            await sleep(0)
    return time.perf_counter_ns() - start


async def _awaited_sync(a: socket.socket, b: socket.socket, fds: list[int], rounds: int) -> int:
    sync_send, sync_receive = fdsend.sendfds, fdsend.recvfds

    async def send(sock: socket.socket, msg: bytes, flags: int, fds: list[int]) -> int:
        return sync_send(sock, msg, flags, fds)

    async def receive(sock: socket.socket, size: int, flags: int, numfds: int) -> fdsend.Received:
        return sync_receive(sock, size, flags, numfds)

    return await _awaited_rounds(send, receive, a, b, fds, rounds)


async def _cross_task(a: socket.socket, b: socket.socket, fds: list[int], rounds: int) -> int:
    n = len(fds)

    async def sender() -> None:
        for _ in range(rounds):
            await fdsend.aio.sendfds(a, PAYLOAD, 0, fds)

    async def receiver() -> None:
        close = os.close
        for _ in range(rounds):
            _, got = await fdsend.aio.recvfds(b, 16, 0, n)
            for fd in got:
                close(fd)

    start = time.perf_counter_ns()
    await asyncio.gather(sender(), receiver())
    return time.perf_counter_ns() - start


CONTESTANTS: dict[str, Round] = {
    "inline": _inline,
    "aio": _aio,
    "anyio": _anyio,
    "sync": _sync,
    "sync+sleep0": functools.partial(_sync, sleep0=True),
    "awaited-sync": _awaited_sync,
    "cross-task": _cross_task,
}


def measure(
    loop: asyncio.AbstractEventLoop, contestant: Round, n: int, rounds: int, cpu: bool = False
) -> float:
    """Microseconds per round of one batch on ``loop``, with ``n`` fds per message.

    With ``cpu`` it is this thread's CPU time (user and system) instead of the
    wall clock: on a shared machine the other processes' load does not count.
    """
    read_end, write_end = os.pipe()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    gc.disable()
    try:
        start = time.thread_time_ns()
        elapsed = loop.run_until_complete(contestant(a, b, [read_end] * n, rounds))
        if cpu:
            elapsed = time.thread_time_ns() - start
    finally:
        gc.enable()
        a.close()
        b.close()
        os.close(read_end)
        os.close(write_end)
    return elapsed / rounds / 1000


def main(argv: Sequence[str] | None = None) -> int:
    """Print µs per round and the target ratios, measured side by side."""
    parser = argparse.ArgumentParser(prog="python -m fdsend_conformance.tools.bench.aio")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--reps", type=int, default=7, help="batches per contestant (median)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the rounds per batch")
    parser.add_argument("--cpu", action="store_true", help="thread CPU time, not wall time")
    options = parser.parse_args(argv)
    loop: asyncio.AbstractEventLoop
    if options.loop == "uvloop":
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        for n, base in ROUNDS.items():
            rounds = max(10, int(base * options.scale))
            samples: dict[str, list[float]] = {name: [] for name in CONTESTANTS}
            for _ in range(options.reps):  # interleaved: drift hits every contestant alike
                for name, contestant in CONTESTANTS.items():
                    samples[name].append(measure(loop, contestant, n, rounds, options.cpu))
            median = {name: statistics.median(values) for name, values in samples.items()}
            print(
                f"{n} fd{'s' if n > 1 else ''}, 16 B, {options.loop}, "
                f"{rounds} rounds x {options.reps}, {'CPU' if options.cpu else 'wall'} time:"
            )
            for name, value in median.items():
                print(f"  {name:<12} {value:9.2f} us/round")
            print(f"  aio/anyio    {median['aio'] / median['anyio']:9.2f}")
            print(f"  aio/sync     {median['aio'] / median['sync']:9.2f}")
            print(f"  aio/awaited-sync {median['aio'] / median['awaited-sync']:5.2f}")
            print(f"  aio/sync+sleep0 {median['aio'] / median['sync+sleep0']:6.2f}")
            # what any coroutine API that makes the synchronous call costs (docs/bench.md)
            print(f"  awaited-sync/sync {median['awaited-sync'] / median['sync']:4.2f}")
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
