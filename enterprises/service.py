"""The enterprise registry's rules: the unified social credit code and its check character
(GB 32100-2015), the industry code's shape (GB/T 4754-2017), the district (one of the
programme's imported districts, which behaviours owns), registration (idempotent by credit code)
and import from CSV (set-wise, all or nothing).

No SQL strings and no HTTP here: storage goes through ``repository``. Callers own the
transaction (``Tx``); a refusal raised here rolls the caller's transaction back whole.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from behaviours.service import is_district
from enterprises import repository as repo
from enterprises.errors import CreditCodeTaken
from enterprises.kinds import service as kinds
from enterprises.ledger import open_enterprise_accounts
from enterprises.schemas import Enterprise, EnterpriseIn, Imported, Registered
from kit.db import Tx
from kit.errors import FieldError, InvalidInput

# --- the unified social credit code (GB 32100-2015) ------------------------------------------

# The code's 31 characters, each worth its index: digits, then the capitals without I, O, Z, S
# and V (which read like 1, 0, 2, 5 and U).
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
VALUES = {c: i for i, c in enumerate(CHARSET)}
# The weight of position i (from 0) is 3^i mod 31.
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
CREDIT_CODE_LENGTH = 18
# Positions 3-8 are the registering authority's administrative division (GB/T 2260): digits.
_DIVISION = re.compile(r"[0-9]{6}", re.ASCII)


def check_character(first17: str) -> str:
    """The check character of the code's first 17 characters: 31 - (Σ value × weight mod 31),
    with 31 written as 0."""
    total = sum(VALUES[c] * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why ``code`` is not a unified social credit code, or None when it is one."""
    if len(code) != CREDIT_CODE_LENGTH:
        return f"A unified social credit code has 18 characters, not {len(code)}."
    bad = sorted({c for c in code if c not in VALUES})
    if bad:
        return (
            f"Characters {''.join(bad)!r} are not in a credit code "
            "(digits and capitals without I, O, Z, S, V)."
        )
    if not _DIVISION.fullmatch(code[2:8]):
        return "Characters 3-8 of a credit code are the administrative division code (digits)."
    expected = check_character(code[:17])
    if code[17] != expected:
        return (
            f"The check character is {code[17]!r}; "
            f"the code's first 17 characters give {expected!r}."
        )
    return None


# --- the other fields --------------------------------------------------------------------------

# GB/T 4754-2017: section A-T (门类), division 2 digits (大类), group 3 (中类), class 4 (小类).
_INDUSTRY = re.compile(r"[A-T](?:[0-9]{2,4})?", re.ASCII)
_DISTRICT = re.compile(r"[0-9]{6}", re.ASCII)
SIZE_CLASSES = ("above", "below")
NAME_MAX = 200
# One import's lines: its arrays travel as statement arguments (docs/architecture.md, "Errors").
IMPORT_MAX_LINES = 5000
CSV_COLUMNS = ("credit_code", "name", "industry", "district", "size_class")


def _normalised(e: EnterpriseIn) -> EnterpriseIn:
    name = " ".join(e.name.split())
    return (
        e
        if name == e.name
        else EnterpriseIn(
            credit_code=e.credit_code,
            name=name,
            industry=e.industry,
            district=e.district,
            size_class=e.size_class,
            kind=e.kind,
        )
    )


def shape_problems(e: EnterpriseIn) -> list[tuple[str, str]]:
    """(field, problem) for every field of ``e`` that breaks a rule checked without the store."""
    out = []
    if (p := credit_code_problem(e.credit_code)) is not None:
        out.append(("credit_code", p))
    if not e.name.strip():
        out.append(("name", "The name is empty."))
    elif len(e.name) > NAME_MAX:
        out.append(("name", f"The name is longer than {NAME_MAX} characters."))
    elif "\x00" in e.name:
        out.append(("name", "The name contains a NUL character."))
    if not _INDUSTRY.fullmatch(e.industry):
        out.append(
            (
                "industry",
                f"{e.industry!r} is not a GB/T 4754-2017 code "
                "(a section letter A-T, optionally 2, 3 or 4 digits).",
            )
        )
    if not _DISTRICT.fullmatch(e.district):
        out.append(("district", f"{e.district!r} is not a 6-digit district code."))
    if e.size_class not in SIZE_CLASSES:
        out.append(("size_class", f"{e.size_class!r} is neither 'above' nor 'below'."))
    if e.kind not in kinds.kind_names():
        names = ", ".join(kinds.kind_names())
        out.append(("kind", f"{e.kind!r} is not an account kind ({names})."))
    return out


async def _unknown_districts(conn: object, codes: Iterable[str]) -> set[str]:
    return {c for c in set(codes) if _DISTRICT.fullmatch(c) and not await is_district(conn, c)}


def _district_problem(code: str) -> str:
    return f"District {code} is not one of the programme's districts."


def _refuse(errors: list[FieldError], what: str) -> InvalidInput:
    return InvalidInput(
        f"{what}: {len(errors)} field(s) refused.", code="validation_failed", errors=errors
    )


# --- registration ------------------------------------------------------------------------------


async def register(tx: Tx, enterprise: EnterpriseIn) -> Registered:
    """Register one enterprise. The same content again is the same row (``created`` False);
    other content under a registered credit code is ``credit_code_taken``."""
    e = _normalised(enterprise)
    problems = shape_problems(e)
    if not problems and await _unknown_districts(tx.conn, [e.district]):
        problems.append(("district", _district_problem(e.district)))
    if problems:
        raise _refuse([FieldError(path=f, message=m) for f, m in problems], "Enterprise")
    inserted = await repo.insert_missing(tx.conn, [e])
    # Its ledger account (enterprises.ledger), in the same transaction as the registration.
    await open_enterprise_accounts(tx.conn, [r.id for r in inserted.values()])
    if e.credit_code in inserted:
        return Registered(enterprise=inserted[e.credit_code], created=True)
    existing = (await repo.by_credit_codes(tx.conn, [e.credit_code]))[e.credit_code]
    if existing.content() != e:
        raise CreditCodeTaken(
            f"Credit code {e.credit_code} is registered with other content.",
            extra={"credit_code": e.credit_code},
        )
    return Registered(enterprise=existing, created=False)


def read_csv(text: str) -> list[tuple[int, EnterpriseIn]]:
    """The lines of an import file with their line numbers (the header is line 1), or
    ``validation_failed`` naming every line and field that cannot be read."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(CSV_COLUMNS):
        raise _refuse(
            [FieldError(path="line 1", message=f"The header must be {','.join(CSV_COLUMNS)}.")],
            "Enterprise import",
        )
    rows: list[tuple[int, EnterpriseIn]] = []
    errors: list[FieldError] = []
    start = reader.line_num + 1
    for record in reader:
        line, start = start, reader.line_num + 1
        if not any(field.strip() for field in record):
            continue  # a blank line
        if len(rows) >= IMPORT_MAX_LINES:
            errors.append(
                FieldError(path=f"line {line}", message=f"More than {IMPORT_MAX_LINES} lines.")
            )
            break
        if len(record) != len(CSV_COLUMNS):
            errors.append(
                FieldError(
                    path=f"line {line}",
                    message=f"{len(record)} fields; a line has {len(CSV_COLUMNS)}.",
                )
            )
            continue
        code, name, industry, district, size = (field.strip() for field in record)
        e = EnterpriseIn(
            credit_code=code,
            name=name,
            industry=industry,
            district=district,
            size_class=size,  # type: ignore[arg-type]  # checked by shape_problems
        )
        rows.append((line, _normalised(e)))
    if errors:
        raise _refuse(errors, "Enterprise import")
    return rows


async def import_csv(tx: Tx, text: str) -> Imported:
    """Register every enterprise of a CSV file (columns ``credit_code,name,industry,district,
    size_class``) or none: a line that breaks a rule is ``validation_failed`` naming its line
    and field, a credit code registered with other content is ``credit_code_taken`` naming its
    lines; either rolls back the caller's transaction. Lines already registered with the same
    content are counted ``unchanged``; the same enterprise twice in the file is one."""
    rows = read_csv(text)
    errors = [
        FieldError(path=f"line {line}: {field}", message=problem)
        for line, e in rows
        for field, problem in shape_problems(e)
    ]
    unknown = await _unknown_districts(tx.conn, (e.district for _, e in rows))
    errors += [
        FieldError(path=f"line {line}: district", message=_district_problem(e.district))
        for line, e in rows
        if e.district in unknown
    ]
    first: dict[str, tuple[int, EnterpriseIn]] = {}
    for line, e in rows:
        seen = first.setdefault(e.credit_code, (line, e))
        if seen[1] != e:
            errors.append(
                FieldError(
                    path=f"line {line}: credit_code",
                    message=f"Credit code {e.credit_code} is on line {seen[0]} with other content.",
                )
            )
    if errors:
        errors.sort(key=lambda f: int(f.path.split(":")[0].split()[1]))
        raise _refuse(errors, "Enterprise import")
    wanted = [e for _, e in first.values()]
    inserted = await repo.insert_missing(tx.conn, wanted)
    await open_enterprise_accounts(tx.conn, [r.id for r in inserted.values()])
    rest = [e.credit_code for e in wanted if e.credit_code not in inserted]
    existing = await repo.by_credit_codes(tx.conn, rest) if rest else {}
    taken = sorted((first[c][0], c) for c in rest if existing[c].content() != first[c][1])
    if taken:
        lines = ", ".join(f"line {line} ({code})" for line, code in taken)
        raise CreditCodeTaken(
            f"Registered with other content: {lines}.",
            extra={"lines": [line for line, _ in taken], "credit_codes": [c for _, c in taken]},
        )
    return Imported(created=len(inserted), unchanged=len(rows) - len(inserted))


async def enterprises_by_credit_code(conn: object, codes: list[str]) -> dict[str, Enterprise]:
    """The registered enterprises among ``codes``, by credit code."""
    return await repo.by_credit_codes(conn, codes)
