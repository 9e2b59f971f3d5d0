"""The ledger's refusals, each with a stable code (see kit.errors for the wire shape)."""

from __future__ import annotations

from kit.errors import Conflict, InvalidInput, NotFound, Unprocessable


class InsufficientFunds(Unprocessable):
    code = "insufficient_funds"
    title = "Not enough available balance"


class TransferNotFound(NotFound):
    code = "transfer_not_found"
    title = "No such transfer"


class HoldNotFound(NotFound):
    code = "hold_not_found"
    title = "No such hold"


class HoldAlreadySettled(Conflict):
    code = "hold_already_settled"
    title = "The hold was already posted or voided"


class HoldExpired(Conflict):
    code = "hold_expired"
    title = "The hold timed out"


class PostExceedsHold(Unprocessable):
    code = "post_exceeds_hold"
    title = "Posting more than was held"


class AlreadyReversed(Conflict):
    code = "already_reversed"
    title = "The transfer was already reversed"


class NotReversible(Unprocessable):
    code = "not_reversible"
    title = "This transfer cannot be reversed"


class PointsAlreadySpent(Unprocessable):
    code = "points_already_spent"
    title = "The points to claw back were already spent"


class InvalidTransfer(InvalidInput):
    code = "transfer_invalid"
    title = "Invalid transfer"


class BlockNotSealed(NotFound):
    code = "block_not_sealed"
    title = "The transfer is not sealed into the journal yet"
