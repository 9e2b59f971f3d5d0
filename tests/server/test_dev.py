"""`tanpuhui dev` (what `make run` runs), for real: a second run on the same checkout or port is
refused before anything starts, and a child that dies (the embedded Redis or PostgreSQL
included) stops everything, saying which."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest

from tests.server.processes import Process, base_env, free_port, python, stop_postgres

BANNER = "Ctrl-C stops everything"


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tph-dev-"))
    yield path
    stop_postgres(path / "pg")
    shutil.rmtree(path, ignore_errors=True)


def dev(data_dir: Path, port: int) -> Process:
    env = base_env(TANPUHUI_EMBEDDED_DATA_DIR=str(data_dir), TANPUHUI_HTTP_PORT=str(port))
    return Process(python("-m", "server.cli", "dev"), env)


def _started(p: Process) -> bool:
    return BANNER in p.stdout()


def _descendant(p: Process, name: str) -> psutil.Process:
    found = [c for c in psutil.Process(p.pid).children(recursive=True) if c.name() == name]
    assert found, f"no {name} under dev"
    return found[0]


def test_a_second_run_is_refused_and_a_dead_redis_stops_everything(data_dir):
    port = free_port()
    with dev(data_dir, port) as first:
        first.wait_for(lambda: _started(first), "the banner", timeout=180)

        other_dir = Path(tempfile.mkdtemp(prefix="tph-dev-other-"))
        for second, expected in (
            (dev(data_dir, free_port()), "another `tanpuhui dev` (pid "),
            (dev(other_dir, port), f"port {port} on 127.0.0.1 is already in use"),
        ):
            with second:
                assert second.wait(60) == 1
                lines = second.stderr().strip().splitlines()
                assert len(lines) == 1, second.stderr()
                assert lines[0].startswith("tanpuhui: dev: ") and expected in lines[0]
                assert BANNER not in second.stdout()
        assert not any(other_dir.iterdir())  # nothing was started, not even a file written
        shutil.rmtree(other_dir, ignore_errors=True)
        assert first.proc.poll() is None  # the first run is untouched

        _descendant(first, "redis-server").kill()
        assert first.wait(60) == 1
    assert "tanpuhui dev: the embedded Redis exited" in first.stderr()
    assert "stopping everything" in first.stderr()


def test_a_dead_postgresql_stops_everything(data_dir):
    from pgserver.utils import PostmasterInfo

    with dev(data_dir, free_port()) as run:
        run.wait_for(lambda: _started(run), "the banner", timeout=180)
        info = PostmasterInfo.read_from_pgdata(data_dir / "pg")
        assert info is not None and info.pid
        os.kill(info.pid, signal.SIGINT)  # PostgreSQL's fast shutdown: it goes away
        assert run.wait(60) == 1
    assert "tanpuhui dev: the embedded PostgreSQL stopped; stopping everything" in run.stderr()
