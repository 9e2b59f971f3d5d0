"""All SQL of the residents' tables (residents, resident_identities, refresh_families,
refresh_tokens) and the residents' Redis keys (sign-in codes and their rate limits, revoked
sessions, district leaderboards). Other packages reach these tables through
``residents.service``, never with SQL of their own."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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


async def create_residents(
    conn: Any, resident_ids: Sequence[str], district_codes: Sequence[str | None]
) -> None:
    """Residents without a sign-in identity yet (operators' records name them through links;
    tests, the benchmarks and the operator example create them so). Set-wise."""
    await conn.execute(
        "INSERT INTO residents (id, district_code) SELECT * FROM unnest($1::uuid[], $2::text[])",
        list(resident_ids),
        list(district_codes),
    )


async def lock_homes(conn: Any, resident_ids: Sequence[str]) -> list[Any]:
    """(id, district_code, deleted_at) of the residents, each row locked ``FOR NO KEY UPDATE``
    in id order: the per-resident lock of the ingestion pipeline (concurrent batches touching
    one person run one after the other, without deadlocks; no row version is written, and
    foreign-key checks, which take KEY SHARE, are not blocked). One statement for the batch."""
    if not resident_ids:
        return []
    return list(
        await conn.fetch(
            """
            SELECT id::text AS id, district_code, deleted_at FROM residents
            WHERE id = ANY($1::uuid[])
            ORDER BY id
            FOR NO KEY UPDATE
            """,
            list(resident_ids),
        )
    )


async def district_of(conn: Any, resident_id: str) -> Any:
    """The row (district_code) of a resident not erased, or None: the leanest existence check."""
    return await conn.fetchrow(
        "SELECT district_code FROM residents WHERE id = $1::uuid AND deleted_at IS NULL",
        resident_id,
    )


async def active_in_district(conn: Any, district_code: str) -> list[str]:
    """Ids of the district's residents not erased (the district board's members)."""
    rows = await conn.fetch(
        "SELECT id::text FROM residents WHERE district_code = $1 AND deleted_at IS NULL",
        district_code,
    )
    return [r[0] for r in rows]


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
