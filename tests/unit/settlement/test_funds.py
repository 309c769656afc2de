"""The supplementary funds' shared shape (funds.py): the eligibility guard and a fund that does not apply."""

from __future__ import annotations

from decimal import Decimal

from terminal.settlement.context import PersonBenefits
from terminal.settlement.funds import FUNDS_IN_ORDER, covers
from terminal.settlement.run import Run

from .helpers import METFORMIN, bill, bundle, context, empty, line, person


def test_covers_needs_the_rule_the_flag_the_med_type_and_the_scheme() -> None:
    rule = bundle().civil_servant  # employees (310), inpatient and 门特 med_types
    assert rule is not None
    employee, resident = person("310"), person("390")
    inpatient, pharmacy = bill("2101"), bill("41")
    assert covers(rule, True, employee, inpatient) is rule
    assert covers(rule, False, employee, inpatient) is None  # the person's flag is not set
    assert covers(rule, True, resident, inpatient) is None  # not a scheme it lists
    assert covers(rule, True, employee, pharmacy) is None  # not a med_type it lists
    assert covers(None, True, employee, inpatient) is None  # the bundle has no such fund


def test_medical_assistance_lists_no_schemes_so_covers_every_one() -> None:
    rule = bundle().assistance
    assert rule is not None
    assert rule.insutypes is None
    for insutype in ("310", "390"):
        assert covers(rule, True, person(insutype), bill("2101")) is rule
    assert covers(rule, True, person("390"), bill("41")) is None


def test_a_fund_that_does_not_cover_the_claim_pays_and_books_nothing() -> None:
    # a resident's pharmacy bill without any benefit flag: no supplementary fund covers it (the
    # large-amount subsidy is the employees', and the others do not list pharmacy bills)
    b = bill("41", line("1", METFORMIN, "1", "12.80"))
    ctx = context("level3_city", PersonBenefits())
    for position, fund in enumerate(FUNDS_IN_ORDER):
        run = Run(empty(), b, person("390"), bundle(), ctx)
        assert fund(run, Decimal("100.00")) == Decimal(0)
        assert (run.trace, run.setldetail, run.counters) == ([], [], {}), position
