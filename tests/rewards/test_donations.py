"""Donation: points given and grams retired to projects, on the ledger, all or nothing; the
retirement account has no way out; projects' counters equal their ledger balances."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enterprises import pooling
from enterprises.offsets_errors import PoolEmpty
from kit.db import transaction
from kit.errors import InvalidInput
from points import reads
from points import service as ledger
from points.errors import InsufficientFunds
from points.schemas import Asset, Issuance, Owner, TransferRequest
from rewards import certificates, donations, projects
from rewards.donation_errors import GramsPooled, ProjectClosed, ProjectNotFound
from rewards.donation_schemas import ProjectInput
from tests.rewards.factories import POLICY, REGION, donate, project, resident_with_points

KEY = Ed25519PrivateKey.from_private_bytes(bytes(32))


async def balance(pool: Any, owner_type: str, owner_id: str, asset: Asset) -> tuple[int, int]:
    async with pool.acquire() as conn:
        b = {x.asset: x for x in await ledger.balances(conn, owner_type, owner_id)}[asset]
    return b.posted, b.pending


class TestDonatePoints:
    async def test_points_move_to_the_project_through_the_pool(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool, 10_000)  # 1,000 points
        d = await donate(pool, rid, p.id, 300)
        assert re.fullmatch(r"TPH-20[0-9]{2}-P-[0-9]{8}", d.serial), d.serial
        assert (d.kind, d.asset, d.amount, d.project_id) == ("donation", "POINT", 300, p.id)
        assert d.certificate_url == f"/api/public/v1/certificates/{d.serial}"
        assert await balance(pool, "resident", rid, "POINT") == (700, 0)
        assert await balance(pool, "project", p.id, "POINT") == (300, 0)
        assert await balance(pool, "system", "donations", "POINT") == (0, 0)

    async def test_never_to_another_resident(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool)
        await donate(pool, rid, p.id, 50)
        async with pool.acquire() as conn:
            page = await ledger.statement(conn, "resident", rid, "POINT", cursor=None, limit=10)
            pool_page = await ledger.statement(
                conn, "system", "donations", "POINT", cursor=None, limit=10
            )
        [out] = [e for e in page.entries if e.delta < 0]
        assert out.counterparty == Owner("system", "donations") and out.kind == "donation"
        # The pool passes it on to the project, in the same batch, and to nothing else.
        assert {(e.counterparty.owner_type, e.delta) for e in pool_page.entries} == {
            ("resident", 50),
            ("project", -50),
        }
        assert {e.counterparty.owner_id for e in pool_page.entries} == {rid, p.id}

    async def test_counters_equal_the_ledger(self, pool):
        p = await project(pool, target_amount=1000)
        a, b = await resident_with_points(pool), await resident_with_points(pool)
        await donate(pool, a, p.id, 100)
        await donate(pool, a, p.id, 150)
        await donate(pool, b, p.id, 250)
        await donate(pool, b, p.id, 70, asset="CO2E_G")
        async with pool.acquire() as conn:
            got = await projects.get(conn, p.id)
            points = await reads.posted_by_owner(conn, "project", [p.id], "POINT")
            grams = await reads.posted_by_owner(conn, "project", [p.id], "CO2E_G")
        assert (got.points_donated, got.grams_retired) == (points[p.id], grams[p.id]) == (500, 70)
        assert (got.donations, got.donors, got.progress_percent) == (4, 2, 50.0)
        assert got.status == "open"

    async def test_lots_nearest_expiry_are_given_first(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool, 1000)  # 100 points, one lot
        async with transaction(pool) as tx:  # a second lot, expiring a year later
            later = datetime.now(UTC) + timedelta(days=366)
            await ledger.issue_reductions(tx, [_issuance(rid, 1000)], POLICY, now=later)
        await donate(pool, rid, p.id, 120)
        async with pool.acquire() as conn:
            lots = await ledger.expiring(conn, "resident", rid, within_days=4000)
        assert [lot.amount for lot in lots] == [80]  # the first lot is gone, 20 of the second


def _issuance(rid: str, grams: int) -> Issuance:
    return Issuance(
        resident_id=rid,
        reduction_g=grams,
        source_ref=f"evt-{uuid.uuid4()}",
        region_code=REGION,
        occurred_at=datetime.now(UTC),
    )


class TestRetireGrams:
    async def test_grams_go_to_the_retirement_account(self, pool):
        p = await project(pool, target_asset="CO2E_G", target_amount=1_000)
        rid = await resident_with_points(pool, 5_000)
        d = await donate(pool, rid, p.id, 400, asset="CO2E_G")
        assert d.kind == "retirement" and "-G-" in d.serial
        assert await balance(pool, "resident", rid, "CO2E_G") == (4_600, 0)
        assert await balance(pool, "project", p.id, "CO2E_G") == (400, 0)
        assert await balance(pool, "resident", rid, "POINT") == (500, 0)  # points untouched
        async with pool.acquire() as conn:
            assert (await projects.get(conn, p.id)).progress_percent == 40.0

    async def test_retired_grams_never_leave(self, pool):
        p = await project(pool, target_asset="CO2E_G")
        rid = await resident_with_points(pool, 5_000)
        d = await donate(pool, rid, p.id, 400, asset="CO2E_G")
        out = TransferRequest(
            idempotency_key="resell-retired",
            debit=Owner("project", p.id),
            credit=Owner("enterprise", "buyer"),
            asset="CO2E_G",
            amount=100,
            kind="sale",
            reason_code="offset",
            region_code=REGION,
            occurred_at=datetime.now(UTC),
        )
        with pytest.raises(asyncpg.CheckViolationError, match="retired grams"):
            async with transaction(pool) as tx:
                await ledger.transfer(tx, [out], POLICY)
        with pytest.raises(asyncpg.CheckViolationError, match="retired grams"):
            async with transaction(pool) as tx:
                await ledger.place_hold(tx, out, POLICY)
        async with pool.acquire() as conn:
            cert = await certificates.certificate(conn, d.serial, key=KEY, origin="tanpuhui/t")
        assert cert.transfer is not None and cert.transfer.credit == Owner("project", p.id)
        with pytest.raises(asyncpg.CheckViolationError, match="retired grams"):
            async with transaction(pool) as tx:  # not even by reversing the retirement
                await ledger.reverse(
                    tx,
                    cert.transfer.id,
                    POLICY,
                    idempotency_key="undo-retirement",
                    reason_code="mistake",
                )
        assert await balance(pool, "project", p.id, "CO2E_G") == (400, 0)

    async def test_a_points_project_account_still_moves(self, pool):
        # The guard is on retirement accounts (project CO2E_G) only: points can be settled on.
        p = await project(pool)
        rid = await resident_with_points(pool)
        await donate(pool, rid, p.id, 100)
        async with transaction(pool) as tx:
            await ledger.transfer(
                tx,
                [
                    TransferRequest(
                        idempotency_key="settle-project",
                        debit=Owner("project", p.id),
                        credit=Owner("merchant", "tree-nursery"),
                        asset="POINT",
                        amount=100,
                        kind="project_settlement",
                        reason_code="trees_bought",
                        region_code=REGION,
                        occurred_at=datetime.now(UTC),
                    )
                ],
                POLICY,
            )
        assert await balance(pool, "project", p.id, "POINT") == (0, 0)


class TestRefusals:
    async def test_not_enough_points_changes_nothing(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool, 1_000)  # 100 points
        with pytest.raises(InsufficientFunds):
            await donate(pool, rid, p.id, 101)
        assert await balance(pool, "resident", rid, "POINT") == (100, 0)
        async with pool.acquire() as conn:
            assert (await donations.mine(conn, rid, cursor=None, limit=10)).items == []
            assert (await projects.get(conn, p.id)).donations == 0

    async def test_outside_the_period(self, pool):
        now = datetime.now(UTC)
        rid = await resident_with_points(pool)
        past = await project(pool, starts_at=now - timedelta(days=9), ends_at=now - timedelta(1))
        future = await project(pool, starts_at=now + timedelta(days=1))
        for p, status in ((past, "closed"), (future, "upcoming")):
            assert p.status == status
            with pytest.raises(ProjectClosed):
                await donate(pool, rid, p.id, 10)
        assert await balance(pool, "resident", rid, "POINT") == (1_000, 0)

    @pytest.mark.parametrize("project_id", ["00000000-0000-4000-8000-000000000000", "nope"])
    async def test_unknown_project(self, pool, project_id):
        rid = await resident_with_points(pool)
        with pytest.raises(ProjectNotFound):
            await donate(pool, rid, project_id, 10)

    async def test_a_project_ends_after_it_starts(self, pool):
        now = datetime.now(UTC)
        with pytest.raises(InvalidInput) as caught:
            async with transaction(pool) as tx:
                await projects.register(
                    tx,
                    ProjectInput(
                        title="t",
                        beneficiary="b",
                        target_asset="POINT",
                        target_amount=1,
                        starts_at=now,
                        ends_at=now,
                    ),
                )
        assert caught.value.code == "validation_failed"


class TestConcurrency:
    async def test_concurrent_gifts_never_overdraw(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool, 1_000)  # 100 points
        outcomes = await asyncio.gather(
            *(donate(pool, rid, p.id, 30) for _ in range(6)), return_exceptions=True
        )
        given = [o for o in outcomes if not isinstance(o, BaseException)]
        refused = [o for o in outcomes if isinstance(o, InsufficientFunds)]
        assert (len(given), len(refused)) == (3, 3), outcomes
        assert len({d.serial for d in given}) == 3
        assert await balance(pool, "resident", rid, "POINT") == (10, 0)
        async with pool.acquire() as conn:
            assert (await projects.get(conn, p.id)).points_donated == 90


class TestMine:
    async def test_newest_first_in_pages(self, pool):
        p = await project(pool)
        rid = await resident_with_points(pool)
        other = await resident_with_points(pool)
        made = [await donate(pool, rid, p.id, n) for n in (1, 2, 3)]
        await donate(pool, other, p.id, 9)
        async with pool.acquire() as conn:
            first = await donations.mine(conn, rid, cursor=None, limit=2)
            assert first.next_cursor is not None
            rest = await donations.mine(conn, rid, cursor=first.next_cursor, limit=2)
        assert [d.serial for d in first.items + rest.items] == [d.serial for d in made[::-1]]
        assert rest.next_cursor is None

    def test_the_donor_pseudonym_is_stable_and_not_the_id(self):
        rid = "5b1f3c0e-0000-4000-8000-000000000001"
        assert donations.donor_pseudonym(rid) == donations.donor_pseudonym(rid)
        assert rid not in donations.donor_pseudonym(rid)
        assert re.fullmatch(r"donor-[0-9a-f]{12}", donations.donor_pseudonym(rid))


class TestRetireAfterPooling:
    """Residents keep their grams when the programme pools a vintage for enterprises' offsets,
    so grams of a pooled vintage may be retired only within what pooling left: never the same
    reductions twice (enterprises.pooling.retirement_room)."""

    async def _verified(self, pool: Any, rid: str, grams: int) -> None:
        """The resident's accepted event of this year (what pooling reads), beside the ledger
        credit ``resident_with_points`` made."""
        at = datetime.now(UTC) - timedelta(hours=1)
        async with pool.acquire() as conn:
            await conn.execute(
                """
                INSERT INTO behaviour_events (id, operator_id, record_id, subject_ref,
                    resident_id, kind, mode, behaviour, started_at, ended_at, received_at,
                    status, methodology_code, reduction_g)
                VALUES ($1, 'op', $2, 's', $3, 'trip', 'bus', 'bus', $4, $4, $4, 'accepted',
                    'M1', $5)
                """,
                uuid.uuid4(),
                str(uuid.uuid4()),
                uuid.UUID(rid),
                at,
                grams,
            )

    async def _pool(self, pool: Any, key: str, amount: int | None) -> Any:
        async with transaction(pool) as tx:
            return await pooling.issue(
                tx,
                POLICY,
                request_key=key,
                methodology="M1",
                vintage=datetime.now(POLICY.zone).year,
                amount=amount,
                region_code=REGION,
            )

    async def _retired(self, pool: Any, p: str) -> int:
        async with pool.acquire() as conn:
            return (await projects.get(conn, p)).grams_retired

    async def test_only_what_pooling_left_may_be_retired(self, pool):
        p = await project(pool, target_asset="CO2E_G", target_amount=100_000)
        rid = await resident_with_points(pool, 5_000)
        await self._verified(pool, rid, 5_000)
        await donate(pool, rid, p.id, 1_000, asset="CO2E_G")  # before pooling: no limit
        block = await self._pool(pool, "pool-1", 3_000)  # 5,000 - 1,000 retired: 1,000 left
        assert block.amount == 3_000
        with pytest.raises(GramsPooled) as refused:
            await donate(pool, rid, p.id, 1_001, asset="CO2E_G")
        assert refused.value.extra == {
            "vintage": datetime.now(POLICY.zone).year,
            "retirable_g": 1_000,
        }
        assert await self._retired(pool, p.id) == 1_000  # nothing written
        assert await balance(pool, "resident", rid, "CO2E_G") == (4_000, 0)
        await donate(pool, rid, p.id, 1_000, asset="CO2E_G")  # what is left: accepted
        with pytest.raises(GramsPooled):
            await donate(pool, rid, p.id, 1, asset="CO2E_G")
        await donate(pool, rid, p.id, 10)  # points are never limited by pooling
        with pytest.raises(PoolEmpty):  # and pooling sees the retirements the other way
            await self._pool(pool, "pool-2", 1)

    async def test_new_verified_grams_make_room_again(self, pool):
        p = await project(pool, target_asset="CO2E_G", target_amount=100_000)
        rid = await resident_with_points(pool, 8_000)
        await self._verified(pool, rid, 2_000)
        await self._pool(pool, "pool-all", None)  # all 2,000 pooled
        with pytest.raises(GramsPooled):
            await donate(pool, rid, p.id, 1, asset="CO2E_G")
        await self._verified(pool, rid, 600)  # trips verified after the issuance
        await donate(pool, rid, p.id, 600, asset="CO2E_G")
        with pytest.raises(GramsPooled):
            await donate(pool, rid, p.id, 1, asset="CO2E_G")
        assert await self._retired(pool, p.id) == 600
