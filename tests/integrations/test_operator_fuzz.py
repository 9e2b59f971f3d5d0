"""The schemathesis run against the served, signed operator API, as part of every test run: every
operation, fuzzed with each request signed by a registered operator, never answers 5xx, and the
signed batches are decoded (not all refused at the signature). A deeper run takes a larger
example count; see tests/integrations/fuzz_operators.py."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_schemathesis_finds_no_server_error_in_the_signed_operator_api():
    done = subprocess.run(
        [sys.executable, "-m", "tests.integrations.fuzz_operators", "30"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "generated" in done.stdout
    assert " failed" not in done.stdout.split("Test cases:")[-1].splitlines()[1]
    signed = [line for line in done.stdout.splitlines() if line.startswith("signed: ")]
    assert signed and not signed[0].startswith("signed: 0 "), signed
