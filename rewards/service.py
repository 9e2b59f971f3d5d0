"""The rewards' facade: every write and read the surfaces, the CLI and the tasks call, from one
import (``from rewards import service``). The rules live one module per concern:

- ``rewards.merchants``: merchants, their signing keys and webhook secret;
- ``rewards.catalogue``: items, browsing, coupon code pools;
- ``rewards.redemptions``: redeem, confirm, cancel, expire, refund, the residents' rewards;
- ``rewards.settlement``: the merchants' settlement statements;
- ``rewards.webhooks``: the outbox and its deliveries.

No SQL in any of them (``rewards.repository``) and no HTTP. Writes take a :class:`kit.db.Tx`
and never commit; reads take an asyncpg connection or pool.
"""

from __future__ import annotations

from rewards.catalogue import add_item, browse, get_item, import_codes, read_codes
from rewards.merchants import get_merchant, issue_key, register_merchant, revoke_key, secret_lookup
from rewards.redemptions import (
    cancel,
    confirm,
    expire,
    lookup,
    my_reward,
    my_rewards,
    redeem,
    refund,
    set_delivery,
)
from rewards.settings import RewardsConfig, config_of
from rewards.settlement import statement, statement_csv
from rewards.webhooks import deliver, due

__all__ = [
    "RewardsConfig",
    "add_item",
    "browse",
    "cancel",
    "config_of",
    "confirm",
    "deliver",
    "due",
    "expire",
    "get_item",
    "get_merchant",
    "import_codes",
    "issue_key",
    "lookup",
    "my_reward",
    "my_rewards",
    "read_codes",
    "redeem",
    "refund",
    "register_merchant",
    "revoke_key",
    "secret_lookup",
    "set_delivery",
    "statement",
    "statement_csv",
]
