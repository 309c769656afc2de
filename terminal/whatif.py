"""What-if pricing: a bill priced for a person described in full (person file), on the bill's own date.

Pure estimate for staff and auditors: nothing is recorded and the terminal's gallery is not consulted.
The person file is checked before pricing: balances ≥ 0, and the accumulators only counters the
bundle knows, each ≥ 0 and within its cap (PersonFileError names the field).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.app import Terminal
from terminal.domain import Bill, Person
from terminal.errors import PersonFileError, SettlementError
from terminal.pipeline.checkout import Priced
from terminal.settlement import (
    Accumulators,
    OpspFiling,
    PersonBenefits,
    PolicyBundle,
    SettlementContext,
    presettle,
)
from terminal.settlement.counters import check_counters, counter_caps
from terminal.settlement.insured import choose_policy
from terminal.settlement.methods import settlement_day
from terminal.settlement.policy import Level


class _Filing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opsp_dise_code: str
    begndate: date
    enddate: date | None = None


class _Benefits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opsp_filings: list[_Filing] = []
    assistance_category: str | None = None
    cvlserv_flag: bool = False
    enterprise_supplementary: bool = False
    mulaid_balc: Annotated[Decimal, Field(ge=0)] = Decimal("0.00")  # family account bound for 共济
    insurance_active: bool = True
    deceased: bool = False


class PersonFile(BaseModel):
    """A what-if person: 1101-style data, benefits and year-to-date accumulators."""

    model_config = ConfigDict(extra="forbid")

    psn_no: str
    psn_name: str
    certno: str
    insutype: str
    psn_type: Literal["active", "retired"]
    insuplc_admdvs: Annotated[str, Field(pattern=r"^\d{6}$")]
    acct_balc: Annotated[Decimal, Field(ge=0)] = Decimal("0.00")
    gend: str = ""
    brdy: date | None = None
    benefits: _Benefits = _Benefits()
    accumulators: dict[str, Any] = {}
    # The person's 异地就医备案 status, used only when insuplc_admdvs is in another province (inside the
    # province care counts as filed, 免备案; in the terminal's prefecture there is no cross-region
    # status). Absent: unfiled, as checkout assumes without a filing fact (settlement/insured.py).
    cross_region: Literal["filed", "unfiled", "temporary"] | None = None


def person_from_json(data: bytes | str | dict[str, Any], source: str) -> PersonFile:
    """A validated person file; PersonFileError naming the source, the field and the first problem."""
    try:
        if isinstance(data, dict):
            return PersonFile.model_validate(data)
        return PersonFile.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "person"
        raise PersonFileError(field, f"{first['msg']} (person file {source})") from exc


def checked_accumulators(spec: PersonFile, policy: PolicyBundle, level: Level, year: int) -> Accumulators:
    """The person file's accumulators, refused (PersonFileError) unless every counter is one the
    bundle knows for this person, ≥ 0 and within its cap."""
    try:
        before = Accumulators.from_json(spec.accumulators, year)
    except SettlementError as exc:
        raise PersonFileError("accumulators", str(exc)) from exc
    caps = counter_caps(policy, spec.insutype, spec.psn_type, level, spec.benefits.assistance_category)
    check_counters(before.counters, caps)
    return before


def price_what_if(terminal: Terminal, bill: Bill, spec: PersonFile, policy: PolicyBundle | None) -> Priced:
    """The bill priced for the person in spec, choosing the bundle as checkout does (from insuplc_admdvs;
    `policy`, a bundle the technician named, takes the chosen one's place), on the day the stay ends or
    else the bill's own date."""
    day = settlement_day(bill, bill.begntime.date())
    choice = choose_policy(
        terminal.policies,
        terminal.insured_policies,
        terminal.config.terminal.mdtrtarea_admvs,
        spec.insuplc_admdvs,
        day,
        declared=spec.cross_region,
        override=policy,
    )
    policy = choice.bundle
    person = Person(
        psn_no=spec.psn_no,
        psn_name=spec.psn_name,
        certno=spec.certno,
        insutype=spec.insutype,
        psn_type=spec.psn_type,
        insuplc_admdvs=spec.insuplc_admdvs,
        acct_balc=spec.acct_balc,
        gend=spec.gend,
        brdy=spec.brdy,
    )
    benefits = PersonBenefits(
        opsp_filings=tuple(
            OpspFiling(f.opsp_dise_code, f.begndate, f.enddate) for f in spec.benefits.opsp_filings
        ),
        assistance_category=spec.benefits.assistance_category,
        cvlserv_flag=spec.benefits.cvlserv_flag,
        enterprise_supplementary=spec.benefits.enterprise_supplementary,
        mulaid_balc=spec.benefits.mulaid_balc,
        insurance_active=spec.benefits.insurance_active,
        deceased=spec.benefits.deceased,
    )
    context = SettlementContext(
        institution_level=terminal.config.terminal.institution_level,
        setl_date=day,
        benefits=benefits,
        cross_region=choice.cross_region,
        policy_rule=choice.rule,
        # the cause the bill carries (med_type 22), as checkout reads it
        injury_cause=bill.injury_cause,
    )
    before = checked_accumulators(spec, policy, context.institution_level, day.year)
    result = presettle(bill, person, before, policy, terminal.catalog, context)
    return Priced(bill=bill, person=person, result=result, stored_accumulators=spec.accumulators)
