"""The refusals of pooled reductions and offsets, each with a stable code (messages in
enterprises/messages)."""

from __future__ import annotations

from kit.errors import Unprocessable

__all__ = ["PoolEmpty"]


class PoolEmpty(Unprocessable):
    code = "offset_pool_empty"
    title = "Not enough unpooled verified grams"
