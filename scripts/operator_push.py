"""Push events to the operator API, signed (a copy-paste example for operators' developers).

    # once, against `make run`'s embedded database: a demo operator, key, resident and link
    .venv/bin/python -m scripts.operator_push setup
    # sign and send a batch (JSON body {"events": [...]}) or a daily file
    .venv/bin/python -m scripts.operator_push events  demo-metro k1 <secret> batch.json
    .venv/bin/python -m scripts.operator_push file    demo-metro k1 <secret> day.ndjson
    .venv/bin/python -m scripts.operator_push get     demo-metro k1 <secret> /api/.../files/<id>

API base: TANPUHUI_API (default http://127.0.0.1:8000).
"""

from __future__ import annotations

import asyncio
import os
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

from server.auth import sign_request

API = os.environ.get("TANPUHUI_API", "http://127.0.0.1:8000")


def send(method: str, op: str, key_id: str, secret: str, path: str, body: bytes = b"") -> None:
    headers = sign_request(secret, method, path, body, operator_id=op, key_id=key_id)
    headers["Content-Type"] = "application/json"
    url = API + path  # the API's own http(s) URL
    req = urllib.request.Request(url, data=body or None, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req) as r:  # noqa: S310
            sys.stdout.write(r.read().decode() + "\n")
    except urllib.error.HTTPError as e:
        sys.stdout.write(f"HTTP {e.code}: {e.read().decode()}\n")


async def setup() -> None:
    """Demo operator `demo-metro` (key k1), a resident linked to it, and an example batch."""
    import secrets
    import uuid

    from behaviours import service
    from server.db import connect, transaction_on
    from server.settings import Settings

    settings = Settings.from_env()
    url = settings.database.url or (
        f"postgresql://postgres@/tanpuhui?host={Path(settings.embedded.data_dir).resolve() / 'pg'}"
    )
    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            await service.register_operator(
                tx, "demo-metro", name="Demo Metro", kind="transit", region_code="440300"
            )
            key_id = "k" + secrets.token_hex(3)
            secret = await service.add_signing_key(tx, "demo-metro", key_id)
            resident = str(uuid.uuid4())
            await tx.conn.execute("INSERT INTO residents (id) VALUES ($1)", resident)
            link = await service.link_operator(tx, resident, "demo-metro", ["transit"])
            # demo only: consent dated a day back so the example trip two hours ago is covered
            await tx.conn.execute(
                "UPDATE operator_links SET granted_at = now() - interval '1 day' "
                "WHERE subject_ref = $1",
                link.subject_ref,
            )
    finally:
        await conn.close()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    trip = (
        f'{{"events": [{{"type": "transit_trip", "record_id": "demo-1", '
        f'"subject": "{link.subject_ref}", "mode": "metro", '
        f'"boarded_at": "{start.isoformat()}", '
        f'"alighted_at": "{(start + timedelta(minutes=25)).isoformat()}", "distance_m": 12000}}]}}'
    )
    Path("batch.json").write_text(trip + "\n", encoding="utf-8")
    sys.stdout.write(
        f"operator demo-metro, key {key_id}, secret {secret}\nsubject {link.subject_ref}\n"
        f"wrote batch.json; now run:\n  .venv/bin/python -m scripts.operator_push events "
        f"demo-metro {key_id} {secret} batch.json\n"
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["setup"]:
        asyncio.run(setup())
        return 0
    if len(argv) != 5 or argv[0] not in ("events", "file", "get"):
        sys.stderr.write(__doc__ or "")
        return 2
    cmd, op, key_id, secret, arg = argv
    if cmd == "get":
        send("GET", op, key_id, secret, arg)
    elif cmd == "events":
        send("POST", op, key_id, secret, "/api/operators/v1/events", Path(arg).read_bytes())
    else:
        fmt = "csv" if arg.endswith(".csv") else "ndjson"
        send(
            "POST",
            op,
            key_id,
            secret,
            f"/api/operators/v1/files?format={fmt}",
            Path(arg).read_bytes(),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
