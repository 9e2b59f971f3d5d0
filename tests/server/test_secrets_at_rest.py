"""Operators' signing secrets are stored encrypted (server/cipher.py): the column never holds the
secret, signed requests still verify, and a value that does not open under the settings' key (in
clear, copied from another row, another key) is refused."""

import base64
import uuid

import msgspec
import pytest

from behaviours import service
from kit.auth import sign_request
from kit.cipher import SecretBox
from kit.db import transaction
from server.settings import PrivacySettings, Settings, SettingsError

SECRET = "at-rest-secret-0123456789abcdef"
DEV = PrivacySettings()
OTHER_KEY = PrivacySettings(secrets_key=base64.b64encode(b"k" * 32).decode())


async def operator_with_key(pool, op="vault", key_id="k1"):
    async with transaction(pool) as tx:
        await service.register_operator(tx, op, name="Vault", kind="transit", region_code="440300")
        await service.add_signing_key(tx, op, key_id, SECRET, privacy=DEV)


async def stored(pool, op="vault", key_id="k1"):
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT secret FROM operator_keys WHERE operator_id = $1 AND key_id = $2", op, key_id
        )


async def test_the_stored_column_does_not_hold_the_secret(pool):
    await operator_with_key(pool)
    value = await stored(pool)
    assert SECRET not in value
    assert value.startswith("v1:")
    assert await service.secret_lookup(pool, DEV)("vault", "k1") == SECRET


async def test_signed_requests_still_verify(client, pool):
    await operator_with_key(pool)
    path = f"/api/operators/v1/files/{uuid.uuid4()}"
    good = sign_request(SECRET, "GET", path, b"", operator_id="vault", key_id="k1")
    r = await client.get(path, headers=good)
    assert r.status_code == 404, r.text  # past the signature: the file does not exist
    bad = sign_request(SECRET + "x", "GET", path, b"", operator_id="vault", key_id="k1")
    r = await client.get(path, headers=bad)
    assert (r.status_code, r.json()["code"]) == (401, "signature_invalid")


async def test_values_that_do_not_open_are_refused(pool):
    await operator_with_key(pool)
    await operator_with_key(pool, key_id="k2")
    lookup = service.secret_lookup(pool, DEV)
    # Another key of the settings: nothing opens.
    assert await service.secret_lookup(pool, OTHER_KEY)("vault", "k1") is None
    # A ciphertext copied onto another row is bound to its own row.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE operator_keys SET secret = (SELECT secret FROM operator_keys "
            "WHERE key_id = 'k1') WHERE key_id = 'k2'"
        )
    assert await lookup("vault", "k2") is None
    # A secret written in clear by someone with write access to the table is not taken.
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE operator_keys SET secret = 'planted-in-clear-0123456789' WHERE key_id = 'k1'"
        )
    assert await lookup("vault", "k1") is None
    assert await lookup("vault", "nope") is None


async def test_migrate_encrypts_the_secrets_stored_in_clear(pool, settings):
    from server.cli import _migrate

    async with transaction(pool) as tx:
        await service.register_operator(tx, "old", name="Old", kind="transit", region_code="440300")
        await tx.conn.execute(
            "INSERT INTO operator_keys (operator_id, key_id, secret) VALUES ('old', 'k1', $1)",
            SECRET,
        )
    assert await service.secret_lookup(pool, DEV)("old", "k1") is None
    assert settings.database.owner_url
    await _migrate(settings.database.owner_url, settings.database.url, settings=settings)
    assert SECRET not in await stored(pool, "old")
    assert await service.secret_lookup(pool, DEV)("old", "k1") == SECRET
    async with transaction(pool) as tx:
        assert await service.seal_clear_secrets(tx, DEV) == 0  # nothing left in clear


def test_the_box_round_trips_and_binds_its_context():
    box = SecretBox.from_settings(DEV)
    sealed = box.seal("s3cret", context="a")
    assert box.open(sealed, context="a") == "s3cret"
    assert box.open(sealed, context="b") is None
    assert box.open(sealed.replace("v1:", "v1:A"), context="a") is None
    assert box.seal("s3cret", context="a") != sealed  # a fresh nonce each time


@pytest.mark.parametrize(
    ("variable", "value"),
    [("TANPUHUI_PRIVACY_SECRETS_KEY", "short"), ("TANPUHUI_POINTS_WITNESS_KEY", "c2hvcnQ=")],
)
def test_keys_must_be_32_bytes(variable, value):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({variable: value})
    assert info.value.variable == variable


def test_prod_requires_both_keys():
    prod = {
        "TANPUHUI_ENV": "prod",
        "TANPUHUI_AUTH_JWT_KEYS": "k1:" + "x" * 32,
        "TANPUHUI_PRIVACY_PHONE_HASH_KEY": "y" * 32,
        "TANPUHUI_SMS_GATEWAY": "http",
        "TANPUHUI_SMS_GATEWAY_URL": "http://sms.invalid/send",
    }
    key = base64.b64encode(b"z" * 32).decode()
    with pytest.raises(SettingsError) as info:
        Settings.from_env(prod)
    assert info.value.variable == "TANPUHUI_POINTS_WITNESS_KEY"
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**prod, "TANPUHUI_POINTS_WITNESS_KEY": key})
    assert info.value.variable == "TANPUHUI_PRIVACY_SECRETS_KEY"
    s = Settings.from_env(
        {**prod, "TANPUHUI_POINTS_WITNESS_KEY": key, "TANPUHUI_PRIVACY_SECRETS_KEY": key}
    )
    assert msgspec.structs.asdict(s.privacy)["secrets_key"] == key
