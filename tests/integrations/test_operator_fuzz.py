"""The schemathesis run against the served, signed operator API, as part of every test run: every
operation, fuzzed with each request signed by a registered operator, never answers 5xx, and the
signed batches are decoded (not all refused at the signature). A deeper run takes a larger
example count; see tests/integrations/fuzz_operators.py."""

from tests.fuzzing import run_fuzz


def test_schemathesis_finds_no_server_error_in_the_signed_operator_api():
    out = run_fuzz("tests.integrations.fuzz_operators", 30)
    signed = [line for line in out.splitlines() if line.startswith("signed: ")]
    assert signed and not signed[0].startswith("signed: 0 "), signed
