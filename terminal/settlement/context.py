"""Settlement inputs beyond Bill and Person: where, when, and the person's extra benefit facts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from terminal.settlement.policy import CrossRegionKind, Level


@dataclass(frozen=True)
class OpspFiling:
    """A 门特 filing as 5301 returns it: the disease and the dates it is valid."""

    opsp_dise_code: str
    begndate: date
    enddate: date | None = None

    def covers(self, code: str, on: date) -> bool:
        """Whether this filing covers the disease code on that day."""
        return (
            code == self.opsp_dise_code
            and self.begndate <= on
            and (self.enddate is None or on <= self.enddate)
        )


@dataclass(frozen=True)
class Dispensing:
    """An earlier dispensing of a drug to this person (for the days-of-supply check)."""

    med_list_codg: str
    dispensed_on: date
    cnt: int


@dataclass(frozen=True)
class PersonBenefits:
    """What 1101/5301 and local registers say about the person beyond terminal.domain.Person."""

    opsp_filings: tuple[OpspFiling, ...] = ()
    assistance_category: str | None = None  # key of the policy's assistance.categories
    cvlserv_flag: bool = False  # 1101 insuinfo.cvlserv_flag
    # 1101 insuinfo also lists insutype 370: the employer runs an enterprise supplementary plan
    enterprise_supplementary: bool = False
    # balance a family member's employee account has bound to pay for this person (个人账户共济)
    mulaid_balc: Decimal = Decimal("0.00")
    insurance_active: bool = True  # psn_insu_stas normal, not suspended
    deceased: bool = False


@dataclass(frozen=True)
class SafetyFacts:
    """Facts the fund-safety checks need that only the caller can know."""

    identity_mismatch: bool = False  # credential and face point at different people
    bill_already_settled: bool = False
    recent_dispensings: tuple[Dispensing, ...] = ()


@dataclass(frozen=True)
class SettlementContext:
    """Where and when the bill is settled, and under which cross-region status."""

    institution_level: Level
    setl_date: date
    benefits: PersonBenefits = PersonBenefits()
    cross_region: CrossRegionKind | None = None  # None: treated in the insured region
    safety: SafetyFacts = SafetyFacts()
