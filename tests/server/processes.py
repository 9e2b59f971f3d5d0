"""Real processes for the tests that need them: the API (`tanpuhui serve`), a Celery worker,
beat, `tanpuhui dev`, the CLI. Output goes to files (never a pipe that could fill up); every
process gets a session of its own and is stopped by its group."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from server.settings import Settings
from tests.conftest import JWT_KEYS

ROOT = Path(__file__).resolve().parents[2]

# Nothing of the caller's own configuration leaks into a child: only what the test gives it.
_DROPPED_PREFIXES = ("TANPUHUI_", "CELERY_", "DATABASE_URL", "REDIS_URL", "TEST_")


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env.update(extra)
    return env


def store_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a process on the test stores (as the `settings` fixture reads them)."""
    assert settings.database.url and settings.redis.url
    return base_env(
        DATABASE_URL=settings.database.url,
        REDIS_URL=settings.redis.url,
        TANPUHUI_ENV="test",
        TANPUHUI_AUTH_JWT_KEYS=JWT_KEYS,
        **extra,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process whose stdout and stderr go to files."""

    def __init__(self, argv: list[str], env: Mapping[str, str], cwd: Path = ROOT) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tph-proc-"))
        self._out: IO[bytes] = open(self.dir / "stdout", "wb")  # noqa: SIM115
        self._err: IO[bytes] = open(self.dir / "stderr", "wb")  # noqa: SIM115
        self._kept: tuple[str, str] | None = None  # the output, once stopped (files removed)
        self.proc = subprocess.Popen(
            argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self._kept[0] if self._kept else self._read("stdout")

    def stderr(self) -> str:
        return self._kept[1] if self._kept else self._read("stderr")

    def _read(self, name: str) -> str:
        return (self.dir / name).read_text(errors="replace")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"exited with {self.proc.returncode} before {what}:\n{self.stderr()[-4000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} after {timeout} s:\n{self.stderr()[-4000:]}")
            time.sleep(0.1)

    def wait(self, timeout: float = 60.0) -> int:
        """The exit status; an AssertionError (and the process stopped) if it keeps running."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            output = f"{self.stdout()[-2000:]}\n{self.stderr()[-2000:]}"
            raise AssertionError(f"still running after {timeout} s:\n{output}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._kept is None:
            self._out.close()
            self._err.close()
            self._kept = (self._read("stdout"), self._read("stderr"))
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def api(settings: Settings, port: int, **extra: str) -> Process:
    """`tanpuhui serve` (one worker process) on the test stores, listening on ``port``."""
    env = store_env(settings, TANPUHUI_HTTP_PORT=str(port), TANPUHUI_HTTP_WORKERS="1", **extra)
    return Process(python("-m", "server.cli", "serve"), env)


def worker(settings: Settings, **extra: str) -> Process:
    """A real Celery worker (`tanpuhui worker`) on the test stores; never eager."""
    env = store_env(settings, **extra)
    return Process(python("-m", "server.cli", "worker", "--concurrency", "1"), env)


def run(
    argv: list[str], env: Mapping[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        env=dict(env),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_postgres(pg_dir: Path) -> None:
    """Stop an embedded PostgreSQL a test left running in ``pg_dir`` (fast shutdown)."""
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pg_dir) if pg_dir.exists() else None
    if info is not None and info.is_running() and info.process is not None:
        info.process.send_signal(signal.SIGINT)
        with contextlib.suppress(Exception):
            info.process.wait(30)
