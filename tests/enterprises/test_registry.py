"""The enterprise registry (issue 12, first piece), called directly (no HTTP surface yet):
credit codes and their check character, registration and its idempotency, CSV import all or
nothing with the offending lines named."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from enterprises import service
from enterprises.errors import CreditCodeTaken
from enterprises.schemas import EnterpriseIn
from kit.db import transaction
from kit.errors import InvalidInput
from tests.enterprises.factories import (
    OTHER_DISTRICT,
    STANDARD_CHARS,
    STANDARD_EXAMPLE,
    code,
    credit_code,
    districts,
    enterprise,
    registered,
)

HEADER = "credit_code,name,industry,district,size_class\n"


def _with(e: EnterpriseIn, **kw: Any) -> EnterpriseIn:
    fields = {f: getattr(e, f) for f in EnterpriseIn.__struct_fields__}
    return EnterpriseIn(**{**fields, **kw})


def _line(e: EnterpriseIn) -> str:
    return f"{e.credit_code},{e.name},{e.industry},{e.district},{e.size_class}\n"


async def _count(pool: Any, codes: list[str]) -> int:
    async with pool.acquire() as conn:
        return len(await service.enterprises_by_credit_code(conn, codes))


class TestCreditCode:
    def test_valid_codes_pass(self):
        assert credit_code(STANDARD_EXAMPLE[:17]) == STANDARD_EXAMPLE
        valid = [STANDARD_EXAMPLE, *(code(n) for n in range(1, 200))]
        # Codes made by the test's own implementation, over every character of the set in every
        # free position: the service agrees on each check character, 0 (31) included.
        for i, char in enumerate(STANDARD_CHARS):
            valid.append(credit_code(f"{char}1440303{STANDARD_CHARS[::-1][i] * 9}"[:17]))
            valid.append(credit_code(f"9{char}440303{char * 9}"))
        assert any(c[17] == "0" for c in valid) and any(c[17].isalpha() for c in valid)
        for c in valid:
            assert service.credit_code_problem(c) is None, c

    def test_every_wrong_check_character_is_refused(self):
        for c in (STANDARD_EXAMPLE, code(1), code(2)):
            for wrong in STANDARD_CHARS.replace(c[17], ""):
                problem = service.credit_code_problem(c[:17] + wrong)
                assert problem is not None and "check character" in problem

    def test_a_changed_character_is_caught(self):
        c = STANDARD_EXAMPLE
        assert service.credit_code_problem(c[:9] + ("1" if c[9] != "1" else "2") + c[10:])
        assert c[8] != c[9]
        assert service.credit_code_problem(c[:8] + c[9] + c[8] + c[10:])  # transposed

    @pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
    def test_forbidden_letters_are_refused(self, letter: str):
        # Even where the arithmetic would have worked out: the letter has no value.
        bad = STANDARD_EXAMPLE[:8] + letter + STANDARD_EXAMPLE[9:]
        problem = service.credit_code_problem(bad)
        assert problem is not None and letter in problem

    def test_lower_case_is_refused(self):
        lower = "91350100m000100y43"
        assert service.credit_code_problem(lower) is not None
        assert service.credit_code_problem(lower.upper()) is None

    @pytest.mark.parametrize("length", [0, 15, 17, 19, 20])
    def test_wrong_length_is_refused(self, length: int):
        text = (STANDARD_EXAMPLE * 2)[:length]
        problem = service.credit_code_problem(text)
        assert problem is not None and "18 characters" in problem

    def test_the_division_part_is_digits(self):
        assert service.credit_code_problem(credit_code("91A50100M000100Y4")) is not None


class TestFields:
    def test_industry_codes_follow_gb_t_4754(self):
        for ok in ("C", "C26", "C261", "C2611", "A0111", "T"):
            assert not service.shape_problems(_with(enterprise(), industry=ok)), ok
        for bad in ("", "c2611", "C2", "C26111", "U12", "26", "CC26", "C26 "):
            problems = service.shape_problems(_with(enterprise(), industry=bad))
            assert [f for f, _ in problems] == ["industry"], bad

    def test_size_class_name_and_district_shape(self):
        e = _with(enterprise(), size_class="large", name=" ", district="44030")
        assert [f for f, _ in service.shape_problems(e)] == ["name", "district", "size_class"]


class TestRegister:
    async def test_register_then_the_same_content_is_the_same_row(self, pool: Any):
        await districts(pool)
        first = await registered(pool, enterprise(1))
        again = await registered(pool, enterprise(1))
        assert first.created and not again.created
        assert again.enterprise == first.enterprise
        assert first.enterprise.credit_code == code(1)
        assert first.enterprise.size_class == "above"

    async def test_other_content_under_the_code_is_a_conflict(self, pool: Any):
        await districts(pool)
        await registered(pool, enterprise(1))
        with pytest.raises(CreditCodeTaken) as err:
            await registered(pool, enterprise(1, size_class="below"))
        assert err.value.code == "credit_code_taken" and err.value.status == 409
        with pytest.raises(CreditCodeTaken):
            await registered(pool, enterprise(1, district=OTHER_DISTRICT))
        async with pool.acquire() as conn:
            [row] = (await service.enterprises_by_credit_code(conn, [code(1)])).values()
        assert row.size_class == "above" and row.district == "440303"

    async def test_two_concurrent_registrations_make_one_row(self, pool: Any):
        await districts(pool)
        a, b = await asyncio.gather(
            registered(pool, enterprise(7)), registered(pool, enterprise(7))
        )
        assert {a.created, b.created} == {True, False}
        assert a.enterprise.id == b.enterprise.id

    async def test_invalid_fields_and_unknown_districts_are_refused(self, pool: Any):
        await districts(pool)
        wrong = "0" if code(1)[17] != "0" else "1"
        bad = _with(enterprise(1), credit_code=code(1)[:17] + wrong)
        with pytest.raises(InvalidInput) as err:
            await registered(pool, bad)
        assert err.value.code == "validation_failed"
        assert [e.path for e in err.value.errors or []] == ["credit_code"]
        with pytest.raises(InvalidInput) as err:
            await registered(pool, enterprise(2, district="110101"))
        assert [e.path for e in err.value.errors or []] == ["district"]
        assert await _count(pool, [code(1), code(2)]) == 0


class TestImport:
    async def test_a_file_is_registered_set_wise(self, pool: Any):
        await districts(pool)
        await registered(pool, enterprise(1))
        text = (
            HEADER + "".join(_line(enterprise(n)) for n in (1, 2, 3)) + "\n" + _line(enterprise(3))
        )
        async with transaction(pool) as tx:
            result = await service.import_csv(tx, text)
        assert (result.created, result.unchanged) == (2, 2)
        assert await _count(pool, [code(n) for n in (1, 2, 3)]) == 3
        # Sent again: nothing new.
        async with transaction(pool) as tx:
            result = await service.import_csv(tx, text)
        assert (result.created, result.unchanged) == (0, 4)

    async def test_one_bad_line_imports_nothing_and_is_named(self, pool: Any):
        await districts(pool)
        bad_code = code(3)[:17] + ("0" if code(3)[17] != "0" else "1")
        text = (
            HEADER
            + _line(enterprise(1))  # line 2
            + _line(_with(enterprise(2), industry="2611"))  # line 3
            + _line(_with(enterprise(3), credit_code=bad_code))  # line 4
            + _line(enterprise(4, district="110101"))  # line 5: not an imported district
            + '"'
            + code(5)
            + '","名称, 含逗号",C2611,440303,above\n'  # line 6: fine
            + _line(enterprise(5, size_class="below"))  # line 7: line 6's code, other content
        )
        with pytest.raises(InvalidInput) as err:
            async with transaction(pool) as tx:
                await service.import_csv(tx, text)
        assert [e.path for e in err.value.errors or []] == [
            "line 3: industry",
            "line 4: credit_code",
            "line 5: district",
            "line 7: credit_code",
        ]
        assert await _count(pool, [code(n) for n in range(1, 6)]) == 0

    async def test_a_code_taken_with_other_content_rolls_the_file_back(self, pool: Any):
        await districts(pool)
        await registered(pool, enterprise(2))
        text = HEADER + _line(enterprise(1)) + _line(enterprise(2, industry="C26"))
        with pytest.raises(CreditCodeTaken) as err:
            async with transaction(pool) as tx:
                await service.import_csv(tx, text)
        assert err.value.extra == {"lines": [3], "credit_codes": [code(2)]}
        assert "line 3" in err.value.detail
        assert await _count(pool, [code(1)]) == 0

    async def test_a_wrong_header_or_field_count_is_named(self, pool: Any):
        with pytest.raises(InvalidInput) as err:
            async with transaction(pool) as tx:
                await service.import_csv(tx, "code,name\n" + _line(enterprise(1)))
        assert [e.path for e in err.value.errors or []] == ["line 1"]
        with pytest.raises(InvalidInput) as err:
            async with transaction(pool) as tx:
                await service.import_csv(tx, HEADER + _line(enterprise(1)) + "a,b\n")
        assert [e.path for e in err.value.errors or []] == ["line 3"]
