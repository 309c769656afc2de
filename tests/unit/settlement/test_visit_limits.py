"""Visit frequency limits across terminals (issue 19.7): the bundle's table, flag or block."""

from __future__ import annotations

from datetime import date

import pytest

from terminal.settlement import FundSafetyError, SafetyFacts, Visit, presettle
from terminal.settlement.policy import VisitLimits

from .helpers import METFORMIN, bill, bundle, catalog, context, empty, line, person

PHARMACY = bill("41", line("1", METFORMIN, "2", "12.80"))


def test_the_shipped_bundle_flags_a_fourth_outpatient_settlement_in_a_day() -> None:
    # Placeholder table: 3 a day of 11/13/14/41. Three earlier today (two at other terminals) → the 4th.
    day = date(2025, 6, 3)
    ctx = context(safety=SafetyFacts(recent_visits=(Visit(day, "11"), Visit(day, "41"), Visit(day, "14"))))
    result = presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx)
    assert [(f.check, f.action) for f in result.findings] == [("visit_frequency", "flag")]
    assert "2025-06-03–2025-06-03 已结算 3 次" in result.findings[0].message
    assert "本次为第 4 次" in result.findings[0].message


def test_three_a_day_and_an_inpatient_stay_are_within_the_limits() -> None:
    day = date(2025, 6, 3)
    # Two outpatient today and a stay (2101, not limited): this is the third limited one, allowed.
    ctx = context(safety=SafetyFacts(recent_visits=(Visit(day, "11"), Visit(day, "41"), Visit(day, "2101"))))
    assert presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx).findings == ()


def test_the_thirty_day_window_counts_from_the_settlement_day_back() -> None:
    # 20 a month: 20 visits on 2025-05-05 … 2025-05-24 are inside a window starting 2025-05-05.
    visits = tuple(Visit(date(2025, 5, 5 + i), "11") for i in range(20))
    ctx = context(safety=SafetyFacts(recent_visits=visits))
    result = presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx)
    assert [f.check for f in result.findings] == ["visit_frequency"]
    # One day earlier the first falls outside (2025-05-04 … ): 19 counted, allowed.
    earlier = tuple(Visit(date(2025, 5, 4 + i), "11") for i in range(20))
    ctx = context(safety=SafetyFacts(recent_visits=earlier))
    assert presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx).findings == ()


def test_a_bundle_that_blocks_refuses_with_a_typed_error() -> None:
    shipped = bundle()
    assert shipped.visit_limits is not None
    blocking = shipped.model_copy(
        update={"visit_limits": shipped.visit_limits.model_copy(update={"action": "block"})}
    )
    day = date(2025, 6, 3)
    ctx = context(safety=SafetyFacts(recent_visits=(Visit(day, "11"),) * 3))
    with pytest.raises(FundSafetyError, match="超过 1 天 3 次") as refused:
        presettle(PHARMACY, person(), empty(), blocking, catalog(), ctx)
    assert [f.check for f in refused.value.findings] == ["visit_frequency"]


def test_no_table_checks_nothing() -> None:
    none = bundle().model_copy(update={"visit_limits": None})
    ctx = context(safety=SafetyFacts(recent_visits=(Visit(date(2025, 6, 3), "11"),) * 9))
    assert presettle(PHARMACY, person(), empty(), none, catalog(), ctx).findings == ()
    assert VisitLimits(placeholder=True, source="t").limits == ()
