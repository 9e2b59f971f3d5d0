"""The schemathesis run against the served mobile API, as part of every test run: every operation
of the committed openapi.json, fuzzed with a valid resident token, never answers 5xx. (The same
script takes a larger example count for a deeper run; see tests/mobile/fuzz_mobile.py.)"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_no_server_error():
    done = subprocess.run(
        [sys.executable, "-m", "tests.mobile.fuzz_mobile", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "generated" in done.stdout
    assert " failed" not in done.stdout.split("Test cases:")[-1].splitlines()[1]
