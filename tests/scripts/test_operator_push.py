"""scripts.operator_push, the README's operator example, run for real against a running API
(`tanpuhui serve` on a free port, the test stores): it follows TANPUHUI_HTTP_PORT, its exit
status says whether the API accepted the request, and it writes nothing into the checkout."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.processes import (
    ROOT,
    api,
    base_env,
    free_port,
    port_answers,
    python,
    run,
    store_env,
)

PUSH = python("-m", "scripts.operator_push")


@pytest.fixture(scope="module")
def port(settings) -> Iterator[int]:
    port = free_port()
    with api(settings, port) as a:
        a.wait_for(lambda: port_answers(port), "the API listening")
        yield port


def _setup(env: dict[str, str]) -> tuple[str, str, Path, str]:
    proc = run([*PUSH, "setup"], env)
    assert proc.returncode == 0, proc.stderr
    m = re.search(r"operator demo-metro, key (\S+), secret (\S+)", proc.stdout)
    assert m, proc.stdout
    key_id, secret = m.groups()
    wrote = re.search(r"wrote (\S+) \(record \S+\)", proc.stdout)
    assert wrote, proc.stdout
    batch = Path(wrote.group(1))
    command = proc.stdout.strip().splitlines()[-1].strip()
    assert command == (
        f".venv/bin/python -m scripts.operator_push events demo-metro {key_id} {secret} {batch}"
    )
    return key_id, secret, batch, proc.stdout


def test_the_readme_example_against_a_running_api(settings, port):
    data_dir = Path(tempfile.mkdtemp(prefix="tph-push-"))
    env = store_env(
        settings, TANPUHUI_HTTP_PORT=str(port), TANPUHUI_EMBEDDED_DATA_DIR=str(data_dir)
    )
    key_id, secret, batch, _ = _setup(env)
    assert batch.parent == data_dir / "demo" and batch.exists()
    assert not (ROOT / "batch.json").exists()

    sent = run([*PUSH, "events", "demo-metro", key_id, secret, str(batch)], env)
    assert sent.returncode == 0, sent.stderr
    answer = json.loads(sent.stdout)
    assert (answer["accepted"], answer["rejected"]) == (1, 0), answer
    assert answer["results"][0]["status"] == "accepted"
    assert answer["results"][0]["points"] > 0

    again = run([*PUSH, "events", "demo-metro", key_id, secret, str(batch)], env)
    assert again.returncode == 0
    assert json.loads(again.stdout)["results"][0]["status"] == "duplicate"

    # a second setup is a new resident with a record id of its own: credited too
    key2, secret2, batch2, _ = _setup(env)
    assert batch2 == batch
    second = run([*PUSH, "events", "demo-metro", key2, secret2, str(batch2)], env)
    assert json.loads(second.stdout)["results"][0]["status"] == "accepted", second.stdout


def test_an_error_answer_exits_1(settings, port):
    env = store_env(settings, TANPUHUI_HTTP_PORT=str(port))
    body = Path(tempfile.mkdtemp(prefix="tph-push-")) / "batch.json"
    body.write_text('{"events": []}')
    proc = run([*PUSH, "events", "demo-metro", "k-none", "wrong-secret", str(body)], env)
    assert proc.returncode == 1
    assert proc.stderr.startswith("HTTP 401: ")
    assert json.loads(proc.stderr.removeprefix("HTTP 401: "))["code"].startswith("signature")


def test_an_api_that_does_not_answer_is_one_line_and_exit_1(settings):
    env = store_env(settings, TANPUHUI_HTTP_PORT=str(free_port()))
    proc = run([*PUSH, "get", "demo-metro", "k1", "s", "/api/operators/v1/files/x"], env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the API at http://127.0.0.1:" in lines[0]
    assert "Traceback" not in proc.stderr


def test_help_exits_0_and_names_no_fixed_key():
    proc = run([*PUSH, "--help"], base_env())
    assert proc.returncode == 0
    assert " k1 " not in proc.stdout and "<key id>" in proc.stdout
