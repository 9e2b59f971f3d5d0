import time

import pytest

from kit.auth import JwtKeys, Role, require_role, sign_request, verify_signature
from kit.errors import Forbidden, Unauthenticated

SECRET = "operator-secret-0123456789"


def keys(spec):
    return JwtKeys(spec)


def test_jwt_roundtrip_and_claims():
    k = keys([("k1", "s" * 32)])
    token = k.issue("resident-1", Role.RESIDENT, 60)
    p = k.verify(token)
    assert p.subject == "resident-1"
    assert p.role is Role.RESIDENT


def test_expired_token_is_refused():
    k = keys([("k1", "s" * 32)])
    token = k.issue("r", Role.RESIDENT, 60, now=time.time() - 120)
    with pytest.raises(Unauthenticated) as info:
        k.verify(token)
    assert info.value.code == "token_expired"


def test_token_signed_with_another_key_is_refused():
    token = keys([("k1", "a" * 32)]).issue("r", Role.RESIDENT, 60)
    with pytest.raises(Unauthenticated) as info:
        keys([("k1", "b" * 32)]).verify(token)
    assert info.value.code == "token_invalid"


def test_rotation_old_tokens_verify_until_their_key_is_removed():
    old = keys([("k1", "a" * 32)])
    token = old.issue("r", Role.RESIDENT, 60)
    rotated = keys([("k2", "b" * 32), ("k1", "a" * 32)])
    assert rotated.verify(token).subject == "r"
    new_token = rotated.issue("r", Role.RESIDENT, 60)
    assert rotated.verify(new_token).subject == "r"
    retired = keys([("k2", "b" * 32)])
    with pytest.raises(Unauthenticated):
        retired.verify(token)
    assert retired.verify(new_token).subject == "r"


def test_alg_none_is_refused():
    import jwt as pyjwt

    token = pyjwt.encode(
        {"sub": "r", "role": "gov_admin", "exp": 2**40, "iat": 0, "jti": "x"},
        key="",  # PyJWT's "none" algorithm takes no key ("" or None)
        algorithm="none",
        headers={"kid": "k1"},
    )
    with pytest.raises(Unauthenticated):
        keys([("k1", "a" * 32)]).verify(token)


def test_role_guard():
    p = keys([("k1", "a" * 32)]).verify(keys([("k1", "a" * 32)]).issue("g", Role.GOV_ANALYST, 60))
    assert require_role(p, Role.GOV_ANALYST, Role.GOV_ADMIN) is p
    with pytest.raises(Forbidden):
        require_role(p, Role.GOV_ADMIN)


async def _lookup(operator_id, key_id):
    return SECRET if (operator_id, key_id) == ("op1", "key1") else None


async def _verify(redis, headers, body=b'{"a":1}', path="/api/operators/v1/batches", **kw):
    return await verify_signature(
        method="POST",
        path=path,
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        lookup_secret=_lookup,
        redis=redis,
        **kw,
    )


def _headers(body=b'{"a":1}', **kw):
    return sign_request(
        SECRET, "POST", "/api/operators/v1/batches", body, operator_id="op1", key_id="key1", **kw
    )


async def test_valid_signature_passes_once_then_replay_fails(redis, stores):
    h = _headers()
    caller = await _verify(redis, h)
    assert caller.operator_id == "op1"
    with pytest.raises(Unauthenticated) as info:
        await _verify(redis, h)
    assert info.value.code == "signature_replayed"


async def test_bad_body_digest_fails(redis, stores):
    with pytest.raises(Unauthenticated) as info:
        await _verify(redis, _headers(), body=b'{"a":2}')
    assert info.value.code == "signature_invalid"


async def test_stale_timestamp_fails(redis, stores):
    with pytest.raises(Unauthenticated) as info:
        await _verify(redis, _headers(timestamp=int(time.time()) - 301))
    assert info.value.code == "signature_stale"
    await _verify(redis, _headers(timestamp=int(time.time()) - 250))


async def test_wrong_path_unknown_key_and_missing_headers_fail(redis, stores):
    with pytest.raises(Unauthenticated):
        await _verify(redis, _headers(), path="/api/operators/v1/other")
    h = _headers()
    h["X-Key-Id"] = "key2"
    with pytest.raises(Unauthenticated):
        await _verify(redis, h)
    h = _headers()
    del h["X-Nonce"]
    with pytest.raises(Unauthenticated) as info:
        await _verify(redis, h)
    assert info.value.code == "signature_missing"


async def test_forged_signature_does_not_burn_the_nonce(redis, stores):
    good = _headers()
    forged = dict(good, **{"X-Signature": "0" * 64})
    with pytest.raises(Unauthenticated):
        await _verify(redis, forged)
    assert (await _verify(redis, good)).operator_id == "op1"
