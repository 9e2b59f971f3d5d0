"""Overlapping trip claims resolved by one rule whatever the order (issue 10, item 1): the most
trusted source holds the time, between equals the smaller reduction, then the smaller content
digest; a later better claim displaces an earlier credit (reversed in the ledger, the event
`superseded`); a later worse one is refused. The same conflicting claims pushed in two orders
and in two concurrent streams end with the same credits, nothing credited twice, the audit
passing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, ClassVar

import msgspec
import pytest

from behaviours import reads
from behaviours.events import CanonicalEvent
from behaviours.pipeline import APP_OPERATOR_ID
from behaviours.rules import Claim, claim_rank, resolve
from behaviours.settings import IngestSettings, source_tiers
from kit.auth import sign_request
from kit.db import transaction
from points.audit import audit
from points.schemas import Owner, TransferRequest
from points.service import place_hold
from tests.behaviours.factories import (
    SECRET,
    bike,
    co2e_balance,
    import_districts,
    link,
    metro,
    now,
    operator,
    policy,
    resident,
    run,
    walk,
)

PATH = "/api/operators/v1/events"
M = timedelta(minutes=1)


# --- the rule itself: a pure function over a set of claims --------------------------------------


def _claim(ref: str, start: int, end: int, trust: int, grams: int, mode: str = "metro") -> Claim:
    return Claim(ref, "r", start, end, trust, grams, ref.encode(), "op", ref, mode)


class TestRule:
    def test_trust_then_conservativeness_then_digest(self):
        a = _claim("a", 0, 10, trust=1, grams=100)
        b = _claim("b", 5, 15, trust=0, grams=900)  # more trusted wins, whatever its grams
        assert resolve([a, b]) == {"b": None, "a": "b"}
        c = _claim("c", 0, 10, trust=0, grams=800)  # equals: the smaller reduction
        assert resolve([b, c])["c"] is None and resolve([b, c])["b"] == "c"
        d = _claim("d", 0, 10, trust=0, grams=800)  # identical but for the digest: b"c" < b"d"
        assert resolve([d, c]) == {"c": None, "d": "c"}

    def test_chain_is_settled_by_rank_not_by_arrival(self):
        """Y overlaps X, X overlaps Z, Y does not overlap Z: with Z best, Z and Y are credited
        (X excluded by Z), in every order of arrival."""
        y = _claim("y", 0, 30, trust=2, grams=100, mode="walk")
        x = _claim("x", 20, 60, trust=1, grams=300)
        z = _claim("z", 50, 70, trust=0, grams=200)
        for order in itertools.permutations([y, x, z]):
            # incremental arrival: the rule over each prefix, the last one is what stays
            for n in range(1, 4):
                out = resolve(order[:n])
            assert out == {"z": None, "y": None, "x": "z"}

    def test_touching_trips_do_not_overlap_and_residents_never_do(self):
        a = _claim("a", 0, 10, trust=0, grams=1)
        b = _claim("b", 10, 20, trust=1, grams=1)
        other = Claim("o", "someone else", 0, 20, 2, 1, b"o", "op", "o", "bus")
        assert resolve([a, b, other]) == {"a": None, "b": None, "o": None}

    def test_a_pinned_claim_holds_whatever_its_rank(self):
        worse = _claim("w", 0, 10, trust=2, grams=100)
        better = _claim("b", 5, 15, trust=0, grams=100)
        assert resolve([worse, better], pinned=frozenset({"w"})) == {"w": None, "b": "w"}

    def test_rank_is_a_total_order_on_distinct_records(self):
        a, b = _claim("a", 0, 1, 0, 5), _claim("b", 0, 1, 0, 5)
        assert claim_rank(a) != claim_rank(b)

    def test_ranking_setting_is_validated(self):
        assert source_tiers(IngestSettings().source_ranking) == {
            "transit": 0,
            "bike_share": 0,
            "platform": 1,
            "app": 2,
        }
        with pytest.raises(msgspec.ValidationError, match="unknown operator kind 'bus'"):
            msgspec.convert({"source_ranking": "transit > bus"}, IngestSettings)
        with pytest.raises(msgspec.ValidationError, match="ranked twice"):
            msgspec.convert({"source_ranking": "app > platform, app"}, IngestSettings)


# --- through the pipeline and the signed operator API -------------------------------------------

Send = Callable[[str, list[CanonicalEvent], str | None], Awaitable[list[Any]]]


@pytest.fixture
async def sources(pool):
    """Ticketing (transit) and lock (bike_share) operators, two ride-code / MaaS platforms; the
    residents' app (self-reported tracks) is seeded."""
    await import_districts(pool)
    await operator(pool, "metro", "transit")
    await operator(pool, "bikes", "bike_share")
    await operator(pool, "ridecode", "platform")
    await operator(pool, "maas", "platform")


def _signed(body: bytes, op: str) -> dict[str, str]:
    headers = sign_request(SECRET, "POST", PATH, body, operator_id=op, key_id="k1")
    headers["Content-Type"] = "application/json"
    return headers


class City:
    """Three residents and their conflicting claims (labels name the expected outcome).

    Resident 1 (morning): the metro ride from the ticketing operator (m1) and the same ride
    from a ride-code platform claiming an inflated 30 km (q1: a cross-source duplicate, less
    trusted); a bike ride from the lock operator after it (b1); a self-reported walk
    overlapping both (a1). Noon: one bus ride from two platforms, equally trusted, one claiming
    12 km instead of 8 (p2 inflated, p1 conservative).
    Resident 2: a chain. A self-reported walk (y), a platform's metro ride overlapping it (x),
    the ticketing operator's ride overlapping x but not y (z): z and y are credited, x not.
    Resident 3: a ride-code duplicate of a metro ride (d2) and an unrelated bike ride (k1).
    """

    CREDITED: ClassVar[dict[int, set[str]]] = {
        1: {"m1", "b1", "p1"},
        2: {"z", "y"},
        3: {"d1", "k1"},
    }

    def __init__(self, pool: Any, tag: str) -> None:
        self.pool, self.tag = pool, tag
        self.rids: dict[int, str] = {}
        self.subjects: dict[tuple[int, str], str] = {}

    async def build(self) -> None:
        for n in (1, 2, 3):
            rid = await resident(self.pool)
            self.rids[n] = rid
            for op in ("metro", "bikes", "ridecode", "maas"):
                self.subjects[n, op] = await link(self.pool, rid, op)

    def claims(self) -> list[tuple[str, int | None, CanonicalEvent]]:
        """(operator, resident for the app, event), in one arbitrary order."""
        day = now().replace(hour=0, minute=0, second=0) - timedelta(days=1)
        h8, h12, h9 = day + timedelta(hours=8), day + timedelta(hours=12), day + timedelta(hours=9)
        s = self.subjects
        t = self.tag
        return [
            ("metro", None, metro(s[1, "metro"], f"{t}m1", start=h8, distance_m=10_000)),
            ("ridecode", None, metro(s[1, "ridecode"], f"{t}q1", start=h8 + M, distance_m=30_000)),
            ("bikes", None, bike(s[1, "bikes"], f"{t}b1", start=h8 + 30 * M, minutes=20)),
            ("resident-app", 1, walk("me", f"{t}a1", start=h8 + 15 * M, minutes=30)),
            ("ridecode", None, metro(s[1, "ridecode"], f"{t}p1", h12, 25, 8000, mode="bus")),
            ("maas", None, metro(s[1, "maas"], f"{t}p2", h12 + M, 23, 12_000, mode="bus")),
            ("resident-app", 2, walk("me", f"{t}y", start=h9, minutes=30, distance_m=2500)),
            ("ridecode", None, metro(s[2, "ridecode"], f"{t}x", h9 + 20 * M, 40, 15_000)),
            ("metro", None, metro(s[2, "metro"], f"{t}z", h9 + 50 * M, 20, 9000)),
            ("ridecode", None, metro(s[3, "ridecode"], f"{t}d2", h8, distance_m=11_000)),
            ("metro", None, metro(s[3, "metro"], f"{t}d1", h8 + M, distance_m=10_000)),
            ("bikes", None, bike(s[3, "bikes"], f"{t}k1", start=h12)),
        ]

    async def outcome(self) -> dict[int, tuple[set[str], tuple[int, int]]]:
        """Per resident: the labels of the credited claims and the ledger balances."""
        out = {}
        async with self.pool.acquire() as conn:
            for n, rid in self.rids.items():
                rows = await conn.fetch(
                    "SELECT record_id FROM behaviour_events WHERE resident_id = $1 "
                    "AND status = 'accepted'",
                    rid,
                )
                labels = {r["record_id"].removeprefix(self.tag) for r in rows}
                out[n] = (labels, await co2e_balance(self.pool, rid))
        return out


async def _send_api(
    client: Any, pool: Any, settings: Any, city: City, claim: tuple[Any, ...]
) -> None:
    op, app_resident, event = claim
    if op == APP_OPERATOR_ID:
        await run(pool, settings, [event], op_id=op, resident_id=city.rids[app_resident])
        return
    body = msgspec.json.encode({"events": [event]})
    r = await client.post(PATH, content=body, headers=_signed(body, op))
    assert r.status_code == 200, r.text


async def _send_pipeline(
    pool: Any, settings: Any, city: City, claims: list[tuple[Any, ...]]
) -> None:
    """One batch per (operator, resident for the app) group, in the given order."""
    for (op, n), group in itertools.groupby(claims, key=lambda c: (c[0], c[1])):
        events = [c[2] for c in group]
        await run(pool, settings, events, op_id=op, resident_id=city.rids[n] if n else None)


async def _assert_invariants(pool: Any) -> None:
    async with pool.acquire() as conn:
        pairs = await conn.fetchval(
            """
            SELECT count(*) FROM behaviour_events a JOIN behaviour_events b
              ON a.resident_id = b.resident_id AND a.id < b.id
             AND a.started_at < b.ended_at AND b.started_at < a.ended_at
            WHERE a.status = 'accepted' AND b.status = 'accepted'
              AND a.trip_key IS NOT NULL AND b.trip_key IS NOT NULL
            """
        )
        # every credited event has exactly its issuance standing; superseded ones none
        unbalanced = await conn.fetch(
            """
            SELECT e.id, e.status, e.reduction_g,
                   coalesce(sum(CASE WHEN t.kind = 'issuance' THEN t.amount
                                     ELSE -t.amount END), 0) AS net
            FROM behaviour_events e
            LEFT JOIN ledger_transfers t ON t.source_ref LIKE e.id::text || '%'
                 AND t.asset = 'CO2E_G' AND t.kind IN ('issuance', 'reversal')
            WHERE e.kind IS NOT NULL
            GROUP BY e.id, e.status, e.reduction_g
            HAVING coalesce(sum(CASE WHEN t.kind = 'issuance' THEN t.amount
                                     ELSE -t.amount END), 0)
                   <> CASE WHEN e.status = 'accepted' THEN e.reduction_g ELSE 0 END
            """
        )
        report = await audit(conn)
    assert pairs == 0
    assert unbalanced == []
    assert report.ok, report


@pytest.mark.usefixtures("strict_lock_order")
class TestOrderIndependence:
    async def test_two_orders_end_with_the_same_credits(self, client, pool, settings, sources):
        forward, backward = City(pool, "f-"), City(pool, "b-")
        await forward.build()
        await backward.build()
        # Forward: one record per signed operator request, in the listed order.
        for claim in forward.claims():
            await _send_api(client, pool, settings, forward, claim)
        # Backward: the reverse order, batched per source, through the pipeline.
        await _send_pipeline(pool, settings, backward, list(reversed(backward.claims())))
        async with pool.acquire() as conn:
            displaced = await conn.fetch(
                "SELECT record_id FROM behaviour_events WHERE status = 'superseded' ORDER BY 1"
            )
        # Both orders displaced earlier credits on the way (and forward reinstated y).
        assert [r["record_id"] for r in displaced] == ["b-a1", "b-p2", "b-q1", "f-d2", "f-x"]
        got_f, got_b = await forward.outcome(), await backward.outcome()
        assert {n: labels for n, (labels, _) in got_f.items()} == City.CREDITED
        assert got_f == got_b
        # the figures themselves: resident 1 is m1 10 km metro 467 g, b1 4 km bike 373 g,
        # p1 8 km bus 215 g
        assert got_f[1][1][0] == 467 + 373 + 215
        await _assert_invariants(pool)

    async def test_two_concurrent_streams_converge(self, pool, settings, sources):
        """The operators' stream and the platforms' and the app's, at the same time, twice with
        the streams in opposite orders: the residents' locks serialise each person's batches,
        and whichever interleaving happens the rule's result is the same."""
        cities = [City(pool, "c1-"), City(pool, "c2-")]
        for c in cities:
            await c.build()

        async def stream(city: City, claims: list[tuple[Any, ...]]) -> None:
            for op, n, event in claims:
                rid = city.rids[n] if n else None
                # No retry: batches that reverse and issue lock in one global order
                # (docs/ledger.md, "Locks across more than one call in a transaction").
                await run(pool, settings, [event], op_id=op, resident_id=rid)
                await asyncio.sleep(0)

        jobs = []
        for i, city in enumerate(cities):
            claims = city.claims()
            trusted = [c for c in claims if c[0] in ("metro", "bikes")]
            others = [c for c in claims if c[0] not in ("metro", "bikes")]
            if i:
                trusted.reverse()
            else:
                others.reverse()
            jobs += [stream(city, trusted), stream(city, others)]
        await asyncio.gather(*jobs)
        first, second = [await c.outcome() for c in cities]
        assert {n: labels for n, (labels, _) in first.items()} == City.CREDITED
        assert first == second
        await _assert_invariants(pool)


@pytest.mark.usefixtures("strict_lock_order")
class TestDisplacement:
    async def test_a_later_better_claim_displaces_the_credit(self, pool, settings, sources):
        rid = await resident(pool)
        q, m = await link(pool, rid, "ridecode"), await link(pool, rid, "metro")
        start = now() - timedelta(hours=3)
        [early] = await run(pool, settings, [metro(q, "q1", start=start)], op_id="ridecode")
        assert early.status == "accepted" and await co2e_balance(pool, rid) == (467, 46)
        [better] = await run(
            pool, settings, [metro(m, "m1", start=start + M, distance_m=9000)], op_id="metro"
        )
        assert better.status == "accepted" and better.reduction_g == 420
        assert await co2e_balance(pool, rid) == (420, 42)
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT * FROM behaviour_events WHERE id = $1", early.event_id
            )
            reversal = await conn.fetch(
                "SELECT asset, amount, reason_code FROM ledger_transfers "
                "WHERE kind = 'reversal' ORDER BY asset"
            )
            view = await reads.event(conn, rid, early.event_id)
        assert (row["status"], row["reason_code"]) == ("superseded", "superseded_by_source")
        assert (row["reduction_g"], row["points"], str(row["superseded_by"])) == (
            0,
            0,
            better.event_id,
        )
        history = row["history"]
        assert [(h["status"], h["reduction_g"], h["points"]) for h in history] == [
            ("accepted", 467, 46)
        ]
        assert [tuple(r) for r in reversal] == [
            ("CO2E_G", 467, "superseded_by_source"),
            ("POINT", 46, "superseded_by_source"),
        ]
        # The resident reads it as no longer credited, with the reason.
        assert view is not None
        assert (view.status, view.reason_code) == ("rejected", "superseded_by_source")
        # A resend of the displaced record is a duplicate carrying its present verdict.
        [again] = await run(pool, settings, [metro(q, "q1", start=start)], op_id="ridecode")
        assert (again.status, again.reason_code, again.points) == (
            "duplicate",
            "superseded_by_source",
            0,
        )
        await _assert_invariants(pool)

    async def test_a_later_worse_claim_is_refused_naming_what_holds(self, pool, settings, sources):
        rid = await resident(pool)
        m, b = await link(pool, rid, "metro"), await link(pool, rid, "ridecode")
        start = now() - timedelta(hours=3)
        await run(pool, settings, [metro(m, "m1", start=start)], op_id="metro")
        same, other = await run(
            pool,
            settings,
            [
                metro(b, "q1", start=start + M),  # the same ride: a duplicate from elsewhere
                metro(b, "q2", start=start + 5 * M, mode="bus", distance_m=3000),  # another
            ],
            op_id="ridecode",
        )
        assert same.reason_code == "overlapping_activity"
        assert other.reason_code == "claim_outranked"
        assert await co2e_balance(pool, rid) == (467, 46)

    async def test_a_chain_reinstates_a_claim_whose_holder_was_displaced(
        self, pool, settings, sources
    ):
        """y credited, x displaces y, z displaces x: y holds its time again (a new credit,
        its own ledger reference) and is counted once."""
        rid = await resident(pool)
        q, m = await link(pool, rid, "ridecode"), await link(pool, rid, "metro")
        h = now() - timedelta(hours=5)
        await run(pool, settings, [metro(q, "y", h, 30, 5000, mode="bus")], op_id="ridecode")
        await run(pool, settings, [metro(m, "x", h + 20 * M, 40, 3000)], op_id="metro")
        assert await co2e_balance(pool, rid) == (140, 14)  # y reversed, x: 46.7 x 3 km
        await operator(pool, "rail", "transit")
        r = await link(pool, rid, "rail")
        [z] = await run(pool, settings, [metro(r, "z", h + 50 * M, 20, 2000)], op_id="rail")
        assert z.status == "accepted"
        async with pool.acquire() as conn:
            rows = {
                r["record_id"]: r
                for r in await conn.fetch(
                    "SELECT record_id, status, reduction_g, credit_seq FROM behaviour_events"
                )
            }
        # x and z are both metro/transit, tier 0: x (140 g) vs z (93 g): z is more conservative
        assert rows["x"]["status"] == "superseded"
        assert (rows["y"]["status"], rows["y"]["reduction_g"], rows["y"]["credit_seq"]) == (
            "accepted",
            134,
            1,
        )
        assert await co2e_balance(pool, rid) == (134 + 93, 22)
        await _assert_invariants(pool)

    async def test_points_already_spent_keep_the_credit_and_refuse_the_displacement(
        self, pool, settings, sources
    ):
        rid = await resident(pool)
        q, m = await link(pool, rid, "ridecode"), await link(pool, rid, "metro")
        start = now() - timedelta(hours=3)
        [early] = await run(pool, settings, [metro(q, "q1", start=start)], op_id="ridecode")
        async with transaction(pool) as tx:  # the resident spends (holds) every point
            await place_hold(
                tx,
                TransferRequest(
                    idempotency_key="spend",
                    asset="POINT",
                    debit=Owner("resident", rid),
                    credit=Owner("merchant", "shop"),
                    amount=46,
                    kind="redemption",
                    reason_code="redemption",
                    region_code="440300",
                    occurred_at=now(),
                ),
                policy(settings).points,
            )
        [later] = await run(pool, settings, [metro(m, "m1", start=start + M)], op_id="metro")
        assert (later.status, later.reason_code) == ("rejected", "displacement_points_spent")
        assert await co2e_balance(pool, rid) == (467, 46)
        async with pool.acquire() as conn:
            status = await conn.fetchval(
                "SELECT status FROM behaviour_events WHERE id = $1", early.event_id
            )
        assert status == "accepted"
        await _assert_invariants(pool)
