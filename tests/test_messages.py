"""Messages in the programme's two languages, keyed by the stable codes (kit/i18n.py).

The catalogue is walked against what the code can answer with: every code of the error
catalogue (classes, handler codes, instance codes), every verdict reason code (the rules'
``Reason``, the track checks' ``REASONS`` and each ``reason_code="..."`` literal of the
behaviours package), every growth level. Then through the served APIs: the same error or
verdict is Chinese with ``Accept-Language: zh-CN`` (and by default), English with ``en``, under
the same code.
"""

from __future__ import annotations

import ast
import re
from datetime import timedelta
from pathlib import Path

import msgspec
import pytest

import enterprises.errors  # noqa: F401 (a domain with no surface yet: its errors)
import residents.service as residents
import server.app  # noqa: F401 (imports every surface, so every error class is loaded)
from behaviours.rules import REASON_TEXT, Reason
from behaviours.tracks import REASONS as TRACK_REASONS
from kit.auth import sign_request
from kit.errors import HANDLER_CODES, INSTANCE_CODES, error_catalogue
from kit.i18n import LANGUAGES, Messages, format_grams, negotiate, placeholders
from server.errors import catalogue
from tests.behaviours.factories import SECRET, linked, metro, now, operator

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{4,}")


def _literal_reason_codes() -> set[str]:
    """Every ``reason_code="..."`` keyword of the behaviours package and the mobile surface."""
    found: set[str] = set()
    for folder in ("behaviours", "server"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.keyword) and node.arg == "reason_code":
                    value = node.value
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        found.add(value.value)
    return found


def reason_codes() -> set[str]:
    return {str(r) for r in Reason} | set(TRACK_REASONS) | _literal_reason_codes()


def missing(cat: Messages, keys: set[str]) -> dict[str, list[str]]:
    return {lang: sorted(k for k in keys if not cat.get(lang, k)) for lang in LANGUAGES}


def test_every_error_code_has_a_title_and_a_detail_in_both_languages():
    codes = set(error_catalogue()) | set(HANDLER_CODES) | set(INSTANCE_CODES)
    assert {"token_missing", "validation_failed", "not_found", "retry_later"} <= codes
    keys = {f"errors.{c}.{part}" for c in codes for part in ("title", "detail")}
    assert missing(catalogue(), keys) == {lang: [] for lang in LANGUAGES}


def test_every_reason_code_has_a_message_in_both_languages():
    codes = reason_codes()
    assert {"record_invalid", "track_jump", "unknown_subject"} <= codes
    keys = {f"reasons.{c}" for c in codes}
    assert missing(catalogue(), keys) == {lang: [] for lang in LANGUAGES}


def test_every_growth_level_has_a_name_in_both_languages():
    keys = {f"levels.{lv.level}" for lv in residents.levels()}
    assert len(keys) == len(residents.levels()) >= 2
    assert missing(catalogue(), keys) == {lang: [] for lang in LANGUAGES}


def test_the_two_languages_have_the_same_keys_and_placeholders():
    cat = catalogue()
    zh, en = cat.keys("zh-CN"), cat.keys("en")
    assert zh ^ en == set()
    for key in zh:
        assert placeholders(cat.get("zh-CN", key) or "") == placeholders(cat.get("en", key) or "")


def test_chinese_texts_are_chinese_and_english_ones_english():
    cat = catalogue()
    not_chinese = [k for k in cat.keys("zh-CN") if not CJK.search(cat.get("zh-CN", k) or "")]
    assert [k for k in not_chinese if k != "reasons.record_invalid"] == []
    assert [k for k in cat.keys("en") if CJK.search(cat.get("en", k) or "")] == []


def test_english_keeps_the_classes_titles_and_the_rules_wording():
    """The catalogue's English is the code's own (no second wording to drift)."""
    cat = catalogue()
    for code, row in error_catalogue().items():
        assert cat.get("en", f"errors.{code}.title") == row.title, code
    for reason, text in REASON_TEXT.items():
        assert cat.get("en", f"reasons.{reason}") == text
    for code, text in TRACK_REASONS.items():
        assert cat.get("en", f"reasons.{code}") == text


def test_no_stale_error_entries():
    codes = set(error_catalogue()) | {"http_error"}  # http_error: any other HTTP status
    stale = {k.split(".")[1] for k in catalogue().keys("en") if k.startswith("errors.")} - codes
    assert stale == set()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh-CN"),
        ("", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-CN", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh-Hans-CN,zh;q=0.9", "zh-CN"),
        ("ZH-cn", "zh-CN"),
        ("en", "en"),
        ("en-US", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5, zh;q=0.4", "en"),
        ("zh;q=0.5, en;q=0.8", "en"),
        ("en;q=0.8, zh;q=0.8", "en"),  # a tie: the first listed
        ("en;q=0, *", "zh-CN"),
        ("zh;q=0", "en"),
        ("de, fr", "zh-CN"),
        ("en;q=abc", "zh-CN"),
        ("*", "zh-CN"),
    ],
)
def test_accept_language_is_negotiated_with_q_values(header, expected):
    assert negotiate(header) == expected


def test_the_default_language_is_the_given_one():
    assert negotiate(None, "en") == "en" and negotiate("de", "en") == "en"
    assert negotiate("*", "en") == "en" and negotiate("zh", "en") == "zh-CN"


@pytest.mark.parametrize(
    ("grams", "zh", "en"),
    [
        (0, "0 克", "0 g"),
        (850, "850 克", "850 g"),
        (1000, "1 千克", "1 kg"),
        (1200, "1.2 千克", "1.2 kg"),
        (12_345, "12.3 千克", "12.3 kg"),
        (999_999, "1 吨", "1 t"),
        (2_500_000, "2.5 吨", "2.5 t"),
        (1_234_567_890, "1,234.6 吨", "1,234.6 t"),
        (-1200, "-1.2 千克", "-1.2 kg"),
    ],
)
def test_amounts_are_shown_in_grams_kilograms_and_tonnes(grams, zh, en):
    assert format_grams(grams, "zh-CN") == zh and format_grams(grams, "en") == en


def test_a_template_takes_its_placeholders_from_the_context_and_shows_grams():
    cat = catalogue()
    assert cat.error_detail("zh-CN", "code_invalid", {"attempts_left": 2}, None) == (
        "验证码错误，还可再试 2 次。"
    )
    # Without the context: the code's generic sentence.
    assert cat.error_detail("zh-CN", "code_invalid", None, None) == "验证码错误或已过期。"
    assert cat.fill("zh-CN", "texts.level_description", {"min_grams_g": 10_000}) == (
        "累计核证减排达到 10 千克 即可达到。"
    )


# --- through the served APIs -----------------------------------------------------------------

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}


def _chinese(text: str | None) -> bool:
    return bool(text) and bool(CJK.search(text or ""))


async def _problem(client, method: str, path: str, headers: dict[str, str], **kw):
    r = await client.request(method, path, headers=headers, **kw)
    return r, r.json()


@pytest.mark.parametrize(
    ("method", "path", "kw", "status", "code"),
    [
        ("GET", "/api/mobile/v1/summary", {}, 401, "token_missing"),
        (
            "POST",
            "/api/mobile/v1/auth/sms-codes",
            {"json": {"phone": "1"}},
            400,
            "validation_failed",
        ),
        ("GET", "/no/such/path", {}, 404, "not_found"),
        ("PUT", "/api/mobile/v1/auth/sms-codes", {}, 405, "method_not_allowed"),
    ],
)
async def test_errors_are_chinese_or_english_as_asked_with_the_same_code(
    client, method, path, kw, status, code
):
    cat = catalogue()
    r_zh, zh = await _problem(client, method, path, ZH, **kw)
    r_en, en = await _problem(client, method, path, EN, **kw)
    r_def, default = await _problem(client, method, path, {}, **kw)
    assert r_zh.status_code == r_en.status_code == r_def.status_code == status
    assert zh["code"] == en["code"] == default["code"] == code
    assert zh["type"] == en["type"]
    assert r_zh.headers["content-language"] == "zh-CN" and r_en.headers["content-language"] == "en"
    assert r_def.headers["content-language"] == "zh-CN"  # the programme's default
    assert _chinese(zh["title"]) and _chinese(zh["detail"])
    assert zh["title"] == cat.get("zh-CN", f"errors.{code}.title")
    assert zh["detail"] == cat.get("zh-CN", f"errors.{code}.detail")
    assert (default["title"], default["detail"]) == (zh["title"], zh["detail"])
    assert en["title"] == cat.get("en", f"errors.{code}.title") == error_catalogue()[code].title
    assert not _chinese(en["title"]) and not _chinese(en["detail"])
    assert LATIN_WORD.search(en["detail"])


async def test_an_error_answers_in_the_language_setting_when_none_is_asked(settings):
    from litestar.testing import AsyncTestClient

    from server.app import create_app

    english = msgspec.structs.replace(settings, language="en")
    async with AsyncTestClient(app=create_app(english), raise_server_exceptions=False) as c:
        r = await c.get("/api/mobile/v1/summary")
        asked = await c.get("/api/mobile/v1/summary", headers={"Accept-Language": "zh"})
    assert r.status_code == 401 and r.json()["title"] == "Authentication required"
    assert r.headers["content-language"] == "en"
    assert asked.json()["title"] == catalogue().get("zh-CN", "errors.token_missing.title")


EVENTS = "/api/operators/v1/events"


def _signed(body: bytes, lang: dict[str, str]) -> dict[str, str]:
    headers = sign_request(SECRET, "POST", EVENTS, body, operator_id="metro", key_id="k1")
    return {**headers, "Content-Type": "application/json", **lang}


async def test_an_operators_rejected_record_is_chinese_or_english_as_asked(client, pool):
    await operator(pool, "metro")
    _, subject = await linked(pool)
    cat = catalogue()
    answers = {}
    for name, lang in (("zh", ZH), ("en", EN)):
        start = now() - timedelta(hours=2 if name == "zh" else 4)  # two trips, no overlap
        body = msgspec.json.encode(
            {"events": [metro(subject, f"ok-{name}", start), metro("stranger", f"no-{name}")]}
        )
        r = await client.post(EVENTS, content=body, headers=_signed(body, lang))
        assert r.status_code == 200, r.text
        answers[name] = r
    zh_ok, zh_no = answers["zh"].json()["results"]
    en_ok, en_no = answers["en"].json()["results"]
    assert zh_no["reason_code"] == en_no["reason_code"] == "unknown_subject"
    assert zh_ok["status"] == en_ok["status"] == "accepted" and zh_ok["message"] is None
    assert _chinese(zh_no["message"])
    assert zh_no["message"] == cat.get("zh-CN", "reasons.unknown_subject")
    assert en_no["message"] == cat.get("en", "reasons.unknown_subject")
    assert en_no["message"] == REASON_TEXT[Reason.UNKNOWN_SUBJECT]
    assert answers["zh"].headers["content-language"] == "zh-CN"
    assert answers["en"].headers["content-language"] == "en"


async def test_a_files_results_are_chinese_or_english_as_asked(client, pool, settings):
    from behaviours import service
    from behaviours.files import process_file
    from kit.db import transaction
    from tests.behaviours.factories import policy

    await operator(pool, "metro")
    await linked(pool)
    lines = [msgspec.json.encode(metro("stranger", "f1")), b'{"kind": "bogus"}']
    async with transaction(pool) as tx:
        file_id, _ = await service.create_file(tx, "metro", "ndjson", b"\n".join(lines) + b"\n")
    assert await process_file(pool, policy(settings), file_id) == "done"
    path = "/api/operators/v1/files"
    results = f"{path}/{file_id}/results"
    out = {}
    for name, lang in (("zh", ZH), ("en", EN)):
        get = sign_request(SECRET, "GET", results, b"", operator_id="metro", key_id="k1")
        r = await client.get(results, headers={**get, **lang})
        assert r.status_code == 200, r.text
        out[name] = [msgspec.json.decode(x) for x in r.content.splitlines()]
    zh, en = out["zh"], out["en"]
    assert [x["reason_code"] for x in zh] == [x["reason_code"] for x in en]
    assert [x["reason_code"] for x in zh] == ["unknown_subject", "record_invalid"]
    assert zh[0]["message"] == catalogue().get("zh-CN", "reasons.unknown_subject")
    assert en[0]["message"] == REASON_TEXT[Reason.UNKNOWN_SUBJECT]
    # record_invalid: the line's own (English) specifics inside the Chinese sentence.
    assert _chinese(zh[1]["message"]) and en[1]["message"] in zh[1]["message"]
    assert not _chinese(en[1]["message"]) and en[1]["message"].startswith("line 2: ")
    assert list(zh[0]) == list(en[0])  # the keys keep their order


@pytest.mark.parametrize(
    ("body", "zh_part"),
    [
        ({"phone": 13800000000}, "应为 `str` 类型"),  # wrong type
        ({}, "缺少必填字段 `phone`"),  # missing field
        ({"phone": "13800000000", "extra": 1}, "含有未知字段 `extra`"),  # unknown field
    ],
)
async def test_field_errors_are_chinese_or_english_as_asked(client, body, zh_part):
    _, zh = await _problem(client, "POST", "/api/mobile/v1/auth/sms-codes", ZH, json=body)
    _, en = await _problem(client, "POST", "/api/mobile/v1/auth/sms-codes", EN, json=body)
    assert zh["code"] == en["code"] == "validation_failed"
    assert [e["path"] for e in zh["errors"]] == [e["path"] for e in en["errors"]]
    assert zh_part in zh["errors"][0]["message"], zh["errors"]
    assert not _chinese(en["errors"][0]["message"]) and LATIN_WORD.search(
        en["errors"][0]["message"]
    )


def test_a_field_message_of_an_unknown_shape_still_reads_chinese_first():
    from kit.i18n import field_message

    assert field_message("zh-CN", "Something new").startswith("字段不符合要求")
    assert field_message("en", "Something new") == "Something new"


@pytest.mark.parametrize("internal", [False, True])
async def test_a_failed_files_error_is_chinese_or_english_as_asked(client, pool, internal):
    from behaviours import service
    from behaviours.files import INTERNAL_FAILURE
    from kit.db import transaction

    await operator(pool, "metro")
    async with transaction(pool) as tx:
        file_id, _ = await service.create_file(tx, "metro", "csv", b"type,record_id\n")
    why = INTERNAL_FAILURE if internal else "unknown columns: bogus"
    async with transaction(pool) as tx:
        await service.fail_file(tx, file_id, why)
    path = f"/api/operators/v1/files/{file_id}"
    out = {}
    for name, lang in (("zh", ZH), ("en", EN)):
        get = sign_request(SECRET, "GET", path, b"", operator_id="metro", key_id="k1")
        r = await client.get(path, headers={**get, **lang})
        assert r.status_code == 200, r.text
        out[name] = r.json()
    assert out["zh"]["status"] == out["en"]["status"] == "failed"
    assert out["en"]["error"] == why
    assert _chinese(out["zh"]["error"])
    if internal:
        assert out["zh"]["error"] == catalogue().get("zh-CN", "texts.file_internal_failure")
        assert catalogue().get("en", "texts.file_internal_failure") == INTERNAL_FAILURE
    else:
        assert "bogus" in out["zh"]["error"]


async def test_an_accepted_verdicts_note_is_chinese_or_english_as_asked(client, pool):
    # A metro trip with no stops claiming 45 km in an hour: plausible, but unverifiable, so it
    # is credited as a typical trip with a note (behaviours/rules.py cap_unverified).
    await operator(pool, "metro")
    _, subject = await linked(pool)
    answers = {}
    for name, lang in (("zh", ZH), ("en", EN)):
        start = now() - timedelta(hours=3 if name == "zh" else 6)
        trip = metro(subject, f"long-{name}", start, minutes=60, distance_m=45_000)
        body = msgspec.json.encode({"events": [trip]})
        r = await client.post(EVENTS, content=body, headers=_signed(body, lang))
        assert r.status_code == 200, r.text
        [answers[name]] = r.json()["results"]
    zh, en = answers["zh"], answers["en"]
    assert zh["status"] == en["status"] == "accepted"
    assert zh["reason_code"] is en["reason_code"] is None
    assert en["message"].startswith("Distance not verifiable") and not _chinese(en["message"])
    assert _chinese(zh["message"]) and "典型行程" in zh["message"], zh["message"]
    assert "45000" in zh["message"] and "45000" in en["message"]  # the figures are kept


def test_the_rules_notes_have_translations():
    from kit.i18n import note_message

    clipped = (
        "Distance clipped to 7197 m, the in-vehicle distance along the route between the stops "
        "(claimed 30000 m, more than 20% above)."
    )
    assert note_message("zh-CN", clipped).startswith("里程已核减为 7197 米")
    assert note_message("zh-CN", "Something else").startswith("说明：")
    assert note_message("en", clipped) == clipped
