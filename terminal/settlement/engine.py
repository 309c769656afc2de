"""presettle(): compose the layers in order over one bill. Pure: no I/O, no clock, no network."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NamedTuple, Protocol

from terminal.domain import Bill, Person
from terminal.errors import BillError, SettlementError
from terminal.settlement import accumulators as acc
from terminal.settlement.accumulators import AccumulatorDelta, Accumulators
from terminal.settlement.catalog import Catalog
from terminal.settlement.context import SettlementContext
from terminal.settlement.layers import (
    PoolStep,
    account_layer,
    admission_deductible,
    effective_ratio,
    mutual_aid_layer,
    pool_layer,
    price_bill,
    price_lines,
    ratio_layer,
    segmented_layer,
    year_deductible_remaining,
)
from terminal.settlement.money import FEN, ZERO, clamp_ratio, fen, total
from terminal.settlement.policy import (
    AssistanceCategory,
    Benefit,
    CriticalIllness,
    CriticalIllnessTilt,
    PolicyBundle,
    Scheme,
)
from terminal.settlement.result import LineResult, SetlDetail, SetlInfo, SettlementResult, TraceStep, filled
from terminal.settlement.safety import FundSafetyError, fund_safety

LEVEL_NAMES = {
    "primary": "基层",
    "level1": "一级",
    "level2": "二级",
    "level3_city": "三级(市级)",
    "level3_provincial": "三级(省级)",
}


_NOUGHT = Decimal(0)

# Trace text interpolates amounts as {x!s}: str() of a Decimal is exactly what format() gives it with
# an empty spec, at a third of the cost, and a settlement writes about 25 amounts into its trace.


def check_bill(bill: Bill) -> None:
    """Refuse a malformed bill: no lines, repeated feedetl_sn, bad quantities or sums; BillError."""
    if not bill.lines:
        raise BillError(f"bill {bill.chrg_bchno} has no fee lines")
    # Fast pass over every line (no message text is built); a bill it doubts is checked again line by
    # line below, which raises the first problem in line order exactly as before.
    quantize = Decimal.quantize
    cent = FEN
    half_up = ROUND_HALF_UP
    nought = _NOUGHT  # Decimal against Decimal: comparing with the int 0 converts it every time
    try:
        for line in bill.lines:
            amount = line.det_item_fee_sumamt
            cnt = line.cnt
            if (
                cnt <= nought
                or line.pric < nought
                or amount < nought
                or quantize(amount, cent, half_up) != amount
                or abs(cnt * line.pric - amount) > cent
            ):
                break
        else:
            if len({line.feedetl_sn for line in bill.lines}) == len(bill.lines):
                return
    except ArithmeticError:
        pass  # the line-by-line pass meets it in order (or a duplicate line before it)
    _check_lines(bill)


def _check_lines(bill: Bill) -> None:
    seen: set[str] = set()
    for line in bill.lines:
        where = f"bill {bill.chrg_bchno} fee line {line.feedetl_sn}"
        if line.feedetl_sn in seen:
            raise BillError(f"{where}: feedetl_sn appears twice")
        seen.add(line.feedetl_sn)
        if line.cnt <= 0:
            raise BillError(f"{where}: quantity {line.cnt} must be positive")
        if line.pric < 0 or line.det_item_fee_sumamt < 0:
            raise BillError(f"{where}: negative price or amount")
        if fen(line.det_item_fee_sumamt) != line.det_item_fee_sumamt:
            raise BillError(f"{where}: amount {line.det_item_fee_sumamt} is not in whole fen")
        # Unit prices may carry 4 decimals, so cnt × pric can differ from the line total by rounding,
        # but never by more than a fen.
        if abs(line.cnt * line.pric - line.det_item_fee_sumamt) > FEN:
            raise BillError(
                f"{where}: amount {line.det_item_fee_sumamt} is not quantity {line.cnt} × price {line.pric}"
            )


class _Run:
    """The running state of one presettle call (local to it; nothing escapes but the frozen result)."""

    __slots__ = ("before", "counters", "trace")

    def __init__(self, before: Accumulators) -> None:
        self.before = before
        self.counters: dict[str, Decimal] = {}
        self.trace: list[TraceStep] = []

    def get(self, kind: str, scope: str = "") -> Decimal:
        key = f"{kind}.{scope}" if scope else kind  # acc.counter(), inline: a dozen calls a settlement
        found = self.counters.get(key)
        return self.before.counters.get(key, _NOUGHT) if found is None else found

    def add(self, kind: str, scope: str, amount: Decimal) -> None:
        if amount:
            key = f"{kind}.{scope}" if scope else kind
            found = self.counters.get(key)
            self.counters[key] = (self.before.counters.get(key, _NOUGHT) if found is None else found) + amount

    def note(self, layer: str, text: str) -> None:
        self.trace.append(filled(TraceStep, {"layer": layer, "text": text}))

    def after(self) -> Accumulators:
        return Accumulators.built(self.before.year, {**self.before.counters, **self.counters})

    def delta(self, after: Accumulators) -> AccumulatorDelta:
        """before.delta_to(after), over the counters this run touched: every other change is zero."""
        old, new = self.before.counters, after.counters
        return AccumulatorDelta.built(
            self.before.year, {k: new.get(k, _NOUGHT) - old.get(k, _NOUGHT) for k in self.counters}
        )


class _Group(NamedTuple):
    """Lines priced together by one benefit (or one 门特 disease, or not pooled at all)."""

    label: str
    inscp: Decimal  # total of the group's lines' inscp_scp_amt, added in line order
    benefit: Benefit | None = None
    disease: str | None = None


@lru_cache(maxsize=256)
def _pct(ratio: Decimal) -> str:
    # Cached: a policy has a handful of ratios and formatting one cost more than a line's arithmetic.
    # Equal Decimals (0.65, 0.650) print the same here, so sharing their entry is safe.
    return f"{(ratio * 100).normalize():f}%"


def _scheme(policy: PolicyBundle, person: Person) -> Scheme:
    scheme = policy.schemes.get(person.insutype)
    if scheme is None:
        raise SettlementError(
            f"policy {policy.bundle_id} has no scheme for insutype {person.insutype} (person {person.psn_no})"
        )
    if person.psn_type not in ("active", "retired"):
        raise SettlementError(
            f"person {person.psn_no}: psn_type {person.psn_type!r} is not active or retired"
        )
    return scheme


def _check_period(policy: PolicyBundle, before: Accumulators, context: SettlementContext) -> None:
    day = context.setl_date
    if not policy.valid_from <= day <= policy.valid_to:
        raise SettlementError(
            f"policy {policy.bundle_id} v{policy.version} prices "
            f"{policy.valid_from}…{policy.valid_to}, not {day}"
        )
    if before.year != day.year:
        raise SettlementError(f"accumulators are for {before.year} but the bill is settled in {day.year}")


def _groups(
    bill: Bill,
    lines: Sequence[LineResult],
    inscp: Decimal,
    scheme: Scheme,
    policy: PolicyBundle,
    context: SettlementContext,
) -> list[_Group]:
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
            _Group(f"门特 {scheme.opsp_diseases[code].name}({code})", total_, disease=code)
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
        groups.append(_Group(label, rest_inscp, benefit=benefit))
    return groups


def _cap_left(run: _Run, scheme: Scheme, person: Person, cap_group: str) -> Decimal:
    """What is left this year of one of the scheme's annual caps, for this person's type."""
    cap = scheme.annual_caps[cap_group]["retired" if person.psn_type == "retired" else "active"]
    return cap - run.get(acc.POOLED_PAID, cap_group)


def _pay_pooled(
    run: _Run,
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
    run: _Run,
    group: _Group,
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
    if benefit.deductible_basis == "admission":
        scope = f"{benefit.key}_{level}"
        prior = int(run.get(acc.ADMISSIONS, scope))
        deductible = admission_deductible(row.deductible, benefit.repeat_admission_factors, prior)
        run.add(acc.ADMISSIONS, scope, Decimal(1))
        basis = f"第{prior + 1}次住院起付线 {deductible!s}"
    else:
        used = run.get(acc.DEDUCTIBLE_USED, benefit.key)
        deductible = year_deductible_remaining(row.deductible, used)
        basis = f"年度起付线 {fen(row.deductible)!s} 已累计 {fen(used)!s} 尚余 {deductible!s}"
    step = _pay_pooled(
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
        f"{group.label}({LEVEL_NAMES[level]}): 范围内 {group.inscp!s}, {basis}, "
        f"本次起付 {step.deductible_applied!s}, "
        f"比例 {_pct(step.ratio)}, 年度限额余额 {fen(cap_remaining)!s}, 统筹支付 {step.pay!s}"
        + (" (已达年度限额)" if step.capped else ""),
    )
    return step


def _pool_disease(
    run: _Run, group: _Group, code: str, scheme: Scheme, person: Person, reduction: Decimal
) -> PoolStep:
    disease = scheme.opsp_diseases[code]
    used = run.get(acc.OPSP_DEDUCTIBLE_USED, code)
    deductible = year_deductible_remaining(disease.deductible, used)
    cap_remaining = disease.annual_limit - run.get(acc.OPSP_PAID, code)
    if disease.cap_group is not None:
        cap_remaining = min(cap_remaining, _cap_left(run, scheme, person, disease.cap_group))
    step = _pay_pooled(
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
        f"{group.label}: 范围内 {group.inscp!s}, 病种起付线尚余 {deductible!s}, "
        f"本次起付 {step.deductible_applied!s}, "
        f"比例 {_pct(step.ratio)}, 病种年度限额余额 {fen(cap_remaining)!s}, 统筹支付 {step.pay!s}"
        + (" (已达病种年度限额)" if step.capped else ""),
    )
    return step


def _detail(
    fund_pay_type: str, name: str, base: Decimal, limit: Decimal, pay: Decimal, text: str
) -> SetlDetail:
    return filled(
        SetlDetail,
        {
            "fund_pay_type": fund_pay_type,
            "fund_pay_type_name": name,
            "inscp_scp_amt": base,
            "crt_payb_lmt_amt": fen(max(ZERO, limit)),
            "fund_payamt": pay,
            "setl_proc_info": text[:4000],
        },
    )


def _large_amount(
    run: _Run,
    steps: Sequence[tuple[_Group, PoolStep]],
    person: Person,
    policy: PolicyBundle,
    setldetail: list[SetlDetail],
) -> Decimal:
    rule = policy.large_amount
    if rule is None:
        return ZERO
    # Only cost left uncovered by the capped groups it names: a 门特 disease limit or the outpatient
    # pooling cap is not "above the pooled annual cap".
    base = total(
        step.over_cap_base
        for group, step in steps
        if group.benefit is not None and group.benefit.cap_group in rule.cap_groups
    )
    if person.insutype not in rule.insutypes or base <= 0:
        return ZERO
    # the payment uses the exact uncovered cost; the trace and setldetail show it to the fen
    label = "大额补助: 超统筹年度限额的范围内费用"
    return _ratio_fund(run, rule, acc.LARGE_AMOUNT_PAID, "large_amount", label, base, setldetail)


class _RatioFundRule(Protocol):
    """A fund paying a ratio of a base up to an annual cap (large-amount, civil-servant subsidies)."""

    @property
    def ratio(self) -> Decimal: ...

    @property
    def annual_cap(self) -> Decimal: ...

    @property
    def fund_pay_type(self) -> str: ...

    @property
    def fund_pay_type_name(self) -> str: ...


def _ratio_fund(
    run: _Run,
    rule: _RatioFundRule,
    counter: str,
    layer: str,
    base_label: str,
    base: Decimal,
    setldetail: list[SetlDetail],
) -> Decimal:
    """Pay ratio × base within what is left of the annual cap; note it and add its setldetail row."""
    cap_remaining = rule.annual_cap - run.get(counter)
    _, pay = ratio_layer(base, ZERO, rule.ratio, cap_remaining)
    run.add(counter, "", pay)
    shown = fen(base)
    text = (
        f"{base_label} {shown!s}, 比例 {_pct(rule.ratio)}, 年度限额余额 {fen(cap_remaining)!s}, 支付 {pay!s}"
    )
    run.note(layer, text)
    setldetail.append(_detail(rule.fund_pay_type, rule.fund_pay_type_name, shown, cap_remaining, pay, text))
    return pay


def _critical_illness(
    run: _Run,
    bill: Bill,
    person: Person,
    policy: PolicyBundle,
    context: SettlementContext,
    selfpay: Decimal,
    setldetail: list[SetlDetail],
) -> Decimal:
    rule = policy.critical_illness
    if rule is None or person.insutype not in rule.insutypes or bill.med_type not in rule.med_types:
        return ZERO
    threshold, segments, cap, tilt_note, bands = _critical_terms(rule, _tilt(policy, context))
    before = run.get(acc.CRITICAL_ILLNESS_BASE)
    cap_remaining = None if cap is None else cap - run.get(acc.CRITICAL_ILLNESS_PAID)
    pay = segmented_layer(before, selfpay, threshold, segments, cap_remaining)
    run.add(acc.CRITICAL_ILLNESS_BASE, "", selfpay)
    run.add(acc.CRITICAL_ILLNESS_PAID, "", pay)
    text = (
        f"大病保险{tilt_note}: 本年累计范围内自付 {fen(before)!s} → {fen(before + selfpay)!s}, "
        f"起付线 {threshold!s}, "
        f"分段 [{bands}], 支付 {pay!s}"
    )
    run.note("critical_illness", text)
    limit = pay if cap_remaining is None else cap_remaining
    setldetail.append(_detail(rule.fund_pay_type, rule.fund_pay_type_name, selfpay, limit, pay, text))
    return pay


class _CriticalTerms(NamedTuple):
    """The critical-illness terms a person gets under one rule, tilted or not, and their trace text."""

    threshold: Decimal
    segments: tuple[tuple[Decimal | None, Decimal], ...]
    cap: Decimal | None
    tilt_note: str
    bands: str


# (id(rule), id(tilt)) → (rule, tilt, terms). The terms depend only on the two policy objects, which
# are frozen all the way down, yet were rebuilt for every resident's bill (segment tuples, tilted
# ratios, the band text). Each entry holds the objects themselves, so their ids cannot be reused by
# other objects while it exists, and a hit must find the very same objects: a bundle copied with other
# tables (model_copy shares nothing here) never reads another bundle's terms.
_TERMS: dict[tuple[int, int], tuple[CriticalIllness, CriticalIllnessTilt | None, _CriticalTerms]] = {}
_TERMS_MAX = 64  # a kiosk loads one or two bundles a year; the bound only keeps tests from growing it


def _critical_terms(rule: CriticalIllness, tilt: CriticalIllnessTilt | None) -> _CriticalTerms:
    """The threshold, segments, cap and texts of `rule` for a person with `tilt` (or none)."""
    key = (id(rule), id(tilt))
    hit = _TERMS.get(key)
    if hit is not None and hit[0] is rule and hit[1] is tilt:
        return hit[2]
    threshold = rule.threshold
    segments = tuple((s.upto, s.ratio) for s in rule.segments)
    cap: Decimal | None = rule.annual_cap
    tilt_note = ""
    if tilt is not None:
        # 国办发〔2021〕42号: assistance recipients get a lower threshold, higher ratios, maybe no cap.
        threshold = fen(threshold * tilt.threshold_factor)
        segments = tuple((upto, clamp_ratio(ratio + tilt.ratio_bonus)) for upto, ratio in segments)
        cap = None if tilt.remove_cap else cap
        tilt_note = f" (救助对象倾斜: 起付线 {threshold!s}, 比例各加 {_pct(tilt.ratio_bonus)})"
    bands = ", ".join(f"{'以上' if u is None else f'≤{fen(u)!s}'} {_pct(r)}" for u, r in segments)
    terms = _CriticalTerms(threshold, segments, cap, tilt_note, bands)
    if len(_TERMS) >= _TERMS_MAX:
        _TERMS.clear()
    _TERMS[key] = (rule, tilt, terms)
    return terms


def _tilt(policy: PolicyBundle, context: SettlementContext) -> CriticalIllnessTilt | None:
    category = _category(policy, context)
    if category is None or not category.critical_illness_tilt or policy.assistance is None:
        return None
    return policy.assistance.critical_illness_tilt


def _category(policy: PolicyBundle, context: SettlementContext) -> AssistanceCategory | None:
    key = context.benefits.assistance_category
    if key is None:
        return None
    if policy.assistance is None or key not in policy.assistance.categories:
        raise SettlementError(f"policy {policy.bundle_id} has no medical-assistance category {key!r}")
    return policy.assistance.categories[key]


def _civil_servant(
    run: _Run,
    bill: Bill,
    person: Person,
    policy: PolicyBundle,
    context: SettlementContext,
    selfpay: Decimal,
    setldetail: list[SetlDetail],
) -> Decimal:
    rule = policy.civil_servant
    if (
        rule is None
        or not context.benefits.cvlserv_flag
        or person.insutype not in rule.insutypes
        or bill.med_type not in rule.med_types
    ):
        return ZERO
    label = "公务员医疗补助: 范围内自付"
    return _ratio_fund(run, rule, acc.CIVIL_SERVANT_PAID, "civil_servant", label, selfpay, setldetail)


def _assistance(
    run: _Run,
    bill: Bill,
    policy: PolicyBundle,
    context: SettlementContext,
    selfpay: Decimal,
    setldetail: list[SetlDetail],
) -> Decimal:
    category = _category(policy, context)
    rule = policy.assistance
    if category is None or rule is None or bill.med_type not in rule.med_types:
        return ZERO
    applied, pay, cap_remaining = _yearly_fund(
        run,
        selfpay,
        category.deductible,
        category.ratio,
        category.annual_cap,
        acc.ASSISTANCE_DEDUCTIBLE_USED,
        acc.ASSISTANCE_PAID,
    )
    text = (
        f"医疗救助({category.name}): 剩余范围内自付 {selfpay!s}, 救助起付 {applied!s}, "
        f"比例 {_pct(category.ratio)}, "
        f"年度限额余额 {'不设' if cap_remaining is None else fen(cap_remaining)!s}, 支付 {pay!s}"
    )
    run.note("assistance", text)
    limit = pay if cap_remaining is None else cap_remaining
    setldetail.append(_detail(rule.fund_pay_type, rule.fund_pay_type_name, selfpay, limit, pay, text))
    return pay


def _yearly_fund(
    run: _Run,
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


def _enterprise_supplementary(
    run: _Run,
    bill: Bill,
    person: Person,
    policy: PolicyBundle,
    context: SettlementContext,
    selfpay: Decimal,
    setldetail: list[SetlDetail],
) -> Decimal:
    rule = policy.enterprise_supplementary
    if (
        rule is None
        or not context.benefits.enterprise_supplementary
        or person.insutype not in rule.insutypes
        or bill.med_type not in rule.med_types
    ):
        return ZERO
    applied, pay, cap_remaining = _yearly_fund(
        run,
        selfpay,
        rule.deductible,
        rule.ratio,
        rule.annual_cap,
        acc.ENTERPRISE_DEDUCTIBLE_USED,
        acc.ENTERPRISE_PAID,
    )
    text = (
        f"企业补充医疗保险: 剩余范围内自付 {selfpay!s}, 起付 {applied!s}, 比例 {_pct(rule.ratio)}, "
        f"年度限额余额 {'不设' if cap_remaining is None else fen(cap_remaining)!s}, 支付 {pay!s}"
    )
    run.note("enterprise_supplementary", text)
    limit = pay if cap_remaining is None else cap_remaining
    setldetail.append(_detail(rule.fund_pay_type, rule.fund_pay_type_name, selfpay, limit, pay, text))
    return pay


def _mutual_aid(
    bill: Bill,
    policy: PolicyBundle,
    context: SettlementContext,
    psn_part_amt: Decimal,
    outside_catalogue: Decimal,
    own_paid: Decimal,
) -> Decimal:
    """What a family member's bound account pays of the personal share after the own account."""
    rule = policy.account_mutual_aid
    balance = context.benefits.mulaid_balc
    if rule is None or balance <= 0 or bill.med_type not in rule.med_types:
        return ZERO
    payable = psn_part_amt if rule.pays_fully_selfpaid else max(ZERO, psn_part_amt - outside_catalogue)
    return mutual_aid_layer(payable, own_paid, balance, bill.acct_used_flag)


def presettle(
    bill: Bill,
    person: Person,
    accumulators: Accumulators,
    policy: PolicyBundle,
    catalog: Catalog,
    context: SettlementContext,
) -> SettlementResult:
    """Price a bill for a person: per-line results, setlinfo, setldetail, trace and new accumulators."""
    # Layer 1: each line into fully self-paid / over-limit / self-pay-first / in-scope (2204).
    # One pass checks, looks up and prices every line. It is pure, so running it before the checks
    # below changes nothing; a bill it doubts goes the long way, which raises what it always raised.
    priced = price_bill(bill.lines, catalog.plans)
    if priced is None:
        check_bill(bill)
    _check_period(policy, accumulators, context)
    scheme = _scheme(policy, person)
    run = _Run(accumulators)

    if priced is None:
        items = catalog.items_for(bill.lines)
        limited = None
    else:
        items, limited = priced.items, priced.limited
    findings = fund_safety(bill, items, person, context, policy.fund_safety, limited=limited)
    blocking = [f for f in findings if f.action == "block"]
    if blocking:
        raise FundSafetyError(blocking)
    for finding in findings:
        run.note("fund_safety", f"基金安全提示({finding.check}): {finding.message}")
    if priced is None:
        lines, sums = price_lines(bill.lines, items)  # line_layer over every line, and the sums
    else:
        lines, sums = priced.lines, priced.sums
    medfee, fulamt, overlmt = sums.medfee, sums.fulamt, sums.overlmt
    preselfpay, inscp = sums.preselfpay, sums.inscp
    run.note(
        "lines",
        f"费用合计 {medfee!s}: 全自费 {fulamt!s}, 超限价自付 {overlmt!s}, 先行自付 {preselfpay!s}, "
        f"政策范围内 {inscp!s}",
    )

    reduction = ZERO
    if context.cross_region is not None:
        if policy.cross_region is None:
            raise SettlementError(f"policy {policy.bundle_id} has no cross-region rules")
        reduction = policy.cross_region.ratio_reduction.get(context.cross_region, ZERO)
        run.note(
            "cross_region", f"异地就医({context.cross_region}): 参保地政策, 支付比例降低 {_pct(reduction)}"
        )

    # Layers 2–3: deductible and pooled fund, per benefit group (门特 diseases have their own).
    steps: list[tuple[_Group, PoolStep]] = []
    for group in _groups(bill, lines, inscp, scheme, policy, context):
        if group.disease is not None:
            steps.append((group, _pool_disease(run, group, group.disease, scheme, person, reduction)))
        elif group.benefit is not None:
            steps.append(
                (group, _pool_benefit(run, group, group.benefit, scheme, person, context, reduction))
            )
        else:
            run.note("pool", f"{group.label}: 范围内 {group.inscp!s} 由个人支付")
    hifp_pay = total([step.pay for _, step in steps])
    act_pay_dedc = total([step.deductible_applied for _, step in steps])
    # the group with the largest in-scope cost (the first of equals); most bills have one group
    main = steps[0] if len(steps) == 1 else max(steps, key=lambda s: s[0].inscp, default=None)
    pool_ratio = main[1].ratio if main else ZERO
    setldetail: list[SetlDetail] = []
    if steps:
        pool_text = "；".join([t.text for t in run.trace if t.layer in ("pool", "opsp")])
        setldetail.append(
            filled(
                SetlDetail,
                {
                    "fund_pay_type": scheme.fund_pay_type,
                    "fund_pay_type_name": scheme.fund_pay_type_name,
                    "inscp_scp_amt": inscp,
                    "crt_payb_lmt_amt": fen(max(ZERO, main[1].cap_remaining)) if main else ZERO,
                    "fund_payamt": hifp_pay,
                    "setl_proc_info": pool_text[:4000],
                },
            )
        )

    # Layers 4–8: funds that pay from the in-scope self-pay the pooled fund left; medical assistance,
    # the last resort, comes after every insurance.
    hifob_pay = _large_amount(run, steps, person, policy, setldetail)
    selfpay = inscp - hifp_pay - hifob_pay
    hifmi_pay = _critical_illness(run, bill, person, policy, context, selfpay, setldetail)
    selfpay -= hifmi_pay
    cvlserv_pay = _civil_servant(run, bill, person, policy, context, selfpay, setldetail)
    selfpay -= cvlserv_pay
    hifes_pay = _enterprise_supplementary(run, bill, person, policy, context, selfpay, setldetail)
    selfpay -= hifes_pay
    maf_pay = _assistance(run, bill, policy, context, selfpay, setldetail)
    # domain.md names no rule for "other" funds (640100, the government backstop, may land here):
    # nothing to compute until a bureau document says what it pays.
    oth_pay = ZERO
    # setldetail lists the funds that paid, and the pooled fund whenever it priced the bill (its
    # setl_proc_info explains a deductible that swallowed everything); the trace keeps the rest.
    setldetail = [d for d in setldetail if d.fund_payamt > _NOUGHT or d.fund_pay_type == scheme.fund_pay_type]
    fund_pay_sumamt = hifp_pay + cvlserv_pay + hifes_pay + hifmi_pay + hifob_pay + maf_pay + oth_pay
    hosp_part_amt = ZERO  # DRG differences are between fund and hospital, never the patient's (domain 2.5)
    psn_part_amt = medfee - fund_pay_sumamt - hosp_part_amt

    # Last layer: the employee personal account, then cash.
    account = scheme.personal_account
    payable = psn_part_amt
    if account is not None and not account.pays_fully_selfpaid:
        payable = max(ZERO, psn_part_amt - fulamt - overlmt)
    own_pay = account_layer(payable, person.acct_balc, bill.acct_used_flag and account is not None)
    # A family member's account pays next (个人账户共济). acct_pay carries both accounts so that
    # psn_part_amt = acct_pay + psn_cash_pay holds; acct_mulaid_pay says how much was the family's.
    acct_mulaid_pay = _mutual_aid(bill, policy, context, psn_part_amt, fulamt + overlmt, own_pay)
    acct_pay = own_pay + acct_mulaid_pay if acct_mulaid_pay else own_pay
    psn_cash_pay = psn_part_amt - acct_pay
    balc = person.acct_balc - own_pay
    family = ""
    if acct_mulaid_pay:
        left = context.benefits.mulaid_balc - acct_mulaid_pay
        family = (
            f"家庭共济账户支付 {acct_mulaid_pay!s} "
            f"(共济余额 {fen(context.benefits.mulaid_balc)!s} → {fen(left)!s}), "
        )
    if account is not None:
        run.note(
            "account",
            f"个人负担 {psn_part_amt!s}: 个人账户支付 {own_pay!s} "
            f"(余额 {fen(person.acct_balc)!s} → {fen(balc)!s}), {family}"
            f"现金 {psn_cash_pay!s}" + ("" if bill.acct_used_flag else " (患者选择不使用个人账户)"),
        )
    else:
        run.note("account", f"个人负担 {psn_part_amt!s}: {family}现金 {psn_cash_pay!s}")

    after = run.after()
    # every field given, so filled() builds what SetlInfo(...) would, without 28 object.__setattr__ calls
    setlinfo = filled(
        SetlInfo,
        {
            "psn_no": person.psn_no,
            "psn_name": person.psn_name,
            "certno": person.certno,
            "insutype": person.insutype,
            "psn_type": person.psn_type,
            "med_type": bill.med_type,
            "chrg_bchno": bill.chrg_bchno,
            "medfee_sumamt": medfee,
            "fulamt_ownpay_amt": fulamt,
            "overlmt_selfpay": overlmt,
            "preselfpay_amt": preselfpay,
            "inscp_scp_amt": inscp,
            "act_pay_dedc": act_pay_dedc,
            "hifp_pay": hifp_pay,
            "pool_prop_selfpay": pool_ratio,
            "cvlserv_pay": cvlserv_pay,
            "hifes_pay": hifes_pay,
            "hifmi_pay": hifmi_pay,
            "hifob_pay": hifob_pay,
            "maf_pay": maf_pay,
            "oth_pay": oth_pay,
            "fund_pay_sumamt": fund_pay_sumamt,
            "psn_part_amt": psn_part_amt,
            "acct_pay": acct_pay,
            "psn_cash_pay": psn_cash_pay,
            "hosp_part_amt": hosp_part_amt,
            "balc": balc,
            "acct_mulaid_pay": acct_mulaid_pay,
        },
    )
    return filled(
        SettlementResult,
        {
            "bundle_id": policy.bundle_id,
            "bundle_version": policy.version,
            "catalog_id": catalog.catalog_id,
            "setlinfo": setlinfo,
            "setldetail": tuple(setldetail),
            "lines": lines,
            "trace": tuple(run.trace),
            "findings": findings,
            "accumulators_before": accumulators,
            "accumulators_after": after,
            "delta": run.delta(after),
        },
    )


def reverse(current: Accumulators, result: SettlementResult) -> Accumulators:
    """Accumulators after reversing a settlement (2208 / 2103 / 2305): subtract exactly its delta."""
    return current.revert(result.delta)
