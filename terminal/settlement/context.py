"""Settlement inputs beyond Bill and Person: where, when, and the person's extra benefit facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from terminal.domain import OpspFiling as OpspFiling
from terminal.domain import PersonBenefits as PersonBenefits
from terminal.settlement.policy import CrossRegionKind, InjuryCause, Level


@dataclass(frozen=True)
class Dispensing:
    """An earlier dispensing of a drug to this person (for the days-of-supply check)."""

    med_list_codg: str
    dispensed_on: date
    cnt: int


@dataclass(frozen=True)
class Visit:
    """An earlier settlement of this person at any terminal (for the visit frequency limits)."""

    day: date
    med_type: str


@dataclass(frozen=True)
class SafetyFacts:
    """Facts the fund-safety checks need that only the caller can know."""

    identity_mismatch: bool = False  # credential and face point at different people
    bill_already_settled: bool = False
    recent_dispensings: tuple[Dispensing, ...] = ()
    recent_visits: tuple[Visit, ...] = ()


@dataclass(frozen=True)
class SettlementContext:
    """Where and when the bill is settled, and under which cross-region status."""

    institution_level: Level
    setl_date: date
    benefits: PersonBenefits = field(default_factory=PersonBenefits)
    cross_region: CrossRegionKind | None = None  # None: treated in the insured region
    safety: SafetyFacts = SafetyFacts()
    # injury care (med_type 22): the declared cause (外伤无第三方责任承诺), None when not declared
    injury_cause: InjuryCause | None = None
    # the bundle and rule choose_policy() picked (insured.py), the trace's first step; None: not noted
    policy_rule: str | None = None
