"""`medpay settle`: price a bill for a person from the terminal's records, or from a person file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.app import Terminal
from terminal.cli.receipt import render_receipt
from terminal.domain import Match, Person
from terminal.errors import BillError
from terminal.pipeline.bills import load_bill
from terminal.pipeline.checkout import Priced
from terminal.settlement import (
    Accumulators,
    OpspFiling,
    PersonBenefits,
    SettlementContext,
    load_bundle,
    presettle,
)
from terminal.settlement.bundle import load_trusted_keys


def settle_bill_file(terminal: Terminal, bill_path: Path, psn_no: str, record: bool) -> dict[str, Any]:
    """Pre-settle (and unless record is False, settle) a bill; returns JSON and the receipt text."""
    priced = terminal.checkout.price(load_bill(bill_path), psn_no)
    # The technician's CLI names the patient by insurance number: a credential path, not a face.
    settled = terminal.checkout.settle(priced, Match(psn_no, "credential")) if record else None
    report = priced.as_json()
    if settled is not None:
        report["msgid"] = settled.msgid
        report["outbox"] = dict(settled.envelope)
        report["offline"] = settled.offline
    report["receipt"] = render_receipt(priced, settled)
    return report


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
    acct_balc: Decimal = Decimal("0.00")
    gend: str = ""
    brdy: date | None = None
    benefits: _Benefits = _Benefits()
    accumulators: dict[str, Any] = {}
    cross_region: Literal["filed", "unfiled", "temporary"] | None = None


def price_with_person_file(
    terminal: Terminal, bill_path: Path, person_path: Path, policy_path: Path | None
) -> dict[str, Any]:
    """A pure estimate for a person described in a file, on the bill's own date; records nothing."""
    try:
        spec = PersonFile.model_validate_json(person_path.read_bytes())
    except OSError as exc:
        raise BillError(f"cannot read person file {person_path}: {exc.strerror}") from exc
    except ValidationError as exc:
        raise BillError(f"malformed person file {person_path}: {exc.errors()[0]['msg']}") from exc
    bill = load_bill(bill_path)
    day = bill.begntime.date()
    if policy_path is not None:
        keys = load_trusted_keys(terminal.config.settlement.trusted_keys)
        policy = load_bundle(policy_path, keys)
    else:
        policy = terminal.policies.for_date(day)
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
        cross_region=spec.cross_region,
    )
    result = presettle(
        bill, person, Accumulators.from_json(spec.accumulators, day.year), policy, terminal.catalog, context
    )
    priced = Priced(bill=bill, person=person, result=result, stored_accumulators=spec.accumulators)
    return {**priced.as_json(), "receipt": render_receipt(priced, None)}
