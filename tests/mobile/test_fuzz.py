"""The schemathesis run against the served mobile API, as part of every test run: every operation
of the committed openapi.json, fuzzed with a valid resident token, never answers 5xx. (The same
script takes a larger example count for a deeper run; see tests/mobile/fuzz_mobile.py.)"""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error():
    run_fuzz("tests.mobile.fuzz_mobile", 10)
