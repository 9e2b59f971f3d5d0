"""All SQL of the mobile API, and its Redis keys (codes, rate limits, leaderboards)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

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


async def hit_windows(redis: Any, keys: list[tuple[str, int]]) -> list[tuple[int, int]]:
    """Count one hit in each fixed window ``(key, window_s)``; (count, ttl left) per window."""
    pipe = redis.pipeline(transaction=False)
    for key, window in keys:
        pipe.set(key, 0, ex=window, nx=True)  # opens the window (Redis 6: no EXPIRE NX)
        pipe.incr(key)
        pipe.ttl(key)
    out = await pipe.execute()
    return [(int(out[i * 3 + 1]), int(out[i * 3 + 2])) for i in range(len(keys))]


async def claim_resend_slot(redis: Any, phone_hmac: bytes, interval_s: int) -> int:
    """0 when a code may be sent now (and the slot is taken), else seconds to wait."""
    if interval_s <= 0:
        return 0
    key = f"mobile:sms:resend:{phone_hmac.hex()}"
    if await redis.set(key, b"1", nx=True, ex=interval_s):
        return 0
    return max(1, int(await redis.ttl(key)))


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


# --- Redis: district leaderboards ----------------------------------------------------------


def _board_key(district_code: str) -> str:
    return f"mobile:lb:{district_code}"


async def leaderboard_remove(redis: Any, district_code: str, resident_id: str) -> None:
    await redis.zrem(_board_key(district_code), resident_id)
