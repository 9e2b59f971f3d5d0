"""All SQL of targets and emission rights (migration 0046): periods, allocation rounds and
their lines, positions, offers. Rows are answered as asyncpg records; enterprises/allowances.py
turns them into its Structs. Locks are taken in one order everywhere: the period, then an offer,
then positions in enterprise-id order (no deadlocks between allocation, offers, purchases and
closing)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

_PERIOD = "id, region_code, year, target_g, allocated_g, status, created_at, updated_at, closed_at"
_POSITION = (
    "period_id, enterprise_id, year, allocated_g, bought_g, sold_g, surrendered_g, offered_g, "
    "surrendered_at"
)
_OFFER = (
    "o.id, o.period_id, p.region_code, p.year, o.seller_id, o.quantity_g, o.price_fen_per_t, "
    "o.status, o.buyer_id, o.transfer_id, o.created_at, o.settled_at, "
    "a.id AS a_id, a.status AS a_status, a.buyer_id AS a_buyer_id, "
    "a.requested_at AS a_requested_at, a.decided_at AS a_decided_at, a.reason AS a_reason"
)
# An offer, its period and its latest approval request (migration 0071; none: no request).
_FROM = """
    allowance_offers o JOIN allowance_periods p ON p.id = o.period_id
    LEFT JOIN LATERAL (
        SELECT id, status, buyer_id, requested_at, decided_at, reason FROM allowance_approvals
        WHERE offer_id = o.id ORDER BY id DESC LIMIT 1
    ) a ON true
"""
# The region's enterprises: their district code starts with the region's code less its
# trailing "00" pairs (440300 -> 4403: every district of the city).
REGION_PREFIX = "regexp_replace({}, '(00)+$', '')"


# --- periods -----------------------------------------------------------------------------------


async def period(conn: Any, region_code: str, year: int, *, lock: str = "") -> Any:
    """The period of ``region_code`` and ``year`` (None: no target set); ``lock``: "" (none),
    "share" (no close or allocation meanwhile) or "update"."""
    suffix = {"": "", "share": " FOR SHARE", "update": " FOR UPDATE"}[lock]
    return await conn.fetchrow(
        f"SELECT {_PERIOD} FROM allowance_periods WHERE region_code = $1 AND year = $2{suffix}",
        region_code,
        year,
    )


async def period_by_id(conn: Any, period_id: int, *, lock: str = "") -> Any:
    suffix = {"": "", "share": " FOR SHARE", "update": " FOR UPDATE"}[lock]
    return await conn.fetchrow(
        f"SELECT {_PERIOD} FROM allowance_periods WHERE id = $1{suffix}", period_id
    )


async def insert_period(conn: Any, region_code: str, year: int, target_g: int) -> Any:
    """A new period (None: one was created concurrently; read it again under a lock)."""
    return await conn.fetchrow(
        f"""
        INSERT INTO allowance_periods (region_code, year, target_g) VALUES ($1, $2, $3)
        ON CONFLICT (region_code, year) DO NOTHING RETURNING {_PERIOD}
        """,
        region_code,
        year,
        target_g,
    )


async def set_target(conn: Any, period_id: int, target_g: int, now: datetime) -> Any:
    return await conn.fetchrow(
        f"""
        UPDATE allowance_periods SET target_g = $2, updated_at = $3 WHERE id = $1
        RETURNING {_PERIOD}
        """,
        period_id,
        target_g,
        now,
    )


async def add_allocated(conn: Any, period_id: int, amount_g: int, now: datetime) -> Any:
    """Add to the period's allocated sum (the CHECK allowance_periods_within_target refuses a
    sum above the target, whatever the caller checked)."""
    return await conn.fetchrow(
        f"""
        UPDATE allowance_periods SET allocated_g = allocated_g + $2, updated_at = $3
        WHERE id = $1 RETURNING {_PERIOD}
        """,
        period_id,
        amount_g,
        now,
    )


async def close_period(conn: Any, period_id: int, now: datetime) -> Any:
    return await conn.fetchrow(
        f"""
        UPDATE allowance_periods SET status = 'closed', closed_at = $2, updated_at = $2
        WHERE id = $1 RETURNING {_PERIOD}
        """,
        period_id,
        now,
    )


async def periods(conn: Any, year: int | None) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {_PERIOD} FROM allowance_periods WHERE ($1::int IS NULL OR year = $1)
            ORDER BY year DESC, region_code LIMIT 1000
            """,
            year,
        )
    )


# --- enterprises of a region -------------------------------------------------------------------


async def region_enterprises(conn: Any, region_code: str) -> list[Any]:
    """Every enterprise registered in the region: id, industry, district code (by id)."""
    return list(
        await conn.fetch(
            f"""
            SELECT id, industry, district_code FROM enterprises
            WHERE district_code LIKE {REGION_PREFIX.format("$1::text")} || '%'
            ORDER BY id
            """,
            region_code,
        )
    )


async def enterprises_of(conn: Any, ids: Sequence[uuid.UUID]) -> list[Any]:
    return list(
        await conn.fetch(
            "SELECT id, industry, district_code FROM enterprises WHERE id = ANY($1::uuid[])",
            list(ids),
        )
    )


# --- allocations -------------------------------------------------------------------------------


async def insert_allocation(
    conn: Any,
    *,
    period_id: int,
    method: str,
    parameters: Any,
    amount_g: int,
    allocated_by: str,
    now: datetime,
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO allowance_allocations
            (period_id, method, parameters, amount_g, allocated_by, allocated_at)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING id, period_id, method, parameters, amount_g, allocated_by, allocated_at
        """,
        period_id,
        method,
        msgspec.to_builtins(parameters),  # the pool's json codec encodes it
        amount_g,
        allocated_by,
        now,
    )


async def insert_lines(conn: Any, allocation_id: int, lines: Sequence[Any]) -> None:
    """``lines``: (enterprise_id, industry, basis_value, amount_g, transfer_id)."""
    await conn.execute(
        """
        INSERT INTO allowance_allocation_lines
            (allocation_id, enterprise_id, industry, basis_value, amount_g, transfer_id)
        SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::float8[], $5::int8[], $6::int8[])
        """,
        allocation_id,
        [r[0] for r in lines],
        [r[1] for r in lines],
        [r[2] for r in lines],
        [r[3] for r in lines],
        [r[4] for r in lines],
    )


async def allocations(conn: Any, period_id: int) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT id, period_id, method, parameters, amount_g, allocated_by, allocated_at
            FROM allowance_allocations WHERE period_id = $1 ORDER BY id
            """,
            period_id,
        )
    )


async def lines(conn: Any, allocation_ids: Sequence[int]) -> list[Any]:
    return list(
        await conn.fetch(
            """
            SELECT allocation_id, enterprise_id, industry, basis_value, amount_g, transfer_id
            FROM allowance_allocation_lines WHERE allocation_id = ANY($1::bigint[])
            ORDER BY allocation_id, enterprise_id
            """,
            list(allocation_ids),
        )
    )


# --- positions ---------------------------------------------------------------------------------


async def positions_elsewhere(
    conn: Any, period_id: int, year: int, ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Those of ``ids`` holding a position of ``year`` in another period (another region)."""
    rows = await conn.fetch(
        """
        SELECT enterprise_id FROM allowance_positions
        WHERE year = $2 AND period_id <> $1 AND enterprise_id = ANY($3::uuid[])
        ORDER BY enterprise_id
        """,
        period_id,
        year,
        list(ids),
    )
    return [r["enterprise_id"] for r in rows]


async def add_allocated_positions(
    conn: Any, period_id: int, year: int, amounts: Sequence[tuple[uuid.UUID, int]]
) -> None:
    """Add allocated allowance to positions (created when missing), in enterprise-id order."""
    ordered = sorted(amounts)
    await conn.execute(
        """
        INSERT INTO allowance_positions (period_id, enterprise_id, year, allocated_g)
        SELECT $1, e, $2, a FROM unnest($3::uuid[], $4::int8[]) WITH ORDINALITY AS u(e, a, o)
        ORDER BY o
        ON CONFLICT (period_id, enterprise_id)
        DO UPDATE SET allocated_g = allowance_positions.allocated_g + EXCLUDED.allocated_g
        """,
        period_id,
        year,
        [e for e, _ in ordered],
        [a for _, a in ordered],
    )


async def ensure_position(conn: Any, period_id: int, year: int, enterprise_id: uuid.UUID) -> None:
    """Create an empty position (a buyer's first); nothing when it, or one of the year in
    another period, exists."""
    await conn.execute(
        """
        INSERT INTO allowance_positions (period_id, enterprise_id, year) VALUES ($1, $2, $3)
        ON CONFLICT DO NOTHING
        """,
        period_id,
        enterprise_id,
        year,
    )


async def position_of_year(conn: Any, enterprise_id: uuid.UUID, year: int) -> Any:
    return await conn.fetchrow(
        f"SELECT {_POSITION} FROM allowance_positions WHERE enterprise_id = $1 AND year = $2",
        enterprise_id,
        year,
    )


async def lock_positions(
    conn: Any, period_id: int, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """The positions of ``ids`` in the period, locked in enterprise-id order."""
    rows = await conn.fetch(
        f"""
        SELECT {_POSITION} FROM allowance_positions
        WHERE period_id = $1 AND enterprise_id = ANY($2::uuid[])
        ORDER BY enterprise_id FOR UPDATE
        """,
        period_id,
        sorted(set(ids)),
    )
    return {r["enterprise_id"]: r for r in rows}


async def period_positions(conn: Any, period_id: int, *, lock: bool = False) -> list[Any]:
    return list(
        await conn.fetch(
            f"SELECT {_POSITION} FROM allowance_positions WHERE period_id = $1 "
            f"ORDER BY enterprise_id{' FOR UPDATE' if lock else ''}",
            period_id,
        )
    )


async def move_position(
    conn: Any,
    period_id: int,
    enterprise_id: uuid.UUID,
    *,
    bought: int = 0,
    sold: int = 0,
    offered: int = 0,
    surrendered: int = 0,
    surrendered_at: datetime | None = None,
) -> Any:
    return await conn.fetchrow(
        f"""
        UPDATE allowance_positions SET bought_g = bought_g + $3, sold_g = sold_g + $4,
            offered_g = offered_g + $5, surrendered_g = surrendered_g + $6,
            surrendered_at = coalesce($7, surrendered_at)
        WHERE period_id = $1 AND enterprise_id = $2 RETURNING {_POSITION}
        """,
        period_id,
        enterprise_id,
        bought,
        sold,
        offered,
        surrendered,
        surrendered_at,
    )


# --- offers ------------------------------------------------------------------------------------


async def insert_offer(
    conn: Any, period_id: int, seller_id: uuid.UUID, quantity_g: int, price: int, now: datetime
) -> uuid.UUID:
    offer_id: uuid.UUID = await conn.fetchval(
        """
        INSERT INTO allowance_offers (period_id, seller_id, quantity_g, price_fen_per_t,
                                      created_at)
        VALUES ($1, $2, $3, $4, $5) RETURNING id
        """,
        period_id,
        seller_id,
        quantity_g,
        price,
        now,
    )
    return offer_id


async def offer(conn: Any, offer_id: uuid.UUID, *, lock: bool = False) -> Any:
    return await conn.fetchrow(
        f"""
        SELECT {_OFFER} FROM {_FROM}
        WHERE o.id = $1{" FOR UPDATE OF o" if lock else ""}
        """,
        offer_id,
    )


async def settle_offer(
    conn: Any,
    offer_id: uuid.UUID,
    buyer_id: uuid.UUID,
    transfer_id: int,
    now: datetime,
    *,
    from_status: str = "open",
) -> bool:
    """``from_status`` (open, or pending_approval with that buyer) -> sold, once: the
    conditional update answers False when the offer is not in that state."""
    done = await conn.fetchval(
        """
        UPDATE allowance_offers SET status = 'sold', buyer_id = $2, transfer_id = $3,
            settled_at = $4
        WHERE id = $1 AND status = $5 AND (status = 'open' OR buyer_id = $2) RETURNING true
        """,
        offer_id,
        buyer_id,
        transfer_id,
        now,
        from_status,
    )
    return bool(done)


# --- approvals (migration 0071) -----------------------------------------------------------------


async def request_approval(
    conn: Any, offer_id: uuid.UUID, buyer_id: uuid.UUID, now: datetime
) -> bool:
    """Open -> pending_approval with the buyer recorded, and the request's row, once: False when
    the offer is not open."""
    done = await conn.fetchval(
        """
        WITH o AS (
            UPDATE allowance_offers SET status = 'pending_approval', buyer_id = $2
            WHERE id = $1 AND status = 'open' RETURNING id
        )
        INSERT INTO allowance_approvals (offer_id, buyer_id, requested_at)
        SELECT id, $2, $3 FROM o RETURNING true
        """,
        offer_id,
        buyer_id,
        now,
    )
    return bool(done)


async def decide_approval(
    conn: Any, offer_id: uuid.UUID, status: str, actor: str, reason: str | None, now: datetime
) -> bool:
    """The offer's pending request approved or rejected (False: none pending)."""
    done = await conn.fetchval(
        """
        UPDATE allowance_approvals SET status = $2, decided_by = $3, reason = $4, decided_at = $5
        WHERE offer_id = $1 AND status = 'pending' RETURNING true
        """,
        offer_id,
        status,
        actor,
        reason,
        now,
    )
    return bool(done)


async def reopen_offer(conn: Any, offer_id: uuid.UUID) -> bool:
    """pending_approval -> open, the buyer cleared (a rejection)."""
    done = await conn.fetchval(
        """
        UPDATE allowance_offers SET status = 'open', buyer_id = NULL
        WHERE id = $1 AND status = 'pending_approval' RETURNING true
        """,
        offer_id,
    )
    return bool(done)


async def pending_offers(conn: Any, region_code: str | None, year: int | None) -> list[Any]:
    """Offers waiting for the government's decision, oldest request first."""
    return list(
        await conn.fetch(
            f"""
            SELECT {_OFFER} FROM {_FROM}
            WHERE o.status = 'pending_approval'
              AND ($1::text IS NULL OR p.region_code = $1)
              AND ($2::int IS NULL OR p.year = $2)
            ORDER BY a.requested_at, o.id LIMIT 1000
            """,
            region_code,
            year,
        )
    )


async def enterprise_transfers(
    conn: Any,
    enterprise_id: uuid.UUID,
    year: int | None,
    before: tuple[datetime, uuid.UUID, int] | None,
    limit: int,
) -> list[Any]:
    """One enterprise's transfers, either side, newest first: each approval request (pending,
    approved or rejected; a buyer sees its own, a seller every one of its offers) and each sale
    settled without one (automatic mode). ``at``: the decision's time, else the request's, else
    the settlement's."""
    return list(
        await conn.fetch(
            """
            SELECT * FROM (
                SELECT o.id, o.period_id, p.region_code, p.year, o.seller_id, o.quantity_g,
                    o.price_fen_per_t, o.status, o.buyer_id, o.transfer_id, o.created_at,
                    o.settled_at, a.id AS a_id, a.status AS a_status, a.buyer_id AS a_buyer_id,
                    a.requested_at AS a_requested_at, a.decided_at AS a_decided_at,
                    a.reason AS a_reason,
                    coalesce(a.decided_at, a.requested_at, o.settled_at) AS at
                FROM allowance_offers o JOIN allowance_periods p ON p.id = o.period_id
                LEFT JOIN allowance_approvals a ON a.offer_id = o.id
                WHERE (o.seller_id = $1 OR coalesce(a.buyer_id, o.buyer_id) = $1)
                  AND (a.id IS NOT NULL OR o.status = 'sold')
                  AND ($2::int IS NULL OR p.year = $2)
            ) t
            WHERE ($3::timestamptz IS NULL
                   OR (t.at, t.id, coalesce(t.a_id, 0)) < ($3, $4::uuid, $5::bigint))
            ORDER BY t.at DESC, t.id DESC, coalesce(t.a_id, 0) DESC LIMIT $6
            """,
            enterprise_id,
            year,
            before[0] if before else None,
            before[1] if before else None,
            before[2] if before else 0,
            limit,
        )
    )


async def withdraw_offer(conn: Any, offer_id: uuid.UUID, now: datetime) -> bool:
    done = await conn.fetchval(
        """
        UPDATE allowance_offers SET status = 'withdrawn', settled_at = $2
        WHERE id = $1 AND status = 'open' RETURNING true
        """,
        offer_id,
        now,
    )
    return bool(done)


async def withdraw_open_offers(conn: Any, period_id: int, now: datetime) -> list[Any]:
    """Withdraw every open or pending offer of the period (its close; a pending request is
    rejected, reason ``period_closed``): (seller, quantity) of each."""
    return list(
        await conn.fetch(
            """
            WITH w AS (
                UPDATE allowance_offers SET status = 'withdrawn', settled_at = $2, buyer_id = NULL
                WHERE period_id = $1 AND status IN ('open', 'pending_approval')
                RETURNING id, seller_id, quantity_g
            ), r AS (
                UPDATE allowance_approvals SET status = 'rejected', decided_by = 'system',
                    decided_at = $2, reason = 'period_closed'
                WHERE status = 'pending' AND offer_id IN (SELECT id FROM w)
            )
            SELECT seller_id, quantity_g FROM w
            """,
            period_id,
            now,
        )
    )


async def open_offers(
    conn: Any,
    district_code: str,
    year: int | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Open offers of the periods whose region holds ``district_code``, oldest first."""
    return list(
        await conn.fetch(
            f"""
            SELECT {_OFFER} FROM {_FROM}
            WHERE o.status = 'open' AND p.status = 'open'
              AND $1::text LIKE {REGION_PREFIX.format("p.region_code")} || '%'
              AND ($2::int IS NULL OR p.year = $2)
              AND ($3::timestamptz IS NULL OR (o.created_at, o.id) > ($3, $4::uuid))
            ORDER BY o.created_at, o.id LIMIT $5
            """,
            district_code,
            year,
            after[0] if after else None,
            after[1] if after else None,
            limit,
        )
    )


async def offers_of_seller(conn: Any, seller_id: uuid.UUID, year: int | None) -> list[Any]:
    return list(
        await conn.fetch(
            f"""
            SELECT {_OFFER} FROM {_FROM}
            WHERE o.seller_id = $1 AND ($2::int IS NULL OR p.year = $2)
            ORDER BY o.created_at DESC, o.id LIMIT 1000
            """,
            seller_id,
            year,
        )
    )


async def trades(
    conn: Any,
    *,
    enterprise_id: uuid.UUID | None,
    region_code: str | None,
    year: int | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    """Settled transfers (sold offers), newest first: of one enterprise (either side), or of
    every enterprise (government), optionally of one period's region and year."""
    return list(
        await conn.fetch(
            f"""
            SELECT {_OFFER} FROM {_FROM}
            WHERE o.status = 'sold'
              AND ($1::uuid IS NULL OR o.seller_id = $1 OR o.buyer_id = $1)
              AND ($2::text IS NULL OR p.region_code = $2)
              AND ($3::int IS NULL OR p.year = $3)
              AND ($4::timestamptz IS NULL OR (o.settled_at, o.id) < ($4, $5::uuid))
            ORDER BY o.settled_at DESC, o.id DESC LIMIT $6
            """,
            enterprise_id,
            region_code,
            year,
            before[0] if before else None,
            before[1] if before else None,
            limit,
        )
    )


async def withdraw_seller_offers(
    conn: Any, period_id: int, seller_id: uuid.UUID, now: datetime
) -> int:
    """Withdraw the seller's open and pending offers of the period (its surrender; a pending
    request is rejected, reason ``seller_surrendered``): the grams freed."""
    freed = await conn.fetchval(
        """
        WITH w AS (
            UPDATE allowance_offers SET status = 'withdrawn', settled_at = $3, buyer_id = NULL
            WHERE period_id = $1 AND seller_id = $2 AND status IN ('open', 'pending_approval')
            RETURNING id, quantity_g
        ), r AS (
            UPDATE allowance_approvals SET status = 'rejected', decided_by = 'system',
                decided_at = $3, reason = 'seller_surrendered'
            WHERE status = 'pending' AND offer_id IN (SELECT id FROM w)
        )
        SELECT coalesce(sum(quantity_g), 0)::bigint FROM w
        """,
        period_id,
        seller_id,
        now,
    )
    return int(freed)
