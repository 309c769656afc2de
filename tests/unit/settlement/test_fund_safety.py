"""Fund-safety checks: each flags or blocks as the policy says."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from terminal.settlement import (
    Dispensing,
    FundSafetyError,
    PersonBenefits,
    SafetyFacts,
    presettle,
)
from terminal.settlement.policy import FundSafety
from terminal.settlement.safety import age_on

from .helpers import (
    CHILD_SYRUP,
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

PHARMACY = bill("41", line("1", METFORMIN, "2", "12.80"))


def test_deceased_person_is_blocked() -> None:
    with pytest.raises(FundSafetyError, match="已登记死亡"):
        presettle(
            PHARMACY, person(), empty(), bundle(), catalog(), context(benefits=PersonBenefits(deceased=True))
        )


def test_suspended_insurance_is_blocked() -> None:
    ctx = context(benefits=PersonBenefits(insurance_active=False))
    with pytest.raises(FundSafetyError, match="暂停或终止"):
        presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx)


def test_face_and_credential_disagreeing_is_blocked() -> None:
    ctx = context(safety=SafetyFacts(identity_mismatch=True))
    with pytest.raises(FundSafetyError, match="人脸身份不一致") as caught:
        presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx)
    assert [f.check for f in caught.value.findings] == ["identity_mismatch"]


def test_same_bill_twice_is_blocked() -> None:
    ctx = context(safety=SafetyFacts(bill_already_settled=True))
    with pytest.raises(FundSafetyError, match="B1 已结算"):
        presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx)


def test_redispensing_inside_the_supply_window_is_flagged() -> None:
    # 2 boxes of metformin (30 days each) on 2025-05-20 last until 2025-07-19; on 2025-06-03 46 days are left
    ctx = context(safety=SafetyFacts(recent_dispensings=(Dispensing(METFORMIN, date(2025, 5, 20), 2),)))
    r = presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx)
    assert [(f.check, f.action) for f in r.findings] == [("repeat_dispensing", "flag")]
    assert "尚余 46 天" in r.findings[0].message
    assert "基金安全提示(repeat_dispensing)" in r.setl_proc_info


def test_redispensing_within_the_tolerance_is_not_flagged() -> None:
    # 1 box on 2025-05-07 lasts until 2025-06-06: 3 days left, tolerance 3 → fine
    ctx = context(safety=SafetyFacts(recent_dispensings=(Dispensing(METFORMIN, date(2025, 5, 7), 1),)))
    assert presettle(PHARMACY, person(), empty(), bundle(), catalog(), ctx).findings == ()


def test_male_only_drug_for_a_woman_is_flagged() -> None:
    b = bill("41", line("1", TAMSULOSIN, "1", "35"))
    r = presettle(b, person(gend="2"), empty(), bundle(), catalog(), context())
    assert [(f.check, f.action) for f in r.findings] == [("gender_limit", "flag")]
    assert presettle(b, person(gend="1"), empty(), bundle(), catalog(), context()).findings == ()


def test_child_only_syrup_for_an_adult_is_flagged() -> None:
    b = bill("41", line("1", CHILD_SYRUP, "1", "25"))
    r = presettle(b, person(brdy=date(1960, 5, 1)), empty(), bundle(), catalog(), context())
    assert [(f.check, f.message) for f in r.findings] == [
        ("age_limit", "明细 1 小儿氨溴索口服溶液 100ml 限 0–14 岁, 患者 65 岁")
    ]
    assert presettle(b, person(brdy=date(2015, 1, 1)), empty(), bundle(), catalog(), context()).findings == ()


def test_a_policy_can_turn_a_flag_into_a_block() -> None:
    strict = bundle().model_copy(
        update={"fund_safety": replace_actions(bundle().fund_safety, gender_limit="block")}
    )
    with pytest.raises(FundSafetyError):
        presettle(
            bill("41", line("1", TAMSULOSIN, "1", "35")),
            person(gend="2"),
            empty(),
            strict,
            catalog(),
            context(),
        )


def replace_actions(rules: FundSafety, **actions: str) -> FundSafety:
    """The same fund-safety rules with some actions changed."""
    return rules.model_copy(update={"actions": {**rules.actions, **actions}})


def test_age_counts_completed_years() -> None:
    assert age_on(date(2011, 6, 4), date(2025, 6, 3)) == 13
    assert age_on(date(2011, 6, 3), date(2025, 6, 3)) == 14


def test_findings_survive_into_the_json() -> None:
    b = bill("41", line("1", TAMSULOSIN, "1", "35"))
    r = presettle(b, person(gend="2"), empty(), bundle(), catalog(), context())
    assert r.to_json()["findings"][0]["check"] == "gender_limit"
    assert replace(r, findings=()).to_json()["findings"] == []
