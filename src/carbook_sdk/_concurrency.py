"""Run many calls at once, at most N at a time: tasks for the async client, threads for
the sync one. ``scripts/unasync.py`` turns ``gather_limited`` into ``run_limited``, and
``receive_within`` (a WebSocket read with a deadline) into ``receive_before``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["INTERRUPTIONS", "gather_limited", "receive_before", "receive_within", "run_limited"]

#: What stops a call halfway: a cancelled task (async), Ctrl-C in the main thread (sync).
INTERRUPTIONS: tuple[type[BaseException], ...] = (asyncio.CancelledError, KeyboardInterrupt)


async def gather_limited(calls: Sequence[Callable[[], Awaitable[None]]], concurrency: int) -> None:
    """Await every call, at most ``concurrency`` at once; the first exception is raised
    after every call has ended (none is left running)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await call()

    results = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def run_limited(calls: Sequence[Callable[[], None]], concurrency: int) -> None:
    """Run every call in at most ``concurrency`` threads; the first exception is raised
    after every call has ended.

    On a KeyboardInterrupt (Ctrl-C reaches only the main thread) the calls not yet begun
    are dropped and the running ones finish: a thread cannot be stopped halfway, and a
    call left halfway is what leaves an image without a car."""
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        futures = [pool.submit(c) for c in calls]
        pool.shutdown(wait=True)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    for future in futures:
        future.result()


async def receive_within(socket: Any, timeout: float) -> Any:
    """The next WebSocket message, or TimeoutError after ``timeout`` seconds."""
    return await asyncio.wait_for(socket.recv(), timeout)


def receive_before(socket: Any, timeout: float) -> Any:
    """The next WebSocket message, or TimeoutError after ``timeout`` seconds."""
    return socket.recv(timeout)
