"""Targets and emission rights (issue 13, item 4; docs/allowances.md).

A government administrator sets a region's control target for a year (a *period*) and
allocates it, in rounds, to the region's enterprises by one recorded method (historical
share, intensity benchmark x output, or by hand); the allocated sum never exceeds the target.
Allocation issues ``ALLOWANCE_G`` on the ledger from the flagged system account
``system:allowance_issuance`` to each enterprise, one transfer per line.

While the period is open, an enterprise with a surplus after its own emissions offers it for
sale at a price; another enterprise of the same region buys the offer whole, and the ledger
transfer (idempotency key ``allowance:trade:<offer>``) settles it. The legality checks, each
with its own code, run at the offer and again at the purchase under the locks: the period
open (``allowance_period_closed``), the seller's surplus after its emissions
(``allowance_surplus_insufficient``), the same region (``allowance_region_mismatch``), no
surrendered allowance (``allowance_surrendered``), not one's own offer
(``allowance_own_offer``). An offer is bought at most once: the purchase locks the offer's row
and moves it from open to sold by a conditional update. With the setting
``allowance_approval = "government"`` (the default) the purchase does not settle: the offer
waits in ``pending_approval`` with its buyer until a government administrator approves it
(:func:`approve`: the checks again, then the same transfer) or rejects it (:func:`reject`: open
again); requests and decisions are rows of ``allowance_approvals`` (migration 0071).

Surrender settles an enterprise's year: the allowance its emissions need (less the offsets it
retired for the year, ``enterprises.offsets.retired_grams``) moves to
``system:allowance_surrendered``, whose balance never decreases (migration 0046's trigger).
Closing a period withdraws its open offers and surrenders for every enterprise not yet done.

Every write takes the caller's :class:`kit.db.Tx` (the government's writes are audited by
``reporting.allowances_admin``); reads take a connection.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from enterprises import accounting_repository as accounting
from enterprises import allowances_repository as repo
from enterprises.accounting import ECONOMIC
from enterprises.allowances_errors import (
    AllocationExceedsTarget,
    EnterpriseOutsideRegion,
    NothingToAllocate,
    NotPending,
    OfferNotFound,
    OfferNotOpen,
    OtherRegionThisYear,
    OwnOffer,
    PeriodClosed,
    PeriodNotFound,
    RegionMismatch,
    SurplusInsufficient,
    Surrendered,
    TargetBelowAllocated,
)
from enterprises.allowances_schemas import (
    Allocation,
    AllocationIn,
    AllocationLine,
    Allowance,
    ApprovalState,
    Closed,
    Compliance,
    IndustryTotal,
    Offer,
    OfferIn,
    OfferPage,
    Period,
    Surrender,
)
from enterprises.factors import Basis
from enterprises.settings import EnterprisesSettings
from kit import cursor as cursors
from kit.db import Tx
from kit.errors import FieldError, InvalidInput
from points import service as ledger
from points.schemas import FLAG_ISSUANCE, AccountKey, Asset, Owner, PointsPolicy, TransferRequest

ASSET: Final[Asset] = "ALLOWANCE_G"
ALLOWANCE_ISSUANCE: Final = Owner("system", "allowance_issuance")
SURRENDERED: Final = Owner("system", "allowance_surrendered")
BENCHMARKS_FILE: Final = Path(__file__).with_name("allowance_benchmarks.json")
PAGE_MAX: Final = 200
G_PER_T: Final = 1_000_000


# --- regions, industries, benchmarks -----------------------------------------------------------


def region_prefix(region_code: str) -> str:
    """The code less its trailing "00" pairs: a district's code starts with it when the
    district is in the region (440300 -> 4403; 440000 -> 44; 440305 -> 440305)."""
    out = region_code
    while out.endswith("00"):
        out = out[:-2]
    return out


def in_region(district_code: str, region_code: str) -> bool:
    return district_code.startswith(region_prefix(region_code))


def division(industry: str) -> str:
    """The GB/T 4754 division an allocation line counts under (C2611 -> C26)."""
    return industry[:3]


class BenchmarkTable(msgspec.Struct, frozen=True, kw_only=True):
    unit: str
    default: float
    default_source: str
    industries: dict[str, float]
    sources: dict[str, str]


@lru_cache(maxsize=1)
def benchmarks() -> BenchmarkTable:
    """enterprises/allowance_benchmarks.json (read once)."""
    data = json.loads(BENCHMARKS_FILE.read_text(encoding="utf-8"))
    return BenchmarkTable(
        unit=data["unit"],
        default=float(data["default"]["t_per_10k_cny"]),
        default_source=data["default"]["source"],
        industries={k: float(v["t_per_10k_cny"]) for k, v in data["industries"].items()},
        sources={k: v["source"] for k, v in data["industries"].items()},
    )


def benchmark_of(industry: str, table: dict[str, float], default: float) -> tuple[str, float]:
    """(the prefix matched, or "default"; t CO2 per 10,000 CNY): the longest prefix wins."""
    for n in range(len(industry), 0, -1):
        if industry[:n] in table:
            return industry[:n], table[industry[:n]]
    return "default", default


def largest_remainder(amount: int, weights: dict[uuid.UUID, int]) -> dict[uuid.UUID, int]:
    """``amount`` shared by integer ``weights`` (> 0): floors, then one more gram to the largest
    remainders (ties by id), so the shares add up to ``amount`` exactly."""
    total = sum(weights.values())
    shares = {k: amount * w // total for k, w in weights.items()}
    left = amount - sum(shares.values())
    order = sorted(weights, key=lambda k: (-(amount * weights[k] % total), str(k)))
    for k in order[:left]:
        shares[k] += 1
    return shares


# --- the figures accounting records ------------------------------------------------------------


async def yearly(
    conn: Any,
    settings: EnterprisesSettings,
    enterprise_ids: Sequence[uuid.UUID] | None,
    first: int,
    last: int,
) -> tuple[dict[tuple[uuid.UUID, int], int], dict[tuple[uuid.UUID, int], float]]:
    """(emissions in grams, added value in 10,000 CNY) by (enterprise, year) for the years
    [first, last], from the accounting's recorded emissions under the default basis."""
    rows = await accounting.yearly_kinds(
        conn, Basis.of(settings).label, first, last, enterprise_ids=enterprise_ids
    )
    kg: dict[tuple[uuid.UUID, int], float] = defaultdict(float)
    value: dict[tuple[uuid.UUID, int], float] = defaultdict(float)
    for r in rows:
        key = (r["enterprise_id"], r["year"])
        if r["kind"] == "added_value":
            value[key] += r["quantity"]
        elif r["kind"] not in ECONOMIC:
            kg[key] += r["emissions_kg"]
    return {k: _grams(v) for k, v in kg.items()}, dict(value)


GRAMS_CAP: Final = 10**18  # 10^12 t: beyond any enterprise's real year


def _grams(kg: float) -> int:
    """kg as whole grams; absurd or overflowing figures (the data side accepts any float)
    capped, so that a comparison never fails on them."""
    g = kg * 1000
    if not math.isfinite(g):
        return GRAMS_CAP if g > 0 else -GRAMS_CAP
    return max(-GRAMS_CAP, min(GRAMS_CAP, round(g)))


async def emissions_g(
    conn: Any, settings: EnterprisesSettings, enterprise_ids: Sequence[uuid.UUID], year: int
) -> dict[uuid.UUID, int]:
    grams, _ = await yearly(conn, settings, enterprise_ids, year, year)
    return {e: max(0, grams.get((e, year), 0)) for e in enterprise_ids}


async def _offsets_retired(conn: Any, enterprise_id: uuid.UUID, year: int) -> int:
    # The offsets' module is another part's (issue 13, item 2): imported where it is used.
    from enterprises.offsets import retired_grams

    return int(await retired_grams(conn, enterprise_id, year))


# --- views -------------------------------------------------------------------------------------


def _period(r: Any) -> Period:
    return Period(
        region_code=r["region_code"],
        year=r["year"],
        target_g=r["target_g"],
        allocated_g=r["allocated_g"],
        unallocated_g=r["target_g"] - r["allocated_g"],
        status=r["status"],
        updated_at=r["updated_at"],
        closed_at=r["closed_at"],
    )


def _offer(r: Any) -> Offer:
    return Offer(
        id=r["id"],
        region_code=r["region_code"],
        year=r["year"],
        seller_id=r["seller_id"],
        quantity_g=r["quantity_g"],
        price_fen_per_t=r["price_fen_per_t"],
        amount_fen=(r["quantity_g"] * r["price_fen_per_t"] + G_PER_T // 2) // G_PER_T,
        status=r["status"],
        buyer_id=r["buyer_id"],
        transfer_id=None if r["transfer_id"] is None else str(r["transfer_id"]),
        created_at=r["created_at"],
        settled_at=r["settled_at"],
        approval=None
        if r["a_id"] is None
        else ApprovalState(
            status=r["a_status"],
            buyer_id=r["a_buyer_id"],
            requested_at=r["a_requested_at"],
            decided_at=r["a_decided_at"],
            reason=r["a_reason"],
        ),
    )


def _held(p: Any) -> int:
    return int(p["allocated_g"] + p["bought_g"] - p["sold_g"] - p["surrendered_g"])


def _allocation(period: Any, a: Any, lines: Iterable[Any]) -> Allocation:
    shown = [
        AllocationLine(
            enterprise_id=r["enterprise_id"],
            industry=r["industry"],
            basis_value=r["basis_value"],
            amount_g=r["amount_g"],
            transfer_id=None if r["transfer_id"] is None else str(r["transfer_id"]),
        )
        for r in lines
    ]
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in shown:
        by[line.industry][0] += 1
        by[line.industry][1] += line.amount_g
    return Allocation(
        id=a["id"],
        region_code=period["region_code"],
        year=period["year"],
        method=a["method"],
        parameters=a["parameters"],
        amount_g=a["amount_g"],
        allocated_by=a["allocated_by"],
        allocated_at=a["allocated_at"],
        by_industry=[
            IndustryTotal(industry=k, enterprises=v[0], amount_g=v[1])
            for k, v in sorted(by.items())
        ],
        lines=shown,
    )


async def open_accounts(conn: Any) -> None:
    await ledger.open_accounts(
        conn, [AccountKey("system", ALLOWANCE_ISSUANCE.owner_id, ASSET)], flags=FLAG_ISSUANCE
    )
    await ledger.open_accounts(conn, [AccountKey("system", SURRENDERED.owner_id, ASSET)])


# --- government: targets, allocation, closing --------------------------------------------------


async def set_target(
    tx: Tx, region_code: str, year: int, target_g: int, *, now: datetime
) -> tuple[Period | None, Period]:
    """(before, after): the period created with ``target_g``, or its target revised (never
    below what is allocated, never once closed)."""
    conn = tx.conn
    found = await repo.period(conn, region_code, year, lock="update")
    if found is None:
        made = await repo.insert_period(conn, region_code, year, target_g)
        if made is not None:
            return None, _period(made)
        found = await repo.period(conn, region_code, year, lock="update")
        assert found is not None
    if found["status"] == "closed":
        raise PeriodClosed("The period is closed: its target no longer changes.")
    if target_g < found["allocated_g"]:
        raise TargetBelowAllocated(
            "The target would be below the allowance already allocated.",
            extra={"allocated_g": found["allocated_g"]},
        )
    return _period(found), _period(await repo.set_target(conn, found["id"], target_g, now))


def _shape_problems(data: AllocationIn) -> list[FieldError]:
    wrong: list[FieldError] = []
    m = data.method

    def only(field: str, ok: bool) -> None:
        if not ok:
            wrong.append(FieldError(f"$.{field}", f"not used by the {m} method"))

    only("amount_g", data.amount_g is None or m == "historical_share")
    only("base_years", not data.base_years or m == "historical_share")
    only("output_year", data.output_year is None or m == "benchmark")
    only("benchmarks", not data.benchmarks or m == "benchmark")
    only("lines", not data.lines or m == "manual")
    if m == "historical_share" and not data.base_years:
        wrong.append(FieldError("$.base_years", "the historical_share method needs base years"))
    if len(set(data.base_years)) != len(data.base_years):
        wrong.append(FieldError("$.base_years", "a year is listed twice"))
    if m == "manual" and not data.lines:
        wrong.append(FieldError("$.lines", "the manual method needs lines"))
    if len({line.enterprise_id for line in data.lines}) != len(data.lines):
        wrong.append(FieldError("$.lines", "an enterprise is listed twice"))
    if len({b.industry for b in data.benchmarks}) != len(data.benchmarks):
        wrong.append(FieldError("$.benchmarks", "an industry is listed twice"))
    return wrong


async def allocate(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    data: AllocationIn,
    *,
    actor: str,
    now: datetime,
) -> Allocation:
    """One allocation round of the period's target (module text); all of it or nothing."""
    wrong = _shape_problems(data)
    if wrong:
        raise InvalidInput(
            "The allocation does not fit its method.", code="validation_failed", errors=wrong
        )
    conn = tx.conn
    period = await repo.period(conn, data.region_code, data.year, lock="update")
    if period is None:
        raise PeriodNotFound("No control target is set for that region and year.")
    if period["status"] == "closed":
        raise PeriodClosed("The period is closed: nothing more is allocated.")
    remaining = int(period["target_g"] - period["allocated_g"])
    members = {r["id"]: r for r in await repo.region_enterprises(conn, data.region_code)}
    basis = Basis.of(settings).label
    parameters: dict[str, Any]
    # (enterprise, industry, basis value, grams)
    lines: list[tuple[uuid.UUID, str, float | None, int]] = []
    if data.method == "manual":
        ids = [line.enterprise_id for line in data.lines]
        outside = sorted(str(e) for e in ids if e not in members)
        if outside:
            raise EnterpriseOutsideRegion(
                "Every line's enterprise must be registered in the region.",
                extra={"enterprise_ids": outside[:50]},
            )
        lines = [
            (x.enterprise_id, division(members[x.enterprise_id]["industry"]), None, x.amount_g)
            for x in data.lines
        ]
        parameters = {"lines": len(lines)}
    elif data.method == "historical_share":
        grams, _ = await yearly(
            conn, settings, list(members), min(data.base_years), max(data.base_years)
        )
        weights: dict[uuid.UUID, int] = defaultdict(int)
        for (e, y), g in grams.items():
            if y in data.base_years:
                weights[e] += g
        weights = {e: w for e, w in weights.items() if w > 0}
        if not weights:
            raise NothingToAllocate(
                "No enterprise of the region has recorded emissions in the base years."
            )
        amount = data.amount_g if data.amount_g is not None else remaining
        if amount <= 0 or amount > remaining:
            raise AllocationExceedsTarget(
                "The allocation exceeds what is left of the target.",
                extra={"remaining_g": remaining, "requested_g": amount},
            )
        shares = largest_remainder(amount, weights)
        lines = [
            (e, division(members[e]["industry"]), weights[e] / 1000, shares[e])
            for e in sorted(shares)
            if shares[e] > 0
        ]
        parameters = {
            "base_years": sorted(data.base_years),
            "basis": basis,
            "amount_g": amount,
            "weights_from": "emissions_kg over the base years, scope 1 + 2",
        }
    else:
        out_year = data.output_year if data.output_year is not None else data.year - 1
        _, value = await yearly(conn, settings, list(members), out_year, out_year)
        table = benchmarks()
        overrides = {b.industry: b.t_per_10k_cny for b in data.benchmarks}
        merged = {**table.industries, **overrides}
        used: dict[str, float] = {}
        for e in sorted(members):
            added = value.get((e, out_year), 0.0)
            if not 0 < added < math.inf:
                continue
            matched, bench = benchmark_of(members[e]["industry"], merged, table.default)
            used[matched] = bench
            g = math.floor(Fraction(str(bench)) * Fraction(str(added)) * G_PER_T)
            if g > 0:
                lines.append((e, division(members[e]["industry"]), added, g))
        if not lines:
            raise NothingToAllocate(
                "No enterprise of the region has a recorded added value in the output year."
            )
        parameters = {
            "output_year": out_year,
            "basis": basis,
            "unit": table.unit,
            "benchmarks_used": used,
            "overrides": overrides,
            "default_source": table.default_source,
            "sources": {k: table.sources[k] for k in used if k in table.sources},
        }
    total = sum(g for *_, g in lines)
    if total > remaining:
        raise AllocationExceedsTarget(
            "The allocation exceeds what is left of the target.",
            extra={"remaining_g": remaining, "requested_g": total},
        )
    ids = [e for e, *_ in lines]
    elsewhere = await repo.positions_elsewhere(conn, period["id"], data.year, ids)
    if elsewhere:
        raise OtherRegionThisYear(
            "An enterprise already holds another region's allowance of that year.",
            extra={"enterprise_ids": [str(e) for e in elsewhere[:50]]},
        )
    await open_accounts(conn)
    a = await repo.insert_allocation(
        conn,
        period_id=period["id"],
        method=data.method,
        parameters=parameters,
        amount_g=total,
        allocated_by=actor,
        now=now,
    )
    lines.sort(key=lambda x: x[0])
    transfers = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"allowance:allocation:{a['id']}:{e}",
                debit=ALLOWANCE_ISSUANCE,
                credit=Owner("enterprise", str(e)),
                asset=ASSET,
                amount=g,
                kind="allowance_allocation",
                reason_code=f"allocation_{data.method}",
                region_code=data.region_code,
                occurred_at=now,
                source_ref=f"allowance-allocation:{a['id']}",
            )
            for e, _, _, g in lines
        ],
        policy,
        now=now,
    )
    rows = [(e, ind, bv, g, int(t.id)) for (e, ind, bv, g), t in zip(lines, transfers, strict=True)]
    await repo.insert_lines(conn, a["id"], rows)
    await repo.add_allocated_positions(
        conn, period["id"], data.year, [(e, g) for e, *_, g in lines]
    )
    await repo.add_allocated(conn, period["id"], total, now)
    return _allocation(
        period,
        a,
        [
            {
                "enterprise_id": e,
                "industry": ind,
                "basis_value": bv,
                "amount_g": g,
                "transfer_id": tid,
            }
            for e, ind, bv, g, tid in rows
        ],
    )


async def _surrender_amounts(
    conn: Any, settings: EnterprisesSettings, positions: Sequence[Any], year: int
) -> dict[uuid.UUID, int]:
    """What each position surrenders: the allowance its emissions need less the offsets it
    retired for the year, never more than it holds."""
    ids = [p["enterprise_id"] for p in positions]
    emitted = await emissions_g(conn, settings, ids, year)
    out: dict[uuid.UUID, int] = {}
    for p in positions:
        e = p["enterprise_id"]
        need = max(0, emitted[e] - await _offsets_retired(conn, e, year))
        out[e] = min(_held(p) - p["offered_g"], need)
    return out


async def _settle_surrenders(
    tx: Tx,
    policy: PointsPolicy,
    period: Any,
    amounts: dict[uuid.UUID, int],
    now: datetime,
) -> list[Surrender]:
    await open_accounts(tx.conn)
    paying = sorted(e for e, g in amounts.items() if g > 0)
    transfers = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"allowance:surrender:{period['id']}:{e}",
                debit=Owner("enterprise", str(e)),
                credit=SURRENDERED,
                asset=ASSET,
                amount=amounts[e],
                kind="allowance_surrender",
                reason_code="compliance_surrender",
                region_code=period["region_code"],
                occurred_at=now,
                source_ref=f"allowance-period:{period['region_code']}:{period['year']}",
            )
            for e in paying
        ],
        policy,
        now=now,
    )
    ids = {e: str(t.id) for e, t in zip(paying, transfers, strict=True)}
    out = []
    for e in sorted(amounts):
        await repo.move_position(
            tx.conn, period["id"], e, surrendered=amounts[e], surrendered_at=now
        )
        out.append(
            Surrender(
                enterprise_id=e,
                year=period["year"],
                surrendered_g=amounts[e],
                transfer_id=ids.get(e),
                surrendered_at=now,
            )
        )
    return out


async def close(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    region_code: str,
    year: int,
    *,
    now: datetime,
) -> Closed:
    """The period's end: open offers withdrawn, every enterprise not surrendered yet surrenders
    (module text), then no more offers, purchases or allocation."""
    conn = tx.conn
    period = await repo.period(conn, region_code, year, lock="update")
    if period is None:
        raise PeriodNotFound("No control target is set for that region and year.")
    if period["status"] == "closed":
        raise PeriodClosed("The period is already closed.")
    withdrawn = await repo.withdraw_open_offers(conn, period["id"], now)
    freed: dict[uuid.UUID, int] = defaultdict(int)
    for w in withdrawn:
        freed[w["seller_id"]] += w["quantity_g"]
    for seller, q in sorted(freed.items()):
        await repo.move_position(conn, period["id"], seller, offered=-q)
    pending = [
        p
        for p in await repo.period_positions(conn, period["id"], lock=True)
        if p["surrendered_at"] is None
    ]
    surrenders = await _settle_surrenders(
        tx, policy, period, await _surrender_amounts(conn, settings, pending, year), now
    )
    closed = await repo.close_period(conn, period["id"], now)
    return Closed(period=_period(closed), offers_withdrawn=len(withdrawn), surrenders=surrenders)


async def periods(conn: Any, year: int | None = None) -> list[Period]:
    return [_period(r) for r in await repo.periods(conn, year)]


async def allocations(conn: Any, region_code: str, year: int) -> list[Allocation]:
    period = await repo.period(conn, region_code, year)
    if period is None:
        raise PeriodNotFound("No control target is set for that region and year.")
    rounds = await repo.allocations(conn, period["id"])
    by: dict[int, list[Any]] = defaultdict(list)
    for r in await repo.lines(conn, [a["id"] for a in rounds]):
        by[r["allocation_id"]].append(r)
    return [_allocation(period, a, by[a["id"]]) for a in rounds]


# --- enterprises: allowance, offers, purchases, compliance -------------------------------------


async def allowance(
    conn: Any, settings: EnterprisesSettings, enterprise_id: uuid.UUID, year: int
) -> Allowance:
    pos = await repo.position_of_year(conn, enterprise_id, year)
    period = None if pos is None else await repo.period_by_id(conn, pos["period_id"])
    emitted = (await emissions_g(conn, settings, [enterprise_id], year))[enterprise_id]
    balances = await ledger.balances(conn, "enterprise", str(enterprise_id))
    on_ledger = next((b.posted for b in balances if b.asset == ASSET), 0)
    held = 0 if pos is None else _held(pos)
    offered = 0 if pos is None else int(pos["offered_g"])
    return Allowance(
        enterprise_id=enterprise_id,
        year=year,
        region_code=None if period is None else period["region_code"],
        period_status=None if period is None else period["status"],
        allocated_g=0 if pos is None else pos["allocated_g"],
        bought_g=0 if pos is None else pos["bought_g"],
        sold_g=0 if pos is None else pos["sold_g"],
        surrendered_g=0 if pos is None else pos["surrendered_g"],
        held_g=held,
        offered_g=offered,
        emissions_g=emitted,
        surplus_g=max(0, held - emitted - offered),
        ledger_held_g=on_ledger,
        surrendered_at=None if pos is None else pos["surrendered_at"],
    )


async def make_offer(
    tx: Tx,
    settings: EnterprisesSettings,
    seller_id: uuid.UUID,
    data: OfferIn,
    *,
    now: datetime,
) -> Offer:
    """Offer ``quantity_g`` of the year's surplus at ``price_fen_per_t`` (legality checked)."""
    conn = tx.conn
    pos = await repo.position_of_year(conn, seller_id, data.year)
    if pos is None:
        raise SurplusInsufficient(
            "The enterprise holds no allowance of that year.", extra={"surplus_g": 0}
        )
    period = await repo.period_by_id(conn, pos["period_id"], lock="share")
    if period["status"] == "closed":
        raise PeriodClosed("The period is closed: no more offers.")
    pos = (await repo.lock_positions(conn, period["id"], [seller_id]))[seller_id]
    if pos["surrendered_at"] is not None:
        raise Surrendered("The enterprise surrendered its allowance of that year.")
    emitted = (await emissions_g(conn, settings, [seller_id], data.year))[seller_id]
    surplus = _held(pos) - emitted - pos["offered_g"]
    if data.quantity_g > surplus:
        raise SurplusInsufficient(
            "The quantity is more than the surplus after the enterprise's own emissions "
            "(and its other open offers).",
            extra={"surplus_g": max(0, surplus)},
        )
    offer_id = await repo.insert_offer(
        conn, period["id"], seller_id, data.quantity_g, data.price_fen_per_t, now
    )
    await repo.move_position(conn, period["id"], seller_id, offered=data.quantity_g)
    return _offer(await repo.offer(conn, offer_id))


async def withdraw_offer(
    tx: Tx, seller_id: uuid.UUID, offer_id: uuid.UUID, *, now: datetime
) -> Offer:
    conn = tx.conn
    found = await repo.offer(conn, offer_id)
    if found is None or found["seller_id"] != seller_id:
        raise OfferNotFound("The enterprise has no such offer.")
    await repo.period_by_id(conn, found["period_id"], lock="share")
    found = await repo.offer(conn, offer_id, lock=True)
    if found["status"] != "open" or not await repo.withdraw_offer(conn, offer_id, now):
        raise OfferNotOpen("The offer was already bought, withdrawn or is awaiting approval.")
    await repo.lock_positions(conn, found["period_id"], [seller_id])
    await repo.move_position(conn, found["period_id"], seller_id, offered=-found["quantity_g"])
    return _offer(await repo.offer(conn, offer_id))


async def _legal(
    conn: Any, settings: EnterprisesSettings, period: Any, found: Any, buyer_id: uuid.UUID
) -> int:
    """The purchase's legality checks of the locked offer ``found`` by ``buyer_id``, under the
    period's share lock; the positions locked (enterprise-id order). The quantity."""
    seller_id = found["seller_id"]
    if seller_id == buyer_id:
        raise OwnOffer("An enterprise cannot buy its own offer.")
    [buyer] = await repo.enterprises_of(conn, [buyer_id]) or [None]
    if buyer is None or not in_region(buyer["district_code"], period["region_code"]):
        raise RegionMismatch("The buyer is not registered in the offer's region.")
    await repo.ensure_position(conn, period["id"], period["year"], buyer_id)
    positions = await repo.lock_positions(conn, period["id"], [seller_id, buyer_id])
    if buyer_id not in positions:
        raise OtherRegionThisYear("The buyer holds another region's allowance of that year.")
    if any(positions[e]["surrendered_at"] is not None for e in (seller_id, buyer_id)):
        raise Surrendered("The seller or the buyer surrendered its allowance of that year.")
    seller = positions[seller_id]
    q = int(found["quantity_g"])
    emitted = (await emissions_g(conn, settings, [seller_id], period["year"]))[seller_id]
    surplus = _held(seller) - emitted - (seller["offered_g"] - q)
    if q > surplus:
        raise SurplusInsufficient(
            "The seller's surplus after its own emissions no longer covers the offer.",
            extra={"surplus_g": max(0, surplus)},
        )
    return q


async def _settle(
    tx: Tx,
    policy: PointsPolicy,
    period: Any,
    found: Any,
    buyer_id: uuid.UUID,
    q: int,
    now: datetime,
) -> None:
    """The ledger transfer seller -> buyer and the offer sold, in ``tx``, once."""
    offer_id, seller_id = found["id"], found["seller_id"]
    [t] = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"allowance:trade:{offer_id}",
                debit=Owner("enterprise", str(seller_id)),
                credit=Owner("enterprise", str(buyer_id)),
                asset=ASSET,
                amount=q,
                kind="allowance_trade",
                reason_code="emission_right_transfer",
                region_code=period["region_code"],
                occurred_at=now,
                source_ref=f"allowance-offer:{offer_id}",
            )
        ],
        policy,
        now=now,
    )
    settled = await repo.settle_offer(
        tx.conn, offer_id, buyer_id, int(t.id), now, from_status=found["status"]
    )
    if not settled:
        raise OfferNotOpen("The offer was already bought or withdrawn.")  # (under the lock)
    await repo.move_position(tx.conn, period["id"], seller_id, sold=q, offered=-q)
    await repo.move_position(tx.conn, period["id"], buyer_id, bought=q)


async def buy(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    buyer_id: uuid.UUID,
    offer_id: uuid.UUID,
    *,
    now: datetime,
) -> Offer:
    """Buy an open offer whole: the legality checks again under the locks, then, in
    ``automatic`` mode, one ledger transfer from the seller to the buyer (exactly once per
    offer, however many buy at once); in ``government`` mode the offer waits in
    ``pending_approval`` with the buyer recorded, for :func:`approve` or :func:`reject`."""
    conn = tx.conn
    found = await repo.offer(conn, offer_id)
    if found is None:
        raise OfferNotFound("No such offer.")
    period = await repo.period_by_id(conn, found["period_id"], lock="share")
    if period["status"] == "closed":
        raise PeriodClosed("The period is closed: no more purchases.")
    found = await repo.offer(conn, offer_id, lock=True)
    if found["status"] != "open":
        raise OfferNotOpen("The offer was already bought, withdrawn or is awaiting approval.")
    q = await _legal(conn, settings, period, found, buyer_id)
    if settings.allowance_approval == "government":
        if not await repo.request_approval(conn, offer_id, buyer_id, now):
            raise OfferNotOpen("The offer was already bought or withdrawn.")  # (under the lock)
    else:
        await _settle(tx, policy, period, found, buyer_id, q, now)
    return _offer(await repo.offer(conn, offer_id))


async def _pending(conn: Any, offer_id: uuid.UUID) -> tuple[Any, Any]:
    """(period share-locked, offer locked) of a transfer awaiting approval."""
    found = await repo.offer(conn, offer_id)
    if found is None:
        raise OfferNotFound("No such offer.")
    period = await repo.period_by_id(conn, found["period_id"], lock="share")
    found = await repo.offer(conn, offer_id, lock=True)
    if found["status"] != "pending_approval":
        raise NotPending("The offer is not awaiting approval (decided, or never requested).")
    return period, found


async def approve(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    offer_id: uuid.UUID,
    *,
    actor: str,
    now: datetime,
) -> Offer:
    """The government approves a pending transfer: the legality checks run again under the
    locks (a refusal answers its code and changes nothing: the offer stays pending, for a
    rejection or a later approval), then the ledger transfer settles it as a purchase does in
    automatic mode. Two approvals at once settle it once: the second waits on the offer's row
    lock, then finds it sold (``allowance_approval_not_pending``)."""
    conn = tx.conn
    period, found = await _pending(conn, offer_id)
    if period["status"] == "closed":  # (closing withdraws pending offers: never reached)
        raise PeriodClosed("The period is closed: no more purchases.")
    buyer_id = found["buyer_id"]
    q = await _legal(conn, settings, period, found, buyer_id)
    await _settle(tx, policy, period, found, buyer_id, q, now)
    if not await repo.decide_approval(conn, offer_id, "approved", actor, None, now):
        raise NotPending("The offer is not awaiting approval.")  # (under the lock)
    return _offer(await repo.offer(conn, offer_id))


async def reject(tx: Tx, offer_id: uuid.UUID, reason: str, *, actor: str, now: datetime) -> Offer:
    """The government rejects a pending transfer with a reason: the offer is open again (its
    grams still reserved by it), the buyer reads the reason in its transfers listing."""
    conn = tx.conn
    await _pending(conn, offer_id)
    if not await repo.decide_approval(conn, offer_id, "rejected", actor, reason, now):
        raise NotPending("The offer is not awaiting approval.")
    await repo.reopen_offer(conn, offer_id)
    return _offer(await repo.offer(conn, offer_id))


async def pending(
    conn: Any, *, region_code: str | None = None, year: int | None = None
) -> list[Offer]:
    """Transfers awaiting the government's decision, oldest request first."""
    return [_offer(r) for r in await repo.pending_offers(conn, region_code, year)]


class _After(msgspec.Struct, frozen=True):
    t: datetime
    i: str
    a: int = 0  # the approval request's id (an enterprise's transfers listing)


def _position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    at = cursors.decode(cursor, _After)
    if at.t.tzinfo is None:
        raise cursors.invalid()
    try:
        return at.t, uuid.UUID(at.i)
    except ValueError:
        raise cursors.invalid() from None


def _page(rows: list[Any], limit: int, key: str) -> OfferPage:
    items = [_offer(r) for r in rows[:limit]]
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return OfferPage(
        items, cursors.encode(_After(last[key], str(last["id"]))) if last is not None else None
    )


def _limit(limit: int) -> int:
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit: 1 to {PAGE_MAX}.", code="validation_failed")
    return limit


async def open_offers(
    conn: Any,
    enterprise_id: uuid.UUID,
    *,
    year: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OfferPage:
    """The open offers of the enterprise's region (of every period covering its district)."""
    _limit(limit)
    [me] = await repo.enterprises_of(conn, [enterprise_id]) or [None]
    if me is None:
        return OfferPage([], None)
    rows = await repo.open_offers(conn, me["district_code"], year, _position(cursor), limit + 1)
    return _page(rows, limit, "created_at")


async def my_offers(conn: Any, enterprise_id: uuid.UUID, year: int | None = None) -> list[Offer]:
    return [_offer(r) for r in await repo.offers_of_seller(conn, enterprise_id, year)]


async def transfers(
    conn: Any,
    *,
    enterprise_id: uuid.UUID | None = None,
    region_code: str | None = None,
    year: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OfferPage:
    """Transfers, newest first. One enterprise's (both sides): every approval request of its
    offers or its own (pending, approved, rejected, each with its ``approval``) and every sale
    settled without one; or every settled transfer (government)."""
    _limit(limit)
    if enterprise_id is not None and region_code is None:
        after = _position(cursor)
        a = 0 if cursor is None else cursors.decode(cursor, _After).a
        got = await repo.enterprise_transfers(
            conn,
            enterprise_id,
            year,
            None if after is None else (after[0], after[1], a),
            limit + 1,
        )
        items = [_offer(r) for r in got[:limit]]
        last = got[limit - 1] if len(got) > limit else None
        return OfferPage(
            items,
            None
            if last is None
            else cursors.encode(_After(last["at"], str(last["id"]), last["a_id"] or 0)),
        )
    rows = await repo.trades(
        conn,
        enterprise_id=enterprise_id,
        region_code=region_code,
        year=year,
        before=_position(cursor),
        limit=limit + 1,
    )
    return _page(rows, limit, "settled_at")


async def compliance(
    conn: Any, settings: EnterprisesSettings, enterprise_id: uuid.UUID, year: int
) -> Compliance:
    """Emissions against allowance held and surrendered, and the offsets retired."""
    pos = await repo.position_of_year(conn, enterprise_id, year)
    emitted = (await emissions_g(conn, settings, [enterprise_id], year))[enterprise_id]
    offsets = await _offsets_retired(conn, enterprise_id, year)
    held = 0 if pos is None else _held(pos)
    surrendered = 0 if pos is None else int(pos["surrendered_g"])
    covered = held + surrendered + offsets
    shortfall = max(0, emitted - covered)
    status: Literal["compliant", "short", "no_allowance"] = (
        "no_allowance" if pos is None else ("compliant" if shortfall == 0 else "short")
    )
    return Compliance(
        enterprise_id=enterprise_id,
        year=year,
        emissions_g=emitted,
        allocated_g=0 if pos is None else int(pos["allocated_g"]),
        held_g=held,
        surrendered_g=surrendered,
        offsets_retired_g=offsets,
        covered_g=covered,
        shortfall_g=shortfall,
        status=status,
    )


async def surrender(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    enterprise_id: uuid.UUID,
    year: int,
    *,
    now: datetime,
) -> Surrender:
    """Settle the enterprise's year before the period closes: its open offers withdrawn, the
    allowance its emissions need (less offsets retired) surrendered; then it trades no more
    allowance of that year."""
    conn = tx.conn
    pos = await repo.position_of_year(conn, enterprise_id, year)
    if pos is None:
        raise PeriodNotFound("The enterprise holds no allowance of that year.")
    period = await repo.period_by_id(conn, pos["period_id"], lock="share")
    if period["status"] == "closed":
        raise PeriodClosed("The period is closed: it was settled at its close.")
    withdrawn = await repo.withdraw_seller_offers(conn, period["id"], enterprise_id, now)
    pos = (await repo.lock_positions(conn, period["id"], [enterprise_id]))[enterprise_id]
    if pos["surrendered_at"] is not None:
        raise Surrendered("The enterprise already surrendered its allowance of that year.")
    if withdrawn:
        pos = await repo.move_position(conn, period["id"], enterprise_id, offered=-withdrawn)
    amounts = await _surrender_amounts(conn, settings, [pos], year)
    [done] = await _settle_surrenders(tx, policy, period, amounts, now)
    return done
