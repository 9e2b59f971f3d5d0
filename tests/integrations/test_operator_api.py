"""The signed operator API end to end through the real app: batches, replays, limits, files."""

from __future__ import annotations

from datetime import timedelta

import msgspec

from behaviours.files import process_file
from kit.auth import sign_request
from tests.behaviours.factories import SECRET, linked, metro, now, operator, policy

PATH = "/api/operators/v1/events"


def signed(method: str, path: str, body: bytes = b"", op: str = "metro") -> dict[str, str]:
    headers = sign_request(SECRET, method, path, body, operator_id=op, key_id="k1")
    if method != "GET":  # a body's media type is required (415 otherwise)
        files = "text/csv" if "format=csv" in path else "application/x-ndjson"
        headers["Content-Type"] = files if "/files" in path else "application/json"
    return headers


def batch(*events) -> bytes:
    return msgspec.json.encode({"events": list(events)})


async def test_signed_batch_answers_per_record_and_is_safe_to_retry(client, pool, settings):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    body = batch(metro(subject, "r1"), metro("stranger", "r2"))
    r = await client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (1, 1)
    first, second = out["results"]
    assert first["status"] == "accepted" and first["reduction_g"] == 467 and first["points"] == 46
    assert second["reason_code"] == "unknown_subject" and second["message"]
    again = await client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert [x["status"] for x in again.json()["results"]] == ["duplicate", "duplicate"]
    assert again.json()["results"][0]["points"] == 46
    # The methodology version rides on the verdict (first and duplicate alike); none for a
    # record kept only as its verdict.
    assert first["methodology_version"] == "low-carbon-travel@1"
    assert second["methodology_version"] is None
    assert [x["methodology_version"] for x in again.json()["results"]] == [
        "low-carbon-travel@1",
        None,
    ]


def test_the_operators_openapi_has_response_schemas(settings):
    from server.app import create_app

    spec = create_app(settings).openapi_schema.to_schema()
    ops = {
        (method, path.removeprefix("/api/operators/v1")): op
        for path, item in spec["paths"].items()
        if path.startswith("/api/operators/v1")
        for method, op in item.items()
    }

    def schema(op, status, media="application/json"):
        return op["responses"][status]["content"][media]["schema"]["$ref"].rsplit("/", 1)[1]

    assert schema(ops["post", "/events"], "200") == "BatchResult"
    assert schema(ops["post", "/files"], "202") == "FileStatus"
    assert schema(ops["post", "/files"], "200") == "FileStatus"
    assert schema(ops["get", "/files/{file_id}"], "200") == "FileStatus"
    results = ops["get", "/files/{file_id}/results"]
    assert schema(results, "200", "application/x-ndjson") == "FileResultLine"
    line = spec["components"]["schemas"]["FileResultLine"]["properties"]
    assert {"line", "record_id", "status", "methodology_version"} <= set(line)


async def test_replayed_signature_is_refused(client, pool, settings):
    await operator(pool, "metro")
    body = batch()
    headers = signed("POST", PATH, body)
    assert (await client.post(PATH, content=body, headers=headers)).status_code == 200
    r = await client.post(PATH, content=body, headers=headers)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "signature_replayed"


async def test_bad_signature_and_revoked_key(client, pool, settings):
    from behaviours import service
    from kit.db import transaction

    await operator(pool, "metro")
    body = batch()
    headers = signed("POST", PATH, body + b" ")
    r = await client.post(PATH, content=body, headers=headers)
    assert r.json()["code"] == "signature_invalid"
    async with transaction(pool) as tx:
        await service.revoke_signing_key(tx, "metro", "k1")
    r = await client.post(PATH, content=body, headers=signed("POST", PATH, body))
    assert r.status_code == 401


async def test_limits_and_schema_errors_are_problem_json(client, pool, settings):
    await operator(pool, "metro")
    many = batch(*[metro("s", f"r{i}") for i in range(settings.ingest.max_batch_records + 1)])
    r = await client.post(PATH, content=many, headers=signed("POST", PATH, many))
    assert r.status_code == 413 and r.json()["code"] == "too_many_records"
    huge = b'{"events": [' + b" " * settings.ingest.max_batch_bytes + b"]}"
    r = await client.post(PATH, content=huge, headers=signed("POST", PATH, huge))
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    bad = b'{"events": [{"type": "transit_trip", "record_id": "1"}]}'
    r = await client.post(PATH, content=bad, headers=signed("POST", PATH, bad))
    assert r.status_code == 400 and r.json()["code"] == "records_invalid"
    assert r.json()["errors"][0]["path"].startswith("$.events[0]")


async def test_daily_file_upload_task_status_and_results(client, pool, settings):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(hours=6)
    ndjson = b"\n".join(
        [
            msgspec.json.encode(metro(subject, "f1", start=start)),
            b'{"type": "transit_trip", "record_id": "f2"}',
            msgspec.json.encode(metro(subject, "f3", start=start + timedelta(hours=2))),
        ]
    )
    path = "/api/operators/v1/files?format=ndjson"
    r = await client.post(path, content=ndjson, headers=signed("POST", path, ndjson))
    assert r.status_code == 202, r.text
    file_id = r.json()["id"]
    assert r.json()["status"] == "queued"
    # the Celery task's body, run directly on this loop
    assert await process_file(pool, policy(settings), file_id) == "done"
    status_path = f"/api/operators/v1/files/{file_id}"
    got = await client.get(status_path, headers=signed("GET", status_path))
    assert got.headers["content-type"].startswith("application/json")
    s = got.json()
    assert (s["status"], s["records"], s["accepted"], s["rejected"]) == ("done", 3, 2, 1)
    results_path = status_path + "/results"
    r = await client.get(results_path, headers=signed("GET", results_path))
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [msgspec.json.decode(x) for x in r.content.splitlines()]
    assert [(x["line"], x["status"]) for x in lines] == [
        (1, "accepted"),
        (2, "rejected"),
        (3, "accepted"),
    ]
    assert lines[1]["reason_code"] == "record_invalid"
    # the same file again is the same file
    r = await client.post(path, content=ndjson, headers=signed("POST", path, ndjson))
    assert r.status_code == 200 and r.json()["id"] == file_id
    # another operator cannot read it
    await operator(pool, "other")
    r = await client.get(status_path, headers=signed("GET", status_path, op="other"))
    assert r.status_code == 404


async def test_csv_file(pool, settings):
    from behaviours import service
    from kit.db import transaction

    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = (now() - timedelta(hours=3)).isoformat()
    end = (now() - timedelta(hours=2, minutes=30)).isoformat()
    csv = (
        "type,record_id,subject,mode,started_at,ended_at,distance_m\n"
        f"transit_trip,c1,{subject},bus,{start},{end},5000\n"
        f"transit_trip,c2,{subject},rocket,{start},{end},5000\n"
    ).encode()
    async with transaction(pool) as tx:
        file_id, new = await service.create_file(tx, "metro", "csv", csv)
    assert new
    assert await process_file(pool, policy(settings), file_id) == "done"
    async with pool.acquire() as conn:
        results = await service.file_results(conn, "metro", file_id)
    lines = [msgspec.json.decode(x) for x in results.splitlines()]
    assert lines[0]["status"] == "accepted" and lines[0]["reduction_g"] == 134  # 26.9 g x 5 km
    assert lines[1]["reason_code"] == "record_invalid"


async def test_celery_task_is_registered(settings):
    from behaviours import tasks

    assert tasks.process_file.name == "integrations.process_file"
    assert "integrations.resume_files" in tasks.BEAT


async def test_a_transient_failure_leaves_the_file_resumable(pool, settings, monkeypatch):
    import asyncpg
    import pytest

    from behaviours import service
    from kit.db import transaction

    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = (now() - timedelta(hours=3)).isoformat()
    end = (now() - timedelta(hours=2, minutes=30)).isoformat()
    csv = (
        "type,record_id,subject,mode,started_at,ended_at,distance_m\n"
        f"transit_trip,t1,{subject},bus,{start},{end},5000\n"
    ).encode()
    async with transaction(pool) as tx:
        file_id, _ = await service.create_file(tx, "metro", "csv", csv)

    real_ingest = service.ingest

    async def deadlocked(*args, **kwargs):
        raise asyncpg.exceptions.DeadlockDetectedError("deadlock detected")

    monkeypatch.setattr("behaviours.files.ingest", deadlocked)
    with pytest.raises(asyncpg.exceptions.DeadlockDetectedError):
        await process_file(pool, policy(settings), file_id)
    async with pool.acquire() as conn:
        status = await service.file_status(conn, "metro", file_id)
    assert status.status != "failed"  # still queued/processing: the resume task will retry

    monkeypatch.setattr("behaviours.files.ingest", real_ingest)
    assert await process_file(pool, policy(settings), file_id) == "done"


# --- the signed path and hostile signature headers ---------------------------------------------


async def test_the_signature_covers_the_path_as_sent_not_as_decoded(client, pool, settings):
    await operator(pool, "metro")
    body = batch()
    encoded = "/api/operators/v1/%65vents"  # routes to /events once decoded
    headers = {"Content-Type": "application/json", **signed("POST", PATH, body)}
    r = await client.post(encoded, content=body, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "signature_invalid"
    # signed as sent, the same request is accepted: the rule is the raw target, not a decoding
    headers = {"Content-Type": "application/json", **signed("POST", encoded, body)}
    r = await client.post(encoded, content=body, headers=headers)
    assert r.status_code == 200, r.text
    # the query string is signed as sent too
    raw_query = "/api/operators/v1/files?format=%6Edjson"
    headers = {"Content-Type": "application/x-ndjson"}
    r = await client.post(
        raw_query, content=b"", headers={**headers, **signed("POST", FILES_NDJSON, b"")}
    )
    assert r.status_code == 401 and r.json()["code"] == "signature_invalid"


FILES_NDJSON = "/api/operators/v1/files?format=ndjson"

# Each replaces one signature header with a value that once escaped as a 500 (int() of a
# superscript digit or of 5,000 digits, compare_digest of a non-ASCII str) or is simply not the
# documented format. Values are bytes as sent on the wire (Latin-1 or UTF-8).
HOSTILE_HEADERS = [
    ("X-Timestamp", b"\xb2"),  # superscript two in Latin-1: str.isdigit() says yes
    ("X-Timestamp", "²".encode()),
    ("X-Timestamp", "１７００００００００".encode()),  # fullwidth digits
    ("X-Timestamp", b"1" * 5000),
    ("X-Timestamp", b"1" * 13),
    ("X-Timestamp", b"-1"),
    ("X-Signature", b"\xe9" * 64),
    ("X-Signature", "é".encode() * 32),
    ("X-Signature", b"0" * 63),
    ("X-Signature", b"g" * 64),
    ("X-Nonce", b"\xe9" * 16),
    ("X-Nonce", b"n" * 129),
    ("X-Operator-Id", "métro".encode()),
    ("X-Operator-Id", b"m" * 65),
    ("X-Key-Id", b"k\xff1"),
]


async def test_hostile_signature_headers_are_signature_invalid(client, pool, settings):
    await operator(pool, "metro")
    body = batch()
    status_path = "/api/operators/v1/files/00000000-0000-0000-0000-000000000000"
    for name, value in HOSTILE_HEADERS:
        for method, path, content in (("POST", PATH, body), ("GET", status_path, b"")):
            headers: dict[str, str | bytes] = {
                **signed(method, path, content),
                "Content-Type": "application/json",
            }
            headers[name] = value
            if method == "POST":
                r = await client.post(path, content=content, headers=headers)
            else:
                r = await client.get(path, headers=headers)
            assert r.status_code == 401, (name, value[:20], method, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "signature_invalid", (name, value[:20], r.json())
