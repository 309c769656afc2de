"""Line pricing (2204): every fee line into fully self-paid, over-limit, self-pay-first and in-scope parts.

One implementation, used by every caller. It reads each line once: checks it as check_bill would,
finds its item's plan, prices it and adds it to the bill's sums. A bill it doubts (a line check_bill
would refuse, a value Decimal refuses) is left to check_bill, which says why in the order it always
has. A code the catalogue does not list is priced fully self-paid (catalog.outside_plan); a refund
line (negative quantity) is the exact negative of a charge of its size, and must net (refunds.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, getcontext
from typing import NamedTuple

from terminal.domain import FeeLine
from terminal.errors import RefundLineError, SettlementError
from terminal.settlement.catalog import CatalogItem, ItemPlan, outside_plan
from terminal.settlement.instances import filled
from terminal.settlement.money import FEN, ZERO
from terminal.settlement.refunds import check_netted, check_refunds
from terminal.settlement.result import LineResult


@dataclass(frozen=True)
class LineTotals:
    """The bill's sums of the 2204 parts, added in line order (as total() would add them)."""

    medfee: Decimal
    fulamt: Decimal
    overlmt: Decimal
    preselfpay: Decimal
    inscp: Decimal


class PricedBill(NamedTuple):
    """A bill's lines with their catalogue items, their 2204 parts and the bill's sums."""

    items: tuple[CatalogItem, ...]
    lines: tuple[LineResult, ...]
    sums: LineTotals
    limited: tuple[int, ...]  # positions of the lines whose item carries a gender or age limit
    outside: tuple[int, ...] = ()  # positions of the lines whose code the catalogue does not list
    refunds: tuple[int, ...] = ()  # positions of the refund lines (negative quantity)


class _Doubt(Exception):
    """A line check_bill would refuse: the bill is left to check_bill to say why."""


_NOUGHT = Decimal(0)
_HALF_FEN = Decimal("0.005")


def price_bill(lines: Sequence[FeeLine], plans: Mapping[str, ItemPlan]) -> PricedBill | None:
    """The priced bill, or None when check_bill or the catalogue must say why it is refused.

    None for a bill with no lines, a line check_bill refuses, a repeated feedetl_sn, or a value
    Decimal refuses to compute with (see price_checked), and for a refund line check_refunds refuses.
    RefundLineError when a refunded item's priced part nets below zero (refunds.check_netted).
    """
    if not lines:
        return None
    try:
        return _price(lines, plans)
    except (_Doubt, KeyError, ArithmeticError):
        return None


def price_checked(lines: Sequence[FeeLine], plans: Mapping[str, ItemPlan]) -> PricedBill:
    """Price lines check_bill and the catalogue accepted; raises the ArithmeticError Decimal raises.

    The way in for a bill price_bill left to them which they accept: pricing is what is left to
    refuse it (a price ceiling × quantity too long for the Decimal context, say).
    """
    try:
        return _price(lines, plans)
    except (_Doubt, KeyError) as exc:
        # check_bill and Catalog.items_for accepted these lines; the checks here are theirs
        raise SettlementError(f"line pricing refuses a bill check_bill accepted: {exc!r}") from exc


def _price(lines: Sequence[FeeLine], plans: Mapping[str, ItemPlan]) -> PricedBill:
    """The one pass, short or literal (see _pass); _Doubt, KeyError or ArithmeticError if it cannot price."""
    context = getcontext()
    # The short pass is exact only while no operation rounds and x − x is +0. So a context rounding
    # ROUND_FLOOR (the one mode where x − x is −0) prices literally, and so does a bill whose total
    # needs as many digits as the context keeps: every amount the short pass sums or subtracts is a
    # multiple of the total's last digit and no larger than the total, so when the total is exact and
    # short of the precision, so is every step.
    # A bill with refund lines sums amounts larger than its total, so it prices literally too.
    if context.rounding == ROUND_FLOOR:
        return _pass(lines, plans, context, literal=True)
    priced = _pass(lines, plans, context, literal=False)
    if priced.refunds or len(priced.sums.medfee.as_tuple().digits) >= context.prec:
        return _pass(lines, plans, context, literal=True)
    return priced


def _refund(line: FeeLine, plan: ItemPlan, context: Context, *, literal: bool) -> LineResult:
    """A refund line: the exact negative of the charge of its size (every 2204 part negated)."""
    charge = FeeLine(
        line.feedetl_sn, line.med_list_codg, -line.cnt, line.pric, -line.det_item_fee_sumamt, line.name
    )
    (mirror,) = _pass((charge,), {line.med_list_codg: plan}, context, literal=literal).lines
    return mirror.replace(
        cnt=line.cnt,
        det_item_fee_sumamt=line.det_item_fee_sumamt,
        fulamt_ownpay_amt=-mirror.fulamt_ownpay_amt,
        overlmt_amt=-mirror.overlmt_amt,
        preselfpay_amt=-mirror.preselfpay_amt,
        inscp_scp_amt=-mirror.inscp_scp_amt,
        dise_codg=line.dise_codg,
    )


def _pass(
    lines: Sequence[FeeLine], plans: Mapping[str, ItemPlan], context: Context, *, literal: bool
) -> PricedBill:
    """Check, look up and price every line, and sum the bill; the one implementation of the 2204 rule:

        fee        = round_half_up(cnt × pric) to the fen, exactly (else the bill is refused)
        fulamt     = fee                                  for 丙, out of the catalogue, or a ratio ≥ 1
        overlmt    = max(0, fee − fen(ceiling × cnt))     otherwise, where the item has a ceiling
        preselfpay = fen((fee − overlmt) × ratio)         乙: the ratio applies inside the ceiling only
        inscp      = fee − fulamt − overlmt − preselfpay

    It is the hot loop of a settlement (50 lines a bill; issue 3 asks ≥ 5,000 bills/s), so it binds
    names locally and builds each LineResult positionally, and it leaves out operations that cannot
    change a result in any context: a product with a zero ratio (it rounds to 0.00, which is ZERO)
    and subtractions of the ZERO object from a value that already went through one. Every amount
    keeps the exponent the rule gives it, so the 2204 strings are the same however the HIS wrote its
    amounts ("3.5", "3.50"). Unless `literal`, three more are taken from what it already has, which
    is exact only where _price allows it: a self-paid line's fee − fee − 0.00 is fee % 0.01; an over-
    ceiling line's in-scope part fee − 0.00 − (fee − allowed) is allowed + fee % 0.01 and what the
    ratio applies to is allowed; and the bill's in-scope total is the fee total less the other three.
    """
    quantize = Decimal.quantize
    half_up = ROUND_HALF_UP
    zero = ZERO
    nought = _NOUGHT  # Decimal against Decimal: comparing with the int 0 converts it every time
    cent = FEN
    # list methods called on the lists themselves, not bound to locals: compiled, that is a direct append
    items: list[CatalogItem] = []
    out: list[LineResult] = []
    serials: set[str] = set()  # each line's feedetl_sn, to refuse a repeated one
    limited: list[int] = []
    outside: list[int] = []
    refunds: list[int] = []
    half = _HALF_FEN
    neg_half = -_HALF_FEN
    medfee = fulamt_sum = overlmt_sum = preselfpay_sum = inscp_sum = zero
    for line in lines:
        code = line.med_list_codg
        serial = line.feedetl_sn
        serials.add(serial)
        try:  # a subscript, not plans.get(): no call in the usual case
            plan = plans[code]
        except KeyError:  # not in the catalogue: the whole line is the patient's (domain.md 2.1)
            plan = outside_plan(code, line.name)
            outside.append(len(out))
        item, selfpaid, prop, has_prop, ceiling, level, name, flag, lmt = plan
        fee = line.det_item_fee_sumamt
        cnt = line.cnt
        pric = line.pric
        # check_bill's conditions, two written more cheaply: "fee is in whole fen" as fee % 0.01 == 0
        # (a remainder instead of a quantize and a comparison: both raise for the same fees, those
        # too long for the context, and agree on all others), and, for a charge, "fee is
        # round_half_up(cnt × pric)" as fee − 0.005 ≤ cnt × pric < fee + 0.005 (for a product ≥ 0 and
        # a fee in whole fen the same statement; the literal pass quantizes, as check_bill does).
        # A positive fee and quantity (nearly every line) skip the price's sign test: a fee of at least
        # 0.01 within half a fen of cnt × pric, or equal to it rounded, makes the product, and with
        # cnt > 0 the price, positive (rounding to the context's precision never flips a sign).
        if not (fee > nought and cnt > nought) and (cnt <= nought or pric < nought or fee < nought):
            if not (cnt < nought <= pric and fee <= nought) or fee % cent:
                raise _Doubt
            if quantize(cnt * pric, cent, half_up, context) != fee:
                raise _Doubt
            refund = _refund(line, plan, context, literal=literal)
            refunds.append(len(out))
            out.append(refund)
            fulamt_sum += refund.fulamt_ownpay_amt
            overlmt_sum += refund.overlmt_amt
            preselfpay_sum += refund.preselfpay_amt
            if literal:
                inscp_sum += refund.inscp_scp_amt
            if lmt:
                limited.append(len(items))
            items.append(item)
            medfee += fee
            continue
        # a zero with fee's sign and the lower of fee's exponent and −2 when fee is in whole fen
        whole = fee % cent
        if whole:
            raise _Doubt
        if literal:
            if quantize(cnt * pric, cent, half_up, context) != fee:
                raise _Doubt
        elif (product := cnt * pric) != fee and not neg_half <= product - fee < half:
            # a product equal to the fee (nearly every line) is within half a fen: one comparison
            # instead of a subtraction and two comparisons
            raise _Doubt
        if selfpaid:
            fulamt = fee
            overlmt = preselfpay = zero
            fulamt_sum += fee
            # fee − fee alone keeps fee's exponent, which may be above −2; `whole` is the same +0
            # unless fee is −0 (then `whole` is −0)
            inscp = whole if fee and not literal else fee - fee - zero
        else:
            fulamt = overlmt = preselfpay = zero
            if ceiling is not None and fee > (allowed := quantize(ceiling * cnt, cent, half_up, context)):
                # max(ZERO, fee − allowed) is ZERO unless the fee is strictly larger
                overlmt = fee - allowed
                overlmt_sum += overlmt
                if literal:
                    inscp = fee - zero - overlmt
                    inside = fee - overlmt
                else:
                    inscp = allowed + whole  # with fee's exponent where that is below −2
                    inside = allowed  # the same value as fee − overlmt: the product below is rounded
            else:
                inscp = inside = fee - zero  # fee − overlmt while overlmt is the ZERO object
            if has_prop:  # else (fee − overlmt) × 0 rounds to 0.00, which is ZERO
                preselfpay = quantize(inside * prop, cent, half_up, context)
                preselfpay_sum += preselfpay
                inscp -= preselfpay
        out.append(
            LineResult(
                serial,
                code,
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
            )
        )
        if lmt:
            limited.append(len(items))
        items.append(item)
        medfee += fee
        if literal:
            inscp_sum += inscp
    if len(serials) != len(out):
        raise _Doubt  # a repeated feedetl_sn
    if refunds:
        try:
            check_refunds(lines, "")
        except RefundLineError:
            # check_bill refuses these lines too, and names the bill: leave it to say why
            raise _Doubt from None
        check_netted(out)
    if not literal:
        # each line's inscp is its fee less its other three parts, exactly, and both sides carry
        # the total's exponent
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
    return tuple.__new__(
        PricedBill, (tuple(items), tuple(out), sums, tuple(limited), tuple(outside), tuple(refunds))
    )
