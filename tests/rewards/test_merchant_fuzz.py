"""The schemathesis run against the served, signed merchant API, as part of every test run: every
operation, fuzzed with each request signed by a registered merchant, never answers 5xx, and the
signed requests are decoded (not all refused at the signature). See tests/rewards/fuzz_merchants.py
for a deeper run."""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error_in_the_signed_merchant_api():
    out = run_fuzz("tests.rewards.fuzz_merchants", 30)
    signed = [line for line in out.splitlines() if line.startswith("signed: ")]
    assert signed and not signed[0].startswith("signed: 0 "), signed
