"""Worked examples from domain.md part 4 and issue 3, every figure checked by hand in the comments."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from terminal.domain import Bill
from terminal.errors import ReversalOrderError
from terminal.settlement import Accumulators, OpspFiling, PersonBenefits, SettlementResult, presettle, reverse

from .helpers import (
    BED,
    CT,
    DIALYSIS,
    GLARGINE,
    ICU,
    METFORMIN,
    MRI,
    PCI,
    PROTEIN,
    SALINE,
    STENT,
    TARGETED,
    VENTILATION,
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

D = Decimal


def _amounts(r: SettlementResult, *names: str) -> dict[str, str]:
    data = r.setlinfo.to_json()
    return {n: data[n] for n in names}


def _xiangtan_bill() -> Bill:
    # Out of scope F = 9,400:
    #   特需病房 10 × 300 = 3,000 (丙); 靶向药 2 × 1,500 = 3,000 (丙); 蛋白粉 8 × 221 = 1,768 (丙)
    #   stents 3 × 1,000 = 3,000: over 3 × 200 = 600, first 30% × 2,400 = 720, in scope 1,680
    #   CT 4 × 260 = 1,040: first 104, in scope 936;  MRI 2 × 520 = 1,040: first 208, in scope 832
    #   F = 3,000 + 3,000 + 1,768 + 600 + 720 + 104 + 208 = 9,400
    # In scope S = 1,680 + 936 + 832 + bed 20 × 40 = 800 + saline 400 × 3.50 = 1,400 + ICU 60 × 800 = 48,000
    #   + PCI 6,000 + dialysis 40 × 450 = 18,000 + ventilation 1,271 h × 12 = 15,252 = 92,900
    # Total 102,300.
    return bill(
        "2101",
        line("1", VIP_BED, "10", "300"),
        line("2", TARGETED, "2", "1500"),
        line("3", PROTEIN, "8", "221"),
        line("4", STENT, "3", "1000"),
        line("5", CT, "4", "260"),
        line("6", MRI, "2", "520"),
        line("7", BED, "20", "40"),
        line("8", SALINE, "400", "3.50"),
        line("9", ICU, "60", "800"),
        line("10", PCI, "1", "6000"),
        line("11", DIALYSIS, "40", "450"),
        line("12", VENTILATION, "1271", "12"),
        bchno="XT-102300",
    )


def test_xiangtan_severely_disabled_resident_inpatient_pays_about_14400() -> None:
    # domain.md part 4, scenario B (city level 3, first admission, placeholder parameters):
    #   basic: (92,900 − 1,200) × 65% = 59,605.00
    #   in-scope self-pay after basic: 92,900 − 59,605 = 33,295.00
    #   大病, tilted (threshold 16,000 × 0.5 = 8,000; ratios +5 points):
    #     (30,000 − 8,000) × 65% = 14,300.00 + (33,295 − 30,000) × 70% = 2,306.50 → 16,606.50
    #   assistance 70% × (33,295 − 16,606.50 = 16,688.50) = 11,681.95; left in scope 5,006.55
    #   personal 9,400 + 5,006.55 = 14,406.55; funds 59,605 + 16,606.50 + 11,681.95 = 87,893.45
    benefits = PersonBenefits(assistance_category="severe_disability")
    r = presettle(_xiangtan_bill(), person("390"), empty(), bundle(), catalog(), context(benefits=benefits))
    assert _amounts(
        r, "medfee_sumamt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "hifmi_pay", "maf_pay"
    ) == {
        "medfee_sumamt": "102300.00",
        "inscp_scp_amt": "92900.00",
        "act_pay_dedc": "1200.00",
        "hifp_pay": "59605.00",
        "hifmi_pay": "16606.50",
        "maf_pay": "11681.95",
    }
    assert r.setlinfo.fulamt_ownpay_amt + r.setlinfo.overlmt_selfpay + r.setlinfo.preselfpay_amt == D(
        "9400.00"
    )
    assert _amounts(r, "fund_pay_sumamt", "psn_part_amt", "psn_cash_pay") == {
        "fund_pay_sumamt": "87893.45",
        "psn_part_amt": "14406.55",
        "psn_cash_pay": "14406.55",
    }
    assert [(d.fund_pay_type, str(d.fund_payamt)) for d in r.setldetail] == [
        ("390100", "59605.00"),
        ("390200", "16606.50"),
        ("610100", "11681.95"),
    ]
    assert r.accumulators_after.get("critical_illness_base") == D("33295.00")
    assert r.accumulators_after.get("assistance_paid") == D("11681.95")


def test_xiangtan_bill_for_an_ordinary_resident_is_scenario_a() -> None:
    # no tilt, no assistance: 大病 = (30,000 − 16,000) × 60% = 8,400 + 3,295 × 65% = 2,141.75 → 10,541.75
    # personal = 9,400 + (33,295 − 10,541.75 = 22,753.25) = 32,153.25
    r = presettle(_xiangtan_bill(), person("390"), empty(), bundle(), catalog(), context())
    assert _amounts(r, "hifp_pay", "hifmi_pay", "maf_pay", "psn_part_amt") == {
        "hifp_pay": "59605.00",
        "hifmi_pay": "10541.75",
        "maf_pay": "0.00",
        "psn_part_amt": "32153.25",
    }


def test_xiangtan_settlement_reverses_to_the_empty_year() -> None:
    benefits = PersonBenefits(assistance_category="severe_disability")
    r = presettle(_xiangtan_bill(), person("390"), empty(), bundle(), catalog(), context(benefits=benefits))
    assert reverse(r.accumulators_after, r) == empty()


def test_critical_illness_counts_the_years_earlier_self_pay() -> None:
    # An earlier stay left 20,000 of in-scope self-pay. This stay adds 33,295 → 53,295 cumulative.
    # Ordinary resident: cover(53,295) − cover(20,000)
    #   = [14,000 × 60% + 23,295 × 65%] − [4,000 × 60%] = [8,400 + 15,141.75] − 2,400 = 21,141.75
    # Second admission this year at level 3: deductible 600 → basic (92,900 − 600) × 65% = 59,995.00,
    # so the self-pay after basic is 32,905 and cumulative 52,905:
    #   [8,400 + 22,905 × 65% = 14,888.25] − 2,400 = 20,888.25
    before = Accumulators(
        2025, {"critical_illness_base": D("20000.00"), "admissions.inpatient_level3_city": D(1)}
    )
    r = presettle(_xiangtan_bill(), person("390"), before, bundle(), catalog(), context())
    assert _amounts(r, "act_pay_dedc", "hifp_pay", "hifmi_pay") == {
        "act_pay_dedc": "600.00",
        "hifp_pay": "59995.00",
        "hifmi_pay": "20888.25",
    }
    assert r.accumulators_after.get("critical_illness_base") == D("52905.00")


def test_critical_illness_pays_nothing_at_or_below_its_threshold() -> None:
    # in-scope self-pay exactly reaching 16,000 cumulative pays nothing; one fen more pays 60% of it → 0.01
    at = Accumulators(2025, {"critical_illness_base": D("15000.00")})
    small = bill("2101", line("1", BED, "25", "40"))  # in scope 1,000; deductible 1,200 swallows it
    r = presettle(small, person("390"), at, bundle(), catalog(), context())
    assert r.setlinfo.hifmi_pay == D("0.00") and r.accumulators_after.get("critical_illness_base") == D(
        "16000"
    )
    over = presettle(small, person("390"), replace_base(at, "15000.02"), bundle(), catalog(), context())
    assert over.setlinfo.hifmi_pay == D("0.01")  # 0.02 × 60% = 0.012 → 0.01


def replace_base(a: Accumulators, value: str) -> Accumulators:
    """The same accumulators with another critical-illness base."""
    return Accumulators(a.year, {**a.counters, "critical_illness_base": D(value)})


def test_critical_illness_stops_at_its_annual_cap() -> None:
    # 399,990 of the 400,000 cap already paid: only 10.00 is left
    before = Accumulators(
        2025, {"critical_illness_base": D("600000"), "critical_illness_paid": D("399990.00")}
    )
    r = presettle(_xiangtan_bill(), person("390"), before, bundle(), catalog(), context())
    assert r.setlinfo.hifmi_pay == D("10.00")


def test_assistance_stops_at_its_category_cap() -> None:
    # 特困 cap 60,000 with 59,000 paid: 70% of the remaining self-pay (11,681.95 before) is cut to 1,000
    before = Accumulators(2025, {"assistance_paid": D("59000.00")})
    benefits = PersonBenefits(assistance_category="tekun")
    r = presettle(_xiangtan_bill(), person("390"), before, bundle(), catalog(), context(benefits=benefits))
    assert r.setlinfo.maf_pay == D("1000.00")


def test_marginal_category_gets_no_tilt_and_a_lower_ratio() -> None:
    # 低保边缘: scenario A's 大病 10,541.75, then 60% × 22,753.25 = 13,651.95
    benefits = PersonBenefits(assistance_category="dibao_edge")
    r = presettle(_xiangtan_bill(), person("390"), empty(), bundle(), catalog(), context(benefits=benefits))
    assert _amounts(r, "hifmi_pay", "maf_pay", "psn_part_amt") == {
        "hifmi_pay": "10541.75",
        "maf_pay": "13651.95",
        "psn_part_amt": "18501.30",  # 32,153.25 − 13,651.95
    }


def test_diabetes_purchase_at_a_pharmacy_uses_the_filed_disease_table() -> None:
    # Resident filed for 糖尿病 M03900, buying at a pharmacy (41):
    #   metformin 2 × 12.80 = 25.60 in scope; glargine 2 × 98 = 196: first 19.60, in scope 176.40 (M03900)
    #   vitamins 50 (no disease code) → pharmacy purchase, not pooled
    #   门特 group 202.00 × 70%, no deductible, 2,000 limit → 141.40
    #   personal 271.60 − 141.40 = 130.20 (a resident has no account: all cash)
    filing = OpspFiling("M03900", date(2024, 3, 1), date(2026, 2, 28))
    b = bill(
        "41",
        line("1", METFORMIN, "2", "12.80", dise_codg="M03900"),
        line("2", GLARGINE, "2", "98", dise_codg="M03900"),
        line("3", VITAMINS, "1", "50"),
    )
    r = presettle(
        b, person("390"), empty(), bundle(), catalog(), context("primary", PersonBenefits((filing,)))
    )
    assert _amounts(r, "medfee_sumamt", "hifp_pay", "psn_part_amt", "psn_cash_pay") == {
        "medfee_sumamt": "271.60",
        "hifp_pay": "141.40",
        "psn_part_amt": "130.20",
        "psn_cash_pay": "130.20",
    }
    assert r.accumulators_after.get("opsp_paid", "M03900") == D("141.40")
    assert "门特 糖尿病(M03900)" in r.setl_proc_info


def test_diabetes_lines_without_a_valid_filing_are_not_pooled_at_a_pharmacy() -> None:
    expired = OpspFiling("M03900", date(2023, 1, 1), date(2024, 12, 31))
    b = bill("41", line("1", METFORMIN, "2", "12.80", dise_codg="M03900"))
    r = presettle(
        b, person("390"), empty(), bundle(), catalog(), context("primary", PersonBenefits((expired,)))
    )
    assert r.setlinfo.hifp_pay == D("0.00")


def test_retired_employee_chronic_visit_with_limit_nearly_used() -> None:
    # regression: the large-amount subsidy once paid for cost a 门特 disease limit left uncovered
    # med_type 14, employee retired: 85% + 2 = 87% of 202.00 = 175.74, but only 100.00 of the
    # 4,000 limit is left → 100.00; employee has 300 in the account → personal 121.60 from the account
    filing = OpspFiling("M03900", date(2025, 1, 1))
    b = bill(
        "14",
        line("1", METFORMIN, "2", "12.80", dise_codg="M03900"),
        line("2", GLARGINE, "2", "98", dise_codg="M03900"),
    )
    before = Accumulators(2025, {"opsp_paid.M03900": D("3900.00")})
    p = person("310", "retired", balc="300.00")
    free = presettle(b, p, empty(), bundle(), catalog(), context("level2", PersonBenefits((filing,))))
    assert free.setlinfo.hifp_pay == D("175.74")
    r = presettle(b, p, before, bundle(), catalog(), context("level2", PersonBenefits((filing,))))
    assert _amounts(r, "hifp_pay", "psn_part_amt", "acct_pay", "balc") == {
        "hifp_pay": "100.00",
        "psn_part_amt": "121.60",
        "acct_pay": "121.60",
        "balc": "178.40",
    }


def test_chronic_visit_whose_lines_no_filing_covers_settles_as_general_outpatient() -> None:
    # med_type 14 with no filing → the 11 benefit: employee level 2 outpatient, deductible 200 a year,
    # in scope 202.00 → 200 deductible, 2.00 × 60% = 1.20
    b = bill("14", line("1", METFORMIN, "2", "12.80"), line("2", GLARGINE, "2", "98"))
    r = presettle(b, person("310"), empty(), bundle(), catalog(), context("level2"))
    assert _amounts(r, "act_pay_dedc", "hifp_pay") == {"act_pay_dedc": "200.00", "hifp_pay": "1.20"}


def _small_inpatient() -> Bill:
    # in scope 1,754 (see test_basic_layers): bed 400 + CT 234 + stents 1,120; total 2,780
    return bill(
        "2101",
        line("1", BED, "10", "40"),
        line("2", CT, "1", "280"),
        line("3", VITAMINS, "2", "50"),
        line("4", STENT, "2", "1000"),
    )


def test_cross_region_inpatient_not_filed_loses_fifteen_points() -> None:
    # insured-place (430100) rules, treatment-place catalogue: (1,754 − 1,200) × (65% − 15%) = 277.00
    r = presettle(
        _small_inpatient(), person("390"), empty(), bundle(), catalog(), context(cross_region="unfiled")
    )
    assert r.setlinfo.hifp_pay == D("277.00")
    # temporary care: −10 points → 554 × 55% = 304.70; filed: no reduction → 360.10
    temp = presettle(
        _small_inpatient(), person("390"), empty(), bundle(), catalog(), context(cross_region="temporary")
    )
    filed = presettle(
        _small_inpatient(), person("390"), empty(), bundle(), catalog(), context(cross_region="filed")
    )
    assert (temp.setlinfo.hifp_pay, filed.setlinfo.hifp_pay) == (D("304.70"), D("360.10"))


def test_employee_over_the_pooled_cap_gets_the_large_amount_subsidy() -> None:
    # employee level 3 (city): deductible 1,100, 85%; eligible 1,754 − 1,100 = 654 → 555.90 uncapped,
    # but only 200.00 of the 150,000 cap is left → hifp 200.00. Cost the cap left uncovered:
    # 654 − 200 / 0.85 (235.29) = 418.71 → 大额 90% = 376.839 → 376.84
    before = Accumulators(2025, {"pooled_paid.pooled": D("149800.00")})
    r = presettle(_small_inpatient(), person("310"), before, bundle(), catalog(), context())
    assert _amounts(r, "hifp_pay", "hifob_pay", "fund_pay_sumamt") == {
        "hifp_pay": "200.00",
        "hifob_pay": "376.84",
        "fund_pay_sumamt": "576.84",
    }
    assert [d.fund_pay_type for d in r.setldetail] == ["310100", "330100"]


def test_civil_servant_subsidy_pays_half_the_remaining_in_scope_self_pay() -> None:
    # employee, no cap trouble: hifp 555.90; in-scope self-pay 1,754 − 555.90 = 1,198.10 → 50% = 599.05
    benefits = PersonBenefits(cvlserv_flag=True)
    r = presettle(_small_inpatient(), person("310"), empty(), bundle(), catalog(), context(benefits=benefits))
    assert _amounts(r, "hifp_pay", "cvlserv_pay", "psn_part_amt") == {
        "hifp_pay": "555.90",
        "cvlserv_pay": "599.05",
        "psn_part_amt": "1625.05",  # 2,780 − 555.90 − 599.05
    }


def test_reversal_restores_the_year_after_two_stays() -> None:
    # settle two stays; reversals go latest first (docs/settlement.md, "Reversal order")
    first = presettle(_small_inpatient(), person("390"), empty(), bundle(), catalog(), context())
    second = presettle(
        replace(_small_inpatient(), chrg_bchno="B2"),
        person("390"),
        first.accumulators_after,
        bundle(),
        catalog(),
        context(),
    )
    # the second stay was priced as a repeat admission (deductible 1,200 halved to 600): reversing
    # the first alone would leave it priced on a stay that no longer exists, so it is refused
    assert (str(first.setlinfo.act_pay_dedc), str(second.setlinfo.act_pay_dedc)) == ("1200.00", "600.00")
    with pytest.raises(ReversalOrderError, match=r"later settlements still standing \(B2\)"):
        reverse(second.accumulators_after, first, later=[second])
    with pytest.raises(ReversalOrderError, match="accumulators moved"):
        reverse(second.accumulators_after, first)
    # latest first: the second stay's reversal leaves exactly the first stay's counters ...
    after_second = reverse(second.accumulators_after, second)
    assert after_second == first.accumulators_after
    # ... 1st stay: deductible 1,200 → pooled 360.10, one admission, 大病 base 1,754 − 360.10 = 1,393.90
    assert after_second.to_json() == {
        "year": 2025,
        "counters": {
            "admissions.inpatient_level3_city": "1",
            "critical_illness_base": "1393.90",
            "pooled_paid.pooled": "360.10",
        },
    }
    # ... and then the first's restores the empty year
    assert reverse(after_second, first) == empty()
