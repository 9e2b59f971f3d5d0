"""All SQL of the residents' tables (residents, resident_identities, refresh_families,
refresh_tokens) and the residents' Redis keys (sign-in codes and their rate limits, revoked
sessions, cached home districts, district leaderboards). Other packages reach these tables
through ``residents.service``, never with SQL of their own."""

from __future__ import annotations

import uuid
import weakref
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


async def active_districts(conn: Any, resident_ids: Sequence[str]) -> dict[str, str | None]:
    """{id: district_code} of the residents not erased among ``resident_ids``, set-wise."""
    rows = await conn.fetch(
        "SELECT id::text AS id, district_code FROM residents "
        "WHERE id = ANY ($1::uuid[]) AND deleted_at IS NULL",
        list(resident_ids),
    )
    return {r["id"]: r["district_code"] for r in rows}


async def active_in_district(conn: Any, district_code: str) -> list[str]:
    """Ids of the district's residents not erased (the district board's members)."""
    rows = await conn.fetch(
        "SELECT id::text FROM residents WHERE district_code = $1 AND deleted_at IS NULL",
        district_code,
    )
    return [r[0] for r in rows]


async def set_district(tx: Any, resident_id: str, district_code: str | None) -> int | None:
    """Set the home district; a version of the change (microseconds of the database clock,
    read once the row is locked, so that of a later change of the same row is larger), or None
    when there is no such resident (erased meanwhile). The version orders the write-throughs
    of the cached home (``cache_home``)."""
    version: int | None = await tx.conn.fetchval(
        """
        UPDATE residents SET district_code = $2 WHERE id = $1::uuid AND deleted_at IS NULL
        RETURNING (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
        """,
        resident_id,
        district_code,
    )
    return version


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
    """Refuse the erased resident's tokens from now on, forget their cached home, and drop
    them from their board."""
    pipe = redis.pipeline(transaction=False)
    pipe.set(_deleted_key(resident_id), b"deleted", ex=ttl_s)
    pipe.delete(_home_key(resident_id))
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


# --- Redis: the cached home district and the summary's one round trip ---------------------
# The summary needs the resident's home district only to find their board. It is cached here,
# write-through: filled by the summary on a miss (after PostgreSQL said the resident is active),
# overwritten after each committed change of district (``cache_home``), deleted with the
# erasure (``mark_resident_deleted``). A hash {d: district code or "", v: version of the change
# that wrote it, 0 for a fill}. While the deleted marker lives, neither a fill nor a
# write-through may (re)create it, so a summary that finds the home also finds any erasure.

HOME_TTL_S = 600


def _home_key(resident_id: str) -> str:
    return f"mobile:home:{resident_id}"


# KEYS = deleted marker, family marker, home; ARGV = resident id, score, board key prefix, then
# "" (use the cached home) or "fill", district ("" for none), TTL (s) (the caller read the
# district from PostgreSQL: record it unless a newer one is cached). Answers {deleted, family
# revoked, home known (0: not cached), home, board built, 0-based rank (-1: none), board size};
# nothing is recorded on a board for a refused token. The board's keys are known only once the
# home is read, so the script names them itself (ARGV[3] .. home): one Redis, not a cluster.
_STANDING = """
local deleted = redis.call('EXISTS', KEYS[1])
local revoked = redis.call('EXISTS', KEYS[2])
if deleted == 1 or revoked == 1 then return {deleted, revoked, 0, '', 0, -1, 0} end
local home
if ARGV[4] == 'fill' then
  home = ARGV[5]
  if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('HSET', KEYS[3], 'd', home, 'v', 0)
    redis.call('EXPIRE', KEYS[3], ARGV[6])
  end
else
  home = redis.call('HGET', KEYS[3], 'd')
  if not home then return {0, 0, 0, '', 0, -1, 0} end
end
if home == '' then return {0, 0, 1, '', 0, -1, 0} end
local board = ARGV[3] .. home
local built = redis.call('EXISTS', board .. ':built')
redis.call('ZADD', board, ARGV[2], ARGV[1])
local rank = redis.call('ZREVRANK', board, ARGV[1])
return {0, 0, 1, home, built, rank, redis.call('ZCARD', board)}
"""

# KEYS = home, deleted marker; ARGV = district ("" for none), version, TTL (s). Writes unless
# the resident was erased or a later change is cached already (two changes' after-commit
# writes may arrive in either order).
_CACHE_HOME = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local cached = tonumber(redis.call('HGET', KEYS[1], 'v') or '-1')
if tonumber(ARGV[2]) <= cached then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""

_scripts: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _script(redis: Any, text: str) -> Any:
    """``text`` registered with this client once (EVALSHA; loaded again if Redis forgot it)."""
    mine = _scripts.setdefault(redis, {})
    found = mine.get(text)
    if found is None:
        found = mine[text] = redis.register_script(text)
    return found


async def cache_home(redis: Any, resident_id: str, district_code: str | None, version: int) -> None:
    """Write a committed change of home district through to the cache (see ``_CACHE_HOME``)."""
    await _script(redis, _CACHE_HOME)(
        keys=[_home_key(resident_id), _deleted_key(resident_id)],
        args=[district_code or "", version, HOME_TTL_S],
    )


async def cached_home(redis: Any, resident_id: str) -> tuple[bool, str | None]:
    """(cached, district or None): what the summary would find (for tests and diagnosis)."""
    home = await redis.hget(_home_key(resident_id), "d")
    if home is None:
        return False, None
    return True, home.decode() or None


class Standing(NamedTuple):
    deleted: bool
    family_revoked: bool
    home_known: bool  # False: the home is not cached; nothing else was done
    district_code: str | None
    built: bool
    rank: int | None  # 0-based
    size: int | None


async def standing(
    redis: Any,
    resident_id: str,
    family_id: str | None,
    score: int,
    *,
    fill: tuple[str | None] | None = None,
) -> Standing:
    """One round trip (a script): the token's revocation markers, the cached home district
    (``fill=(district,)``: the district just read from PostgreSQL, cached unless newer is) and,
    when the resident has a district, the board state after recording their fresh score (as
    ``leaderboard_state``)."""
    args: list[Any] = [resident_id, score, _board_key("")]
    if fill is not None:
        args += ["fill", fill[0] or "", HOME_TTL_S]
    out = await _script(redis, _STANDING)(
        keys=[*_revocation_keys(resident_id, family_id), _home_key(resident_id)], args=args
    )
    deleted, revoked, known, home, built, rank, size = out
    district = (home.decode() if isinstance(home, bytes) else str(home)) or None
    if not district:
        return Standing(bool(deleted), bool(revoked), bool(known), None, False, None, None)
    return Standing(False, False, True, district, bool(built), int(rank), int(size))


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
