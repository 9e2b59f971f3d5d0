"""Enterprises for tests, made through the enterprises package (never raw SQL).

Credit codes are completed by :func:`credit_code`, an implementation of GB 32100-2015's check
character written here from the standard's text, independently of enterprises/service.py."""

from __future__ import annotations

from typing import Any

from enterprises import service
from enterprises.schemas import EnterpriseIn, Registered, SizeClass
from kit.db import transaction
from tests.behaviours.factories import import_districts

# GB 32100-2015, 4.2 / Appendix B: the code's characters and their values (I, O, Z, S, V are
# not used), and the weights of positions 1-17 as the standard tabulates them (3^(i-1) mod 31).
STANDARD_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
STANDARD_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)

# A complete code widely published as the standard's example (enterprises.md gives none): the
# test checks it with the implementation above as well as the service's.
STANDARD_EXAMPLE = "91350100M000100Y43"

# The districts of tests/integrations/data/districts.geojson (imported by ``districts``).
DISTRICT = "440303"
OTHER_DISTRICT = "440304"


def credit_code(first17: str) -> str:
    """``first17`` completed with its check character: C18 = 31 - MOD(Σ Ci × Wi, 31), where a
    result of 31 is written 0."""
    assert len(first17) == 17
    total = 0
    for position, char in enumerate(first17, start=1):
        total += STANDARD_CHARS.index(char) * STANDARD_WEIGHTS[position - 1]
    c18 = 31 - total % 31
    return first17 + STANDARD_CHARS[0 if c18 == 31 else c18]


def code(n: int) -> str:
    """The n-th test enterprise's credit code (a business registered in Luohu, 440303)."""
    return credit_code(f"91440303{n:08d}A")


def enterprise(
    n: int = 1,
    *,
    name: str | None = None,
    industry: str = "C2611",
    district: str = DISTRICT,
    size_class: SizeClass = "above",
) -> EnterpriseIn:
    return EnterpriseIn(
        credit_code=code(n),
        name=name or f"测试化工有限公司 {n}",
        industry=industry,
        district=district,
        size_class=size_class,
    )


async def districts(pool: Any) -> None:
    """Import the test districts (440303, 440304): enterprises are placed in one of them."""
    await import_districts(pool)


async def registered(pool: Any, e: EnterpriseIn) -> Registered:
    async with transaction(pool) as tx:
        return await service.register(tx, e)
