"""Merchants, catalogue items and funded residents for the rewards tests, made through the
packages' services (never raw SQL on their tables)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from kit.db import transaction
from points import service as ledger
from points.schemas import Issuance, PointsPolicy
from rewards import donations, projects, service
from rewards.donation_schemas import Donation, Project, ProjectInput
from rewards.schemas import Item, ItemSpec, MerchantRegistration, RegisteredMerchant
from rewards.settings import RewardsConfig
from tests.residents.factories import resident as resident  # (re-exported for the tests)

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
DISTRICT = "440305"


def config(settings: Any) -> RewardsConfig:
    return service.config_of(settings)


async def merchant(
    pool: Any,
    cfg: RewardsConfig,
    merchant_id: str | None = None,
    *,
    webhook_url: str | None = None,
    key: tuple[str, str] | None = None,
) -> RegisteredMerchant:
    """A registered merchant (a signing key when ``key`` = (key id, secret))."""
    mid = merchant_id or f"shop-{uuid.uuid4().hex[:8]}"
    async with transaction(pool) as tx:
        made = await service.register_merchant(
            tx,
            cfg,
            MerchantRegistration(
                id=mid,
                name=f"Shop {mid}",
                settlement_contact="finance@example.org",
                webhook_url=webhook_url,
            ),
        )
        if key is not None:
            await service.issue_key(tx, cfg, mid, key[0], key[1])
    return made


def spec(merchant_id: str, **changes: Any) -> ItemSpec:
    base = ItemSpec(
        merchant_id=merchant_id,
        kind="generated_code",
        title="Coffee voucher",
        cost_points=100,
        total_stock=50,
        usage_instructions="Show the code at the counter.",
        image_urls=["https://img.example.org/coffee.png"],
        active_from=NOW - timedelta(days=1),
        active_until=NOW + timedelta(days=60),
        visible_from=NOW - timedelta(days=2),
        visible_until=NOW + timedelta(days=90),
        validity_s=7 * 86400,
    )
    return msgspec.structs.replace(base, **changes)


async def item(pool: Any, merchant_id: str, **changes: Any) -> Item:
    async with transaction(pool) as tx:
        return await service.add_item(tx, spec(merchant_id, **changes))


async def coupon_item(
    pool: Any, cfg: RewardsConfig, merchant_id: str, codes: list[str], **changes: Any
) -> Item:
    made = await item(pool, merchant_id, kind="coupon_code", total_stock=0, **changes)
    async with transaction(pool) as tx:
        await service.import_codes(tx, cfg, made.id, ("code\n" + "\n".join(codes)).encode())
    return made


async def fund(pool: Any, cfg: RewardsConfig, rid: str, points: int, *, at: datetime = NOW) -> None:
    """Credit ``points`` to the resident (an issuance of verified grams)."""
    async with transaction(pool) as tx:
        await ledger.issue_reductions(
            tx,
            [
                Issuance(
                    resident_id=rid,
                    reduction_g=points * cfg.points.grams_per_point,
                    source_ref=f"evt-{uuid.uuid4()}",
                    region_code=DISTRICT,
                    occurred_at=at,
                )
            ],
            cfg.points,
            now=at,
        )


async def funded(
    pool: Any, cfg: RewardsConfig, points: int, district: str | None = DISTRICT
) -> str:
    rid = await resident(pool, district)
    await fund(pool, cfg, rid, points)
    return rid


async def points_of(pool: Any, owner_type: str, owner_id: str) -> tuple[int, int, int]:
    """(posted, pending, available) POINT balance."""
    b = (await ledger.balances(pool, owner_type, owner_id))[1]
    return b.posted, b.pending, b.available


# --- donation (projects, donations, retirements) ---------------------------------------------

POLICY = PointsPolicy(grams_per_point=10, expiry_years=2, hold_timeout_s=900)
REGION = "440300"


async def project(
    pool: Any,
    *,
    title: str = "Mangrove planting, Futian",
    target_asset: Any = "POINT",
    target_amount: int = 10_000,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Project:
    """A project open from yesterday for 30 days (unless told otherwise)."""
    now = datetime.now(UTC)
    async with transaction(pool) as tx:
        return await projects.register(
            tx,
            ProjectInput(
                title=title,
                beneficiary="Shenzhen Mangrove Foundation",
                target_asset=target_asset,
                target_amount=target_amount,
                starts_at=starts_at or now - timedelta(days=1),
                ends_at=ends_at or now + timedelta(days=30),
                description="Plant and keep mangroves along the bay.",
            ),
        )


async def resident_with_points(pool: Any, grams: int = 10_000) -> str:
    """A resident credited ``grams`` of verified reduction now (``grams // 10`` points)."""
    rid = await resident(pool)
    async with transaction(pool) as tx:
        await ledger.issue_reductions(
            tx,
            [
                Issuance(
                    resident_id=rid,
                    reduction_g=grams,
                    source_ref=f"evt-{uuid.uuid4()}",
                    region_code=REGION,
                    occurred_at=datetime.now(UTC) - timedelta(hours=1),
                )
            ],
            POLICY,
        )
    return rid


async def donate(
    pool: Any, rid: str, project_id: str, amount: int, asset: Any = "POINT"
) -> Donation:
    async with transaction(pool) as tx:
        return await donations.donate(
            tx,
            POLICY,
            resident_id=rid,
            project_id=project_id,
            asset=asset,
            amount=amount,
            region_code=REGION,
        )


def live(days: int = 30) -> dict[str, Any]:
    """Windows around the real clock (for tests through the app, which reads it)."""
    now = datetime.now(UTC)
    return {
        "active_from": now - timedelta(days=1),
        "active_until": now + timedelta(days=days),
        "visible_from": now - timedelta(days=1),
        "visible_until": now + timedelta(days=days),
    }
