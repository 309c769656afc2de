"""Bill rules of issues 17.5 and 19.2: exact line fees, refund lines, amount caps and zero bills."""

from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.domain import FeeLine
from terminal.errors import (
    BillOverCapError,
    BillZeroError,
    LineFeeError,
    LineOverCapError,
    RefundLineError,
)
from terminal.settlement import check_bill, presettle
from terminal.settlement.policy import AmountLimits

from .helpers import CT, METFORMIN, VITAMINS, bill, bundle, catalog, context, empty, line, person

D = Decimal


def _settle(*lines: FeeLine, limits: AmountLimits | None = None) -> object:
    policy = bundle() if limits is None else bundle().model_copy(update={"amount_limits": limits})
    return presettle(bill("11", *lines), person(), empty(), policy, catalog(), context("primary"))


def test_a_fen_of_slack_per_line_is_refused() -> None:
    # 1 × 19.99 billed 20.00: one fen a line was accepted, so 1,000 such lines priced 20,000.00
    with pytest.raises(LineFeeError, match=r"is not quantity 1 × price 19.99 = 19.99"):
        check_bill(bill("11", FeeLine("1", METFORMIN, D(1), D("19.99"), D("20.00"))))


def test_the_fee_is_the_product_rounded_half_up() -> None:
    # 3 × 0.1235 = 0.3705 → 0.37; 5 × 0.0010 = 0.005 → 0.01 (half up, not to even)
    check_bill(bill("11", FeeLine("1", METFORMIN, D(3), D("0.1235"), D("0.37"))))
    check_bill(bill("11", FeeLine("1", METFORMIN, D(5), D("0.0010"), D("0.01"))))
    with pytest.raises(LineFeeError):
        check_bill(bill("11", FeeLine("1", METFORMIN, D(5), D("0.0010"), D("0.00"))))


def test_a_refund_line_nets_against_the_same_items_charge() -> None:
    # CT (乙 10 %, ceiling 260) 3 × 280 = 840: over 3 × 20 = 60, self-pay-first 78.00, in scope 702.00;
    # refund 1 × 280 = −280: over −20, self-pay-first −26.00, in scope −234.00;
    # net: 560.00 = over 40.00 + self-pay-first 52.00 + in scope 468.00 (what 2 × 280 prices to)
    refunded = _settle(line("1", CT, "3", "280"), line("2", CT, "-1", "280"))
    plain = _settle(line("1", CT, "2", "280"))
    r = refunded.setlinfo  # type: ignore[attr-defined]
    assert (str(r.medfee_sumamt), str(r.overlmt_selfpay), str(r.preselfpay_amt), str(r.inscp_scp_amt)) == (
        "560.00",
        "40.00",
        "52.00",
        "468.00",
    )
    back = refunded.lines[1]  # type: ignore[attr-defined]
    assert (str(back.overlmt_amt), str(back.preselfpay_amt), str(back.inscp_scp_amt)) == (
        "-20.00",
        "-26.00",
        "-234.00",
    )
    assert refunded.setlinfo.psn_part_amt == plain.setlinfo.psn_part_amt  # type: ignore[attr-defined]
    assert refunded.setlinfo.hifp_pay == plain.setlinfo.hifp_pay  # type: ignore[attr-defined]


def test_a_refund_without_a_charged_line_is_refused() -> None:
    with pytest.raises(RefundLineError, match="no charged line of that item at that price"):
        _settle(line("1", METFORMIN, "2", "12.80"), line("2", CT, "-1", "280"))


def test_a_refund_at_another_price_is_refused() -> None:
    with pytest.raises(RefundLineError, match="no charged line"):
        _settle(line("1", CT, "3", "280"), line("2", CT, "-1", "250"))


def test_a_refund_beyond_the_charged_quantity_is_refused() -> None:
    with pytest.raises(RefundLineError, match="exceed the charged quantity by 1"):
        _settle(line("1", CT, "2", "280"), line("2", CT, "-3", "280"), line("3", METFORMIN, "9", "12.80"))


def test_a_refund_line_with_a_positive_amount_is_refused() -> None:
    bad = FeeLine("2", CT, D(-1), D(280), D("280.00"))
    with pytest.raises(Exception, match="wrong sign"):
        check_bill(bill("11", line("1", CT, "3", "280"), bad))


def test_a_refund_whose_parts_would_net_below_zero_is_refused() -> None:
    # three 1 × 0.14 lines of CT (10 %): self-pay-first fen(0.014) = 0.01 each, 0.03 in all; one
    # refund of 3 × 0.14 = 0.42 takes back fen(0.042) = 0.04, so the part would net to −0.01
    lines = [line(str(i), CT, "1", "0.14") for i in range(1, 4)]
    with pytest.raises(RefundLineError, match=r"先行自付 \(preselfpay_amt\) below zero \(-0.01\)"):
        _settle(*lines, line("9", CT, "-3", "0.14"), line("10", METFORMIN, "1", "12.80"))


def test_a_bill_refunded_to_zero_is_refused_as_a_zero_bill() -> None:
    with pytest.raises(BillZeroError, match="total is zero"):
        _settle(line("1", CT, "1", "280"), line("2", CT, "-1", "280"))


def test_a_zero_amount_bill_is_refused() -> None:
    with pytest.raises(BillZeroError):
        _settle(line("1", VITAMINS, "3", "0"))


LIMITS = AmountLimits(placeholder=True, source="test", line_max=D("1000.00"), bill_max=D("1500.00"))


def test_a_line_at_the_cap_settles_and_a_fen_above_is_refused() -> None:
    _settle(line("1", VITAMINS, "1", "1000.00"), limits=LIMITS)
    with pytest.raises(LineOverCapError, match=r"amount 1000\.01 is above the per-line cap 1000\.00"):
        _settle(line("1", VITAMINS, "1", "1000.01"), limits=LIMITS)


def test_a_bill_at_the_cap_settles_and_a_fen_above_is_refused() -> None:
    _settle(line("1", VITAMINS, "1", "1000.00"), line("2", VITAMINS, "1", "500.00"), limits=LIMITS)
    with pytest.raises(BillOverCapError, match=r"total 1500\.01 is above the per-bill cap 1500\.00"):
        _settle(line("1", VITAMINS, "1", "1000.00"), line("2", VITAMINS, "1", "500.01"), limits=LIMITS)


def test_the_absurd_basket_of_issue_17_is_refused_by_the_shipped_caps() -> None:
    # 999,999.99 × 9,999,999,999.99 settled before (medfee 9,999,999,899,990,000.00)
    cnt, pric = D("999999.99"), D("9999999999.99")
    absurd = FeeLine("1", METFORMIN, cnt, pric, (cnt * pric).quantize(D("0.01")))
    with pytest.raises(LineOverCapError):
        _settle(absurd)


def test_the_shipped_bundles_carry_their_amount_caps() -> None:
    caps = bundle().amount_limits
    assert caps.placeholder
    assert (caps.line_max, caps.bill_max) == (D("2000000.00"), D("20000000.00"))
