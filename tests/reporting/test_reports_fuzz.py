"""The schemathesis run against the served government reports, as part of every test run: every
operation under /api/gov/v1/reports, fuzzed with a gov_admin's token, never answers 5xx
(tests/reporting/fuzz_reports.py takes a larger example count for a deeper run)."""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error_in_the_reports_api():
    run_fuzz("tests.reporting.fuzz_reports", 10)
