"""What-if person files (issue 19 item 6): balances ≥ 0, known counters only, each ≥ 0 and within its cap."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from terminal.errors import BillError, PersonFileError
from terminal.whatif import checked_accumulators, person_from_json
from tests.unit.settlement.helpers import bundle

BASE: dict[str, Any] = {
    "psn_no": "P9",
    "psn_name": "试算",
    "certno": "430302195402150012",
    "insutype": "390",
    "psn_type": "active",
    "insuplc_admdvs": "430302",
}


def _check(counters: dict[str, str], **extra: Any) -> None:
    spec = person_from_json({**BASE, **extra, "accumulators": {"year": 2025, "counters": counters}}, "t")
    checked_accumulators(spec, bundle(), "level3_city", 2025)


def test_a_plausible_year_so_far_is_accepted() -> None:
    _check(
        {
            "pooled_paid.pooled": "1500.00",
            "admissions.inpatient_level3_city": "1",
            "critical_illness_base": "900.00",
            "deductible_used.outpatient": "0",
        }
    )


def test_a_negative_accumulator_is_refused_naming_the_field() -> None:
    # the case: negative counters made the remaining deductible exceed the deductible
    with pytest.raises(
        PersonFileError, match=r"^accumulators\.counters\.pooled_paid\.pooled: -100"
    ) as caught:
        _check({"pooled_paid.pooled": "-100.00"})
    assert caught.value.field == "accumulators.counters.pooled_paid.pooled"
    assert isinstance(caught.value, BillError)  # callers that caught BillError still do


def test_an_accumulator_above_its_cap_is_refused() -> None:
    cap = bundle().schemes["390"].annual_caps["pooled"]["active"]
    _check({"pooled_paid.pooled": str(cap)})
    with pytest.raises(
        PersonFileError, match=rf"pooled_paid\.pooled: {cap + Decimal('0.01')} is above its cap"
    ):
        _check({"pooled_paid.pooled": str(cap + Decimal("0.01"))})


def test_a_misspelt_counter_name_is_refused() -> None:
    with pytest.raises(
        PersonFileError, match=r"accumulators\.counters\.pooled_payd\.pooled: unknown counter"
    ):
        _check({"pooled_payd.pooled": "10.00"})


def test_a_fractional_admission_count_is_refused() -> None:
    with pytest.raises(PersonFileError, match=r"admissions\.inpatient_level3_city: 1\.5 is not a whole"):
        _check({"admissions.inpatient_level3_city": "1.5"})


def test_a_deductible_used_above_the_deductible_is_refused() -> None:
    row = bundle().schemes["310"].benefits[1]
    deductible = row.levels["level3_city"].deductible
    with pytest.raises(
        PersonFileError, match=rf"deductible_used\.{row.key}: .* is above its cap {deductible}"
    ):
        _check({f"deductible_used.{row.key}": str(deductible + 1)}, insutype="310")


def test_a_negative_account_balance_is_refused_naming_the_field() -> None:
    with pytest.raises(PersonFileError, match=r"^acct_balc: .*greater than or equal to 0") as caught:
        person_from_json({**BASE, "acct_balc": "-5.00"}, "t")
    assert caught.value.field == "acct_balc"


def test_a_negative_family_balance_is_refused_naming_the_field() -> None:
    with pytest.raises(PersonFileError, match=r"^benefits\.mulaid_balc: "):
        person_from_json({**BASE, "benefits": {"mulaid_balc": "-1"}}, "t")


def test_accumulators_of_another_year_are_refused() -> None:
    with pytest.raises(PersonFileError, match=r"^accumulators: stored accumulators are for 2024"):
        spec = person_from_json({**BASE, "accumulators": {"year": 2024, "counters": {}}}, "t")
        checked_accumulators(spec, bundle(), "level3_city", 2025)
