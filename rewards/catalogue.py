"""The catalogue: items of four kinds, their stock and limits, two windows (visible: listed;
active: redeemable), eligible districts; browsing with filters and a keyset cursor; coupon
code pools imported by CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

import msgspec

from kit import cursor as cursors
from kit.db import Tx
from kit.errors import FieldError, InvalidInput
from points.schemas import utcnow
from rewards import codes
from rewards import repository as repo
from rewards.errors import CodesRejected, ItemNotFound
from rewards.schemas import Item, ItemPage, ItemSpec, Kind
from rewards.settings import RewardsConfig

MAX_CODES_PER_IMPORT = 100_000


def item_of(row: Any, now: datetime | None = None) -> Item:
    now = now or utcnow()
    return Item(
        id=row["id"],
        merchant_id=row["merchant_id"],
        merchant_name=row["merchant_name"],
        kind=row["kind"],
        title=row["title"],
        description=row["description"],
        usage_instructions=row["usage_instructions"],
        image_urls=list(row["image_urls"]),
        cost_points=row["cost_points"],
        total_stock=row["total_stock"],
        remaining=row["remaining"],
        per_resident_limit=row["per_resident_limit"],
        period_limit=row["period_limit"],
        limit_period=row["limit_period"],
        active_from=row["active_from"],
        active_until=row["active_until"],
        visible_from=row["visible_from"],
        visible_until=row["visible_until"],
        districts=list(row["eligible"]),
        validity_s=row["validity_s"],
        redeemable_now=row["active_from"] <= now < row["active_until"] and row["remaining"] > 0,
    )


def _check(spec: ItemSpec) -> None:
    problems: list[FieldError] = []
    for name in ("active_from", "active_until", "visible_from", "visible_until"):
        if getattr(spec, name).tzinfo is None:
            problems.append(FieldError(f"$.{name}", "must carry a time zone offset"))
    if not problems:
        if spec.active_from >= spec.active_until:
            problems.append(FieldError("$.active_until", "must be after active_from"))
        if spec.visible_from >= spec.visible_until:
            problems.append(FieldError("$.visible_until", "must be after visible_from"))
    if (spec.period_limit is None) != (spec.limit_period is None):
        problems.append(FieldError("$.limit_period", "period_limit and limit_period go together"))
    if spec.kind == "coupon_code" and spec.total_stock != 0:
        problems.append(
            FieldError("$.total_stock", "a coupon_code item's stock is its imported codes")
        )
    if problems:
        raise InvalidInput("The item is not valid.", code="validation_failed", errors=problems)


async def add_item(tx: Tx, spec: ItemSpec) -> Item:
    _check(spec)
    values = msgspec.structs.asdict(spec)
    values["districts"] = sorted(set(spec.districts))
    row = await repo.insert_item(tx.conn, values)
    return item_of(row)


async def get_item(conn: Any, item_id: str, *, now: datetime | None = None) -> Item:
    row = await repo.item(conn, item_id)
    if row is None:
        raise ItemNotFound(f"No catalogue item {item_id!r}.")
    return item_of(row, now)


class _Cursor(msgspec.Struct, frozen=True):
    c: int  # cost of the last item shown
    i: str  # its id


async def browse(
    conn: Any,
    *,
    kind: Kind | None = None,
    merchant_id: str | None = None,
    max_cost: int | None = None,
    district: str | None = None,
    any_district: bool = True,
    cursor: str | None = None,
    limit: int = 20,
    now: datetime | None = None,
) -> ItemPage:
    """Visible items, cheapest first; ``any_district`` False shows only those open to
    ``district`` (a resident's home, or none: items open to every district)."""
    now = now or utcnow()
    limit = max(1, min(limit, 100))
    after = None
    if cursor is not None:
        pos = cursors.decode(cursor, _Cursor)
        after = (pos.c, pos.i)
        try:
            uuid.UUID(pos.i)
        except ValueError:
            raise cursors.invalid() from None
    rows = await repo.browse(
        conn,
        now=now,
        kind=kind,
        merchant_id=merchant_id,
        max_cost=max_cost,
        district=district,
        any_district=any_district,
        after=after,
        limit=limit + 1,
    )
    more = len(rows) > limit
    items = [item_of(r, now) for r in rows[:limit]]
    next_cursor = cursors.encode(_Cursor(items[-1].cost_points, items[-1].id)) if more else None
    return ItemPage(items=items, next_cursor=next_cursor)


def read_codes(content: bytes) -> list[str]:
    """The codes of a CSV file: the first column of each row, an optional header ``code``;
    refused whole (``codes_invalid``, with the lines) on blank, oversized or repeated codes."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CodesRejected("The file is not UTF-8 text.") from None
    found: list[str] = []
    problems: list[FieldError] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        raw = row[0].strip()
        if line == 1 and raw.lower() == "code":
            continue
        plain = codes.normalise(raw)
        if not plain or len(plain) > 200 or not plain.isprintable():
            problems.append(FieldError(f"line {line}", "a code is 1 to 200 printable characters"))
        elif plain in seen:
            problems.append(FieldError(f"line {line}", f"repeats the code of line {seen[plain]}"))
        else:
            seen[plain] = line
            found.append(plain)
        if len(problems) >= 50:
            break
    if problems:
        raise CodesRejected("Some codes cannot be imported.", errors=problems)
    if not found:
        raise CodesRejected("The file holds no code.")
    if len(found) > MAX_CODES_PER_IMPORT:
        raise CodesRejected(f"At most {MAX_CODES_PER_IMPORT} codes per file.")
    return found


async def import_codes(tx: Tx, cfg: RewardsConfig, item_id: str, content: bytes) -> int:
    """Add a CSV file's codes to a coupon item's pool and to its stock: all of them or none
    (a code the merchant already has, in any of its items, refuses the file). Codes are kept
    hashed and sealed, never in clear; how many were added."""
    found = read_codes(content)
    row = await repo.item(tx.conn, item_id)
    if row is None:
        raise ItemNotFound(f"No catalogue item {item_id!r}.")
    if row["kind"] != "coupon_code":
        raise CodesRejected(f"A {row['kind']} item takes no imported codes.")
    merchant_id = row["merchant_id"]
    hashes = [codes.code_hash(cfg, merchant_id, c) for c in found]
    sealed = [codes.seal(cfg, merchant_id, c) for c in found]
    added = await repo.insert_codes(tx.conn, item_id, merchant_id, hashes, sealed)
    if len(added) != len(found):
        new = set(added)
        lines = [i + 1 for i, h in enumerate(hashes) if h not in new][:50]
        raise CodesRejected(
            f"{len(found) - len(added)} codes are already in the merchant's pools.",
            errors=[FieldError(f"code {n}", "already imported") for n in lines],
        )
    await repo.add_stock(tx.conn, item_id, len(added))
    return len(added)
