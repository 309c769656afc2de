"""The policy bundle: one insurance region's (admdvs) parameters for one year, as a strict model.

Every table carries `placeholder` and `source` so nobody mistakes an assumed figure for a confirmed
one. Amounts and ratios are written as JSON strings ("0.65", "1200.00"): floats are refused because a
binary float cannot be signed and re-read exactly.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from terminal.settlement.policy_base import (
    LEVELS,
    Amount,
    CrossRegionKind,
    FundPayType,
    Key,
    Level,
    MedType,
    PsnType,
    Ratio,
    SafetyAction,
    SafetyCheck,
    SignedRatio,
    _Sourced,
    _Strict,
)
from terminal.settlement.policy_tables import (
    DEFAULT_AMOUNT_LIMITS,
    SETLWAY_KINDS,
    AmountLimits,
    BenefitHint,
    BenefitHintKind,
    BenefitHints,
    CashierPrices,
    Drg,
    DrgGroup,
    FundSafety,
    Injury,
    InjuryCause,
    Quota,
    QuotaKind,
    QuotaRow,
    VisitLimit,
    VisitLimits,
)

# The bundle's types live in policy_base and policy_tables; callers import them from here.
__all__ = [
    "DEFAULT_AMOUNT_LIMITS",
    "LEVELS",
    "SETLWAY_KINDS",
    "Amount",
    "AmountLimits",
    "BenefitHint",
    "BenefitHintKind",
    "BenefitHints",
    "CashierPrices",
    "CrossRegionKind",
    "Drg",
    "DrgGroup",
    "FundPayType",
    "FundSafety",
    "Injury",
    "InjuryCause",
    "Key",
    "Level",
    "MedType",
    "PsnType",
    "Quota",
    "QuotaKind",
    "QuotaRow",
    "Ratio",
    "SafetyAction",
    "SafetyCheck",
    "SignedRatio",
    "VisitLimit",
    "VisitLimits",
    "_Sourced",
    "_Strict",
]


class LevelRow(_Strict):
    """Deductible and fund ratio at one institution level."""

    deductible: Annotated[Amount, Field(description="起付线 in yuan at this level")]
    ratio: Annotated[Ratio, Field(description="share of in-scope cost above the deductible the fund pays")]


class Benefit(_Sourced):
    """Pooled-fund benefit for a set of med_types under one scheme (e.g. inpatient, outpatient pooling)."""

    key: Annotated[Key, Field(description="short id; names this benefit's counters in the accumulators")]
    name: Annotated[str, Field(description="name shown in the trace, e.g. 住院 or 门诊共济")]
    med_types: Annotated[
        tuple[MedType, ...], Field(description="med_type codes priced by this benefit", min_length=1)
    ]
    levels: Annotated[
        dict[Level, LevelRow],
        Field(description="rows by institution level; a level left out is not covered by this benefit"),
    ]
    deductible_basis: Annotated[
        Literal["year", "admission"],
        Field(description="year: one deductible per calendar year; admission: one per inpatient stay"),
    ]
    repeat_admission_factors: Annotated[
        tuple[Ratio, ...],
        Field(
            description="admission basis only: deductible factor for the 1st, 2nd, … admission at the same "
            "level this year; the last factor applies to every later admission",
            min_length=1,
        ),
    ] = (Decimal(1),)
    retired_ratio_bonus: Annotated[
        SignedRatio, Field(description="added to the ratio for retired people (e.g. 0.02 = +2 points)")
    ] = Decimal(0)
    cap_group: Annotated[
        Key, Field(description="which of the scheme's annual_caps this benefit counts against")
    ]


class PersonalAccount(_Sourced):
    """The employee personal account (个人账户)."""

    fund_pay_type: Annotated[FundPayType, Field(description="setldetail code, 310200")] = "310200"
    pays_fully_selfpaid: Annotated[
        bool,
        Field(
            description="whether the account may also pay 丙类 and over-limit amounts, "
            "not only in-catalogue self-pay"
        ),
    ]


class OpspDisease(_Sourced):
    """门诊慢特病: one filed disease's own deductible, ratio and annual fund limit."""

    name: Annotated[str, Field(description="disease name (1309 list)")]
    deductible: Annotated[Amount, Field(description="per-year deductible for this disease")]
    ratio: Annotated[Ratio, Field(description="fund ratio above the deductible")]
    retired_ratio_bonus: Annotated[SignedRatio, Field(description="added for retired people")] = Decimal(0)
    annual_limit: Annotated[Amount, Field(description="most the fund pays for this disease in a year")]
    cap_group: Annotated[
        Key | None,
        Field(description="also counts against this scheme annual cap (null: only its own annual_limit)"),
    ] = None


class Scheme(_Sourced):
    """One insurance scheme (insutype 310 employee basic, 390 resident basic …)."""

    name: Annotated[str, Field(description="scheme name")]
    fund_pay_type: Annotated[FundPayType, Field(description="setldetail code of the pooled fund")]
    fund_pay_type_name: Annotated[str, Field(description="setldetail name of the pooled fund")]
    annual_caps: Annotated[
        dict[Key, dict[PsnType, Amount]],
        Field(description="cap group → yearly pooled-fund limit for active and retired people"),
    ]
    benefits: Annotated[tuple[Benefit, ...], Field(description="pooled benefits by med_type")]
    unpooled_med_types: Annotated[
        tuple[MedType, ...],
        Field(description="med_types this scheme does not pool (paid by account and cash), e.g. 41 pharmacy"),
    ] = ()
    personal_account: Annotated[
        PersonalAccount | None, Field(description="personal account rules; null when the scheme has none")
    ] = None
    opsp_diseases: Annotated[
        dict[Annotated[str, Field(pattern=r"^[A-Z0-9]{3,12}$")], OpspDisease],
        Field(description="门特 diseases by opsp_dise_code"),
    ] = {}  # noqa: RUF012 (a pydantic model: the default is copied per instance)

    @model_validator(mode="after")
    def _consistent(self) -> Scheme:
        seen: dict[str, str] = {}
        for benefit in self.benefits:
            if benefit.cap_group not in self.annual_caps:
                raise ValueError(
                    f"benefit {benefit.key}: cap_group {benefit.cap_group} has no annual_caps entry"
                )
            for med_type in benefit.med_types:
                if med_type in seen:
                    raise ValueError(f"med_type {med_type} is in both {seen[med_type]} and {benefit.key}")
                seen[med_type] = benefit.key
        for med_type in self.unpooled_med_types:
            if med_type in seen:
                raise ValueError(f"med_type {med_type} is both pooled ({seen[med_type]}) and unpooled")
        for code, disease in self.opsp_diseases.items():
            if disease.cap_group is not None and disease.cap_group not in self.annual_caps:
                raise ValueError(f"门特 {code}: cap_group {disease.cap_group} has no annual_caps entry")
        for group, caps in self.annual_caps.items():
            if set(caps) != {"active", "retired"}:
                raise ValueError(f"annual_caps.{group} needs both active and retired")
        keys = [b.key for b in self.benefits]
        if len(keys) != len(set(keys)):
            raise ValueError("benefit keys must be unique")
        return self

    def benefit_for(self, med_type: str) -> Benefit | None:
        """The benefit that prices this med_type, or None."""
        # a loop, not next() over a generator: this runs for every bill, and an unfinished generator
        # costs more to close than the search itself
        for benefit in self.benefits:
            if med_type in benefit.med_types:
                return benefit
        return None


class OpspPolicy(_Strict):
    """How 门特 bills are recognised."""

    med_types: Annotated[
        tuple[MedType, ...],
        Field(description="med_types whose lines with a filed dise_codg use the disease table (14, 41 …)"),
    ] = ("14",)
    fallback_med_type: Annotated[
        MedType, Field(description="benefit used for lines of such a bill that no valid filing covers")
    ] = "11"


class Segment(_Strict):
    """One critical-illness segment: cumulative self-pay up to `upto` is paid at `ratio`."""

    upto: Annotated[Amount | None, Field(description="segment upper bound; null for the open last segment")]
    ratio: Annotated[Ratio, Field(description="share paid inside this segment")]


class CriticalIllness(_Sourced):
    """Resident critical-illness insurance (大病保险, 390200 → hifmi_pay)."""

    insutypes: Annotated[tuple[str, ...], Field(description="schemes covered")] = ("390",)
    fund_pay_type: Annotated[FundPayType, Field(description="setldetail code")] = "390200"
    fund_pay_type_name: str = "城乡居民大病医疗保险"
    med_types: Annotated[tuple[MedType, ...], Field(description="med_types whose self-pay counts")]
    threshold: Annotated[Amount, Field(description="cumulative in-scope self-pay a year before it pays")]
    segments: Annotated[
        tuple[Segment, ...], Field(description="ascending segments above the threshold", min_length=1)
    ]
    annual_cap: Annotated[Amount | None, Field(description="yearly limit; null for none")]

    @model_validator(mode="after")
    def _ascending(self) -> CriticalIllness:
        bounds = [s.upto for s in self.segments]
        if any(b is None for b in bounds[:-1]):
            raise ValueError("only the last segment may be open (upto null)")
        closed = [b for b in bounds if b is not None]
        if closed != sorted(closed) or (closed and closed[0] <= self.threshold):
            raise ValueError("segment bounds must rise and start above the threshold")
        return self


class LargeAmount(_Sourced):
    """Employee large-amount subsidy (大额医疗费用补助, 330100 → hifob_pay): cost above the pooled cap."""

    insutypes: Annotated[tuple[str, ...], Field(description="schemes covered")] = ("310",)
    fund_pay_type: FundPayType = "330100"
    fund_pay_type_name: str = "大额医疗费用补助"
    cap_groups: Annotated[
        tuple[Key, ...],
        Field(description="scheme cap groups above whose annual cap it pays (not outpatient or 门特 limits)"),
    ] = ("pooled",)
    ratio: Annotated[Ratio, Field(description="share of in-scope cost above the pooled annual cap")]
    annual_cap: Annotated[Amount, Field(description="yearly limit")]


class CivilServant(_Sourced):
    """Civil-servant medical subsidy (公务员医疗补助, 320100 → cvlserv_pay)."""

    insutypes: Annotated[tuple[str, ...], Field(description="schemes covered")] = ("310",)
    fund_pay_type: FundPayType = "320100"
    fund_pay_type_name: str = "公务员医疗补助资金"
    med_types: Annotated[tuple[MedType, ...], Field(description="med_types it pays for")]
    ratio: Annotated[Ratio, Field(description="share of the remaining in-scope self-pay it pays")]
    annual_cap: Annotated[Amount, Field(description="yearly limit")]


class EnterpriseSupplementary(_Sourced):
    """Enterprise supplementary medical insurance (企业补充医疗保险, insutype 370, 370100 → hifes_pay)."""

    insutypes: Annotated[tuple[str, ...], Field(description="base schemes it tops up")] = ("310",)
    fund_pay_type: FundPayType = "370100"
    fund_pay_type_name: str = "企业补充医疗保险"
    med_types: Annotated[tuple[MedType, ...], Field(description="med_types it pays for", min_length=1)]
    deductible: Annotated[Amount, Field(description="yearly deductible of the plan")] = Decimal(0)
    ratio: Annotated[
        Ratio, Field(description="share of the in-scope self-pay left after the public funds that it pays")
    ]
    annual_cap: Annotated[Amount | None, Field(description="yearly limit; null for none")]


class AccountMutualAid(_Sourced):
    """个人账户共济: a bound family member's employee personal account pays the patient's share."""

    med_types: Annotated[
        tuple[MedType, ...], Field(description="med_types whose personal share it may pay", min_length=1)
    ]
    pays_fully_selfpaid: Annotated[
        bool,
        Field(description="whether it may also pay 丙类 and over-limit amounts, not only in-catalogue"),
    ]


class AssistanceCategory(_Sourced):
    """One medical-assistance category (特困, 低保 …)."""

    name: Annotated[str, Field(description="category name")]
    deductible: Annotated[Amount, Field(description="yearly assistance deductible")] = Decimal(0)
    ratio: Annotated[Ratio, Field(description="share of the remaining in-scope self-pay assistance pays")]
    annual_cap: Annotated[Amount | None, Field(description="yearly limit; null for none")]
    critical_illness_tilt: Annotated[
        bool, Field(description="whether the critical-illness tilt (lower threshold, higher ratios) applies")
    ]


class CriticalIllnessTilt(_Sourced):
    """国办发〔2021〕42号: the critical-illness layer made more generous for assistance recipients."""

    threshold_factor: Annotated[Ratio, Field(description="threshold multiplied by this (0.5 halves it)")]
    ratio_bonus: Annotated[Ratio, Field(description="added to every segment ratio (0.05 = +5 points)")]
    remove_cap: Annotated[bool, Field(description="whether the annual cap is lifted")]


class Assistance(_Strict):
    """Medical assistance (医疗救助, 610100 → maf_pay)."""

    fund_pay_type: FundPayType = "610100"
    fund_pay_type_name: str = "医疗救助基金"
    med_types: Annotated[tuple[MedType, ...], Field(description="med_types assistance pays for")]
    categories: Annotated[dict[Key, AssistanceCategory], Field(description="categories by id")]
    critical_illness_tilt: Annotated[CriticalIllnessTilt | None, Field(description="tilt; null for none")] = (
        None
    )

    @property
    def insutypes(self) -> None:
        """No list of schemes: assistance covers employees and residents alike (its categories decide)."""
        return None


class CrossRegion(_Sourced):
    """Cross-region care: the insured place's policy with a ratio reduction by filing status."""

    ratio_reduction: Annotated[
        dict[CrossRegionKind, Ratio],
        Field(description="points taken off every fund ratio (0.10 = −10 points) by filing status"),
    ]


class PolicyBundle(_Sourced):
    """All parameters the engine needs for one insured region and year."""

    format: Annotated[Literal["medpay-policy/1"], Field(description="bundle format version")]
    bundle_id: Annotated[str, Field(description="admdvs-year, e.g. 430100-2025", pattern=r"^\d{6}-\d{4}$")]
    version: Annotated[str, Field(description="human-readable version label, e.g. 2025.1")]
    revision: Annotated[
        int,
        Field(
            description="integer revision, raised on every re-issue of this region and year; a terminal "
            "refuses a lower revision than one it has held (its high-water mark)",
            ge=1,
        ),
    ]
    admdvs: Annotated[str, Field(description="insured region code (统筹区)", pattern=r"^\d{6}$")]
    region_name: Annotated[str, Field(description="region name")]
    year: Annotated[int, Field(description="policy year; accumulators reset with it", ge=2000, le=2100)]
    valid_from: Annotated[date, Field(description="first settlement date this bundle prices")]
    valid_to: Annotated[date, Field(description="last settlement date this bundle prices")]
    schemes: Annotated[
        dict[Annotated[str, Field(pattern=r"^\d{3}$")], Scheme], Field(description="by insutype")
    ]
    opsp: Annotated[OpspPolicy, Field(description="门特 recognition")] = OpspPolicy()
    critical_illness: CriticalIllness | None = None
    large_amount: LargeAmount | None = None
    civil_servant: CivilServant | None = None
    enterprise_supplementary: Annotated[
        EnterpriseSupplementary | None,
        Field(description="enterprise supplementary insurance (hifes_pay); null: none (pays 0)"),
    ] = None
    account_mutual_aid: Annotated[
        AccountMutualAid | None,
        Field(description="family mutual-aid account payments (acct_mulaid_pay); null: none (pays 0)"),
    ] = None
    assistance: Assistance | None = None
    cross_region: CrossRegion | None = None
    fund_safety: FundSafety = FundSafety()
    amount_limits: Annotated[
        AmountLimits,
        Field(description="per-line and per-bill caps; absent: the terminal's built-in placeholder caps"),
    ] = DEFAULT_AMOUNT_LIMITS
    injury: Annotated[
        Injury | None, Field(description="injury (med_type 22) exclusion rule; null: no such rule")
    ] = None
    quotas: Annotated[
        tuple[Quota, ...], Field(description="quota payments (per bed-day, single disease, day surgery)")
    ] = ()
    drg: Annotated[Drg | None, Field(description="DRG payment standards; null: no DRG reconciliation")] = None
    visit_limits: Annotated[
        VisitLimits | None, Field(description="per-person visit frequency limits; null: none checked")
    ] = None
    benefit_hints: Annotated[
        BenefitHints | None, Field(description="政策找人 rules; null: no hints shown")
    ] = None
    cashier_prices: Annotated[
        CashierPrices | None,
        Field(description="counter items the cashier prices (no ceiling); null: such items are refused"),
    ] = None

    @model_validator(mode="after")
    def _dates(self) -> PolicyBundle:
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if not self.bundle_id.startswith(self.admdvs) or not self.bundle_id.endswith(str(self.year)):
            raise ValueError("bundle_id must be admdvs-year")
        return self
