"""The per-person history a gallery delta carries (fund supervision, 政策找人, year-to-date totals).

For each person whose settlements changed upstream since the version asked from, the upstream sends
what it knows as of signing: its year-to-date accumulators and the msgids they count, the person's
recent settlements anywhere (day, medical type, items and quantities, diagnoses) and their 1101
idetinfo identity types. A terminal replaces what it held for that person (terminal/store/
person_history.py); checkout reads it offline and never calls the upstream.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from terminal.domain import PastVisit, PersonHistory

MAX_VISITS = 400  # per person: a window of months of outpatient care, not a lifetime
_AMOUNT = r"^\d{1,12}(\.\d{1,4})?$"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class WireItem(_Wire):
    """An item of a settlement and its net quantity."""

    med_list_codg: str = Field(min_length=1, max_length=50, description="national catalogue code")
    cnt: str = Field(pattern=r"^-?\d{1,10}(\.\d{1,4})?$", description="net quantity, a decimal string")


class WireVisit(_Wire):
    """One settlement of the person at any terminal, as the upstream holds it."""

    msgid: str = Field(min_length=1, max_length=30, description="the settlement's msgid")
    day: date = Field(description="settlement day (China Standard Time)")
    med_type: str = Field(pattern=r"^\d{2,4}$", description="medical type")
    fixmedins_code: str = Field(max_length=12, description="institution it was settled at")
    items: tuple[WireItem, ...] = Field(default=(), max_length=500, description="items dispensed")
    diagnoses: tuple[str, ...] = Field(default=(), max_length=20, description="the lines' dise_codg")

    def to_domain(self) -> PastVisit:
        """The pipeline's view."""
        return PastVisit(
            self.msgid,
            self.day,
            self.med_type,
            tuple((i.med_list_codg, Decimal(i.cnt)) for i in self.items),
            self.diagnoses,
        )


class WireTotals(_Wire):
    """The upstream's accumulators for a year (Accumulators.to_json form) and the settlements counted."""

    year: int = Field(ge=2000, le=2100, description="policy year")
    counters: dict[str, str] = Field(description="counter name → amount string")
    counted: tuple[str, ...] = Field(max_length=5000, description="msgids of the settlements included")

    @model_validator(mode="after")
    def _amounts(self) -> WireTotals:
        for name, value in self.counters.items():
            if not re.match(_AMOUNT, value):
                raise ValueError(f"counter {name}: {value!r} is not a non-negative amount")
        return self


class WireHistory(_Wire):
    """What the upstream knew of one person when it signed the delta."""

    psn_no: str = Field(min_length=1, max_length=30, description="person number")
    as_of: AwareDatetime = Field(description="when the upstream read it")
    totals: WireTotals = Field(description="year-to-date accumulators upstream")
    visits: tuple[WireVisit, ...] = Field(default=(), max_length=MAX_VISITS, description="recent settlements")
    identities: tuple[str, ...] = Field(default=(), max_length=20, description="1101 idetinfo psn_idet_type")

    def to_domain(self) -> PersonHistory:
        """The pipeline's view."""
        totals: dict[str, Any] = {"year": self.totals.year, "counters": dict(self.totals.counters)}
        return PersonHistory(
            psn_no=self.psn_no,
            as_of=self.as_of,
            year=self.totals.year,
            totals=totals,
            counted=frozenset(self.totals.counted),
            visits=tuple(v.to_domain() for v in self.visits),
            identities=self.identities,
        )
