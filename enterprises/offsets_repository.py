"""SQL of pooled reductions (enterprises.pooling): serial blocks and the grams they may pool."""

from __future__ import annotations

from typing import Any


async def lock_pooling(conn: Any) -> None:
    """Serialise issuances (in the caller's transaction): the serial counter and the check that
    a vintage's pooled grams stay within its unpooled verified ones are read under this lock."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('tanpuhui:offset_pooling'))")


async def issuance_by_key(conn: Any, request_key: str) -> Any:
    return await conn.fetchrow("SELECT * FROM offset_issuances WHERE request_key = $1", request_key)


async def available(conn: Any, vintage: int, zone: str, methodology: str) -> tuple[int, int]:
    """(free, verified): verified grams of ``vintage`` (``methodology``'s, residents' accepted
    events) not pooled yet, and never more than all of the vintage's verified grams less those
    residents retired (donations of CO2E_G) and those pooled; and all of the vintage's verified
    grams (call under :func:`lock_pooling`)."""
    from behaviours.repository import verified_grams_of_year
    from rewards.donations_repository import retired_grams_of_vintage

    of_m, all_m = await verified_grams_of_year(conn, vintage, zone, methodology)
    retired = await retired_grams_of_vintage(conn, vintage)
    p = await conn.fetchrow(
        """
        SELECT coalesce(sum(amount) FILTER (WHERE methodology = $2), 0)::bigint AS of_m,
               coalesce(sum(amount), 0)::bigint AS all_m
        FROM offset_issuances WHERE vintage = $1
        """,
        vintage,
        methodology,
    )
    return max(0, min(of_m - int(p["of_m"]), all_m - retired - int(p["all_m"]))), all_m


async def retirement_room(conn: Any, vintage: int, zone: str) -> int | None:
    """Grams residents may still retire of a pooled ``vintage``: its verified grams less those
    retired and those pooled, None when nothing of it is pooled (no limit). Reads the verified
    grams recorded at the latest issuance (grams only grow), and the current ones only when that
    figure does not leave room (call under :func:`lock_pooling`)."""
    from behaviours.repository import verified_grams_of_year
    from rewards.donations_repository import retired_grams_of_vintage

    p = await conn.fetchrow(
        """
        SELECT coalesce(sum(amount), 0)::bigint AS pooled, max(vintage_verified_g) AS verified
        FROM offset_issuances WHERE vintage = $1
        """,
        vintage,
    )
    pooled = int(p["pooled"])
    if pooled == 0:
        return None
    retired = await retired_grams_of_vintage(conn, vintage)
    room = int(p["verified"] or 0) - retired - pooled
    if room > 0:
        return room
    _, verified = await verified_grams_of_year(conn, vintage, zone, "")
    return max(0, verified - retired - pooled)


async def insert_issuance(
    conn: Any,
    *,
    request_key: str,
    programme: str,
    methodology: str,
    vintage: int,
    amount: int,
    vintage_verified_g: int,
) -> Any:
    return await conn.fetchrow(
        """
        INSERT INTO offset_issuances
            (request_key, programme, methodology, vintage, amount, serial_start, serial_end,
             vintage_verified_g)
        SELECT $1, $2, $3, $4, $5, n.next, n.next + $5 - 1, $6
        FROM (SELECT coalesce(max(serial_end), 0) + 1 AS next FROM offset_issuances) n
        RETURNING *
        """,
        request_key,
        programme,
        methodology,
        vintage,
        amount,
        vintage_verified_g,
    )


async def set_transfer(conn: Any, issuance_id: int, transfer_id: int) -> None:
    await conn.execute(
        "UPDATE offset_issuances SET transfer_id = $2 WHERE id = $1", issuance_id, transfer_id
    )


async def issuances(conn: Any) -> list[Any]:
    return list(await conn.fetch("SELECT * FROM offset_issuances ORDER BY serial_start"))
