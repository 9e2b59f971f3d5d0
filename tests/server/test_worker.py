"""After-commit dispatch against a real Celery app on the real Redis broker."""

import pytest

from kit.db import transaction
from kit.tasks import enqueue_after_commit
from server.tasks import ping
from server.worker import create_celery


@pytest.fixture
def celery_app(settings):
    return create_celery(settings)


async def _queued(redis):
    return await redis.llen("celery")


async def test_task_is_sent_only_after_commit(celery_app, pool, redis):
    async with transaction(pool) as tx:
        enqueue_after_commit(tx, ping)
        assert await _queued(redis) == 0  # not before commit
    assert await _queued(redis) == 1


async def test_rolled_back_transaction_sends_nothing(celery_app, pool, redis):
    async def fail_after_enqueue():
        async with transaction(pool) as tx:
            enqueue_after_commit(tx, ping)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fail_after_enqueue()
    assert await _queued(redis) == 0
