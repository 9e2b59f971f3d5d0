"""Daily-file benchmark: one signed NDJSON file uploaded over HTTP, processed by a real Celery
worker chunk by chunk, its results streamed back; against the batch path on the same records'
shape in the same run.

    flock /tmp/tph-bench.lock .venv/bin/python bench/bench_file.py
    BENCH_LINES=1000000 BENCH_RESIDENTS=1000000 BENCH_BATCH_EVENTS=1000000 ...
    BENCH_FILE_STREAMS=3 ...   # chunks processed at once (default: ingest.file_streams)

Builds the synthetic city of bench/ingest_city.py (embedded PostgreSQL tuned as in
bench/bench_ingest.py, durability untouched), starts the API (uvicorn, BENCH_WORKERS processes)
and one Celery worker (`tanpuhui worker --concurrency BENCH_WORKER_PROCESSES`, default 2 as
`make run` starts it; the upload dispatches the file to `ingest.file_workers` of them), then:

1. the batch path: half of BENCH_BATCH_EVENTS metro trips (bench_ingest's shape: ~97 %
   linked residents, stops without a distance; ~3 % unknown subjects) in signed batches of
   5,000 over 1 connection (one sequential stream, as a file is);
2. the file path: BENCH_LINES other trips of the same shape (other residents) in one file,
   uploaded (one signed POST), processed by the worker; the status endpoint is polled every
   second, which gives the progress curve (lines done over time: the per-chunk cost must not
   grow with the position in the file), then the results are streamed and counted;
3. the batch path again, the other half over BENCH_CONCURRENCY connections (the ingestion
   benchmark's setting);
4. the ledger audit (`tanpuhui audit`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest
import msgspec
from bench_ingest import audit, free_port, push
from ingest_city import LINES, SECRET, STOPS_PER_LINE, build, stops_of_line
from stores import tune

from kit.auth import sign_request

FILE_LINES = int(os.environ.get("BENCH_LINES", "1000000"))
BATCH_EVENTS = int(os.environ.get("BENCH_BATCH_EVENTS", str(FILE_LINES)))
# A resident of its own for every record of both paths: each path does the same work (a
# resident's first trip), whichever runs first.
RESIDENTS = int(os.environ.get("BENCH_RESIDENTS", str(BATCH_EVENTS + FILE_LINES)))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
# The worker's processes (`tanpuhui worker --concurrency`, 2 as `make run` starts it); the
# upload dispatches the file to ingest.file_workers of them.
WORKER_PROCESSES = int(os.environ.get("BENCH_WORKER_PROCESSES", "2"))
# Chunks of the file processed at once (ingest.file_streams); unset: the setting's default.
STREAMS = os.environ.get("BENCH_FILE_STREAMS", "")
BATCH = 5000
FILES = "/api/operators/v1/files"


def trips(n: int, first: int, prefix: str, start: datetime, seed: int) -> list[dict[str, Any]]:
    """``n`` metro trips (resident ``(first + i) % RESIDENTS``, a time slot of its own)."""
    rnd = random.Random(seed)
    lines = [stops_of_line(k) for k in range(LINES)]
    out = []
    for i in range(n):
        r = (first + i) % RESIDENTS
        at = start + timedelta(hours=3 * ((first + i) // RESIDENTS), seconds=r % 3600)
        line = lines[rnd.randrange(LINES)]
        a = rnd.randrange(STOPS_PER_LINE - 3)
        b = a + rnd.randrange(2, min(12, STOPS_PER_LINE - a))
        out.append(
            {
                "type": "transit_trip",
                "record_id": f"{prefix}{i}",
                "subject": f"s{r}" if rnd.random() > 0.03 else f"nobody{i}",
                "mode": "metro",
                "boarded_at": at.isoformat(),
                "alighted_at": (at + timedelta(minutes=3 * (b - a) + 2)).isoformat(),
                "boarding_stop": line[a][0],
                "alighting_stop": line[b][0],
            }
        )
    return out


async def request(
    port: int, method: str, path: str, body: bytes = b"", ctype: str = "application/x-ndjson"
) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    try:
        if method == "POST":
            return await post_file(reader, writer, path, body, ctype)
        headers = sign_request(SECRET, method, path, b"", operator_id="metro", key_id="k1")
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write(head.encode() + b"\r\n")
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        length = None
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await reader.readexactly(length or 0)
    finally:
        writer.close()


async def post_file(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    path: str,
    body: bytes,
    ctype: str,
) -> tuple[int, bytes]:
    headers = sign_request(SECRET, "POST", path, body, operator_id="metro", key_id="k1")
    head = (
        f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    writer.write(head.encode())
    view = memoryview(body)
    for i in range(0, len(body), 1 << 20):
        writer.write(view[i : i + (1 << 20)])
        await writer.drain()
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def stream_results(port: int, file_id: str) -> tuple[int, int, float]:
    """(lines, pieces read, seconds): the results read as they arrive (chunked encoding)."""
    path = f"{FILES}/{file_id}/results"
    headers = sign_request(SECRET, "GET", path, b"", operator_id="metro", key_id="k1")
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    head = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept-Language: en\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    writer.write(head.encode() + b"\r\n")
    await writer.drain()
    assert int((await reader.readline()).split()[1]) == 200
    while await reader.readline() not in (b"\r\n", b""):
        pass
    lines = pieces = 0
    while True:  # chunked transfer encoding
        size = int((await reader.readline()).strip(), 16)
        if size == 0:
            break
        data = await reader.readexactly(size + 2)
        lines += data.count(b"\n") - 1
        pieces += 1
    writer.close()
    return lines, pieces, time.perf_counter() - t0


async def file_run(port: int, body: bytes) -> dict[str, Any]:
    path = f"{FILES}?format=ndjson"
    t0 = time.perf_counter()
    status, answer = await request(port, "POST", path, body)
    uploaded = time.perf_counter() - t0
    assert status == 202, answer[:500]
    file_id = msgspec.json.decode(answer)["id"]
    samples: list[tuple[float, int]] = [(uploaded, 0)]
    state: dict[str, Any] = {}
    while True:
        await asyncio.sleep(1.0)
        code, raw = await request(port, "GET", f"{FILES}/{file_id}")
        assert code == 200, raw[:300]
        state = msgspec.json.decode(raw)
        samples.append((time.perf_counter() - t0, state["records"]))
        if state["status"] in ("done", "failed"):
            break
    total = time.perf_counter() - t0
    lines, pieces, streamed = await stream_results(port, file_id)
    return {
        "upload_s": uploaded,
        "total_s": total,
        "samples": samples,
        "state": state,
        "streamed": (lines, pieces, streamed),
    }


def tenths(samples: list[tuple[float, int]], total: int) -> list[float]:
    """Lines/s over each tenth of the file (interpolated from the progress samples)."""

    def when(lines: float) -> float:
        for (t0, n0), (t1, n1) in itertools.pairwise(samples):
            if n1 >= lines:
                return t0 + (t1 - t0) * ((lines - n0) / (n1 - n0) if n1 > n0 else 1)
        return samples[-1][0]

    out = []
    for k in range(10):
        a, b = when(total * k / 10), when(total * (k + 1) / 10)
        out.append(total / 10 / (b - a) if b > a else float("nan"))
    return out


async def prepare(db_url: str) -> None:
    from kit.db import create_pool
    from server.migrate import migrate
    from server.seeds import apply_seeds

    pool = await create_pool(db_url, min_size=1, max_size=4, command_timeout=3600)
    async with pool.acquire() as conn:
        await migrate(conn)
        await apply_seeds(conn)
    t0 = time.perf_counter()
    await build(pool, RESIDENTS)
    print(f"city built: {RESIDENTS:,} residents in {time.perf_counter() - t0:.1f} s", flush=True)
    await pool.close()


def start_processes(env: dict[str, str], port: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
    api = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "server.app:create_app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--no-access-log",
            "--log-level",
            "warning",
            "--loop",
            "uvloop",
            "--http",
            "server.http_limits:BoundedHttpToolsProtocol",
        ],
        env=env,
    )
    log = open(tmp / "worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker", "--concurrency", str(WORKER_PROCESSES)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return [api, worker]


def peak_rss_mb(pid: int) -> list[float]:
    """Peak resident memory (VmHWM, MB) of each child of ``pid`` (the API's workers)."""
    out: list[float] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        for line in Path(f"/proc/{child}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out.append(int(line.split()[1]) / 1024)
    return out


def main() -> int:
    from server.embedded import EmbeddedPostgres, EmbeddedRedis

    tmp = Path(tempfile.mkdtemp(prefix="tph-bench-file-"))
    pg = EmbeddedPostgres(tmp / "pg", database="bench")
    db_url = pg.start()
    asyncio.run(tune(db_url))
    pg.stop()
    db_url = pg.start()
    rd = EmbeddedRedis(tmp / "redis", persist=False)
    redis_url = rd.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(prepare(db_url))
        now = datetime.now(UTC)
        enc = msgspec.json.Encoder()
        batch_trips = trips(BATCH_EVENTS, 0, "m", now - timedelta(days=5, hours=1), 1)
        batches = [
            ("metro", enc.encode({"events": batch_trips[i : i + BATCH]}))
            for i in range(0, len(batch_trips), BATCH)
        ]
        half = len(batches) // 2
        body = b"\n".join(
            enc.encode(t)
            for t in trips(FILE_LINES, BATCH_EVENTS, "f", now - timedelta(days=5, hours=1), 2)
        )
        print(
            f"{BATCH_EVENTS:,} batch events and a {FILE_LINES:,}-line file "
            f"({len(body) / 1e6:.0f} MB) pre-encoded",
            flush=True,
        )
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TANPUHUI_", "CELERY_"))},
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "TANPUHUI_LOG_LEVEL": "WARNING",
            "TANPUHUI_HTTP_MAX_BODY_BYTES": str(64 * 1024 * 1024),
            "TANPUHUI_INGEST_MAX_FILE_BYTES": str(max(len(body) + 1024, 1 << 28)),
        }
        if STREAMS:
            env["TANPUHUI_INGEST_FILE_STREAMS"] = STREAMS
        procs = start_processes(env, port, tmp)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        asyncio.run(push([port], bench_ingest.make_warmup()))

        rates = {}

        def batch_run(label: str, conns: int, part: list[tuple[str, bytes]]) -> None:
            bench_ingest.CONCURRENCY = conns
            result = asyncio.run(push([port], part))
            n = sum(result["verdicts"].values())
            rates[label] = n / result["elapsed"]
            print(f"{label}: {n:,} events in {result['elapsed']:.1f} s = {rates[label]:,.0f}/s")
            if result["errors"]:
                print(f"  HTTP errors: {dict(result['errors'])}")

        # The file's run between the batch path's two (the machine's load drifts).
        batch_run("batch path, 1 connection", 1, batches[:half])
        before = peak_rss_mb(procs[0].pid)
        run = asyncio.run(file_run(port, body))
        after = peak_rss_mb(procs[0].pid)
        batch_run(f"batch path, {CONCURRENCY} connections", CONCURRENCY, batches[half:])
        state = run["state"]
        lines, pieces, streamed = run["streamed"]
        processing = run["total_s"] - run["upload_s"]
        print(
            f"\nfile: {FILE_LINES:,} lines ({len(body) / 1e6:.0f} MB), status {state['status']}, "
            f"{state['chunks']} chunks; accepted {state['accepted']:,}, "
            f"rejected {state['rejected']:,}, duplicates {state['duplicates']:,}"
        )
        print(f"upload (POST, spooled, cut and stored): {run['upload_s']:.1f} s")
        print(
            "API workers' peak RSS before / after the upload: "
            + ", ".join(f"{a:.0f} / {b:.0f} MB" for a, b in zip(before, after, strict=False))
        )
        print(
            f"processing: {processing:.1f} s = {state['records'] / processing:,.0f} lines/s; "
            f"upload to done {run['total_s']:.1f} s = {state['records'] / run['total_s']:,.0f} "
            "lines/s"
        )
        per_tenth = tenths(run["samples"][1:], state["records"])
        print("lines/s per tenth of the file: " + ", ".join(f"{x:,.0f}" for x in per_tenth))
        print(f"results streamed: {lines:,} lines in {pieces} pieces, {streamed:.1f} s")
        for label, rate in rates.items():
            print(f"file processing / {label}: {state['records'] / processing / rate:.2f}")
        status = asyncio.run(audit(db_url))
        print(f"tanpuhui audit: {'passed' if status == 0 else 'FAILED'}")
        ok = state["status"] == "done" and lines == state["records"] == FILE_LINES
        return status if ok else 1
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        rd.stop()
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
