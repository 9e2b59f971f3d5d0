"""The schemathesis run against the served public API, as part of every test run: every public
operation (projects, certificates, the journal's blocks and checkpoint, enterprise reports),
fuzzed without login, never answers 5xx (tests/fuzz_public.py takes a larger example count for
a deeper run)."""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error():
    out = run_fuzz("tests.fuzz_public", 20)
    # The harness's spec has every public path: it checked the seeded certificate was sealed.
    assert "Tested: " in out
