"""presettle(): compose the layers in order over one bill. Pure: no I/O, no clock, no network."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from terminal.domain import Bill, Person
from terminal.errors import ReversalOrderError, SettlementError
from terminal.settlement.accounts import pay_accounts
from terminal.settlement.accumulators import Accumulators
from terminal.settlement.amounts import check_amounts, check_injury, note_outside, outside_scope
from terminal.settlement.catalog import Catalog, CatalogItem
from terminal.settlement.checks import check_bill, check_period, scheme_for
from terminal.settlement.context import SettlementContext
from terminal.settlement.funds import (
    civil_servant,
    critical_illness,
    enterprise_supplementary,
    large_amount,
    large_amount_base,
    medical_assistance,
)
from terminal.settlement.instances import filled
from terminal.settlement.methods import check_stay, drg_reconcile, pay_quota
from terminal.settlement.money import ZERO
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.pooled import pay_pooled, pooled_detail
from terminal.settlement.pricing import price_bill, price_checked
from terminal.settlement.result import Finding, SetlInfo, SettlementResult
from terminal.settlement.run import Run, pct
from terminal.settlement.safety import FundSafetyError, fund_safety

_NOUGHT = Decimal(0)


def presettle(
    bill: Bill,
    person: Person,
    accumulators: Accumulators,
    policy: PolicyBundle,
    catalog: Catalog,
    context: SettlementContext,
) -> SettlementResult:
    """Price a bill for a person: per-line results, setlinfo, setldetail, trace and new accumulators."""
    # Layer 1: each line into fully self-paid / over-limit / self-pay-first / in-scope (2204). One pass
    # checks, looks up and prices every line. It is pure, so running it before the checks below
    # changes nothing; a bill it refuses goes the long way, which raises what it always raised.
    priced = price_bill(bill.lines, catalog.plans)
    if priced is None:
        check_bill(bill)
    check_period(policy, accumulators, context)
    scheme = scheme_for(policy, person)
    run = Run(accumulators, bill, person, policy, context)
    if context.policy_rule is not None:
        run.note("policy", context.policy_rule)
    check_stay(bill)
    check_injury(run, bill, policy, context)
    if priced is None:
        items = catalog.items_or_outside(bill.lines)
        findings = _fund_safety(run, bill, items, person, context, policy, None)
        priced = price_checked(bill.lines, catalog.plans)
    else:
        findings = _fund_safety(run, bill, priced.items, person, context, policy, priced.limited)
    # Issue 17: a line or bill beyond the bundle's caps, or a zero bill, is refused (typed errors).
    check_amounts(bill, priced.sums.medfee, policy.amount_limits, refunds=bool(priced.refunds))
    note_outside(run, priced)
    priced = outside_scope(run, priced, person, context.setl_date)
    lines, sums = priced.lines, priced.sums
    medfee, fulamt, overlmt = sums.medfee, sums.fulamt, sums.overlmt
    preselfpay, inscp = sums.preselfpay, sums.inscp
    run.note(
        "lines",
        f"费用合计 {medfee}: 全自费 {fulamt}, 超限价自付 {overlmt}, 先行自付 {preselfpay}, "
        f"政策范围内 {inscp}",
    )

    reduction = ZERO
    if context.cross_region is not None:
        if policy.cross_region is None:
            raise SettlementError(f"policy {policy.bundle_id} has no cross-region rules")
        reduction = policy.cross_region.ratio_reduction.get(context.cross_region, ZERO)
        run.note(
            "cross_region", f"异地就医({context.cross_region}): 参保地政策, 支付比例降低 {pct(reduction)}"
        )

    hosp_part_amt = ZERO  # DRG differences are between fund and hospital, never the patient's (domain 2.5)
    if bill.psn_setlway == "01":
        # Layers 2–3: deductible and pooled fund, per benefit group (门特 diseases have their own).
        pooled = pay_pooled(run, bill, lines, inscp, scheme, person, policy, context, reduction)
        hifp_pay = pooled.pay
        act_pay_dedc = pooled.deductible
        pool_ratio = pooled.main[1].ratio if pooled.main else ZERO
        pool_row = pooled_detail(run, pooled, scheme, inscp)
        if pool_row is not None:
            run.setldetail.append(pool_row)
        # Layers 4–8: funds that pay from the in-scope self-pay the pooled fund left; medical
        # assistance, the last resort, comes after every insurance.
        hifob_pay = large_amount(run, large_amount_base(pooled.steps, policy))
        selfpay = inscp - hifp_pay - hifob_pay
    else:
        # A quota (按床日, 单病种, 日间手术) replaces layers 2–4: the fund pays the standard less the
        # patient's share; the supplementary funds see that share as the in-scope self-pay.
        quota = pay_quota(run, bill, scheme, person, policy, medfee - fulamt)
        hifp_pay, act_pay_dedc, pool_ratio, hosp_part_amt = quota.pay, ZERO, quota.ratio, quota.hosp
        run.setldetail.append(quota.detail)
        hifob_pay = ZERO
        selfpay = quota.selfpay
    hifmi_pay = critical_illness(run, selfpay)
    selfpay -= hifmi_pay
    cvlserv_pay = civil_servant(run, selfpay)
    selfpay -= cvlserv_pay
    hifes_pay = enterprise_supplementary(run, selfpay)
    selfpay -= hifes_pay
    maf_pay = medical_assistance(run, selfpay)
    # domain.md names no rule for "other" funds (640100, the government backstop, may land here):
    # nothing to compute until a bureau document says what it pays.
    oth_pay = ZERO
    # setldetail lists the funds that paid, and the pooled fund whenever it priced the bill (its
    # setl_proc_info explains a deductible that swallowed everything); the trace keeps the rest.
    setldetail = [
        d for d in run.setldetail if d.fund_payamt > _NOUGHT or d.fund_pay_type == scheme.fund_pay_type
    ]
    fund_pay_sumamt = hifp_pay + cvlserv_pay + hifes_pay + hifmi_pay + hifob_pay + maf_pay + oth_pay
    psn_part_amt = medfee - fund_pay_sumamt - hosp_part_amt
    drg = None
    if bill.drg_code is not None:
        drg = drg_reconcile(run, bill, medfee, fund_pay_sumamt, hifp_pay, psn_part_amt)

    # Last layer: the employee personal account, a family member's account, then cash.
    paid = pay_accounts(run, bill, person, scheme, policy, context, psn_part_amt, fulamt, overlmt)

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
            "acct_pay": paid.acct_pay,
            "psn_cash_pay": paid.psn_cash_pay,
            "hosp_part_amt": hosp_part_amt,
            "balc": paid.balc,
            "acct_mulaid_pay": paid.acct_mulaid_pay,
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
            "drg": drg,
        },
    )


def _fund_safety(
    run: Run,
    bill: Bill,
    items: Sequence[CatalogItem],
    person: Person,
    context: SettlementContext,
    policy: PolicyBundle,
    limited: Sequence[int] | None,
) -> tuple[Finding, ...]:
    """Run the fund-safety checks: FundSafetyError for any that blocks, a trace note for the rest."""
    findings = fund_safety(
        bill, items, person, context, policy.fund_safety, limited=limited, visit_limits=policy.visit_limits
    )
    blocking = [f for f in findings if f.action == "block"]
    if blocking:
        raise FundSafetyError(blocking)
    for finding in findings:
        run.note("fund_safety", f"基金安全提示({finding.check}): {finding.message}")
    return findings


def reverse(
    current: Accumulators, result: SettlementResult, later: Sequence[SettlementResult] = ()
) -> Accumulators:
    """Accumulators after reversing a settlement (2208 / 2103 / 2305): subtract exactly its delta.

    Reversals go latest first (docs/settlement.md, "Reversal order"): `later` lists the person's
    settlements of the same year recorded after this one that still stand, and any of them, or
    accumulators that moved since this settlement (a later one the caller did not list), refuse the
    reversal with ReversalOrderError. The later ones were priced on this one's totals, so they must
    be reversed first and settled again afterwards.
    """
    standing = [
        r for r in later if r.setlinfo.psn_no == result.setlinfo.psn_no and r.delta.year == result.delta.year
    ]
    if standing:
        names = ", ".join(r.setlinfo.chrg_bchno for r in standing)
        raise ReversalOrderError(
            f"settlement of bill {result.setlinfo.chrg_bchno} has later settlements still standing "
            f"({names}); reverse those first, latest first"
        )
    if current.counters != result.accumulators_after.counters:
        raise ReversalOrderError(
            f"the accumulators moved since bill {result.setlinfo.chrg_bchno} was settled: a later "
            "settlement stands; reverse it first"
        )
    return current.revert(result.delta)
