"""The bundles a terminal holds, one per year: picks the one that prices a given settlement date."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from itertools import pairwise
from pathlib import Path

from terminal.errors import PolicyError
from terminal.settlement.bundle import load_bundle
from terminal.settlement.policy import PolicyBundle

BUNDLE_FILE = re.compile(r"^\d{6}-\d{4}\.json$")  # <admdvs>-<year>.json


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


def load_shelf(folder: Path, trusted_keys: Mapping[str, bytes]) -> PolicyShelf:
    """Verify and load every <admdvs>-<year>.json bundle in a folder."""
    if not folder.is_dir():
        raise PolicyError(f"policy folder {folder} does not exist")
    paths = sorted(p for p in folder.iterdir() if BUNDLE_FILE.match(p.name))
    if not paths:
        raise PolicyError(f"policy folder {folder} holds no <admdvs>-<year>.json bundle")
    return PolicyShelf([load_bundle(path, trusted_keys) for path in paths])
