"""Schemathesis over one HTTP surface, the same way for every surface.

``serve_and_fuzz`` is every harness's body (tests/**/fuzz_*.py): embedded PostgreSQL and Redis
in a temporary directory, a fresh database migrated and seeded, the harness's own rows, `tanpuhui
serve` on a free port, the served OpenAPI document cut to the surface by the harness, then
schemathesis over it with the one check that matters here (``not_a_server_error``), requests
signed or carrying a token when the surface wants one; then everything stopped and removed.

``run_fuzz`` runs a harness as part of the test run: one subprocess, its exit status and its
summary checked the same way for every surface.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
T = TypeVar("T")


def run_fuzz(module: str, examples: int) -> str:
    """Run ``python -m module examples``; assert it passed with no failed case; its output."""
    done = subprocess.run(
        [sys.executable, "-m", module, str(examples)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "generated" in done.stdout
    assert " failed" not in done.stdout.split("Test cases:")[-1].splitlines()[1]
    return done.stdout


def examples_arg(default: str = "50") -> str:
    """The harness's one argument: schemathesis' ``--max-examples``."""
    return sys.argv[1] if len(sys.argv) > 1 else default


def cut(served: dict[str, Any], *prefixes: str) -> dict[str, Any]:
    """The served document with only the paths under ``prefixes``."""
    spec = dict(served)
    spec["paths"] = {p: op for p, op in served["paths"].items() if p.startswith(prefixes)}
    return spec


def past_the_signature(log: Path, prefix: str) -> int:
    """0 when signed POSTs under ``prefix`` were decoded (answered other than 401), else 4: a
    run whose every request was refused at the signature would fuzz nothing behind it."""
    lines = log.read_text().splitlines() if log.exists() else []
    posts = [line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"POST {prefix}")]
    decoded = sum(1 for status in posts if status != "401")
    print(f"signed: {decoded} of {len(posts)} POST {prefix}* answered past the signature")
    return 0 if decoded else 4


def _served(base: str) -> dict[str, Any] | None:
    for _ in range(150):
        try:
            with urllib.request.urlopen(base + "/schema/openapi.json", timeout=2) as r:  # noqa: S310
                served: dict[str, Any] = json.load(r)
                return served
        except OSError:
            time.sleep(0.2)
    return None


def serve_and_fuzz(
    name: str,
    *,
    prepare: Callable[[Any], Awaitable[T]],
    spec: Callable[[dict[str, Any], T], dict[str, Any]],
    examples: str,
    server_env: Mapping[str, str] | None = None,
    headers: Callable[[T], list[str]] | None = None,
    signed_by: tuple[str, str, str] | None = None,
    signed_prefix: str = "",
    check: Callable[[str, T], str | None] | None = None,
) -> int:
    """Fuzz one surface; schemathesis' exit status (3: the server did not start or ``check``
    failed; 4: signed requests never got past the signature).

    ``prepare(conn)`` adds the harness's rows to the migrated, seeded database and returns what
    ``spec(served, prepared)`` (the document to fuzz), ``headers(prepared)`` (``-H`` values,
    printed redacted) and ``check(base_url, prepared)`` (a sanity check of the running server:
    an error message or None) need. ``signed_by`` = (caller id, key id, secret): every request
    is signed by ``tests.integrations.fuzz_signing``, and at least one POST under
    ``signed_prefix`` must get past the signature."""
    tmp = Path(tempfile.mkdtemp(prefix=f"tph-{name}-fuzz-"))
    from kit.db import connect
    from server.embedded import EmbeddedPostgres, EmbeddedRedis
    from server.migrate import migrate
    from server.seeds import apply_seeds

    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"

    async def create() -> T:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        conn = await connect(db_url)  # the app's connection set-up (UTC, codecs)
        try:
            await migrate(conn)
            await apply_seeds(conn)
            return await prepare(conn)
        finally:
            await conn.close()

    server = None
    try:
        prepared = asyncio.run(create())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_HTTP_PORT": str(port),
            "TANPUHUI_HTTP_WORKERS": "1",
            "TANPUHUI_LOG_LEVEL": "ERROR",
            **(server_env or {}),
        }
        server = subprocess.Popen(
            [str(BIN / "tanpuhui"), "serve"], env=env, cwd=ROOT, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        served = _served(base)
        if served is None:
            print("the server did not start", flush=True)
            return 3
        problem = check(base, prepared) if check else None
        if problem:
            print(problem, flush=True)
            return 3
        spec_path = tmp / f"{name}.json"
        spec_path.write_text(json.dumps(spec(served, prepared)))
        cmd = [str(BIN / "schemathesis"), "run", str(spec_path), "--url", base]
        cmd += ["--checks", "not_a_server_error", "--max-examples", examples]
        extra = [h for header in (headers(prepared) if headers else []) for h in ("-H", header)]
        shown = " ".join(cmd) + (" -H <redacted>" * (len(extra) // 2))
        run_env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = tmp / "statuses.log"
        if signed_by:
            caller, key_id, secret = signed_by
            run_env |= {
                "SCHEMATHESIS_HOOKS": "tests.integrations.fuzz_signing",
                "FUZZ_OPERATOR": caller,
                "FUZZ_KEY_ID": key_id,
                "FUZZ_SECRET": secret,
                "FUZZ_STATUS_LOG": str(log),
            }
            shown += " (each request signed)"
        print("$", shown, flush=True)
        code = subprocess.run(cmd + extra, check=False, env=run_env, cwd=ROOT).returncode
        return code or (past_the_signature(log, signed_prefix) if signed_by else 0)
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        rd.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
