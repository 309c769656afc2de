"""Accumulators: immutable, JSON round trip, exact reversal, refusal to mix years or go negative."""

from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.errors import SettlementError
from terminal.settlement import AccumulatorDelta, Accumulators, presettle

from .helpers import BED, bill, bundle, catalog, context, line, person


def test_round_trip_through_the_ledgers_json() -> None:
    a = Accumulators(
        2025, {"pooled_paid.pooled": Decimal("360.10"), "admissions.inpatient_level2": Decimal(1)}
    )
    assert Accumulators.from_json(a.to_json(), 2025) == a
    assert Accumulators.from_json({}, 2025) == Accumulators.empty(2025)


def test_zero_counters_vanish_so_a_reversed_value_equals_the_untouched_one() -> None:
    a = Accumulators(2025, {"x": Decimal("0.00")})
    assert a == Accumulators.empty(2025) and a.to_json() == {"year": 2025, "counters": {}}


def test_counters_cannot_be_mutated() -> None:
    a = Accumulators(2025, {"x": Decimal(1)})
    with pytest.raises(TypeError):
        a.counters["x"] = Decimal(2)  # type: ignore[index]


def test_stored_value_of_another_year_is_refused() -> None:
    with pytest.raises(SettlementError, match="for 2024, not 2025"):
        Accumulators.from_json({"year": 2024, "counters": {}}, 2025)


def test_reversal_below_zero_is_refused() -> None:
    with pytest.raises(SettlementError, match="below zero"):
        Accumulators.empty(2025).revert(AccumulatorDelta(2025, {"pooled_paid.pooled": Decimal("1")}))


def test_accumulators_of_another_year_are_refused_by_the_engine() -> None:
    b = bill("2101", line("1", BED, "1", "40"))
    with pytest.raises(SettlementError, match="accumulators are for 2024"):
        presettle(b, person(), Accumulators.empty(2024), bundle(), catalog(), context())
