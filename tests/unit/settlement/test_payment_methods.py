"""Payment methods (issue 19.3): quotas, mid-stay periods, the settlement day of a stay, DRG.

Every expected amount is a literal of docs/settlement.md, "Payment methods" (placeholder tables of
the shipped Xiangtan bundle; a resident at a city level-3 hospital unless said otherwise).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest

from terminal.domain import Bill, FeeLine
from terminal.errors import PaymentMethodError
from terminal.settlement import Accumulators, SettlementResult, presettle
from terminal.settlement.methods import settlement_day, stay_days

from .helpers import BED, ICU, VITAMINS, bill, bundle, catalog, context, empty, line, person


def _stay(med_type: str, *lines: FeeLine, begin: str, end: str | None, **kw: object) -> Bill:
    b = bill(med_type, *lines)
    return replace(
        b,
        begntime=datetime.fromisoformat(begin),
        endtime=None if end is None else datetime.fromisoformat(end),
        **kw,  # type: ignore[arg-type]
    )


def _settle(b: Bill, before: Accumulators | None = None, **ctx: object) -> SettlementResult:
    return presettle(b, person("390"), before or empty(), bundle(), catalog(), context(**ctx))


def _psychiatric(days_end: str, *lines: FeeLine) -> Bill:
    return _stay(
        "2101", *lines, begin="2025-06-01T09:00", end=days_end, psn_setlway="02", dise_codg="F20.900"
    )


def test_bed_day_quota_above_the_standard_leaves_the_excess_to_the_hospital() -> None:
    # 20 bed days × 300.00 = 6,000.00; in catalogue 6,400.00; patient 10 % = 600.00 (+ 丙 30.00)
    b = _psychiatric(
        "2025-06-21T09:00",
        line("L1", BED, "20", "40"),
        line("L2", ICU, "7", "800"),
        line("L3", VITAMINS, "1", "30"),
    )
    info = _settle(b).setlinfo
    assert (info.hifp_pay, info.hosp_part_amt, info.psn_part_amt) == (
        Decimal("5400.00"),
        Decimal("400.00"),
        Decimal("630.00"),
    )
    assert info.act_pay_dedc == Decimal("0.00") and info.pool_prop_selfpay == Decimal("0.90")


def test_bed_day_quota_below_the_standard_pays_the_billed_cost() -> None:
    # 30 bed days × 300.00 = 9,000.00 but 6,400.00 billed: 640.00 patient, 5,760.00 fund, hospital 0
    b = _psychiatric("2025-07-01T09:00", line("L1", BED, "20", "40"), line("L2", ICU, "7", "800"))
    info = _settle(b).setlinfo
    assert (info.hifp_pay, info.hosp_part_amt, info.psn_part_amt) == (
        Decimal("5760.00"),
        Decimal("0.00"),
        Decimal("640.00"),
    )


def test_rehabilitation_bed_days_use_their_own_row() -> None:
    # no psychiatric diagnosis: the rehabilitation row, 10 days × 400.00 = 4,000.00, 20 % = 800.00
    b = _stay(
        "2101",
        line("L1", ICU, "5", "800"),
        begin="2025-06-01T09:00",
        end="2025-06-11T09:00",
        psn_setlway="02",
    )
    info = _settle(b).setlinfo
    assert (info.hifp_pay, info.hosp_part_amt, info.psn_part_amt) == (
        Decimal("3200.00"),
        Decimal("0.00"),
        Decimal("800.00"),
    )


def test_single_disease_quota() -> None:
    # 急性阑尾炎 6,000.00, patient 30 % = 1,800.00; 7,000.00 billed: hospital 1,000.00
    b = _stay(
        "2102",
        line("L1", ICU, "8", "800"),
        line("L2", BED, "15", "40"),
        begin="2025-06-01T09:00",
        end="2025-06-05T09:00",
        psn_setlway="0201",
        dise_codg="K35.800",
    )
    info = _settle(b).setlinfo
    assert (info.hifp_pay, info.hosp_part_amt, info.psn_part_amt) == (
        Decimal("4200.00"),
        Decimal("1000.00"),
        Decimal("1800.00"),
    )


def test_day_surgery_quota() -> None:
    # 白内障 4,000.00; 3,500.00 billed: patient 30 % = 1,050.00, fund 2,450.00
    b = _stay(
        "28",
        line("L1", ICU, "4", "800"),
        line("L2", BED, "7", "40"),
        line("L3", BED, "1", "20"),
        begin="2025-06-01T08:00",
        end="2025-06-01T17:00",
        psn_setlway="0202",
        dise_codg="H25.900",
    )
    info = _settle(b).setlinfo
    assert (info.hifp_pay, info.hosp_part_amt, info.psn_part_amt) == (
        Decimal("2450.00"),
        Decimal("0.00"),
        Decimal("1050.00"),
    )


def test_a_quota_the_bundle_lacks_or_a_cross_region_quota_is_refused() -> None:
    b = _stay("2102", line("L1", ICU, "8", "800"), begin="2025-06-01", end="2025-06-05", psn_setlway="0201")
    with pytest.raises(PaymentMethodError, match=r"no single_disease quota .* diagnosis None"):
        _settle(b)
    with pytest.raises(PaymentMethodError, match="cross-region patient"):
        _settle(replace(b, dise_codg="K35.800"), cross_region="filed")
    with pytest.raises(PaymentMethodError, match="needs the period's endtime"):
        _settle(replace(b, psn_setlway="02", endtime=None))


def test_a_later_period_of_a_stay_pays_no_second_deductible() -> None:
    # period 1: (4,000 − 1,200) × 65 % = 1,820.00; period 2 of the same stay: 4,000 × 65 % = 2,600.00
    first = _stay(
        "2101", line("L1", ICU, "5", "800"), begin="2025-06-01", end="2025-06-30", mid_setl_flag=True
    )
    one = _settle(first)
    assert (one.setlinfo.hifp_pay, one.setlinfo.psn_part_amt) == (Decimal("1820.00"), Decimal("2180.00"))
    second = replace(first, chrg_bchno="B2", stay_period=2, mid_setl_flag=False)
    two = _settle(second, one.accumulators_after)
    assert (two.setlinfo.act_pay_dedc, two.setlinfo.hifp_pay) == (Decimal("0.00"), Decimal("2600.00"))
    assert two.setlinfo.psn_part_amt == Decimal("1400.00")
    assert two.accumulators_after.counters["admissions.inpatient_level3_city"] == Decimal(1)


def test_a_stay_is_settled_on_the_day_it_ends() -> None:
    b = _stay("2101", line("L1", ICU, "5", "800"), begin="2025-12-20T10:00", end="2026-01-05T10:00")
    assert settlement_day(b, date(2025, 12, 20)) == date(2026, 1, 5)
    assert settlement_day(replace(b, endtime=None), date(2025, 12, 20)) == date(2025, 12, 20)
    assert stay_days(b) == 16


def test_drg_reconciles_fund_and_hospital_and_leaves_the_patient_alone() -> None:
    # ICU 45 × 800 = 36,000.00 in scope, 6 days, group FM19 (standard 32,000.00):
    # fund by item (36,000 − 1,200) × 65 % = 22,620.00, patient 13,380.00 either way;
    # the fund owes the hospital 32,000 − 13,380 = 18,620.00, the hospital bears 4,000.00
    b = _stay("2101", line("L1", ICU, "45", "800"), begin="2025-06-01", end="2025-06-07")
    plain = _settle(b)
    drg = _settle(replace(b, drg_code="FM19"))
    assert drg.setlinfo == plain.setlinfo
    assert drg.setlinfo.psn_part_amt == Decimal("13380.00") and drg.setlinfo.hosp_part_amt == Decimal("0.00")
    assert drg.drg is not None and plain.drg is None
    assert (drg.drg.standard, drg.drg.hifp_due, drg.drg.hosp_part_amt) == (
        Decimal("32000.00"),
        Decimal("18620.00"),
        Decimal("4000.00"),
    )
    assert drg.to_json()["drg"]["hosp_part_amt"] == "4000.00" and "drg" not in plain.to_json()


def test_drg_leaves_out_short_stays_mid_stay_periods_and_unpriced_groups() -> None:
    b = _stay("2101", line("L1", ICU, "45", "800"), begin="2025-06-01", end="2025-06-03", drg_code="FM19")
    assert _settle(b).drg is None  # 2 days
    assert _settle(replace(b, endtime=datetime(2025, 6, 7), mid_setl_flag=True)).drg is None
    unpriced = _settle(replace(b, endtime=datetime(2025, 6, 7), drg_code="XX99"))
    assert unpriced.drg is None and any("不做清算" in t.text for t in unpriced.trace)
