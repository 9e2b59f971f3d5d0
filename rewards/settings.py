"""The rewards' settings section (``TANPUHUI_REWARDS_*``): the merchants' webhooks and the
redemption batches."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from msgspec import Meta, Struct

from kit.cipher import SecretBox
from kit.settings import PrivacySettings, doc
from points.schemas import PointsPolicy
from points.settings import PointsSettings


class RewardsSettings(Struct, frozen=True, kw_only=True):
    webhook_timeout_s: Annotated[
        float,
        Meta(gt=0, le=60),
        doc("Seconds before a webhook delivery to a merchant gives up (then it is retried)."),
    ] = 5.0
    webhook_max_attempts: Annotated[
        int,
        Meta(ge=1, le=50),
        doc("Deliveries tried per webhook event before it is marked failed."),
    ] = 12
    webhook_backoff_s: Annotated[
        int,
        Meta(ge=1, le=3600),
        doc(
            "Seconds before the first retry of a failed webhook; doubled after each failure, "
            "capped at 6 hours."
        ),
    ] = 30
    redemption_batch_max: Annotated[
        int,
        Meta(ge=1, le=1000),
        doc(
            "Most redemptions one API process runs in one transaction (docs/rewards.md, "
            '"Redemption at scale").'
        ),
    ] = 64
    redemption_batch_concurrency: Annotated[
        int,
        Meta(ge=1, le=16),
        doc(
            "Redemption batches one API process runs at once. One measured fastest on 2 cores "
            "(bigger batches: fewer statements per redemption); each process has its own."
        ),
    ] = 1


@dataclass(frozen=True)
class RewardsConfig:
    """What the rewards' rules read, built once at start-up from the composed settings: this
    section, the ledger's policy, the kernel's privacy section (the secrets key that seals
    codes and signing keys, the key of the codes' hashes) and the programme's region and time
    zone (limit periods and statement dates follow it)."""

    rewards: RewardsSettings
    points: PointsPolicy
    privacy: PrivacySettings
    region_code: str
    timezone: str

    @cached_property
    def box(self) -> SecretBox:
        return SecretBox.from_settings(self.privacy)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def config_of(settings: Any) -> RewardsConfig:
    """The configuration of the composed settings (``server.settings.Settings``: its
    ``rewards``, ``points`` and ``privacy`` sections, region and time zone), built once per
    settings value: the root and the workers ask for it per request or task run."""
    return _config_of(
        settings.rewards, settings.points, settings.privacy, settings.region_code, settings.timezone
    )


@lru_cache(maxsize=8)
def _config_of(
    rewards: RewardsSettings,
    points: PointsSettings,
    privacy: PrivacySettings,
    region_code: str,
    timezone: str,
) -> RewardsConfig:
    return RewardsConfig(
        rewards=rewards,
        points=PointsPolicy.from_settings(points, timezone=timezone),
        privacy=privacy,
        region_code=region_code,
        timezone=timezone,
    )
