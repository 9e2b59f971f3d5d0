"""kit.batcher: no timer (a lone request runs at once), batches formed while consumers are
busy, each caller gets its own result or exception, bounded batches and consumers, close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kit.batcher import Batcher, BatcherClosed


class Recorder:
    """A batch runner that records its batches; ``gate`` holds a batch until set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.running = 0
        self.most_running = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, batch: list[int]) -> list[Any]:
        self.batches.append(list(batch))
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await self.gate.wait()
            await asyncio.sleep(0)
            return [ValueError(f"odd {n}") if n % 2 else n * 10 for n in batch]
        finally:
            self.running -= 1


async def test_a_lone_request_runs_at_once_as_a_batch_of_one() -> None:
    run = Recorder()
    batcher: Batcher[int, int] = Batcher(run)
    assert await asyncio.wait_for(batcher.submit(4), timeout=1) == 40
    assert run.batches == [[4]]
    with pytest.raises(ValueError, match="odd 3"):
        await batcher.submit(3)
    await batcher.close()


async def test_requests_arriving_while_batches_run_form_the_next_batches() -> None:
    run = Recorder()
    run.gate.clear()
    batcher: Batcher[int, int] = Batcher(run, max_batch=8, concurrency=2)
    first = [asyncio.create_task(batcher.submit(0))]
    await asyncio.sleep(0.01)  # one consumer busy with a batch of one
    first.append(asyncio.create_task(batcher.submit(2)))
    await asyncio.sleep(0.01)  # the second consumer too
    assert run.running == 2 and run.batches == [[0], [2]]
    rest = [asyncio.create_task(batcher.submit(n)) for n in range(4, 40, 2)]
    await asyncio.sleep(0.01)
    assert run.batches == [[0], [2]]  # no third consumer: the 18 others wait
    run.gate.set()
    results = await asyncio.gather(*first, *rest)
    assert results == [n * 10 for n in (0, 2, *range(4, 40, 2))]
    assert run.most_running == 2
    assert all(len(b) <= 8 for b in run.batches)
    assert sorted(n for b in run.batches for n in b) == [0, 2, *range(4, 40, 2)]
    assert len(run.batches) == 2 + 3  # 18 waiting requests in batches of at most 8
    assert batcher.batches == len(run.batches) and batcher.requests == 20
    await batcher.close()


async def test_each_caller_gets_its_own_exception_and_a_failed_batch_fails_its_callers() -> None:
    calls = 0

    async def run(batch: list[int]) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the batch failed")
        return list(batch)

    batcher: Batcher[int, int] = Batcher(run, concurrency=1)
    with pytest.raises(RuntimeError, match="the batch failed"):
        await batcher.submit(1)
    assert await batcher.submit(2) == 2  # the batcher goes on
    await batcher.close()


async def test_a_wrong_number_of_results_fails_the_batch() -> None:
    async def run(batch: list[int]) -> list[Any]:
        return []

    batcher: Batcher[int, int] = Batcher(run)
    with pytest.raises(RuntimeError, match="answered with 0 results"):
        await batcher.submit(1)


async def test_a_caller_that_stops_waiting_does_not_stop_the_others() -> None:
    run = Recorder()
    run.gate.clear()
    batcher: Batcher[int, int] = Batcher(run, concurrency=1)
    gone = asyncio.create_task(batcher.submit(0))
    kept = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0.01)
    gone.cancel()
    run.gate.set()
    assert await kept == 20
    assert gone.cancelled()
    await batcher.close()


async def test_close_waits_for_batches_in_flight_and_refuses_new_requests() -> None:
    run = Recorder()
    run.gate.clear()
    batcher: Batcher[int, int] = Batcher(run)
    pending = asyncio.create_task(batcher.submit(6))
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.01)
    assert not closing.done()
    with pytest.raises(BatcherClosed):
        await batcher.submit(8)
    run.gate.set()
    await closing
    assert await pending == 60


def test_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Batcher(Recorder(), max_batch=0)
