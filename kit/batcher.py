"""A micro-batcher: concurrent requests of one process are run together, a batch at a time.

``await batcher.submit(request)`` enqueues the request and waits for its own result (or raises
its own exception). A consumer takes what is queued (up to ``max_batch``; a fair share when
other consumers are free too) whenever it is free and hands the list to ``run``, which answers
each request in order with its result or an exception. There is no timer: a lone request
starts a consumer at once and runs as a batch of one, so nothing waits at low load; under load,
requests arriving while a batch runs form the next one (group commit: a constant number of
statements and one commit per batch, whatever its size). ``concurrency`` consumers may run
batches at once, so one batch's round trips overlap another's; ``run`` must take its locks in
a fixed order so that they cannot deadlock.

Consumers are tasks started lazily on the running loop by ``submit`` and end when the queue is
empty; :meth:`Batcher.close` refuses new requests and waits for the batches in flight (the app's
lifespan calls it on shutdown). A caller that stops waiting (its task cancelled) does not stop
its batch: the answer is dropped, as a committed request's answer is when its client left.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Req = TypeVar("Req")
Res = TypeVar("Res")


class BatcherClosed(RuntimeError):
    """``submit`` on a batcher that was closed (the process is shutting down)."""


class Batcher(Generic[Req, Res]):
    def __init__(
        self,
        run: Callable[[list[Req]], Awaitable[Sequence[Res | Exception]]],
        *,
        max_batch: int = 64,
        concurrency: int = 2,
    ) -> None:
        if max_batch < 1 or concurrency < 1:
            raise ValueError("max_batch and concurrency must be at least 1")
        self._run = run
        self.max_batch = max_batch
        self.concurrency = concurrency
        self._queue: deque[tuple[Req, asyncio.Future[Res]]] = deque()
        self._consumers: set[asyncio.Task[None]] = set()  # (strong references)
        self._active = 0  # consumers that will look at the queue again before they end
        self._busy = 0  # consumers running a batch
        self._closed = False
        self.batches = 0  # how many batches ran (for tests and benchmarks)
        self.requests = 0  # how many requests they held

    async def submit(self, request: Req) -> Res:
        """Run ``request`` in the next batch; its own result, or its own exception raised."""
        if self._closed:
            raise BatcherClosed("the batcher is closed")
        future: asyncio.Future[Res] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._active < self.concurrency:
            self._active += 1
            task = asyncio.create_task(self._consume())
            self._consumers.add(task)
            task.add_done_callback(self._consumers.discard)
        return await future

    async def _consume(self) -> None:
        try:
            await self._drain()
        finally:
            # Synchronously after the last look at the queue: a request queued from now on
            # starts a consumer of its own.
            self._active -= 1

    async def _drain(self) -> None:
        while self._queue:
            # The queue is shared among the consumers free now (this one included): a burst
            # (callers answered together come back together) becomes concurrent batches whose
            # round trips overlap, rather than one batch while the other consumers idle.
            free = max(1, self.concurrency - self._busy)
            take = min(self.max_batch, -(-len(self._queue) // free))
            batch = [self._queue.popleft() for _ in range(take)]
            self._busy += 1
            try:
                await self._run_batch(batch)
            finally:
                self._busy -= 1

    async def _run_batch(self, batch: list[tuple[Req, asyncio.Future[Res]]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            results = await self._run([r for r, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(
                    f"the batch of {len(batch)} was answered with {len(results)} results"
                )
        except Exception as exc:  # the whole batch failed: each request gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:  # cancelled (shutdown): no request is left waiting
            for _, future in batch:
                if not future.done():
                    future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():  # its caller stopped waiting
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def close(self) -> None:
        """Refuse new requests; wait for the queued ones and the batches in flight."""
        self._closed = True
        while self._consumers:
            await asyncio.gather(*list(self._consumers), return_exceptions=True)
