"""One small pure function per settlement layer; amounts in, amounts out, no policy lookups.

The engine maps the policy bundle and the accumulators onto these arguments, so each layer can be
checked by hand with plain numbers. Every amount returned is already rounded to the fen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, getcontext
from typing import NamedTuple

from terminal.domain import FeeLine
from terminal.settlement.catalog import CatalogItem, ItemPlan
from terminal.settlement.money import FEN, ONE, ZERO, clamp_ratio, fen
from terminal.settlement.result import LineResult, filled


def line_layer(line: FeeLine, item: CatalogItem) -> LineResult:
    """Split one fee line into fully self-paid, over-limit, self-pay-first and in-scope parts (2204)."""
    fee = line.det_item_fee_sumamt
    fulamt = overlmt = preselfpay = ZERO
    if item.chrgitm_lv == "03" or item.selfpay_prop >= ONE:
        # 丙类 / out of the list: the whole line is the patient's (自付比例 ≥ 1 → 全自费).
        fulamt = fee
    else:
        if item.pric_uplmt_amt is not None:
            # The ceiling is a unit price; what the bill charges above ceiling × quantity is 超限价自付.
            allowed = fen(item.pric_uplmt_amt * line.cnt)
            overlmt = max(ZERO, fee - allowed)
        # 乙类: the self-pay-first ratio applies to the part inside the price ceiling only.
        preselfpay = fen((fee - overlmt) * item.selfpay_prop)
    inscp = fee - fulamt - overlmt - preselfpay
    return LineResult(
        feedetl_sn=line.feedetl_sn,
        med_list_codg=line.med_list_codg,
        name=line.name or item.name,
        cnt=line.cnt,
        pric=line.pric,
        det_item_fee_sumamt=fee,
        chrgitm_lv=item.chrgitm_lv,
        selfpay_prop=item.selfpay_prop,
        pric_uplmt_amt=item.pric_uplmt_amt,
        fulamt_ownpay_amt=fulamt,
        overlmt_amt=overlmt,
        preselfpay_amt=preselfpay,
        inscp_scp_amt=inscp,
        lmt_used_flag=item.lmt_used_flag,
        dise_codg=line.dise_codg,
    )


@dataclass(frozen=True)
class LineTotals:
    """The bill's sums of the 2204 parts, added in line order (as total() would add them)."""

    medfee: Decimal
    fulamt: Decimal
    overlmt: Decimal
    preselfpay: Decimal
    inscp: Decimal


def price_lines(
    lines: Sequence[FeeLine], items: Sequence[CatalogItem]
) -> tuple[tuple[LineResult, ...], LineTotals]:
    """line_layer over a whole bill, and the bill's sums: the same results, built for speed.

    The lines must have passed check_bill (amounts ≥ 0, in whole fen). This is the hot loop of a
    settlement (50 lines a bill, issue 3 asks ≥ 5,000 bills/s). It does the Decimal operations
    line_layer does, in the same order, so every amount has the same value and the same exponent,
    leaving out only those that cannot change a result: the ratio product where the item has no
    self-pay-first ratio (0 × anything rounds to 0.00, which is ZERO) and subtractions of ZERO from
    a value already in fen. It binds names locally and builds each LineResult tuple directly.
    tests/unit/settlement/test_fast_paths.py holds it to line_layer.
    """
    quantize = Decimal.quantize
    half_up = ROUND_HALF_UP
    zero = ZERO
    one = ONE
    cent = FEN
    new = tuple.__new__  # LineResult is a named tuple: one call builds it, fields in declaration order
    line_cls = LineResult
    out: list[LineResult] = []
    append = out.append
    medfee = fulamt_sum = overlmt_sum = preselfpay_sum = inscp_sum = zero
    for line, item in zip(lines, items, strict=True):
        fee = line.det_item_fee_sumamt
        prop = item.selfpay_prop
        ceiling = item.pric_uplmt_amt
        level = item.chrgitm_lv
        # inscp is line_layer's fee − fulamt − overlmt − preselfpay with the subtractions of the ZERO
        # object left out: once one operand has exponent −2 (ZERO, any fen() result) the running
        # value's exponent is ≤ −2, and subtracting 0.00 from it changes neither value nor exponent.
        # The sums skip adding ZERO for the same reason: each starts at ZERO (0.00).
        if level == "03" or prop >= one:
            fulamt = fee
            overlmt = preselfpay = zero
            fulamt_sum += fee
            inscp = fee - fee - zero  # fee − fee alone keeps fee's exponent, which may be above −2
        else:
            fulamt = overlmt = preselfpay = zero
            inscp = fee - zero
            if ceiling is not None:
                allowed = quantize(ceiling * line.cnt, cent, half_up)
                if fee > allowed:  # max(ZERO, fee − allowed): ZERO unless the fee is strictly larger
                    overlmt = fee - allowed
                    overlmt_sum += overlmt
                    inscp -= overlmt
            if prop:  # else (fee − overlmt) × 0 rounds to 0.00, which is ZERO
                preselfpay = quantize((fee - overlmt) * prop, cent, half_up)
                preselfpay_sum += preselfpay
                inscp -= preselfpay
        append(
            new(
                line_cls,
                (
                    line.feedetl_sn,
                    line.med_list_codg,
                    line.name or item.name,
                    line.cnt,
                    line.pric,
                    fee,
                    level,
                    prop,
                    ceiling,
                    fulamt,
                    overlmt,
                    preselfpay,
                    inscp,
                    item.lmt_used_flag,
                    line.dise_codg,
                ),
            )
        )
        medfee += fee
        inscp_sum += inscp
    return tuple(out), LineTotals(medfee, fulamt_sum, overlmt_sum, preselfpay_sum, inscp_sum)


class PricedBill(NamedTuple):
    """A bill's lines after check_bill, Catalog.items_for and price_lines, from one pass."""

    items: tuple[CatalogItem, ...]
    lines: tuple[LineResult, ...]
    sums: LineTotals
    limited: tuple[int, ...]  # positions of the lines whose item carries a gender or age limit


_NOUGHT = Decimal(0)


def price_bill(lines: Sequence[FeeLine], plans: Mapping[str, ItemPlan]) -> PricedBill | None:
    """check_bill, items_for and price_lines in one pass over the lines; None if any might refuse.

    A bill that gets None must go the long way (check_bill, Catalog.items_for, price_lines), which
    raises what it raised before, in the same order; so does a bill this pass cannot price exactly
    (see below). For every other bill the result is what those three give, every Decimal with the
    same value, sign and exponent: each line meets check_bill's conditions before it is priced. One
    loop instead of three reads each line once, and the item's plan saves two Decimal comparisons and
    five model attributes a line. tests/unit/settlement/test_fast_paths.py holds it to the long way.

    It leaves out operations price_lines does whose result it already has, which is exact only while
    no operation rounds and x − x is +0: so it gives up on a thread context rounding ROUND_FLOOR (the
    one mode where x − x is −0), and on a bill whose total needs as many digits as the context keeps
    (every amount summed or subtracted here is a multiple of the total's last digit and no larger
    than the total, so when the total is exact and short of the precision, so is every step).
    """
    if not lines:
        return None
    context = getcontext()
    if context.rounding == ROUND_FLOOR:
        return None
    quantize = Decimal.quantize
    half_up = ROUND_HALF_UP
    zero = ZERO
    nought = _NOUGHT  # Decimal against Decimal: comparing with the int 0 converts it every time
    cent = FEN
    neg_cent = -FEN
    new = tuple.__new__
    line_cls = LineResult
    items: list[CatalogItem] = []
    add_item = items.append
    out: list[LineResult] = []
    append = out.append
    limited: list[int] = []
    medfee = fulamt_sum = overlmt_sum = preselfpay_sum = zero
    try:
        for line in lines:
            item, selfpaid, prop, has_prop, ceiling, level, name, flag, lmt = plans[line.med_list_codg]
            fee = line.det_item_fee_sumamt
            cnt = line.cnt
            pric = line.pric
            # check_bill's conditions: a line that fails any sends the bill the long way. Two are
            # written more cheaply. "fee is in whole fen" as fee % 0.01 == 0 (a remainder instead of
            # a quantize, whose rounding argument costs as much again, and a comparison): both raise
            # for the same fees (those ≥ 10^26) and agree on all others. And |cnt × pric − fee| ≤
            # 0.01 as two comparisons, without building the absolute value.
            if cnt <= nought or pric < nought or fee < nought:
                return None
            # a zero with fee's sign and the lower of fee's exponent and −2 when fee is in whole fen
            whole = fee % cent
            if whole or not neg_cent <= cnt * pric - fee <= cent:
                return None
            # price_lines' arithmetic (see there for the subtractions of ZERO it already leaves out)
            if selfpaid:
                fulamt = fee
                overlmt = preselfpay = zero
                fulamt_sum += fee
                # fee − fee − ZERO is +0 with the lower of fee's exponent and −2: `whole`, unless
                # fee is −0 (then `whole` is −0)
                inscp = whole if fee else fee - fee - zero
            else:
                fulamt = overlmt = preselfpay = zero
                if ceiling is not None and fee > (allowed := quantize(ceiling * cnt, cent, half_up)):
                    overlmt = fee - allowed
                    overlmt_sum += overlmt
                    # fee − ZERO − overlmt is allowed, with fee's exponent where that is below −2
                    inscp = allowed + whole
                    inside = allowed  # fee − overlmt, the same value: the product below is rounded
                else:
                    inscp = fee - zero
                    inside = fee  # fee − ZERO: the same value and sign
                if has_prop:
                    preselfpay = quantize(inside * prop, cent, half_up)
                    preselfpay_sum += preselfpay
                    inscp -= preselfpay
            append(
                new(
                    line_cls,
                    (
                        line.feedetl_sn,
                        line.med_list_codg,
                        line.name or name,
                        cnt,
                        pric,
                        fee,
                        level,
                        prop,
                        ceiling,
                        fulamt,
                        overlmt,
                        preselfpay,
                        inscp,
                        flag,
                        line.dise_codg,
                    ),
                )
            )
            if lmt:
                limited.append(len(items))
            add_item(item)
            medfee += fee
    except (KeyError, ArithmeticError):
        return None  # an unknown code, or a value check_bill's fast pass would also have doubted
    if len({line.feedetl_sn for line in lines}) != len(out):
        return None  # a repeated feedetl_sn
    if len(medfee.as_tuple().digits) >= context.prec:
        return None  # the total may have been rounded: price_lines does every operation itself
    # Σ inscp, which price_lines adds line by line: each line's inscp is its fee less its other
    # three parts, exactly, and both sides carry the total's exponent.
    inscp_sum = medfee - fulamt_sum - overlmt_sum - preselfpay_sum
    sums = filled(
        LineTotals,
        {
            "medfee": medfee,
            "fulamt": fulamt_sum,
            "overlmt": overlmt_sum,
            "preselfpay": preselfpay_sum,
            "inscp": inscp_sum,
        },
    )
    return new(PricedBill, (tuple(items), tuple(out), sums, tuple(limited)))


def year_deductible_remaining(deductible: Decimal, used: Decimal) -> Decimal:
    """What is left of a yearly deductible after what the person already paid this year."""
    return max(ZERO, deductible - used)


def admission_deductible(deductible: Decimal, factors: Sequence[Decimal], prior_admissions: int) -> Decimal:
    """The deductible of this admission: the n-th admission at a level uses the n-th factor (last repeats)."""
    factor = factors[min(prior_admissions, len(factors) - 1)]
    return fen(deductible * factor)


def effective_ratio(base: Decimal, retired_bonus: Decimal, retired: bool, reduction: Decimal) -> Decimal:
    """The fund ratio after the retiree bonus and the cross-region reduction, kept within [0, 1]."""
    return clamp_ratio(base + (retired_bonus if retired else ZERO) - reduction)


@dataclass(frozen=True)
class PoolStep:
    """What the pooled fund did with one group of in-scope cost."""

    inscp: Decimal
    deductible_applied: Decimal
    eligible: Decimal  # in-scope cost above the deductible
    ratio: Decimal
    pay: Decimal
    cap_remaining: Decimal  # before this payment
    capped: bool
    over_cap_base: Decimal  # eligible cost the fund did not cover because of its cap


def pool_layer(
    inscp: Decimal, deductible_remaining: Decimal, ratio: Decimal, cap_remaining: Decimal
) -> PoolStep:
    """Deductible first, then ratio × the rest, limited by what is left of the annual cap."""
    applied = min(inscp, deductible_remaining)
    eligible = inscp - applied
    uncapped = fen(eligible * ratio)
    pay = min(uncapped, max(ZERO, cap_remaining))
    capped = pay < uncapped
    over_cap = ZERO
    if capped and ratio > 0:
        # The cost the cap left uncovered, which the employee large-amount subsidy picks up. Kept
        # unrounded (only payments are rounded): rounding it here made one more fen of bill add two fen
        # of subsidy at the cap edge, so a larger bill could lower the personal share.
        over_cap = max(ZERO, eligible - pay / ratio)
    # every field given, so filled() builds what PoolStep(...) would, without eight object.__setattr__
    return filled(
        PoolStep,
        {
            "inscp": inscp,
            "deductible_applied": applied,
            "eligible": eligible,
            "ratio": ratio,
            "pay": pay,
            "cap_remaining": cap_remaining,
            "capped": capped,
            "over_cap_base": over_cap,
        },
    )


def segments_paid(
    cumulative: Decimal, threshold: Decimal, segments: Sequence[tuple[Decimal | None, Decimal]]
) -> Decimal:
    """Total segmented cover for a cumulative base: Σ over segments of (part inside) × ratio."""
    paid = ZERO
    lower = threshold
    for upto, ratio in segments:
        upper = cumulative if upto is None else min(cumulative, upto)
        if upper > lower:
            paid += (upper - lower) * ratio
        if upto is None or cumulative <= upto:
            break
        lower = upto
    return paid


def segmented_layer(
    base_before: Decimal,
    base_now: Decimal,
    threshold: Decimal,
    segments: Sequence[tuple[Decimal | None, Decimal]],
    cap_remaining: Decimal | None,
) -> Decimal:
    """Critical-illness pay for this bill: cumulative cover after it minus cumulative cover before it.

    Rounding the two cumulative figures (not each bill) keeps a year of bills from drifting by fen.
    """
    pay = fen(segments_paid(base_before + base_now, threshold, segments)) - fen(
        segments_paid(base_before, threshold, segments)
    )
    if cap_remaining is not None:
        pay = min(pay, max(ZERO, cap_remaining))
    return max(ZERO, pay)


def ratio_layer(
    base: Decimal, deductible_remaining: Decimal, ratio: Decimal, cap_remaining: Decimal | None
) -> tuple[Decimal, Decimal]:
    """A fund paying ratio × (base − deductible) up to a cap; returns (deductible applied, pay)."""
    applied = min(base, max(ZERO, deductible_remaining))
    pay = fen((base - applied) * ratio)
    if cap_remaining is not None:
        pay = min(pay, max(ZERO, cap_remaining))
    return applied, pay


def account_layer(payable: Decimal, balance: Decimal, used: bool) -> Decimal:
    """Personal account pays what it may, up to its balance; nothing when the patient declined."""
    if not used:
        return ZERO
    return max(ZERO, min(payable, balance))


def mutual_aid_layer(payable: Decimal, own_paid: Decimal, family_balance: Decimal, used: bool) -> Decimal:
    """A family member's account (个人账户共济) pays what the own account left, up to its balance."""
    return account_layer(max(ZERO, payable - own_paid), family_balance, used)
