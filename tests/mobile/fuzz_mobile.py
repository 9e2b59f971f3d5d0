"""Schemathesis against the mobile API: every operation of the committed openapi.json, fuzzed
with a valid resident token, must never answer 5xx.

    flock /tmp/tph-bench.lock .venv/bin/python -m tests.mobile.fuzz_mobile [max examples, 50]

Embedded PostgreSQL and Redis, `tanpuhui serve` on a free port, the SMS gateway on the console,
WeChat faked by the same local server the tests use. Exit status is schemathesis's.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from kit.auth import JwtKeys, Role
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from tests.mobile.fakes import FakeUpstreams
from tests.residents.factories import resident_with_id

ROOT = Path(__file__).resolve().parents[2]
KEY = "fuzz-secret-key-0123456789abcdef"


def main() -> int:
    examples = sys.argv[1] if len(sys.argv) > 1 else "50"
    tmp = Path(tempfile.mkdtemp(prefix="tph-fuzz-"))
    pg = EmbeddedPostgres(tmp / "pg", database="postgres")
    pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    db_url = f"postgresql://postgres@/fuzz?host={pg.data_dir}"
    rid = str(uuid.uuid4())

    async def prepare() -> None:
        admin = await asyncpg.connect(pg.admin_url())
        await admin.execute('CREATE DATABASE "fuzz"')
        await admin.close()
        conn = await asyncpg.connect(db_url)
        await migrate(conn)
        await apply_seeds(conn)
        await resident_with_id(conn, rid)
        await conn.close()

    fake = FakeUpstreams().start()
    server = None
    try:
        asyncio.run(prepare())
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_AUTH_JWT_KEYS": f"fz:{KEY}",
            "TANPUHUI_HTTP_PORT": str(port),
            "TANPUHUI_HTTP_WORKERS": "1",
            "TANPUHUI_LOG_LEVEL": "ERROR",
            "TANPUHUI_WECHAT_APP_ID": "wx-test-app",
            "TANPUHUI_WECHAT_APP_SECRET": "wx-test-secret",
            "TANPUHUI_WECHAT_CODE2SESSION_URL": fake.url + "/sns/jscode2session",
        }
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "tanpuhui"), "serve"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        token = JwtKeys([("fz", KEY)]).issue(rid, Role.RESIDENT, 3600, extra={"typ": "access"})
        cmd = [
            str(Path(sys.executable).parent / "schemathesis"),
            "run",
            str(ROOT / "mobile_api_spec" / "openapi.json"),
            "--url",
            f"http://127.0.0.1:{port}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            examples,
            "-H",
            f"Authorization: Bearer {token}",
        ]
        print("$", " ".join(cmd[:-1]), "'Authorization: Bearer <resident token>'", flush=True)
        return subprocess.run(cmd, check=False).returncode
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        fake.stop()
        rd.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
