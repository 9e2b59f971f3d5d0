"""The schemathesis run against the served enterprise API, as part of every test run: every
operation under /api/enterprise/v1 (and the public report check), fuzzed with a valid
enterprise administrator's token, never answers 5xx (tests/enterprises/fuzz_enterprise.py
takes a larger example count for a deeper run)."""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error_in_the_enterprise_api():
    run_fuzz("tests.enterprises.fuzz_enterprise", 10)
