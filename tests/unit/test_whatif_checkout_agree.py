"""What-if and checkout decide the same way (issue 19.1 and 19.3): bundle and cross-region status from
insuplc_admdvs, and a stay priced on the day it ends — the issue's Shenzhen stay (29,600.00) was
11,140.00 by what-if and 15,400.00 at checkout; both are now 12,740.00 (docs/settlement.md)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from terminal.clock import CST
from terminal.domain import Bill, OffsiteFiling, Person
from terminal.errors import InjuryExcludedError, InsuredPolicyMissingError, PaymentMethodError
from terminal.pipeline.checkout import Checkout, Priced
from terminal.settlement import PersonBenefits
from terminal.store.policy_files import load_insured_shelf, load_shelf, load_trusted_keys
from terminal.whatif import person_from_json, price_what_if
from tests.fakes import FixedClock
from tests.unit.settlement.helpers import BED, ICU, REPO, bill, catalog, line

FOLDER = REPO / "config" / "policies"
SECTION = SimpleNamespace(institution_level="level3_city", mdtrtarea_admvs="430302")


class _Gallery:
    def __init__(self, person: Person, benefits: PersonBenefits | None = None) -> None:
        self._person = person
        self._benefits = benefits or PersonBenefits()

    def person(self, psn_no: str) -> Person:
        return self._person

    def benefits_of(self, psn_no: str) -> PersonBenefits:
        return self._benefits


class _Ledger:
    def accumulators(self, psn_no: str, year: int) -> dict[str, Any]:
        return {}

    def is_settled(self, chrg_bchno: str) -> bool:
        return False


def _both(
    insuplc: str,
    b: Bill,
    today: datetime,
    filings: tuple[OffsiteFiling, ...] = (),
    declared: str | None = None,
) -> tuple[Priced, Priced]:
    keys = load_trusted_keys()
    treating = load_shelf(FOLDER, keys, "430302")
    insured = load_insured_shelf(FOLDER, keys, "430302")
    spec = person_from_json(
        {
            "psn_no": "P9",
            "psn_name": "异地",
            "certno": "440304199001011233",
            "insutype": "390",
            "psn_type": "active",
            "insuplc_admdvs": insuplc,
            "gend": "1",
            "brdy": "1990-01-01",
            **({"cross_region": declared} if declared else {}),
        },
        "t",
    )
    terminal = SimpleNamespace(
        policies=treating,
        insured_policies=insured,
        catalog=catalog(),
        config=SimpleNamespace(terminal=SECTION),
    )
    what_if = price_what_if(terminal, b, spec, None)  # type: ignore[arg-type]
    checkout = Checkout(
        gallery=_Gallery(what_if.person, PersonBenefits(offsite_filings=filings)),  # type: ignore[arg-type]
        ledger=_Ledger(),  # type: ignore[arg-type]
        policies=treating,
        insured_policies=insured,
        catalog=catalog(),
        terminal=SECTION,  # type: ignore[arg-type]
        clock=FixedClock(today),
    )
    return what_if, checkout.price(b, "P9")


def test_the_shenzhen_stay_is_the_same_in_both_paths() -> None:
    b = bill("2101", line("L1", ICU, "37", "800"))
    what_if, checked = _both("440304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST))
    assert what_if.result.setlinfo == checked.result.setlinfo
    assert checked.result.setlinfo.psn_part_amt == Decimal("12740.00")
    assert checked.result.bundle_id == "440300-2025"
    assert what_if.result.trace == checked.result.trace


def test_a_stay_across_the_new_year_takes_the_discharge_years_bundle_in_both_paths() -> None:
    b = replace(
        bill("2101", line("L1", ICU, "5", "800")),
        begntime=datetime(2025, 12, 20, 10, 0),
        endtime=datetime(2026, 1, 5, 10, 0),
    )
    what_if, checked = _both("430304", b, datetime(2026, 1, 6, 9, 0, tzinfo=CST))
    for priced in (what_if, checked):
        assert priced.result.bundle_id == "430300-2026"
        assert priced.result.accumulators_after.year == 2026
    assert what_if.result.setlinfo == checked.result.setlinfo


def test_a_patient_without_a_shelved_bundle_is_refused_in_both_paths() -> None:
    b = bill("2101", line("L1", ICU, "37", "800"))
    with pytest.raises(InsuredPolicyMissingError):
        _both("110105", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST))


def test_checkout_refuses_a_period_that_ends_after_today() -> None:
    b = replace(bill("2101", line("L1", ICU, "5", "800")), endtime=datetime(2025, 6, 9, 10, 0))
    with pytest.raises(PaymentMethodError, match="ends 2025-06-09, after today"):
        _both("430304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST))


def test_an_injury_bill_carries_its_declared_cause_to_checkout() -> None:
    # 22, a local resident at city level 3 (test_med_types): in scope 2,400 + 200 = 2,600; deductible
    # 1,200; 65 % × 1,400 = 910.00 from the pooled fund, 1,690.00 personal — in both paths alike
    b = replace(
        bill("22", line("1", ICU, "3", "800"), line("2", BED, "5", "40")), injury_cause="no_third_party"
    )
    what_if, checked = _both("430304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST))
    assert checked.result.setlinfo.hifp_pay == Decimal("910.00")
    assert checked.result.setlinfo.psn_part_amt == Decimal("1690.00")
    assert what_if.result.setlinfo == checked.result.setlinfo


@pytest.mark.parametrize("cause", [None, "work_injury"])
def test_an_injury_bill_without_a_payable_cause_is_refused(cause: str | None) -> None:
    b = replace(bill("22", line("1", ICU, "3", "800")), injury_cause=cause)
    with pytest.raises(InjuryExcludedError):
        _both("430304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST))


def test_a_filing_from_the_gallery_delta_prices_the_shenzhen_stay_as_filed() -> None:
    # docs/settlement.md §Cross-region: filed, 28,100 × 70 % = 19,670.00, personal 9,930.00 — checkout
    # reads the filing the delta brought; what-if reads the person file's declared status
    b = bill("2101", line("L1", ICU, "37", "800"))
    filing = OffsiteFiling("430000", "filed", date(2025, 1, 1), date(2025, 12, 31))
    what_if, checked = _both("440304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST), (filing,), "filed")
    assert checked.result.setlinfo.hifp_pay == Decimal("19670.00")
    assert checked.result.setlinfo.psn_part_amt == Decimal("9930.00")
    assert what_if.result.setlinfo == checked.result.setlinfo
    assert "跨省异地就医, 已备案" in checked.result.trace[0].text


@pytest.mark.parametrize(
    "filing",
    [
        OffsiteFiling("430000", "filed", date(2024, 1, 1), date(2024, 12, 31)),  # expired
        OffsiteFiling("420000", "filed", date(2025, 1, 1)),  # filed for Hubei, treated in Hunan
        OffsiteFiling("430100", "filed", date(2025, 1, 1)),  # filed for Changsha, treated in Xiangtan
    ],
)
def test_a_filing_that_does_not_cover_this_place_and_day_leaves_the_patient_unfiled(
    filing: OffsiteFiling,
) -> None:
    b = bill("2101", line("L1", ICU, "37", "800"))
    _, checked = _both("440304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST), (filing,))
    assert checked.result.setlinfo.psn_part_amt == Decimal("12740.00")
    assert "未备案 (未收到备案信息)" in checked.result.trace[0].text


def test_a_temporary_filing_takes_the_temporary_reduction() -> None:
    # the Shenzhen bundle takes 10 points off for temporary as for unfiled: 12,740.00 personal, but
    # the trace says which status it priced
    b = bill("2101", line("L1", ICU, "37", "800"))
    filing = OffsiteFiling("430300", "temporary", date(2025, 6, 1), date(2025, 6, 30))
    what_if, checked = _both("440304", b, datetime(2025, 6, 3, 11, 0, tzinfo=CST), (filing,), "temporary")
    assert checked.result.setlinfo.psn_part_amt == Decimal("12740.00")
    assert "跨省异地就医, 临时外出就医" in checked.result.trace[0].text
    assert what_if.result.setlinfo == checked.result.setlinfo
