"""The bundles a terminal holds, one per year: picks the one that prices a given settlement date."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from itertools import pairwise

from terminal.errors import PolicyError
from terminal.settlement.policy import PolicyBundle


class PolicyShelf:
    """Verified bundles of one region; at most one valid on any day."""

    def __init__(self, bundles: Sequence[PolicyBundle]) -> None:
        ordered = sorted(bundles, key=lambda b: b.valid_from)
        for earlier, later in pairwise(ordered):
            if later.valid_from <= earlier.valid_to:
                raise PolicyError(f"bundles {earlier.bundle_id} and {later.bundle_id} overlap in time")
        self._bundles = tuple(ordered)

    @property
    def bundles(self) -> tuple[PolicyBundle, ...]:
        """All bundles, oldest first."""
        return self._bundles

    def for_date(self, day: date) -> PolicyBundle:
        """The bundle that prices settlements on that day; PolicyError when none does."""
        for bundle in self._bundles:
            if bundle.valid_from <= day <= bundle.valid_to:
                return bundle
        held = ", ".join(f"{b.bundle_id} ({b.valid_from}…{b.valid_to})" for b in self._bundles) or "none"
        raise PolicyError(f"no policy bundle prices {day}; this terminal holds {held}")
