"""The counter basket: scans add lines; once sent it is locked and a change starts a new bill."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from terminal.domain import Bill
from terminal.errors import BillError
from terminal.pipeline.basket import BasketLine, CounterBasket
from tests.fakes import FixedClock

METFORMIN = BasketLine("XA10BAE054A001010100001", "盐酸二甲双胍片", "甲", Decimal("12.80"))
INSULIN = BasketLine("XA10ABA088B002010100002", "人胰岛素注射液", "甲", Decimal("45.00"))


class Ledger:
    """The settled bills a test names."""

    def __init__(self) -> None:
        self.settled: set[str] = set()

    def is_settled(self, chrg_bchno: str) -> bool:
        return chrg_bchno in self.settled


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def basket(ledger: Ledger) -> CounterBasket:
    return CounterBasket(FixedClock(), ledger)


def sent(basket: CounterBasket) -> Bill:
    bills: list[Bill] = []
    basket.send(bills.append)
    return bills[0]


def test_the_same_code_scanned_twice_counts_two(basket: CounterBasket) -> None:
    basket.add(METFORMIN)
    view = basket.add(METFORMIN)
    assert [(line["code"], line["cnt"]) for line in view["lines"]] == [(METFORMIN.code, "2")]
    assert view["total"] == "25.60" and not view["locked"]


def test_sending_builds_the_bill_of_exactly_the_lines_and_locks(basket: CounterBasket) -> None:
    basket.add(METFORMIN)
    basket.add(INSULIN)
    bill = sent(basket)
    view = basket.snapshot()
    assert view["locked"] and bill.chrg_bchno == view["chrg_bchno"]
    assert [(line.med_list_codg, line.det_item_fee_sumamt) for line in bill.lines] == [
        (METFORMIN.code, Decimal("12.80")),
        (INSULIN.code, Decimal("45.00")),
    ]
    assert bill.med_type == "41"


def test_a_scan_after_sending_starts_a_new_bill_and_never_changes_the_sent_one(basket: CounterBasket) -> None:
    basket.add(METFORMIN)
    first = sent(basket)
    view = basket.add(INSULIN)
    assert view["chrg_bchno"] != first.chrg_bchno and not view["locked"]
    assert view["replaces"] == first.chrg_bchno
    # the unsettled lines carry over: the new bill is the whole purchase, shown to the patient again
    assert [line["code"] for line in view["lines"]] == [METFORMIN.code, INSULIN.code]
    assert [line.med_list_codg for line in first.lines] == [METFORMIN.code]
    second = sent(basket)
    assert second.chrg_bchno == view["chrg_bchno"] and len(second.lines) == 2


def test_a_scan_after_the_sent_bill_settled_starts_an_empty_basket(
    basket: CounterBasket, ledger: Ledger
) -> None:
    basket.add(METFORMIN)
    first = sent(basket)
    ledger.settled.add(first.chrg_bchno)
    view = basket.add(INSULIN)
    assert [line["code"] for line in view["lines"]] == [INSULIN.code] and view["replaces"] is None


def test_resending_an_unchanged_locked_basket_sends_the_same_bill(basket: CounterBasket) -> None:
    basket.add(METFORMIN)
    first = sent(basket)
    view = basket.replace_lines([METFORMIN])
    assert view["locked"] and view["chrg_bchno"] == first.chrg_bchno
    assert sent(basket).chrg_bchno == first.chrg_bchno


def test_an_edit_of_a_locked_basket_starts_a_new_bill(basket: CounterBasket) -> None:
    basket.add(METFORMIN)
    first = sent(basket)
    view = basket.replace_lines([METFORMIN, INSULIN])
    assert view["chrg_bchno"] != first.chrg_bchno and not view["locked"]


def test_a_refused_send_leaves_the_basket_unlocked(basket: CounterBasket) -> None:
    basket.add(METFORMIN)

    def refuse(bill: Bill) -> None:
        raise BillError("session says no")

    with pytest.raises(BillError):
        basket.send(refuse)
    assert not basket.snapshot()["locked"]


def test_an_empty_basket_cannot_be_sent(basket: CounterBasket) -> None:
    with pytest.raises(BillError, match="empty"):
        basket.send(lambda bill: None)


def test_a_special_disease_line_makes_it_a_14_bill(basket: CounterBasket) -> None:
    special = BasketLine(METFORMIN.code, METFORMIN.name, "甲", Decimal("12.80"), dise_codg="M03900")
    basket.replace_lines([special])
    assert sent(basket).med_type == "14"


def test_clear_empties_and_renumbers(basket: CounterBasket) -> None:
    basket.add(METFORMIN)
    first = sent(basket)
    view = basket.clear()
    assert view["lines"] == [] and not view["locked"] and view["chrg_bchno"] != first.chrg_bchno


def test_a_notice_shows_until_the_next_change(basket: CounterBasket) -> None:
    basket.notice("unknown code 6920152400012")
    assert basket.snapshot()["notice"] == "unknown code 6920152400012"
    assert basket.add(METFORMIN)["notice"] is None


def test_a_waiter_wakes_on_a_change_from_another_thread(basket: CounterBasket) -> None:
    since = basket.version
    adder = threading.Thread(target=basket.add, args=(METFORMIN,))
    adder.start()
    assert basket.wait_for_change(since, 10.0) != since
    adder.join()
