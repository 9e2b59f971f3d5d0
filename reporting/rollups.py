"""The rollups the government reports read (never events), refreshed set-wise by a periodic job
from the owners' published aggregates: ``behaviours.reads.travel_cube`` (accepted events by
period with every margin), ``points.reads.flows_between`` (the ledger's movements by day) and
``enterprises.accounting`` / ``enterprises.grades`` (emissions, credits, grades).

A refresh replaces whole periods in one transaction: it asks the owner for the periods'
figures, applies disclosure control to each period's tables (reporting.disclosure: the
suppression pattern is stored with the rows, so every answer and export publishes the same
pattern), deletes the periods' rows and copies the new ones. Idempotent: running it twice
writes the same rows.

Participants are distinct residents of each cell's own period (day, month, year): a month's
count is read from that month's events, never summed over its days.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from behaviours import reads as behaviour_reads
from enterprises import accounting, grades, offsets
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from points import reads as ledger_reads
from reporting import disclosure
from reporting import repository as repo
from reporting.disclosure import Line, Rule, Stat
from reporting.settings import ReportingSettings
from rewards import liability

Grain = Literal["day", "month", "year"]
ALL = "*"


# --- the calendar ----------------------------------------------------------------------------


def period_of(grain: str, day: date) -> date:
    """The first day of the period of ``grain`` that holds ``day``."""
    if grain == "day":
        return day
    if grain == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def next_period(grain: str, start: date) -> date:
    if grain == "day":
        return start + timedelta(days=1)
    if grain == "month":
        return date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return date(start.year + 1, 1, 1)


def periods(grain: str, first: date, last: date) -> list[date]:
    """The periods of ``grain`` from the one holding ``first`` to the one holding ``last``."""
    out, p = [], period_of(grain, first)
    while p <= last:
        out.append(p)
        p = next_period(grain, p)
    return out


def instant(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``, in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _last_day(year_start: date) -> date:
    return date(year_start.year, 12, 31)


def today(zone: ZoneInfo, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(zone).date()


# --- disclosure rules of the rollups ---------------------------------------------------------


def resident_rule(s: ReportingSettings) -> Rule:
    return Rule(k=s.min_contributors)


def enterprise_rule(s: ReportingSettings) -> Rule:
    return Rule(
        k=s.enterprise_min_contributors, dominance_n=s.dominance_n, dominance_k=s.dominance_k
    )


def count_rule(s: ReportingSettings) -> Rule:
    """Counts of enterprises (grades): frequency only (a count has no dominant contributor)."""
    return Rule(k=s.enterprise_min_contributors)


def _protected_grid(stats: dict[tuple[str, str], Stat], rule: Rule) -> set[Hashable]:
    rows = sorted({r for r, _ in stats if r != ALL})
    cols = sorted({c for _, c in stats if c != ALL})
    return disclosure.protect(stats, disclosure.grid_lines(rows, cols, ALL), rule)


# --- green travel ----------------------------------------------------------------------------


def travel_rows(
    grain: str, cells: Iterable[behaviour_reads.TravelCell], rule: Rule
) -> list[tuple[Any, ...]]:
    """The rows of ``reporting_travel`` for the cells of whole periods, suppression applied per
    period to its district x mode table with margins."""
    by_period: dict[date, list[behaviour_reads.TravelCell]] = defaultdict(list)
    for c in cells:
        by_period[c.period].append(c)
    out: list[tuple[Any, ...]] = []
    for period, found in sorted(by_period.items()):
        grid = {
            (c.district or ALL, c.mode or ALL): Stat(contributors=c.participants, value=c.grams)
            for c in found
            if c.methodology is None
        }
        hidden = _protected_grid(grid, rule)
        for c in found:
            key = (c.district or ALL, c.mode or ALL)
            suppressed = (
                key in hidden
                if c.methodology is None
                else disclosure.primary(Stat(contributors=c.participants, value=c.grams), rule)
            )
            out.append(
                (grain, period, key[0], key[1], c.methodology or ALL,
                 c.trips, c.participants, c.grams, c.points, suppressed)
            )  # fmt: skip
    return out


async def refresh_travel(
    tx: Tx, grain: Grain, first: date, last: date, *, timezone: str, settings: ReportingSettings
) -> int:
    """Recompute the periods of ``grain`` holding [first, last]: one read of the owner's cube."""
    zone = ZoneInfo(timezone)
    ps = periods(grain, first, last)
    cells = await behaviour_reads.travel_cube(
        tx.conn,
        unit=grain,
        since=instant(ps[0], zone),
        until=instant(next_period(grain, ps[-1]), zone),
        timezone=timezone,
    )
    rows = travel_rows(grain, cells, resident_rule(settings))
    await repo.replace_travel(tx.conn, grain, ps, rows)
    await repo.mark_refreshed(tx.conn, f"travel_{grain}", ps[0], ps[-1], datetime.now(UTC))
    return len(rows)


# --- periods tied to their sub-periods ------------------------------------------------------------

TableKey = tuple[date, str, str]  # (period, district, mode)
JOINT_MAX = 600


def protect_linked(
    parent: date,
    tables: dict[date, dict[tuple[str, str], Stat]],
    hidden: set[TableKey],
    rule: Rule,
) -> set[TableKey]:
    """The cells to suppress in a period's table and its sub-periods' tables together: each
    table's lines, and the lines tying them (a cell of the parent is the sum of the same cell of
    every sub-period: a month of its days, a year of its months), so that a complement in the
    month is not rebuilt from its published days, nor a day's suppressed cell from the month
    minus the other days. ``hidden``: what is suppressed already (never published again). The
    one-suppression rule holds on every line; the exact check solves the tables together up
    to ``JOINT_MAX`` suppressed cells, each table on its own beyond."""
    stats = {(p, *k): st for p, t in tables.items() for k, st in t.items()}
    groups: list[list[Line]] = []
    for p, t in tables.items():
        rows = sorted({d for d, _ in t if d != ALL})
        cols = sorted({m for _, m in t if m != ALL})
        groups.append(
            [
                Line((p, *ln.total), tuple((p, *x) for x in ln.parts))  # type: ignore[misc]
                for ln in disclosure.grid_lines(rows, cols, ALL)
            ]
        )
    children = sorted(p for p in tables if p != parent)
    cells = sorted({k for t in tables.values() for k in t})
    links = [Line((parent, *c), tuple((ch, *c) for ch in children)) for c in cells]
    lines = [ln for g in groups for ln in g] + links
    # The exact check solves all the tables as one system while that stays affordable; past
    # JOINT_MAX suppressed cells, each table on its own (the line rule still ties them).
    joint = len(hidden) <= JOINT_MAX
    out = disclosure.protect(
        stats, lines, rule, pre=hidden, exact=None if joint else groups, pre_checked=not joint
    )
    return {k for k in out if isinstance(k, tuple)}


async def link_periods(tx: Tx, grain: str, parent: date, rule: Rule) -> int:
    """Protect a month with its days (``grain`` "month") or a year with its months ("year"),
    from the stored rows; suppress what that adds. Returns how many cells it added."""
    child_grain = "day" if grain == "month" else "month"
    end = next_period(grain, parent) - timedelta(days=1)
    rows = [
        *(("p", r) for r in await repo.travel_tables(tx.conn, grain, parent, parent)),
        *(("c", r) for r in await repo.travel_tables(tx.conn, child_grain, parent, end)),
    ]
    tables: dict[date, dict[tuple[str, str], Stat]] = defaultdict(dict)
    hidden: set[TableKey] = set()
    for _, r in rows:
        key = (r["period"], r["district"], r["mode"])
        tables[key[0]][key[1:]] = Stat(contributors=r["participants"], value=r["grams"])
        if r["suppressed"]:
            hidden.add(key)
    if parent not in tables:
        return 0
    added = protect_linked(parent, tables, hidden, rule) - hidden
    await repo.suppress_travel(tx.conn, grain, [k for k in added if k[0] == parent])
    await repo.suppress_travel(tx.conn, child_grain, [k for k in added if k[0] != parent])
    return len(added)


async def link_window(
    tx: Tx, months: Sequence[date], years: Sequence[date], rule: Rule, *, rounds: int = 5
) -> int:
    """Tie the refreshed months to their days and years to their months, again while one pass
    adds a suppression to the other (each pass only adds: it ends)."""
    total = 0
    for _ in range(rounds):
        added = 0
        for y in years:
            added += await link_periods(tx, "year", y, rule)
        for m in months:
            added += await link_periods(tx, "month", m, rule)
        total += added
        if not added or not years:
            break
    return total


# --- the ledger's points -----------------------------------------------------------------------

_FLOW_FIELDS = (
    "issued", "clawed_back", "redeemed", "refunded", "expired", "donated",
    "other_in", "other_out", "grams_issued", "grams_retired",
)  # fmt: skip


async def refresh_points(tx: Tx, first: date, last: date, *, timezone: str) -> int:
    """The ledger's daily movements of [first, last], classified by the liability view's own
    rules (rewards.liability), from one set-wise read of those days' transfers."""
    zone = ZoneInfo(timezone)
    until = instant(last + timedelta(days=1), zone)
    flows = await ledger_reads.flows_between(
        tx.conn, unit="day", timezone=timezone, since=instant(first, zone), until=until
    )
    view = liability.build(flows, unit="month", timezone=timezone, until=until)
    rows = [(p.period, *(getattr(p, f) for f in _FLOW_FIELDS)) for p in view.periods]
    await repo.replace_points(tx.conn, first, last, rows)
    await repo.mark_refreshed(tx.conn, "points", first, last, datetime.now(UTC))
    return len(rows)


# --- enterprises -------------------------------------------------------------------------------


def industry_of(code: str, settings: EnterprisesSettings) -> str:
    return grades.industry_group(code, settings.grade_industry_digits)


class _Acc:
    __slots__ = ("by", "energy", "offsets")

    def __init__(self) -> None:
        self.by: dict[Any, float] = defaultdict(float)  # emissions per enterprise
        self.energy = 0.0
        self.offsets = 0


def enterprise_rows(
    grain: str,
    months: Sequence[accounting.EnterpriseMonth],
    credits: Sequence[accounting.YearCredit],
    rule: Rule,
    ent: EnterprisesSettings,
) -> list[tuple[Any, ...]]:
    """Rows of ``reporting_enterprise`` (every margin of district x industry), with the
    contributors and the two largest enterprises of each cell, suppression applied per period."""
    cells: dict[tuple[date, str, str], _Acc] = defaultdict(_Acc)
    for m in months:
        period = period_of(grain, m.month)
        for d in (m.district_code, ALL):
            for i in (industry_of(m.industry, ent), ALL):
                acc = cells[(period, d, i)]
                acc.by[m.enterprise_id] += m.emissions_kg
                acc.energy += m.energy_kgce
    if grain == "year":
        for c in credits:
            period = date(c.year, 1, 1)
            for d in (c.district_code, ALL):
                for i in (industry_of(c.industry, ent), ALL):
                    cells[(period, d, i)].offsets += c.reduction_g
    by_period: dict[date, dict[tuple[str, str], _Acc]] = defaultdict(dict)
    for (period, d, i), acc in cells.items():
        by_period[period][(d, i)] = acc
    out: list[tuple[Any, ...]] = []
    for period, table in sorted(by_period.items()):
        stats = {}
        for key, acc in table.items():
            values = sorted(acc.by.values(), reverse=True)
            stats[key] = Stat(contributors=len(values), value=sum(values), top=tuple(values[:2]))
        hidden = _protected_grid(stats, rule)
        for key, acc in table.items():
            s = stats[key]
            top = (*s.top, 0.0, 0.0)
            out.append(
                (grain, period, key[0], key[1], s.contributors, s.value, acc.energy,
                 top[0], top[1], acc.offsets, key in hidden)
            )  # fmt: skip
    return out


async def refresh_enterprises(
    tx: Tx, years: Sequence[int], *, settings: ReportingSettings, ent: EnterprisesSettings
) -> int:
    """Months and years of ``years``: emissions, energy, offsets; and the grade counts."""
    first, last = min(years), max(years)
    months = await accounting.monthly_by_enterprise(
        tx.conn, ent, date(first, 1, 1), date(last + 1, 1, 1)
    )
    # What offsets the years' emissions: verified reductions credited, and pooled residents'
    # reductions the enterprises retired against those years (enterprises.offsets), each once.
    credits = [
        *await accounting.credits_by_year(tx.conn, first, last),
        *await offsets.retired_by_year(tx.conn, first, last),
    ]
    rule = enterprise_rule(settings)
    n = 0
    for grain in ("month", "year"):
        rows = enterprise_rows(grain, months, credits, rule, ent)
        ps = periods(grain, date(first, 1, 1), date(last, 12, 1))
        await repo.replace_enterprise(tx.conn, grain, ps, rows)
        n += len(rows)
    grade_rows: list[tuple[Any, ...]] = []
    for year in years:
        assessed = await grades.grade_year(tx.conn, year, ent)
        ids = [a.grade.enterprise_id for a in assessed]
        where = {i.enterprise_id: i for i in await accounting.identities(tx.conn, ids)}
        grade_rows += grade_table(
            year,
            [
                (
                    where[a.grade.enterprise_id].district_code,
                    industry_of(where[a.grade.enterprise_id].industry, ent),
                    a.grade.grade,
                )
                for a in assessed
            ],
            count_rule(settings),
        )
    await repo.replace_grades(tx.conn, list(years), grade_rows)
    now = datetime.now(UTC)
    await repo.mark_refreshed(tx.conn, "enterprises", date(first, 1, 1), date(last, 12, 31), now)
    return n + len(grade_rows)


def grade_table(
    year: int, graded: Sequence[tuple[str, str, int | None]], rule: Rule
) -> list[tuple[Any, ...]]:
    """Counts of enterprises per grade ('0': not graded) by district and by industry, with
    margins; the district x grade and industry x grade tables share their grade margins, so
    both are protected together (one set of lines)."""
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for district, industry, g in graded:
        grade = str(g or 0)
        for key in (
            (district, ALL, grade), (ALL, industry, grade), (district, ALL, ALL),
            (ALL, industry, ALL), (ALL, ALL, grade), (ALL, ALL, ALL),
        ):  # fmt: skip
            counts[key] += 1
    districts = sorted({d for d, _, _ in counts if d != ALL})
    industries = sorted({i for _, i, _ in counts if i != ALL})
    levels = [str(n) for n in range(6)]
    lines: list[Line] = []
    for d in districts:
        lines.append(Line((d, ALL, ALL), tuple((d, ALL, lv) for lv in levels)))
    for i in industries:
        lines.append(Line((ALL, i, ALL), tuple((ALL, i, lv) for lv in levels)))
    for lv in levels:
        lines.append(Line((ALL, ALL, lv), tuple((d, ALL, lv) for d in districts)))
        lines.append(Line((ALL, ALL, lv), tuple((ALL, i, lv) for i in industries)))
    lines.append(Line((ALL, ALL, ALL), tuple((ALL, ALL, lv) for lv in levels)))
    lines.append(Line((ALL, ALL, ALL), tuple((d, ALL, ALL) for d in districts)))
    lines.append(Line((ALL, ALL, ALL), tuple((ALL, i, ALL) for i in industries)))
    stats = {key: Stat(contributors=n, value=n) for key, n in counts.items()}
    hidden = disclosure.protect(stats, lines, rule)
    return [(year, *key, n, key in hidden) for key, n in sorted(counts.items())]


# --- the periodic job --------------------------------------------------------------------------


async def refresh_window(
    tx: Tx,
    *,
    timezone: str,
    settings: ReportingSettings,
    ent: EnterprisesSettings,
    now: datetime | None = None,
    first: date | None = None,
    last: date | None = None,
    years: bool = False,
) -> dict[str, int]:
    """The periodic refresh: the last ``refresh_days`` days (or [first, last]) at the day and
    month grains, the ledger's days, the enterprises' current and previous year; the year
    grain when ``years`` (its distinct participants read a whole year of events: the nightly
    run, or `tanpuhui reporting refresh`)."""
    zone = ZoneInfo(timezone)
    end = last or today(zone, now)
    start = first or end - timedelta(days=settings.refresh_days - 1)
    out = {
        "travel_day": await refresh_travel(
            tx, "day", start, end, timezone=timezone, settings=settings
        ),
        "travel_month": await refresh_travel(
            tx, "month", start, end, timezone=timezone, settings=settings
        ),
        "points": await refresh_points(tx, start, end, timezone=timezone),
    }
    if years:
        out["travel_year"] = await refresh_travel(
            tx, "year", start, end, timezone=timezone, settings=settings
        )
    out["linked"] = await link_window(
        tx,
        periods("month", start, end)
        if not years
        else [m for y in periods("year", start, end) for m in periods("month", y, _last_day(y))],
        periods("year", start, end) if years else [],
        resident_rule(settings),
    )
    enterprise_years = sorted({start.year, end.year, end.year - 1})
    out["enterprises"] = await refresh_enterprises(tx, enterprise_years, settings=settings, ent=ent)
    return out
