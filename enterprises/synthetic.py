"""A synthetic industrial district, deterministic by seed: a few hundred enterprises over a dozen
industries (GB/T 4754-2017 classes), each with a site and a cumulative 15-minute electricity
meter pushed by one utility, a year of its readings, and monthly reports of fuels, product
output, added value and tax paid (a few with green-electricity certificates).

Shaped like the real thing where it matters to accounting: every industry has its own energy
mix and intensity, enterprises within an industry spread around it (log-normal, so grades 1 to 5
all occur), and cement (C3011) is planted far more carbon-intensive than the rest (coal-fired
kilns: its enterprises sit in the "high" intensity band, L > 2 t CO2 per 10,000 yuan). A few
meters miss a reading (a gap, flagged). The load goes through the services as production data
does (``tanpuhui load-synthetic-district``; docs/enterprises.md, "A synthetic district").

Pollutants (docs/pollutants.md): each industry has its own SO2, NOx, PM and VOC intensities
(``POLLUTANT_PROFILES``); within an industry an enterprise's end-of-pipe control spreads them
independently of its energy efficiency (so carbon and pollutant intensities are uncorrelated),
except in ``SYNERGY_PLANTED`` (organic chemicals: process heat and solvent losses both follow
the energy burned), whose pollutants move with its efficiency: the one industry whose carbon
and pollutant intensities are strongly correlated. ``district(small_industry=n)`` puts the last
n enterprises in ``SMALL_INDUSTRY``, an industry too small to publish. ``load_accounts`` feeds
the accounting directly (no meters: minutes faster) for the analyses' tests and demos.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from behaviours import service as behaviours
from enterprises import accounting, energy, pollutants, service
from enterprises.activity import ActivityRow
from enterprises.energy_schemas import MeterIn, ReadingIn, ReportIn, ReportLineIn, SiteIn
from enterprises.factors import Basis
from enterprises.pollutants_schemas import PollutantLineIn, PollutantsIn
from enterprises.schemas import EnterpriseIn
from kit.db import Tx, transaction_on
from kit.settings import PrivacySettings

PUSHER: Final = "synthetic-grid"
# Loaded when the programme has no districts yet (the demo needs some).
TEST_DISTRICTS: Final = (
    Path(__file__).resolve().parents[1] / "tests" / "integrations" / "data" / "districts.geojson"
)
BATCH: Final = 5000  # readings per ingest call, as a pusher sends them


@dataclass(frozen=True)
class Industry:
    code: str  # GB/T 4754-2017 class
    name: str
    # Per 10,000 yuan of added value: electricity (kWh), natural gas (m3), coal (t).
    kwh: float
    gas_m3: float
    coal_t: float
    output_unit: str
    output_per_10k: float  # product units per 10,000 yuan of added value
    added_value_10k: float  # a typical enterprise's monthly added value (10,000 yuan)


INDUSTRIES: Final[tuple[Industry, ...]] = (
    Industry("C3011", "水泥制造", 900, 10, 1.6, "t", 25, 900),  # planted: coal-fired kilns
    Industry("C3120", "炼钢", 1200, 40, 0.35, "t", 3, 1500),
    Industry("C2614", "有机化学原料制造", 700, 120, 0.12, "t", 4, 1200),
    Industry("C2211", "木竹浆制造", 800, 60, 0.15, "t", 5, 700),
    Industry("C1713", "棉印染精加工", 600, 90, 0.05, "km", 30, 500),
    Industry("C2927", "日用塑料制品制造", 500, 15, 0.0, "t", 6, 400),
    Industry("C2710", "化学药品原料药制造", 350, 45, 0.02, "kg", 200, 1100),
    Industry("C3311", "金属结构制造", 300, 20, 0.0, "t", 8, 600),
    Industry("C3484", "机械零部件加工", 260, 8, 0.0, "piece", 900, 500),
    Industry("C3670", "汽车零部件及配件制造", 240, 12, 0.0, "piece", 700, 1300),
    Industry("C3982", "电子电路制造", 320, 5, 0.0, "m2", 150, 1600),
    Industry("C1469", "其他调味品、发酵制品制造", 200, 30, 0.0, "t", 10, 450),
)
# An industry of a few enterprises only (``district(small_industry=n)``): too small to publish.
SMALL_INDUSTRY: Final = Industry("C2511", "原油加工及石油制品制造", 700, 150, 0.25, "t", 3, 2000)

# kg of SO2, NOx, PM and VOCs per 10,000 yuan of added value, a typical enterprise's.
POLLUTANT_PROFILES: Final[dict[str, tuple[float, float, float, float]]] = {
    "C3011": (0.9, 2.6, 1.1, 0.05),
    "C3120": (0.8, 1.0, 0.9, 0.1),
    "C2614": (0.5, 0.6, 0.15, 2.2),
    "C2211": (0.6, 0.7, 0.4, 0.3),
    "C1713": (0.3, 0.3, 0.1, 0.6),
    "C2927": (0.02, 0.03, 0.02, 0.9),
    "C2710": (0.05, 0.1, 0.03, 1.2),
    "C3311": (0.02, 0.04, 0.2, 0.5),
    "C3484": (0.01, 0.02, 0.05, 0.2),
    "C3670": (0.01, 0.03, 0.05, 0.4),
    "C3982": (0.01, 0.02, 0.01, 0.5),
    "C1469": (0.05, 0.08, 0.03, 0.1),
    "C2511": (0.7, 0.8, 0.2, 1.5),
}
# The industry whose pollutants follow its enterprises' energy efficiency.
SYNERGY_PLANTED: Final = "C2614"
# Pollutants fall this much a year (control tightening), from POLLUTANT_BASE_YEAR on.
POLLUTANT_TREND: Final = 0.04
POLLUTANT_BASE_YEAR: Final = 2024


@dataclass(frozen=True)
class SyntheticEnterprise:
    n: int
    registration: EnterpriseIn
    industry: Industry
    efficiency: float  # multiplies the industry's intensities (1: the industry's typical)
    scale: float  # multiplies the industry's typical added value
    green_certificates: int  # per month (each 1 MWh), 0 for most
    gap_at: int | None  # the index of a reading the meter misses (a gap), None for most


@dataclass(frozen=True)
class District:
    seed: int
    year: int
    enterprises: tuple[SyntheticEnterprise, ...]


def credit_code(district: str, seed: int, n: int) -> str:
    """A valid unified social credit code (GB 32100-2015 check character) for the n-th
    enterprise: registered by a district's market regulator (91: an enterprise)."""
    first17 = f"91{district}{seed % 100:02d}{n:06d}X"
    return first17 + service.check_character(first17)


def district(
    *,
    seed: int = 7,
    enterprises: int = 300,
    year: int = 2025,
    districts: Sequence[str],
    small_industry: int = 0,
) -> District:
    """The district's enterprises (no I/O): the same seed, count, year and districts give the
    same district. ``small_industry``: the last so many enterprises are of ``SMALL_INDUSTRY``
    (the others as without it)."""
    rng = random.Random(seed)
    out = []
    for n in range(1, enterprises + 1):
        industry = (
            SMALL_INDUSTRY
            if n > enterprises - small_industry
            else INDUSTRIES[(n - 1) % len(INDUSTRIES)]
        )
        code = districts[rng.randrange(len(districts))]
        out.append(
            SyntheticEnterprise(
                n=n,
                registration=EnterpriseIn(
                    credit_code=credit_code(code, seed, n),
                    name=f"合成{industry.name}企业 {n:03d}",
                    industry=industry.code,
                    district=code,
                    size_class="above" if rng.random() < 0.8 else "below",
                ),
                industry=industry,
                efficiency=math.exp(rng.gauss(0.0, 0.35)),
                scale=math.exp(rng.gauss(0.0, 0.5)),
                green_certificates=rng.choice((0, 0, 0, 0, 0, 0, 0, 0, 20, 50)),
                gap_at=rng.randrange(96 * 28) if rng.random() < 0.05 else None,
            )
        )
    return District(seed=seed, year=year, enterprises=tuple(out))


def _month_starts(year: int) -> list[date]:
    return [date(year, m, 1) for m in range(1, 13)]


def monthly_electricity_kwh(e: SyntheticEnterprise, month: date) -> float:
    """The month's electricity: the industry's intensity × efficiency × added value."""
    return e.industry.kwh * e.efficiency * added_value(e, month)


def added_value(e: SyntheticEnterprise, month: date) -> float:
    """10,000 yuan; a season (lower around the Spring Festival, February) and a trend."""
    season = 0.75 if month.month == 2 else 1.0 + 0.02 * (month.month - 6) / 6
    return round(e.industry.added_value_10k * e.scale * season, 2)


def reports(e: SyntheticEnterprise, year: int, seed: int) -> list[ReportIn]:
    """The enterprise's twelve monthly reports: fuels, output, added value, tax (electricity
    comes from its meter), green electricity with certificate serials for a few."""
    out = []
    for month in _month_starts(year):
        value = added_value(e, month)
        lines = [
            ReportLineIn(kind="added_value", quantity=value, unit="10k_CNY"),
            ReportLineIn(kind="tax", quantity=round(value * 0.13, 2), unit="10k_CNY"),
            ReportLineIn(
                kind="output",
                quantity=round(value * e.industry.output_per_10k, 1),
                unit=e.industry.output_unit,
            ),
        ]
        if e.industry.gas_m3:
            lines.append(
                ReportLineIn(
                    kind="natural_gas",
                    quantity=round(e.industry.gas_m3 * e.efficiency * value, 1),
                    unit="m3",
                )
            )
        if e.industry.coal_t:
            lines.append(
                ReportLineIn(
                    kind="coal",
                    quantity=round(e.industry.coal_t * e.efficiency * value, 3),
                    unit="t",
                )
            )
        if e.green_certificates:
            serials = [
                f"GEC-{seed}-{year}{month.month:02d}-{e.n:04d}-{k:03d}"
                for k in range(e.green_certificates)
            ]
            lines.append(
                ReportLineIn(
                    kind="green_electricity",
                    quantity=energy.CERTIFICATE_KWH * len(serials),
                    unit="kWh",
                    certificates=serials,
                )
            )
        out.append(ReportIn(period="month", period_start=month, lines=lines))
    return out


# A working day's load by hour (night shift lighter), scaled to average 1.
_SHAPE = (0.6,) * 6 + (1.0,) * 2 + (1.35,) * 10 + (1.0,) * 2 + (0.7,) * 4
_HOURLY = tuple(x * 24 / sum(_SHAPE) for x in _SHAPE)


def readings(
    e: SyntheticEnterprise, year: int, zone: ZoneInfo, *, days: int = 365, seed: int = 7
) -> Iterator[ReadingIn]:
    """The meter's cumulative 15-minute register readings, from the year's first instant
    (local) for ``days`` days: the month's electricity shaped by the hour, with noise."""
    rng = random.Random(seed * 1_000_003 + e.n)
    start = datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
    register = round(rng.uniform(10_000, 900_000), 1)
    ref = meter_ref(e)
    per_day: dict[tuple[int, int], float] = {}
    yield ReadingIn(meter=ref, at=start, value=register)
    for i in range(days * 96):
        at = start + timedelta(minutes=15 * (i + 1))
        local = (at - timedelta(minutes=15)).astimezone(zone)
        key = (local.year, local.month)
        if key not in per_day:
            month = date(local.year, local.month, 1)
            days_in = (date(month.year + month.month // 12, month.month % 12 + 1, 1) - month).days
            per_day[key] = monthly_electricity_kwh(e, month) / days_in
        register = round(
            register + per_day[key] / 96 * _HOURLY[local.hour] * rng.uniform(0.85, 1.15), 1
        )
        if i == e.gap_at:
            continue  # the meter misses this reading: the next one is flagged as after a gap
        yield ReadingIn(meter=ref, at=at, value=register)


def meter_ref(e: SyntheticEnterprise) -> str:
    return f"SYN-{e.registration.credit_code}-E1"


@dataclass(frozen=True)
class Loaded:
    enterprises: int
    readings: int
    flagged: int
    reports: int
    key_id: str
    secret: str  # the pusher's new signing key (to push more readings by hand)


async def district_codes(tx: Tx) -> list[str]:
    """The programme's districts; the test districts are imported first when there are none."""
    if not await behaviours.district_count(tx.conn):
        from integrations.districts import read_districts_file

        await behaviours.import_districts(tx, read_districts_file(TEST_DISTRICTS))
    return sorted((await behaviours.default_cache().get(tx.conn)).districts.codes)


async def prepare(
    tx: Tx, d: District, privacy: PrivacySettings, *, region_code: str, key_id: str
) -> tuple[dict[str, Any], str]:
    """Register the district's enterprises (one import), the utility and a new signing key,
    each enterprise's site and meter; the enterprises by credit code and the key's secret."""
    lines = ["credit_code,name,industry,district,size_class"]
    lines += [
        f"{r.credit_code},{r.name},{r.industry},{r.district},{r.size_class}"
        for r in (e.registration for e in d.enterprises)
    ]
    await service.import_csv(tx, "\n".join(lines) + "\n")
    registered = await service.enterprises_by_credit_code(
        tx.conn, [e.registration.credit_code for e in d.enterprises]
    )
    await behaviours.register_operator(
        tx, PUSHER, name="Synthetic grid", kind="utility", region_code=region_code, scopes=[]
    )  # a pusher of enterprises' meters only: no resident behaviour, not linkable
    secret = await behaviours.add_signing_key(tx, PUSHER, key_id, privacy=privacy)
    for e in d.enterprises:
        eid = registered[e.registration.credit_code].id
        site = await energy.add_site(tx, eid, SiteIn(name="主厂区"))
        await energy.add_meter(
            tx,
            eid,
            MeterIn(
                site_id=site.id, ref=meter_ref(e), kind="electricity", unit="kWh", pusher=PUSHER
            ),
        )
    return registered, secret


async def load(
    conn: Any,
    *,
    seed: int = 7,
    enterprises: int = 300,
    days: int = 365,
    year: int = 2025,
    zone: ZoneInfo,
    privacy: PrivacySettings,
    region_code: str,
    progress: Any = None,
    with_pollutants: bool = False,
) -> Loaded:
    """Load a synthetic district on ``conn`` through the services: the registrations in one
    transaction, then each meter's readings as its pusher would send them (batches of
    ``BATCH``, one transaction each) and each enterprise's monthly reports. Loading the same
    seed again changes nothing (the same enterprises, readings duplicates, reports the same
    content) but adds a new signing key. ``with_pollutants``: each enterprise's monthly
    pollutants too (:func:`pollutant_reports`)."""
    key_id = (
        f"syn{seed}-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"  # a new key each load
    )
    async with transaction_on(conn) as tx:
        codes = await district_codes(tx)
        d = district(seed=seed, enterprises=enterprises, year=year, districts=codes)
        registered, secret = await prepare(tx, d, privacy, region_code=region_code, key_id=key_id)
    total = flagged = 0
    latest = datetime(year, 1, 1, tzinfo=zone) + timedelta(days=days + 1)
    for e in d.enterprises:
        batch: list[ReadingIn] = []
        for r in readings(e, year, zone, days=days, seed=seed):
            batch.append(r)
            if len(batch) == BATCH:
                total, flagged = await _push(conn, batch, zone, latest, total, flagged)
                batch = []
        if batch:
            total, flagged = await _push(conn, batch, zone, latest, total, flagged)
        async with transaction_on(conn) as tx:
            eid = registered[e.registration.credit_code].id
            for report in reports(e, year, seed):
                await energy.submit_report(tx, eid, report)
            if with_pollutants:
                await pollutants.load(tx, [(eid, m) for m in pollutant_reports(e, year, seed)])
        if progress is not None:
            progress(e.n, len(d.enterprises), total)
    return Loaded(
        enterprises=len(d.enterprises),
        readings=total,
        flagged=flagged,
        reports=12 * len(d.enterprises),
        key_id=key_id,
        secret=secret,
    )


async def _push(
    conn: Any, batch: list[ReadingIn], zone: ZoneInfo, now: datetime, total: int, flagged: int
) -> tuple[int, int]:
    async with transaction_on(conn) as tx:
        result = await energy.ingest_readings(tx, PUSHER, batch, zone=zone, now=now)
    return total + len(batch), flagged + result.flagged


# --- pollutants, and the accounts without meters ----------------------------------------------


def pollutant_control(e: SyntheticEnterprise, seed: int) -> float:
    """What multiplies the industry's pollutant intensities for this enterprise: its energy
    efficiency (with a little noise) in ``SYNERGY_PLANTED``, elsewhere its end-of-pipe control,
    drawn independently of its efficiency."""
    rng = random.Random(seed * 7919 + e.n)
    if e.industry.code == SYNERGY_PLANTED:
        return e.efficiency * math.exp(rng.gauss(0.0, 0.05))
    return math.exp(rng.gauss(0.0, 0.45))


def pollutant_reports(e: SyntheticEnterprise, year: int, seed: int) -> list[PollutantsIn]:
    """The enterprise's twelve months of pollutants: online monitoring for the enterprises
    above designated size (with their permit's figure beside, which the monitoring
    outranks), their own report for the others; tonnes when a month's amount is a tonne or
    more, kg below."""
    profile = POLLUTANT_PROFILES[e.industry.code]
    factor = pollutant_control(e, seed) * (1 - POLLUTANT_TREND) ** (year - POLLUTANT_BASE_YEAR)
    above = e.registration.size_class == "above"
    out = []
    for month in _month_starts(year):
        value = added_value(e, month)
        lines = []
        for pollutant, per_10k in zip(("so2", "nox", "pm", "vocs"), profile, strict=True):
            kg = round(per_10k * factor * value, 3)
            if kg <= 0:
                continue
            amount, unit = (round(kg / 1000, 6), "t") if kg >= 1000 else (kg, "kg")
            source = "online_monitoring" if above else "report"
            lines.append(
                PollutantLineIn(pollutant=pollutant, amount=amount, unit=unit, source=source)  # type: ignore[arg-type]
            )
            if above and pollutant in ("so2", "nox"):
                lines.append(
                    PollutantLineIn(
                        pollutant=pollutant,  # type: ignore[arg-type]
                        amount=round(kg * 1.1, 3),
                        unit="kg",
                        source="permit",
                    )
                )
        out.append(PollutantsIn(month=month, lines=lines))
    return out


def activity(e: SyntheticEnterprise, enterprise_id: Any, year: int) -> list[ActivityRow]:
    """The year's activity as accounting reads it (enterprises.activity), without the meters:
    the electricity the meter would sum and the reports' lines in canonical units (green
    electricity as far as its certificates cover it)."""
    out = []
    for report in reports(e, year, 0):
        month = report.period_start
        out.append(
            ActivityRow(
                enterprise_id=enterprise_id,
                month=month,
                kind="electricity",
                quantity=monthly_electricity_kwh(e, month),
                source="meter",
            )
        )
        for line in report.lines:
            factor = energy.unit_factor(line.kind, line.unit) or 1.0
            out.append(
                ActivityRow(
                    enterprise_id=enterprise_id,
                    month=month,
                    kind=line.kind,
                    quantity=line.quantity * factor,
                    source="report",
                )
            )
    return out


async def load_accounts(
    tx: Tx, d: District, years: Sequence[int], *, basis: Basis, with_pollutants: bool = True
) -> dict[str, Any]:
    """Register the district's enterprises and record their accounts of ``years`` directly:
    emissions under ``basis`` from :func:`activity`, and (``with_pollutants``) their
    pollutants through ``enterprises.pollutants.load``: a constant number of statements per
    year. The enterprises by credit code."""
    lines = ["credit_code,name,industry,district,size_class"]
    lines += [
        f"{r.credit_code},{r.name},{r.industry},{r.district},{r.size_class}"
        for r in (e.registration for e in d.enterprises)
    ]
    await service.import_csv(tx, "\n".join(lines) + "\n")
    registered = await service.enterprises_by_credit_code(
        tx.conn, [e.registration.credit_code for e in d.enterprises]
    )
    for year in years:
        rows = [
            r
            for e in d.enterprises
            for r in activity(e, registered[e.registration.credit_code].id, year)
        ]
        await accounting.record(
            tx, rows, start=date(year, 1, 1), end=date(year + 1, 1, 1), basis=basis
        )
        if with_pollutants:
            await pollutants.load(
                tx,
                [
                    (registered[e.registration.credit_code].id, month)
                    for e in d.enterprises
                    for month in pollutant_reports(e, year, d.seed)
                ],
            )
    return registered
