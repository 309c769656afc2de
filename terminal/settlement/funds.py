"""The supplementary funds (layers 4–8): each pays part of what the funds before it left to the person.

Each is a FundLayer: its eligibility guard (covers()), then its ratio within its annual cap, and the
text the trace and setldetail show, booked in the run (Run.book). Order (presettle): large-amount,
critical illness, civil servant, enterprise supplementary, and medical assistance, the last resort,
after every insurance.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol, TypeVar

from terminal.domain import Bill, Person
from terminal.errors import SettlementError
from terminal.settlement import accumulators as acc
from terminal.settlement.context import SettlementContext
from terminal.settlement.critical import critical_terms
from terminal.settlement.layers import PoolStep, ratio_layer, segmented_layer, year_deductible_remaining
from terminal.settlement.money import ZERO, fen, total
from terminal.settlement.policy import AssistanceCategory, CriticalIllnessTilt, PolicyBundle
from terminal.settlement.pooled import Group
from terminal.settlement.run import Payer, Run, pct


class FundLayer(Protocol):
    """A supplementary fund: its eligibility guard, then its ratio within its cap, booked in the run."""

    def __call__(self, run: Run, base: Decimal) -> Decimal:
        """What it pays of `base` (ZERO when it does not cover the run's claim)."""


class _Listed(Protocol):
    """A fund rule that lists the visit types (med_types) and the schemes (insutypes; None: all) it covers."""

    @property
    def med_types(self) -> Sequence[str]: ...

    @property
    def insutypes(self) -> Sequence[str] | None: ...


_R = TypeVar("_R", bound=_Listed)


def covers(rule: _R | None, flag: bool, person: Person, bill: Bill) -> _R | None:
    """The rule if it covers the claim (flag set, med_type listed, insutype listed where it lists any)."""
    if rule is None or not flag or bill.med_type not in rule.med_types:
        return None
    insutypes = rule.insutypes
    if insutypes is not None and person.insutype not in insutypes:
        return None
    return rule


def large_amount_base(steps: Sequence[tuple[Group, PoolStep]], policy: PolicyBundle) -> Decimal:
    """The in-scope cost the pooled annual caps the large-amount rule names left uncovered."""
    rule = policy.large_amount
    if rule is None:
        return ZERO
    # Only cost left uncovered by the capped groups it names: a 门特 disease limit or the outpatient
    # pooling cap is not "above the pooled annual cap".
    return total(
        step.over_cap_base
        for group, step in steps
        if group.benefit is not None and group.benefit.cap_group in rule.cap_groups
    )


def large_amount(run: Run, base: Decimal) -> Decimal:
    """大额补助: a ratio of the cost above the pooled annual cap (large_amount_base), within its cap."""
    rule = run.policy.large_amount
    if rule is None or run.person.insutype not in rule.insutypes or base <= 0:
        return ZERO
    # the payment uses the exact uncovered cost; the trace and setldetail show it to the fen
    label = "大额补助: 超统筹年度限额的范围内费用"
    return _ratio_within_cap(run, rule, acc.LARGE_AMOUNT_PAID, "large_amount", label, base)


def critical_illness(run: Run, base: Decimal) -> Decimal:
    """大病保险: segmented ratios of the year's cumulative in-scope self-pay above a threshold."""
    rule = covers(run.policy.critical_illness, True, run.person, run.bill)
    if rule is None:
        return ZERO
    threshold, segments, cap, tilt_note, bands = critical_terms(rule, _tilt(run.policy, run.context))
    before = run.get(acc.CRITICAL_ILLNESS_BASE)
    cap_remaining = None if cap is None else cap - run.get(acc.CRITICAL_ILLNESS_PAID)
    pay = segmented_layer(before, base, threshold, segments, cap_remaining)
    run.add(acc.CRITICAL_ILLNESS_BASE, "", base)
    run.add(acc.CRITICAL_ILLNESS_PAID, "", pay)
    text = (
        f"大病保险{tilt_note}: 本年累计范围内自付 {fen(before)} → {fen(before + base)}, "
        f"起付线 {threshold}, "
        f"分段 [{bands}], 支付 {pay}"
    )
    return run.book(
        "critical_illness", rule, base, pay if cap_remaining is None else cap_remaining, pay, text
    )


def civil_servant(run: Run, base: Decimal) -> Decimal:
    """公务员医疗补助: a ratio of the remaining in-scope self-pay, within its annual cap."""
    rule = covers(run.policy.civil_servant, run.context.benefits.cvlserv_flag, run.person, run.bill)
    if rule is None:
        return ZERO
    label = "公务员医疗补助: 范围内自付"
    return _ratio_within_cap(run, rule, acc.CIVIL_SERVANT_PAID, "civil_servant", label, base)


def enterprise_supplementary(run: Run, base: Decimal) -> Decimal:
    """企业补充医疗保险 (hifes_pay): a yearly deductible, then a ratio within an optional annual cap."""
    rule = covers(
        run.policy.enterprise_supplementary,
        run.context.benefits.enterprise_supplementary,
        run.person,
        run.bill,
    )
    if rule is None:
        return ZERO
    applied, pay, cap_remaining = _yearly(
        run,
        base,
        rule.deductible,
        rule.ratio,
        rule.annual_cap,
        acc.ENTERPRISE_DEDUCTIBLE_USED,
        acc.ENTERPRISE_PAID,
    )
    text = (
        f"企业补充医疗保险: 剩余范围内自付 {base}, 起付 {applied}, 比例 {pct(rule.ratio)}, "
        f"年度限额余额 {'不设' if cap_remaining is None else fen(cap_remaining)}, 支付 {pay}"
    )
    limit = pay if cap_remaining is None else cap_remaining
    return run.book("enterprise_supplementary", rule, base, limit, pay, text)


def medical_assistance(run: Run, base: Decimal) -> Decimal:
    """医疗救助: the person's assistance category's deductible, ratio and cap over what is left."""
    category = assistance_category(run.policy, run.context)
    rule = covers(run.policy.assistance, category is not None, run.person, run.bill)
    if rule is None or category is None:
        return ZERO
    applied, pay, cap_remaining = _yearly(
        run,
        base,
        category.deductible,
        category.ratio,
        category.annual_cap,
        acc.ASSISTANCE_DEDUCTIBLE_USED,
        acc.ASSISTANCE_PAID,
    )
    text = (
        f"医疗救助({category.name}): 剩余范围内自付 {base}, 救助起付 {applied}, "
        f"比例 {pct(category.ratio)}, "
        f"年度限额余额 {'不设' if cap_remaining is None else fen(cap_remaining)}, 支付 {pay}"
    )
    limit = pay if cap_remaining is None else cap_remaining
    return run.book("assistance", rule, base, limit, pay, text)


def assistance_category(policy: PolicyBundle, context: SettlementContext) -> AssistanceCategory | None:
    """The person's medical-assistance category, None for none; SettlementError for one the bundle lacks."""
    key = context.benefits.assistance_category
    if key is None:
        return None
    if policy.assistance is None or key not in policy.assistance.categories:
        raise SettlementError(f"policy {policy.bundle_id} has no medical-assistance category {key!r}")
    return policy.assistance.categories[key]


def _tilt(policy: PolicyBundle, context: SettlementContext) -> CriticalIllnessTilt | None:
    category = assistance_category(policy, context)
    if category is None or not category.critical_illness_tilt or policy.assistance is None:
        return None
    return policy.assistance.critical_illness_tilt


class _RatioRule(Payer, Protocol):
    """A fund paying a ratio of a base up to an annual cap (large-amount, civil-servant subsidies)."""

    @property
    def ratio(self) -> Decimal: ...

    @property
    def annual_cap(self) -> Decimal: ...


def _ratio_within_cap(
    run: Run, rule: _RatioRule, counter: str, layer: str, base_label: str, base: Decimal
) -> Decimal:
    """Pay ratio × base within what is left of the annual cap (no deductible); setldetail shows fen(base)."""
    ratio = rule.ratio
    cap_remaining = rule.annual_cap - run.get(counter)
    _, pay = ratio_layer(base, ZERO, ratio, cap_remaining)
    run.add(counter, "", pay)
    shown = fen(base)
    text = f"{base_label} {shown}, 比例 {pct(ratio)}, 年度限额余额 {fen(cap_remaining)}, 支付 {pay}"
    return run.book(layer, rule, shown, cap_remaining, pay, text)


def _yearly(
    run: Run,
    base: Decimal,
    deductible: Decimal,
    ratio: Decimal,
    annual_cap: Decimal | None,
    deductible_counter: str,
    paid_counter: str,
) -> tuple[Decimal, Decimal, Decimal | None]:
    """A fund with a yearly deductible, a ratio and a yearly cap; (deductible applied, pay, cap left)."""
    remaining = year_deductible_remaining(deductible, run.get(deductible_counter))
    cap_remaining = None if annual_cap is None else annual_cap - run.get(paid_counter)
    applied, pay = ratio_layer(base, remaining, ratio, cap_remaining)
    run.add(deductible_counter, "", applied)
    run.add(paid_counter, "", pay)
    return applied, pay, cap_remaining


# The supplementary funds in the order presettle runs them (the annotation holds each to FundLayer).
FUNDS_IN_ORDER: tuple[FundLayer, ...] = (
    large_amount,
    critical_illness,
    civil_servant,
    enterprise_supplementary,
    medical_assistance,
)
