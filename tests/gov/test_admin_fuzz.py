"""The schemathesis run against the served government administration API, as part of every
test run: every operation under /api/gov/v1/admin (and the sign-in), fuzzed with a valid
administrator's token, never answers 5xx (tests/gov/fuzz_gov_admin.py takes a larger example
count for a deeper run)."""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error_in_the_admin_api():
    out = run_fuzz("tests.gov.fuzz_gov_admin", 10)
    assert "/api/gov/v1/admin/operators" in out or "operations" in out
