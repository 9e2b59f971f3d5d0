"""Property-based: random sequences of ledger operations keep every invariant.

Hypothesis drives a synchronous function in a worker thread; each operation runs on the test's
event loop (where the pool lives) through ``run_coroutine_threadsafe``.
"""

import asyncio
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit.db import transaction
from kit.errors import DomainError
from points import journal, service
from points.audit import audit
from tests.points.factories import POLICY, REGION, invariants, issuance, spend

RESIDENTS = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(3)]
BASE = datetime(2026, 6, 1, tzinfo=UTC)

who = st.integers(0, len(RESIDENTS) - 1)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("issue"), who, st.integers(1, 60)),
        st.tuples(st.just("spend"), who, st.integers(1, 8)),
        st.tuples(st.just("hold"), who, st.integers(1, 8)),
        st.tuples(st.just("post"), st.integers(0, 5), st.none() | st.integers(1, 8)),
        st.tuples(st.just("void"), st.integers(0, 5)),
        st.tuples(st.just("reverse"), st.integers(0, 30)),
        st.tuples(st.just("expire"), st.integers(0, 4)),
        st.tuples(
            st.just("timeout"),
        ),
    ),
    max_size=25,
)


async def _reset(owner_pool):
    async with owner_pool.acquire() as conn:
        await conn.execute(
            "TRUNCATE point_lots, ledger_transfers, ledger_batches, ledger_accounts "
            "RESTART IDENTITY CASCADE"
        )


async def _run(pool, sequence):
    holds: list[str] = []
    for n, op in enumerate(sequence):
        try:
            async with transaction(pool) as tx:
                match op:
                    case ("issue", r, grams):
                        await service.issue_reductions(
                            tx, [issuance(RESIDENTS[r], grams)], POLICY, now=BASE
                        )
                    case ("spend", r, amount):
                        await service.transfer(tx, [spend(RESIDENTS[r], amount)], POLICY)
                    case ("hold", r, amount):
                        h = await service.place_hold(tx, spend(RESIDENTS[r], amount), POLICY)
                        holds.append(h.id)
                    case ("post", i, amount) if i < len(holds):
                        await service.post_hold(
                            tx, holds[i], POLICY, idempotency_key=f"post-{n}", amount=amount
                        )
                    case ("void", i) if i < len(holds):
                        await service.void_hold(tx, holds[i], POLICY, idempotency_key=f"void-{n}")
                    case ("reverse", i):
                        await service.reverse(
                            tx, str(i + 1), POLICY, idempotency_key=f"rev-{n}", reason_code="x"
                        )
                    case ("expire", years):
                        await service.expire_lots(
                            tx,
                            POLICY,
                            region_code=REGION,
                            now=BASE + timedelta(days=365 * years),
                        )
                    case ("timeout",):
                        await service.void_timed_out_holds(
                            tx, POLICY, now=datetime.now(UTC) + timedelta(days=1)
                        )
        except DomainError:
            pass  # refusals are fine; the invariants must hold either way
    async with pool.acquire() as conn:
        await invariants(conn)
    async with transaction(pool) as tx:
        await journal.seal(tx)
    async with pool.acquire() as conn:
        report = await audit(conn)
    assert report.ok, report.problems
    assert report.unsealed_transfers == 0


async def test_random_operation_sequences_keep_the_invariants(pool, owner_pool):
    loop = asyncio.get_running_loop()

    def on_loop(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        database=None,
    )
    @given(ops)
    def check(sequence):
        on_loop(_reset(owner_pool))
        on_loop(_run(pool, sequence))

    await asyncio.to_thread(check)
