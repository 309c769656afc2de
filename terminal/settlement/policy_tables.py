"""The policy bundle's newer tables: amount caps, injury, quota payments, DRG, fund safety, visits, hints."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from terminal.domain import InjuryCause as InjuryCause
from terminal.settlement.policy_base import (
    Amount,
    Key,
    Level,
    MedType,
    Ratio,
    SafetyAction,
    SafetyCheck,
    _Sourced,
    _Strict,
)


class AmountLimits(_Sourced):
    """Sanity caps on what a terminal settles by itself: one fee line, and one bill's total."""

    line_max: Annotated[Amount, Field(description="largest amount of one fee line (refunds: its size)")]
    bill_max: Annotated[Amount, Field(description="largest total of one bill")]


# Applies when a bundle has no amount_limits table (bundles signed before the table existed).
DEFAULT_AMOUNT_LIMITS = AmountLimits(
    placeholder=True,
    source="built-in default of the terminal (no amount_limits table in the bundle)",
    line_max=Decimal("2000000.00"),
    bill_max=Decimal("20000000.00"),
)


class CashierPrices(_Sourced):
    """Catalogue items without a unit price ceiling the cashier may price at the counter, and how high."""

    levels: Annotated[
        tuple[Literal["01", "02", "03"], ...],
        Field(description="classes (chrgitm_lv) the cashier may price when the catalogue sets no ceiling"),
    ] = ("03",)
    unit_max: Annotated[Amount, Field(description="highest unit price a cashier may set (yuan)")]


class Injury(_Sourced):
    """Injury care (外伤, med_type 22): paid by the basic fund only for causes it does not exclude."""

    med_types: Annotated[tuple[MedType, ...], Field(description="injury med_types", min_length=1)] = ("22",)
    excluded_causes: Annotated[
        tuple[InjuryCause, ...],
        Field(description="causes the basic fund never pays (another payer is liable)"),
    ] = ("third_party", "work_injury", "abroad", "public_health")
    requires_declaration: Annotated[
        bool, Field(description="true: refused until the cause is declared (外伤无第三方责任承诺)")
    ] = True


QuotaKind = Literal["bed_day", "single_disease", "day_surgery"]
# psn_setlway → the quota kind it asks for (01, by item, has none)
SETLWAY_KINDS: dict[str, QuotaKind] = {"02": "bed_day", "0201": "single_disease", "0202": "day_surgery"}


class QuotaRow(_Strict):
    """One quota at one institution level: the standard and the patient's share of it."""

    standard: Annotated[Amount, Field(description="per bed-day (bed_day) or per case (the others)")]
    patient_ratio: Annotated[Ratio, Field(description="the patient's share of the standard")]


class Quota(_Sourced):
    """A quota payment (psn_setlway 02 按床日, 0201 单病种, 0202 日间手术): the fund pays the standard
    less the patient's share instead of pricing the bill's lines through the pooled fund."""

    key: Annotated[Key, Field(description="short id, shown in the trace")]
    kind: Annotated[QuotaKind, Field(description="bed_day, single_disease or day_surgery")]
    name: Annotated[str, Field(description="name shown in the trace")]
    insutypes: Annotated[tuple[str, ...], Field(description="schemes it prices")] = ("310", "390")
    med_types: Annotated[tuple[MedType, ...], Field(description="bills it prices", min_length=1)]
    dise_codes: Annotated[
        tuple[str, ...], Field(description="the bill's dise_codg it prices; empty: any diagnosis")
    ] = ()
    levels: Annotated[
        dict[Level, QuotaRow], Field(description="rows by institution level; a level left out: refused")
    ]
    cap_group: Annotated[Key, Field(description="scheme annual cap its fund payment counts against")] = (
        "pooled"
    )


class DrgGroup(_Strict):
    """One DRG group's payment standard (what the fund owes the hospital for the stay in all)."""

    name: Annotated[str, Field(description="group name")]
    standard: Annotated[Amount, Field(description="payment standard of the group in yuan")]


class Drg(_Sourced):
    """DRG payment standards: fund reconciliation only, the patient's share stays item-based."""

    med_types: Annotated[
        tuple[MedType, ...], Field(description="inpatient med_types under DRG", min_length=1)
    ]
    groups: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Z0-9]{2,12}$")], DrgGroup],
        Field(description="payment standard by DRG group code"),
    ]


class FundSafety(_Strict):
    """What each fund-safety check does when it fires."""

    actions: Annotated[
        dict[SafetyCheck, SafetyAction], Field(description="flag (settle, mark for review) or block (refuse)")
    ] = {}  # noqa: RUF012 (a pydantic model: the default is copied per instance)
    repeat_dispensing_tolerance_days: Annotated[
        int, Field(description="days of supply still left at a new dispensing that are tolerated", ge=0)
    ] = 0


class VisitLimit(_Strict):
    """At most so many settlements of the listed medical types within a window of days, at any terminal."""

    med_types: Annotated[
        tuple[str, ...], Field(description="medical types counted (and limited); empty: every type")
    ] = ()
    window_days: Annotated[
        int, Field(description="days counted back from the settlement day, itself included", ge=1)
    ]
    max_visits: Annotated[
        int, Field(description="settlements allowed in the window, this one included", ge=1)
    ]


class VisitLimits(_Sourced):
    """Per-person frequency limits across terminals (fund supervision), fed by the gallery delta's history."""

    action: Annotated[SafetyAction, Field(description="flag (settle, mark for review) or block (refuse)")] = (
        "flag"
    )
    limits: Annotated[tuple[VisitLimit, ...], Field(description="each limit that applies is checked")] = ()


BenefitHintKind = Literal["opsp_filing", "assistance", "two_diseases"]


class BenefitHint(_Strict):
    """One 政策找人 rule: facts in the gallery delta that suggest a benefit the person has not claimed."""

    kind: Annotated[BenefitHintKind, Field(description="which benefit the rule points at")]
    dise_codes: Annotated[
        tuple[str, ...],
        Field(description="diagnosis codes (or prefixes) in the person's recent visits that suggest it"),
    ] = ()
    opsp_dise_code: Annotated[
        str | None, Field(description="opsp_filing: the 门特 disease whose filing would cover it")
    ] = None
    identities: Annotated[
        tuple[str, ...], Field(description="assistance: 1101 idetinfo psn_idet_type values that suggest it")
    ] = ()
    message: Annotated[
        str, Field(description="what the kiosk shows the patient", min_length=1, max_length=200)
    ]


class BenefitHints(_Sourced):
    """政策找人: rules for benefits a person appears eligible for and has not claimed; never blocks."""

    rules: Annotated[tuple[BenefitHint, ...], Field(description="checked in order")] = ()
