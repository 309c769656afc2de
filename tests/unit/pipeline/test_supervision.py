"""Merging the upstream's history with this terminal's settlements (issue 19.7 and 19.10)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from terminal.clock import CST
from terminal.domain import LocalSettlement, PastVisit, Person, PersonBenefits, PersonHistory
from terminal.pipeline.policy_finder import benefit_hints
from terminal.pipeline.supervision import local_since, supervision_facts
from terminal.settlement import Dispensing, Visit
from terminal.settlement.policy import BenefitHint, BenefitHints

DAY = date(2025, 6, 3)
METFORMIN = "XA10BAE054A001010100001"


def _history(**kw: object) -> PersonHistory:
    base: dict[str, object] = {
        "psn_no": "P1",
        "as_of": datetime(2025, 6, 3, 8, 0, tzinfo=CST),
        "year": 2025,
        "totals": {
            "year": 2025,
            "counters": {"deductible_used.outpatient": "200.00", "pooled_paid.pooled": "50.00"},
        },
        "counted": frozenset({"A1", "H1"}),
        "visits": (
            PastVisit("A1", date(2025, 6, 1), "41", ((METFORMIN, Decimal("2")),), ("M03900",)),
            PastVisit("H1", date(2025, 6, 2), "11", (), ()),
        ),
        "identities": ("dibao",),
    }
    base.update(kw)
    return PersonHistory(**base)  # type: ignore[arg-type]


def _local(msgid: str, day: date, standing: bool, changes: dict[str, str]) -> LocalSettlement:
    return LocalSettlement(
        PastVisit(msgid, day, "11", ((METFORMIN, Decimal("1.5")),), ()),
        2025,
        {"year": 2025, "changes": changes},
        standing,
    )


def test_without_a_history_the_stored_totals_are_used() -> None:
    stored = {"year": 2025, "counters": {"pooled_paid.pooled": "9.00"}}
    facts = supervision_facts(None, [], DAY, stored)
    assert (facts.start, facts.totals_from) == (stored, "local")
    assert facts.visits == () and facts.dispensings == ()


def test_year_totals_are_the_upstreams_plus_this_terminals_uncounted_settlements() -> None:
    local = [
        # H1 was delivered and the upstream counted it: not added again.
        _local("H1", date(2025, 6, 2), True, {"pooled_paid.pooled": "30.00"}),
        # H2 is not delivered yet: added.
        _local(
            "H2",
            date(2025, 6, 3),
            True,
            {"pooled_paid.pooled": "12.50", "deductible_used.outpatient": "5.00"},
        ),
    ]
    facts = supervision_facts(
        _history(), local, DAY, {"year": 2025, "counters": {"pooled_paid.pooled": "42.50"}}
    )
    # 200.00 + 5.00 and 50.00 + 12.50
    assert facts.totals_from == "upstream"
    assert facts.start == {
        "year": 2025,
        "counters": {"deductible_used.outpatient": "205.00", "pooled_paid.pooled": "62.50"},
    }


def test_a_settlement_reversed_here_but_still_counted_upstream_is_taken_out() -> None:
    # H1 was refunded at this terminal; its 2208 has not reached the upstream, which still counts it.
    local = [_local("H1", date(2025, 6, 2), False, {"pooled_paid.pooled": "30.00"})]
    facts = supervision_facts(_history(), local, DAY, {})
    assert facts.start["counters"] == {"deductible_used.outpatient": "200.00", "pooled_paid.pooled": "20.00"}
    # … and it is no visit any more: only A1 (another terminal) stays.
    assert facts.visits == (Visit(date(2025, 6, 1), "41"),)


def test_visits_and_dispensings_list_each_settlement_once() -> None:
    local = [
        _local("H1", date(2025, 6, 2), True, {}),
        _local("H2", date(2025, 6, 3), True, {}),
        _local("H3", date(2025, 6, 3), False, {}),  # refused or reversed: not a visit
    ]
    facts = supervision_facts(_history(), local, DAY, {})
    assert facts.visits == (
        Visit(date(2025, 6, 1), "41"),
        Visit(date(2025, 6, 2), "11"),
        Visit(date(2025, 6, 3), "11"),
    )
    # A1's 2 boxes; H1 is the upstream's copy (no items listed); H2's 1.5 boxes count as 1 whole box.
    assert facts.dispensings == (
        Dispensing(METFORMIN, date(2025, 6, 1), 2),
        Dispensing(METFORMIN, date(2025, 6, 3), 1),
    )
    assert facts.diagnoses == ("M03900",) and facts.identities == ("dibao",)


def test_a_history_of_last_year_leaves_the_stored_totals() -> None:
    stored = {"year": 2025, "counters": {"pooled_paid.pooled": "1.00"}}
    facts = supervision_facts(_history(year=2024), [], DAY, stored)
    assert (facts.start, facts.totals_from) == (stored, "local")


def test_local_settlements_are_read_from_the_year_start_or_the_window() -> None:
    assert local_since(date(2025, 6, 3)) == date(2025, 1, 1)
    assert local_since(date(2025, 2, 1)) == date(2024, 10, 4)


HINTS = BenefitHints(
    placeholder=True,
    source="test",
    rules=(
        BenefitHint(
            kind="opsp_filing", dise_codes=("E11", "M03900"), opsp_dise_code="M03900", message="门特"
        ),
        BenefitHint(kind="two_diseases", dise_codes=("I10", "E11"), message="两病"),
        BenefitHint(kind="assistance", identities=("dibao",), message="救助"),
    ),
)
RESIDENT = Person("P1", "钱二", "430302199001010009", "390", "active", "430302", Decimal("0.00"))


def test_hints_fire_only_for_a_person_who_opted_in() -> None:
    opted = PersonBenefits(benefit_hints=True)
    hints = benefit_hints(HINTS, RESIDENT, opted, ("E11.9",), ("dibao",), ("11",), DAY)
    assert [h["kind"] for h in hints] == ["opsp_filing", "two_diseases", "assistance"]
    assert benefit_hints(HINTS, RESIDENT, PersonBenefits(), ("E11.9",), ("dibao",), ("11",), DAY) == []


def test_claimed_benefits_give_no_hint() -> None:
    from terminal.domain import OpspFiling

    claimed = PersonBenefits(
        benefit_hints=True,
        opsp_filings=(OpspFiling("M03900", date(2025, 1, 1), None),),
        assistance_category="dibao",
    )
    # Filed for diabetes, an assistance category, and 9901 already used: nothing to tell.
    assert benefit_hints(HINTS, RESIDENT, claimed, ("E11",), ("dibao",), ("9901",), DAY) == []
    # An employee is not covered by the residents' two-disease benefit.
    employee = Person("P2", "赵一", "430302199001010017", "310", "active", "430302", Decimal("0.00"))
    kinds = [
        h["kind"]
        for h in benefit_hints(HINTS, employee, PersonBenefits(benefit_hints=True), ("I10",), (), (), DAY)
    ]
    assert kinds == []
