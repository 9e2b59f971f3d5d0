"""Factories for behaviour tests: operators with keys, residents, links, events, runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from behaviours import service
from behaviours.events import BikeTrip, DailySteps, Point, Source, TransitTrip, Walk
from kit.db import transaction
from server.app import ingest_policy
from server.settings import PrivacySettings
from tests.residents.factories import resident as residents_factory

DATA = Path(__file__).parent.parent / "integrations" / "data"
SECRET = "op-secret-0123456789abcdef"


_test_now: datetime | None = None


def now() -> datetime:
    """This test's "now" (whole seconds): taken at its first use and kept for the rest of the
    test (tests/conftest.py resets it), so two records a test builds alike are alike to the
    second; a resend must be the same content (the record digest), whatever the clock did."""
    global _test_now
    if _test_now is None:
        _test_now = datetime.now(UTC).replace(microsecond=0)
    return _test_now


def reset_now() -> None:
    global _test_now
    _test_now = None


async def operator(pool: Any, op_id: str = "metro", kind: Any = "transit", feed: str | None = None):
    async with transaction(pool) as tx:
        await service.register_operator(
            tx,
            op_id,
            name=op_id.title(),
            kind=kind,
            region_code="440300",
            gtfs_feed=feed,
        )
        await service.add_signing_key(tx, op_id, "k1", SECRET, privacy=PrivacySettings())


async def resident(pool: Any, district: str | None = "440303") -> str:
    return await residents_factory(pool, district)


async def link(pool: Any, rid: str, op_id: str, scope: list[str] | None = None, days: int = 30):
    """Link and backdate the consent by ``days`` (events in tests happen in the past)."""
    async with transaction(pool) as tx:
        ln = await service.link_operator(tx, rid, op_id, scope or ["*"])
        await tx.conn.execute(
            "UPDATE operator_links SET granted_at = now() - make_interval(days => $3) "
            "WHERE resident_id = $1 AND operator_id = $2",
            rid,
            op_id,
            days,
        )
    return ln.subject_ref


async def linked(pool: Any, op_id: str = "metro", **kw: Any) -> tuple[str, str]:
    rid = await resident(pool)
    return rid, await link(pool, rid, op_id, **kw)


def policy(settings: Any) -> service.IngestPolicy:
    """The ingestion policy of the test settings (as the app builds it at start-up)."""
    return ingest_policy(settings)


async def run(pool, settings, events, op_id="metro", resident_id=None, at=None):
    async with transaction(pool) as tx:
        return await service.ingest(
            tx,
            Source(operator_id=op_id, resident_id=resident_id),
            events,
            policy=policy(settings),
            now=at,
        )


def metro(
    subject: str,
    rid: str = "r1",
    start: datetime | None = None,
    minutes: int = 20,
    distance_m: int | None = 10_000,
    mode: str = "metro",
    **kw: Any,
) -> TransitTrip:
    start = start or now() - timedelta(hours=2)
    return TransitTrip(
        record_id=rid,
        subject=subject,
        mode=mode,  # type: ignore[arg-type]
        boarded_at=start,
        alighted_at=start + timedelta(minutes=minutes),
        distance_m=distance_m,
        **kw,
    )


def bike(
    subject: str,
    rid: str = "b1",
    start: datetime | None = None,
    minutes: int = 20,
    distance_m: int | None = 4000,
    a=(22.55, 114.02),
    b=(22.55, 114.05),
    mode="shared_bike",
):
    start = start or now() - timedelta(hours=2)
    return BikeTrip(
        record_id=rid,
        subject=subject,
        mode=mode,
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        start=Point(*a),
        end=Point(*b),
        distance_m=distance_m,
    )


def walk(
    subject: str,
    rid: str = "w1",
    start: datetime | None = None,
    minutes: int = 40,
    distance_m: int = 3000,
) -> Walk:
    start = start or now() - timedelta(hours=2)
    return Walk(
        record_id=rid,
        subject=subject,
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        start=Point(22.55, 114.02),
        end=Point(22.56, 114.03),
        distance_m=distance_m,
    )


def steps(subject: str, rid: str = "st1", steps_n: int = 8000, day=None) -> DailySteps:
    return DailySteps(
        record_id=rid, subject=subject, day=day or (now() - timedelta(days=1)).date(), steps=steps_n
    )


async def co2e_balance(pool: Any, rid: str) -> tuple[int, int]:
    from points.service import balances

    async with pool.acquire() as conn:
        b = {x.asset: x.posted for x in await balances(conn, "resident", rid)}
    return b["CO2E_G"], b["POINT"]


async def import_districts(pool: Any) -> None:
    from integrations.districts import read_districts_file

    async with transaction(pool) as tx:
        await service.import_districts(tx, read_districts_file(DATA / "districts.geojson"))


async def import_gtfs(pool: Any, feed: str = "city") -> None:
    from integrations.gtfs import read_feed

    async with transaction(pool) as tx:
        await service.import_gtfs(tx, feed, *read_feed(DATA / "gtfs"))
