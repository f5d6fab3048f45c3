"""A bounded pool for verification work, off the event loop, with a deadline per request.

Checking a signature is CPU work (JSON-LD canonicalization) done by synchronous code. On the event
loop one slow document held every other request, ``/healthz`` included (a 1.9 KB "poison graph"
held it 9.5 s). Here at most ``workers`` threads verify and at most ``queue`` more requests wait
for one; a request that finds no room, or waits past its deadline, is refused with
:class:`VerificationBusy` (429). The deadline also bounds the work itself: canonicalization in a
worker stops at it (``ler.credentials.canon.deadline``), so a thread is never held longer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ler.credentials.canon import deadline as canonicalization_deadline

T = TypeVar("T")

__all__ = ["Deadline", "VerificationBusy", "VerificationPool"]


class VerificationBusy(Exception):
    """No worker could take the request before its deadline."""


class Deadline:
    """The moment a request's verification must be done by (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


class VerificationPool:
    """``workers`` threads and room for ``queue`` waiting jobs; jobs run under a deadline."""

    def __init__(self, workers: int = 2, queue: int = 64) -> None:
        self.workers = workers
        self.queue = queue
        self._executor: ThreadPoolExecutor | None = None
        self._slots = asyncio.Semaphore(workers + queue)
        self.refused = 0

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="ler-verify")
        return self._executor

    async def run(self, deadline: Deadline, job: Callable[[], T]) -> T:
        """``job()`` in a worker thread, canonicalization bounded by ``deadline``.

        Raises :class:`VerificationBusy` when no slot frees up before the deadline. Once
        started, a job ends by itself at the deadline (its result then says so)."""
        try:
            await asyncio.wait_for(self._slots.acquire(), deadline.remaining() or 0.001)
        except TimeoutError:
            self.refused += 1
            raise VerificationBusy from None
        if deadline.remaining() <= 0:
            self._slots.release()
            self.refused += 1
            raise VerificationBusy

        def bounded() -> T:
            with canonicalization_deadline(deadline.remaining()):
                return job()

        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._pool(), bounded)
        except BaseException:
            self._slots.release()
            raise
        # The slot is given back when the thread is done, not when the caller stops waiting (a
        # cancelled request): the bound on threads and waiting jobs holds either way.
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.shield(future)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
