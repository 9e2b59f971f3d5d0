"""All SQL of the mobile API, and its Redis keys (codes, rate limits, leaderboards)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

# --- residents and their personal data -----------------------------------------------------


async def lock_identity(tx: Any, key: bytes) -> None:
    """Serialise sign-ins for one phone / openid so the first one creates the account once."""
    await tx.conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(encode($1::bytea, 'hex'), 30))", key
    )


async def resident_by_phone(tx: Any, phone_hmac: bytes) -> uuid.UUID | None:
    rid: uuid.UUID | None = await tx.conn.fetchval(
        "SELECT resident_id FROM resident_identities WHERE phone_hmac = $1", phone_hmac
    )
    return rid


async def resident_by_openid(tx: Any, openid_hmac: bytes) -> uuid.UUID | None:
    rid: uuid.UUID | None = await tx.conn.fetchval(
        "SELECT resident_id FROM resident_identities WHERE wechat_openid_hmac = $1", openid_hmac
    )
    return rid


async def create_resident(
    tx: Any,
    *,
    district_code: str | None,
    phone_hmac: bytes | None,
    phone_masked: str | None,
    openid_hmac: bytes | None,
) -> uuid.UUID:
    rid: uuid.UUID = await tx.conn.fetchval(
        """
        WITH r AS (INSERT INTO residents (district_code) VALUES ($1) RETURNING id)
        INSERT INTO resident_identities (resident_id, phone_hmac, phone_masked, wechat_openid_hmac)
        SELECT id, $2, $3, $4 FROM r
        RETURNING resident_id
        """,
        district_code,
        phone_hmac,
        phone_masked,
        openid_hmac,
    )
    return rid


async def active_resident(conn: Any, resident_id: str) -> Any:
    """(id, district_code, created_at) of a resident not erased, or None."""
    return await conn.fetchrow(
        """
        SELECT r.id, r.district_code, r.created_at, i.phone_masked,
               i.wechat_openid_hmac IS NOT NULL AS wechat_linked
        FROM residents r LEFT JOIN resident_identities i ON i.resident_id = r.id
        WHERE r.id = $1::uuid AND r.deleted_at IS NULL
        """,
        resident_id,
    )


async def set_district(tx: Any, resident_id: str, district_code: str | None) -> None:
    await tx.conn.execute(
        "UPDATE residents SET district_code = $2 WHERE id = $1::uuid AND deleted_at IS NULL",
        resident_id,
        district_code,
    )


async def erase_resident(tx: Any, resident_id: str) -> None:
    """Delete personal data and refresh tokens; keep the resident row (and so the ledger's
    references to it) as a pseudonym with ``deleted_at`` set."""
    await tx.conn.execute(
        """
        WITH i AS (DELETE FROM resident_identities WHERE resident_id = $1::uuid),
             f AS (DELETE FROM refresh_families WHERE resident_id = $1::uuid)
        UPDATE residents SET deleted_at = now(), district_code = NULL
        WHERE id = $1::uuid AND deleted_at IS NULL
        """,
        resident_id,
    )


# --- refresh tokens ------------------------------------------------------------------------


async def create_family(tx: Any, family_id: uuid.UUID, resident_id: uuid.UUID) -> None:
    await tx.conn.execute(
        "INSERT INTO refresh_families (id, resident_id) VALUES ($1, $2)", family_id, resident_id
    )


async def store_refresh(
    tx: Any, token_hash: bytes, family_id: uuid.UUID, expires_at: datetime
) -> None:
    await tx.conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, expires_at) VALUES ($1, $2, $3)",
        token_hash,
        family_id,
        expires_at,
    )


async def refresh_for_update(tx: Any, token_hash: bytes) -> Any:
    return await tx.conn.fetchrow(
        """
        SELECT t.family_id, t.expires_at, t.rotated_at, f.resident_id, f.revoked_at
        FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
        WHERE t.token_hash = $1
        FOR UPDATE OF t, f
        """,
        token_hash,
    )


async def mark_rotated(tx: Any, token_hash: bytes) -> None:
    await tx.conn.execute(
        "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1", token_hash
    )


async def revoke_family(tx: Any, family_id: str | uuid.UUID, reason: str) -> None:
    await tx.conn.execute(
        """
        UPDATE refresh_families SET revoked_at = now(), revoked_reason = $2
        WHERE id = $1::uuid AND revoked_at IS NULL
        """,
        str(family_id),
        reason,
    )


# --- idempotency (the foundation's idempotency_keys table) ---------------------------------


async def idempotency_lookup(tx: Any, scope: str, key: str) -> Any:
    await tx.conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 31))", scope, key
    )
    return await tx.conn.fetchrow(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        scope,
        key,
    )


async def idempotency_store(
    tx: Any, scope: str, key: str, request_hash: bytes, status: int, response: bytes
) -> None:
    await tx.conn.execute(
        """
        INSERT INTO idempotency_keys (scope, key, request_hash, status, response)
        VALUES ($1, $2, $3, $4, $5)
        """,
        scope,
        key,
        request_hash,
        status,
        response,
    )


# --- Redis: one-time codes and rate limits -------------------------------------------------


def _code_key(phone_hmac: bytes) -> str:
    return f"mobile:sms:code:{phone_hmac.hex()}"


# One script, so that concurrent requests cannot overshoot a budget and a refused request
# counts nothing: KEYS = resend slot, then the budgets (phone per client, phone, client);
# ARGV = resend interval (s), window (s), then one limit per budget. Answers {0, 0} when a code
# may be sent (each budget counted once, the resend slot taken), else {n, seconds to wait} with
# n = 1 for the resend slot, 2.. for the budget that is spent.
_ADMIT_SMS = """
local interval = tonumber(ARGV[1])
if interval > 0 then
  local left = redis.call('TTL', KEYS[1])
  if left ~= -2 then return {1, math.max(left, 1)} end
end
for i = 2, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used >= tonumber(ARGV[i + 1]) then
    return {i, math.max(redis.call('TTL', KEYS[i]), 1)}
  end
end
for i = 2, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('EXPIRE', KEYS[i], ARGV[2]) end
end
if interval > 0 then redis.call('SET', KEYS[1], '1', 'EX', interval) end
return {0, 0}
"""

# Gives back what _ADMIT_SMS took when the code could not be sent after all (same KEYS).
_REFUND_SMS = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


def sms_budget_keys(phone_hmac: bytes, client_hash: str) -> list[str]:
    """The resend slot, then the hourly budgets: this phone for this client, this phone, this
    client."""
    phone = phone_hmac.hex()
    return [
        f"mobile:sms:resend:{phone}",
        f"mobile:sms:rl:phone-client:{phone}:{client_hash}",
        f"mobile:sms:rl:phone:{phone}",
        f"mobile:sms:rl:ip:{client_hash}",
    ]


async def admit_sms(
    redis: Any, keys: list[str], resend_interval_s: int, window_s: int, limits: list[int]
) -> tuple[int, int]:
    """(0, 0) when a code may be sent now, the budgets counted; else (which refused, seconds to
    wait): 1 = the resend slot, 2 + i = ``limits[i]`` is spent. Nothing is counted on refusal."""
    assert len(limits) == len(keys) - 1
    out = await redis.eval(_ADMIT_SMS, len(keys), *keys, resend_interval_s, window_s, *limits)
    return int(out[0]), int(out[1])


async def refund_sms(redis: Any, keys: list[str]) -> None:
    await redis.eval(_REFUND_SMS, len(keys), *keys)


async def store_code(redis: Any, phone_hmac: bytes, code_hmac: bytes, ttl_s: int) -> None:
    key = _code_key(phone_hmac)
    pipe = redis.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping={"h": code_hmac, "n": 0})
    pipe.expire(key, ttl_s)
    await pipe.execute()


async def count_attempt(redis: Any, phone_hmac: bytes) -> tuple[bytes | None, int]:
    """Count one verification attempt; the stored code hash (None: no live code) and the count."""
    key = _code_key(phone_hmac)
    pipe = redis.pipeline(transaction=True)
    pipe.hget(key, "h")
    pipe.hincrby(key, "n", 1)
    stored, attempts = await pipe.execute()
    if stored is None:
        await redis.delete(key)  # HINCRBY created a stray hash without a TTL
    return stored, int(attempts)


async def drop_code(redis: Any, phone_hmac: bytes) -> bool:
    """Consume the code; False when another request consumed it first."""
    return bool(await redis.delete(_code_key(phone_hmac)))


# --- Redis: revoked sessions ---------------------------------------------------------------
# Access tokens are stateless JWTs; these markers end them before they expire. A marker only
# needs to outlive the tokens it stops, so each carries a TTL (the longest access-token life).


def _revoked_family_key(family_id: str) -> str:
    return f"mobile:revoked:fam:{family_id}"


def _deleted_key(resident_id: str) -> str:
    return f"mobile:revoked:res:{resident_id}"


async def mark_family_revoked(redis: Any, family_id: str, reason: str, ttl_s: int) -> None:
    await redis.set(_revoked_family_key(family_id), reason, ex=ttl_s)


async def mark_resident_deleted(
    redis: Any, resident_id: str, district_code: str | None, ttl_s: int
) -> None:
    """Refuse the erased resident's tokens from now on, and drop them from their board."""
    pipe = redis.pipeline(transaction=False)
    pipe.set(_deleted_key(resident_id), b"deleted", ex=ttl_s)
    if district_code:
        pipe.zrem(_board_key(district_code), resident_id)
    await pipe.execute()


def _revocation_keys(resident_id: str, family_id: str | None) -> list[str]:
    return [_deleted_key(resident_id), _revoked_family_key(family_id or "-")]


def _revocation_flags(values: list[Any]) -> tuple[bool, bool]:
    return values[0] is not None, values[1] is not None


async def revocations(redis: Any, resident_id: str, family_id: str | None) -> tuple[bool, bool]:
    """(resident deleted, token family revoked): one MGET."""
    return _revocation_flags(await redis.mget(_revocation_keys(resident_id, family_id)))


# --- Redis: district leaderboards ----------------------------------------------------------


def _board_key(district_code: str) -> str:
    return f"mobile:lb:{district_code}"


async def leaderboard_state(
    redis: Any, district_code: str, resident_id: str, score: int
) -> tuple[bool, int | None, int]:
    """Record the caller's fresh score; (board was built, 0-based rank, residents on it)."""
    key = _board_key(district_code)
    pipe = redis.pipeline(transaction=False)
    pipe.exists(key + ":built")
    pipe.zadd(key, {resident_id: score})
    pipe.zrevrank(key, resident_id)
    pipe.zcard(key)
    built, _, rank, size = await pipe.execute()
    return bool(built), rank, int(size)


class SessionAndBoard(NamedTuple):
    deleted: bool
    family_revoked: bool
    built: bool
    rank: int | None  # 0-based
    size: int | None


async def session_and_board(
    redis: Any, resident_id: str, family_id: str | None, district_code: str | None, score: int
) -> SessionAndBoard:
    """One pipelined round trip: the token's revocation markers and, when the resident has a
    district, the board state after recording their fresh score (as ``leaderboard_state``)."""
    pipe = redis.pipeline(transaction=False)
    pipe.mget(_revocation_keys(resident_id, family_id))
    if district_code:
        key = _board_key(district_code)
        pipe.exists(key + ":built")
        pipe.zadd(key, {resident_id: score})
        pipe.zrevrank(key, resident_id)
        pipe.zcard(key)
    out = await pipe.execute()
    deleted, revoked = _revocation_flags(out[0])
    if not district_code:
        return SessionAndBoard(deleted, revoked, False, None, None)
    return SessionAndBoard(deleted, revoked, bool(out[1]), out[3], int(out[4]))


async def leaderboard_replace(
    redis: Any, district_code: str, scores: dict[str, int], fresh_for_s: int
) -> None:
    key = _board_key(district_code)
    pipe = redis.pipeline(transaction=True)
    pipe.delete(key)
    if scores:
        pipe.zadd(key, scores)
    pipe.set(key + ":built", b"1", ex=fresh_for_s)
    await pipe.execute()


async def leaderboard_top(redis: Any, district_code: str, limit: int) -> list[tuple[str, int]]:
    rows = await redis.zrevrange(_board_key(district_code), 0, limit - 1, withscores=True)
    return [(m.decode() if isinstance(m, bytes) else str(m), int(s)) for m, s in rows]


# --- reads of other domains' tables ---------------------------------------------------------
# Reads of the ledger (points/) and of the events (behaviours/) go through those domains'
# services wherever they offer the read: points.service.balances / statement / expiring (export,
# leaderboard), behaviours.service.resident_links / list_operators (data sources). The functions
# below are the exceptions, each read-only, each saying who owns the table and why the read is
# here. Keep their list in step with docs/mobile.md ("Reads of other domains' tables").

# Owner: points/ (ledger_accounts, point_lots) + mobile (residents). The summary is the hottest
# read of the app; points.service offers the same figures as two calls (balances, expiring), each
# with its own account lookup: four round trips with the resident row. This one statement
# returns the same figures: posted CO2E_G; POINT posted and pending_debits as
# points.service.balances computes them; unspent POINT lots expiring by $2 as
# points.service.expiring sums them. tests/mobile/test_reads_activities.py::TestSummaryRead
# holds the two paths equal. No row: no such resident, or erased.
LEDGER_SUMMARY_SQL = """
SELECT r.district_code,
       coalesce(g.posted, 0) AS grams,
       coalesce(p.posted, 0) AS points_posted,
       coalesce(p.pending_debits, 0) AS points_pending,
       coalesce((SELECT sum(l.remaining) FROM point_lots l
                 WHERE l.account_id = p.id AND l.remaining > 0 AND l.expires_at <= $2), 0)::bigint
           AS points_expiring
FROM residents r
LEFT JOIN ledger_accounts g
       ON g.owner_type = 'resident' AND g.owner_id = $1 AND g.asset = 'CO2E_G'
LEFT JOIN ledger_accounts p
       ON p.owner_type = 'resident' AND p.owner_id = $1 AND p.asset = 'POINT'
WHERE r.id = $1::uuid AND r.deleted_at IS NULL
"""


async def ledger_summary(conn: Any, resident_id: str, expiring_until: datetime) -> Any:
    return await conn.fetchrow(LEDGER_SUMMARY_SQL, resident_id, expiring_until)


# Owner: points/ (ledger_accounts). The ledger exposes balances per owner; a district board needs
# every resident's total at once, so this query reads ledger_accounts directly (set-wise, never
# per resident). Run when a board is lost or stale (every BOARD_FRESH_S at most).
LEDGER_DISTRICT_TOTALS_SQL = """
SELECT a.owner_id, a.posted
FROM residents r
JOIN ledger_accounts a
  ON a.owner_type = 'resident' AND a.asset = 'CO2E_G' AND a.owner_id = r.id::text
WHERE r.district_code = $1 AND r.deleted_at IS NULL AND a.posted > 0
"""


async def ledger_district_totals(conn: Any, district_code: str) -> dict[str, int]:
    return {
        r["owner_id"]: int(r["posted"])
        for r in await conn.fetch(LEDGER_DISTRICT_TOTALS_SQL, district_code)
    }


_EVENT_COLUMNS = """
    id::text AS event_id, kind, mode, status, started_at AS occurred_at,
    received_at AS recorded_at, operator_id, distance_m, reduction_g, points,
    CASE WHEN methodology_code IS NULL THEN NULL
         ELSE methodology_code || '@' || methodology_version END AS methodology_version,
    reason_code, reason_message AS reason
"""

# Owner: behaviours/ (behaviour_events). behaviours.service.resident_events pages on started_at
# alone (ties between two events of the same second are skipped), has no kind / status filter
# and does not return received_at; this keyset read does, and checks in the same statement that
# the resident is not erased (no row at all: erased; one row with a null event_id: no events).
# A tie-safe, filtered page in behaviours.service would replace it.
# The order is the history time, HISTORY_AT: the reported start, but never later than the
# receipt. An activity cannot have happened after it was received; a record claiming a time in
# the future (rejected `in_future`, e.g. years ahead) is kept with its claim, but placed at
# its receipt instead of staying at the top of the history forever.
HISTORY_AT = "least(started_at, received_at)"
EVENTS_PAGE_SQL = f"""
WITH me AS (SELECT id FROM residents WHERE id = $1::uuid AND deleted_at IS NULL)
SELECT e.* FROM me LEFT JOIN LATERAL (
    SELECT {_EVENT_COLUMNS}, {HISTORY_AT} AS history_at
    FROM behaviour_events
    WHERE resident_id = me.id
      AND ($2::text IS NULL OR kind = $2)
      AND ($3::text IS NULL OR status = $3)
      AND ($4::timestamptz IS NULL OR ({HISTORY_AT}, id) < ($4, $5::uuid))
    ORDER BY {HISTORY_AT} DESC, id DESC
    LIMIT $6
) e ON true
"""


async def events_page(
    conn: Any,
    resident_id: str,
    *,
    kind: str | None,
    status: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Any] | None:
    """The resident's events, newest first, keyset-paginated on (history_at, id) (each row has
    its ``history_at``); None when the resident is erased."""
    rows = await conn.fetch(
        EVENTS_PAGE_SQL,
        resident_id,
        kind,
        status,
        before[0] if before else None,
        before[1] if before else None,
        limit,
    )
    if not rows:
        return None
    return [r for r in rows if r["event_id"] is not None]


# Owner: behaviours/ (behaviour_events). behaviours.service has no read of one event by id for
# its resident; this one is scoped to the caller (another resident's id finds nothing).
async def event_by_id(conn: Any, resident_id: str, event_id: str) -> Any:
    return await conn.fetchrow(
        f"SELECT {_EVENT_COLUMNS} FROM behaviour_events "
        "WHERE id = $1::uuid AND resident_id = $2::uuid",
        event_id,
        resident_id,
    )


# Owner: behaviours/ (behaviour_events). behaviours.service has no aggregate per month and mode;
# this one GROUP BY replaces paging through every event of the period.
async def events_monthly(conn: Any, resident_id: str, since: datetime) -> list[Any]:
    """Accepted events per programme month (China Standard Time) and mode."""
    return list(
        await conn.fetch(
            """
            SELECT to_char(started_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month, mode,
                   count(*) AS trips, coalesce(sum(distance_m), 0) AS distance_m,
                   sum(reduction_g) AS reduction_g, sum(points) AS points
            FROM behaviour_events
            WHERE resident_id = $1::uuid AND status = 'accepted' AND started_at >= $2
            GROUP BY 1, 2 ORDER BY 1 DESC, 2
            """,
            resident_id,
            since,
        )
    )
