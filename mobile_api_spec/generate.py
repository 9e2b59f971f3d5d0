"""Generate ``mobile_api_spec/openapi.json`` from the app: only the mobile surface.

    .venv/bin/python -m mobile_api_spec.generate          # rewrite the committed file
    .venv/bin/python -m mobile_api_spec.generate --check  # exit 1 when it differs

The drift test (tests/mobile/test_openapi.py) fails whenever the committed file and the app
disagree, so a change to the contract is always a visible change to this file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from server.app import create_app
from server.mobile.commuting_routes import commuting_router
from server.mobile.donation_routes import donation_router
from server.mobile.errors import CATALOGUE
from server.mobile.rewards_routes import rewards_mobile_router
from server.mobile.routes import PREFIX, mobile_router
from server.settings import Settings

SPEC_PATH = Path(__file__).parent / "openapi.json"

DESCRIPTION = """\
居民的微信小程序或手机 App 所调用的接口：登录、数据来源、自行上报的活动、余额、历史记录和排行榜。\
登录流程、幂等、分页和错误见本文件旁的 README.zh-CN.md（中文）和 README.md（英文）。

每个错误都是 `application/problem+json`（RFC 9457），带一个稳定的机器可读 `code`；错误码表见 \
`x-error-codes`。数量是整数，单位写在字段名里（`reduction_g`、`points`）；时间是带时区偏移的 \
RFC 3339。每个操作的 summary 都是中英双语：“中文 · English”。

The API a resident's WeChat mini-program or phone app talks to: sign-in, data sources, \
self-reported activities, balances, history and rankings. See README.md (English) and \
README.zh-CN.md (Chinese) next to this file for the sign-in flow, idempotency, pagination and \
errors.

Every error is `application/problem+json` (RFC 9457) with a stable machine `code`; the table of \
codes is `x-error-codes`. Amounts are integers with their unit in the name (`reduction_g`, \
`points`); times are RFC 3339 with offset. Every operation's summary is bilingual: \
"中文 · English"."""


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def _strip_example_ids(node: Any) -> None:
    # Litestar keeps Example.id inside the example object; OpenAPI has no such field.
    if isinstance(node, dict):
        examples = node.get("examples")
        if isinstance(examples, dict):
            for example in examples.values():
                if isinstance(example, dict):
                    example.pop("id", None)
        for value in node.values():
            _strip_example_ids(value)
    elif isinstance(node, list):
        for value in node:
            _strip_example_ids(value)


def build() -> dict[str, Any]:
    # The mobile surface's routers (its routes' modules: one entry each); not every surface,
    # whose Structs of the same names would rename the contract's components.
    app = create_app(
        Settings(),
        surfaces=[mobile_router, donation_router, rewards_mobile_router, commuting_router],
    )
    full = app.openapi_schema.to_schema()
    paths = {p: v for p, v in full["paths"].items() if p.startswith(PREFIX)}
    schemas = full.get("components", {}).get("schemas", {})
    keep: set[str] = set()
    _refs(paths, keep)
    while True:
        more: set[str] = set()
        _refs([schemas[name] for name in keep if name in schemas], more)
        if more <= keep:
            break
        keep |= more
    spec: dict[str, Any] = {
        "openapi": full["openapi"],
        "info": {
            "title": "tanpuhui residents' mobile API",
            "version": "1.0.0",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/", "description": "the programme's API host"}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {name: schemas[name] for name in sorted(keep)},
            "securitySchemes": full["components"]["securitySchemes"],
        },
        "x-error-codes": {
            code: {"status": e.status, "title": e.title, "meaning": e.meaning}
            for code, e in sorted(CATALOGUE.items(), key=lambda kv: (kv[1].status, kv[0]))
        },
    }
    _strip_example_ids(spec)
    return spec


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        same = SPEC_PATH.exists() and SPEC_PATH.read_text(encoding="utf-8") == text
        if not same:
            sys.stderr.write(f"{SPEC_PATH} is stale: run python -m mobile_api_spec.generate\n")
        return 0 if same else 1
    SPEC_PATH.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
