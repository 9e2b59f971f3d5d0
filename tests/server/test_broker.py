"""Tasks go to the project's broker and nowhere else: through the real stack (the API process,
a real Celery worker, Redis as the broker), and refused where the broker is not the configured
one. No test here ever names Celery's default broker port: the refusals are checked with an
address where nothing listens."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from kit.auth import sign_request
from server.app import create_app
from server.settings import Settings, SettingsError
from server.worker import broker_url, create_celery
from tests.behaviours.factories import SECRET, linked, metro, now, operator
from tests.server.processes import api, free_port, port_answers, python, run, store_env, worker

# A broker address where nothing listens: what a process would use if it fell back elsewhere.
NOWHERE = "amqp://guest:guest@127.0.0.1:1//"


def _signed(method: str, path: str, body: bytes = b"") -> dict[str, str]:
    return sign_request(SECRET, method, path, body, operator_id="metro", key_id="k1")


async def test_an_uploaded_file_is_done_by_a_real_worker_without_the_sweep(settings, pool):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    start = now() - timedelta(hours=5)
    ndjson = b"\n".join(
        msgspec.json.encode(metro(subject, f"w{i}", start=start + timedelta(hours=i)))
        for i in range(3)
    )
    port = free_port()
    # No beat runs here, so the 5-minute sweep (integrations.resume_files) cannot be what
    # processes the file: only the message the API sends after its commit can.
    with worker(settings) as w, api(settings, port) as a:
        a.wait_for(lambda: port_answers(port), "the API listening")
        base = f"http://127.0.0.1:{port}"
        path = "/api/operators/v1/files?format=ndjson"
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            headers = {**_signed("POST", path, ndjson), "Content-Type": "application/x-ndjson"}
            r = await http.post(path, content=ndjson, headers=headers)
            assert r.status_code == 202, r.text
            status_path = f"/api/operators/v1/files/{r.json()['id']}"
            status: dict[str, object] = {}
            for _ in range(600):
                status = (await http.get(status_path, headers=_signed("GET", status_path))).json()
                if status["status"] in ("done", "failed") or w.proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
        assert (status["status"], status["accepted"], status["rejected"]) == ("done", 3, 0), (
            status,
            w.stderr()[-3000:],
        )
        # dispatched to ingest.file_workers (2) processes, each taking the chunks free then
        for _ in range(100):
            tasks = set(re.findall(r"integrations\.process_file\[([0-9a-f-]+)\]", w.stderr()))
            if len(tasks) >= settings.ingest.file_workers:
                break
            await asyncio.sleep(0.1)
        assert len(tasks) == settings.ingest.file_workers == 2, w.stderr()[-3000:]


def test_serve_refuses_to_start_when_celery_would_use_another_broker(settings):
    port = free_port()
    with api(settings, port, CELERY_BROKER_URL=NOWHERE) as a:
        status = a.wait(60)
        assert not port_answers(port)
    assert status == 2
    lines = a.stderr().strip().splitlines()
    assert len(lines) == 1, a.stderr()
    assert lines[0].startswith("tanpuhui: invalid setting CELERY_BROKER_URL:")
    assert "guest:***@127.0.0.1:1" in lines[0]  # the other broker, its password masked


async def test_the_app_does_not_start_when_its_broker_cannot_be_the_configured_one(
    settings, monkeypatch
):
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", NOWHERE)
    with pytest.raises(ExceptionGroup) as info:  # the test client's task group wraps it
        async with AsyncTestClient(app=create_app(settings)):
            pass
    refusals = [e for e in _flatten(info.value) if isinstance(e, SettingsError)]
    assert [e.variable for e in refusals] == ["CELERY_BROKER_WRITE_URL"]
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL")
    without_broker = settings.with_urls(settings.database.url, None)
    with pytest.raises(SettingsError) as refused:
        create_celery(without_broker)
    assert refused.value.variable == "REDIS_URL"


def _flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [e for inner in exc.exceptions for e in _flatten(inner)]
    return [exc]


def test_the_broker_is_the_redis_url_or_the_broker_setting(settings, monkeypatch):
    redis_url = "redis://127.0.0.1:6390/3"
    assert broker_url(settings.with_urls(None, redis_url)) == redis_url
    explicit = Settings.from_env({"TANPUHUI_CELERY_BROKER_URL": "redis://127.0.0.1:6391/0"})
    assert broker_url(explicit) == "redis://127.0.0.1:6391/0"
    # Celery's own variable naming the same broker changes nothing; another one is refused.
    monkeypatch.setenv("CELERY_BROKER_URL", redis_url)
    assert broker_url(settings.with_urls(None, redis_url)) == redis_url
    monkeypatch.delenv("CELERY_BROKER_URL")
    app = create_celery(settings)
    assert app.conf.broker_write_url == broker_url(settings)


# A process that never built the project's Celery app: sending a task must fail at once, with
# the reason, instead of going to Celery's default broker. CELERY_BROKER_URL points Celery's
# fallback at an address where nothing listens, so even a regression never reaches a real one.
_UNCONFIGURED = """
import asyncio, sys
from behaviours.tasks import process_file
from kit.tasks import BrokerNotConfigured, enqueue_after_commit

try:
    process_file.delay("00000000-0000-0000-0000-000000000000")
except BrokerNotConfigured as exc:
    print("delay refused:", exc)
else:
    sys.exit("delay was sent")

class FakeTx:
    def after_commit(self, callback):
        sys.exit("enqueue registered a send")

try:
    enqueue_after_commit(FakeTx(), process_file, "x")
except BrokerNotConfigured:
    print("enqueue refused")
"""


def test_a_process_without_the_project_app_cannot_send_tasks(settings):
    env = store_env(settings, CELERY_BROKER_URL=NOWHERE)
    proc = run(python("-c", _UNCONFIGURED), env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "delay refused: Celery is not configured in this process" in proc.stdout
    assert "enqueue refused" in proc.stdout
