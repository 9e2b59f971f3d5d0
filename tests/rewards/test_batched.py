"""Redemption in micro-batches (docs/rewards.md, "Redemption at scale"): the batched path
(``redeem_in``: the account check, ``replay_or_run_many`` and ``redeem_many`` in one transaction)
answers every request exactly as the one-by-one path (``redeem_one``) would have, one after
another in the batch's order, and leaves the same database behind; a batch that fails as a whole
is run again one by one; through the app, concurrent requests are batched and never oversell."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from kit.auth import Role
from kit.db import transaction
from kit.errors import DomainError
from points import service as ledger
from points.schemas import Issuance
from residents import repository as residents_repo
from rewards import repository as rewards_repo
from rewards import service as rewards_service
from rewards.schemas import RedeemRequest, Reward
from server.app import create_app
from server.mobile import rewards_routes
from server.mobile.rewards_routes import (
    Redemption,
    redeem_batch,
    redeem_in,
    redeem_one,
    redemption_batcher,
)
from tests.points.factories import invariants
from tests.residents.factories import resident, residents
from tests.rewards.factories import (
    DISTRICT,
    NOW,
    config,
    coupon_item,
    fund,
    item,
    live,
    merchant,
    points_of,
)

MOBILE = "/api/mobile/v1"
OTHER_DISTRICT = "440306"


# --- a random world, built twice --------------------------------------------------------------


def world_spec(rng: random.Random) -> dict[str, Any]:
    """Items and residents chosen at random (small stocks, balances and limits, so that every
    refusal happens), the same for both copies of the world."""
    items = []
    for n in range(rng.randint(2, 5)):
        kind = rng.choice(["generated_code", "generated_code", "physical", "coupon_code"])
        spec: dict[str, Any] = {
            "kind": kind,
            "cost_points": rng.choice([10, 25, 40, 60]),
            "title": f"item {n}",
        }
        if kind == "coupon_code":
            spec["codes"] = [f"C{n}X{j}{rng.randint(1000, 9999)}" for j in range(rng.randint(0, 4))]
        else:
            spec["total_stock"] = rng.randint(0, 8)
        if rng.random() < 0.4:
            spec["per_resident_limit"] = rng.randint(1, 2)
        if rng.random() < 0.4:
            spec["period_limit"] = 1
            spec["limit_period"] = rng.choice(["day", "week", "month"])
        if rng.random() < 0.15:  # not yet open
            spec["active_from"] = NOW + timedelta(days=1)
            spec["active_until"] = NOW + timedelta(days=2)
        if rng.random() < 0.25:
            spec["districts"] = [rng.choice([DISTRICT, OTHER_DISTRICT])]
        items.append(spec)
    people = []
    for _ in range(rng.randint(2, 5)):
        people.append(
            {
                "district": rng.choice([DISTRICT, DISTRICT, OTHER_DISTRICT, None]),
                "points": rng.choice([0, 30, 60, 100, 150, 300]),
                "erased": rng.random() < 0.12,
            }
        )
    return {"items": items, "people": people}


async def build(pool: Any, cfg: Any, spec: dict[str, Any]) -> tuple[list[str], list[str]]:
    """One copy of the world: its item ids and resident ids (by index)."""
    m = await merchant(pool, cfg)
    item_ids = []
    for s in spec["items"]:
        fields = {k: v for k, v in s.items() if k != "codes"}
        if s["kind"] == "coupon_code":
            if s["codes"]:
                fields.pop("kind")
                made = await coupon_item(pool, cfg, m.merchant.id, s["codes"], **fields)
            else:
                made = await item(pool, m.merchant.id, total_stock=0, **fields)
        else:
            made = await item(pool, m.merchant.id, **fields)
        item_ids.append(made.id)
    people = []
    for p in spec["people"]:
        rid = await resident(pool, p["district"])
        if p["points"]:
            await fund(pool, cfg, rid, p["points"])
        if p["erased"]:
            async with transaction(pool) as tx:
                await residents_repo.erase_resident(tx, rid)
        people.append(rid)
    return item_ids, people


def calls_spec(rng: random.Random, spec: dict[str, Any], n: int) -> list[tuple[int, int, int]]:
    """(resident, item, key) by index: item -1 is an unknown item; a key index used before is a
    retry (same resident, the same item or another: idempotency_key_reused)."""
    out: list[tuple[int, int, int]] = []
    for _ in range(n):
        roll = rng.random()
        if out and roll < 0.12:  # the same request again (a retry)
            out.append(rng.choice(out))
        elif out and roll < 0.18:  # the same key, another body
            p, _, k = rng.choice(out)
            out.append((p, rng.randrange(len(spec["items"])), k))
        else:
            out.append(
                (
                    rng.randrange(len(spec["people"])),
                    -1 if rng.random() < 0.05 else rng.randrange(len(spec["items"])),
                    len(out) + 1000,
                )
            )
    return out


def requests_of(
    calls: list[tuple[int, int, int]], item_ids: list[str], people: list[str], tag: str
) -> list[Redemption]:
    unknown = str(uuid.UUID(int=7))
    return [
        Redemption.of(
            people[p],
            RedeemRequest(item_id=unknown if i < 0 else item_ids[i]),
            f"{tag}-{k}",
        )
        for p, i, k in calls
    ]


def outcomes(answers: list[Any], item_ids: list[str]) -> list[Any]:
    """The answers with every id replaced by what names it in both worlds: an item by its
    index, a reward by the first request that answered it; generated codes by their shape."""
    first: dict[str, int] = {}
    out: list[Any] = []
    for n, a in enumerate(answers):
        if isinstance(a, Exception):
            assert isinstance(a, DomainError), a
            out.append(("refused", a.code, a.status, dict(a.extra or {})))
            continue
        status, r = a
        assert isinstance(r, Reward)
        first.setdefault(r.id, n)
        code = r.code if r.kind == "coupon_code" else len(r.code)
        out.append(
            (
                "issued",
                status,
                first[r.id],
                item_ids.index(r.item_id),
                r.kind,
                r.status,
                r.cost_points,
                code,
                r.valid_until,
                r.issued_at,
                r.delivery_status,
            )
        )
    return out


async def state(pool: Any, item_ids: list[str], people: list[str], tag: str) -> dict[str, Any]:
    """What the redemptions left behind, ids replaced by indices."""
    out: dict[str, Any] = {}
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id::text AS id, remaining FROM catalogue_items WHERE id = ANY ($1::uuid[])",
            item_ids,
        )
        out["remaining"] = sorted((item_ids.index(r["id"]), r["remaining"]) for r in rows)
        rows = await conn.fetch(
            "SELECT item_id::text AS i, resident_id::text AS r, period_key, used "
            "FROM reward_usage WHERE item_id = ANY ($1::uuid[])",
            item_ids,
        )
        out["usage"] = sorted(
            (item_ids.index(r["i"]), people.index(r["r"]), r["period_key"], r["used"]) for r in rows
        )
        rows = await conn.fetch(
            "SELECT r.item_id::text AS i, r.resident_id::text AS p, r.cost_points, t.amount, "
            "t.phase, t.timeout_at = r.valid_until AS same_end, t.source_ref = r.id::text AS ref "
            "FROM rewards r JOIN ledger_transfers t ON t.id = r.hold_id "
            "WHERE r.item_id = ANY ($1::uuid[])",
            item_ids,
        )
        out["rewards"] = sorted(
            (
                item_ids.index(r["i"]),
                people.index(r["p"]),
                r["cost_points"],
                r["amount"],
                r["phase"],
                r["same_end"],
                r["ref"],
            )
            for r in rows
        )
        rows = await conn.fetch(
            "SELECT scope, key, status FROM idempotency_keys WHERE key LIKE $1",
            f"{tag}-%",
        )
        out["keys"] = sorted(
            (people.index(r["scope"].removeprefix("resident:")), r["key"][len(tag) :], r["status"])
            for r in rows
        )
        free = await conn.fetch(
            "SELECT item_id::text AS i, count(*) AS n FROM reward_codes "
            "WHERE item_id = ANY ($1::uuid[]) AND reward_id IS NULL GROUP BY item_id",
            item_ids,
        )
        out["free_codes"] = sorted((item_ids.index(r["i"]), r["n"]) for r in free)
        await invariants(conn)
    out["balances"] = [await points_of(pool, "resident", p) for p in people]
    return out


def chunks(rng: random.Random, values: list[Any]) -> list[list[Any]]:
    out, at = [], 0
    while at < len(values):
        size = rng.choice([1, 2, 5, 12, 40])
        out.append(values[at : at + size])
        at += size
    return out


class TestSameAsOneByOne:
    @pytest.mark.parametrize("seed", range(16))
    async def test_random_batches_answer_and_leave_what_one_by_one_does(self, pool, settings, seed):
        cfg = config(settings)
        rng = random.Random(seed)
        spec = world_spec(rng)
        calls = calls_spec(rng, spec, rng.randint(15, 45))
        one_items, one_people = await build(pool, cfg, spec)
        many_items, many_people = await build(pool, cfg, spec)

        one_requests = requests_of(calls, one_items, one_people, "one")
        one: list[Any] = []
        for r in one_requests:
            try:
                one.append(await redeem_one(pool, cfg, r, now=NOW))
            except DomainError as exc:
                one.append(exc)

        many: list[Any] = []
        for batch in chunks(rng, requests_of(calls, many_items, many_people, "many")):
            async with transaction(pool) as tx:  # the batched path itself, no fallback
                many.extend(await redeem_in(tx, cfg, batch, now=NOW))

        assert outcomes(many, many_items) == outcomes(one, one_items)
        for a, r in zip(many, requests_of(calls, many_items, many_people, "many"), strict=True):
            if not isinstance(a, Exception):  # every field, as the rewards table answers it
                assert a[1] == await rewards_service.my_reward(pool, cfg, r.resident_id, a[1].id)
        assert await state(pool, many_items, many_people, "many") == await state(
            pool, one_items, one_people, "one"
        )

    async def test_every_refusal_in_one_batch(self, pool, settings):
        """One batch holding each refusal, in the order ``redeem`` checks them, and retries."""
        cfg = config(settings)
        m = await merchant(pool, cfg)
        rich = await resident(pool)
        await fund(pool, cfg, rich, 100)
        poor = await resident(pool)
        await fund(pool, cfg, poor, 5)
        gone = await resident(pool)
        async with transaction(pool) as tx:
            await residents_repo.erase_resident(tx, gone)
        one = await item(pool, m.merchant.id, cost_points=10, total_stock=1)
        limited = await item(pool, m.merchant.id, cost_points=10, per_resident_limit=1)
        closed = await item(
            pool,
            m.merchant.id,
            active_from=NOW + timedelta(days=1),
            active_until=NOW + timedelta(days=2),
        )
        elsewhere = await item(pool, m.merchant.id, districts=[OTHER_DISTRICT])
        unknown = str(uuid.UUID(int=9))

        def req(rid: str, item_id: str, key: str) -> Redemption:
            return Redemption.of(rid, RedeemRequest(item_id=item_id), key)

        batch = [
            req(rich, one.id, "a"),  # issued
            req(rich, one.id, "a"),  # a retry: the same reward
            req(rich, limited.id, "a"),  # the same key, another body
            req(poor, one.id, "b"),  # out of stock
            req(rich, limited.id, "c"),  # issued
            req(rich, limited.id, "d"),  # limit reached
            req(poor, limited.id, "e"),  # insufficient points
            req(poor, limited.id, "e"),  # refused before: runs again, refused again
            req(rich, closed.id, "f"),  # not available (window)
            req(rich, elsewhere.id, "g"),  # not available (district)
            req(rich, unknown, "h"),  # no such item
            req(gone, one.id, "i"),  # erased
        ]
        async with transaction(pool) as tx:
            answers: list[Any] = await redeem_in(tx, cfg, batch, now=NOW)
        codes = [short(a) for a in answers]
        assert codes == [
            201,
            201,
            "idempotency_key_reused",
            "out_of_stock",
            201,
            "limit_reached",
            "insufficient_points",
            "insufficient_points",
            "not_available",
            "not_available",
            "item_not_found",
            "account_deleted",
        ]
        assert answers[0][1] == answers[1][1]  # the retry answers the first reward
        for a in (answers[0], answers[4]):  # each reward, as the rewards table answers it
            assert a[1] == await rewards_service.my_reward(pool, cfg, rich, a[1].id)
        assert await points_of(pool, "resident", rich) == (100, 20, 80)
        assert await points_of(pool, "resident", poor) == (5, 0, 5)
        async with pool.acquire() as conn:
            await invariants(conn)

    async def test_a_batch_costs_the_same_statements_whatever_its_size(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=1, total_stock=1000)
        people = await residents(pool, 40)
        await fund_all(pool, cfg, people, 10)
        counts = []
        for size in (1, 40):
            batch = [
                Redemption.of(p, RedeemRequest(item_id=it.id), uuid.uuid4().hex)
                for p in people[:size]
            ]
            async with transaction(pool) as tx:
                counter = Counting(tx.conn)
                tx.conn = counter
                answers = await redeem_in(tx, cfg, batch, now=NOW)
                tx.conn = counter.conn
            assert all(not isinstance(a, Exception) for a in answers)
            counts.append(counter.calls)
        assert counts == [8, 8]  # districts, key locks, stored answers, accounts, items, holds,
        # the rest of the writes, the answers remembered


def short(answer: Any) -> Any:
    """A refusal's code, or an answer's status."""
    return answer.code if isinstance(answer, DomainError) else answer[0]


class Counting:
    """A connection that counts the statements sent through it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.conn, name)
        if name in ("fetch", "fetchrow", "fetchval", "execute"):

            async def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls += 1
                return await target(*args, **kwargs)

            return counted
        return target


async def fund_all(pool: Any, cfg: Any, people: list[str], points: int) -> None:
    async with transaction(pool) as tx:
        await ledger.issue_reductions(
            tx,
            [
                Issuance(
                    resident_id=r,
                    reduction_g=points * cfg.points.grams_per_point,
                    source_ref=f"evt-{uuid.uuid4()}",
                    region_code=DISTRICT,
                    occurred_at=NOW,
                )
                for r in people
            ],
            cfg.points,
            now=NOW,
        )


# --- the fallback ---------------------------------------------------------------------------


class TestFallback:
    async def test_a_failed_batch_runs_again_one_by_one(self, pool, settings, monkeypatch):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=10, total_stock=3)
        people = await residents(pool, 6)
        await fund_all(pool, cfg, people, 10)
        failed = 0
        real = rewards_repo.issue_many

        async def once(conn: Any, w: Any) -> Any:
            nonlocal failed
            if failed == 0:  # after the holds were placed: all of it must roll back
                failed += 1
                return False
            return await real(conn, w)

        monkeypatch.setattr(rewards_repo, "issue_many", once)
        batch = [Redemption.of(p, RedeemRequest(item_id=it.id), f"k-{p}") for p in people]
        batch.append(batch[0])  # a retry of the first
        answers: list[Any] = await redeem_batch(pool, cfg, batch, now=NOW)
        assert failed == 1
        codes = [short(a) for a in answers]
        assert codes == [201, 201, 201, "out_of_stock", "out_of_stock", "out_of_stock", 201]
        assert answers[6][1] == answers[0][1]
        assert (await rewards_get(pool, it.id)).remaining == 0
        async with pool.acquire() as conn:
            holds = await conn.fetchval(
                "SELECT count(*) FROM ledger_transfers WHERE phase = 'pending'"
            )
            rewards = await conn.fetchval("SELECT count(*) FROM rewards")
            await invariants(conn)
        assert holds == rewards == 3

    async def test_a_transient_failure_of_one_request_stays_its_own(
        self, pool, settings, monkeypatch
    ):
        """The batch fails, and on the one-by-one path only one request fails again: the
        others are answered, that one gets its own (transient) error."""
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=10, total_stock=10)
        people = await residents(pool, 3)
        await fund_all(pool, cfg, people, 10)

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("the batch timed out")

        monkeypatch.setattr(rewards_routes, "redeem_in", broken)
        real_one = rewards_routes.redeem_one

        async def flaky(pool: Any, cfg: Any, r: Redemption, **kw: Any) -> Any:
            if r.resident_id == people[1]:
                raise TimeoutError("this one timed out too")
            return await real_one(pool, cfg, r, **kw)

        monkeypatch.setattr(rewards_routes, "redeem_one", flaky)
        batch = [Redemption.of(p, RedeemRequest(item_id=it.id), f"t-{p}") for p in people]
        answers: list[Any] = await redeem_batch(pool, cfg, batch, now=NOW)
        assert answers[0][0] == 201 and answers[2][0] == 201
        assert isinstance(answers[1], TimeoutError)


async def rewards_get(pool: Any, item_id: str) -> Any:
    return await rewards_service.get_item(pool, item_id)


# --- the batcher, as the route uses it -------------------------------------------------------


class TestConcurrentBatches:
    async def test_1000_concurrent_redemptions_through_the_batcher(self, pool, settings):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        hot = await item(pool, m.merchant.id, cost_points=10, total_stock=10, **live())
        spread = [
            await item(pool, m.merchant.id, cost_points=1, total_stock=1000, **live())
            for _ in range(4)
        ]
        people = await residents(pool, 1000)
        await fund_all(pool, cfg, people, 100)
        batcher = redemption_batcher(pool, settings)
        try:
            answers: list[Any] = await asyncio.gather(
                *(
                    batcher.submit(
                        Redemption.of(
                            p,
                            RedeemRequest(item_id=hot.id if n % 2 else spread[n % 4 // 2].id),
                            f"c-{n}",
                        )
                    )
                    for n, p in enumerate(people)
                ),
                return_exceptions=True,
            )
        finally:
            await batcher.close()
        assert batcher.batches < 1000  # batched indeed
        hot_issued = [a for n, a in enumerate(answers) if n % 2 and not isinstance(a, Exception)]
        refused = [short(a) for a in answers if isinstance(a, Exception)]
        assert len(hot_issued) == 10
        assert refused == ["out_of_stock"] * 490
        assert (await rewards_get(pool, hot.id)).remaining == 0
        async with pool.acquire() as conn:
            holds = await conn.fetch(
                "SELECT source_ref FROM ledger_transfers WHERE phase = 'pending'"
            )
            await invariants(conn)
        assert sorted(h["source_ref"] for h in holds) == sorted(
            a[1].id for a in answers if not isinstance(a, Exception)
        )

    async def test_one_residents_six_concurrent_redemptions_with_five_thousand_points(
        self, pool, settings
    ):
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=1000, total_stock=100, **live())
        rid = await resident(pool)
        await fund(pool, cfg, rid, 5000)
        batcher = redemption_batcher(pool, settings)
        try:
            answers: list[Any] = await asyncio.gather(
                *(
                    batcher.submit(Redemption.of(rid, RedeemRequest(item_id=it.id), f"s-{n}"))
                    for n in range(6)
                ),
                return_exceptions=True,
            )
        finally:
            await batcher.close()
        assert sorted(str(short(a)) for a in answers) == ["201"] * 5 + ["insufficient_points"]
        assert await points_of(pool, "resident", rid) == (5000, 5000, 0)


@asynccontextmanager
async def concurrent_client(settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over ASGI with its lifespan, requests truly concurrent (Litestar's test
    client runs each request to its end before the next one starts). Entered in the test itself:
    the lifespan's task group must be left by the task that entered it."""
    app = create_app(settings)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as c:
            c.app = app  # type: ignore[attr-defined]
            yield c


class TestThroughTheApp:
    async def test_200_concurrent_callers_on_a_stock_of_10(self, pool, settings, jwt_keys):
        async with concurrent_client(settings) as client:
            await self.check_200_callers(client, pool, settings, jwt_keys)

    async def check_200_callers(self, client: Any, pool: Any, settings: Any, jwt_keys: Any) -> None:
        cfg = config(settings)
        m = await merchant(pool, cfg)
        it = await item(pool, m.merchant.id, cost_points=10, total_stock=10, **live())
        people = await residents(pool, 200)
        await fund_all(pool, cfg, people, 100)
        batcher = client.app.state.redemptions
        before = (batcher.batches, batcher.requests)

        # 200 callers, 40 requests in flight at a time (200 at once exhaust the test Redis's
        # connections in the session guard, before any redemption runs).
        in_flight = asyncio.Semaphore(40)

        async def redeem(rid: str, key: str) -> Any:
            token = jwt_keys.issue(rid, Role.RESIDENT, 3600, extra={"typ": "access"})
            async with in_flight:
                return await post(rid, key, token)

        async def post(rid: str, key: str, token: str) -> Any:
            return await client.post(
                f"{MOBILE}/redemptions",
                json={"item_id": it.id},
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            )

        answers = await asyncio.gather(*(redeem(p, f"h-{p}") for p in people))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [201] * 10 + [409] * 190, {r.status_code for r in answers}
        refused = {r.json()["code"] for r in answers if r.status_code == 409}
        assert refused == {"out_of_stock"}
        assert all(
            r.headers["content-type"].startswith("application/problem+json")
            for r in answers
            if r.status_code == 409
        )
        assert batcher.requests - before[1] == 200
        assert batcher.batches - before[0] < 200
        # The same key sent three times at once: one reward, three times the same answer.
        rid = people[0]
        other = await item(pool, m.merchant.id, cost_points=10, total_stock=5, **live())
        token = jwt_keys.issue(rid, Role.RESIDENT, 3600, extra={"typ": "access"})
        h = {"Authorization": f"Bearer {token}", "Idempotency-Key": "thrice"}
        again = await asyncio.gather(
            *(
                client.post(f"{MOBILE}/redemptions", json={"item_id": other.id}, headers=h)
                for _ in range(3)
            )
        )
        assert [r.status_code for r in again] == [201] * 3
        assert len({r.json()["id"] for r in again}) == 1
        assert (await rewards_get(pool, other.id)).remaining == 4
        async with pool.acquire() as conn:
            await invariants(conn)
