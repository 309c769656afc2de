"""The daily reconciliation (对账) of one day, built from what the ledger, the centre and the gateway say.

Pure: the caller reads the ledger (store/day_report.py, store/payments.py) and the gateway's bill. Four
parts: the insurance totals per fund, against the centre's 3201 answer; the settlements whose binding
result differs from the estimate, field by field (what 3202 would list); the payments, the gateway's bill
against the ledger per order (missing on either side, amounts that differ, refunds); and per settlement
what the counter must collect or refund where the patient was charged the estimate (offline) and the
centre's binding cash share differs. Refunds say why (centre refused, counter refund, payment abandoned);
money still owed back is listed whatever its day: retried by the payment worker, or to be refunded by hand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.payment_types import GatewayBillLine, Payment, fen_of
from terminal.pipeline.payment import CENTRE_REFUSED, REFUND_MANUAL
from terminal.settlement.result import SETTLED_AMOUNTS

# The per-fund amounts the report adds up (setlinfo names), the 3201 fields, and a yuan with two places.
FUNDS = (
    "medfee_sumamt", "hifp_pay", "cvlserv_pay", "hifes_pay", "hifmi_pay", "hifob_pay", "maf_pay",
    "oth_pay", "fund_pay_sumamt", "acct_pay", "psn_cash_pay",
)  # fmt: skip
TOTALS_3201 = ("medfee_sumamt", "fund_pay_sumamt", "acct_pay", "fixmedins_setl_cnt")
CENT = Decimal("0.01")


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value)).quantize(CENT)
    except (InvalidOperation, ValueError):
        return Decimal("0.00")


def _yuan(fen: int) -> str:
    return str((Decimal(fen) / 100).quantize(CENT))


def build_day_report(
    day: str,
    settlements: Sequence[Mapping[str, Any]],
    payments: Sequence[Payment],
    refunds: Sequence[Payment],
    totals: Mapping[str, Any] | None,
    bill: Sequence[GatewayBillLine] | None,
    bill_error: str = "",
    owed: Sequence[Payment] = (),
) -> dict[str, Any]:
    """The day's reconciliation as JSON-ready data (amounts as yuan strings); `owed`: refunds not done."""
    standing = [s for s in settlements if not s["reversed"]]
    return {
        "date": day,
        "insurance": _insurance(standing, settlements, totals),
        "differences": _differences(standing),
        "payments": _payments(payments, refunds, bill, bill_error),
        "collect_or_refund": _collect_or_refund(standing, {p.msgid: p for p in payments}),
        "refunds_owed": [_owed(p) for p in owed],
    }


def refund_reason(payment: Payment) -> str:
    """Why a payment's money went (or goes) back, as the report names it."""
    if CENTRE_REFUSED in payment.phases:
        return "centre refused"
    if "refund_approved" in payment.phases:
        return "counter refund"
    return "payment abandoned"


def _owed(payment: Payment) -> dict[str, Any]:
    by_hand = payment.state == REFUND_MANUAL
    return {
        "msgid": payment.msgid, "psn_no": payment.psn_no, "out_trade_no": payment.out_trade_no,
        "out_refund_no": payment.out_refund_no, "amount": _yuan(payment.fen or 0), "state": payment.state,
        "reason": refund_reason(payment), "detail": payment.reason,
        "action": "refund by hand" if by_hand else "retrying automatically",
        "attempts": payment.attempts, "last_error": payment.last_error,
    }  # fmt: skip


def _insurance(
    standing: Sequence[Mapping[str, Any]],
    every: Sequence[Mapping[str, Any]],
    totals: Mapping[str, Any] | None,
) -> dict[str, Any]:
    funds = []
    for name in FUNDS:
        ledger = sum((_dec(s["local"].get(name, "0")) for s in standing), Decimal("0.00"))
        # The centre's figure where it has answered, else the estimate still stands in for it.
        centre = sum(
            (
                _dec((s["binding"] if s["binding"] is not None else s["local"]).get(name, "0"))
                for s in standing
            ),
            Decimal("0.00"),
        )
        funds.append(
            {"fund": name, "ledger": str(ledger), "centre": str(centre), "difference": str(centre - ledger)}
        )
    now = {
        "medfee_sumamt": str(sum((_dec(s["local"].get("medfee_sumamt")) for s in standing), Decimal("0.00"))),
        "fund_pay_sumamt": str(
            sum((_dec(s["local"].get("fund_pay_sumamt")) for s in standing), Decimal("0.00"))
        ),
        "acct_pay": str(sum((_dec(s["local"].get("acct_pay")) for s in standing), Decimal("0.00"))),
        "fixmedins_setl_cnt": str(len(standing)),
    }
    answer: dict[str, Any] | None = None
    if totals is not None:
        theirs = dict(totals["answer"].get("upstream") or {})
        rows = []
        for name in TOTALS_3201:
            ours, other = str(now.get(name, "")), str(theirs.get(name, ""))
            agrees = _dec(ours) == _dec(other) if name != "fixmedins_setl_cnt" else ours == other
            rows.append({"field": name, "ledger": ours, "sent": str(totals["sent"].get(name, "")),
                         "upstream": other, "agrees": agrees})  # fmt: skip
        answer = {
            "stmt_rslt": totals["stmt_rslt"],
            "agrees": totals["stmt_rslt"] == "0" and all(r["agrees"] for r in rows),
            "checked_at": totals["checked_at"],
            "fields": rows,
        }
    return {
        "settlements": len(standing),
        "reversed": len(every) - len(standing),
        "unconfirmed": [s["msgid"] for s in standing if s["binding"] is None],
        "funds": funds,
        "totals_3201": answer,
    }


def _differences(standing: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    lines = []
    for s in standing:
        if s["binding"] is None:
            continue
        for name in SETTLED_AMOUNTS:
            mine, theirs = s["local"].get(name), s["binding"].get(name)
            if mine is None and theirs is None:
                continue
            if _dec(mine) != _dec(theirs):
                lines.append({"msgid": s["msgid"], "psn_no": s["psn_no"], "field": name,
                              "ledger": str(mine), "centre": str(theirs)})  # fmt: skip
    return lines


def _payments(
    payments: Sequence[Payment],
    refunds: Sequence[Payment],
    bill: Sequence[GatewayBillLine] | None,
    bill_error: str,
) -> dict[str, Any]:
    # The ledger's view per order: money taken that day, and money given back that day.
    ledger_pay = {p.out_trade_no: (p.fen or 0) for p in payments if "paid" in p.phases}
    ledger_ref = {p.out_trade_no: (p.fen or 0) for p in refunds if p.fen}
    by_order = {p.out_trade_no: p.msgid for p in (*payments, *refunds)}
    why = {p.out_trade_no: refund_reason(p) for p in refunds}
    if bill is None:
        # The ledger's own refunds still show, unchecked against the gateway.
        unchecked = [
            {"out_trade_no": order, "msgid": by_order.get(order, ""), "status": "gateway_unavailable",
             "ledger": _yuan(fen), "gateway": None, "reason": why.get(order, "")}
            for order, fen in sorted(ledger_ref.items())
        ]  # fmt: skip
        return {"gateway": "unavailable", "error": bill_error, "orders": [], "refunds": unchecked,
                "ledger_paid": _yuan(sum(ledger_pay.values())), "gateway_paid": None}  # fmt: skip
    gate_pay: defaultdict[str, int] = defaultdict(int)
    gate_ref: defaultdict[str, int] = defaultdict(int)
    for line in bill:
        (gate_pay if line.kind == "PAY" else gate_ref)[line.out_trade_no] += line.fen
    return {
        "gateway": "ok",
        "error": "",
        "orders": _compare(ledger_pay, gate_pay, by_order),
        "refunds": [
            {**row, "reason": why.get(row["out_trade_no"], "")}
            for row in _compare(ledger_ref, gate_ref, by_order, revoked=_revoked(payments, gate_pay))
        ],
        "ledger_paid": _yuan(sum(ledger_pay.values())),
        "gateway_paid": _yuan(sum(gate_pay.values())),
        "ledger_refunded": _yuan(sum(ledger_ref.values())),
        "gateway_refunded": _yuan(sum(gate_ref.values())),
    }


def _revoked(payments: Sequence[Payment], gate_pay: Mapping[str, int]) -> dict[str, int]:
    """Orders the saga closed after the patient paid (撤销): the gateway refunded them itself, as expected."""
    return {
        p.out_trade_no: gate_pay[p.out_trade_no]
        for p in payments
        if p.state == "reversed" and "paid" not in p.phases and p.out_trade_no in gate_pay
    }


def _compare(
    ledger: Mapping[str, int],
    gateway: Mapping[str, int],
    by_order: Mapping[str, str],
    revoked: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    expected = {**ledger, **(revoked or {})}
    rows = []
    for order in sorted(set(expected) | set(gateway)):
        mine, theirs = expected.get(order), gateway.get(order)
        if mine is None:
            status = "missing_in_ledger"
        elif theirs is None:
            status = "missing_at_gateway"
        elif mine != theirs:
            status = "amount_differs"
        else:
            status = "match"
        rows.append({
            "out_trade_no": order, "msgid": by_order.get(order, ""), "status": status,
            "ledger": None if mine is None else _yuan(mine),
            "gateway": None if theirs is None else _yuan(theirs),
        })  # fmt: skip
    return rows


def _collect_or_refund(
    standing: Sequence[Mapping[str, Any]], payments: Mapping[str, Payment]
) -> list[dict[str, str]]:
    out = []
    for s in standing:
        payment = payments.get(s["msgid"])
        if s["binding"] is None or payment is None or payment.fen is None or payment.basis == "binding":
            continue
        try:
            binding = fen_of(_dec(s["binding"].get("psn_cash_pay", "0")))
        except ValueError:
            continue
        if binding == payment.fen:
            continue
        action = "collect" if binding > payment.fen else "refund"
        out.append({
            "msgid": s["msgid"], "psn_no": s["psn_no"], "chrg_bchno": s["chrg_bchno"],
            "charged": _yuan(payment.fen), "binding": _yuan(binding), "action": action,
            "amount": _yuan(abs(binding - payment.fen)),
        })  # fmt: skip
    return out
