"""The pooled fund (layers 2–3): deductible, ratio and annual cap, per benefit group or 门特 disease."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from terminal.domain import Bill, Person
from terminal.errors import SettlementError
from terminal.settlement import accumulators as acc
from terminal.settlement.context import SettlementContext
from terminal.settlement.instances import filled
from terminal.settlement.layers import (
    PoolStep,
    admission_deductible,
    effective_ratio,
    pool_layer,
    year_deductible_remaining,
)
from terminal.settlement.money import ZERO, fen, total
from terminal.settlement.policy import Benefit, PolicyBundle, Scheme
from terminal.settlement.result import LineResult, SetlDetail
from terminal.settlement.run import Run, pct

LEVEL_NAMES = {
    "primary": "基层",
    "level1": "一级",
    "level2": "二级",
    "level3_city": "三级(市级)",
    "level3_provincial": "三级(省级)",
}


class Group(NamedTuple):
    """Lines priced together by one benefit (or one 门特 disease, or not pooled at all)."""

    label: str
    inscp: Decimal  # total of the group's lines' inscp_scp_amt, added in line order
    benefit: Benefit | None = None
    disease: str | None = None


class Pooled(NamedTuple):
    """What the pooled fund paid of a bill: each priced group's step, and their totals."""

    steps: list[tuple[Group, PoolStep]]
    pay: Decimal  # hifp_pay
    deductible: Decimal  # act_pay_dedc
    main: tuple[Group, PoolStep] | None  # the group with the largest in-scope cost (first of equals)


def pay_pooled(
    run: Run,
    bill: Bill,
    lines: Sequence[LineResult],
    inscp: Decimal,
    scheme: Scheme,
    person: Person,
    policy: PolicyBundle,
    context: SettlementContext,
    reduction: Decimal,
) -> Pooled:
    """Layers 2–3: the deductible and the pooled fund, per benefit group (门特 diseases have their own)."""
    steps: list[tuple[Group, PoolStep]] = []
    for group in _groups(bill, lines, inscp, scheme, policy, context):
        if group.disease is not None:
            steps.append((group, _pool_disease(run, group, group.disease, scheme, person, reduction)))
        elif group.benefit is not None:
            steps.append(
                (group, _pool_benefit(run, group, group.benefit, scheme, person, context, reduction))
            )
        else:
            run.note("pool", f"{group.label}: 范围内 {group.inscp} 由个人支付")
    pay = total([step.pay for _, step in steps])
    deductible = total([step.deductible_applied for _, step in steps])
    # most bills have one group
    main = steps[0] if len(steps) == 1 else max(steps, key=lambda s: s[0].inscp, default=None)
    return Pooled(steps, pay, deductible, main)


def pooled_detail(run: Run, pooled: Pooled, scheme: Scheme, inscp: Decimal) -> SetlDetail | None:
    """The pooled fund's setldetail row, whenever it priced the bill; its text is the pool steps' trace."""
    main = pooled.main
    if main is None:
        return None
    pool_text = "；".join([t.text for t in run.trace if t.layer in ("pool", "opsp")])
    return filled(
        SetlDetail,
        {
            "fund_pay_type": scheme.fund_pay_type,
            "fund_pay_type_name": scheme.fund_pay_type_name,
            "inscp_scp_amt": inscp,
            "crt_payb_lmt_amt": fen(max(ZERO, main[1].cap_remaining)),
            "fund_payamt": pooled.pay,
            "setl_proc_info": pool_text[:4000],
        },
    )


def _groups(
    bill: Bill,
    lines: Sequence[LineResult],
    inscp: Decimal,
    scheme: Scheme,
    policy: PolicyBundle,
    context: SettlementContext,
) -> list[Group]:
    """The bill's lines by who prices them; `inscp` is the in-scope total of all `lines`."""
    filed: dict[str, Decimal] = {}  # covered disease code → its lines' in-scope total so far
    rest_inscp = inscp  # all lines in one group (the usual bill): the bill's total, already summed
    has_rest = True
    opsp_bill = bill.med_type in policy.opsp.med_types
    if opsp_bill:
        # One pass keeps a running total per group instead of collecting each group's lines and
        # summing them after: each total still starts at ZERO and adds its own lines in line order.
        covered: dict[str, bool] = {}  # per disease code seen: in the scheme's table and filed?
        zero = ZERO
        rest_sum = zero
        has_rest = False
        for line in lines:
            code = line.dise_codg
            if code is not None:
                ok = covered.get(code)
                if ok is None:
                    ok = covered[code] = code in scheme.opsp_diseases and any(
                        f.covers(code, context.setl_date) for f in context.benefits.opsp_filings
                    )
                if ok:
                    filed[code] = filed.get(code, zero) + line.inscp_scp_amt
                    continue
            rest_sum += line.inscp_scp_amt
            has_rest = True
        if filed:
            rest_inscp = rest_sum
    groups = (
        [
            Group(f"门特 {scheme.opsp_diseases[code].name}({code})", total_, disease=code)
            for code, total_ in sorted(filed.items())
        ]
        if filed
        else []
    )
    if has_rest:
        med_type = bill.med_type
        if opsp_bill and scheme.benefit_for(med_type) is None and med_type not in scheme.unpooled_med_types:
            # A 门特 bill whose lines no valid filing covers settles as an ordinary outpatient visit.
            med_type = policy.opsp.fallback_med_type
        benefit = scheme.benefit_for(med_type)
        if benefit is None and med_type not in scheme.unpooled_med_types:
            raise SettlementError(
                f"policy {policy.bundle_id} has no benefit for med_type {med_type} under insutype "
                f"{next(k for k, v in policy.schemes.items() if v is scheme)}"
            )
        label = benefit.name if benefit else f"med_type {med_type} 不纳入统筹"
        groups.append(Group(label, rest_inscp, benefit=benefit))
    return groups


def _cap_left(run: Run, scheme: Scheme, person: Person, cap_group: str) -> Decimal:
    """What is left this year of one of the scheme's annual caps, for this person's type."""
    cap = scheme.annual_caps[cap_group]["retired" if person.psn_type == "retired" else "active"]
    return cap - run.get(acc.POOLED_PAID, cap_group)


def _pay_step(
    run: Run,
    inscp: Decimal,
    deductible: Decimal,
    base_ratio: Decimal,
    retired_bonus: Decimal,
    person: Person,
    reduction: Decimal,
    cap_remaining: Decimal,
    cap_group: str | None,
) -> PoolStep:
    """The pooled ratio-within-cap step of a benefit or a 门特 disease; counts the pay against cap_group."""
    ratio = effective_ratio(base_ratio, retired_bonus, person.psn_type == "retired", reduction)
    step = pool_layer(inscp, deductible, ratio, cap_remaining)
    if cap_group is not None:
        run.add(acc.POOLED_PAID, cap_group, step.pay)
    return step


def _pool_benefit(
    run: Run,
    group: Group,
    benefit: Benefit,
    scheme: Scheme,
    person: Person,
    context: SettlementContext,
    reduction: Decimal,
) -> PoolStep:
    level = context.institution_level
    row = benefit.levels.get(level)
    cap_remaining = _cap_left(run, scheme, person, benefit.cap_group)
    if row is None:
        run.note("pool", f"{group.label}: {LEVEL_NAMES[level]}机构不在本待遇支付范围, 统筹支付 0.00")
        return pool_layer(group.inscp, ZERO, ZERO, cap_remaining)
    if benefit.deductible_basis == "admission" and run.bill.stay_period > 1:
        # A later period of a stay settled in the middle (中途结算): the stay's deductible and its
        # admission were counted at its first settlement [I: docs/settlement.md, "Stays"].
        deductible = ZERO
        basis = f"同一住院第{run.bill.stay_period}期(中途结算后), 起付线已在首期计算"
    elif benefit.deductible_basis == "admission":
        scope = f"{benefit.key}_{level}"
        prior = int(run.get(acc.ADMISSIONS, scope))
        deductible = admission_deductible(row.deductible, benefit.repeat_admission_factors, prior)
        run.add(acc.ADMISSIONS, scope, Decimal(1))
        basis = f"第{prior + 1}次住院起付线 {deductible}"
    else:
        used = run.get(acc.DEDUCTIBLE_USED, benefit.key)
        deductible = year_deductible_remaining(row.deductible, used)
        basis = f"年度起付线 {fen(row.deductible)} 已累计 {fen(used)} 尚余 {deductible}"
    step = _pay_step(
        run,
        group.inscp,
        deductible,
        row.ratio,
        benefit.retired_ratio_bonus,
        person,
        reduction,
        cap_remaining,
        benefit.cap_group,
    )
    if benefit.deductible_basis == "year":
        run.add(acc.DEDUCTIBLE_USED, benefit.key, step.deductible_applied)
    run.note(
        "pool",
        f"{group.label}({LEVEL_NAMES[level]}): 范围内 {group.inscp}, {basis}, "
        f"本次起付 {step.deductible_applied}, "
        f"比例 {pct(step.ratio)}, 年度限额余额 {fen(cap_remaining)}, 统筹支付 {step.pay}"
        + (" (已达年度限额)" if step.capped else ""),
    )
    return step


def _pool_disease(
    run: Run, group: Group, code: str, scheme: Scheme, person: Person, reduction: Decimal
) -> PoolStep:
    disease = scheme.opsp_diseases[code]
    used = run.get(acc.OPSP_DEDUCTIBLE_USED, code)
    deductible = year_deductible_remaining(disease.deductible, used)
    cap_remaining = disease.annual_limit - run.get(acc.OPSP_PAID, code)
    if disease.cap_group is not None:
        cap_remaining = min(cap_remaining, _cap_left(run, scheme, person, disease.cap_group))
    step = _pay_step(
        run,
        group.inscp,
        deductible,
        disease.ratio,
        disease.retired_ratio_bonus,
        person,
        reduction,
        cap_remaining,
        disease.cap_group,
    )
    run.add(acc.OPSP_DEDUCTIBLE_USED, code, step.deductible_applied)
    run.add(acc.OPSP_PAID, code, step.pay)
    run.note(
        "opsp",
        f"{group.label}: 范围内 {group.inscp}, 病种起付线尚余 {deductible}, "
        f"本次起付 {step.deductible_applied}, "
        f"比例 {pct(step.ratio)}, 病种年度限额余额 {fen(cap_remaining)}, 统筹支付 {step.pay}"
        + (" (已达病种年度限额)" if step.capped else ""),
    )
    return step
