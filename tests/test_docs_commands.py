"""The Chinese documentation's example commands, run as they are written against a real API.

README.zh-CN.md and mobile_api_spec/README.zh-CN.md mark the ```sh blocks a reader can paste as
is with ``<!-- docs-test: run -->``. Each block runs here, unchanged, in one bash session (so the
shell variables a command sets, e.g. ``KEY_ID`` and ``SECRET`` from ``setup``'s output, reach
the next ones) against ``tanpuhui serve`` on a free port with the test stores; the reader's
``make run`` is the same API on port 8000. The environment gives the commands
``TANPUHUI_HTTP_PORT`` (which they follow, as they do under ``make run``) and the test stores'
``DATABASE_URL``; they run in a scratch directory standing in for the checkout (``.venv/bin/python``
is this interpreter, the project is on ``PYTHONPATH``), so that ``var/demo/batch.json`` is written
there and not into the repository's ``var/``.

Every command must exit 0. The ``#`` lines after a command are its documented output: each is a
fragment that must appear in what the command printed, in order, ``…`` standing for anything.

The English README's operator example is run by tests/scripts/test_operator_push.py (the command
``setup`` prints is the README's, and it answers ``accepted`` then ``duplicate``).

The OpenAPI documents' summaries are bilingual: ``中文 · English`` on every operation.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.server.processes import ROOT, api, free_port, port_answers, run, store_env

MARK = "<!-- docs-test: run -->"
_BLOCK = re.compile(re.escape(MARK) + r"\n```sh\n(.*?)^```", re.S | re.M)
_HEREDOC = re.compile(r"<<-?\s*'?\"?(\w+)'?\"?\s*$")
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]{3,}")

README_ZH = ROOT / "README.zh-CN.md"
GUIDE_ZH = ROOT / "mobile_api_spec" / "README.zh-CN.md"
GUIDE_EN = ROOT / "mobile_api_spec" / "README.md"


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


def steps(block: str) -> list[Step]:
    """One step per command line (a here-document belongs to its command); the ``#`` lines
    after it are its expected output."""
    out: list[Step] = []
    heredoc: str | None = None
    for line in block.splitlines():
        if heredoc is not None:
            out[-1].command += "\n" + line
            if line.strip() == heredoc:
                heredoc = None
        elif line.startswith("#"):
            assert out, f"expected output before any command: {line!r}"
            out[-1].expected.append(line.removeprefix("#").strip())
        elif line.strip():
            out.append(Step(line))
            if m := _HEREDOC.search(line):
                heredoc = m.group(1)
    assert heredoc is None, f"unterminated here-document in:\n{block}"
    return out


def fragment(template: str) -> re.Pattern[str]:
    return re.compile(".*?".join(re.escape(part) for part in template.split("…")), re.S)


def shows(output: str, expected: list[str]) -> bool:
    pos = 0
    for template in expected:
        m = fragment(template).search(output, pos)
        if m is None:
            return False
        pos = m.end()
    return True


def scratch_checkout() -> Path:
    """A directory standing in for the checkout: ``.venv/bin/python`` is this interpreter."""
    here = Path(tempfile.mkdtemp(prefix="tph-docs-"))
    bin_dir = here / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return here


def run_steps(all_steps: list[Step], env: dict[str, str], cwd: Path) -> list[tuple[int, str]]:
    """Run the steps in one bash session; (exit status, output) of each."""
    script = []
    for i, step in enumerate(all_steps):
        script += [f"printf '\\n@@step {i}\\n'", step.command, f"printf '\\n@@rc {i} %s\\n' $?"]
    path = cwd / "docs.sh"
    path.write_text("\n".join(script) + "\n", encoding="utf-8")
    proc = run(["bash", "-c", f'cd "{cwd}" && exec bash docs.sh 2>&1'], env, timeout=300)
    results = []
    for i in range(len(all_steps)):
        m = re.search(rf"\n@@step {i}\n(.*?)\n@@rc {i} (\d+)\n", proc.stdout, re.S)
        assert m, f"step {i} did not finish:\n{proc.stdout}\n{proc.stderr}"
        results.append((int(m.group(2)), m.group(1)))
    return results


@pytest.fixture(scope="module")
def port(settings) -> Iterator[int]:
    port = free_port()
    with api(settings, port) as a:
        a.wait_for(lambda: port_answers(port), "the API listening")
        yield port


def check_document(path: Path, settings, port: int) -> list[Step]:
    found = blocks(path)
    assert found, f"{path.name} has no block marked {MARK}"
    all_steps = [s for block in found for s in steps(block)]
    cwd = scratch_checkout()
    env = store_env(settings, TANPUHUI_HTTP_PORT=str(port), PYTHONPATH=str(ROOT))
    for step, (rc, output) in zip(all_steps, run_steps(all_steps, env, cwd), strict=True):
        assert rc == 0, f"{path.name}: `{step.command}` exited {rc}:\n{output}"
        assert shows(output, step.expected), (
            f"{path.name}: `{step.command}` printed\n{output}\nnot the documented\n"
            + "\n".join(step.expected)
        )
    return all_steps


def test_the_chinese_readme_examples_run_against_a_served_api(settings, port):
    all_steps = check_document(README_ZH, settings, port)
    commands = [s.command for s in all_steps]
    assert any("/readyz" in c for c in commands)
    assert any("scripts.operator_push setup" in c for c in commands)
    # the signed batch is accepted once, then answered as a duplicate (by the script and by
    # the standard-library signing example)
    outputs = ["\n".join(s.expected) for s in all_steps]
    accepted = [i for i, o in enumerate(outputs) if '"status":"accepted"' in o]
    duplicate = [i for i, o in enumerate(outputs) if '"status":"duplicate"' in o]
    assert len(accepted) == 1 and len(duplicate) == 2 and accepted[0] < duplicate[0], outputs
    assert "hmac.new(" in commands[duplicate[1]], "the standard-library signing example"


def test_the_chinese_mobile_guide_examples_run_against_a_served_api(settings, port):
    all_steps = check_document(GUIDE_ZH, settings, port)
    assert any("/api/mobile/v1/" in s.command for s in all_steps)


def test_the_documents_link_each_other():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](README.zh-CN.md)" in readme.split("\n## ", 1)[0], "README.md links the Chinese one"
    zh = README_ZH.read_text(encoding="utf-8")
    assert "](README.md)" in zh.split("\n## ", 1)[0]
    assert "](mobile_api_spec/README.zh-CN.md)" in zh
    assert "](README.zh-CN.md)" in GUIDE_EN.read_text(encoding="utf-8").split("\n## ", 1)[0]
    assert "](README.md)" in GUIDE_ZH.read_text(encoding="utf-8").split("\n## ", 1)[0]


def test_the_chinese_mobile_guide_has_every_section_of_the_english_one():
    def sections(text: str) -> list[str]:
        return re.findall(r"^## (.+)$", text, re.M)

    en = sections(GUIDE_EN.read_text(encoding="utf-8"))
    zh = sections(GUIDE_ZH.read_text(encoding="utf-8"))
    assert len(zh) == len(en), (zh, en)
    # each Chinese heading names its English counterpart: "登录 · Sign-in"
    for zh_title, en_title in zip(zh, en, strict=True):
        assert zh_title.endswith(" · " + en_title) and _CJK.search(zh_title), (zh_title, en_title)


def _bilingual(text: str | None) -> bool:
    return (
        bool(text)
        and " · " in str(text)
        and bool(_CJK.search(str(text)))
        and bool(_LATIN.search(str(text)))
    )


def test_every_operation_summary_is_chinese_and_english():
    from mobile_api_spec.generate import build
    from server.app import create_app
    from server.settings import Settings

    full = create_app(Settings()).openapi_schema.to_schema()
    mobile = build()
    assert _bilingual(full["info"]["description"]), full["info"]["description"]
    assert _bilingual(mobile["info"]["description"])
    methods = {"get", "post", "put", "patch", "delete"}
    for spec in (full, mobile):
        ops = [(m, p, op) for p, item in spec["paths"].items() for m, op in item.items()]
        ops = [(m, p, op) for m, p, op in ops if m in methods]
        assert ops
        for method, path, op in ops:
            summary = op.get("summary", "")
            zh, _, en = summary.partition(" · ")
            assert _CJK.search(zh) and _LATIN.search(en), (method, path, summary)
