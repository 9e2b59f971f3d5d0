"""The commands a new user types, through the real CLI: without DATABASE_URL they find the
embedded store of TANPUHUI_EMBEDDED_DATA_DIR as `tanpuhui dev` does, each has --help, and
`tanpuhui settings` shows the values in effect with secrets masked."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.embedded import EmbeddedPostgres
from server.settings import markdown_table
from tests.server.processes import ROOT, base_env, python, run, stop_postgres

DATA = ROOT / "tests" / "integrations" / "data"
TANPUHUI = python("-m", "server.cli")


@pytest.fixture(scope="module")
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tph-cmd-"))
    yield path
    stop_postgres(path / "pg")
    shutil.rmtree(path, ignore_errors=True)


def _running(pg_dir: Path) -> bool:
    from pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pg_dir)
    return info is not None and info.is_running()


def test_commands_use_the_embedded_store_without_database_url(data_dir):
    env = base_env(TANPUHUI_EMBEDDED_DATA_DIR=str(data_dir))

    first = run([*TANPUHUI, "audit"], env)
    assert first.returncode == 1
    assert first.stderr.strip().splitlines() == [
        f"tanpuhui: DATABASE_URL is unset and {data_dir / 'pg'} holds no embedded PostgreSQL "
        "yet: run `make run` (or `tanpuhui migrate`) first, or set DATABASE_URL"
    ]

    migrated = run([*TANPUHUI, "migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("migrations applied: 0001_foundation")
    assert not _running(data_dir / "pg")  # started for the command, stopped after it

    districts = run([*TANPUHUI, "import-districts", str(DATA / "districts.geojson")], env)
    assert districts.returncode == 0, districts.stderr
    assert "440303 罗湖区 (in 440300)" in districts.stdout
    assert "2 districts imported" in districts.stdout

    gtfs = run([*TANPUHUI, "import-gtfs", "metro", str(DATA / "gtfs")], env)
    assert gtfs.returncode == 0, gtfs.stderr
    assert "GTFS feed 'metro' replaced" in gtfs.stdout and "5 stops" in gtfs.stdout
    log = run([*TANPUHUI, "admin", "audit"], env)  # the importers are admin actions: audited
    assert log.returncode == 0, log.stderr
    entries = json.loads(log.stdout)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("gtfs.import", "metro"),
        ("districts.import", "440303,440304"),
    ]
    assert all(e["actor"].startswith("cli:") for e in entries)

    audit = run([*TANPUHUI, "audit"], env)
    assert audit.returncode == 0, audit.stderr
    assert "OK" in audit.stdout
    assert not _running(data_dir / "pg")


def test_a_command_attaches_to_a_running_embedded_store_and_leaves_it_running(data_dir):
    held = EmbeddedPostgres(data_dir / "pg")  # as `tanpuhui dev` holds it
    held.start()
    try:
        again = run([*TANPUHUI, "migrate"], base_env(TANPUHUI_EMBEDDED_DATA_DIR=str(data_dir)))
        assert again.returncode == 0, again.stderr
        assert "none (up to date)" in again.stdout  # the same database as the first test's
        assert held.alive()
    finally:
        held.stop()


@pytest.mark.parametrize(
    "argv",
    [
        [*TANPUHUI, "--help"],
        *[
            [*TANPUHUI, name, "--help"]
            for name in (
                "dev",
                "serve",
                "migrate",
                "worker",
                "beat",
                "audit",
                "settings",
                "import-districts",
                "import-gtfs",
            )
        ],
        python("-m", "scripts.operator_push", "--help"),
        python("-m", "scripts.operator_push", "events", "--help"),
    ],
)
def test_every_command_has_help(argv):
    proc = run(argv, base_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")


@pytest.mark.parametrize(
    "argv",
    [
        [*TANPUHUI, "import-districts"],
        [*TANPUHUI, "import-gtfs", "metro"],
        python("-m", "scripts.operator_push"),
        python("-m", "scripts.operator_push", "events", "demo-metro"),
    ],
)
def test_missing_arguments_are_a_usage_error_not_a_traceback(argv):
    proc = run(argv, base_env(), timeout=60)
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr


def _rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0].strip("`")] = [c.strip("`") for c in cells[1:]]
    return rows


def test_settings_shows_the_values_in_effect_with_secrets_masked():
    jwt = "k1:" + "j" * 40
    env = base_env(
        TANPUHUI_HTTP_PORT="8123",
        TANPUHUI_AUTH_JWT_KEYS=jwt,
        TANPUHUI_SMS_GATEWAY_TOKEN="gateway-token-value",
        TANPUHUI_PRIVACY_PHONE_HASH_KEY="phone-hash-key-value",
        DATABASE_URL="postgresql://app:db-password@db.example/tanpuhui",
    )
    proc = run([*TANPUHUI, "settings"], env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = _rows(proc.stdout)
    assert rows["TANPUHUI_HTTP_PORT"][:2] == ["8123", "environment"]
    assert rows["TANPUHUI_HTTP_HOST"][:2] == ["127.0.0.1", "default"]
    assert rows["DATABASE_URL"][0] == "postgresql://app:***@db.example/tanpuhui"
    assert rows["TANPUHUI_AUTH_JWT_KEYS"][0] == "***"
    assert rows["TANPUHUI_SMS_GATEWAY_TOKEN"][0] == "***"
    assert rows["TANPUHUI_PRIVACY_PHONE_HASH_KEY"][0] == "***"
    for secret in ("j" * 40, "gateway-token-value", "phone-hash-key-value", "db-password"):
        assert secret not in proc.stdout
    # the README's table (defaults) is still there, generated from the same source
    defaults = run([*TANPUHUI, "settings", "--defaults"], base_env(), timeout=60)
    assert defaults.stdout == markdown_table()


def test_settings_refuses_an_invalid_value_in_one_line():
    proc = run([*TANPUHUI, "settings"], base_env(TANPUHUI_HTTP_PORT="eighty"), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("tanpuhui: invalid setting TANPUHUI_HTTP_PORT:")
