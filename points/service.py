"""The ledger's public facade: every write and read callers use, from one import.

``from points import service`` and call ``service.issue_reductions``, ``service.transfer``...
The rules live in one module per concern, all writing through one engine (``points.engine``:
lock, insert, compare replays, one balance update, consume lots):

- ``points.issuance``: verified reductions credited as grams and points;
- ``points.transfers``: plain posted transfers;
- ``points.holds``: place, post, void, time out;
- ``points.expiry``: expired lots;
- ``points.reversals``: compensating transfers;
- ``points.queries``: balances, statements, expiring points, one transfer;
- ``points.accounts``: opening many accounts ahead of their first transfer, locking a
  transaction's resident accounts up front.

No SQL in any of them (``points.repository``) and no HTTP. Write functions take a
:class:`kit.db.Tx` and never commit; reads take an asyncpg connection or pool.
"""

from __future__ import annotations

from points.accounts import lock_resident_accounts, open_accounts
from points.engine import EXPIRY, ISSUANCE, accept_any_lock_order
from points.expiry import expire_lots
from points.holds import (
    lock_available,
    place_hold,
    place_holds,
    post_hold,
    void_hold,
    void_timed_out_holds,
)
from points.issuance import issue_reductions
from points.queries import balance_as_of, balances, expiring, get_transfer, statement
from points.reversals import reverse, reverse_issuances
from points.transfers import transfer

__all__ = [
    "EXPIRY",
    "ISSUANCE",
    "accept_any_lock_order",
    "balance_as_of",
    "balances",
    "expire_lots",
    "expiring",
    "get_transfer",
    "issue_reductions",
    "lock_available",
    "lock_resident_accounts",
    "open_accounts",
    "place_hold",
    "place_holds",
    "post_hold",
    "reverse",
    "reverse_issuances",
    "statement",
    "transfer",
    "void_hold",
    "void_timed_out_holds",
]
