"""Line layer (2204 returns): 甲/乙/丙 classes, price ceilings, self-pay-first ratio, rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.errors import BillError, UnknownCatalogCodeError
from terminal.settlement import check_bill, presettle
from terminal.settlement.pricing import price_bill

from .helpers import (
    CT,
    GLARGINE,
    METFORMIN,
    STENT,
    VIP_BED,
    VITAMINS,
    bill,
    bundle,
    catalog,
    context,
    empty,
    line,
    person,
)


def _split(code: str, cnt: str, pric: str) -> tuple[str, str, str, str]:
    priced = price_bill((line("1", code, cnt, pric),), catalog().plans)
    assert priced is not None
    (r,) = priced.lines
    return str(r.fulamt_ownpay_amt), str(r.overlmt_amt), str(r.preselfpay_amt), str(r.inscp_scp_amt)


def test_class_a_item_within_its_ceiling_is_wholly_in_scope() -> None:
    # metformin 2 × 12.80 = 25.60, ceiling 12.80 per box: nothing over, 甲 has no self-pay-first part
    assert _split(METFORMIN, "2", "12.80") == ("0.00", "0.00", "0.00", "25.60")


def test_class_a_item_above_its_ceiling_pays_only_the_excess_itself() -> None:
    # 2 × 13.50 = 27.00; allowed 2 × 12.80 = 25.60; over 1.40
    assert _split(METFORMIN, "2", "13.50") == ("0.00", "1.40", "0.00", "25.60")


def test_class_b_ratio_applies_inside_the_ceiling_only() -> None:
    # CT 280 with a 260 ceiling: over 20; self-pay-first 10% × 260 = 26; in scope 280 − 20 − 26 = 234
    assert _split(CT, "1", "280") == ("0.00", "20.00", "26.00", "234.00")


def test_class_b_consumable_with_quantity() -> None:
    # stent 2 × 1000 = 2000; allowed 2 × 800 = 1600 → over 400; 30% × 1600 = 480; in scope 1120
    assert _split(STENT, "2", "1000") == ("0.00", "400.00", "480.00", "1120.00")


def test_self_pay_first_rounds_half_up_to_the_fen() -> None:
    # glargine 97.55: 10% = 9.755 → 9.76 (ROUND_HALF_UP, not banker's 9.76/9.75); in scope 87.79
    assert _split(GLARGINE, "1", "97.55") == ("0.00", "0.00", "9.76", "87.79")


@pytest.mark.parametrize("code", [VITAMINS, VIP_BED])
def test_class_c_and_out_of_list_items_are_fully_self_paid(code: str) -> None:
    assert _split(code, "3", "33.33") == ("99.99", "0.00", "0.00", "0.00")


def test_chrgitm_lv_codes_come_back_per_line() -> None:
    b = bill(
        "11", line("1", METFORMIN, "1", "12.80"), line("2", CT, "1", "260"), line("3", VITAMINS, "1", "5")
    )
    result = presettle(b, person(), empty(), bundle(), catalog(), context("primary"))
    assert [r.chrgitm_lv for r in result.lines] == ["01", "02", "03"]


def test_an_out_of_catalogue_line_is_fully_self_paid_with_a_trace_line() -> None:
    # metformin 12.80 in scope; XZ00NOPE 2 × 6.00 = 12.00 is not in the catalogue: the patient's
    b = bill("11", line("1", METFORMIN, "1", "12.80"), line("7", "XZ00NOPE", "2", "6.00"))
    result = presettle(b, person(), empty(), bundle(), catalog(), context("primary"))
    outside = result.lines[1]
    assert (str(outside.fulamt_ownpay_amt), str(outside.inscp_scp_amt), outside.chrgitm_lv) == (
        "12.00",
        "0.00",
        "03",
    )
    assert outside.name == "目录外项目"
    s = result.setlinfo
    assert (str(s.medfee_sumamt), str(s.fulamt_ownpay_amt), str(s.inscp_scp_amt)) == (
        "24.80",
        "12.00",
        "12.80",
    )
    assert "目录外项目, 全自费: 明细 7 XZ00NOPE 12.00" in [t.text for t in result.trace]


def test_the_counter_still_refuses_to_look_up_an_unknown_code() -> None:
    # the counter basket prices a scanned code at its catalogue ceiling: an unknown code has no price
    with pytest.raises(UnknownCatalogCodeError, match=r"XZ00NOPE \(fee line 7\)"):
        catalog().item("XZ00NOPE", "7")


def test_empty_bill_is_refused() -> None:
    with pytest.raises(BillError, match="no fee lines"):
        check_bill(bill("11"))


def test_repeated_feedetl_sn_is_refused() -> None:
    with pytest.raises(BillError, match="appears twice"):
        check_bill(bill("11", line("1", METFORMIN, "1", "1"), line("1", CT, "1", "1")))


def test_zero_quantity_is_refused() -> None:
    with pytest.raises(BillError, match="must not be zero"):
        check_bill(bill("11", line("1", METFORMIN, "0", "12.80")))


def test_line_total_off_by_more_than_a_fen_is_refused() -> None:
    bad = line("1", METFORMIN, "3", "12.80")
    bad = type(bad)(bad.feedetl_sn, bad.med_list_codg, bad.cnt, bad.pric, Decimal("38.38"))
    with pytest.raises(BillError, match="is not quantity 3"):
        check_bill(bill("11", bad))


def test_line_total_within_a_fen_of_a_four_decimal_price_is_accepted() -> None:
    # 3 × 0.3333 = 0.9999, billed 1.00: the unit price carries 4 decimals, the total is in fen
    ok = type(line("1", METFORMIN, "1", "1"))("1", METFORMIN, Decimal(3), Decimal("0.3333"), Decimal("1.00"))
    check_bill(bill("11", ok))


def test_amount_not_in_whole_fen_is_refused() -> None:
    odd = type(line("1", METFORMIN, "1", "1"))("1", METFORMIN, Decimal(1), Decimal("1.005"), Decimal("1.005"))
    with pytest.raises(BillError, match="whole fen"):
        check_bill(bill("11", odd))
