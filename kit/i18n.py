"""Messages people read, in the programme's two languages, keyed by the stable codes.

The catalogue is data (``kit/messages/<language>.json``), loaded once per process
(:func:`messages`). The codes never change with the language: an error's ``code``, a verdict's
``reason_code`` are the same in every answer; only the words around them do. Sections::

    errors.<code>.title      the problem+json title
    errors.<code>.detail     a generic sentence for the code (no placeholder)
    errors.<code>.template   optional: a detail with ``{named}`` placeholders, used when the
                             error's context (``extra``) carries every one of them
    reasons.<code>           a verdict's message for its reason code (``{detail}``: the
                             verdict's own, code-specific text, when the template wants it)
    levels.<n>               the name of growth level ``n`` (merged from residents' levels.json
                             by the composition root, :meth:`Messages.merged`)
    texts.<name>             other sentences (a level's description, ...)

The language of an answer is negotiated at the edge (``server/``) from ``Accept-Language``
(:func:`negotiate`), the default being the programme's setting (``TANPUHUI_LANGUAGE``); the
domains keep codes and never pick a language.
"""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

Language = Literal["zh-CN", "en"]
LANGUAGES: Final[tuple[Language, ...]] = ("zh-CN", "en")
DEFAULT_LANGUAGE: Final[Language] = "zh-CN"
MESSAGES_DIR = Path(__file__).parent / "messages"

_FORMATTER = string.Formatter()


def _flatten(prefix: str, node: Any, out: dict[str, str]) -> None:
    if isinstance(node, str):
        out[prefix] = node
        return
    if not isinstance(node, dict):
        raise ValueError(f"message {prefix!r}: expected a text or an object")
    for key, value in node.items():
        if key.startswith("_"):  # "_comment" and the like
            continue
        _flatten(f"{prefix}.{key}" if prefix else str(key), value, out)


def read_texts(directory: Path, *, required: bool = False) -> dict[str, dict[str, str]]:
    """The flat texts of ``directory/<language>.json`` by language (a domain package keeps its
    own beside its code, merged by the composition root); a missing file is an empty
    language unless ``required``."""
    texts: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES:
        path = directory / f"{lang}.json"
        flat: dict[str, str] = {}
        if required or path.is_file():
            _flatten("", json.loads(path.read_text(encoding="utf-8")), flat)
        texts[lang] = flat
    return texts


def placeholders(template: str) -> set[str]:
    """The ``{named}`` placeholders of a template."""
    return {name for _, name, _, _ in _FORMATTER.parse(template) if name}


class Messages:
    """The catalogue: language -> flat key -> text (immutable once built)."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        self._texts: dict[str, dict[str, str]] = {lang: dict(t) for lang, t in texts.items()}

    @classmethod
    def load(cls, directory: Path = MESSAGES_DIR) -> Messages:
        return cls(read_texts(directory, required=True))

    def merged(self, extra: Mapping[str, Mapping[str, str]]) -> Messages:
        """A new catalogue with ``extra`` (language -> key -> text) added over this one."""
        texts = {lang: dict(t) for lang, t in self._texts.items()}
        for lang, more in extra.items():
            texts.setdefault(lang, {}).update(more)
        return Messages(texts)

    def keys(self, lang: str) -> set[str]:
        return set(self._texts.get(lang, {}))

    def get(self, lang: str, key: str) -> str | None:
        """The text of ``key`` in ``lang``, or None when the catalogue lacks it."""
        return self._texts.get(lang, {}).get(key)

    def fill(self, lang: str, key: str, values: Mapping[str, Any] | None) -> str | None:
        """The template ``key`` filled from ``values``; None when the catalogue lacks it or
        ``values`` misses one of its placeholders."""
        template = self.get(lang, key)
        if template is None:
            return None
        wanted = placeholders(template)
        if wanted and (values is None or not wanted <= values.keys()):
            return None
        return template.format_map(
            {name: _shown(lang, name, values[name]) for name in wanted} if values else {}
        )

    # --- the sections ------------------------------------------------------------------------

    def error_title(self, lang: str, code: str, fallback: str) -> str:
        return self.get(lang, f"errors.{code}.title") or fallback

    def error_detail(
        self, lang: str, code: str, context: Mapping[str, Any] | None, fallback: str | None
    ) -> str | None:
        """A problem's detail in ``lang``: the code's template filled from the error's context
        when it has every placeholder, else the code's generic sentence (``fallback`` when the
        catalogue has neither)."""
        return (
            self.fill(lang, f"errors.{code}.template", context)
            or self.get(lang, f"errors.{code}.detail")
            or fallback
        )

    def reason(self, lang: str, code: str, detail: str | None = None) -> str | None:
        """A verdict's message for its reason code; ``detail`` (the verdict's own text) fills a
        ``{detail}`` placeholder. None when the catalogue lacks the code."""
        return self.fill(lang, f"reasons.{code}", {"detail": detail or ""})

    def level_name(self, lang: str, level: int, fallback: str) -> str:
        return self.get(lang, f"levels.{level}") or fallback


def _shown(lang: str, name: str, value: Any) -> str:
    """A placeholder's value as shown: grams with their units (a name ending ``_g``)."""
    if name.endswith("_g") and isinstance(value, int | float) and not isinstance(value, bool):
        return format_grams(value, lang)
    return str(value)


@functools.cache
def messages() -> Messages:
    """The catalogue of ``kit/messages``, loaded once per process."""
    return Messages.load()


# --- negotiation -----------------------------------------------------------------------------


def _match(tag: str) -> Language | None:
    """The catalogue language a language tag asks for (``zh``, ``zh-CN``, ``zh-Hans``,
    ``zh-Hans-CN``, ``en``, ``en-US``, ...), case-insensitively; None for any other."""
    primary = tag.split("-", 1)[0].lower()
    if primary == "zh":
        return "zh-CN"
    if primary == "en":
        return "en"
    return None


def negotiate(header: str | None, default: Language = DEFAULT_LANGUAGE) -> Language:
    """The language of an answer from an ``Accept-Language`` header (RFC 9110 12.5.4): the
    supported language with the highest q-value (the first listed on a tie); ``*`` stands for
    ``default``; a language at ``q=0`` is refused. No header, or nothing supported: ``default``.
    """
    if not header:
        return default
    best: tuple[float, int, Language] | None = None
    refused: set[Language] = set()
    for pos, part in enumerate(header[:1024].split(",")):
        tag, *params = (p.strip() for p in part.split(";"))
        if not tag:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # also refuses nan
                    q = 0.0
        lang = default if tag == "*" else _match(tag)
        if lang is None:
            continue
        if q <= 0.0:
            refused.add(lang)
            continue
        if best is None or q > best[0]:
            best = (q, pos, lang)
    if best is not None and best[2] not in refused:
        return best[2]
    for lang in (default, *LANGUAGES):
        if lang not in refused:
            return lang
    return default


# --- amounts ---------------------------------------------------------------------------------

_UNITS: dict[str, tuple[str, str, str]] = {"zh-CN": ("克", "千克", "吨"), "en": ("g", "kg", "t")}


def _number(value: float, lang: str) -> str:
    """At most one decimal (dropped when zero), thousands grouped with commas."""
    rounded = round(value, 1)
    text = f"{rounded:,.1f}"
    return text[:-2] if text.endswith(".0") else text


def format_grams(grams: float, lang: str = DEFAULT_LANGUAGE) -> str:
    """An amount of CO2e in grams as a person reads it: grams below 1,000, kilograms below
    1,000,000, tonnes above (1,200 -> "1.2 千克" in zh-CN, "1.2 kg" in en)."""
    g, kg, t = _UNITS.get(lang, _UNITS[DEFAULT_LANGUAGE])
    sign = "-" if grams < 0 else ""
    size = abs(grams)
    if round(size, 1) < 1000:
        return f"{sign}{_number(size, lang)} {g}"
    if round(size / 1000, 1) < 1000:
        return f"{sign}{_number(size / 1000, lang)} {kg}"
    return f"{sign}{_number(size / 1_000_000, lang)} {t}"


# --- schema validation messages --------------------------------------------------------------

# The decoder's (msgspec's) messages for a field that does not match, in the programme's other
# language: the message's shape is translated and its quoted parts (types, names, limits) kept.
# A message of an unknown shape is prefixed, so a Chinese reader still reads Chinese first.
_FIELD_MESSAGES_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (r"^Expected `([^`]+)`, got `([^`]+)`$", r"应为 `\1` 类型，实际为 `\2`"),
        (r"^Expected `([^`]+)` (>=|<=|>|<) (\S+)$", r"应为 `\1` 且 \2 \3"),
        (r"^Expected `([^`]+)` of length (>=|<=) (\d+)$", r"应为长度 \2 \3 的 `\1`"),
        (r"^Expected `([^`]+)` matching regex (.+)$", r"应为符合正则 \2 的 `\1`"),
        (r"^Expected `([^`]+)` with a timezone component$", r"应为带时区的 `\1`"),
        (r"^Expected `([^`]+)` with no timezone component$", r"应为不带时区的 `\1`"),
        (r"^Object missing required field `([^`]+)`$", r"缺少必填字段 `\1`"),
        (r"^Object contains unknown field `([^`]+)`$", r"含有未知字段 `\1`"),
        (r"^Invalid enum value (.+)$", r"无效的枚举值 \1"),
        (r"^Invalid RFC3339 encoded (\w+)$", r"无效的 RFC 3339 \1"),
        (r"^Invalid ISO8601 encoded (\w+)$", r"无效的 ISO 8601 \1"),
        (r"^Integer value out of range$", r"整数超出范围"),
        (r"^Number out of range$", r"数值超出范围"),
    )
)


def field_message(lang: str, message: str) -> str:
    """A field error's message (``errors[].message``) in ``lang``; English as the decoder wrote
    it for ``en``."""
    return _by_shape(lang, message, _FIELD_MESSAGES_ZH, "字段不符合要求：")


def _by_shape(
    lang: str, english: str, table: tuple[tuple[re.Pattern[str], str], ...], prefix: str
) -> str:
    """``english`` in ``lang`` by the first pattern of ``table`` it matches (its quoted parts
    and figures kept); an unknown shape behind ``prefix``, so the reader reads their language
    first. English as it is for ``en``."""
    if lang == "en":
        return english
    for pattern, text in table:
        if pattern.match(english):
            return pattern.sub(text, english)
    return prefix + english


# --- notes on accepted verdicts --------------------------------------------------------------

# An accepted verdict may carry a note on what was credited (behaviours/rules.py: a distance
# clipped to the GTFS evidence, an unverifiable one capped at a typical trip). Accepted
# verdicts have no reason code to key a catalogue entry on, so the note's shape is translated,
# its figures kept; an unknown shape is prefixed.
_NOTES_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), text)
    for pattern, text in (
        (
            r"^Distance clipped to (\d+) m, the in-vehicle distance along the route between the "
            r"stops \(claimed (\d+) m, more than (\d+)% above\)\.$",
            r"里程已核减为 \1 米，即线路上两站之间的车内距离（申报 \2 米，超出 \3% 以上）。",
        ),
        (
            r"^Distance not verifiable \(no known stops or route\): credited as the typical "
            r"(\w+) trip of (\d+) m instead of the claimed (\d+) m\.$",
            r"里程无法核验（没有已知站点或线路）：按 \1 的典型行程 \2 米计入，而非申报的 \3 米。",
        ),
    )
)


def note_message(lang: str, note: str) -> str:
    """An accepted verdict's note in ``lang`` (English as the rules wrote it for ``en``)."""
    return _by_shape(lang, note, _NOTES_ZH, "说明：")
