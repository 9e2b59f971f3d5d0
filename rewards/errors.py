"""Refusals of the rewards package, each with a stable code (problem+json through kit.errors)."""

from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound, Unprocessable


class OutOfStock(Conflict):
    code = "out_of_stock"
    title = "No stock left"


class InsufficientPoints(Unprocessable):
    code = "insufficient_points"
    title = "Not enough points"


class LimitReached(Conflict):
    code = "limit_reached"
    title = "Redemption limit reached"


class NotAvailable(Conflict):
    """The item's active window is closed, or the resident's district is not eligible."""

    code = "not_available"
    title = "Not available"


class RewardAlreadyUsed(Conflict):
    code = "reward_already_used"
    title = "The reward was already used"


class RewardNotFound(NotFound):
    code = "reward_not_found"
    title = "No such reward"


class RewardExpired(Conflict):
    code = "reward_expired"
    title = "The reward expired"


class RewardCancelled(Conflict):
    code = "reward_cancelled"
    title = "The reward was cancelled"


class RewardNotUsed(Conflict):
    """A refund of a reward the merchant never confirmed (cancel it instead)."""

    code = "reward_not_used"
    title = "The reward was not used"


class ItemNotFound(NotFound):
    code = "item_not_found"
    title = "No such catalogue item"


class MerchantNotFound(NotFound):
    code = "merchant_not_found"
    title = "No such merchant"


class MerchantExists(Conflict):
    code = "merchant_exists"
    title = "A merchant with this id exists"


class CodesRejected(InvalidInput):
    """A coupon code file refused whole: duplicates, blank or oversized codes, or an item that
    takes no imported codes."""

    code = "codes_invalid"
    title = "The coupon codes cannot be imported"


class StatementPeriodInvalid(InvalidInput):
    code = "period_invalid"
    title = "Invalid statement period"


class MerchantKeyExists(Conflict):
    code = "merchant_key_exists"
    title = "The merchant already has a key with this id"
