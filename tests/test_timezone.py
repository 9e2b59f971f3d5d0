"""The programme's time zone (``TANPUHUI_TIMEZONE``, default Asia/Shanghai) governs every
calendar: days for the daily caps and the daily steps, months for the monthly figures, years
for points' expiry. Tests at midnight and at month and year boundaries in China time, one with
another programme zone (the day boundary moves with it), and proof that the machine's own zone
plays no part: the same tests run again in subprocesses with ``TZ=America/New_York`` and
``TZ=UTC`` (:func:`test_the_machine_zone_plays_no_part`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from behaviours import repository
from behaviours.events import DailySteps
from behaviours.rules import Item, programme_day
from kit.db import transaction
from points import service as points_service
from points.schemas import PointsPolicy
from server.app import ingest_policy
from server.mobile import service as mobile
from server.settings import Settings, SettingsError
from tests.behaviours.factories import (
    import_districts,
    link,
    metro,
    operator,
    resident,
    run,
    walk,
)
from tests.behaviours.factories import now as real_now
from tests.points.factories import issuance

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHILD = "TANPUHUI_TEST_TZ_CHILD"  # set in the subprocesses: they never start subprocesses


def in_zone(settings: Settings, zone: str) -> Settings:
    return msgspec.structs.replace(settings, timezone=zone)


def local(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    """A wall-clock time of ``zone``, as an aware UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def linked_since(pool: Any, op_id: str, since: datetime) -> tuple[str, str]:
    """A resident linked to ``op_id`` with the consent backdated to before ``since``."""
    rid = await resident(pool)
    days = max((real_now() - since).days, 0) + 30
    return rid, await link(pool, rid, op_id, days=days)


# --- the setting ---------------------------------------------------------------------------


def test_the_setting_defaults_to_china_time_and_takes_only_known_zones():
    assert Settings.from_env({}).timezone == "Asia/Shanghai"
    assert Settings.from_env({"TANPUHUI_TIMEZONE": "Europe/Berlin"}).timezone == "Europe/Berlin"
    for wrong in ("Mars/Olympus", "+08:00", "../../etc/passwd"):
        with pytest.raises(SettingsError) as raised:
            Settings.from_env({"TANPUHUI_TIMEZONE": wrong})
        assert raised.value.variable == "TANPUHUI_TIMEZONE"


def test_policies_carry_the_zone_built_once(settings):
    policy = ingest_policy(in_zone(settings, "Europe/Berlin"))
    assert policy.zone == ZoneInfo("Europe/Berlin")
    assert policy.points.timezone == "Europe/Berlin"
    assert ingest_policy(settings).zone == SHANGHAI


# --- days: the daily caps and the daily steps ----------------------------------------------


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
async def test_a_daily_cap_ends_at_midnight_in_the_programme_zone(pool, settings, zone):
    """Transit capped at 100 g a day; a 1.5 km metro ride is 70 g. Rides at 23:00 and 23:59
    fill day D (70 + 30 g); the ride at 00:01 is on day D+1 and earns in full. Days in UTC
    (or the machine's zone) would put all three on one day and refuse the third."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE methodology_caps SET daily_cap_g = 100 WHERE behaviour = 'transit'"
        )
        await repository.touch_reference(conn)
    await operator(pool, "metro")
    first = local(zone, 2026, 3, 10, 23, 0)
    _, subject = await linked_since(pool, "metro", first)
    s = in_zone(settings, zone)
    rides = [
        metro(subject, "a", start=first, minutes=1, distance_m=1500),
        metro(subject, "b", start=local(zone, 2026, 3, 10, 23, 59), minutes=1, distance_m=1500),
        metro(subject, "c", start=local(zone, 2026, 3, 11, 0, 1), minutes=1, distance_m=1500),
    ]
    a, b, c = await run(pool, s, rides, at=local(zone, 2026, 3, 11, 12, 0))
    assert (a.status, a.reduction_g) == ("accepted", 70)
    assert (b.status, b.reduction_g) == ("accepted", 30)  # clipped: day D's cap reached
    assert (c.status, c.reduction_g) == ("accepted", 70)  # a new day there: the cap again


async def test_in_another_programme_zone_china_midnight_is_no_boundary(pool, settings):
    """The same China-time rides as above in a Berlin programme: 23:59 and 00:01 China time
    are 16:59 and 17:01 in Berlin, one day: the third ride finds the cap reached."""
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE methodology_caps SET daily_cap_g = 100 WHERE behaviour = 'transit'"
        )
        await repository.touch_reference(conn)
    await operator(pool, "metro")
    china = "Asia/Shanghai"
    first = local(china, 2026, 3, 10, 23, 0)
    _, subject = await linked_since(pool, "metro", first)
    rides = [
        metro(subject, "a", start=first, minutes=1, distance_m=1500),
        metro(subject, "b", start=local(china, 2026, 3, 10, 23, 59), minutes=1, distance_m=1500),
        metro(subject, "c", start=local(china, 2026, 3, 11, 0, 1), minutes=1, distance_m=1500),
    ]
    berlin = in_zone(settings, "Europe/Berlin")
    a, b, c = await run(pool, berlin, rides, at=local(china, 2026, 3, 11, 12, 0))
    assert (a.reduction_g, b.reduction_g) == (70, 30)
    assert c.reason_code == "daily_cap_reached"


def test_a_day_of_steps_is_that_day_in_the_programme_zone():
    steps = DailySteps(record_id="d", subject="s", day=date(2026, 3, 29), steps=10)
    china = Item(0, steps, SHANGHAI)
    assert china.started_at == datetime(2026, 3, 28, 16, 0, tzinfo=UTC)
    assert china.ended_at == datetime(2026, 3, 29, 16, 0, tzinfo=UTC)
    # Berlin moves to summer time that night: the day is 23 hours long there.
    berlin = Item(0, steps, ZoneInfo("Europe/Berlin"))
    assert berlin.started_at == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert berlin.ended_at - berlin.started_at == timedelta(hours=23)
    at = datetime(2026, 3, 10, 16, 30, tzinfo=UTC)  # 00:30 on the 11th in China
    assert programme_day(at, SHANGHAI) == date(2026, 3, 11)
    assert programme_day(at, ZoneInfo("Europe/Berlin")) == date(2026, 3, 10)


# --- months: the monthly figures -----------------------------------------------------------


async def test_monthly_figures_are_calendar_months_in_china_time_empty_ones_included(
    pool, settings
):
    """A ride on 2025-12-20, a walk at 2026-01-31T16:30Z (00:30 on 1 February in China): the
    last four months at 2026-03-15 are March (empty), February (the walk), January (empty, in
    the middle) and December (the ride). In UTC the walk would be January's."""
    await import_districts(pool)
    await operator(pool, "metro")
    await operator(pool, "walks", "platform")
    ride_at = datetime(2025, 12, 20, 2, 0, tzinfo=UTC)
    rid = await resident(pool)
    days = max((real_now() - ride_at).days, 0) + 30
    metro_subject = await link(pool, rid, "metro", days=days)
    walk_subject = await link(pool, rid, "walks", days=days)
    [r] = await run(
        pool, settings, [metro(metro_subject, "m", start=ride_at)], at=ride_at + timedelta(days=1)
    )
    walk_at = datetime(2026, 1, 31, 16, 30, tzinfo=UTC)
    [w] = await run(
        pool,
        settings,
        [walk(walk_subject, "w", start=walk_at)],
        op_id="walks",
        at=walk_at + timedelta(days=1),
    )
    assert r.status == w.status == "accepted"
    async with pool.acquire() as conn:
        m = await mobile.monthly(
            conn, rid, 4, zone=SHANGHAI, now=datetime(2026, 3, 15, 4, 0, tzinfo=UTC)
        )
    assert m.timezone == "Asia/Shanghai"
    assert [(t.month, t.trips, t.reduction_g) for t in m.totals] == [
        ("2026-03", 0, 0),
        ("2026-02", 1, w.reduction_g),
        ("2026-01", 0, 0),
        ("2025-12", 1, r.reduction_g),
    ]
    assert [(f.month, f.mode, f.trips) for f in m.months] == [
        ("2026-02", "walk", 1),
        ("2025-12", "metro", 1),
    ]
    async with pool.acquire() as conn:
        # One month back from 1 February 00:10 China time (still 31 January in UTC): February.
        feb = await mobile.monthly(
            conn, rid, 1, zone=SHANGHAI, now=datetime(2026, 1, 31, 16, 10, tzinfo=UTC)
        )
        # Three months of a Berlin programme at the same instant: January holds the walk.
        berlin = await mobile.monthly(
            conn,
            rid,
            3,
            zone=ZoneInfo("Europe/Berlin"),
            now=datetime(2026, 1, 31, 16, 10, tzinfo=UTC),
        )
    assert [(t.month, t.trips) for t in feb.totals] == [("2026-02", 1)]
    assert [(t.month, t.trips) for t in berlin.totals] == [
        ("2026-01", 1),
        ("2025-12", 1),
        ("2025-11", 0),
    ]


# --- years: points' expiry -----------------------------------------------------------------


def test_points_earned_on_new_years_day_in_china_expire_with_that_year():
    """2026-12-31T16:30Z is 00:30 on 1 January 2027 in China: with two years, the lot lasts to
    the end of 2029 (the first instant of 2030 in China), not of 2028."""
    policy = PointsPolicy(expiry_years=2, timezone="Asia/Shanghai")
    assert policy.expires_at(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == datetime(
        2029, 12, 31, 16, 0, tzinfo=UTC
    )
    assert policy.expires_at(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == datetime(
        2028, 12, 31, 16, 0, tzinfo=UTC
    )
    berlin = PointsPolicy(expiry_years=2, timezone="Europe/Berlin")  # still 2026 there
    assert berlin.expires_at(datetime(2026, 12, 31, 16, 30, tzinfo=UTC)) == datetime(
        2028, 12, 31, 23, 0, tzinfo=UTC
    )


async def test_the_ledger_dates_a_new_years_lot_by_the_programme_year(pool, settings):
    r = str(uuid.uuid4())
    policy = PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
    async with transaction(pool) as tx:
        await points_service.issue_reductions(
            tx, [issuance(r, 100)], policy, now=datetime(2026, 12, 31, 16, 30, tzinfo=UTC)
        )
    seen = await points_service.expiring(
        pool, "resident", r, within_days=5000, now=datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert [(x.expires_at, x.amount) for x in seen] == [
        (datetime(2029, 12, 31, 16, 0, tzinfo=UTC), 10)
    ]


# --- the machine's zone --------------------------------------------------------------------


@pytest.mark.parametrize("machine_zone", ["America/New_York", "UTC"])
def test_the_machine_zone_plays_no_part(databases, machine_zone):
    """Every test above (and the mobile API's time-zone tests) again, in a fresh interpreter
    whose local time is ``machine_zone``: they pass whatever the machine's clock zone is. The
    subprocess reuses this run's PostgreSQL and Redis servers (a database of its own)."""
    assert not os.environ.get(CHILD), "the subprocess must not start subprocesses"
    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "TZ": machine_zone,
        CHILD: "1",
        "TEST_DATABASE_URL": databases.superuser_url,
        "TEST_REDIS_URL": databases.redis_url,
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-k",
            "not machine_zone",
            "tests/test_timezone.py",
            "tests/mobile/test_timezone_api.py",
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    passed = re.search(r"\b(\d+) passed\b", summary)
    # All of them ran and passed (11: both files but this test's two runs).
    assert passed and int(passed.group(1)) >= 11, summary
    assert not re.search(r"failed|skipped|error", summary), summary
    check = subprocess.run(
        [sys.executable, "-c", "import time; print(time.strftime('%z'))"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    # The subprocesses' local time was indeed that zone.
    offsets = {"UTC": {"+0000"}, "America/New_York": {"-0500", "-0400"}}[machine_zone]
    assert check.stdout.strip() in offsets
