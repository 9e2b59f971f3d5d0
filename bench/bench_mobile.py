"""Mobile API benchmark: GET /summary and GET /history with valid resident tokens, 32 connections.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_mobile.py

Starts an embedded PostgreSQL and Redis in a temporary directory (or uses ``BENCH_DATABASE_URL``
/ ``BENCH_REDIS_URL``: a fresh database is created there), migrates, seeds ``BENCH_RESIDENTS``
(1,000) residents in one district with ``BENCH_EVENTS`` (20) activities each through the
real pipeline (19 walks over six days and a step count; the daily cap refuses a few walks, so
history shows both verdicts), then serves the app with uvicorn (``BENCH_WORKERS`` = 2 processes, as
`tanpuhui serve`) and drives it with wrk (``-t2 -c32 -d BENCH_SECONDS`` = 15 s, ``--latency``),
each request with a token picked at random among the residents. Prints one line per endpoint.

Then, unless ``BENCH_CPU=0``, the API's own cost per request, which other load on the machine
barely moves: the same requests made one at a time in this process straight into the ASGI app
(no network, uvloop), ``BENCH_CPU_REQUESTS`` (3,000) per endpoint, as CPU microseconds of this
process (PostgreSQL's and Redis's own time not included) and wall microseconds.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg
from shapely import box, to_wkb

from behaviours import service as behaviours
from behaviours.events import DailySteps, Point, Walk
from kit.auth import JwtKeys, Role
from kit.db import create_pool, transaction
from residents import service as residents_service
from server.app import ingest_policy
from server.embedded import EmbeddedPostgres, EmbeddedRedis
from server.migrate import migrate
from server.seeds import apply_seeds
from server.settings import Settings

JWT_KEYS = "bench:bench-secret-key-0123456789abcdef-0123"
ROOT = Path(__file__).resolve().parent.parent


def _env(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def seed(db_url: str, residents: int, events: int) -> list[str]:
    conn = await asyncpg.connect(db_url)
    try:
        await migrate(conn)
        await apply_seeds(conn)
        ids = await residents_service.create_residents(conn, ["440305"] * residents)
    finally:
        await conn.close()
    settings = Settings.from_env({"DATABASE_URL": db_url, "REDIS_URL": "redis://x/0"})
    policy = ingest_policy(settings)
    pool = await create_pool(db_url, min_size=1, max_size=4)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        # The walks' district: without imported districts, trips with coordinates are refused
        # (region_not_configured) and the figures would read rejected rows.
        area = bytes(to_wkb(box(113.9, 22.4, 114.2, 22.7)))
        async with transaction(pool) as tx:
            await behaviours.import_districts(tx, [("440305", "Nanshan", "440300", area)])
        for rid in ids:
            evs: list[Any] = []
            for j in range(events - 1):
                # Spread over the claim window (a few walks a day, under the daily cap). Record
                # ids are unique per resident: the app is one source, and a repeated record id
                # would be answered as a duplicate of another resident's walk.
                start = now - timedelta(days=j % 6, hours=1 + 2 * (j // 6))
                evs.append(
                    Walk(
                        record_id=f"{rid}:w{j}",
                        subject=rid,
                        started_at=start,
                        ended_at=start + timedelta(minutes=15),
                        start=Point(lat=22.54, lon=114.05),
                        end=Point(lat=22.55, lon=114.05),
                        distance_m=1200,
                    )
                )
            evs.append(
                DailySteps(
                    record_id=f"{rid}:s",
                    subject=rid,
                    day=(now - timedelta(days=1)).date(),
                    steps=8000,
                )
            )
            async with transaction(pool) as tx:
                await behaviours.ingest(tx, behaviours.app_source(rid), evs, policy=policy)
        async with pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE")
    finally:
        await pool.close()
    return ids


LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
math.randomseed(os.time())
request = function()
  local t = tokens[math.random(#tokens)]
  return wrk.format("GET", nil, {["Authorization"] = "Bearer " .. t})
end
"""


def wrk(url: str, tokens_file: Path, seconds: int) -> tuple[float, float, str]:
    script = tokens_file.with_suffix(".lua")
    script.write_text(LUA % tokens_file)
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_raw = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99_raw, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99_raw.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{non2xx.group(1)} failed answers:\n{out}")
    return rps, float(p99_raw.group(1)) * scale, " ".join(cmd)


async def _asgi_get(app: Any, path: str, token: str) -> None:
    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [200]:
        raise SystemExit(f"{path}: answered {statuses}")


async def cpu_per_request(env: dict[str, str], tokens: list[str], paths: list[str], n: int) -> None:
    from server.app import create_app

    app = create_app(Settings.from_env(env))
    async with app.lifespan():
        for path in paths:
            for i in range(300):  # warm-up
                await _asgi_get(app, path, tokens[i % len(tokens)])
            cpu, wall = time.process_time(), time.perf_counter()
            for i in range(n):
                await _asgi_get(app, path, tokens[i % len(tokens)])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{path}: {cpu / n * 1e6:.0f} us CPU, {wall / n * 1e6:.0f} us wall per request "
                "(serial, in process)"
            )


def main() -> int:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (Debian: apt-get install -y wrk)")
    residents, events = _env("BENCH_RESIDENTS", 1000), _env("BENCH_EVENTS", 20)
    seconds, workers = _env("BENCH_SECONDS", 15), _env("BENCH_WORKERS", 2)
    tmp = Path(tempfile.mkdtemp(prefix="tph-bench-mobile-"))
    pg = rd = None
    base = os.environ.get("BENCH_DATABASE_URL")
    if base:
        name = f"tph_bench_mobile_{os.getpid()}"
        admin = base
        db_url = urlunsplit(urlsplit(base)._replace(path="/" + name))
    else:
        pg = EmbeddedPostgres(tmp / "pg", database="postgres")
        pg.start()
        admin, name = pg.admin_url(), "tph_bench_mobile"
        db_url = f"postgresql://postgres@/{name}?host={pg.data_dir}"
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        rd = EmbeddedRedis(tmp / "redis", persist=False)
        redis_url = rd.start()

    async def create() -> None:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    server = None
    try:
        asyncio.run(create())
        t0 = time.perf_counter()
        ids = asyncio.run(seed(db_url, residents, events))
        print(
            f"seeded {residents} residents x {events} activities "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        keys = JwtKeys([("bench", JWT_KEYS.split(":", 1)[1])])
        tokens = tmp / "tokens.txt"
        tokens.write_text(
            "\n".join(
                keys.issue(r, Role.RESIDENT, 3600, extra={"typ": "access", "fam": "f"}) for r in ids
            )
            + "\n"
        )
        port = _free_port()
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_AUTH_JWT_KEYS": JWT_KEYS,
            "TANPUHUI_HTTP_PORT": str(port),
            "TANPUHUI_HTTP_WORKERS": str(workers),
            "TANPUHUI_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "tanpuhui"), "serve"],
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
        base_url = f"http://127.0.0.1:{port}"
        paths = ["/api/mobile/v1/summary", "/api/mobile/v1/history?limit=20"]
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0)
        for path in paths:
            wrk(base_url + path, tokens, 3)  # warm-up: connections, plans, the district board
            rps, p99, cmd = wrk(base_url + path, tokens, seconds)
            print(f"{path}: {rps:,.0f} req/s, p99 {p99:.1f} ms  ({cmd})")
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        server = None
        if _env("BENCH_CPU", 1):
            import uvloop

            n = _env("BENCH_CPU_REQUESTS", 3000)
            listed = tokens.read_text().split()
            uvloop.run(cpu_per_request(env, listed, paths, n))
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        if rd:
            rd.stop()
        if pg:
            pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
