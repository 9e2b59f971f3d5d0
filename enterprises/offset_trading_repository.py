"""SQL of offsets bought and retired (enterprises.offsets): purchases, holdings (serial
sub-ranges with their holder and state) and retirements. The blocks they draw from are
``offset_issuances`` (enterprises.offsets_repository)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any


async def lock_enterprise(conn: Any, enterprise_id: uuid.UUID) -> None:
    """Serialise an enterprise's retirements (in the caller's transaction): its held serials and
    the grams it retired against a period (the cap) are read under this lock."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('tanpuhui:offsets:' || $1::text, 47))",
        str(enterprise_id),
    )


async def purchase_by_key(conn: Any, request_key: str) -> Any:
    return await conn.fetchrow("SELECT * FROM offset_purchases WHERE request_key = $1", request_key)


async def retirement_by_key(conn: Any, request_key: str) -> Any:
    return await conn.fetchrow(
        "SELECT * FROM offset_retirements WHERE request_key = $1", request_key
    )


async def free_serials(conn: Any, limit_g: int) -> list[Any]:
    """The programme's free serials (issued, no live holding over them), lowest first, as
    (issuance_id, s, e) ranges: enough of them to cover ``limit_g`` grams when there are (call
    under ``offsets_repository.lock_pooling``)."""
    return list(
        await conn.fetch(
            """
            WITH free AS (
                SELECT i.id AS issuance_id, lower(f) AS s, upper(f) - 1 AS e
                FROM offset_issuances i
                CROSS JOIN LATERAL unnest(
                    multirange(i.serials) - coalesce(
                        (SELECT range_agg(h.serials) FROM offset_holdings h
                         WHERE h.issuance_id = i.id AND h.ended_at IS NULL),
                        '{}'::int8multirange)
                ) AS f
                WHERE i.transfer_id IS NOT NULL
            ), ordered AS (
                SELECT issuance_id, s, e,
                       sum(e - s + 1) OVER (ORDER BY s) - (e - s + 1) AS before
                FROM free
            )
            SELECT issuance_id, s, e FROM ordered WHERE before < $1 ORDER BY s
            """,
            limit_g,
        )
    )


async def free_grams(conn: Any) -> int:
    """Serials issued that no live holding covers (the programme's unsold grams)."""
    return int(
        await conn.fetchval(
            """
            SELECT (SELECT coalesce(sum(amount), 0) FROM offset_issuances
                    WHERE transfer_id IS NOT NULL)
                 - (SELECT coalesce(sum(serial_end - serial_start + 1), 0) FROM offset_holdings
                    WHERE ended_at IS NULL)
            """
        )
    )


async def insert_purchase(
    conn: Any, *, request_key: str, enterprise_id: uuid.UUID, amount: int, price: Decimal
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO offset_purchases (request_key, enterprise_id, amount, price_yuan_per_t)
        VALUES ($1, $2, $3, $4) RETURNING *
        """,
        request_key,
        enterprise_id,
        amount,
        price,
    )


async def insert_holdings(
    conn: Any,
    *,
    enterprise_id: uuid.UUID,
    state: str,
    purchase_ids: Sequence[int],
    issuance_ids: Sequence[int],
    starts: Sequence[int],
    ends: Sequence[int],
    parent_ids: Sequence[int | None],
    retirement_id: int | None = None,
) -> None:
    """Holdings of ``enterprise_id``, one row per range (one statement)."""
    await conn.execute(
        """
        INSERT INTO offset_holdings (issuance_id, serial_start, serial_end, enterprise_id, state,
                                     purchase_id, retirement_id, parent_id)
        SELECT u.i, u.s, u.e, $1, $2, u.p, $3, u.parent
        FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
             AS u(i, s, e, p, parent)
        """,
        enterprise_id,
        state,
        retirement_id,
        list(issuance_ids),
        list(starts),
        list(ends),
        list(purchase_ids),
        list(parent_ids),
    )


async def set_purchase_transfer(conn: Any, purchase_id: int, transfer_id: int) -> None:
    await conn.execute(
        "UPDATE offset_purchases SET transfer_id = $2 WHERE id = $1", purchase_id, transfer_id
    )


async def held(conn: Any, enterprise_id: uuid.UUID, limit_g: int | None = None) -> list[Any]:
    """The enterprise's live held rows, lowest serials first: all of them, or enough to cover
    ``limit_g`` grams."""
    return list(
        await conn.fetch(
            """
            SELECT * FROM (
                SELECT h.*, sum(serial_end - serial_start + 1) OVER (ORDER BY serial_start)
                            - (serial_end - serial_start + 1) AS before
                FROM offset_holdings h
                WHERE enterprise_id = $1 AND state = 'held' AND ended_at IS NULL
            ) x WHERE $2::bigint IS NULL OR before < $2 ORDER BY serial_start
            """,
            enterprise_id,
            limit_g,
        )
    )


async def held_grams(conn: Any, enterprise_id: uuid.UUID) -> int:
    return int(
        await conn.fetchval(
            """
            SELECT coalesce(sum(serial_end - serial_start + 1), 0) FROM offset_holdings
            WHERE enterprise_id = $1 AND state = 'held' AND ended_at IS NULL
            """,
            enterprise_id,
        )
    )


async def retired_in_period(conn: Any, enterprise_id: uuid.UUID, period: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum(amount), 0)::bigint FROM offset_retirements"
            " WHERE enterprise_id = $1 AND period = $2",
            enterprise_id,
            period,
        )
    )


async def insert_retirement(
    conn: Any,
    *,
    request_key: str,
    enterprise_id: uuid.UUID,
    enterprise_name: str,
    period: int,
    amount: int,
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO offset_retirements (request_key, enterprise_id, enterprise_name, period, amount)
        VALUES ($1, $2, $3, $4, $5) RETURNING *
        """,
        request_key,
        enterprise_id,
        enterprise_name,
        period,
        amount,
    )


async def end_holdings(conn: Any, holding_ids: Sequence[int]) -> None:
    await conn.execute(
        "UPDATE offset_holdings SET ended_at = now() WHERE id = ANY($1::bigint[])",
        list(holding_ids),
    )


async def set_retirement_transfer(conn: Any, retirement_id: int, transfer_id: int) -> None:
    await conn.execute(
        "UPDATE offset_retirements SET transfer_id = $2 WHERE id = $1", retirement_id, transfer_id
    )


async def retirement_by_serial(conn: Any, serial: str) -> Any:
    return await conn.fetchrow("SELECT * FROM offset_retirements WHERE serial = $1", serial)


async def retired_ranges(conn: Any, retirement_ids: Sequence[int]) -> list[Any]:
    """The serial ranges of retirements, with their block's methodology and vintage."""
    return list(
        await conn.fetch(
            """
            SELECT h.retirement_id, h.issuance_id, h.serial_start, h.serial_end,
                   i.methodology, i.vintage
            FROM offset_holdings h JOIN offset_issuances i ON i.id = h.issuance_id
            WHERE h.retirement_id = ANY($1::bigint[])
            ORDER BY h.retirement_id, h.serial_start
            """,
            list(retirement_ids),
        )
    )


async def retirements(
    conn: Any, enterprise_id: uuid.UUID, period: int | None, limit: int
) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT * FROM offset_retirements
            WHERE enterprise_id = $1 AND ($2::int IS NULL OR period = $2)
            ORDER BY id DESC LIMIT $3
            """,
            enterprise_id,
            period,
            limit,
        )
    )


async def purchases(conn: Any, enterprise_id: uuid.UUID, limit: int) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT * FROM offset_purchases WHERE enterprise_id = $1 ORDER BY id DESC LIMIT $2",
            enterprise_id,
            limit,
        )
    )


async def live_holdings(conn: Any, enterprise_id: uuid.UUID | None = None) -> list[Any]:
    """Live rows (held and retired), of one enterprise or all, lowest serials first."""
    return list(
        await conn.fetch(
            """
            SELECT h.*, i.methodology, i.vintage
            FROM offset_holdings h JOIN offset_issuances i ON i.id = h.issuance_id
            WHERE h.ended_at IS NULL AND ($1::uuid IS NULL OR h.enterprise_id = $1)
            ORDER BY h.serial_start
            """,
            enterprise_id,
        )
    )


async def all_holdings(conn: Any) -> list[Any]:
    """Every holding row, ended ones included (the trace of serials), by id."""
    return list(await conn.fetch("SELECT * FROM offset_holdings ORDER BY id"))


async def retired_by_year(conn: Any, first_year: int, last_year: int) -> list[Any]:
    """(enterprise_id, district_code, industry, period, amount) summed, of [first, last]."""
    return list(
        await conn.fetch(
            """
            SELECT r.enterprise_id, e.district_code, e.industry, r.period,
                   sum(r.amount)::bigint AS amount
            FROM offset_retirements r JOIN enterprises e ON e.id = r.enterprise_id
            WHERE r.period BETWEEN $1 AND $2
            GROUP BY r.enterprise_id, e.district_code, e.industry, r.period
            """,
            first_year,
            last_year,
        )
    )


async def purchase_ranges(conn: Any, purchase_id: int) -> list[Any]:
    """The serial ranges a purchase took (its original rows), with their block's methodology."""
    return list(
        await conn.fetch(
            """
            SELECT h.issuance_id, h.serial_start, h.serial_end, i.methodology, i.vintage
            FROM offset_holdings h JOIN offset_issuances i ON i.id = h.issuance_id
            WHERE h.purchase_id = $1 AND h.parent_id IS NULL
            ORDER BY h.serial_start
            """,
            purchase_id,
        )
    )
