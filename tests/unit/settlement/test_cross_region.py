"""Cross-region care (issue 19.1): which bundle and status price a patient, worked in docs/settlement.md.

The 29,600.00 stay is ICU 37 × 800.00 (甲, all in scope), a resident at a city level-3 hospital in
Xiangtan (430302). Expected amounts are the literals of docs/settlement.md, "Cross-region care".
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.errors import InsuredPolicyMissingError, PolicyError
from terminal.settlement import PolicyBundle, SettlementResult, presettle
from terminal.settlement.insured import PolicyChoice, choose_policy
from terminal.settlement.policy import CrossRegionKind
from terminal.settlement.shelf import PolicyShelf
from terminal.store.policy_files import load_insured_shelf, load_shelf, load_trusted_keys

from .helpers import DAY, ICU, REPO, bill, bundle, catalog, context, empty, line, person

TREATING = "430302"  # a Xiangtan district, as the demo terminal


def _shelves() -> tuple[PolicyShelf, PolicyShelf]:
    keys = load_trusted_keys()
    folder = REPO / "config" / "policies"
    return load_shelf(folder, keys, TREATING), load_insured_shelf(folder, keys, TREATING)


def _changsha() -> PolicyBundle:
    """A 430100 bundle with the Xiangtan placeholder figures (in memory; the shelf takes verified bundles)."""
    return bundle().model_copy(
        update={"admdvs": "430100", "bundle_id": "430100-2025", "region_name": "长沙市"}
    )


def _price(
    insuplc: str, insured: PolicyShelf | None = None, declared: CrossRegionKind | None = None
) -> tuple[PolicyChoice, SettlementResult]:
    treating, shipped = _shelves()
    choice = choose_policy(treating, insured or shipped, TREATING, insuplc, DAY, declared=declared)
    result = presettle(
        bill("2101", line("L1", ICU, "37", "800")),
        replace(person("390"), insuplc_admdvs=insuplc),
        empty(),
        choice.bundle,
        catalog(),
        context(cross_region=choice.cross_region, policy_rule=choice.rule),
    )
    return choice, result


def test_a_local_patient_is_priced_by_the_treating_places_bundle() -> None:
    choice, result = _price("430304")
    assert (choice.bundle.bundle_id, choice.cross_region) == ("430300-2025", None)
    assert result.setlinfo.hifp_pay == Decimal("18460.00")
    assert result.setlinfo.psn_part_amt == Decimal("11140.00")
    assert result.trace[0].text.startswith("本地参保(430304): 按就医地政策 430300-2025")


def test_a_shenzhen_patient_unfiled_is_priced_by_the_shenzhen_bundle_less_ten_points() -> None:
    # (29,600 − 1,500) × (70 % − 10 %) = 16,860.00; personal 12,740.00; 大病 threshold 20,000 not reached
    choice, result = _price("440304")
    assert (choice.bundle.bundle_id, choice.cross_region) == ("440300-2025", "unfiled")
    assert result.bundle_id == "440300-2025"
    assert result.setlinfo.act_pay_dedc == Decimal("1500.00")
    assert result.setlinfo.hifp_pay == Decimal("16860.00")
    assert result.setlinfo.pool_prop_selfpay == Decimal("0.60")
    assert result.setlinfo.hifmi_pay == Decimal("0.00")
    assert result.setlinfo.psn_part_amt == Decimal("12740.00")
    first = result.trace[0].text
    assert "参保地 440300" in first and "440300-2025" in first and "目录按就医地 430300" in first
    assert "跨省异地就医, 未备案" in first


def test_a_shenzhen_patient_declared_filed_loses_no_points() -> None:
    _, result = _price("440304", declared="filed")
    assert result.setlinfo.hifp_pay == Decimal("19670.00")
    assert result.setlinfo.psn_part_amt == Decimal("9930.00")


def test_inside_the_province_care_without_filing_counts_as_filed() -> None:
    # 免备案 [I]: a Changsha patient is priced by the Changsha bundle as filed (reduction 0.00), not
    # with the −15 points checkout took before (15,400.00)
    insured = PolicyShelf([_changsha()])
    choice, result = _price("430102", insured, declared="unfiled")
    assert (choice.bundle.bundle_id, choice.cross_region) == ("430100-2025", "filed")
    assert "省内异地就医免备案, 视同已备案" in choice.rule
    assert result.setlinfo.hifp_pay == Decimal("18460.00")
    assert result.setlinfo.psn_part_amt == Decimal("11140.00")


def test_a_patient_whose_insured_places_bundle_is_not_shelved_is_refused() -> None:
    with pytest.raises(InsuredPolicyMissingError, match=r"insured in 110105 \(region 110100\).*440300-2025"):
        _price("110105")
    assert InsuredPolicyMissingError.code == "INSURED_POLICY_MISSING"


def test_the_unfiled_reduction_comes_off_the_pooled_ratio_only() -> None:
    # docs/policy-format.md §8: the basic fund's ratio (benefit rows and 门特 diseases); 大病 and
    # medical assistance keep their ratios. A 特困 resident, Xiangtan bundle, unfiled (−15 points).
    tekun = replace(context().benefits, assistance_category="tekun")
    b = bill("2101", line("L1", ICU, "37", "800"))
    local = presettle(b, person("390"), empty(), bundle(), catalog(), context(benefits=tekun))
    away = presettle(
        b, person("390"), empty(), bundle(), catalog(), context(benefits=tekun, cross_region="unfiled")
    )
    assert local.setlinfo.pool_prop_selfpay - away.setlinfo.pool_prop_selfpay == Decimal("0.15")
    assert [
        d.setl_proc_info.split("比例 ")[1][:3] for d in away.setldetail if d.fund_pay_type == "610100"
    ] == [d.setl_proc_info.split("比例 ")[1][:3] for d in local.setldetail if d.fund_pay_type == "610100"]


def test_the_insured_shelf_refuses_the_terminals_own_region(tmp_path: Path) -> None:
    insured = tmp_path / "insured"
    insured.mkdir()
    (insured / "430300-2025.json").write_bytes((REPO / "config/policies/430300-2025.json").read_bytes())
    with pytest.raises(PolicyError, match="this terminal's own region's; it belongs on the treating shelf"):
        load_insured_shelf(tmp_path, load_trusted_keys(), TREATING)


def test_no_insured_folder_is_an_empty_shelf(tmp_path: Path) -> None:
    shelf = load_insured_shelf(tmp_path, load_trusted_keys(), TREATING)
    assert shelf.bundles == () and shelf.for_region("440300", DAY) is None


def test_a_shelf_holds_several_regions_but_no_overlap_within_one() -> None:
    _, insured = _shelves()
    shelf = PolicyShelf([*insured.bundles, _changsha()])
    assert shelf.for_region("430100", DAY) is not None
    assert shelf.for_region("440300", date(2026, 2, 1)).bundle_id == "440300-2026"  # type: ignore[union-attr]
    with pytest.raises(PolicyError, match="overlap in time"):
        PolicyShelf([_changsha(), _changsha().model_copy(update={"bundle_id": "430100-2025"})])
