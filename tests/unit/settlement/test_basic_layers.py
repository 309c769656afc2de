"""Deductible, pooled fund, annual cap, personal account then cash — figures checked by hand."""

from __future__ import annotations

from decimal import Decimal

from terminal.settlement import Accumulators, SettlementResult, presettle

from .helpers import (
    BED,
    CT,
    METFORMIN,
    SALINE,
    STENT,
    VISIT,
    VITAMINS,
    bill,
    bundle,
    catalog,
    context,
    empty,
    line,
    person,
)

D = Decimal


def _inpatient_bill(bchno: str = "B1"):  # type: ignore[no-untyped-def]
    # bed 10 × 40 = 400 (甲, in scope 400); CT 280 (over 20, first 26, in scope 234);
    # vitamins 2 × 50 = 100 (丙); stents 2 × 1000 (over 400, first 480, in scope 1120)
    # total 2780 = 100 fully self-paid + 420 over limit + 506 self-pay-first + 1754 in scope
    return bill(
        "2101",
        line("1", BED, "10", "40"),
        line("2", CT, "1", "280"),
        line("3", VITAMINS, "2", "50"),
        line("4", STENT, "2", "1000"),
        bchno=bchno,
    )


def _info(result: SettlementResult, *names: str) -> list[str]:
    data = result.setlinfo.to_json()
    return [data[n] for n in names]


def test_resident_first_admission_at_a_city_level3_hospital() -> None:
    # deductible 1200; (1754 − 1200) × 65% = 554 × 0.65 = 360.10; personal 2780 − 360.10 = 2419.90
    r = presettle(_inpatient_bill(), person("390"), empty(), bundle(), catalog(), context("level3_city"))
    assert _info(
        r, "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"
    ) == ["2780.00", "100.00", "420.00", "506.00", "1754.00"]
    assert _info(r, "act_pay_dedc", "hifp_pay", "fund_pay_sumamt", "psn_part_amt", "psn_cash_pay") == [
        "1200.00",
        "360.10",
        "360.10",
        "2419.90",
        "2419.90",
    ]
    assert r.setlinfo.pool_prop_selfpay == D("0.65")
    assert [(d.fund_pay_type, d.fund_payamt) for d in r.setldetail] == [("390100", D("360.10"))]
    assert r.accumulators_after.get("pooled_paid", "pooled") == D("360.10")
    assert r.accumulators_after.get("admissions", "inpatient_level3_city") == 1


def test_repeat_admission_halves_deductible() -> None:
    # second stay at the same level: deductible 1200 × 0.5 = 600; (1754 − 600) × 65% = 750.10
    first = presettle(_inpatient_bill(), person("390"), empty(), bundle(), catalog(), context())
    second = presettle(
        _inpatient_bill("B2"), person("390"), first.accumulators_after, bundle(), catalog(), context()
    )
    assert _info(second, "act_pay_dedc", "hifp_pay", "psn_part_amt") == ["600.00", "750.10", "2029.90"]
    assert second.accumulators_after.get("pooled_paid", "pooled") == D("1110.20")  # 360.10 + 750.10


def test_repeat_admission_at_another_level_pays_that_levels_full_deductible() -> None:
    first = presettle(_inpatient_bill(), person("390"), empty(), bundle(), catalog(), context("level3_city"))
    # level 2: deductible 800 (first stay there), 80%: (1754 − 800) × 0.80 = 763.20
    other = presettle(
        _inpatient_bill("B2"), person("390"), first.accumulators_after, bundle(), catalog(), context("level2")
    )
    assert _info(other, "act_pay_dedc", "hifp_pay") == ["800.00", "763.20"]


def test_employee_retiree_gets_two_more_points() -> None:
    # bed 30 × 40 = 1200 + saline 100 × 3.50 = 350 → in scope 1550; level 2 deductible 800 → 750 eligible
    # active 90% → 675.00; retired 92% → 690.00
    b = bill("2101", line("1", BED, "30", "40"), line("2", SALINE, "100", "3.50"))
    active = presettle(b, person("310", "active"), empty(), bundle(), catalog(), context("level2"))
    retired = presettle(b, person("310", "retired"), empty(), bundle(), catalog(), context("level2"))
    assert active.setlinfo.hifp_pay == D("675.00")
    assert retired.setlinfo.hifp_pay == D("690.00")
    assert retired.setlinfo.pool_prop_selfpay == D("0.92")


def _visit(bchno: str):  # type: ignore[no-untyped-def]
    # visit 10 (甲) + CT 280 (over 20, first 26, in scope 234) + metformin 2 × 12.80 = 25.60 (甲)
    # total 315.60, in scope 269.60
    return bill(
        "11",
        line("1", VISIT, "1", "10"),
        line("2", CT, "1", "280"),
        line("3", METFORMIN, "2", "12.80"),
        bchno=bchno,
    )


def test_employee_outpatient_year_deductible_then_pooling() -> None:
    p = person("310", balc="200.00")
    first = presettle(_visit("V1"), p, empty(), bundle(), catalog(), context("level3_city"))
    # deductible 300 a year swallows all 269.60 in scope; account 200 of 315.60, cash 115.60
    assert _info(first, "act_pay_dedc", "hifp_pay", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc") == [
        "269.60",
        "0.00",
        "315.60",
        "200.00",
        "115.60",
        "0.00",
    ]
    assert first.accumulators_after.get("deductible_used", "outpatient") == D("269.60")
    p2 = person("310", balc="500.00")
    second = presettle(
        _visit("V2"), p2, first.accumulators_after, bundle(), catalog(), context("level3_city")
    )
    # 30.40 of the deductible left; (269.60 − 30.40) × 60% = 239.20 × 0.6 = 143.52
    # personal 315.60 − 143.52 = 172.08, all from the account; balance 500 − 172.08 = 327.92
    assert _info(second, "act_pay_dedc", "hifp_pay", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc") == [
        "30.40",
        "143.52",
        "172.08",
        "172.08",
        "0.00",
        "327.92",
    ]


def test_annual_cap_limits_the_pooled_fund() -> None:
    # 1450 of the 1500 outpatient cap used and the deductible met: 269.60 × 60% = 161.76 → only 50.00 left
    before = Accumulators(
        2025, {"pooled_paid.outpatient": D("1450.00"), "deductible_used.outpatient": D("300")}
    )
    r = presettle(_visit("V3"), person("310"), before, bundle(), catalog(), context("level3_city"))
    assert r.setlinfo.hifp_pay == D("50.00")
    assert r.setldetail[0].crt_payb_lmt_amt == D("50.00")
    assert "已达年度限额" in r.setldetail[0].setl_proc_info
    assert r.accumulators_after.get("pooled_paid", "outpatient") == D("1500.00")


def test_retiree_outpatient_cap_is_higher() -> None:
    # retired cap 2000: with 1450 used the whole 161.76 is paid
    before = Accumulators(
        2025, {"pooled_paid.outpatient": D("1450.00"), "deductible_used.outpatient": D("300")}
    )
    r = presettle(_visit("V3"), person("310", "retired"), before, bundle(), catalog(), context("level3_city"))
    assert r.setlinfo.hifp_pay == D("161.76")


def test_resident_outpatient_is_pooled_at_primary_level_only() -> None:
    b = bill("11", line("1", VISIT, "1", "10"), line("2", METFORMIN, "2", "12.80"))
    # primary: no deductible, 70% of 35.60 = 24.92
    primary = presettle(b, person("390"), empty(), bundle(), catalog(), context("primary"))
    assert primary.setlinfo.hifp_pay == D("24.92")
    city = presettle(b, person("390"), empty(), bundle(), catalog(), context("level3_city"))
    assert city.setlinfo.hifp_pay == D("0.00")
    assert "不在本待遇支付范围" in city.setl_proc_info


def test_pharmacy_purchase_paid_from_the_personal_account() -> None:
    # employee at a pharmacy (41, not pooled): metformin 25.60 + vitamins 50.00 = 75.60, all from the account
    b = bill("41", line("1", METFORMIN, "2", "12.80"), line("2", VITAMINS, "1", "50"))
    r = presettle(b, person("310", balc="1000.00"), empty(), bundle(), catalog(), context("primary"))
    assert _info(r, "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay", "balc") == [
        "0.00",
        "75.60",
        "75.60",
        "0.00",
        "924.40",
    ]
    assert r.setldetail == ()


def test_declining_the_account_pays_everything_in_cash() -> None:
    b = bill("41", line("1", METFORMIN, "2", "12.80"), acct=False)
    r = presettle(b, person("310", balc="1000.00"), empty(), bundle(), catalog(), context("primary"))
    assert _info(r, "acct_pay", "psn_cash_pay", "balc") == ["0.00", "25.60", "1000.00"]


def test_a_resident_has_no_personal_account() -> None:
    b = bill("41", line("1", METFORMIN, "2", "12.80"))
    r = presettle(b, person("390", balc="88.00"), empty(), bundle(), catalog(), context("primary"))
    assert _info(r, "acct_pay", "psn_cash_pay", "balc") == ["0.00", "25.60", "88.00"]
