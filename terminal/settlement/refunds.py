"""Refund lines (negative quantity): accepted only when they net against the same item's charged lines.

A refund line gives back units charged in the same bill: it must name an item charged in a positive
line at the same unit price, the bill's net quantity of that item at that price stays ≥ 0, and after
pricing (each refund line is the exact negative of a charge of its size) every 2204 part of the item
nets to ≥ 0, so no fund and no part of the patient's share can go below zero through a refund.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from terminal.domain import FeeLine
from terminal.errors import RefundLineError
from terminal.settlement.result import LineResult

_NOUGHT = Decimal(0)
_PARTS = ("det_item_fee_sumamt", "fulamt_ownpay_amt", "overlmt_amt", "preselfpay_amt", "inscp_scp_amt")
_PART_NAMES = {
    "det_item_fee_sumamt": "金额",
    "fulamt_ownpay_amt": "全自费",
    "overlmt_amt": "超限价自付",
    "preselfpay_amt": "先行自付",
    "inscp_scp_amt": "政策范围内",
}


def check_refunds(lines: Sequence[FeeLine], chrg_bchno: str) -> None:
    """Each refund line has a charged line of its item at its price, and never more units; RefundLineError."""
    net: dict[tuple[str, Decimal], Decimal] = {}
    charged: set[tuple[str, Decimal]] = set()
    for line in lines:
        key = (line.med_list_codg, line.pric)
        net[key] = net.get(key, _NOUGHT) + line.cnt
        if line.cnt > _NOUGHT:
            charged.add(key)
    for line in lines:
        if line.cnt >= _NOUGHT:
            continue
        key = (line.med_list_codg, line.pric)
        where = (
            f"bill {chrg_bchno} fee line {line.feedetl_sn}" if chrg_bchno else f"fee line {line.feedetl_sn}"
        )
        if key not in charged:
            raise RefundLineError(
                f"{where}: refund of {line.med_list_codg} at {line.pric} has no charged line of that "
                "item at that price in the bill"
            )
        if net[key] < _NOUGHT:
            raise RefundLineError(
                f"{where}: refunds of {line.med_list_codg} at {line.pric} exceed the charged quantity "
                f"by {-net[key]}"
            )


def check_netted(results: Sequence[LineResult]) -> None:
    """Every 2204 part of each refunded item nets to ≥ 0 over the bill; RefundLineError naming the part."""
    refunded = {r.med_list_codg for r in results if r.cnt < _NOUGHT}
    for code in sorted(refunded):
        mine = [r for r in results if r.med_list_codg == code]
        for part in _PARTS:
            net = sum((getattr(r, part) for r in mine), _NOUGHT)
            if net < _NOUGHT:
                raise RefundLineError(
                    f"refunds of {code} take its {_PART_NAMES[part]} ({part}) below zero ({net})"
                )
