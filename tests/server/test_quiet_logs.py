"""Periodic ticks with nothing to do log nothing, in the real worker and the real beat; work
done (a sealed block) is logged."""

from __future__ import annotations

import asyncio
import json
import tempfile

from kit.db import transaction
from points import service
from points.tasks import seal_journal
from server.tasks import ping
from server.worker import create_celery
from tests.points.factories import POLICY, issuance, resident
from tests.server.processes import Process, python, store_env, worker


def _log(process: Process) -> list[dict[str, object]]:
    return [json.loads(line) for line in process.stderr().splitlines() if line.startswith("{")]


def _pongs(process: Process) -> int:
    return sum(
        str(e["msg"]).startswith("Task server.ping") and "succeeded" in str(e["msg"])
        for e in _log(process)
    )


async def test_the_worker_logs_a_sealed_block_and_not_an_empty_tick(settings, pool):
    create_celery(settings)
    with worker(settings) as w:
        for _ in range(3):
            seal_journal.delay()  # nothing to seal: three empty ticks
        ping.delay()  # one worker process, in order: once ping is done, so are the ticks
        w.wait_for(lambda: _pongs(w) == 1, "the first ping answered")
        assert not [e for e in _log(w) if "seal_journal" in str(e["msg"])]
        assert not [e for e in _log(w) if e["msg"] == "journal sealed"]

        async with transaction(pool) as tx:
            await service.issue_reductions(tx, [issuance(resident(), 500)], POLICY)
        seal_journal.delay()
        ping.delay()
        w.wait_for(lambda: _pongs(w) == 2, "the second ping answered")
        sealed = [e for e in _log(w) if e["msg"] == "journal sealed"]
        assert [e["blocks"] for e in sealed] == [1], w.stderr()[-3000:]
        assert sealed[0]["logger"] == "tanpuhui.points"


async def test_beat_does_not_log_each_tick(settings, redis):
    data_dir = tempfile.mkdtemp(prefix="tph-beat-")
    env = store_env(settings, TANPUHUI_EMBEDDED_DATA_DIR=data_dir)

    async def seal_messages() -> int:
        raw = await redis.lrange("celery", 0, -1)
        return sum(json.loads(m)["headers"]["task"] == "points.seal_journal" for m in raw)

    with Process(python("-m", "server.cli", "beat"), env) as beat:
        # No worker runs: every tick beat sends stays in the queue, where the test counts them.
        for _ in range(300):
            if await seal_messages() >= 2:
                break
            assert beat.proc.poll() is None, beat.stderr()
            await asyncio.sleep(0.1)
        assert await seal_messages() >= 2
    log = beat.stderr()
    assert "beat: Starting" in log  # the log is captured
    assert "seal_journal" not in log
