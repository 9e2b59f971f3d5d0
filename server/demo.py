"""`tanpuhui demo`: a living synthetic city in the running configuration's store, so that a new
user sees the government dashboard (``/dashboard``) filled within a minute.

What is loaded, each step through the owners' services as production data would go:

- **districts**: twelve synthetic districts (codes ``<region>01`` .. ``<region>12``-ish, names
  示范一区 .. 示范十二区) tiling the area of the GTFS feed below (jittered grid, shared edges);
- **GTFS**: the real Cairns bus feed the tests use (tests/behaviours/data/cairns_gtfs.zip),
  imported as the feed ``demo-cairns`` (replaced whole each time);
- **residents** and their operators' links (a bus operator on that feed, a bike-share
  operator), deterministic ids; their home district is the district of a home stop, drawn so
  that districts differ a lot in size (some have fewer than k = 10 residents: suppressed cells);
- **trips** of the last ``--days`` days (bus rides between stops of a real trip, shared-bike
  rides and walks near home) pushed through the real ingestion pipeline
  (``behaviours.service.ingest``: verified, quantified, stored, credited), each day's batch
  ingested "on that day" (the pipeline's ``now``), so the claim window holds;
- **rewards**: two merchants with an item each (one redemption per resident at most), a
  public-welfare project, some redemptions and donations;
- the **synthetic industrial district** (enterprises/synthetic.py), small (``--enterprises``,
  a week of meter readings, a year of monthly reports and pollutants);
- the **rollups** (reporting), so the reports answer at once;
- a **demo government administrator**, whose login, password and TOTP secret are printed (and
  kept in ``<data dir>/demo-gov-admin.json``, mode 0600, to print them again on the next run).

Idempotent: a second run adds nothing (deterministic ids, record ids and contents; the
ingestion answers ``duplicate``; each step is skipped when its rows are there). A run on a
later day adds that day's trips only. docs/dashboard.md, "The demo city".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shapely import to_wkb
from shapely.geometry import Polygon

from behaviours import service as behaviours
from behaviours.events import BikeTrip, Point, Source, TransitTrip, Walk
from enterprises import service as enterprises_service
from enterprises import synthetic
from enterprises import tasks as enterprise_tasks
from integrations.gtfs import GtfsFeed
from kit.db import connect, create_pool, transaction_on
from kit.errors import DomainError
from points import service as ledger
from points.schemas import PointsPolicy
from reporting import rollups
from reporting import users as gov_users
from residents import service as residents
from rewards import donations, projects
from rewards import service as rewards
from rewards.donation_schemas import ProjectInput
from rewards.schemas import ItemSpec, MerchantRegistration
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
GTFS_ZIP = ROOT / "tests" / "behaviours" / "data" / "cairns_gtfs.zip"
FEED = "demo-cairns"
BUS, BIKES = "demo-bus", "demo-bikes"
NAMESPACE = uuid.UUID("5b0f2a36-6c1e-4f7e-9d0a-7a1d3f1c0de0")  # the demo's resident ids
SEED = 2026
COLS, ROWS = 3, 4  # the districts' grid over the feed's area
ADMIN_LOGIN = "demo.admin"
CREDENTIALS = "demo-gov-admin.json"
BATCH = 1000  # events per ingest call
UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a missing table: not migrated
ZH_NUMBERS = "一二三四五六七八九十"


def _zh(n: int) -> str:
    """1..99 in Chinese numerals (示范十二区)."""
    if n <= 10:
        return ZH_NUMBERS[n - 1]
    tens, ones = divmod(n, 10)
    return (
        (ZH_NUMBERS[tens - 1] if tens > 1 else "") + "十" + (ZH_NUMBERS[ones - 1] if ones else "")
    )


# --- the city (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Feed:
    stops: list[tuple[str, str, float, float]]  # stop_id, name, lat, lon
    shapes: list[Any]
    trips: list[Any]
    stop_times: list[Any]
    report: Any

    def trip_stops(self) -> dict[str, list[str]]:
        """Each trip's stops in order."""
        out: dict[str, list[tuple[int, str]]] = {}
        for row in self.stop_times:
            out.setdefault(row[0], []).append((row[1], row[2]))
        return {trip: [s for _, s in sorted(seq)] for trip, seq in out.items()}


def read_feed(path: Path = GTFS_ZIP) -> Feed:
    """The whole feed in memory (a few MB), read in the order its checks need."""
    feed = GtfsFeed(path)
    try:
        feed.check_files()
        stops = list(feed.stops())
        shapes = list(feed.shapes())
        trips = list(feed.trips())
        stop_times = list(feed.stop_times())
        return Feed(stops, shapes, trips, stop_times, feed.report)
    finally:
        feed.close()


def districts_over(
    stops: Sequence[tuple[str, str, float, float]], region_code: str
) -> list[tuple[str, str, str | None, bytes]]:
    """A COLS x ROWS tiling of the stops' bounding box (with a margin), interior vertices
    jittered (deterministically) so the map does not look like graph paper; neighbours share
    their edges, so every point of the box is in exactly one district."""
    lats = [s[2] for s in stops]
    lons = [s[3] for s in stops]
    margin = 0.01
    lat0, lat1 = min(lats) - margin, max(lats) + margin
    lon0, lon1 = min(lons) - margin, max(lons) + margin
    rng = random.Random(SEED)
    dx, dy = (lon1 - lon0) / COLS, (lat1 - lat0) / ROWS
    grid: dict[tuple[int, int], tuple[float, float]] = {}
    for i in range(COLS + 1):
        for j in range(ROWS + 1):
            x, y = lon0 + i * dx, lat0 + j * dy
            if 0 < i < COLS:
                x += rng.uniform(-0.25, 0.25) * dx
            if 0 < j < ROWS:
                y += rng.uniform(-0.25, 0.25) * dy
            grid[i, j] = (round(x, 6), round(y, 6))
    rows: list[tuple[str, str, str | None, bytes]] = []
    n = 0
    for j in reversed(range(ROWS)):  # numbered from the north-west, row by row
        for i in range(COLS):
            n += 1
            ring = [grid[i, j], grid[i + 1, j], grid[i + 1, j + 1], grid[i, j + 1], grid[i, j]]
            code = f"{region_code[:4]}{n + 80:02d}"  # 81..92: clear of the real codes 01..30
            name = f"示范{_zh(n)}区"
            rows.append((code, name, region_code, bytes(to_wkb(Polygon(ring)))))
    return rows


@dataclass(frozen=True)
class Resident:
    n: int
    id: str
    home_stop: str
    lat: float
    lon: float


def resident_id(n: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"resident-{n}"))


def draw_residents(feed: Feed, count: int) -> list[Resident]:
    """Residents with a home stop each: stops drawn with very unequal weights (a few busy
    areas, many quiet ones), so some districts have many residents and some a handful."""
    rng = random.Random(SEED)
    served = {s for seq in feed.trip_stops().values() for s in seq[:-1]}
    stops = [s for s in feed.stops if s[0] in served]
    stops.sort(key=lambda s: s[0])
    weights = [rng.paretovariate(1.2) for _ in stops]
    chosen = rng.choices(stops, weights=weights, k=count)
    return [Resident(n, resident_id(n), s[0], s[2], s[3]) for n, s in enumerate(chosen)]


def _offset(lat: float, lon: float, metres: float, bearing: float) -> Point:
    dlat = metres * math.cos(bearing) / 111_320
    dlon = metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return Point(round(lat + dlat, 6), round(lon + dlon, 6))


def day_events(
    feed_trips: dict[str, list[str]],
    by_stop: dict[str, list[str]],
    people: Sequence[Resident],
    day: date,
    zone: ZoneInfo,
) -> tuple[list[Any], list[Any], dict[str, list[Any]]]:
    """One day's records: (bus operator's, bike operator's, each resident's own walks). The
    same day gives the same records (ids and contents): a second run's are duplicates."""
    rng = random.Random(f"{SEED}-{day.isoformat()}")
    bus: list[Any] = []
    bikes: list[Any] = []
    walks: dict[str, list[Any]] = {}
    for r in people:
        if rng.random() > 0.7:
            continue  # not travelling today
        start = datetime(day.year, day.month, day.day, 7, 0, tzinfo=zone) + timedelta(
            minutes=rng.randrange(0, 150)
        )
        kind = rng.random()
        if kind < 0.55 and by_stop.get(r.home_stop):
            trip = rng.choice(by_stop[r.home_stop])
            seq = feed_trips[trip]
            a = seq.index(r.home_stop)
            b = min(len(seq) - 1, a + rng.randrange(2, 12))
            if b <= a:
                continue
            minutes = 3 + 2 * (b - a)
            bus.append(
                TransitTrip(
                    record_id=f"demo-{day:%Y%m%d}-{r.n}-bus",
                    subject=f"demo-s{r.n}",
                    mode="bus",
                    boarded_at=start,
                    alighted_at=start + timedelta(minutes=minutes),
                    boarding_stop=r.home_stop,
                    alighting_stop=seq[b],
                    gtfs_trip_id=trip,
                )
            )
        elif kind < 0.85:
            metres = rng.randrange(800, 3500)
            a_pt = _offset(r.lat, r.lon, rng.uniform(0, 150), rng.uniform(0, 2 * math.pi))
            b_pt = _offset(a_pt.lat, a_pt.lon, metres * 0.8, rng.uniform(0, 2 * math.pi))
            bikes.append(
                BikeTrip(
                    record_id=f"demo-{day:%Y%m%d}-{r.n}-bike",
                    subject=f"demo-s{r.n}",
                    mode="shared_bike",
                    started_at=start,
                    ended_at=start + timedelta(minutes=max(4, metres // 200)),
                    start=a_pt,
                    end=b_pt,
                    distance_m=metres,
                )
            )
        else:
            metres = rng.randrange(1000, 4000)
            a_pt = _offset(r.lat, r.lon, rng.uniform(0, 100), rng.uniform(0, 2 * math.pi))
            b_pt = _offset(a_pt.lat, a_pt.lon, metres * 0.7, rng.uniform(0, 2 * math.pi))
            walks.setdefault(r.id, []).append(
                Walk(
                    record_id=f"demo-{day:%Y%m%d}-{r.n}-walk",
                    subject=r.id,
                    started_at=start,
                    ended_at=start + timedelta(minutes=max(10, metres // 80)),
                    start=a_pt,
                    end=b_pt,
                    distance_m=metres,
                )
            )
    return bus, bikes, walks


# --- loading (through the services) -----------------------------------------------------------


@dataclass
class Summary:
    districts: int = 0
    stops: int = 0
    trips_in_feed: int = 0
    residents_new: int = 0
    residents: int = 0
    events: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    redemptions: int = 0
    donations: int = 0
    enterprises: int = 0
    enterprises_new: bool = False
    rollups: str = ""


async def load_places(conn: Any, settings: Settings, feed: Feed, summary: Summary) -> list[str]:
    """Districts (inserted or replaced) and the feed (replaced whole), in one transaction."""
    rows = districts_over(feed.stops, settings.region_code)
    async with transaction_on(conn) as tx:
        await behaviours.import_districts(tx, rows)
        await behaviours.import_gtfs(
            tx,
            FEED,
            [(s[0], s[1], s[2], s[3]) for s in feed.stops],
            feed.shapes,
            feed.trips,
            feed.stop_times,
            report=feed.report,
        )
        await behaviours.register_operator(
            tx,
            BUS,
            name="示范公交 Demo Bus",
            kind="transit",
            region_code=settings.region_code,
            gtfs_feed=FEED,
        )
        await behaviours.register_operator(
            tx,
            BIKES,
            name="示范单车 Demo Bikes",
            kind="bike_share",
            region_code=settings.region_code,
        )
    summary.districts, summary.stops, summary.trips_in_feed = (
        len(rows),
        len(feed.stops),
        len(feed.trips),
    )
    return [code for code, *_ in rows]


async def load_residents(
    conn: Any, people: Sequence[Resident], homes: dict[str, str | None], summary: Summary
) -> None:
    """The residents not there yet, and their links to both operators (consented 90 days ago),
    in one transaction: a resident and its links come together or not at all."""
    async with transaction_on(conn) as tx:
        known = await residents.lock_homes(tx.conn, [r.id for r in people])
        new = [r for r in people if r.id not in known]
        if new:
            await residents.create_residents(
                tx.conn, [homes[r.id] for r in new], ids=[r.id for r in new]
            )
            granted = datetime.now(UTC) - timedelta(days=90)
            for op in (BUS, BIKES):
                await behaviours.import_links(
                    tx, op, [(f"demo-s{r.n}", r.id) for r in new], ["*"], granted
                )
    summary.residents_new, summary.residents = len(new), len(people)


async def load_trips(
    conn: Any,
    settings: Settings,
    feed: Feed,
    people: Sequence[Resident],
    days: int,
    summary: Summary,
) -> None:
    """Each of the last ``days`` days' records, ingested as on that day (its evening)."""
    from server.app import ingest_policy  # (lazily: `tanpuhui` imports this module)

    zone = ZoneInfo(settings.timezone)
    policy = ingest_policy(settings)
    trips = feed.trip_stops()
    by_stop: dict[str, list[str]] = {}
    for trip, seq in sorted(trips.items()):
        for s in seq[:-2]:
            by_stop.setdefault(s, []).append(trip)
    today = datetime.now(zone).date()
    for k in range(days, 0, -1):
        day = today - timedelta(days=k)
        bus, bikes, walks = day_events(trips, by_stop, people, day, zone)
        at = datetime(day.year, day.month, day.day, 21, 0, tzinfo=zone)
        batches: list[tuple[Source, list[Any]]] = []
        for op, events in ((BUS, bus), (BIKES, bikes)):
            for i in range(0, len(events), BATCH):
                batches.append((Source(operator_id=op), events[i : i + BATCH]))
        for rid, mine in sorted(walks.items()):
            batches.append((behaviours.app_source(rid), mine))
        for source, events in batches:
            async with transaction_on(conn) as tx:
                verdicts = await behaviours.ingest(tx, source, events, policy=policy, now=at)
            summary.events += len(verdicts)
            for v in verdicts:
                if v.status == "accepted":
                    summary.accepted += 1
                elif v.status == "duplicate":
                    summary.duplicate += 1
                else:
                    summary.rejected += 1


MERCHANTS = (
    ("demo-teahouse", "示范茶馆 Demo Teahouse", "一杯绿茶 · A cup of green tea", 20),
    ("demo-bikeshop", "示范车行 Demo Bike Shop", "单车保养 · A bike tune-up", 60),
)


async def load_rewards(
    conn: Any, settings: Settings, people: Sequence[Resident], summary: Summary
) -> None:
    """Merchants, their items, a project, redemptions and donations: one transaction, skipped
    when the first merchant is there (it was all done by an earlier run)."""
    cfg = rewards.config_of(settings)
    try:
        await rewards.get_merchant(conn, MERCHANTS[0][0])
        return
    except DomainError:
        pass
    now = datetime.now(UTC)
    policy = PointsPolicy.from_settings(settings.points, timezone=settings.timezone)
    rng = random.Random(SEED)
    async with transaction_on(conn) as tx:
        ledger.accept_any_lock_order(tx)  # one setup transaction, all or nothing, run alone
        items = []
        for merchant_id, name, title, cost in MERCHANTS:
            await rewards.register_merchant(
                tx,
                cfg,
                MerchantRegistration(
                    id=merchant_id, name=name, settlement_contact="demo@example.org"
                ),
            )
            item = await rewards.add_item(
                tx,
                ItemSpec(
                    merchant_id=merchant_id,
                    kind="generated_code",
                    title=title,
                    cost_points=cost,
                    total_stock=10_000,
                    per_resident_limit=1,
                    active_from=now - timedelta(days=60),
                    active_until=now + timedelta(days=365),
                    visible_from=now - timedelta(days=60),
                    visible_until=now + timedelta(days=365),
                ),
            )
            items.append(item.id)
        project = await projects.register(
            tx,
            ProjectInput(
                title="示范社区植树 · Demo community tree planting",
                beneficiary="示范绿化基金会 · Demo Greening Foundation",
                target_asset="POINT",
                target_amount=100_000,
                starts_at=now - timedelta(days=60),
                ends_at=now + timedelta(days=365),
                description="Synthetic demo project (tanpuhui demo).",
            ),
        )
        for r in people:
            roll = rng.random()
            try:
                if roll < 0.3:
                    item_id, merchant = (
                        (items[0], MERCHANTS[0][0]) if roll < 0.2 else (items[1], MERCHANTS[1][0])
                    )
                    reward = await rewards.redeem(tx, cfg, r.id, item_id)
                    summary.redemptions += 1
                    if roll < 0.25:  # most are honoured at the till; the rest stay on hold
                        await rewards.confirm(tx, cfg, merchant, reward.code)
                elif roll < 0.5:
                    await donations.donate(
                        tx,
                        policy,
                        resident_id=r.id,
                        project_id=project.id,
                        asset="POINT",
                        amount=10,
                        region_code=settings.region_code,
                    )
                    summary.donations += 1
            except DomainError:
                continue  # too few points: this resident does neither


async def load_enterprises(
    conn: Any, settings: Settings, count: int, codes: Sequence[str], summary: Summary
) -> None:
    """The synthetic industrial district (a week of 15-minute readings, last year's monthly
    reports), unless its enterprises are registered already."""
    year = datetime.now(UTC).year - 1
    planned = synthetic.district(seed=SEED, enterprises=count, year=year, districts=sorted(codes))
    wanted = [e.registration.credit_code for e in planned.enterprises]
    summary.enterprises = count
    if len(await enterprises_service.enterprises_by_credit_code(conn, wanted)) == len(wanted):
        return
    await synthetic.load(
        conn,
        seed=SEED,
        enterprises=count,
        days=7,
        year=year,
        zone=ZoneInfo(settings.timezone),
        privacy=settings.privacy,
        region_code=settings.region_code,
        with_pollutants=True,  # the dashboard's synergy view
    )
    summary.enterprises_new = True


async def account_enterprises(url: str, settings: Settings) -> int:
    """The enterprises' accounts of every month their data touched (the beat's job, run now)."""
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        return await enterprise_tasks.recompute_touched_body(pool, settings)
    finally:
        await pool.close()


async def refresh_rollups(conn: Any, settings: Settings, days: int) -> str:
    """The reports' rollups of the demo's days (and their months and year), brought up to date
    now: the periodic job's own refresh, run once here instead of waiting for it."""
    zone = ZoneInfo(settings.timezone)
    last = datetime.now(zone).date()
    async with transaction_on(conn) as tx:
        done = await rollups.refresh_window(
            tx,
            timezone=settings.timezone,
            settings=settings.reporting,
            ent=settings.enterprises,
            first=last - timedelta(days=days),
            last=last,
            years=True,
        )
    return ", ".join(f"{name} {n}" for name, n in done.items())


async def demo_admin(conn: Any, settings: Settings) -> tuple[dict[str, str], bool]:
    """The demo's government administrator: created with a random password the first time
    (kept, mode 0600, in the data directory), read back from there afterwards."""
    kept = Path(settings.embedded.data_dir) / CREDENTIALS
    password = "demo-" + uuid.uuid4().hex[:16]
    try:
        async with transaction_on(conn) as tx:
            made = await gov_users.add_user(
                tx,
                settings.gov_users,
                settings.privacy,
                login=ADMIN_LOGIN,
                display_name="示范管理员 Demo administrator",
                role="gov_admin",
                password=password,
                actor="cli:demo",
            )
    except gov_users.GovLoginTaken:
        if kept.exists():
            found: dict[str, str] = json.loads(kept.read_text(encoding="utf-8"))
            return found, False
        return {"login": ADMIN_LOGIN}, False
    creds = {
        "login": ADMIN_LOGIN,
        "password": password,
        "totp_secret": made.totp_secret,
        "totp_uri": made.totp_uri,
    }
    kept.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(creds, f, indent=2)
    return creds, True


async def load(
    url: str,
    settings: Settings,
    *,
    residents_count: int = 400,
    days: int = 30,
    enterprises: int = 120,
    progress: Any = None,
    admin: bool = True,
) -> tuple[Summary, dict[str, str], bool]:
    """The whole demo on ``url`` (a migrated database): see the module's docstring."""
    say = progress or (lambda _: None)
    summary = Summary()
    feed = read_feed()
    conn = await connect(url)
    try:
        say("districts and the GTFS feed")
        codes = await load_places(conn, settings, feed, summary)
        ref = await behaviours.default_cache().get(conn)
        people = draw_residents(feed, residents_count)
        homes = dict(
            zip(
                [r.id for r in people],
                ref.districts.locate([r.lon for r in people], [r.lat for r in people]),
                strict=True,
            )
        )
        say(f"{len(people)} residents and their links")
        await load_residents(conn, people, homes, summary)
        say(f"trips of the last {days} days through the ingestion pipeline")
        await load_trips(conn, settings, feed, people, days, summary)
        say("merchants, a project, redemptions and donations")
        await load_rewards(conn, settings, people, summary)
        say(f"the synthetic industrial district ({enterprises} enterprises)")
        await load_enterprises(conn, settings, enterprises, codes, summary)
        await account_enterprises(url, settings)
        say("the reports' rollups")
        summary.rollups = await refresh_rollups(conn, settings, days)
        creds, created = await demo_admin(conn, settings) if admin else ({}, False)
    finally:
        await conn.close()
    return summary, creds, created


# --- the command ------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--residents", type=int, default=400, help="how many residents (default 400)")
    p.add_argument("--days", type=int, default=30, help="days of trips before today (default 30)")
    p.add_argument(
        "--enterprises", type=int, default=120, help="synthetic enterprises (default 120)"
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="first wait (up to 5 minutes) for the API of `tanpuhui dev` to answer "
        "(`make run DEMO=1` starts it so)",
    )


def _api_answers(settings: Settings) -> bool:
    import socket

    try:
        with socket.create_connection((settings.http.host, settings.http.port), timeout=0.5):
            return True
    except OSError:
        return False


def _print(summary: Summary, creds: dict[str, str], created: bool, settings: Settings) -> None:
    s = summary
    out = sys.stdout
    out.write(
        f"demo city: {s.districts} districts, GTFS feed {FEED!r} ({s.stops} stops, "
        f"{s.trips_in_feed} trips), {s.residents} residents ({s.residents_new} new)\n"
        f"trips ingested: {s.events} records: {s.accepted} accepted, {s.duplicate} duplicate "
        f"(already loaded), {s.rejected} rejected\n"
        f"rewards: {s.redemptions} redemptions, {s.donations} donations "
        f"({'new' if s.redemptions or s.donations else 'loaded before'})\n"
        f"synthetic industrial district: {s.enterprises} enterprises "
        f"({'new' if s.enterprises_new else 'loaded before'})\n"
        f"rollups: {s.rollups}\n"
    )
    base = f"http://{settings.http.host}:{settings.http.port}"
    out.write(f"\ndashboard: {base}/dashboard\n")
    if "password" in creds:
        out.write(
            f"  login:       {creds['login']}\n"
            f"  password:    {creds['password']}\n"
            f"  TOTP secret: {creds['totp_secret']}  (add it to an authenticator app, or: "
            f".venv/bin/python -c \"import pyotp; print(pyotp.TOTP('{creds['totp_secret']}')"
            '.now())")\n'
            f"  TOTP URI:    {creds['totp_uri']}\n"
        )
        if not created:
            out.write(
                f"  (created by an earlier run; kept in "
                f"{Path(settings.embedded.data_dir) / CREDENTIALS})\n"
            )
    else:
        out.write(
            f"  login: {creds['login']} (created earlier; its password and TOTP secret were "
            "printed then and are not kept here)\n"
        )


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Load the demo city into DATABASE_URL (unset: the embedded PostgreSQL of
    TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it; migrated first by `make run` or
    `tanpuhui migrate`): districts, the Cairns GTFS feed, residents and their trips through the
    ingestion pipeline, merchants, a project, redemptions and donations, the synthetic
    industrial district, the reports' rollups, and a demo government administrator whose
    sign-in is printed. Idempotent: run it again and nothing is duplicated
    (docs/dashboard.md, "The demo city")."""
    if settings.env == "prod":
        sys.stderr.write(
            "tanpuhui demo: refused with TANPUHUI_ENV=prod (it creates an administrator whose "
            "password it prints, and synthetic residents)\n"
        )
        return 2
    if args.residents < 1 or not 1 <= args.days <= 60 or args.enterprises < 1:
        sys.stderr.write("tanpuhui demo: --residents >= 1, --days 1 to 60, --enterprises >= 1\n")
        return 2
    if args.wait:
        deadline = time.monotonic() + 300
        while not _api_answers(settings):
            if time.monotonic() > deadline:
                sys.stderr.write("tanpuhui demo: the API never answered; is `tanpuhui dev` up?\n")
                return 1
            time.sleep(0.5)
    from server.cli import with_database

    def run(s: Settings) -> int:
        assert s.database.url
        started = time.monotonic()
        try:
            summary, creds, created = asyncio.run(
                load(
                    s.database.url,
                    s,
                    residents_count=args.residents,
                    days=args.days,
                    enterprises=args.enterprises,
                    progress=lambda what: sys.stderr.write(f"tanpuhui demo: {what}\n"),
                )
            )
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != UNDEFINED_TABLE:
                raise
            sys.stderr.write(
                f"tanpuhui demo: the database is not migrated ({exc}): run `tanpuhui migrate` "
                "first (`make run` does it)\n"
            )
            return 1
        _print(summary, creds, created, s)
        sys.stdout.write(f"(loaded in {time.monotonic() - started:.1f} s)\n")
        return 0

    return with_database(run, prog="tanpuhui demo")
