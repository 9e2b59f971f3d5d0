"""Employee commuting programmes, the parts that are this package's business (docs/commuting.md):

- :func:`employees_aggregates`: the only view an enterprise gets of its employees' commuting.
  The raw totals of its current members (``enterprises.commuting.totals``) pass the government
  reports' disclosure rule (``reporting.disclosure``): nothing at all below the minimum group
  size of members (``TANPUHUI_ENTERPRISES_COMMUTING_MIN_GROUP``, default 5); above it, every
  cell of fewer distinct residents than that is suppressed, with its complements, so no
  published total determines it.
- :func:`fund_enterprise`: a government administrator records points an enterprise bought
  off-system; the points move on the ledger to the enterprise's POINT account (the bonuses'
  source) and the act is written to the audit log in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from msgspec import Meta, Struct

from enterprises import commuting
from enterprises.commuting_schemas import AggregateRow, Aggregates
from kit.db import Tx
from kit.errors import FieldError, InvalidInput
from points.schemas import PointsPolicy
from reporting import audit, disclosure

MAX_MONTHS = 36
ALL = "*"


def _months(start: date, end: date) -> list[date]:
    out = [start]
    while out[-1] < end:
        out.append(commuting.next_month(out[-1]))
    return out


def _label(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


async def employees_aggregates(
    conn: Any,
    enterprise_id: uuid.UUID,
    programme_id: uuid.UUID,
    *,
    start_month: date,
    end_month: date,
    zone: str,
    min_group: int,
) -> Aggregates:
    """Totals by month and mode (margins ``*``) of the current members' commuting trips of
    [start_month, end_month], protected. A cell without trips is left out (a published zero)."""
    start, end = (
        date(start_month.year, start_month.month, 1),
        date(end_month.year, end_month.month, 1),
    )
    months = _months(start, end) if start <= end else []
    if not months or len(months) > MAX_MONTHS:
        raise InvalidInput(
            f"start_month to end_month: 1 to {MAX_MONTHS} months, start first.",
            code="validation_failed",
            errors=[FieldError("end_month", f"1 to {MAX_MONTHS} months from start_month")],
        )
    found = await commuting.totals(
        conn, enterprise_id, programme_id, start_month=start, end_month=end, zone=zone
    )

    def answer(participants: int | None, rows: list[AggregateRow]) -> Aggregates:
        return Aggregates(
            programme_id=programme_id,
            start_month=_label(start),
            end_month=_label(end),
            min_group_size=min_group,
            status="suppressed" if participants is None else "ok",
            participants=participants,
            rows=rows,
        )

    if found.members < min_group:
        return answer(None, [])
    labels = [_label(m) for m in months]
    modes = sorted({mode for _, mode in found.cells if mode != ALL})
    stats = {
        key: disclosure.Stat(contributors=c[0], value=float(c[1])) for key, c in found.cells.items()
    }
    hidden = disclosure.protect(
        stats, disclosure.grid_lines(labels, modes, ALL), disclosure.Rule(k=min_group)
    )
    rows: list[AggregateRow] = []
    for month in [*labels, ALL]:
        for mode in [*modes, ALL]:
            c = found.cells.get((month, mode))
            margin = ALL in (month, mode)
            if c is None and not margin:
                continue
            if (month, mode) in hidden:
                rows.append(
                    AggregateRow(
                        month=month,
                        mode=mode,
                        status="suppressed",
                        trips=None,
                        distance_m=None,
                        reduction_g=None,
                        points=None,
                    )
                )
                continue
            _, trips, metres, grams, points = c or (0, 0, 0, 0, 0)
            rows.append(
                AggregateRow(
                    month=month,
                    mode=mode,
                    status="ok",
                    trips=trips,
                    distance_m=metres,
                    reduction_g=grams,
                    points=points,
                )
            )
    return answer(found.members, rows)


# --- funding ---------------------------------------------------------------------------------

Reference = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_./:-]{0,99}$",
        description="The purchase's own reference (invoice or contract number).",
        examples=["INV-2026-0042"],
    ),
]


class FundingIn(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    points: Annotated[int, Meta(ge=1, le=1_000_000_000_000)]
    reference: Reference


class Funded(Struct, frozen=True, kw_only=True):
    enterprise_id: uuid.UUID
    points: int
    reference: str
    transfer_id: str
    available_points: int  # the enterprise's POINT account after the credit


async def fund_enterprise(
    tx: Tx,
    policy: PointsPolicy,
    enterprise_id: uuid.UUID,
    f: FundingIn,
    *,
    actor: str,
    request_key: str,
    region_code: str,
) -> Funded:
    before = await commuting.available_points(tx.conn, enterprise_id)
    t = await commuting.fund(
        tx,
        policy,
        enterprise_id,
        points=f.points,
        reference=f.reference,
        request_key=request_key,
        region_code=region_code,
    )
    after = await commuting.available_points(tx.conn, enterprise_id)
    done = Funded(
        enterprise_id=enterprise_id,
        points=f.points,
        reference=f.reference,
        transfer_id=t.id,
        available_points=after,
    )
    await audit.record(
        tx,
        actor=actor,
        action="enterprise.points_fund",
        target=str(enterprise_id),
        before={"available_points": before},
        after=done,
    )
    return done
