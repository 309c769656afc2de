"""The HIS bill JSON carries the injury cause the patient declared (med_type 22) both ways."""

from __future__ import annotations

from typing import Any

import pytest

from terminal.bill_json import bill_from_json, bill_to_json
from terminal.errors import BillError


def _injury_bill(**extra: Any) -> dict[str, Any]:
    return {
        "chrg_bchno": "B22",
        "med_type": "22",
        "begntime": "2025-06-01T09:00:00",
        "feedetail": [
            {
                "feedetl_sn": "1",
                "med_list_codg": "001101000010000",
                "cnt": "1",
                "pric": "40",
                "det_item_fee_sumamt": "40",
            }
        ],
        **extra,
    }


def test_the_declared_cause_survives_a_round_trip() -> None:
    bill = bill_from_json(_injury_bill(injury_cause="no_third_party"))
    assert bill.injury_cause == "no_third_party"
    assert bill_to_json(bill)["injury_cause"] == "no_third_party"
    assert bill_from_json(bill_to_json(bill)) == bill


def test_no_cause_is_none_and_is_not_written() -> None:
    bill = bill_from_json(_injury_bill())
    assert bill.injury_cause is None
    assert "injury_cause" not in bill_to_json(bill)


def test_an_unknown_cause_is_refused() -> None:
    with pytest.raises(BillError, match="injury_cause"):
        bill_from_json(_injury_bill(injury_cause="fell_over"))
