"""Running a schemathesis harness (tests/*/fuzz_*.py) as part of the test run: one subprocess,
its exit status and its summary checked the same way for every surface."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_fuzz(module: str, examples: int) -> str:
    """Run ``python -m module examples``; assert it passed with no failed case; its output."""
    done = subprocess.run(
        [sys.executable, "-m", module, str(examples)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "generated" in done.stdout
    assert " failed" not in done.stdout.split("Test cases:")[-1].splitlines()[1]
    return done.stdout
