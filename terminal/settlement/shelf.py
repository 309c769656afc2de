"""Shelves of verified bundles by region and date: pick the one that prices a settlement date.

A terminal holds two (docs/settlement.md, "Cross-region care"): the treating place's shelf (its own
prefecture's bundles, one a year) and the insured-place shelf (other regions' bundles, for patients
insured elsewhere). Within a region at most one bundle is valid on any day.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from itertools import pairwise

from terminal.errors import PolicyError
from terminal.settlement.policy import PolicyBundle


def prefecture(admdvs: str) -> str:
    """The prefecture-level code (统筹区) of an area code: 430302 (a district of Xiangtan) → 430300."""
    return f"{admdvs[:4]}00"


def province(admdvs: str) -> str:
    """The province of an area code: its first two digits (430302 → 43, Hunan)."""
    return admdvs[:2]


class PolicyShelf:
    """Verified bundles by region; at most one of a region valid on any day."""

    def __init__(self, bundles: Sequence[PolicyBundle]) -> None:
        ordered = sorted(bundles, key=lambda b: (b.admdvs, b.valid_from))
        for earlier, later in pairwise(ordered):
            if later.admdvs == earlier.admdvs and later.valid_from <= earlier.valid_to:
                raise PolicyError(f"bundles {earlier.bundle_id} and {later.bundle_id} overlap in time")
        self._bundles = tuple(sorted(ordered, key=lambda b: b.valid_from))

    @property
    def bundles(self) -> tuple[PolicyBundle, ...]:
        """All bundles, oldest first."""
        return self._bundles

    def for_date(self, day: date) -> PolicyBundle:
        """The bundle that prices settlements on that day (a one-region shelf); PolicyError when none does."""
        for bundle in self._bundles:
            if bundle.valid_from <= day <= bundle.valid_to:
                return bundle
        raise PolicyError(f"no policy bundle prices {day}; this terminal holds {self.held()}")

    def for_region(self, admdvs: str, day: date) -> PolicyBundle | None:
        """The bundle of a region (its prefecture code) that prices that day, or None."""
        for bundle in self._bundles:
            if bundle.admdvs == admdvs and bundle.valid_from <= day <= bundle.valid_to:
                return bundle
        return None

    def held(self) -> str:
        """The bundles held, for messages."""
        return ", ".join(f"{b.bundle_id} ({b.valid_from}…{b.valid_to})" for b in self._bundles) or "none"
