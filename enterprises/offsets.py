"""Offsets (issue 13, item 2; docs/offsets.md): an enterprise buys pooled reductions (serials of
the blocks enterprises.pooling issued) and retires them against a year's emissions, within a cap;
each retirement has a public certificate checkable offline.

Every write is one transaction, all or nothing, in the caller's :class:`kit.db.Tx`, idempotent by
``request_key`` (the route's caller scope and Idempotency-Key): a replay answers the original.

- **Buy** (:func:`buy`): under the pooling lock (``offsets_repository.lock_pooling``: the same
  as issuances, so the free serials are read once by one writer), the programme's lowest free
  serials (issued, no live holding over them) become ``held`` holdings of the buyer, one row per
  sub-range of a block; one ledger transfer moves the grams from ``system:offset_programme`` to
  the buyer's offsets account, ``source_ref`` naming the purchase and its serials. The price is
  recorded for the statement; no payment is processed. Refused ``offset_supply_short``.
- **Retire** (:func:`retire`): under the enterprise's lock, its lowest held serials are retired:
  each held row used is ended and replaced by a ``retired`` row (and a ``held`` row for what it
  keeps), both naming it as their parent; one ledger transfer moves the grams from the offsets
  account to its retired offsets account (never left again: migration 0047), ``source_ref``
  naming the certificate, the enterprise, the period and the serials. Within the cap: the
  setting ``offset_cap_share`` of the enterprise's emissions of the period (its accounting,
  default basis) less what it retired against the period already; refused
  ``offset_cap_exceeded`` (with the figures) or ``offset_holdings_short``.
- **Accounts.** The enterprise's offsets are ledger accounts of their own:
  ``enterprise:<id>:offsets`` CO2E_G (bought, not retired) and ``enterprise:<id>:offsets_retired``
  CO2E_G (retired: never left again), apart from ``enterprise:<id>`` CO2E_G (its own verified
  reductions, enterprises.ledger): bought grams are not reductions of the enterprise, and the
  balances stay readable apart. One retired account per enterprise, not one for the programme,
  so that concurrent retirements of different enterprises never queue on one account row.

Others call :func:`retired_grams` (allowances and compliance read offsets used against a year).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from enterprises import accounting, users
from enterprises import offset_trading_repository as repo
from enterprises import offsets_repository as pooling_repo
from enterprises.factors import Basis
from enterprises.offsets_errors import (
    OffsetCapExceeded,
    OffsetCertificateNotFound,
    OffsetHoldingsShort,
    OffsetSupplyShort,
)
from enterprises.offsets_schemas import (
    Cap,
    Holding,
    Holdings,
    NetEmissions,
    OffsetCertificate,
    Purchase,
    Retirement,
    SerialRange,
)
from enterprises.pooling import PROGRAMME
from enterprises.settings import EnterprisesSettings
from kit.db import Tx
from points import certify
from points import service as ledger
from points.schemas import AccountKey, Owner, PointsPolicy, TransferRequest, utcnow

PURCHASE_KIND: Final = "offset_purchase"
RETIREMENT_KIND: Final = "offset_retirement"
SERIAL_PATTERN: Final = r"^TPH-[0-9]{4}-O-[0-9]{8,19}$"
_FEN = Decimal("0.01")


def offsets_owner(enterprise_id: uuid.UUID | str) -> Owner:
    """The enterprise's offsets account's owner: bought, not yet retired grams."""
    return Owner("enterprise", f"{enterprise_id}:offsets")


def retired_owner(enterprise_id: uuid.UUID | str) -> Owner:
    """The enterprise's retired offsets account's owner: grams that never leave it (0047)."""
    return Owner("enterprise", f"{enterprise_id}:offsets_retired")


def certificate_path(serial: str) -> str:
    return f"/api/public/v1/offsets/certificates/{serial}"


def ranges_text(ranges: Sequence[tuple[int, int]]) -> str:
    """Serial ranges as the journal names them: ``1-10,21-30``."""
    return ",".join(f"{s}-{e}" for s, e in ranges)


def purchase_ref(purchase_id: int, ranges: Sequence[tuple[int, int]]) -> str:
    return f"offset-purchase:{purchase_id}:serials:{ranges_text(ranges)}"


def retirement_ref(
    serial: str, enterprise_id: uuid.UUID | str, period: int, ranges: Sequence[tuple[int, int]]
) -> str:
    """The retirement transfer's ``source_ref``: binds certificate, enterprise, period and
    serials into the journal (points.verify re-derives it from the certificate)."""
    return f"offset-retirement:{serial}:{enterprise_id}:{period}:serials:{ranges_text(ranges)}"


async def open_accounts(conn: Any, enterprise_id: uuid.UUID) -> None:
    await ledger.open_accounts(
        conn,
        [
            AccountKey("enterprise", offsets_owner(enterprise_id).owner_id, "CO2E_G"),
            AccountKey("enterprise", retired_owner(enterprise_id).owner_id, "CO2E_G"),
        ],
    )


# --- reads others call -------------------------------------------------------------------------


async def retired_grams(conn: Any, enterprise_id: uuid.UUID, year: int) -> int:
    """Grams the enterprise retired as offsets against its emissions of ``year``."""
    return await repo.retired_in_period(conn, enterprise_id, year)


async def retired_by_year(
    conn: Any, first_year: int, last_year: int
) -> list[accounting.YearCredit]:
    """Offsets retired against the years [first_year, last_year], per enterprise and year, in
    the shape of the verified reductions credited (the region's enterprise rollups add them)."""
    return [
        accounting.YearCredit(
            enterprise_id=r["enterprise_id"],
            district_code=r["district_code"],
            industry=r["industry"],
            year=r["period"],
            reduction_g=int(r["amount"]),
        )
        for r in await repo.retired_by_year(conn, first_year, last_year)
    ]


# --- buy ---------------------------------------------------------------------------------------


def _ranges(rows: Sequence[Any]) -> list[SerialRange]:
    return [
        SerialRange(
            issuance_id=r["issuance_id"],
            start=r["serial_start"],
            end=r["serial_end"],
            methodology=r["methodology"],
            vintage=r["vintage"],
        )
        for r in rows
    ]


def _amount_yuan(grams: int, price: Decimal) -> float:
    return float((Decimal(grams) / Decimal(1_000_000) * price).quantize(_FEN, ROUND_HALF_UP))


async def _purchase(conn: Any, row: Any) -> Purchase:
    price = Decimal(row["price_yuan_per_t"])
    return Purchase(
        id=row["id"],
        enterprise_id=row["enterprise_id"],
        quantity_g=row["amount"],
        price_yuan_per_t=float(price),
        amount_yuan=_amount_yuan(row["amount"], price),
        serials=_ranges(await repo.purchase_ranges(conn, row["id"])),
        transfer_id=None if row["transfer_id"] is None else str(row["transfer_id"]),
        purchased_at=row["purchased_at"],
    )


def _cut(rows: Sequence[Any], grams: int) -> tuple[list[tuple[Any, int, int]], Any | None]:
    """The lowest ``grams`` serials of ``rows`` (ranges with ``s`` and ``e``, lowest first) as
    (row, start, end) taken, and the row the last range was cut from (None: none was cut)."""
    taken: list[tuple[Any, int, int]] = []
    left = grams
    for r in rows:
        if left <= 0:
            break
        size = r["e"] - r["s"] + 1
        if size <= left:
            taken.append((r, r["s"], r["e"]))
            left -= size
        else:
            taken.append((r, r["s"], r["s"] + left - 1))
            return taken, r
    return taken, None


async def buy(
    tx: Tx,
    policy: PointsPolicy,
    *,
    request_key: str,
    enterprise_id: uuid.UUID,
    quantity_g: int,
    price_yuan_per_t: float,
    now: datetime | None = None,
) -> Purchase:
    """Buy ``quantity_g`` grams of the programme's lowest free serials (see the module's text).

    Refused: ``offset_supply_short`` (``available_g``: the programme's unsold grams)."""
    now = now or utcnow()
    conn = tx.conn
    await pooling_repo.lock_pooling(conn)
    done = await repo.purchase_by_key(conn, request_key)
    if done is not None:
        return await _purchase(conn, done)
    enterprise = await users.enterprise_profile(conn, enterprise_id)
    free = [
        {"issuance_id": r["issuance_id"], "s": r["s"], "e": r["e"]}
        for r in await repo.free_serials(conn, quantity_g)
    ]
    if quantity_g <= 0 or sum(r["e"] - r["s"] + 1 for r in free) < quantity_g:
        raise OffsetSupplyShort(
            "The programme does not hold that many unsold pooled grams.",
            extra={"available_g": await repo.free_grams(conn)},
        )
    taken, _ = _cut(free, quantity_g)
    price = Decimal(str(price_yuan_per_t)).quantize(_FEN, ROUND_HALF_UP)
    row = await repo.insert_purchase(
        conn, request_key=request_key, enterprise_id=enterprise_id, amount=quantity_g, price=price
    )
    await repo.insert_holdings(
        conn,
        enterprise_id=enterprise_id,
        state="held",
        purchase_ids=[row["id"]] * len(taken),
        issuance_ids=[r["issuance_id"] for r, _, _ in taken],
        starts=[s for _, s, _ in taken],
        ends=[e for _, _, e in taken],
        parent_ids=[None] * len(taken),
    )
    await open_accounts(conn, enterprise_id)
    [t] = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"offset-purchase:{row['id']}",
                debit=PROGRAMME,
                credit=offsets_owner(enterprise_id),
                asset="CO2E_G",
                amount=quantity_g,
                kind=PURCHASE_KIND,
                reason_code="offsets_bought",
                region_code=enterprise.district,
                occurred_at=now,
                source_ref=purchase_ref(row["id"], [(s, e) for _, s, e in taken]),
            )
        ],
        policy,
        now=now,
    )
    await repo.set_purchase_transfer(conn, row["id"], int(t.id))
    return await _purchase(conn, {**row, "transfer_id": int(t.id)})


# --- the cap and the net emissions -------------------------------------------------------------


async def gross_emissions_kg(
    conn: Any, enterprise_id: uuid.UUID, year: int, settings: EnterprisesSettings
) -> tuple[float, str]:
    """(kg CO2 of ``year``, the basis) from the enterprise's recorded accounting."""
    basis = Basis.of(settings)
    months = await accounting.monthly_emissions(
        conn, enterprise_id, start=date(year, 1, 1), end=date(year + 1, 1, 1), basis=basis
    )
    return math.fsum(m.emissions_kg for m in months), basis.label


async def cap(
    conn: Any, enterprise_id: uuid.UUID, period: int, settings: EnterprisesSettings
) -> Cap:
    kg, _ = await gross_emissions_kg(conn, enterprise_id, period, settings)
    emissions_g = max(0, round(kg * 1000))
    cap_g = math.floor(emissions_g * settings.offset_cap_share)
    used = await repo.retired_in_period(conn, enterprise_id, period)
    return Cap(
        period=period,
        emissions_g=emissions_g,
        share=settings.offset_cap_share,
        cap_g=cap_g,
        used_g=used,
        remaining_g=max(0, cap_g - used),
    )


async def net(
    conn: Any, enterprise_id: uuid.UUID, year: int, settings: EnterprisesSettings
) -> NetEmissions:
    """The year's gross emissions, offsets retired against it and the net."""
    kg, basis = await gross_emissions_kg(conn, enterprise_id, year, settings)
    c = await cap(conn, enterprise_id, year, settings)
    return NetEmissions(
        year=year,
        basis=basis,
        gross_emissions_kg=round(kg, 3),
        offsets_retired_g=c.used_g,
        offsets_retired_kg=c.used_g / 1000,
        net_emissions_kg=round(kg - c.used_g / 1000, 3),
        cap=c,
    )


# --- retire ------------------------------------------------------------------------------------


async def _retirement(conn: Any, row: Any, ranges: list[SerialRange] | None = None) -> Retirement:
    if ranges is None:
        ranges = _ranges(await repo.retired_ranges(conn, [row["id"]]))
    return Retirement(
        serial=row["serial"],
        enterprise_id=row["enterprise_id"],
        period=row["period"],
        quantity_g=row["amount"],
        serials=ranges,
        transfer_id=None if row["transfer_id"] is None else str(row["transfer_id"]),
        retired_at=row["retired_at"],
        certificate_url=certificate_path(row["serial"]),
    )


async def retire(
    tx: Tx,
    policy: PointsPolicy,
    settings: EnterprisesSettings,
    *,
    request_key: str,
    enterprise_id: uuid.UUID,
    quantity_g: int,
    period: int,
    now: datetime | None = None,
) -> Retirement:
    """Retire ``quantity_g`` grams of the enterprise's lowest held serials against ``period``
    (see the module's text).

    Refused: ``offset_cap_exceeded`` (``cap_g``, ``used_g``, ``requested_g``, ``emissions_g``),
    ``offset_holdings_short`` (``held_g``)."""
    now = now or utcnow()
    conn = tx.conn
    await repo.lock_enterprise(conn, enterprise_id)
    done = await repo.retirement_by_key(conn, request_key)
    if done is not None:
        return await _retirement(conn, done)
    enterprise = await users.enterprise_profile(conn, enterprise_id)
    c = await cap(conn, enterprise_id, period, settings)
    if c.used_g + quantity_g > c.cap_g:
        raise OffsetCapExceeded(
            f"Retiring {quantity_g} g against {period} would pass its cap of {c.cap_g} g "
            f"({c.share:.0%} of {c.emissions_g} g emitted; {c.used_g} g retired already).",
            extra={
                "cap_g": c.cap_g,
                "used_g": c.used_g,
                "requested_g": quantity_g,
                "emissions_g": c.emissions_g,
                "share": c.share,
            },
        )
    rows = await repo.held(conn, enterprise_id, quantity_g)
    held = [{**dict(r), "s": r["serial_start"], "e": r["serial_end"]} for r in rows]
    if sum(r["e"] - r["s"] + 1 for r in held) < quantity_g:
        raise OffsetHoldingsShort(
            "The enterprise does not hold that many offsets not yet retired.",
            extra={"held_g": await repo.held_grams(conn, enterprise_id)},
        )
    taken, cut = _cut(held, quantity_g)
    row = await repo.insert_retirement(
        conn,
        request_key=request_key,
        enterprise_id=enterprise_id,
        enterprise_name=enterprise.name,
        period=period,
        amount=quantity_g,
    )
    await repo.end_holdings(conn, [r["id"] for r, _, _ in taken])
    await repo.insert_holdings(
        conn,
        enterprise_id=enterprise_id,
        state="retired",
        retirement_id=row["id"],
        purchase_ids=[r["purchase_id"] for r, _, _ in taken],
        issuance_ids=[r["issuance_id"] for r, _, _ in taken],
        starts=[s for _, s, _ in taken],
        ends=[e for _, _, e in taken],
        parent_ids=[r["id"] for r, _, _ in taken],
    )
    if cut is not None:  # what the last row keeps
        await repo.insert_holdings(
            conn,
            enterprise_id=enterprise_id,
            state="held",
            purchase_ids=[cut["purchase_id"]],
            issuance_ids=[cut["issuance_id"]],
            starts=[taken[-1][2] + 1],
            ends=[cut["e"]],
            parent_ids=[cut["id"]],
        )
    ranges = [(s, e) for _, s, e in taken]
    [t] = await ledger.transfer(
        tx,
        [
            TransferRequest(
                idempotency_key=f"offset-retirement:{row['id']}",
                debit=offsets_owner(enterprise_id),
                credit=retired_owner(enterprise_id),
                asset="CO2E_G",
                amount=quantity_g,
                kind=RETIREMENT_KIND,
                reason_code="offsets_retired",
                region_code=enterprise.district,
                occurred_at=now,
                source_ref=retirement_ref(row["serial"], enterprise_id, period, ranges),
            )
        ],
        policy,
        now=now,
    )
    await repo.set_retirement_transfer(conn, row["id"], int(t.id))
    return await _retirement(conn, {**row, "transfer_id": int(t.id)})


# --- listings and the certificate --------------------------------------------------------------


async def holdings(conn: Any, enterprise_id: uuid.UUID) -> Holdings:
    rows = await repo.live_holdings(conn, enterprise_id)
    out = [
        Holding(
            issuance_id=r["issuance_id"],
            serial_start=r["serial_start"],
            serial_end=r["serial_end"],
            amount=r["serial_end"] - r["serial_start"] + 1,
            state=r["state"],
            methodology=r["methodology"],
            vintage=r["vintage"],
            purchase_id=r["purchase_id"],
            retirement_id=r["retirement_id"],
        )
        for r in rows
    ]
    return Holdings(
        held_g=sum(h.amount for h in out if h.state == "held"),
        retired_g=sum(h.amount for h in out if h.state == "retired"),
        holdings=out,
    )


async def purchases(conn: Any, enterprise_id: uuid.UUID, *, limit: int = 100) -> list[Purchase]:
    return [await _purchase(conn, r) for r in await repo.purchases(conn, enterprise_id, limit)]


async def retirements(
    conn: Any, enterprise_id: uuid.UUID, *, period: int | None = None, limit: int = 100
) -> list[Retirement]:
    rows = await repo.retirements(conn, enterprise_id, period, limit)
    by_id: dict[int, list[Any]] = {}
    for r in await repo.retired_ranges(conn, [row["id"] for row in rows]):
        by_id.setdefault(r["retirement_id"], []).append(r)
    return [await _retirement(conn, row, _ranges(by_id.get(row["id"], []))) for row in rows]


async def certificate(
    conn: Any, serial: str, *, key: Ed25519PrivateKey, origin: str
) -> OffsetCertificate:
    """The public certificate of the retirement ``serial`` (``offset_certificate_not_found``)."""
    row = await repo.retirement_by_serial(conn, serial)
    if row is None or row["transfer_id"] is None:
        raise OffsetCertificateNotFound(f"No offset certificate {serial!r}.")
    found = await certify.evidence(
        conn, str(row["transfer_id"]), key=key, origin=origin, at=row["retired_at"]
    )
    return OffsetCertificate(
        serial=row["serial"],
        enterprise_id=row["enterprise_id"],
        enterprise_name=row["enterprise_name"],
        period=row["period"],
        amount=row["amount"],
        serials=_ranges(await repo.retired_ranges(conn, [row["id"]])),
        retired_at=row["retired_at"],
        status=found.status,
        transfer=found.transfer,
        proof=found.proof,
        block=found.block,
        checkpoint=found.checkpoint,
    )
