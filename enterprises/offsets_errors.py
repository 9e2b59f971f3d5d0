"""The refusals of pooled reductions and offsets, each with a stable code (messages in
enterprises/messages)."""

from __future__ import annotations

from kit.errors import NotFound, Unprocessable

__all__ = [
    "OffsetCapExceeded",
    "OffsetCertificateNotFound",
    "OffsetHoldingsShort",
    "OffsetSupplyShort",
    "PoolEmpty",
]


class PoolEmpty(Unprocessable):
    code = "offset_pool_empty"
    title = "Not enough unpooled verified grams"


class OffsetSupplyShort(Unprocessable):
    code = "offset_supply_short"
    title = "Not enough pooled reductions for sale"


class OffsetHoldingsShort(Unprocessable):
    code = "offset_holdings_short"
    title = "The enterprise holds fewer offsets than that"


class OffsetCapExceeded(Unprocessable):
    code = "offset_cap_exceeded"
    title = "Over the offset cap of the period"


class OffsetCertificateNotFound(NotFound):
    code = "offset_certificate_not_found"
    title = "No such offset certificate"
