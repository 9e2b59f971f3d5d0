"""The enterprise registry's shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from msgspec import Struct

# Above or below designated size (规模以上 / 规模以下 工业企业).
SizeClass = Literal["above", "below"]


class EnterpriseIn(Struct, frozen=True, kw_only=True):
    """What registers an enterprise: its content, compared for idempotency."""

    credit_code: str  # unified social credit code, GB 32100-2015, 18 characters
    name: str
    industry: str  # GB/T 4754-2017: a section letter, optionally 2, 3 or 4 digits
    district: str  # an imported district (GB/T 2260, 6 digits)
    size_class: SizeClass
    # The account kind (enterprises/account_kinds.json; issue 15): industry unless named.
    kind: str = "industry"


class Enterprise(Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    credit_code: str
    name: str
    industry: str
    district: str
    size_class: SizeClass
    registered_at: datetime  # when the row was entered in the registry
    kind: str = "industry"  # the account kind (enterprises/account_kinds.json)

    def content(self) -> EnterpriseIn:
        return EnterpriseIn(
            credit_code=self.credit_code,
            name=self.name,
            industry=self.industry,
            district=self.district,
            size_class=self.size_class,
            kind=self.kind,
        )


class Registered(Struct, frozen=True, kw_only=True):
    enterprise: Enterprise
    created: bool  # False: the same content was registered before (the same row)


class Imported(Struct, frozen=True, kw_only=True):
    created: int
    unchanged: int  # lines whose enterprise was registered before with the same content
