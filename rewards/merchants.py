"""Merchants: registered by a programme administrator, each with a ledger account (opened at
registration), signing keys for the merchant API (the operators' scheme, kit.auth; secrets
sealed at rest with kit.cipher), a settlement contact and an optional webhook URL."""

from __future__ import annotations

import secrets
from typing import Any

from kit.auth import KeyLookup
from kit.db import Tx
from points import service as ledger
from points.schemas import AccountKey
from rewards import repository as repo
from rewards.errors import MerchantNotFound
from rewards.schemas import Merchant, MerchantRegistration, RegisteredMerchant
from rewards.settings import RewardsConfig


def key_context(merchant_id: str, key_id: str) -> str:
    return f"merchant_keys:{merchant_id}:{key_id}"


def webhook_context(merchant_id: str) -> str:
    return f"merchant_webhooks:{merchant_id}"


def merchant_of(row: Any) -> Merchant:
    return Merchant(
        id=row["id"],
        name=row["name"],
        settlement_contact=row["settlement_contact"],
        webhook_url=row["webhook_url"],
        created_at=row["created_at"],
    )


async def register_merchant(
    tx: Tx, cfg: RewardsConfig, registration: MerchantRegistration
) -> RegisteredMerchant:
    """Register a merchant and open its POINT account; with a webhook URL, a webhook secret is
    generated and answered once (it signs every webhook; only its sealed form is kept)."""
    secret = secrets.token_hex(32) if registration.webhook_url else None
    sealed = cfg.box.seal(secret, context=webhook_context(registration.id)) if secret else None
    row = await repo.insert_merchant(
        tx.conn,
        registration.id,
        registration.name,
        registration.settlement_contact,
        registration.webhook_url,
        sealed,
    )
    await ledger.open_accounts(tx.conn, [AccountKey("merchant", registration.id, "POINT")])
    return RegisteredMerchant(merchant=merchant_of(row), webhook_secret=secret)


async def get_merchant(conn: Any, merchant_id: str) -> Merchant:
    row = await repo.merchant(conn, merchant_id)
    if row is None:
        raise MerchantNotFound(f"No merchant {merchant_id!r}.")
    return merchant_of(row)


async def issue_key(
    tx: Tx, cfg: RewardsConfig, merchant_id: str, key_id: str, secret: str | None = None
) -> str:
    """Add a signing key (rotation: add the new one, move the merchant over, revoke the old);
    the secret, generated when not given. Stored sealed: HMAC needs the secret itself."""
    secret = secret or secrets.token_hex(32)
    await repo.add_key(
        tx.conn, merchant_id, key_id, cfg.box.seal(secret, context=key_context(merchant_id, key_id))
    )
    return secret


async def revoke_key(tx: Tx, merchant_id: str, key_id: str) -> bool:
    return await repo.revoke_key(tx.conn, merchant_id, key_id)


def secret_lookup(conn: Any, cfg: RewardsConfig) -> KeyLookup:
    """``lookup_secret(merchant_id, key_id)`` for :func:`kit.auth.verify_signed`: the opened
    secret, or None (no such key, revoked, or a stored value that does not open)."""

    async def lookup_secret(merchant_id: str, key_id: str) -> str | None:
        stored = await repo.key_secret(conn, merchant_id, key_id)
        if stored is None:
            return None
        return cfg.box.open(stored, context=key_context(merchant_id, key_id))

    return lookup_secret
