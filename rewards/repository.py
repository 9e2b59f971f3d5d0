"""All SQL of the rewards package's tables (migration 0050): merchants, merchant_keys,
catalogue_items, reward_codes, rewards, reward_usage, reward_webhooks.

Functions take an asyncpg connection (or a :class:`kit.db.Tx`'s ``conn``); nothing here commits.
The redemption's writes are set-wise single statements: the limit counters in one conditional
upsert, the stock, the coupon code and the reward in one statement (data-modifying CTEs).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import asyncpg

from rewards.errors import MerchantExists, MerchantKeyExists, MerchantNotFound

# --- merchants and keys --------------------------------------------------------------------

_MERCHANT = "id, name, settlement_contact, webhook_url, created_at"


async def insert_merchant(
    conn: Any,
    merchant_id: str,
    name: str,
    contact: str,
    webhook_url: str | None,
    webhook_secret: str | None,
) -> Any:
    try:
        return await conn.fetchrow(
            f"""
            INSERT INTO merchants (id, name, settlement_contact, webhook_url, webhook_secret)
            VALUES ($1, $2, $3, $4, $5) RETURNING {_MERCHANT}
            """,
            merchant_id,
            name,
            contact,
            webhook_url,
            webhook_secret,
        )
    except asyncpg.UniqueViolationError:
        raise MerchantExists(f"A merchant {merchant_id!r} exists.") from None


async def merchant(conn: Any, merchant_id: str) -> Any:
    return await conn.fetchrow(f"SELECT {_MERCHANT} FROM merchants WHERE id = $1", merchant_id)


async def add_key(conn: Any, merchant_id: str, key_id: str, sealed: str) -> None:
    try:
        await conn.execute(
            "INSERT INTO merchant_keys (merchant_id, key_id, secret) VALUES ($1, $2, $3)",
            merchant_id,
            key_id,
            sealed,
        )
    except asyncpg.ForeignKeyViolationError:
        raise MerchantNotFound(f"No merchant {merchant_id!r}.") from None
    except asyncpg.UniqueViolationError:
        raise MerchantKeyExists(f"Merchant {merchant_id!r} has a key {key_id!r}.") from None


async def key_secret(conn: Any, merchant_id: str, key_id: str) -> str | None:
    secret: str | None = await conn.fetchval(
        "SELECT secret FROM merchant_keys "
        "WHERE merchant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
        merchant_id,
        key_id,
    )
    return secret


async def revoke_key(conn: Any, merchant_id: str, key_id: str) -> bool:
    done: str = await conn.execute(
        "UPDATE merchant_keys SET revoked_at = now() "
        "WHERE merchant_id = $1 AND key_id = $2 AND revoked_at IS NULL",
        merchant_id,
        key_id,
    )
    return done.endswith(" 1")


# --- catalogue -----------------------------------------------------------------------------

_ITEM = """
    i.id::text AS id, i.merchant_id, m.name AS merchant_name, i.kind, i.title, i.description,
    i.usage_instructions, i.image_urls, i.cost_points, i.total_stock, i.remaining,
    i.per_resident_limit, i.period_limit, i.limit_period, i.active_from, i.active_until,
    i.visible_from, i.visible_until, i.eligible_districts AS eligible, i.validity_s
"""


async def insert_item(conn: Any, values: dict[str, Any]) -> Any:
    try:
        return await conn.fetchrow(
            f"""
            WITH i AS (
                INSERT INTO catalogue_items (
                    merchant_id, kind, title, description, usage_instructions, image_urls,
                    cost_points, total_stock, remaining, per_resident_limit, period_limit,
                    limit_period, active_from, active_until, visible_from, visible_until,
                    eligible_districts, validity_s)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, $15,
                        $16, $17)
                RETURNING *)
            SELECT {_ITEM} FROM i JOIN merchants m ON m.id = i.merchant_id
            """,
            values["merchant_id"],
            values["kind"],
            values["title"],
            values["description"],
            values["usage_instructions"],
            values["image_urls"],
            values["cost_points"],
            values["total_stock"],
            values["per_resident_limit"],
            values["period_limit"],
            values["limit_period"],
            values["active_from"],
            values["active_until"],
            values["visible_from"],
            values["visible_until"],
            values["districts"],
            values["validity_s"],
        )
    except asyncpg.ForeignKeyViolationError:
        raise MerchantNotFound(f"No merchant {values['merchant_id']!r}.") from None


async def item(conn: Any, item_id: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_ITEM} FROM catalogue_items i JOIN merchants m ON m.id = i.merchant_id "
        "WHERE i.id = $1::uuid",
        item_id,
    )


async def browse(
    conn: Any,
    *,
    now: datetime,
    kind: str | None,
    merchant_id: str | None,
    max_cost: int | None,
    district: str | None,
    any_district: bool,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Any]:
    """Visible items, by (cost, id); ``any_district`` False: only items open to ``district``
    (items with no district list are open to every resident)."""
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_ITEM} FROM catalogue_items i JOIN merchants m ON m.id = i.merchant_id
        WHERE i.visible_from <= $1 AND $1 < i.visible_until
          AND ($2::text IS NULL OR i.kind = $2)
          AND ($3::text IS NULL OR i.merchant_id = $3)
          AND ($4::int IS NULL OR i.cost_points <= $4)
          AND ($6 OR i.eligible_districts = '{{}}' OR $5::text = ANY (i.eligible_districts))
          AND ($7::int IS NULL OR (i.cost_points, i.id) > ($7, $8::uuid))
        ORDER BY i.cost_points, i.id
        LIMIT $9
        """,
        now,
        kind,
        merchant_id,
        max_cost,
        district,
        any_district,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


async def insert_codes(
    conn: Any, item_id: str, merchant_id: str, hashes: Sequence[bytes], sealed: Sequence[str]
) -> list[bytes]:
    """Add codes to an item's pool (set-wise); the hashes that were new (a hash already held
    by the merchant is left out: the caller refuses the file)."""
    rows = await conn.fetch(
        """
        INSERT INTO reward_codes (item_id, merchant_id, code_hash, code_sealed)
        SELECT $1::uuid, $2, h, s FROM unnest($3::bytea[], $4::text[]) AS t(h, s)
        ON CONFLICT (merchant_id, code_hash) DO NOTHING
        RETURNING code_hash
        """,
        item_id,
        merchant_id,
        list(hashes),
        list(sealed),
    )
    return [bytes(r["code_hash"]) for r in rows]


async def add_stock(conn: Any, item_id: str, units: int) -> None:
    await conn.execute(
        "UPDATE catalogue_items SET total_stock = total_stock + $2, remaining = remaining + $2 "
        "WHERE id = $1::uuid",
        item_id,
        units,
    )


# --- redemption ------------------------------------------------------------------------------


async def take_usage(
    conn: Any, item_id: str, resident_id: str, keys: Sequence[str], limits: Sequence[int]
) -> int:
    """Count one more reward in each limit period of ``keys`` unless its limit is reached;
    how many periods took it (fewer than ``len(keys)``: a limit is reached). The upsert's row
    lock serialises one resident's concurrent redemptions of one item."""
    rows = await conn.fetch(
        """
        INSERT INTO reward_usage AS u (item_id, resident_id, period_key, used)
        SELECT $1::uuid, $2::uuid, k, 1 FROM unnest($3::text[]) AS k
        ON CONFLICT (item_id, resident_id, period_key) DO UPDATE SET used = u.used + 1
        WHERE u.used < (SELECT l FROM unnest($3::text[], $4::int[]) AS t(k, l)
                        WHERE t.k = u.period_key)
        RETURNING period_key
        """,
        item_id,
        resident_id,
        list(keys),
        list(limits),
    )
    return len(rows)


_REWARD = """
    r.id::text AS id, r.item_id::text AS item_id, r.merchant_id, r.resident_id::text AS resident_id,
    r.kind, r.status, r.cost_points, r.code_hash, r.code_sealed, r.hold_id, r.post_id,
    r.refund_id, r.period_key, r.delivery_status, r.issued_at, r.valid_until, r.used_at,
    r.closed_at, r.refunded_at
"""
_REWARD_VIEW = _REWARD + ", i.title, i.usage_instructions"


async def issue(
    conn: Any,
    *,
    reward_id: str,
    item_id: str,
    merchant_id: str,
    resident_id: str,
    kind: str,
    cost_points: int,
    code_hash: bytes | None,
    code_sealed: str | None,
    hold_id: int,
    period_key: str | None,
    issued_at: datetime,
    valid_until: datetime,
) -> Any:
    """One unit of stock taken (a conditional UPDATE: never below zero), the pool's next code
    claimed for a coupon item (``code_hash`` None; ``SKIP LOCKED``: concurrent claims take
    different codes), and the reward inserted: one statement. None: no stock (or no code)."""
    return await conn.fetchrow(
        f"""
        WITH s AS (
            UPDATE catalogue_items SET remaining = remaining - 1
            WHERE id = $2::uuid AND remaining > 0
            RETURNING id, title, usage_instructions),
        c AS (
            UPDATE reward_codes SET reward_id = $1::uuid
            WHERE $7::bytea IS NULL AND EXISTS (SELECT 1 FROM s) AND id = (
                SELECT id FROM reward_codes
                WHERE item_id = $2::uuid AND reward_id IS NULL
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING code_hash, code_sealed),
        r AS (
            INSERT INTO rewards (
                id, item_id, merchant_id, resident_id, kind, status, cost_points, code_hash,
                code_sealed, hold_id, period_key, delivery_status, issued_at, valid_until)
            SELECT $1::uuid, s.id, $3, $4::uuid, $5, 'issued', $6,
                   coalesce($7::bytea, c.code_hash), coalesce($8::text, c.code_sealed), $9, $10,
                   CASE WHEN $5 = 'physical' THEN 'pending' END, $11, $12
            FROM s LEFT JOIN c ON true
            WHERE $7::bytea IS NOT NULL OR c.code_hash IS NOT NULL
            RETURNING *)
        SELECT {_REWARD_VIEW} FROM r JOIN s i ON i.id = r.item_id
        """,
        reward_id,
        item_id,
        merchant_id,
        resident_id,
        kind,
        cost_points,
        code_hash,
        code_sealed,
        hold_id,
        period_key,
        issued_at,
        valid_until,
    )


# --- redemption, set-wise (``rewards.redemptions.redeem_many``: a micro-batch) ----------------


async def items_of(conn: Any, item_ids: Sequence[str], *, lock: bool = False) -> dict[str, Any]:
    """The items of ``item_ids`` that exist, by id; ``lock``: their rows locked, in id order
    (two batches lock shared items in the same order), and read under the locks."""
    rows = await conn.fetch(
        f"SELECT {_ITEM} FROM catalogue_items i JOIN merchants m ON m.id = i.merchant_id "
        "WHERE i.id = ANY ($1::uuid[]) ORDER BY i.id" + (" FOR UPDATE OF i" if lock else ""),
        sorted(set(item_ids)),
    )
    return {r["id"]: r for r in rows}


async def free_codes(conn: Any, wanted: dict[str, int]) -> dict[str, list[Any]]:
    """Up to ``wanted[item]`` unclaimed pool codes of each coupon item, first imported first (the
    order one-by-one claims take them), locked; by item."""
    ids = sorted(wanted)
    rows = await conn.fetch(
        """
        SELECT x.id, x.item_id::text AS item_id, x.code_hash, x.code_sealed
        FROM unnest($1::uuid[], $2::int[]) AS n(item_id, k),
        LATERAL (SELECT c.id, c.item_id, c.code_hash, c.code_sealed FROM reward_codes c
                 WHERE c.item_id = n.item_id AND c.reward_id IS NULL
                 ORDER BY c.id LIMIT n.k FOR UPDATE SKIP LOCKED) AS x
        ORDER BY x.item_id, x.id
        """,
        ids,
        [wanted[i] for i in ids],
    )
    out: dict[str, list[Any]] = {i: [] for i in ids}
    for r in rows:
        out[r["item_id"]].append(r)
    return out


async def usage_of(
    conn: Any, slots: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    """{(item, resident, period key): used} of the limit counters that exist among ``slots``."""
    rows = await conn.fetch(
        """
        SELECT u.item_id::text AS item_id, u.resident_id::text AS resident_id, u.period_key,
               u.used
        FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS s(item_id, resident_id, period_key)
        JOIN reward_usage u USING (item_id, resident_id, period_key)
        """,
        [s[0] for s in slots],
        [s[1] for s in slots],
        [s[2] for s in slots],
    )
    return {(r["item_id"], r["resident_id"], r["period_key"]): r["used"] for r in rows}


class IssueMany(NamedTuple):
    """What :func:`issue_many` writes: stock taken per item, pool codes claimed by rewards,
    limit counters raised (each within its limit) and the rewards (one list per column)."""

    stock_items: list[str]
    stock_units: list[int]
    code_ids: list[int]
    code_rewards: list[str]
    usage: list[tuple[str, str, str, int, int]]  # item, resident, period key, taken, limit
    rewards: dict[str, list[Any]]  # column -> values, in reward order


_REWARD_INPUT = {
    "id": "uuid",
    "item_id": "uuid",
    "merchant_id": "text",
    "resident_id": "uuid",
    "kind": "text",
    "cost_points": "int",
    "code_hash": "bytea",
    "code_sealed": "text",
    "hold_id": "bigint",
    "period_key": "text",
    "issued_at": "timestamptz",
    "valid_until": "timestamptz",
}
REWARD_COLUMNS = tuple(_REWARD_INPUT)  # IssueMany.rewards' columns
_R0 = 10  # the first parameter of the rewards' columns


async def issue_many(conn: Any, w: IssueMany) -> bool:
    """All of a batch's redemption writes in one statement: each item's stock taken once (the items
    locked first, in id order; never below zero: the stock was decided on a read without the lock,
    so a batch that ran meanwhile may have left less), the coupon codes claimed, the limit counters
    raised (never past a limit), the rewards inserted. Whether all of it went as decided (False:
    something changed under the caller, which rolls back)."""
    cols = ", ".join(_REWARD_INPUT)
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(_REWARD_INPUT.values(), start=_R0))
    row = await conn.fetchrow(
        f"""
        WITH n AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS n(id, k)),
        lk AS MATERIALIZED (
            SELECT id FROM catalogue_items WHERE id = ANY ($1::uuid[]) ORDER BY id FOR UPDATE),
        s AS (
            UPDATE catalogue_items i SET remaining = i.remaining - n.k FROM n, lk
            WHERE i.id = n.id AND lk.id = n.id AND i.remaining >= n.k RETURNING i.id),
        c AS (
            UPDATE reward_codes rc SET reward_id = x.rid
            FROM unnest($3::bigint[], $4::uuid[]) AS x(cid, rid)
            WHERE rc.id = x.cid AND rc.reward_id IS NULL RETURNING rc.id),
        lim AS (
            SELECT * FROM unnest($5::uuid[], $6::uuid[], $7::text[], $8::int[], $9::int[])
                AS l(item_id, resident_id, period_key, k, lim)),
        u AS (
            INSERT INTO reward_usage AS u (item_id, resident_id, period_key, used)
            SELECT item_id, resident_id, period_key, k FROM lim
            ON CONFLICT (item_id, resident_id, period_key)
                DO UPDATE SET used = u.used + excluded.used
            WHERE u.used + excluded.used <= (
                SELECT l.lim FROM lim l WHERE l.item_id = u.item_id
                  AND l.resident_id = u.resident_id AND l.period_key = u.period_key)
            RETURNING 1),
        r AS (
            INSERT INTO rewards ({cols}, status, delivery_status)
            SELECT {cols}, 'issued', CASE WHEN kind = 'physical' THEN 'pending' END
            FROM unnest({arrays}) AS x({cols})
            RETURNING 1)
        SELECT (SELECT count(*) FROM r) AS n_rewards, (SELECT count(*) FROM s) AS n_stock,
               (SELECT count(*) FROM c) AS n_codes, (SELECT count(*) FROM u) AS n_usage
        """,
        w.stock_items,
        w.stock_units,
        w.code_ids,
        w.code_rewards,
        [u[0] for u in w.usage],
        [u[1] for u in w.usage],
        [u[2] for u in w.usage],
        [u[3] for u in w.usage],
        [u[4] for u in w.usage],
        *(w.rewards[c] for c in _REWARD_INPUT),
    )
    return bool(
        row["n_rewards"] == len(w.rewards["id"])
        and row["n_stock"] == len(w.stock_items)
        and row["n_codes"] == len(w.code_ids)
        and row["n_usage"] == len(w.usage)
    )


async def reward_for_update(conn: Any, reward_id: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_REWARD_VIEW} FROM rewards r JOIN catalogue_items i ON i.id = r.item_id "
        "WHERE r.id = $1::uuid FOR UPDATE OF r",
        reward_id,
    )


async def reward_by_code(conn: Any, merchant_id: str, code_hash: bytes, *, lock: bool) -> Any:
    return await conn.fetchrow(
        f"SELECT {_REWARD_VIEW} FROM rewards r JOIN catalogue_items i ON i.id = r.item_id "
        "WHERE r.merchant_id = $1 AND r.code_hash = $2" + (" FOR UPDATE OF r" if lock else ""),
        merchant_id,
        code_hash,
    )


async def reward_of(conn: Any, resident_id: str, reward_id: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_REWARD_VIEW} FROM rewards r JOIN catalogue_items i ON i.id = r.item_id "
        "WHERE r.id = $1::uuid AND r.resident_id = $2::uuid",
        reward_id,
        resident_id,
    )


async def rewards_of(
    conn: Any,
    resident_id: str,
    *,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Any]:
    """A resident's rewards, newest first (keyset on (issued_at, id))."""
    rows: list[Any] = await conn.fetch(
        f"""
        SELECT {_REWARD_VIEW} FROM rewards r JOIN catalogue_items i ON i.id = r.item_id
        WHERE r.resident_id = $1::uuid AND ($2::text IS NULL OR r.status = $2)
          AND ($3::timestamptz IS NULL OR (r.issued_at, r.id) < ($3, $4::uuid))
        ORDER BY r.issued_at DESC, r.id DESC
        LIMIT $5
        """,
        resident_id,
        status,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


async def mark_used(
    conn: Any, reward_id: str, post_id: int, used_at: datetime, delivery: str | None
) -> Any:
    return await conn.fetchrow(
        f"""
        WITH r AS (
            UPDATE rewards SET status = 'used', post_id = $2, used_at = $3,
                               delivery_status = coalesce($4, delivery_status)
            WHERE id = $1::uuid AND status = 'issued' RETURNING *)
        SELECT {_REWARD_VIEW} FROM r JOIN catalogue_items i ON i.id = r.item_id
        """,
        reward_id,
        post_id,
        used_at,
        delivery,
    )


async def mark_refunded(conn: Any, reward_id: str, refund_id: int, at: datetime) -> Any:
    """The reward refunded; its limit slots are given back (the stock is not: the unit was
    used)."""
    return await conn.fetchrow(
        f"""
        WITH r AS (
            UPDATE rewards SET status = 'refunded', refund_id = $2, refunded_at = $3
            WHERE id = $1::uuid AND status = 'used' RETURNING *),
        u AS (
            UPDATE reward_usage u SET used = u.used - 1 FROM r
            WHERE u.item_id = r.item_id AND u.resident_id = r.resident_id
              AND (u.period_key = 'all' OR u.period_key = r.period_key) AND u.used > 0)
        SELECT {_REWARD_VIEW} FROM r JOIN catalogue_items i ON i.id = r.item_id
        """,
        reward_id,
        refund_id,
        at,
    )


async def set_delivery(conn: Any, reward_id: str, status: str) -> None:
    await conn.execute(
        "UPDATE rewards SET delivery_status = $2 WHERE id = $1::uuid", reward_id, status
    )


async def close(conn: Any, reward_ids: Sequence[str], status: str, at: datetime) -> list[Any]:
    """Cancel or expire issued rewards, set-wise: the stock of each given back (a coupon's code
    is burnt instead: the resident has seen it, so it is never issued again), and their limit
    slots. The rewards closed (those still issued)."""
    rows: list[Any] = await conn.fetch(
        f"""
        WITH r AS (
            UPDATE rewards SET status = $2, closed_at = $3
            WHERE id = ANY ($1::uuid[]) AND status = 'issued' RETURNING *),
        s AS (
            UPDATE catalogue_items i SET remaining = i.remaining + n.units
            FROM (SELECT item_id, count(*)::int AS units FROM r
                  WHERE kind <> 'coupon_code' GROUP BY item_id) n
            WHERE i.id = n.item_id),
        u AS (
            UPDATE reward_usage u SET used = u.used - n.units
            FROM (SELECT r.item_id, r.resident_id, k.key, count(*)::int AS units
                  FROM r, LATERAL (VALUES ('all'), (r.period_key)) AS k(key)
                  WHERE k.key IS NOT NULL GROUP BY 1, 2, 3) n
            WHERE u.item_id = n.item_id AND u.resident_id = n.resident_id
              AND u.period_key = n.key)
        SELECT {_REWARD_VIEW} FROM r JOIN catalogue_items i ON i.id = r.item_id
        """,
        list(reward_ids),
        status,
        at,
    )
    return rows


async def due_rewards(conn: Any, now: datetime, limit: int) -> list[str]:
    """Ids of issued rewards past their validity, locked (``SKIP LOCKED``: two sweeps split)."""
    rows = await conn.fetch(
        "SELECT id::text FROM rewards WHERE status = 'issued' AND valid_until <= $1 "
        "ORDER BY valid_until LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def settlement_lines(
    conn: Any, merchant_id: str, start: datetime, end: datetime
) -> list[Any]:
    """The merchant's confirmations (by ``used_at``) and refunds (by ``refunded_at``) in
    ``[start, end)``, oldest first."""
    rows: list[Any] = await conn.fetch(
        """
        SELECT * FROM (
            SELECT r.id::text AS reward_id, r.item_id::text AS item_id, i.title,
                   'confirmed' AS event, r.cost_points AS points, r.used_at AS at,
                   r.post_id AS transfer_id
            FROM rewards r JOIN catalogue_items i ON i.id = r.item_id
            WHERE r.merchant_id = $1 AND r.used_at >= $2 AND r.used_at < $3
            UNION ALL
            SELECT r.id::text, r.item_id::text, i.title, 'refunded', -r.cost_points,
                   r.refunded_at, r.refund_id
            FROM rewards r JOIN catalogue_items i ON i.id = r.item_id
            WHERE r.merchant_id = $1 AND r.refunded_at >= $2 AND r.refunded_at < $3
        ) lines ORDER BY at, transfer_id
        """,
        merchant_id,
        start,
        end,
    )
    return rows


# --- webhooks --------------------------------------------------------------------------------


async def webhook_targets(conn: Any, merchant_ids: Sequence[str]) -> set[str]:
    """The merchants of ``merchant_ids`` that take webhooks."""
    rows = await conn.fetch(
        "SELECT id FROM merchants WHERE id = ANY ($1::text[]) AND webhook_url IS NOT NULL",
        list(set(merchant_ids)),
    )
    return {r["id"] for r in rows}


async def insert_webhooks(
    conn: Any,
    event_ids: Sequence[str],
    merchant_ids: Sequence[str],
    types: Sequence[str],
    reward_ids: Sequence[str],
    payloads: Sequence[str],
    at: datetime,
) -> list[str]:
    """The outbox rows (one per reward and event type: a replayed event is not written twice);
    the ids written."""
    rows = await conn.fetch(
        """
        INSERT INTO reward_webhooks (event_id, merchant_id, event_type, reward_id, payload,
                                     created_at, next_attempt_at)
        SELECT e, m, t, r, p::jsonb, $6, $6
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[]) AS x(e, m, t, r, p)
        ON CONFLICT (reward_id, event_type) DO NOTHING
        RETURNING event_id::text
        """,
        list(event_ids),
        list(merchant_ids),
        list(types),
        list(reward_ids),
        list(payloads),
        at,
    )
    return [r["event_id"] for r in rows]


async def lease_webhook(conn: Any, event_id: str, now: datetime, lease_until: datetime) -> Any:
    """Take a due, undelivered event for one attempt (its next attempt moved to
    ``lease_until``, so a second worker leaves it alone), with its merchant's URL and sealed
    secret; None when it is not due."""
    return await conn.fetchrow(
        """
        WITH w AS (
            UPDATE reward_webhooks SET attempts = attempts + 1, next_attempt_at = $3
            WHERE event_id = $1::uuid AND delivered_at IS NULL AND failed_at IS NULL
              AND next_attempt_at <= $2
            RETURNING event_id::text AS event_id, merchant_id, payload, attempts)
        SELECT w.*, m.webhook_url, m.webhook_secret FROM w JOIN merchants m ON m.id = w.merchant_id
        """,
        event_id,
        now,
        lease_until,
    )


async def webhook_done(
    conn: Any,
    event_id: str,
    *,
    delivered_at: datetime | None,
    failed_at: datetime | None,
    next_attempt_at: datetime,
    last_status: str,
) -> None:
    await conn.execute(
        "UPDATE reward_webhooks SET delivered_at = $2, failed_at = $3, next_attempt_at = $4, "
        "last_status = $5 WHERE event_id = $1::uuid",
        event_id,
        delivered_at,
        failed_at,
        next_attempt_at,
        last_status,
    )


async def due_webhooks(conn: Any, now: datetime, limit: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT event_id::text FROM reward_webhooks "
        "WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 "
        "ORDER BY next_attempt_at LIMIT $2",
        now,
        limit,
    )
    return [r["event_id"] for r in rows]


async def webhook(conn: Any, event_id: str) -> Any:
    return await conn.fetchrow(
        "SELECT event_id::text AS event_id, event_type, attempts, delivered_at, failed_at, "
        "last_status, next_attempt_at, payload FROM reward_webhooks WHERE event_id = $1::uuid",
        event_id,
    )
