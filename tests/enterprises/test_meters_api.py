"""The signed meters API (``/api/meters/v1/readings``) through the real app: a day of
15-minute readings pushed in one batch, per-reading verdicts, resends, and hostile input
(refused at the signature before the body is read; malformed bodies as problem+json)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from enterprises import energy
from kit.auth import sign_request
from tests.behaviours.factories import SECRET
from tests.enterprises.energy_factories import an_enterprise, meter, pusher
from tests.fuzzing import run_fuzz

PATH = "/api/meters/v1/readings"


def signed(body: bytes, op: str = "grid", secret: str = SECRET) -> dict[str, str]:
    headers = sign_request(secret, "POST", PATH, body, operator_id=op, key_id="k1")
    headers["Content-Type"] = "application/json"
    return headers


def day(ref: str, start: datetime, *, per_interval: float = 2.5) -> list[dict[str, Any]]:
    """A day of 15-minute register readings (97: the day's start and its 96 intervals)."""
    return [
        {
            "meter": ref,
            "at": (start + i * timedelta(minutes=15)).isoformat(),
            "value": 1000 + i * per_interval,
        }
        for i in range(97)
    ]


def body(readings: list[dict[str, Any]]) -> bytes:
    return msgspec.json.encode({"readings": readings})


async def _setup(pool: Any) -> Any:
    e = await an_enterprise(pool)
    await pusher(pool)
    return e, await meter(pool, e)


async def test_a_day_of_readings_is_counted_and_a_resend_is_duplicate(client, pool):
    e, m = await _setup(pool)
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=2
    )
    data = body(day("M1", yesterday))
    r = await client.post(PATH, content=data, headers=signed(data))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["flagged"], out["rejected"]) == (97, 0, 0)
    assert sum(v["quantity"] for v in out["results"]) == 96 * 2.5
    again = await client.post(PATH, content=data, headers=signed(data))
    assert again.json()["duplicates"] == 97 and again.json()["accepted"] == 0
    async with pool.acquire() as conn:
        months = await energy.meter_months(conn, e, start=date(2000, 1, 1), end=date(2100, 1, 1))
    assert sum(x.quantity for x in months) == 240 and {x.meter_id for x in months} == {m.id}


async def test_verdict_messages_follow_the_language(client, pool):
    await _setup(pool)
    data = body([{"meter": "nope", "at": "2026-01-01T00:15:00+08:00", "value": 1}])
    zh = await client.post(PATH, content=data, headers={**signed(data), "Accept-Language": "zh"})
    data2 = body([{"meter": "nope", "at": "2026-01-01T00:30:00+08:00", "value": 1}])
    en = await client.post(PATH, content=data2, headers={**signed(data2), "Accept-Language": "en"})
    assert zh.json()["results"][0]["reason_code"] == en.json()["results"][0]["reason_code"]
    assert zh.json()["results"][0]["message"] == "您推送的计量表中没有这个编号。"
    assert en.json()["results"][0]["message"] == "No meter of that reference is pushed by you."


class _Body:
    """A request body that records how much of it the server asked for."""

    def __init__(self, chunks: int) -> None:
        self.sent = 0
        self.chunks = chunks

    async def __aiter__(self) -> Any:
        for _ in range(self.chunks):
            self.sent += 1
            yield b"x" * 65536


async def test_a_bad_signature_is_refused_before_the_body_is_read(client, pool):
    await _setup(pool)
    for headers in (
        {},  # no signature at all
        {**signed(b"{}"), "X-Timestamp": "1"},  # stale
        {**signed(b"{}"), "X-Signature": "z" * 64},  # not hex
    ):
        stream = _Body(100)
        r = await client.post(
            PATH, content=stream, headers={**headers, "Content-Type": "application/json"}
        )
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert stream.sent <= 1, stream.sent  # not the 6.5 MB behind the headers
    data = body([])
    forged = await client.post(PATH, content=data, headers=signed(data, secret="w" * 32))
    assert forged.status_code == 401 and forged.json()["code"] == "signature_invalid"


async def test_malformed_bodies_are_problems_not_server_errors(client, pool):
    await _setup(pool)
    cases = {
        b"not json": "validation_failed",
        b'{"readings": [{"meter": "M1", "at": "2026-01-01T00:15:00", "value": 1}]}': (
            "validation_failed"  # no UTC offset
        ),
        b'{"readings": [{"meter": "M1", "at": "2026-01-01T00:15:00Z", "value": "1"}]}': (
            "validation_failed"
        ),
        b'{"readings": [{"meter": "M\\u0000", "at": "2026-01-01T00:15:00Z", "value": 1}]}': (
            "validation_failed"
        ),
        b'{"readings": [], "extra": 1}': "validation_failed",
    }
    for data, code in cases.items():
        r = await client.post(PATH, content=data, headers=signed(data))
        assert r.status_code == 400, (data, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code
    many = body([{"meter": "M1", "at": "2026-01-01T00:15:00Z", "value": 1}] * 5001)
    r = await client.post(PATH, content=many, headers=signed(many))
    assert r.status_code == 413 and r.json()["code"] == "too_many_records"
    huge = b'{"readings": [' + b" " * (3 * 1024 * 1024) + b"]}"
    r = await client.post(PATH, content=huge, headers=signed(huge))
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"


async def test_extreme_instants_and_values_are_rejected_verdicts(client, pool):
    await _setup(pool)
    data = body(
        [
            {"meter": "M1", "at": "9999-12-31T23:59:59-05:00", "value": 1},
            {"meter": "M1", "at": "0001-01-01T00:00:00+01:00", "value": 1},
            {"meter": "M1", "at": "2026-01-01T00:15:00+08:00", "value": 1.7e308, "unit": "GWh"},
            {"meter": "M1", "at": "2026-01-01T00:15:00+08:00", "value": 1, "unit": "k\u0000Wh"},
        ]
    )
    r = await client.post(PATH, content=data, headers=signed(data))
    assert r.status_code == 200, r.text
    assert [v["reason_code"] for v in r.json()["results"]] == [
        "reading_time_invalid",
        "reading_time_invalid",
        "reading_value_invalid",
        "reading_unit_invalid",
    ]


def test_the_meters_api_is_in_the_openapi_document(settings):
    from server.app import create_app

    spec = create_app(settings).openapi_schema.to_schema()
    op = spec["paths"][PATH]["post"]
    assert op["tags"] == ["meters"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("ReadingsResult")


def test_schemathesis_finds_no_server_error_in_the_meters_api():
    out = run_fuzz("tests.enterprises.fuzz_meters", 30)
    signed_line = [line for line in out.splitlines() if line.startswith("signed: ")]
    assert signed_line and not signed_line[0].startswith("signed: 0 "), signed_line
