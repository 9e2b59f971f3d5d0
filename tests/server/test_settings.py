import subprocess
import sys

import pytest

from server.settings import Settings, SettingsError, describe


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DATABASE_URL": "notaurl"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"TANPUHUI_HTTP_PORT": "eighty"}, "TANPUHUI_HTTP_PORT"),
        ({"TANPUHUI_HTTP_PORT": "70000"}, "TANPUHUI_HTTP_PORT"),
        ({"TANPUHUI_LOG_LEVEL": "LOUD"}, "TANPUHUI_LOG_LEVEL"),
        ({"TANPUHUI_AUTH_JWT_KEYS": "nokid"}, "TANPUHUI_AUTH_JWT_KEYS"),
        ({"TANPUHUI_ENV": "prod"}, "TANPUHUI_AUTH_JWT_KEYS"),
        (
            {
                "TANPUHUI_ENV": "prod",
                "TANPUHUI_AUTH_JWT_KEYS": "k1:" + "x" * 32,
                "TANPUHUI_PRIVACY_PHONE_HASH_KEY": "y" * 32,
            },
            "TANPUHUI_SMS_GATEWAY",
        ),
        ({"TANPUHUI_REGION_CODE": "44"}, "TANPUHUI_REGION_CODE"),
        (
            {"TANPUHUI_DATABASE_POOL_MIN": "9", "TANPUHUI_DATABASE_POOL_MAX": "3"},
            "TANPUHUI_DATABASE_POOL_MIN",
        ),
    ],
)
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert info.value.variable == variable
    assert variable in str(info.value)


def test_good_settings_are_typed():
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://u@h/db",
            "TANPUHUI_HTTP_PORT": "9000",
            "TANPUHUI_HTTP_DEBUG": "true",
            "TANPUHUI_CELERY_ALWAYS_EAGER": "1",
        }
    )
    assert s.http.port == 9000
    assert s.http.debug is True
    assert s.celery.always_eager is True
    assert s.database.url == "postgresql://u@h/db"


def test_every_setting_is_documented_in_the_readme():
    with open("README.md", encoding="utf-8") as f:
        readme = f.read()
    for variable, _, description in describe():
        assert description, f"{variable} has no description"
        assert f"`{variable}`" in readme, f"{variable} missing from README's table"


def test_cli_stops_with_one_line_and_status_2():
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        env={"DATABASE_URL": "notaurl", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("tanpuhui: invalid setting DATABASE_URL:")


def test_jwt_secrets_shorter_than_32_bytes_are_refused():
    with pytest.raises(SettingsError, match="32 bytes"):
        Settings.from_env({"TANPUHUI_AUTH_JWT_KEYS": "k1:" + "x" * 31})
    assert Settings.from_env({"TANPUHUI_AUTH_JWT_KEYS": "k1:" + "x" * 32}).auth.jwt_keys
