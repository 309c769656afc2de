"""The engine's fast paths give exactly what the plain, readable functions give (values and exponents)."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import date
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.domain import Bill, FeeLine, Person
from terminal.errors import BillError, SettlementError
from terminal.settlement import Accumulators, SetlInfo, SettlementContext, check_bill, presettle
from terminal.settlement.context import PersonBenefits
from terminal.settlement.engine import _check_lines, _critical_terms
from terminal.settlement.layers import line_layer, price_bill, price_lines
from terminal.settlement.money import total
from terminal.settlement.result import LineResult
from terminal.settlement.safety import limit_findings

from .helpers import BED, DAY, GLARGINE, METFORMIN, VITAMINS, bill, bundle, catalog, context, empty, person
from .strategies import accumulators, bills, contexts, fee_lines, people

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# amounts with every exponent a caller may send: "3", "3.5", "3.50", "3.5000", and zeros
odd_amounts = st.decimals(min_value=Decimal(0), max_value=Decimal("99999"), places=2).flatmap(
    lambda d: st.sampled_from([d, d.quantize(Decimal("0.0001")), d.normalize(), Decimal(0) * d])
)


@st.composite
def odd_lines(draw: st.DrawFn) -> tuple[FeeLine, ...]:
    """Well-formed lines whose amounts carry unusual exponents (the fast path must keep them)."""
    out = []
    for i in range(draw(st.integers(1, 12))):
        cnt = draw(st.sampled_from([Decimal(1), Decimal("2"), Decimal("3.0"), Decimal("0.5")]))
        fee = draw(odd_amounts)
        pric = fee / cnt
        code = draw(st.sampled_from([item.med_list_codg for item in catalog().items]))
        out.append(FeeLine(f"L{i}", code, cnt, pric, fee))
    return tuple(out)


def _same(a: object, b: object) -> None:
    # repr shows each Decimal's exponent; == alone would accept 1.0 for 1.00
    assert a == b
    assert repr(a) == repr(b)


@FAST
@given(st.one_of(fee_lines(n_max=50), odd_lines()))
def test_price_lines_is_line_layer_over_the_bill(lines: tuple[FeeLine, ...]) -> None:
    items = catalog().items_for(lines)
    got, sums = price_lines(lines, items)
    want = tuple(line_layer(line, item) for line, item in zip(lines, items, strict=True))
    _same(got, want)
    for name, field in [
        ("medfee", "det_item_fee_sumamt"),
        ("fulamt", "fulamt_ownpay_amt"),
        ("overlmt", "overlmt_amt"),
        ("preselfpay", "preselfpay_amt"),
        ("inscp", "inscp_scp_amt"),
    ]:
        _same(getattr(sums, name), total(getattr(r, field) for r in want))


def test_a_fast_built_line_result_behaves_like_one_from_init() -> None:
    line = FeeLine("1", METFORMIN, Decimal(2), Decimal("12.80"), Decimal("25.60"))
    (fast,), _ = price_lines((line,), (catalog().item(METFORMIN),))
    slow = line_layer(line, catalog().item(METFORMIN))
    assert type(fast) is LineResult
    assert hash(fast) == hash(slow)
    assert fast._replace(name="x") == slow._replace(name="x")
    assert fast.to_json() == slow.to_json()
    assert repr(fast).startswith("LineResult(feedetl_sn='1', med_list_codg=")
    with pytest.raises(AttributeError):
        fast.name = "changed"  # type: ignore[misc]


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
    items = catalog().items_for(lines)
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
    assert list(vars(r.setlinfo)) == [f.name for f in fields(SetlInfo)]
    assert replace(r.setlinfo) == r.setlinfo


@FAST
@given(bills(), people(), accumulators(), contexts())
def test_the_delta_over_touched_counters_is_the_whole_delta(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext
) -> None:
    # presettle diffs only the counters it touched; every other counter must be unchanged
    r = presettle(b, p, a, bundle(), catalog(), c)
    _same(r.delta, a.delta_to(r.accumulators_after))


def _long_way(lines: tuple[FeeLine, ...]) -> tuple[object, ...] | None:
    """check_bill, items_for and price_lines, as presettle ran them before the one-pass line loop."""
    try:
        check_bill(bill("11", *lines))
        items = catalog().items_for(lines)
        got, sums = price_lines(lines, items)
    except (BillError, SettlementError, ArithmeticError):
        return None
    limited = tuple(
        i for i, item in enumerate(items) if (item.gend_lmt, item.min_age, item.max_age) != (None, None, None)
    )
    return items, got, sums, limited


def _one_pass(lines: tuple[FeeLine, ...]) -> tuple[object, ...] | None:
    priced = price_bill(lines, catalog().plans)
    return None if priced is None else (priced.items, priced.lines, priced.sums, priced.limited)


@st.composite
def doubtful_lines(draw: st.DrawFn) -> tuple[FeeLine, ...]:
    """Lines check_bill or the catalogue may refuse: bad amounts, repeated sn, unknown codes."""
    codes = [item.med_list_codg for item in catalog().items[:6]] + ["NOPE"]
    out = []
    for _ in range(draw(st.integers(1, 6))):
        sn = draw(st.sampled_from(["1", "2", "3", "4"]))
        cnt, pric, fee = draw(bad_amounts), draw(bad_amounts), draw(bad_amounts)
        out.append(FeeLine(sn, draw(st.sampled_from(codes)), cnt, pric, fee))
    return tuple(out)


@FAST
@given(st.one_of(fee_lines(n_max=50), odd_lines(), doubtful_lines()))
def test_the_one_pass_prices_as_the_long_way_or_leaves_the_bill_to_it(lines: tuple[FeeLine, ...]) -> None:
    # None sends presettle the long way; anything else must be exactly what the long way gives
    fast, slow = _one_pass(lines), _long_way(lines)
    if fast is not None:
        assert slow is not None
        _same(fast, slow)


@FAST
@given(st.one_of(fee_lines(n_max=50), odd_lines()))
def test_the_one_pass_takes_every_well_formed_bill(lines: tuple[FeeLine, ...]) -> None:
    assert _one_pass(lines) is not None


@FAST
@given(
    st.one_of(fee_lines(n_max=20), odd_lines()),
    st.sampled_from([ROUND_FLOOR, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_CEILING]),
    st.sampled_from([3, 6, 9, 28]),
)
def test_the_one_pass_stays_exact_in_any_decimal_context(
    lines: tuple[FeeLine, ...], rounding: str, prec: int
) -> None:
    # its short cuts hold only while nothing rounds and x − x is +0: elsewhere it must give up
    with localcontext(prec=prec, rounding=rounding):
        fast, slow = _one_pass(lines), _long_way(lines)
    if fast is not None:
        assert slow is not None
        _same(fast, slow)
    if rounding == ROUND_FLOOR:
        assert fast is None


def test_a_negative_zero_amount_keeps_its_signs() -> None:
    # −0.00 passes check_bill; fee − fee − 0.00 is +0.00 where fee % 0.01 would be −0.00
    lines = (
        FeeLine("1", VITAMINS, Decimal(1), Decimal(0), Decimal("-0.00")),
        FeeLine("2", METFORMIN, Decimal(1), Decimal(0), Decimal("-0.00")),
        FeeLine("3", GLARGINE, Decimal(1), Decimal(0), Decimal("-0")),
    )
    fast = _one_pass(lines)
    assert fast is not None
    _same(fast, _long_way(lines))


def test_a_plan_is_what_pricing_reads_from_its_item() -> None:
    for item in catalog().items:
        plan = catalog().plans[item.med_list_codg]
        assert plan.item is item
        assert plan.fully_selfpaid == (item.chrgitm_lv == "03" or item.selfpay_prop >= 1)
        assert plan.has_selfpay_prop == (item.selfpay_prop != 0)
        assert (plan.selfpay_prop, plan.pric_uplmt_amt, plan.chrgitm_lv) == (
            item.selfpay_prop,
            item.pric_uplmt_amt,
            item.chrgitm_lv,
        )
        assert (plan.name, plan.lmt_used_flag) == (item.name, item.lmt_used_flag)
        assert plan.limited == ((item.gend_lmt, item.min_age, item.max_age) != (None, None, None))


@FAST
@given(
    fee_lines(n_max=12),
    st.dates(min_value=date(1800, 1, 1), max_value=date(2030, 1, 1)),
    st.sampled_from(["1", "2", ""]),
)
def test_limit_findings_over_the_listed_lines_are_those_over_every_line(
    lines: tuple[FeeLine, ...], brdy: date, gend: str
) -> None:
    priced = price_bill(lines, catalog().plans)
    assert priced is not None
    p: Person = replace(person(), brdy=brdy, gend=gend)
    b = bill("11", *lines)
    assert limit_findings(b, priced.items, p, DAY, limited=priced.limited) == limit_findings(
        b, priced.items, p, DAY
    )


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
    first = _critical_terms(rule, None)
    again = _critical_terms(rule, None)
    assert again is first
    lower = rule.model_copy(update={"threshold": Decimal("1.00")})
    assert _critical_terms(lower, None).threshold == Decimal("1.00")
    assert _critical_terms(rule, None).threshold == rule.threshold
