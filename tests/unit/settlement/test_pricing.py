"""Line pricing (pricing.py): the 2204 rule on every line, exact in value and exponent, in any context."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Decimal,
    InvalidOperation,
    localcontext,
)

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.domain import FeeLine, Person
from terminal.errors import BillError, RefundLineError, SettlementError
from terminal.settlement import check_bill, presettle
from terminal.settlement.catalog import CatalogItem
from terminal.settlement.money import ZERO, fen, total
from terminal.settlement.pricing import price_bill, price_checked
from terminal.settlement.result import LineResult
from terminal.settlement.safety import limit_findings

from .helpers import DAY, GLARGINE, METFORMIN, VITAMINS, bill, bundle, catalog, context, empty, person
from .strategies import fee_lines

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# amounts with every exponent a caller may send: "3", "3.5", "3.50", "3.5000", and zeros
odd_amounts = st.decimals(min_value=Decimal(0), max_value=Decimal("99999"), places=2).flatmap(
    lambda d: st.sampled_from([d, d.quantize(Decimal("0.0001")), d.normalize(), Decimal(0) * d])
)


@st.composite
def odd_lines(draw: st.DrawFn) -> tuple[FeeLine, ...]:
    """Well-formed lines whose amounts carry unusual exponents (pricing must keep them)."""
    out = []
    for i in range(draw(st.integers(1, 12))):
        cnt = draw(st.sampled_from([Decimal(1), Decimal("2"), Decimal("3.0"), Decimal("0.5")]))
        fee = draw(odd_amounts)
        pric = fee / cnt
        code = draw(st.sampled_from([item.med_list_codg for item in catalog().items]))
        out.append(FeeLine(f"L{i}", code, cnt, pric, fee))
    return tuple(out)


bad_amounts = st.sampled_from(
    [Decimal(0), Decimal(-1), Decimal("0.001"), Decimal("1.005"), Decimal("12.80"), Decimal("25.60")]
)


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


def _same(a: object, b: object) -> None:
    # repr shows each Decimal's exponent; == alone would accept 1.0 for 1.00
    assert a == b
    assert repr(a) == repr(b)


def _rule(line: FeeLine, item: CatalogItem) -> LineResult:
    """The 2204 rule for one line as written in the docs, each operation done as read.

    A refund line (negative quantity) is the charge of its size with every part negated.
    """
    if line.cnt < 0:
        charge = _rule(replace(line, cnt=-line.cnt, det_item_fee_sumamt=-line.det_item_fee_sumamt), item)
        return charge.replace(
            cnt=line.cnt,
            det_item_fee_sumamt=line.det_item_fee_sumamt,
            fulamt_ownpay_amt=-charge.fulamt_ownpay_amt,
            overlmt_amt=-charge.overlmt_amt,
            preselfpay_amt=-charge.preselfpay_amt,
            inscp_scp_amt=-charge.inscp_scp_amt,
        )
    fee = line.det_item_fee_sumamt
    fulamt = overlmt = preselfpay = ZERO
    if item.chrgitm_lv == "03" or item.selfpay_prop >= 1:
        fulamt = fee  # 丙 / out of the list: the whole line is the patient's
    else:
        if item.pric_uplmt_amt is not None:
            allowed = fen(item.pric_uplmt_amt * line.cnt)
            if fee > allowed:
                overlmt = fee - allowed
        if item.selfpay_prop:  # 乙: the self-pay-first ratio applies inside the ceiling only
            preselfpay = fen((fee - overlmt) * item.selfpay_prop)
    return LineResult(
        feedetl_sn=line.feedetl_sn,
        med_list_codg=line.med_list_codg,
        name=line.name or item.name,
        cnt=line.cnt,
        pric=line.pric,
        det_item_fee_sumamt=fee,
        chrgitm_lv=item.chrgitm_lv,
        selfpay_prop=item.selfpay_prop,
        pric_uplmt_amt=item.pric_uplmt_amt,
        fulamt_ownpay_amt=fulamt,
        overlmt_amt=overlmt,
        preselfpay_amt=preselfpay,
        inscp_scp_amt=fee - fulamt - overlmt - preselfpay,
        lmt_used_flag=item.lmt_used_flag,
        dise_codg=line.dise_codg,
    )


def _by_the_rule(lines: tuple[FeeLine, ...]) -> tuple[object, ...] | str | None:
    """check_bill, the items (out-of-catalogue ones fully self-paid) and _rule line by line, with the
    sums total() gives; None if refused, "refund" when a refunded item's part nets below zero."""
    try:
        check_bill(bill("11", *lines))
        items = catalog().items_or_outside(lines)
        want = tuple(_rule(line, item) for line, item in zip(lines, items, strict=True))
    except (BillError, SettlementError, ArithmeticError):
        return None
    for code in {r.med_list_codg for r in want if r.cnt < 0}:
        for part in ("fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt"):
            if sum(getattr(r, part) for r in want if r.med_list_codg == code) < 0:
                return "refund"
    sums = tuple(
        total(getattr(r, field) for r in want)
        for field in (
            "det_item_fee_sumamt",
            "fulamt_ownpay_amt",
            "overlmt_amt",
            "preselfpay_amt",
            "inscp_scp_amt",
        )
    )
    limited = tuple(
        i for i, item in enumerate(items) if (item.gend_lmt, item.min_age, item.max_age) != (None, None, None)
    )
    return items, want, sums, limited


def _priced(lines: tuple[FeeLine, ...]) -> tuple[object, ...] | str | None:
    try:
        priced = price_bill(lines, catalog().plans)
    except RefundLineError:
        return "refund"
    if priced is None:
        return None
    s = priced.sums
    return priced.items, priced.lines, (s.medfee, s.fulamt, s.overlmt, s.preselfpay, s.inscp), priced.limited


@FAST
@given(st.one_of(fee_lines(n_max=50), odd_lines()))
def test_every_line_is_priced_by_the_2204_rule(lines: tuple[FeeLine, ...]) -> None:
    got = _priced(lines)
    assert got is not None, "a well-formed bill is always priced"
    _same(got, _by_the_rule(lines))


@FAST
@given(st.one_of(fee_lines(n_max=50), odd_lines(), doubtful_lines()))
def test_pricing_refuses_exactly_the_bills_check_bill_or_the_catalogue_refuse(
    lines: tuple[FeeLine, ...],
) -> None:
    # None sends presettle to check_bill and items_for, which must then say why
    _same(_priced(lines), _by_the_rule(lines))


@FAST
@given(
    st.one_of(fee_lines(n_max=20), odd_lines()),
    st.sampled_from([ROUND_FLOOR, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_CEILING]),
    st.sampled_from([3, 6, 9, 28]),
)
def test_pricing_follows_the_rule_in_any_decimal_context(
    lines: tuple[FeeLine, ...], rounding: str, prec: int
) -> None:
    # its short cuts hold only while nothing rounds and x − x is +0: elsewhere it prices literally
    with localcontext(prec=prec, rounding=rounding):
        got, want = _priced(lines), _by_the_rule(lines)
    _same(got, want)


def test_a_negative_zero_amount_keeps_its_signs() -> None:
    # −0.00 passes check_bill; fee − fee − 0.00 is +0.00 where fee % 0.01 would be −0.00
    lines = (
        FeeLine("1", VITAMINS, Decimal(1), Decimal(0), Decimal("-0.00")),
        FeeLine("2", METFORMIN, Decimal(1), Decimal(0), Decimal("-0.00")),
        FeeLine("3", GLARGINE, Decimal(1), Decimal(0), Decimal("-0")),
    )
    got = _priced(lines)
    assert got is not None
    _same(got, _by_the_rule(lines))


def test_a_priced_line_result_behaves_like_one_from_init() -> None:
    line = FeeLine("1", METFORMIN, Decimal(2), Decimal("12.80"), Decimal("25.60"))
    priced = price_bill((line,), catalog().plans)
    assert priced is not None
    (fast,) = priced.lines
    slow = _rule(line, catalog().item(METFORMIN))
    assert type(fast) is LineResult
    assert hash(fast) == hash(slow)
    assert fast.replace(name="x") == slow.replace(name="x")
    assert fast.to_json() == slow.to_json()
    assert repr(fast).startswith("LineResult(feedetl_sn='1', med_list_codg=")
    with pytest.raises(AttributeError):
        fast.name = "changed"  # type: ignore[misc]


def test_pricing_decimal_refuses_raises_once_the_bill_passed_its_checks() -> None:
    # 100,000 × 0.01 = 1,000.00 fits six digits, the ceiling allowance 100,000 × 12.80 in fen does not:
    # check_bill and the catalogue accept the line, so presettle raises what Decimal raised
    lines = (FeeLine("1", METFORMIN, Decimal(100000), Decimal("0.01"), Decimal("1000.00")),)
    with localcontext(prec=6):
        assert price_bill(lines, catalog().plans) is None
        check_bill(bill("11", *lines))
        with pytest.raises(InvalidOperation):
            price_checked(lines, catalog().plans)
        with pytest.raises(InvalidOperation):
            presettle(bill("11", *lines), person(), empty(), bundle(), catalog(), context())


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
