"""Push events to the operator API, signed: a copy-paste example for operators' developers.

    # once, against `make run`'s store: a demo operator, a new key, a linked resident and a
    # batch file with one trip after the link; prints the exact command to send it
    .venv/bin/python -m scripts.operator_push setup
    # sign and send a batch (JSON body {"events": [...]}), a daily file, or a GET
    .venv/bin/python -m scripts.operator_push events demo-metro <key id> <secret> <batch.json>
    .venv/bin/python -m scripts.operator_push file   demo-metro <key id> <secret> <day.ndjson>
    .venv/bin/python -m scripts.operator_push get    demo-metro <key id> <secret> <path>

The API is TANPUHUI_API when set, else http://TANPUHUI_HTTP_HOST:TANPUHUI_HTTP_PORT (the address
`make run` listens on). Exit status: 0 when the API answered 2xx, 1 when it answered an error
(printed) or could not be reached, 2 for a wrong command line.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kit.auth import sign_request
from server.settings import PrivacySettings, Settings, SettingsError

PROG = "python -m scripts.operator_push"
EVENTS = "/api/operators/v1/events"


def api_base(settings: Settings, environ: dict[str, str] | None = None) -> str:
    import os

    env = os.environ if environ is None else environ
    explicit = env.get("TANPUHUI_API")
    if explicit:
        return explicit.rstrip("/")
    return f"http://{settings.http.host}:{settings.http.port}"


def send(
    base: str,
    method: str,
    op: str,
    key_id: str,
    secret: str,
    path: str,
    body: bytes = b"",
    content_type: str = "application/json",
) -> int:
    """Sign and send one request; print the answer. Returns the exit status (0: 2xx)."""
    headers = sign_request(secret, method, path, body, operator_id=op, key_id=key_id)
    if body:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(base + path, data=body or None, headers=headers, method=method)  # noqa: S310 (the API's own http(s) URL)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:  # noqa: S310
            sys.stdout.write(r.read().decode() + "\n")
            return 0
    except urllib.error.HTTPError as e:
        sys.stderr.write(f"HTTP {e.code}: {e.read().decode(errors='replace')}\n")
        return 1
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        sys.stderr.write(
            f"{PROG}: cannot reach the API at {base} ({reason}); is `make run` running? "
            "(its port is TANPUHUI_HTTP_PORT; TANPUHUI_API sets the whole address)\n"
        )
        return 1


async def create_demo(url: str, privacy: PrivacySettings) -> tuple[str, str, str, datetime]:
    """Operator `demo-metro`, a new signing key, a resident linked to it: (key id, secret,
    subject, the consent's time). The consent is dated a day back (demo only), so that a trip
    of the last hours falls after it."""
    from behaviours import service
    from kit.db import connect, transaction_on
    from residents import service as residents_service

    conn = await connect(url)
    try:
        async with transaction_on(conn) as tx:
            await service.register_operator(
                tx, "demo-metro", name="Demo Metro", kind="transit", region_code="440300"
            )
            key_id = "k" + secrets.token_hex(3)
            secret = await service.add_signing_key(tx, "demo-metro", key_id, privacy=privacy)
            [resident] = await residents_service.create_residents(tx.conn, [None])
            # Consent given a day ago, so the demo trip (an hour and a half ago) falls after it.
            granted = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
            subject_ref = "s_demo_" + secrets.token_hex(6)
            await service.import_links(
                tx, "demo-metro", [(subject_ref, resident)], ["transit"], granted
            )
    finally:
        await conn.close()
    return key_id, secret, subject_ref, granted


def demo_batch(subject: str, record_id: str, now: datetime) -> bytes:
    """One metro trip that ended an hour and a half ago (after the demo's consent)."""
    start = now.replace(microsecond=0) - timedelta(hours=2)
    return (
        f'{{"events": [{{"type": "transit_trip", "record_id": "{record_id}", '
        f'"subject": "{subject}", "mode": "metro", '
        f'"boarded_at": "{start.isoformat()}", '
        f'"alighted_at": "{(start + timedelta(minutes=25)).isoformat()}", '
        f'"distance_m": 12000}}]}}\n'
    ).encode()


def cmd_setup(args: argparse.Namespace) -> int:
    from server.cli import with_database

    def run(settings: Settings) -> int:
        assert settings.database.url
        key_id, secret, subject, granted = asyncio.run(
            create_demo(settings.database.url, settings.privacy)
        )
        out = args.out or Path(settings.embedded.data_dir) / "demo" / "batch.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        record_id = "demo-" + secrets.token_hex(4)  # a new one per setup: ids are never reused
        out.write_bytes(demo_batch(subject, record_id, datetime.now(UTC)))
        sys.stdout.write(
            f"operator demo-metro, key {key_id}, secret {secret}\n"
            f"subject {subject} (linked, consent from {granted.isoformat(timespec='seconds')})\n"
            f"wrote {out} (record {record_id}); now run:\n"
            f"  .venv/bin/python -m scripts.operator_push events demo-metro {key_id} {secret} "
            f"{out}\n"
        )
        return 0

    return with_database(run, prog=PROG)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser(
        "setup",
        help="demo operator, new key, linked resident, a batch file with one trip",
        description="Against DATABASE_URL (unset: the embedded PostgreSQL of "
        "TANPUHUI_EMBEDDED_DATA_DIR, as `make run` uses it): operator demo-metro, a new signing "
        "key, a resident linked to it, and a batch file with one trip after the link.",
    )
    setup.add_argument(
        "--out",
        type=Path,
        help="where to write the batch (default: demo/batch.json in TANPUHUI_EMBEDDED_DATA_DIR)",
    )
    for name, what, last in (
        ("events", 'sign and POST a batch {"events": [...]} from a file', "file"),
        ("file", "sign and POST a daily file (.ndjson, or .csv)", "file"),
        ("get", "sign and GET a path (e.g. /api/operators/v1/files/<id>)", "path"),
    ):
        p = sub.add_parser(name, help=what, description=what)
        p.add_argument("operator", help="operator id, e.g. demo-metro")
        p.add_argument("key_id", help="signing key id (setup prints it)")
        p.add_argument("secret", help="signing key secret (setup prints it)")
        p.add_argument(last)
    args = parser.parse_args(argv)
    if args.command == "setup":
        return cmd_setup(args)
    try:
        base = api_base(Settings.from_env())
    except SettingsError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    if args.command == "get":
        return send(base, "GET", args.operator, args.key_id, args.secret, args.path)
    try:
        body = Path(args.file).read_bytes()
    except OSError as exc:
        sys.stderr.write(f"{PROG}: cannot read {args.file}: {exc.strerror}\n")
        return 1
    if args.command == "events":
        return send(base, "POST", args.operator, args.key_id, args.secret, EVENTS, body)
    fmt = "csv" if args.file.endswith(".csv") else "ndjson"
    return send(
        base,
        "POST",
        args.operator,
        args.key_id,
        args.secret,
        f"/api/operators/v1/files?format={fmt}",
        body,
        content_type="text/csv" if fmt == "csv" else "application/x-ndjson",
    )


if __name__ == "__main__":
    sys.exit(main())
