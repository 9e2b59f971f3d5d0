"""The liability view: per-period figures from one read of the ledger, whose end figures equal
the residents' balances, and the `tanpuhui liability` command."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from typing import Any

from kit.db import transaction
from points import service as ledger
from points.schemas import Issuance, Owner, TransferRequest
from rewards import liability
from tests.rewards.factories import POLICY, REGION, donate, project, resident
from tests.server.processes import python, run, store_env
from tests.statements import CountingConnection

JAN = datetime(2026, 1, 15, 4, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 10, 4, 0, tzinfo=UTC)
TZ = "Asia/Shanghai"


async def issue(pool: Any, rid: str, grams: int, at: datetime) -> str:
    ref = f"evt-{uuid.uuid4()}"
    async with transaction(pool) as tx:
        await ledger.issue_reductions(
            tx,
            [Issuance(resident_id=rid, reduction_g=grams, source_ref=ref, region_code=REGION,
                      occurred_at=at)],
            POLICY,
            now=at,
        )  # fmt: skip
    return ref


def spend(rid: str, amount: int, key: str) -> TransferRequest:
    return TransferRequest(
        idempotency_key=key,
        debit=Owner("resident", rid),
        credit=Owner("merchant", "shop"),
        asset="POINT",
        amount=amount,
        kind="redemption",
        reason_code="reward",
        region_code=REGION,
        occurred_at=datetime.now(UTC),
    )


async def residents_points(pool: Any, rids: list[str]) -> tuple[int, int]:
    posted = pending = 0
    async with pool.acquire() as conn:
        for rid in rids:
            b = (await ledger.balances(conn, "resident", rid))[1]
            posted, pending = posted + b.posted, pending + b.pending
    return posted, pending


class TestLiability:
    async def test_figures_reconcile_to_the_ledger(self, pool):
        a, b, c = await resident(pool), await resident(pool), await resident(pool)
        await issue(pool, a, 10_000, JAN)  # 1,000 points (earned in January, recorded now)
        await issue(pool, b, 5_000, JAN)  # 500
        await issue(pool, c, 2_000, JAN)  # 200, clawed back below
        p = await project(pool)
        await donate(pool, a, p.id, 100)
        await donate(pool, a, p.id, 250, asset="CO2E_G")
        async with transaction(pool) as tx:
            await ledger.transfer(tx, [spend(a, 200, "spend-1")], POLICY)  # redeemed
        async with transaction(pool) as tx:
            await ledger.place_hold(tx, spend(b, 50, "hold-1"), POLICY)  # stays on hold
        async with transaction(pool) as tx:
            voided = await ledger.place_hold(tx, spend(b, 30, "hold-2"), POLICY)
        async with transaction(pool) as tx:
            await ledger.void_hold(tx, voided.id, POLICY, idempotency_key="void-2")
        async with transaction(pool) as tx:
            partial = await ledger.place_hold(tx, spend(a, 40, "hold-3"), POLICY)
        async with transaction(pool) as tx:
            await ledger.post_hold(tx, partial.id, POLICY, idempotency_key="post-3", amount=25)
        async with transaction(pool) as tx:  # a clawback of c's issuance: grams and points
            [credit] = (
                await ledger.statement(tx.conn, "resident", c, "POINT", cursor=None, limit=5)
            ).entries
            await ledger.reverse(
                tx, credit.transfer_id, POLICY, idempotency_key="claw-1", reason_code="fraud"
            )

        async with pool.acquire() as conn:
            counted = CountingConnection(conn)
            view = await liability.liability(counted, unit="month", timezone=TZ)
        assert counted.calls == 1, counted.log  # one read of the ledger
        [period] = view.periods  # everything was recorded now, this month
        assert period.issued == 1_700 and period.clawed_back == 200
        assert period.donated == 100
        assert period.redeemed == 200 + 25
        assert period.grams_issued == 15_000 and period.grams_retired == 250
        assert period.points_per_kg == 100.0  # 1,500 points kept for 15 kg kept
        posted, pending = await residents_points(pool, [a, b, c])
        assert (view.outstanding, view.on_hold) == (posted, pending) == (675 + 500, 50)
        assert (period.outstanding, period.on_hold) == (posted, pending)
        text = liability.table(view)
        assert "1175" in text and "100.000" in text

    async def test_periods_run_on(self, pool):
        # Flows in two periods: the first period's end figures carry into the second's.
        flows = [
            _flow(date(2026, 1, 1), "posted", "system", "issuance", "resident", None, 100),
            _flow(date(2026, 1, 1), "pending", "resident", None, "merchant", None, 30),
            _flow(date(2026, 2, 1), "post_pending", "resident", None, "merchant", None, 20, 30),
            _flow(date(2026, 2, 1), "posted", "resident", None, "system", "expiry", 10),
            _flow(date(2026, 2, 1), "posted", "merchant", None, "resident", None, 5, rev=True),
        ]
        view = liability.build(flows, unit="month", timezone=TZ, until=datetime.now(UTC))
        jan, feb = view.periods
        assert (jan.issued, jan.outstanding, jan.on_hold) == (100, 100, 30)
        assert (feb.redeemed, feb.expired, feb.refunded) == (20, 10, 5)
        assert (feb.outstanding, feb.on_hold) == (75, 0)
        assert jan.points_per_kg is None  # no grams issued in these flows

    async def test_the_command(self, pool, settings, tmp_path):
        rid = await resident(pool)
        await issue(pool, rid, 3_000, FEB)
        done = run(python("-m", "server.cli", "liability", "--json"), env=store_env(settings))
        assert done.returncode == 0, done.stderr
        view = json.loads(done.stdout)
        assert view["outstanding"] == 300 and view["periods"][-1]["issued"] == 300
        done = run(
            python("-m", "server.cli", "liability", "--period", "year"), env=store_env(settings)
        )
        assert done.returncode == 0 and "outstanding 300 points" in done.stdout


def _flow(
    period: date,
    phase: str,
    debit_type: str,
    debit_system: str | None,
    credit_type: str,
    credit_system: str | None,
    amount: int,
    released: int = 0,
    rev: bool = False,
) -> Any:
    from points.reads import Flow

    return Flow(
        period=period,
        asset="POINT",
        phase=phase,
        kind="k",
        debit_type=debit_type,
        debit_system=debit_system,
        credit_type=credit_type,
        credit_system=credit_system,
        reversal=rev,
        amount=amount,
        released=released,
        transfers=1,
    )
