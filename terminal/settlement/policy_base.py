"""The policy bundle's shared types and its strict and sourced base models."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal["primary", "level1", "level2", "level3_city", "level3_provincial"]
LEVELS: tuple[Level, ...] = ("primary", "level1", "level2", "level3_city", "level3_provincial")
PsnType = Literal["active", "retired"]
CrossRegionKind = Literal["filed", "unfiled", "temporary"]
SafetyCheck = Literal[
    "insurance_not_active",
    "identity_mismatch",
    "duplicate_bill",
    "repeat_dispensing",
    "gender_limit",
    "age_limit",
    "visit_frequency",
]
SafetyAction = Literal["flag", "block"]

Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Ratio = Annotated[Decimal, Field(ge=0, le=1, max_digits=6, decimal_places=4)]
SignedRatio = Annotated[Decimal, Field(ge=-1, le=1, max_digits=6, decimal_places=4)]
Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
FundPayType = Annotated[str, Field(pattern=r"^\d{6}$")]
MedType = Annotated[str, Field(pattern=r"^\d{2,4}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Sourced(_Strict):
    placeholder: Annotated[
        bool, Field(description="true while the figures are assumed, not taken from the official notice")
    ]
    source: Annotated[str, Field(description="where the figures come from (document number, page, dataset)")]
