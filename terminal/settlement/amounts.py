"""Bill-level rules after line pricing: amount caps, zero bills, out-of-scope lines, injury exclusions."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from terminal.domain import Bill, Person
from terminal.errors import BillOverCapError, BillZeroError, InjuryExcludedError, LineOverCapError
from terminal.settlement.context import SettlementContext
from terminal.settlement.instances import filled
from terminal.settlement.money import ZERO
from terminal.settlement.policy import AmountLimits, PolicyBundle
from terminal.settlement.pricing import LineTotals, PricedBill
from terminal.settlement.result import LineResult
from terminal.settlement.run import Run
from terminal.settlement.safety import age_on

_NOUGHT = Decimal(0)
_CAUSES = {
    "no_third_party": "无第三方责任",
    "third_party": "第三方责任",
    "work_injury": "工伤",
    "abroad": "境外就医",
    "public_health": "公共卫生负担",
}


def check_amounts(bill: Bill, medfee: Decimal, limits: AmountLimits, *, refunds: bool = True) -> None:
    """Refuse a line above the per-line cap, a bill above the per-bill cap, or a zero bill (typed).

    `refunds=False` promises every fee is ≥ 0: then no line can exceed a cap the total stays within.
    """
    line_max = limits.line_max
    line_min = -line_max  # a refund line's size is checked too, without negating every fee
    lines = bill.lines if refunds or medfee > line_max else ()
    for line in lines:
        fee = line.det_item_fee_sumamt
        if not line_min <= fee <= line_max:
            raise LineOverCapError(
                f"bill {bill.chrg_bchno} fee line {line.feedetl_sn}: amount {fee} is above the "
                f"per-line cap {line_max}"
            )
    if medfee > limits.bill_max:
        raise BillOverCapError(
            f"bill {bill.chrg_bchno}: total {medfee} is above the per-bill cap {limits.bill_max}"
        )
    if medfee == _NOUGHT:
        raise BillZeroError(f"bill {bill.chrg_bchno}: total is zero, nothing to settle")


def check_injury(run: Run, bill: Bill, policy: PolicyBundle, context: SettlementContext) -> None:
    """An injury bill (med_type 22) the basic fund does not pay is refused (InjuryExcludedError)."""
    rule = policy.injury
    if rule is None or bill.med_type not in rule.med_types:
        return
    cause = context.injury_cause
    if cause is None:
        if rule.requires_declaration:
            raise InjuryExcludedError(
                f"bill {bill.chrg_bchno}: injury care (med_type {bill.med_type}) needs the cause declared "
                "(no third party, not a work injury) before the fund pays"
            )
        run.note("injury", "外伤: 未声明致伤原因, 按本政策不需声明")
        return
    if cause in rule.excluded_causes:
        raise InjuryExcludedError(
            f"bill {bill.chrg_bchno}: injury with cause {cause} ({_CAUSES[cause]}) is not paid by the "
            "basic fund"
        )
    run.note("injury", f"外伤: 已声明{_CAUSES[cause]}, 按本险种待遇结算")


def outside_scope(run: Run, priced: PricedBill, person: Person, day: date) -> PricedBill:
    """Lines that break their catalogue item's gender or age limit move wholly to fulamt_ownpay_amt.

    Only items that carry a limit (PricedBill.limited); the fund-safety check still flags or blocks.
    """
    if not priced.limited:
        return priced
    age = age_on(person.brdy, day) if person.brdy is not None else None
    lines: list[LineResult] | None = None  # copied at the first line that moves: most bills move none
    moved = []
    fulamt, overlmt, preselfpay, inscp = (
        priced.sums.fulamt,
        priced.sums.overlmt,
        priced.sums.preselfpay,
        priced.sums.inscp,
    )
    items, gend = priced.items, person.gend
    for i in priced.limited:
        item = items[i]
        # each limit read once: an item is a pydantic model, whose attribute reads cost the most here
        gend_lmt, min_age, max_age = item.gend_lmt, item.min_age, item.max_age
        wrong_sex = gend_lmt is not None and gend in ("1", "2") and gend != gend_lmt
        wrong_age = age is not None and (
            (min_age is not None and age < min_age) or (max_age is not None and age > max_age)
        )
        if not (wrong_sex or wrong_age):
            continue
        if lines is None:
            lines = list(priced.lines)
        r = lines[i]
        fee: Decimal = r.det_item_fee_sumamt
        # the bill's sums change by this line's move alone (fen amounts: exact in any order)
        fulamt += fee - r.fulamt_ownpay_amt
        overlmt -= r.overlmt_amt
        preselfpay -= r.preselfpay_amt
        inscp -= r.inscp_scp_amt
        # what r.replace(fulamt…=fee, overlmt…=0, preselfpay…=0, inscp…=fee − fee) builds, through the
        # positional constructor: most bills of a day carry a limited item
        lines[i] = LineResult(
            r.feedetl_sn,
            r.med_list_codg,
            r.name,
            r.cnt,
            r.pric,
            fee,
            r.chrgitm_lv,
            r.selfpay_prop,
            r.pric_uplmt_amt,
            fee,
            ZERO,
            ZERO,
            fee - fee,
            r.lmt_used_flag,
            r.dise_codg,
        )
        moved.append(f"明细 {r.feedetl_sn} {r.name} {fee}({'性别' if wrong_sex else '年龄'}限制)")
    if lines is None:
        return priced
    run.note("lines", "不符合目录限定, 移出基金支付范围(全自费): " + "；".join(moved))
    sums = filled(
        LineTotals,
        {
            "medfee": priced.sums.medfee,
            "fulamt": fulamt,
            "overlmt": overlmt,
            "preselfpay": preselfpay,
            "inscp": inscp,
        },
    )
    return tuple.__new__(PricedBill, (priced.items, tuple(lines), sums, *priced[3:]))


def note_outside(run: Run, priced: PricedBill) -> None:
    """A trace line for the lines whose code the catalogue does not list (fully self-paid)."""
    if priced.outside:
        picked = [priced.lines[i] for i in priced.outside]
        shown = "；".join(f"明细 {r.feedetl_sn} {r.med_list_codg} {r.det_item_fee_sumamt}" for r in picked)
        run.note("lines", f"目录外项目, 全自费: {shown}")
