"""The refusals of targets and emission rights (enterprises/allowances.py), each with a stable
code (messages in enterprises/messages). The legality checks of an offer and of a purchase
each have their own code, so a console can say which rule refused the transfer."""

from __future__ import annotations

from kit.errors import Conflict, NotFound, Unprocessable

__all__ = [
    "AllocationExceedsTarget",
    "EnterpriseOutsideRegion",
    "NotPending",
    "NothingToAllocate",
    "OfferNotFound",
    "OfferNotOpen",
    "OtherRegionThisYear",
    "OwnOffer",
    "PeriodClosed",
    "PeriodNotFound",
    "RegionMismatch",
    "SurplusInsufficient",
    "Surrendered",
    "TargetBelowAllocated",
]


class PeriodNotFound(NotFound):
    code = "allowance_period_not_found"
    title = "No control target for that region and year"


class PeriodClosed(Conflict):
    code = "allowance_period_closed"
    title = "The allowance period is closed"


class TargetBelowAllocated(Unprocessable):
    code = "allowance_target_below_allocated"
    title = "The target is below what is already allocated"


class AllocationExceedsTarget(Unprocessable):
    code = "allowance_exceeds_target"
    title = "The allocation exceeds what is left of the target"


class NothingToAllocate(Unprocessable):
    code = "allowance_nothing_to_allocate"
    title = "No enterprise of the region has the data the method needs"


class EnterpriseOutsideRegion(Unprocessable):
    code = "allowance_enterprise_outside_region"
    title = "The enterprise is not registered in the region"


class OtherRegionThisYear(Conflict):
    code = "allowance_other_region"
    title = "The enterprise holds another region's allowance of that year"


class SurplusInsufficient(Unprocessable):
    code = "allowance_surplus_insufficient"
    title = "The seller's surplus after its own emissions is too small"


class Surrendered(Conflict):
    code = "allowance_surrendered"
    title = "The allowance of that year was surrendered"


class OfferNotFound(NotFound):
    code = "allowance_offer_not_found"
    title = "No such allowance offer"


class OfferNotOpen(Conflict):
    code = "allowance_offer_not_open"
    title = "The offer was already bought or withdrawn"


class OwnOffer(Unprocessable):
    code = "allowance_own_offer"
    title = "An enterprise cannot buy its own offer"


class RegionMismatch(Unprocessable):
    code = "allowance_region_mismatch"
    title = "The buyer is not in the offer's region"


class NotPending(Conflict):
    code = "allowance_approval_not_pending"
    title = "The transfer is not awaiting approval"
