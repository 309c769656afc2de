"""The engine's other fast paths give exactly what the plain, readable checks give (pricing: test_pricing)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.domain import Bill, FeeLine, Person
from terminal.errors import BillError, SettlementError
from terminal.settlement import Accumulators, SetlInfo, SettlementContext, check_bill, presettle
from terminal.settlement.checks import _check_lines
from terminal.settlement.context import PersonBenefits
from terminal.settlement.critical import critical_terms
from terminal.settlement.safety import limit_findings

from .helpers import BED, DAY, METFORMIN, bill, bundle, catalog, context, empty, held_fields, person
from .strategies import accumulators, bills, contexts, fee_lines, people

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _same(a: object, b: object) -> None:
    # repr shows each Decimal's exponent; == alone would accept 1.0 for 1.00
    assert a == b
    assert repr(a) == repr(b)


def _refusal(check: object, b: Bill) -> str | None:
    try:
        check(b)  # type: ignore[operator]
    except (BillError, ArithmeticError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


bad_amounts = st.sampled_from(
    [Decimal(0), Decimal(-1), Decimal("0.001"), Decimal("1.005"), Decimal("12.80"), Decimal("25.60")]
)


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(["1", "2", "3"]), bad_amounts, bad_amounts, bad_amounts),
        min_size=1,
        max_size=6,
    )
)
def test_check_bill_refuses_exactly_as_the_line_by_line_check(
    rows: list[tuple[str, Decimal, Decimal, Decimal]],
) -> None:
    b = bill("11", *(FeeLine(sn, METFORMIN, cnt, pric, fee) for sn, cnt, pric, fee in rows))
    assert _refusal(check_bill, b) == _refusal(_check_lines, b)


@FAST
@given(
    fee_lines(n_max=12),
    st.dates(min_value=date(1800, 1, 1), max_value=date(2030, 1, 1)),
    st.sampled_from(["1", "2", ""]),
)
def test_limit_findings_skip_only_lines_that_cannot_fire(
    lines: tuple[FeeLine, ...], brdy: date, gend: str
) -> None:
    # an age outside 0–200 (a birthday after the bill, a typo) still fires on items without limits
    items = catalog().items_or_outside(lines)
    p: Person = replace(person(), brdy=brdy, gend=gend)
    b = bill("11", *lines)
    got = limit_findings(b, items, p, DAY)
    want = []
    age = None if p.brdy is None else DAY.year - brdy.year - ((DAY.month, DAY.day) < (brdy.month, brdy.day))
    for item in items:
        if item.gend_lmt is not None and p.gend in ("1", "2") and p.gend != item.gend_lmt:
            want.append("gender_limit")
        low = item.min_age if item.min_age is not None else 0
        high = item.max_age if item.max_age is not None else 200
        if age is not None and not low <= age <= high:
            want.append("age_limit")
    assert [check for check, _ in got] == want


def test_unknown_code_is_still_named_with_its_line() -> None:
    lines = (
        FeeLine("1", METFORMIN, Decimal(1), Decimal(1), Decimal(1)),
        FeeLine("7", "NOPE", Decimal(1), Decimal(1), Decimal(1)),
    )
    with pytest.raises(SettlementError, match=r"NOPE \(fee line 7\)"):
        catalog().items_for(lines)


def test_a_fast_built_setlinfo_has_every_field() -> None:
    r = presettle(
        bill("11", FeeLine("1", METFORMIN, Decimal(2), Decimal("12.80"), Decimal("25.60"))),
        person("310"),
        empty(),
        bundle(),
        catalog(),
        context("primary"),
    )
    assert list(held_fields(r.setlinfo)) == [f.name for f in fields(SetlInfo)]
    assert replace(r.setlinfo) == r.setlinfo


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_the_delta_over_touched_counters_is_the_whole_delta(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    # presettle diffs only the counters it touched; every other counter must be unchanged
    r = presettle(b, p, a, bundle(), catalog(), c)
    _same(r.delta, a.delta_to(r.accumulators_after))


def _resident_bill() -> Bill:
    return bill("2101", *(FeeLine(f"{i}", BED, Decimal(10), Decimal(40), Decimal(400)) for i in range(30)))


def test_critical_illness_terms_are_never_shared_between_bundles() -> None:
    # a bundle copied with another critical-illness table (model_copy shares private state) must
    # price with its own table, however the calls interleave, tilted or not
    base = bundle()
    assert base.critical_illness is not None
    steeper = base.critical_illness.model_copy(update={"threshold": Decimal("1000.00")})
    other = base.model_copy(update={"critical_illness": steeper})
    tilted = context("level3_city", PersonBenefits(assistance_category="severe_disability"))
    for ctx in (context("level3_city"), tilted, context("level3_city"), tilted):
        got = [presettle(_resident_bill(), person("390"), empty(), b, catalog(), ctx) for b in (base, other)]
        plain, steep = (r.setlinfo.hifmi_pay for r in got)
        assert plain < steep
        texts = [[t.text for t in r.trace if t.layer == "critical_illness"] for r in got]
        assert "起付线 16000.00" in texts[0][0] or "起付线 8000.00" in texts[0][0]
        assert "起付线 1000.00" in texts[1][0] or "起付线 500.00" in texts[1][0]


def test_critical_illness_terms_follow_the_rule_object_not_its_address() -> None:
    # an entry holds its rule and tilt, and a hit must find the very objects: a new rule with the
    # same id as a dead one (CPython reuses addresses) cannot read the dead one's terms
    rule = bundle().critical_illness
    assert rule is not None
    first = critical_terms(rule, None)
    again = critical_terms(rule, None)
    assert again is first
    lower = rule.model_copy(update={"threshold": Decimal("1.00")})
    assert critical_terms(lower, None).threshold == Decimal("1.00")
    assert critical_terms(rule, None).threshold == rule.threshold
