"""Fund-safety checks before settling: pure functions returning findings; the policy says flag or block."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from functools import lru_cache

from terminal.domain import Bill, FeeLine, Person
from terminal.errors import FundSafetyError as FundSafetyError
from terminal.settlement.catalog import CatalogItem
from terminal.settlement.context import SettlementContext
from terminal.settlement.instances import filled
from terminal.settlement.policy import FundSafety, SafetyAction, SafetyCheck, VisitLimits
from terminal.settlement.result import Finding


def age_on(birthday: date, day: date) -> int:
    """Completed years of age on a day."""
    return day.year - birthday.year - ((day.month, day.day) < (birthday.month, birthday.day))


def insurance_findings(context: SettlementContext) -> list[tuple[SafetyCheck, str]]:
    """A deceased person, or insurance suspended or ended (fund misuse in a dead person's name)."""
    out: list[tuple[SafetyCheck, str]] = []
    if context.benefits.deceased:
        out.append(("insurance_not_active", "参保人已登记死亡"))
    elif not context.benefits.insurance_active:
        out.append(("insurance_not_active", "参保状态非正常(暂停或终止)"))
    return out


def identity_findings(context: SettlementContext) -> list[tuple[SafetyCheck, str]]:
    """The credential and the face point at different people."""
    if context.safety.identity_mismatch:
        return [("identity_mismatch", "凭证身份与人脸身份不一致")]
    return []


def duplicate_findings(bill: Bill, context: SettlementContext) -> list[tuple[SafetyCheck, str]]:
    """The same bill was settled before."""
    if context.safety.bill_already_settled:
        return [("duplicate_bill", f"收费批次 {bill.chrg_bchno} 已结算")]
    return []


def dispensing_findings(
    bill: Bill, items: Sequence[CatalogItem], context: SettlementContext, tolerance_days: int
) -> list[tuple[SafetyCheck, str]]:
    """A drug dispensed again while the earlier supply (quantity × days per unit) should still last."""
    out: list[tuple[SafetyCheck, str]] = []
    if not context.safety.recent_dispensings:
        return out
    for line, item in zip(bill.lines, items, strict=True):
        if item.days_per_unit is None:
            continue
        for earlier in context.safety.recent_dispensings:
            if earlier.med_list_codg != line.med_list_codg:
                continue
            lasts_until = earlier.dispensed_on + timedelta(days=earlier.cnt * item.days_per_unit)
            left = (lasts_until - context.setl_date).days
            if left > tolerance_days:
                out.append(
                    (
                        "repeat_dispensing",
                        f"明细 {line.feedetl_sn} {item.name}: {earlier.dispensed_on} 所配药量可用至 "
                        f"{lasts_until}, 尚余 {left} 天",
                    )
                )
    return out


@lru_cache(maxsize=64)
def _window(window_days: int) -> timedelta:
    """The days before the settlement day a window of `window_days` reaches back (built once per size)."""
    return timedelta(days=window_days - 1)


def frequency_findings(
    bill: Bill, context: SettlementContext, limits: VisitLimits | None
) -> list[tuple[SafetyCheck, str]]:
    """More settlements of the limited medical types in a window than the bundle allows (this one counted)."""
    out: list[tuple[SafetyCheck, str]] = []
    if limits is None:
        return out
    day = context.setl_date
    visits = context.safety.recent_visits
    for limit in limits.limits:
        types = limit.med_types
        if types and bill.med_type not in types:
            continue
        first = day - _window(limit.window_days)
        # no earlier visits (most kiosk settlements): skip building and closing a generator
        earlier = (
            sum(1 for v in visits if first <= v.day <= day and (not types or v.med_type in types))
            if visits
            else 0
        )
        if earlier + 1 > limit.max_visits:
            kinds = "/".join(types) if types else "全部"
            out.append(
                (
                    "visit_frequency",
                    f"{first}–{day} 已结算 {earlier} 次(医疗类别 {kinds}), 本次为第 {earlier + 1} 次, "
                    f"超过 {limit.window_days} 天 {limit.max_visits} 次的限制",
                )
            )
    return out


def limit_findings(
    bill: Bill,
    items: Sequence[CatalogItem],
    person: Person,
    day: date,
    *,
    limited: Sequence[int] | None = None,
) -> list[tuple[SafetyCheck, str]]:
    """Lines that break a catalogue item's gender or age limit.

    `limited`, when given, holds the positions of every line whose item carries a limit (in order).
    """
    out: list[tuple[SafetyCheck, str]] = []
    age = age_on(person.brdy, day) if person.brdy is not None else None
    plain_age = age is None or 0 <= age <= 200  # passes the default bounds of an item without limits
    pairs: Iterable[tuple[FeeLine, CatalogItem]]
    if plain_age and limited is not None:
        # only items with a limit can fire for a plain age, and the caller listed exactly those
        pairs = [(bill.lines[i], items[i]) for i in limited]
    else:
        pairs = zip(bill.lines, items, strict=True)
    gend = person.gend
    for line, item in pairs:
        # each limit read once: an item is a pydantic model, whose attribute reads cost the most here
        gend_lmt, min_age, max_age = item.gend_lmt, item.min_age, item.max_age
        if plain_age and gend_lmt is None and min_age is None and max_age is None:
            continue  # most items carry no limit: nothing to find
        if gend_lmt is not None and gend in ("1", "2") and gend != gend_lmt:
            sex = "男" if gend_lmt == "1" else "女"
            out.append(("gender_limit", f"明细 {line.feedetl_sn} {item.name} 限{sex}性使用"))
        low = min_age if min_age is not None else 0
        high = max_age if max_age is not None else 200
        if age is not None and not low <= age <= high:
            span = f"{low}–{max_age}" if max_age is not None else f"{low} 岁以上"
            out.append(("age_limit", f"明细 {line.feedetl_sn} {item.name} 限 {span} 岁, 患者 {age} 岁"))
    return out


def fund_safety(
    bill: Bill,
    items: Sequence[CatalogItem],
    person: Person,
    context: SettlementContext,
    rules: FundSafety,
    *,
    limited: Sequence[int] | None = None,
    visit_limits: VisitLimits | None = None,
) -> tuple[Finding, ...]:
    """Every check that fired, with the action the policy gives it (unlisted checks only flag).

    `limited` may list the positions of the lines whose item has a gender or age limit (PricedBill);
    `visit_limits` is the bundle's frequency table, whose own action applies to `visit_frequency`.
    """
    raw = [
        *insurance_findings(context),
        *identity_findings(context),
        *duplicate_findings(bill, context),
        *dispensing_findings(bill, items, context, rules.repeat_dispensing_tolerance_days),
        *limit_findings(bill, items, person, context.setl_date, limited=limited),
        *frequency_findings(bill, context, visit_limits),
    ]
    if not raw:
        return ()
    actions: dict[SafetyCheck, SafetyAction] = dict(rules.actions)
    if visit_limits is not None:
        actions["visit_frequency"] = visit_limits.action
    # filled() builds what Finding(...) would, without a frozen __init__'s object.__setattr__ calls
    return tuple(
        [
            filled(Finding, {"check": check, "action": actions.get(check, "flag"), "message": message})
            for check, message in raw
        ]
    )
