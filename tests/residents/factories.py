"""Residents for tests, made through the residents package (never raw SQL)."""

from __future__ import annotations

import dataclasses
from typing import Any

from kit.db import transaction
from kit.settings import AuthSettings, PrivacySettings
from residents import service
from residents.settings import ResidentsConfig, SmsSettings, WechatSettings


async def _known(_conn: Any, code: str) -> bool:
    return code in {"440305", "440306"}


def config(**kw: Any) -> ResidentsConfig:
    """The residents' configuration of these tests: districts 440305 and 440306 are known."""
    base = ResidentsConfig(
        region_code="440300",
        sms=SmsSettings(),
        wechat=WechatSettings(),
        privacy=PrivacySettings(phone_hash_key="test-phone-hash-key-0123456789"),
        auth=AuthSettings(),
        known_district=_known,
    )
    return dataclasses.replace(base, **kw)


async def resident(pool: Any, district: str | None = "440305") -> str:
    """A resident without a sign-in identity (as operators' records name them); their id."""
    async with transaction(pool) as tx:
        [rid] = await service.create_residents(tx.conn, [district])
    return rid


async def residents(pool: Any, n: int, district: str | None = "440305") -> list[str]:
    """``n`` residents in one statement."""
    async with transaction(pool) as tx:
        return await service.create_residents(tx.conn, [district] * n)


async def resident_with_id(conn: Any, rid: str, district: str | None = "440305") -> str:
    """The resident ``rid`` (a test that chose the id), on an open connection."""
    [made] = await service.create_residents(conn, [district], ids=[rid])
    return made
