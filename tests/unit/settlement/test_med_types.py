"""More medical types (issue 19 item 4), each a table in the shipped bundle, checked by hand.

Every expected amount is a literal derived in docs/settlement.md, "More medical types"; every figure of
those tables is a placeholder (see each table's `source`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from terminal.domain import Bill
from terminal.errors import InjuryExcludedError, SettlementError
from terminal.settlement import Accumulators, SettlementResult, presettle
from terminal.settlement.policy import Level

from .helpers import (
    BED,
    CHILD_SYRUP,
    CT,
    GLARGINE,
    ICU,
    INSULIN,
    METFORMIN,
    TAMSULOSIN,
    bill,
    bundle,
    catalog,
    context,
    empty,
    line,
    person,
)


def _amounts(r: SettlementResult, *names: str) -> tuple[str, ...]:
    return tuple(str(getattr(r.setlinfo, name)) for name in names)


def _settle(b: Bill, insutype: str, level: Level, **kw: object) -> SettlementResult:
    p = person(insutype, **{k: v for k, v in kw.items() if k in ("gend", "brdy")})
    c = context(level, **{k: v for k, v in kw.items() if k == "injury_cause"})
    return presettle(b, p, empty(), bundle(), catalog(), c)


def test_maternity_inpatient_for_an_employee() -> None:
    # 52 at level 2: bed 3 × 40 = 120 in scope; CT 260 (乙 10 %) 26.00 self-pay-first, 234.00 in scope;
    # in scope 354.00, no deductible, 100 % → hifp 354.00; personal 26.00
    r = _settle(bill("52", line("1", BED, "3", "40"), line("2", CT, "1", "260")), "310", "level2")
    assert _amounts(r, "medfee_sumamt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "psn_part_amt") == (
        "380.00",
        "354.00",
        "0.00",
        "354.00",
        "26.00",
    )
    assert r.accumulators_after.counters == {"pooled_paid.maternity": 354}


def test_maternity_outpatient_for_a_resident() -> None:
    # 51 at primary: the same lines, 80 % of 354.00 = 283.20; personal 380.00 − 283.20 = 96.80
    r = _settle(bill("51", line("1", BED, "3", "40"), line("2", CT, "1", "260")), "390", "primary")
    assert _amounts(r, "hifp_pay", "psn_part_amt") == ("283.20", "96.80")


def test_two_diseases_outpatient_for_a_resident() -> None:
    # 9901 at primary: metformin 2 × 12.80 = 25.60; glargine 98 (乙 10 %) 9.80 + 88.20 in scope;
    # in scope 113.80 × 50 % = 56.90; personal 123.60 − 56.90 = 66.70
    b = bill("9901", line("1", METFORMIN, "2", "12.80"), line("2", GLARGINE, "1", "98"))
    r = _settle(b, "390", "primary")
    assert _amounts(r, "inscp_scp_amt", "hifp_pay", "psn_part_amt") == ("113.80", "56.90", "66.70")
    # not at a city level-3 hospital (the table lists primary to level 2): the fund pays nothing there
    assert _amounts(_settle(b, "390", "level3_city"), "hifp_pay", "psn_part_amt") == ("0.00", "123.60")


def test_two_diseases_outpatient_is_a_resident_benefit() -> None:
    with pytest.raises(SettlementError, match="no benefit for med_type 9901 under insutype 310"):
        _settle(bill("9901", line("1", METFORMIN, "2", "12.80")), "310", "primary")


def test_two_diseases_stop_at_their_yearly_cap() -> None:
    # 400.00 a year: with 380.00 paid, 50 % of 113.80 = 56.90 is cut to the 20.00 left
    b = bill("9901", line("1", METFORMIN, "2", "12.80"), line("2", GLARGINE, "1", "98"))
    before = Accumulators(2025, {"pooled_paid.two_diseases": Decimal(380)})
    r = presettle(b, person("390"), before, bundle(), catalog(), context("primary"))
    assert _amounts(r, "hifp_pay", "psn_part_amt") == ("20.00", "103.60")


def test_critical_illness_special_drugs() -> None:
    # 9904, employee at city level 3: insulin 10 × 45 = 450 in scope × 70 % = 315.00; personal 135.00
    r = _settle(bill("9904", line("1", INSULIN, "10", "45")), "310", "level3_city")
    assert _amounts(r, "hifp_pay", "psn_part_amt") == ("315.00", "135.00")
    # a resident: 60 % = 270.00
    assert _amounts(
        _settle(bill("9904", line("1", INSULIN, "10", "45")), "390", "level3_city"), "hifp_pay"
    ) == ("270.00",)


def _injury() -> Bill:
    return bill("22", line("1", ICU, "3", "800"), line("2", BED, "5", "40"))


def test_injury_without_a_third_party_is_priced_as_a_stay() -> None:
    # 22, resident, city level 3, declared: in scope 2,400 + 200 = 2,600; first stay deductible 1,200;
    # 65 % × 1,400 = 910.00; personal 1,690.00 (critical illness does not list 22: its base stays)
    r = _settle(_injury(), "390", "level3_city", injury_cause="no_third_party")
    assert _amounts(r, "inscp_scp_amt", "act_pay_dedc", "hifp_pay", "hifmi_pay", "psn_part_amt") == (
        "2600.00",
        "1200.00",
        "910.00",
        "0.00",
        "1690.00",
    )
    assert r.accumulators_after.counters == {"admissions.injury_level3_city": 1, "pooled_paid.pooled": 910}
    assert "外伤: 已声明无第三方责任, 按本险种待遇结算" in [t.text for t in r.trace]


@pytest.mark.parametrize("cause", ["third_party", "work_injury", "abroad", "public_health"])
def test_injury_another_payer_owes_is_refused(cause: str) -> None:
    with pytest.raises(InjuryExcludedError, match=f"cause {cause}"):
        _settle(_injury(), "390", "level3_city", injury_cause=cause)


def test_injury_without_a_declared_cause_is_refused() -> None:
    with pytest.raises(InjuryExcludedError, match="needs the cause declared"):
        _settle(_injury(), "390", "level3_city")


def test_a_line_against_its_gender_limit_leaves_the_fund_scope() -> None:
    # 11, resident at primary (no deductible, 70 %): metformin 12.80 in scope; tamsulosin (male only,
    # 乙 10 %) 30.00. A man: 3.00 self-pay-first, 27.00 in scope; 70 % × 39.80 = 27.86, personal 14.94.
    # A woman: the whole 30.00 is hers; 70 % × 12.80 = 8.96, personal 42.80 − 8.96 = 33.84.
    b = bill("11", line("1", METFORMIN, "1", "12.80"), line("2", TAMSULOSIN, "1", "30"))
    man = _settle(b, "390", "primary", gend="1")
    woman = _settle(b, "390", "primary", gend="2")
    assert _amounts(man, "fulamt_ownpay_amt", "inscp_scp_amt", "hifp_pay", "psn_part_amt") == (
        "0.00",
        "39.80",
        "27.86",
        "14.94",
    )
    assert _amounts(
        woman, "fulamt_ownpay_amt", "preselfpay_amt", "inscp_scp_amt", "hifp_pay", "psn_part_amt"
    ) == (
        "30.00",
        "0.00",
        "12.80",
        "8.96",
        "33.84",
    )
    assert [f.check for f in woman.findings] == ["gender_limit"]  # still flagged as the bundle says
    assert str(woman.lines[1].fulamt_ownpay_amt) == "30.00"


def test_a_line_against_its_age_limit_leaves_the_fund_scope() -> None:
    # children's syrup (up to 14, 乙 10 %, ceiling 25) 1 × 20 for a 65-year-old: all 20.00 self-paid
    b = bill("11", line("1", METFORMIN, "1", "12.80"), line("2", CHILD_SYRUP, "1", "20"))
    r = _settle(b, "390", "primary", brdy=date(1960, 5, 1))
    assert _amounts(r, "fulamt_ownpay_amt", "inscp_scp_amt", "hifp_pay", "psn_part_amt") == (
        "20.00",
        "12.80",
        "8.96",
        "23.84",
    )
    child = _settle(b, "390", "primary", brdy=date(2020, 1, 1))
    # a child: 2.00 self-pay-first, 18.00 in scope; 70 % × 30.80 = 21.56; personal 32.80 − 21.56 = 11.24
    assert _amounts(child, "fulamt_ownpay_amt", "inscp_scp_amt", "hifp_pay", "psn_part_amt") == (
        "0.00",
        "30.80",
        "21.56",
        "11.24",
    )
