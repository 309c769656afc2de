"""Payment methods beyond item-based pricing (docs/settlement.md, "Payment methods").

- Quotas (psn_setlway 02 按床日, 0201 单病种, 0202 日间手术): the fund pays the bundle's standard less
  the patient's share of it; the in-catalogue cost above the standard is the hospital's (hosp_part_amt).
- Stays: the settlement date (and so the bundle and the year's totals) is the date a stay or period
  ends; a later period of a stay settled in the middle (中途结算) pays no second admission deductible.
- DRG: the group's payment standard gives the fund–hospital reconciliation; the patient's share stays
  item-based, so nothing here changes what the patient pays.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import NamedTuple

from terminal.domain import Bill, Person
from terminal.errors import PaymentMethodError
from terminal.settlement import accumulators as acc
from terminal.settlement.money import ZERO, fen
from terminal.settlement.policy import SETLWAY_KINDS, PolicyBundle, Quota, QuotaRow, Scheme
from terminal.settlement.result import DrgReconciliation, SetlDetail
from terminal.settlement.run import Run, detail, pct

# DRG leaves out very short and very long stays (Qingyang 2025 DRG rules, domain.md 2.5 [C]).
DRG_MIN_DAYS = 3
DRG_MAX_DAYS = 59


def settlement_day(bill: Bill, otherwise: date) -> date:
    """The date a bill is settled on: the day its stay or period ends, else `otherwise`.

    Checkout passes today, what-if the bill's own date: a stay that ends on 31 December is priced with
    that year's bundle and totals in both, whenever it is settled (docs/settlement.md, "Stays").
    """
    return otherwise if bill.endtime is None else bill.endtime.date()


def check_stay(bill: Bill) -> None:
    """Refuse stay facts that do not fit: a period without its end, an end before the start."""
    if bill.endtime is not None and bill.endtime < bill.begntime:
        raise PaymentMethodError(f"bill {bill.chrg_bchno}: endtime {bill.endtime} is before {bill.begntime}")
    if (bill.mid_setl_flag or bill.psn_setlway == "02") and bill.endtime is None:
        raise PaymentMethodError(
            f"bill {bill.chrg_bchno}: a mid-stay or per bed-day settlement needs the period's endtime"
        )


def stay_days(bill: Bill) -> int:
    """Bed days of the stay or period: days from begntime to endtime, at least 1 (a day stay)."""
    if bill.endtime is None:
        return 1
    return max(1, (bill.endtime.date() - bill.begntime.date()).days)


class QuotaPay(NamedTuple):
    """What a quota settlement pays: the fund, the patient's in-scope share, the hospital's part."""

    pay: Decimal  # hifp_pay
    selfpay: Decimal  # the patient's share of the standard (and any part the cap left unpaid)
    hosp: Decimal  # hosp_part_amt: in-catalogue cost above the standard
    ratio: Decimal  # the fund's share of the standard (pool_prop_selfpay)
    detail: SetlDetail


def pay_quota(
    run: Run, bill: Bill, scheme: Scheme, person: Person, policy: PolicyBundle, covered: Decimal
) -> QuotaPay:
    """The fund pays min(standard, in-catalogue cost) less the patient's share, within the annual cap."""
    quota, row = _quota_for(bill, person, scheme, policy, run)
    days = stay_days(bill)
    standard = fen(row.standard * days) if quota.kind == "bed_day" else row.standard
    used = min(standard, covered)
    share = fen(used * row.patient_ratio)
    due = used - share
    cap = scheme.annual_caps[quota.cap_group]["retired" if person.psn_type == "retired" else "active"]
    cap_left = max(ZERO, cap - run.get(acc.POOLED_PAID, quota.cap_group))
    pay = min(due, cap_left)
    run.add(acc.POOLED_PAID, quota.cap_group, pay)
    hosp = covered - used
    basis = f"{days} 床日 × {row.standard} = {standard}" if quota.kind == "bed_day" else f"{standard}"
    text = (
        f"{quota.name}(结算方式 {bill.psn_setlway}): 定额 {basis}, 目录内费用 {covered}, 按 {used} 结算, "
        f"个人负担 {pct(row.patient_ratio)} = {share}, 年度限额余额 {cap_left}, 统筹支付 {pay}, "
        f"超定额部分由医院承担 {hosp}"
    )
    run.note("quota", text)
    row_detail = detail(scheme.fund_pay_type, scheme.fund_pay_type_name, used, cap_left, pay, text)
    return QuotaPay(pay, share + (due - pay), hosp, 1 - row.patient_ratio, row_detail)


def _quota_for(
    bill: Bill, person: Person, scheme: Scheme, policy: PolicyBundle, run: Run
) -> tuple[Quota, QuotaRow]:
    kind = SETLWAY_KINDS.get(bill.psn_setlway)
    if kind is None:
        raise PaymentMethodError(f"bill {bill.chrg_bchno}: unknown psn_setlway {bill.psn_setlway!r}")
    if run.context.cross_region is not None:
        # Quotas are the treating place's arrangement with its hospitals; the insured place's bundle
        # has none for this hospital [I: no source; the counter settles these with the centre].
        raise PaymentMethodError(f"bill {bill.chrg_bchno}: quota settlement of a cross-region patient")
    level = run.context.institution_level
    for quota in policy.quotas:
        if (
            quota.kind == kind
            and bill.med_type in quota.med_types
            and person.insutype in quota.insutypes
            and (not quota.dise_codes or bill.dise_codg in quota.dise_codes)
        ):
            row = quota.levels.get(level)
            if row is None or quota.cap_group not in scheme.annual_caps:
                break
            return quota, row
    raise PaymentMethodError(
        f"policy {policy.bundle_id} has no {kind} quota for med_type {bill.med_type}, insutype "
        f"{person.insutype}, diagnosis {bill.dise_codg} at level {level}"
    )


def drg_reconcile(
    run: Run, bill: Bill, medfee: Decimal, fund_pay_sumamt: Decimal, hifp_pay: Decimal, psn_part: Decimal
) -> DrgReconciliation | None:
    """The DRG reconciliation of a final, item-based inpatient settlement whose group has a standard."""
    rule = run.policy.drg
    code = bill.drg_code
    if rule is None or code is None or bill.med_type not in rule.med_types:
        return None
    if bill.psn_setlway != "01" or bill.mid_setl_flag:
        run.note("drg", f"DRG {code}: 定额或中途结算不做 DRG 清算")
        return None
    days = stay_days(bill)
    if bill.endtime is not None and not DRG_MIN_DAYS <= days <= DRG_MAX_DAYS:
        run.note("drg", f"DRG {code}: 住院 {days} 天, 不纳入 DRG 付费 (≤2 天或 ≥60 天)")
        return None
    group = rule.groups.get(code)
    if group is None:
        run.note("drg", f"DRG {code}: 政策未给出该组支付标准, 不做清算")
        return None
    due = group.standard - psn_part - (fund_pay_sumamt - hifp_pay)
    hosp = medfee - group.standard
    run.note(
        "drg",
        f"DRG {code} {group.name}: 支付标准 {group.standard}, 统筹应付医院 {due}, "
        f"医院承担 {hosp} (患者按项目结算, 个人负担不变)",
    )
    return DrgReconciliation(code, group.name, group.standard, due, hosp)
