"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=tests.integrations.fuzz_signing``): sign every request
as the operator named by ``FUZZ_OPERATOR`` / ``FUZZ_KEY_ID`` / ``FUZZ_SECRET``.

The signature covers the exact bytes and request target sent, so it is computed on the prepared
request (a ``requests`` auth), after schemathesis has serialised the generated case."""

from __future__ import annotations

import os
from typing import Any

import requests
import schemathesis

from kit.auth import sign_request


class OperatorSignature(requests.auth.AuthBase):
    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        raw = r.body or b""
        body = raw.encode() if isinstance(raw, str) else raw
        assert isinstance(body, bytes)  # schemathesis sends bytes or str, never a stream
        r.headers.update(
            sign_request(
                os.environ["FUZZ_SECRET"],
                str(r.method),
                str(r.path_url),
                body,
                operator_id=os.environ["FUZZ_OPERATOR"],
                key_id=os.environ["FUZZ_KEY_ID"],
            )
        )
        return r


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    kwargs["auth"] = OperatorSignature()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Record each answer's status (``FUZZ_STATUS_LOG``), so the run can show that signed
    requests got past the signature check, where their bodies are decoded."""
    log = os.environ.get("FUZZ_STATUS_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{case.method} {case.path} {response.status_code}\n")
