"""Employee commuting programmes (enterprises.commuting, reporting.commuting; docs/commuting.md):
an enterprise creates a programme through its API (default rule from the data file, employee
codes and an invitation token shown once); residents join from the app with explicit consent
and leave at once; the enterprise sees only protected totals of current members (nothing below
the minimum group size, small cells suppressed, a leaver gone from the next read); bonus points
are paid from the enterprise's own POINT account, once per trip whatever the number of runs, and
an underfunded run pays nothing and says why; the funding is a government administrator's
audited act. The ledger audit runs after every test (tests/conftest.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from enterprises import commuting
from enterprises.commuting_errors import AlreadyMember, CodeInvalid
from enterprises.commuting_schemas import CommutingJoin, RuleIn, Window
from enterprises.commuting_tasks import bonuses_body
from kit.db import transaction
from kit.errors import InvalidInput
from points import service as ledger
from points.schemas import PointsPolicy
from reporting import audit
from reporting import commuting as commuting_reports
from reporting.commuting import FundingIn
from tests.enterprises.api import Admin, admin, signed_in
from tests.gov.factories import bearer, gov_user
from tests.residents.factories import resident

ZONE = ZoneInfo("Asia/Shanghai")
MOBILE = "/api/mobile/v1"
CONSENT = commuting.data().consent_version


def _monday() -> datetime:
    """08:00 programme time on the Monday three weeks back: inside the default rule."""
    today = datetime.now(ZONE).date()
    d = today - timedelta(days=today.weekday() + 21)
    return datetime(d.year, d.month, d.day, 8, tzinfo=ZONE)


MONDAY = _monday()
MONTH = f"{MONDAY.year:04d}-{MONDAY.month:02d}"


async def _trip(
    pool: Any,
    rid: str,
    *,
    at: datetime = MONDAY,
    mode: str = "metro",
    points: int = 50,
    distance_m: int = 10_000,
    grams: int = 467,
    received: datetime | None = None,
) -> uuid.UUID:
    """An accepted trip of ``rid`` (as the pipeline stores one), received now by default."""
    event_id = uuid.uuid4()
    async with pool.acquire() as conn:
        await conn.execute(
            """
            INSERT INTO behaviour_events (id, operator_id, record_id, subject_ref, resident_id,
                kind, mode, behaviour, started_at, ended_at, received_at, status, distance_m,
                reduction_g, points)
            VALUES ($1, 'metro', $2, 's', $3, 'transit_trip', $4, 'transit', $5::timestamptz,
                    $5::timestamptz + interval '20 minutes', $6, 'accepted', $7, $8, $9)
            """,
            event_id,
            str(event_id),
            uuid.UUID(rid),
            mode,
            at,
            received or datetime.now(UTC),
            distance_m,
            grams,
            points,
        )
    return event_id


async def _programme(client: Any, boss: Admin, codes: list[str], **body: Any) -> dict[str, Any]:
    r = await client.post(
        f"{boss.base}/commuting-programmes",
        json={"name": "绿色通勤", "employee_codes": codes, **body},
        headers={**boss.headers, "Idempotency-Key": uuid.uuid4().hex},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def _join(pool: Any, rid: str, programme_id: str, code: str, at: datetime) -> None:
    async with transaction(pool) as tx:
        await commuting.join(
            tx,
            rid,
            CommutingJoin(
                consent_version=CONSENT, programme_id=uuid.UUID(programme_id), employee_code=code
            ),
            now=at,
        )


async def _members(pool: Any, programme_id: str, n: int, first: int = 1) -> list[str]:
    """``n`` residents joined with codes E-<first>... a day before MONDAY, one trip each."""
    out = []
    for i in range(first, first + n):
        rid = await resident(pool)
        await _join(pool, rid, programme_id, f"E-{i}", MONDAY - timedelta(days=1))
        await _trip(pool, rid)
        out.append(rid)
    return out


async def _aggregates(client: Any, boss: Admin, programme_id: str) -> dict[str, Any]:
    r = await client.get(
        f"{boss.base}/commuting-programmes/{programme_id}/aggregates",
        params={"start_month": MONTH, "end_month": MONTH},
        headers=boss.headers,
    )
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def _rows(agg: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["month"], r["mode"]): r for r in agg["rows"]}


async def _points(pool: Any, owner_type: str, owner_id: str) -> int:
    async with pool.acquire() as conn:
        return next(
            b.available
            for b in await ledger.balances(conn, owner_type, owner_id)
            if b.asset == "POINT"
        )


async def _fund(pool: Any, settings: Any, enterprise_id: uuid.UUID, points: int) -> None:
    policy = PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
    async with transaction(pool) as tx:
        await commuting_reports.fund_enterprise(
            tx,
            policy,
            enterprise_id,
            FundingIn(points=points, reference="INV-1"),
            actor="cli:test",
            request_key=uuid.uuid4().hex,
            region_code=settings.region_code,
        )


class TestProgrammes:
    async def test_default_rule_codes_hashed_and_the_token_shown_once(self, client, pool):
        boss = await signed_in(client, await admin(pool))
        key = uuid.uuid4().hex
        body = {"name": "Green commute", "employee_codes": ["E-1", "E-2", "E-2"]}
        headers = {**boss.headers, "Idempotency-Key": key}
        r = await client.post(f"{boss.base}/commuting-programmes", json=body, headers=headers)
        assert r.status_code == 201, r.text
        p = r.json()
        default = commuting.data().default_rule
        assert p["rule"]["multiplier"] == default.multiplier == "1.2"
        assert p["rule"]["modes"] == default.modes
        assert p["rule"]["windows"] == [
            {"start": "07:00", "end": "10:00"},
            {"start": "16:30", "end": "20:00"},
        ]
        assert p["employee_codes"] == 2 and p["invitation"] is True
        assert p["funding_account"] == {
            "owner_type": "enterprise",
            "owner_id": str(boss.enterprise.id),
            "asset": "POINT",
        }
        token = p["invitation_token"]
        assert isinstance(token, str) and len(token) >= 43
        # A retry answers the same programme, without the token (only its hash is kept).
        again = await client.post(f"{boss.base}/commuting-programmes", json=body, headers=headers)
        assert again.status_code == 201 and again.json()["id"] == p["id"]
        assert again.json()["invitation_token"] is None
        async with pool.acquire() as conn:
            stored = await conn.fetchval(
                "SELECT count(*) FROM idempotency_keys WHERE convert_from(response, 'UTF8') "
                "LIKE '%' || $1 || '%'",
                token,
            )
            codes = await conn.fetch("SELECT code_hash FROM commuting_employee_codes")
        assert stored == 0
        assert {bytes(c["code_hash"]) for c in codes} == {
            commuting.code_hash(uuid.UUID(p["id"]), c) for c in ("E-1", "E-2")
        }
        # Same name again: refused with its own code; a mode that is not a commuting mode too.
        r = await client.post(
            f"{boss.base}/commuting-programmes",
            json={"name": "Green commute"},
            headers=boss.headers,
        )
        assert r.status_code == 409 and r.json()["code"] == "commuting_programme_exists"
        r = await client.post(
            f"{boss.base}/commuting-programmes",
            json={"name": "Cars", "rule": {"modes": ["nev"]}},
            headers=boss.headers,
        )
        assert r.status_code == 400 and r.json()["code"] == "validation_failed"
        # Another enterprise never sees it.
        other = await signed_in(client, await admin(pool, 2))
        r = await client.get(f"{other.base}/commuting-programmes/{p['id']}", headers=other.headers)
        assert r.status_code == 404 and r.json()["code"] == "commuting_programme_not_found"

    def test_the_rule_is_checked(self):
        with pytest.raises(InvalidInput):
            commuting.resolve_rule(RuleIn(windows=[Window(start="10:00", end="07:00")]))
        with pytest.raises(InvalidInput):
            commuting.resolve_rule(RuleIn(weekdays=[1, 1]))
        rule = commuting.resolve_rule(RuleIn(multiplier="1.5", modes=["bus"]))
        assert rule.multiplier == "1.5" and rule.modes == ["bus"]
        assert commuting.bonus_of(47, "1.2") == 9  # floor(0.2 x 47)
        assert commuting.bonus_of(4, "1.2") == 0
        assert commuting.bonus_of(10, "2") == 10


class TestPrivacy:
    async def test_four_members_see_nothing_five_see_totals_and_a_leaver_is_gone_at_once(
        self, client, pool
    ):
        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, [f"E-{i}" for i in range(1, 8)])
        pid = p["id"]
        members = await _members(pool, pid, 4)
        # Trips that never count: outside the windows, a weekend, a car, before joining.
        await _trip(pool, members[0], at=MONDAY.replace(hour=12))
        await _trip(pool, members[0], at=MONDAY + timedelta(days=5))
        await _trip(pool, members[1], at=MONDAY + timedelta(hours=1), mode="nev")
        agg = await _aggregates(client, boss, pid)
        assert agg["status"] == "suppressed" and agg["participants"] is None
        assert agg["rows"] == [] and agg["min_group_size"] == 5

        fifth = (await _members(pool, pid, 1, first=5))[0]
        late = await resident(pool)
        await _trip(pool, late, at=MONDAY - timedelta(hours=1))  # before it joins
        await _join(pool, late, pid, "E-6", MONDAY)
        agg = await _aggregates(client, boss, pid)
        assert agg["status"] == "ok" and agg["participants"] == 6
        rows = _rows(agg)
        assert rows[(MONTH, "metro")] == {
            "month": MONTH,
            "mode": "metro",
            "status": "ok",
            "trips": 5,
            "distance_m": 50_000,
            "reduction_g": 5 * 467,
            "points": 250,
        }
        assert rows[("*", "*")]["trips"] == 5
        # One member's bus trip is a cell of one resident: suppressed, and so many others that
        # no published total gives it away.
        await _trip(pool, fifth, at=MONDAY + timedelta(hours=9), mode="bus", points=30)
        rows = _rows(await _aggregates(client, boss, pid))
        assert rows[(MONTH, "bus")]["status"] == "suppressed"
        assert rows[(MONTH, "bus")]["trips"] is None
        month_line = [rows[(MONTH, m)] for m in ("bus", "metro", "*")]
        assert sum(r["status"] == "suppressed" for r in month_line) >= 2
        assert all(r["status"] == "suppressed" or r["trips"] is not None for r in rows.values())
        # Leaving: the next read has one member fewer; below five, nothing at all.
        async with transaction(pool) as tx:
            await commuting.leave(tx, late, uuid.UUID(pid))
        assert (await _aggregates(client, boss, pid))["participants"] == 5
        async with transaction(pool) as tx:
            await commuting.leave(tx, members[0], uuid.UUID(pid))
        agg = await _aggregates(client, boss, pid)
        assert agg["status"] == "suppressed" and agg["rows"] == []

    async def test_months_are_bounded(self, client, pool):
        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, [])
        base = f"{boss.base}/commuting-programmes/{p['id']}/aggregates"
        for start, end in (("2026-05", "2026-04"), ("2020-01", "2026-01"), ("9999-12", "9999-12")):
            r = await client.get(
                base, params={"start_month": start, "end_month": end}, headers=boss.headers
            )
            assert r.status_code == 400, (start, end, r.text)


class TestJoiningFromTheApp:
    async def test_consent_is_required_and_join_and_leave_are_idempotent(
        self, client, pool, jwt_keys
    ):
        from kit.auth import Role

        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, ["E-1"])
        rid = await resident(pool, "440305")
        me = {
            "Authorization": "Bearer "
            + jwt_keys.issue(rid, Role.RESIDENT, 600, extra={"typ": "access"})
        }
        r = await client.get(f"{MOBILE}/commuting/consent", headers={**me, "Accept-Language": "en"})
        assert r.status_code == 200 and r.json()["version"] == CONSENT
        assert r.json()["language"] == "en" and "employer" in r.json()["text"]
        join = {"invitation_token": p["invitation_token"]}
        for version in (None, "1999-01-01"):
            body = join if version is None else {**join, "consent_version": version}
            r = await client.post(f"{MOBILE}/commuting/memberships", json=body, headers=me)
            assert r.status_code in (400, 422), r.text
            if version:
                assert r.json()["code"] == "commuting_consent_required"
                assert r.json()["extra"]["consent_version"] == CONSENT
        body = {**join, "consent_version": CONSENT}
        first = await client.post(f"{MOBILE}/commuting/memberships", json=body, headers=me)
        assert first.status_code == 200, first.text
        assert first.json()["active"] is True and first.json()["via"] == "invitation"
        assert first.json()["enterprise_name"] == boss.enterprise.name
        again = await client.post(f"{MOBILE}/commuting/memberships", json=body, headers=me)
        assert again.json() == first.json()
        left = f"{MOBILE}/commuting/memberships/{p['id']}"
        assert (await client.delete(left, headers=me)).status_code == 204
        assert (await client.delete(left, headers=me)).status_code == 204
        mine = (await client.get(f"{MOBILE}/commuting/memberships", headers=me)).json()
        assert [m["active"] for m in mine] == [False] and mine[0]["left_at"] is not None
        async with pool.acquire() as conn:
            log = await conn.fetch(
                "SELECT action, consent_version FROM commuting_consents ORDER BY id"
            )
        assert [(r["action"], r["consent_version"]) for r in log] == [
            ("join", CONSENT),
            ("leave", None),
        ]
        # Leaving a programme one was never in; a wrong token; a used code.
        r = await client.delete(f"{MOBILE}/commuting/memberships/{uuid.uuid4()}", headers=me)
        assert r.status_code == 404 and r.json()["code"] == "commuting_programme_not_found"
        r = await client.post(
            f"{MOBILE}/commuting/memberships",
            json={"invitation_token": "x" * 43, "consent_version": CONSENT},
            headers=me,
        )
        assert r.status_code == 422 and r.json()["code"] == "commuting_code_invalid"

    async def test_codes_are_one_residents_and_one_programme_at_a_time(self, client, pool):
        boss = await signed_in(client, await admin(pool))
        a = await _programme(client, boss, ["E-1"], name="A")
        b = await _programme(client, boss, ["E-1"], name="B")
        first, second = await resident(pool), await resident(pool)
        await _join(pool, first, a["id"], "E-1", MONDAY)
        await _join(pool, first, a["id"], "E-1", MONDAY)  # the same resident again: unchanged
        # Already in: another code is not used up by a second join.
        async with transaction(pool) as tx:
            await commuting.add_codes(tx, boss.enterprise.id, uuid.UUID(a["id"]), ["E-9"])
        await _join(pool, first, a["id"], "E-9", MONDAY)
        await _join(pool, second, a["id"], "E-9", MONDAY)
        async with transaction(pool) as tx:
            await commuting.leave(tx, second, uuid.UUID(a["id"]))
        with pytest.raises(CodeInvalid):
            await _join(pool, second, a["id"], "E-1", MONDAY)
        with pytest.raises(AlreadyMember):
            await _join(pool, first, b["id"], "E-1", MONDAY)
        async with transaction(pool) as tx:
            await commuting.leave(tx, first, uuid.UUID(a["id"]))
        await _join(pool, first, b["id"], "E-1", MONDAY)  # after leaving A
        async with pool.acquire() as conn:
            assert [m.programme_id for m in await commuting.memberships(conn, first)] == [
                uuid.UUID(b["id"]),
                uuid.UUID(a["id"]),
            ]


class TestBonuses:
    async def test_paid_once_per_trip_across_runs_from_the_enterprise(self, client, pool, settings):
        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, [f"E-{i}" for i in range(1, 4)])
        members = await _members(pool, p["id"], 2)  # one metro trip each, 50 points
        await _trip(pool, members[0], at=MONDAY.replace(hour=12))  # outside the windows
        eid = boss.enterprise.id
        await _fund(pool, settings, eid, 100)
        assert await bonuses_body(pool, settings) == {"paid": 1, "underfunded": 0, "nothing": 0}
        assert [await _points(pool, "resident", m) for m in members] == [10, 10]
        assert await _points(pool, "enterprise", str(eid)) == 80
        # The second run finds the same trips (the look-back overlap) and pays nothing again.
        assert await bonuses_body(pool, settings) == {"paid": 0, "underfunded": 0, "nothing": 1}
        assert await _points(pool, "enterprise", str(eid)) == 80
        await _trip(pool, members[1], at=MONDAY + timedelta(days=1), points=47)
        assert (await bonuses_body(pool, settings))["paid"] == 1
        assert await _points(pool, "resident", members[1]) == 19
        async with pool.acquire() as conn:
            paid = await conn.fetch("SELECT event_id, points FROM commuting_bonuses")
            # The bonus is the resident's own points: a lot that expires like earned ones.
            lots = await ledger.expiring(conn, "resident", members[1], within_days=3650)
        assert sorted(r["points"] for r in paid) == [9, 10, 10]
        assert sum(lot.amount for lot in lots) == 19
        r = await client.get(
            f"{boss.base}/commuting-programmes/{p['id']}/bonus-runs", headers=boss.headers
        )
        # Two members, fewer than the group minimum: the runs show no trips or points.
        assert [(x["status"], x["trips"], x["points"]) for x in r.json()] == [
            ("paid", None, None),
            ("paid", None, None),
        ]
        async with pool.acquire() as conn:
            runs = await commuting.bonus_runs(conn, eid, uuid.UUID(p["id"]), limit=5)
        assert [(x.status, x.trips, x.points) for x in runs] == [("paid", 1, 9), ("paid", 2, 20)]
        # A member who left earns nothing for a trip received after leaving.
        async with transaction(pool) as tx:
            await commuting.leave(tx, members[0], uuid.UUID(p["id"]))
        await _trip(pool, members[0], at=MONDAY + timedelta(days=2))
        assert (await bonuses_body(pool, settings))["nothing"] == 1
        assert await _points(pool, "resident", members[0]) == 10

    async def test_underfunded_pays_nothing_and_records_why(self, client, pool, settings):
        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, ["E-1", "E-2"])
        members = await _members(pool, p["id"], 2)
        eid = boss.enterprise.id
        await _fund(pool, settings, eid, 15)
        assert (await bonuses_body(pool, settings))["underfunded"] == 1
        assert [await _points(pool, "resident", m) for m in members] == [0, 0]
        assert await _points(pool, "enterprise", str(eid)) == 15
        async with pool.acquire() as conn:
            [run] = await commuting.bonus_runs(conn, eid, uuid.UUID(p["id"]), limit=5)
        assert (run.status, run.points, run.available, run.trips) == ("underfunded", 20, 15, 2)
        assert run.reason is not None and "15" in run.reason
        # The same shortfall at the next run is not recorded again.
        assert (await bonuses_body(pool, settings))["underfunded"] == 1
        async with pool.acquire() as conn:
            assert len(await commuting.bonus_runs(conn, eid, uuid.UUID(p["id"]), limit=5)) == 1
        # Funded, the same trips are paid at the next run.
        await _fund(pool, settings, eid, 5)
        assert (await bonuses_body(pool, settings))["paid"] == 1
        assert [await _points(pool, "resident", m) for m in members] == [10, 10]
        assert await _points(pool, "enterprise", str(eid)) == 0


class TestFunding:
    async def test_a_gov_administrator_funds_the_enterprise_audited(self, client, pool, settings):
        boss = await admin(pool)
        _, token = await gov_user(pool, settings, role="gov_admin")
        url = f"/api/gov/v1/admin/enterprises/{boss.enterprise.id}/points"
        headers = {**bearer(token), "Idempotency-Key": "buy-1"}
        body = {"points": 5000, "reference": "INV-2026-0042"}
        r = await client.post(url, json=body, headers=headers)
        assert r.status_code == 201, r.text
        again = await client.post(url, json=body, headers=headers)
        assert again.json() == r.json() and r.json()["available_points"] == 5000
        assert await _points(pool, "enterprise", str(boss.enterprise.id)) == 5000
        assert await _points(pool, "system", "enterprise_points_sales") == -5000
        async with pool.acquire() as conn:
            [entry] = await audit.entries(conn, action="enterprise.points_fund")
            t = await ledger.get_transfer(conn, r.json()["transfer_id"])
        assert entry.target == str(boss.enterprise.id) and entry.after["points"] == 5000
        assert t.source_ref == "purchase:INV-2026-0042" and t.asset == "POINT"
        r = await client.post(
            f"/api/gov/v1/admin/enterprises/{uuid.uuid4()}/points",
            json=body,
            headers={**bearer(token), "Idempotency-Key": "buy-2"},
        )
        assert r.status_code == 404 and r.json()["code"] == "enterprise_not_found"
        r = await client.post(url, json=body)
        assert r.status_code == 401
        r = await client.post(url, json=body, headers=bearer(token))  # no Idempotency-Key
        assert r.status_code == 400


class TestConcurrentRuns:
    async def test_two_runs_at_once_pay_each_trip_once(self, client, pool, settings):
        import asyncio

        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, ["E-1", "E-2", "E-3"])
        members = await _members(pool, p["id"], 3)
        await _fund(pool, settings, boss.enterprise.id, 1000)
        done = await asyncio.gather(bonuses_body(pool, settings), bonuses_body(pool, settings))
        assert sorted(d["paid"] for d in done) == [0, 1]
        assert [await _points(pool, "resident", m) for m in members] == [10, 10, 10]
        assert await _points(pool, "enterprise", str(boss.enterprise.id)) == 970


class TestThroughThePipeline:
    async def test_a_metro_trip_ingested_earns_its_points_and_the_bonus(
        self, client, pool, settings
    ):
        from tests.behaviours.factories import linked, metro, operator, run

        now = datetime.now(ZONE)
        day = now - timedelta(days=1)
        while day.weekday() >= 5:  # the last working day before today
            day -= timedelta(days=1)
        start = day.replace(hour=8, minute=5, second=0, microsecond=0)
        boss = await signed_in(client, await admin(pool))
        p = await _programme(client, boss, ["E-1"])
        await operator(pool, "metro")
        rid, subject = await linked(pool, "metro")
        await _join(pool, rid, p["id"], "E-1", start - timedelta(days=1))
        [verdict] = await run(pool, settings, [metro(subject, "m1", start=start)])
        assert verdict.status == "accepted", verdict
        earned = await _points(pool, "resident", rid)
        assert earned > 0
        await _fund(pool, settings, boss.enterprise.id, 1000)
        assert (await bonuses_body(pool, settings))["paid"] == 1
        assert await _points(pool, "resident", rid) == earned + commuting.bonus_of(earned, "1.2")
