"""The published contract: the committed openapi.json is exactly what the app generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from mobile_api_spec.generate import SPEC_PATH, build, render
from server.mobile.errors import CATALOGUE
from server.mobile.routes import PREFIX


def test_committed_spec_matches_the_app():
    committed = SPEC_PATH.read_text(encoding="utf-8")
    assert committed == render(), (
        "mobile_api_spec/openapi.json is stale: run `.venv/bin/python -m mobile_api_spec.generate`"
        " and review the diff (the mobile API is a contract: add fields with defaults, never change"
        " a type)."
    )


def test_generation_is_deterministic_across_processes():
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-m", "mobile_api_spec.generate", "--check"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_only_the_mobile_surface_with_examples_and_every_error_code():
    spec = build()
    assert spec["openapi"].startswith("3.1")
    assert spec["paths"] and all(p.startswith(PREFIX) for p in spec["paths"])
    assert set(spec["x-error-codes"]) == set(CATALOGUE)
    used: set[str] = set()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            responses = op["responses"]
            assert any(s.startswith("2") for s in responses), (method, path)
            assert "500" in responses, (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    content = response["content"]["application/problem+json"]
                    assert content["examples"], (method, path, status)
                    for example in content["examples"].values():
                        assert example["value"]["status"] == int(status)
                        used.add(example["value"]["code"])
            if op.get("security"):
                assert "401" in responses and "403" in responses, (method, path)
    # Every code in the catalogue is answered by some operation (the foundation's generic
    # HTTP codes excepted: any route can meet them).
    generic = {"bad_request", "method_not_allowed", "payload_too_large", "unsupported_media_type"}
    assert set(CATALOGUE) - generic <= used, set(CATALOGUE) - generic - used
    json.dumps(spec)
