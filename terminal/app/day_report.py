"""The daily reconciliation (对账) of one day: the ledger's reads, the gateway's bill, the pure report."""

from __future__ import annotations

import csv
import io
import logging
from datetime import date
from typing import Any

from terminal.app.terminal import Terminal
from terminal.errors import PaymentError
from terminal.payment_types import GatewayBillLine
from terminal.pipeline.day_report import build_day_report
from terminal.store.day_report import settlements_of_day, totals_answer
from terminal.store.payments import PaymentStore

log = logging.getLogger(__name__)


def day_report(terminal: Terminal, day: date) -> dict[str, Any]:
    """One day's report; the gateway's bill is fetched outside the lock (it may be slow)."""
    iso = day.isoformat()
    with terminal.lock:
        store = PaymentStore(terminal.db)
        settlements = settlements_of_day(terminal.db, iso)
        payments = store.of_day(iso)
        refunds = store.refunds_of_day(iso)
        owed = store.owed()
        totals = totals_answer(terminal.db, iso)
        hints = terminal.supervision_log.hint_counts(day)
    gateway = terminal.payment_gateway
    bill: list[GatewayBillLine] | None = None
    error = ""
    if gateway is None:
        error = "no payment gateway is configured on this terminal"
    else:
        try:
            bill = gateway.bill(day)
        except PaymentError as exc:
            log.warning("the gateway's bill of %s was not fetched: %s", iso, exc)
            error = f"{exc.code}: {exc}"
    # 政策找人 hints shown that day, counted per kind (no person): the insurance office follows them up
    return {
        **build_day_report(iso, settlements, payments, refunds, totals, bill, error, owed),
        "benefit_hints": hints,
    }


CSV_FIELDS = ("section", "key", "field", "ledger", "other", "status")


def report_csv(report: dict[str, Any]) -> str:
    """The report as flat CSV rows: section, key, field, ledger, other (centre or gateway), status."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    insurance = report["insurance"]
    for fund in insurance["funds"]:
        status = "match" if fund["difference"] == "0.00" else "differs"
        writer.writerow(("fund", report["date"], fund["fund"], fund["ledger"], fund["centre"], status))
    answer = insurance["totals_3201"]
    if answer is None:
        writer.writerow(("3201", report["date"], "", "", "", "not_checked"))
    else:
        for row in answer["fields"]:
            writer.writerow(
                ("3201", report["date"], row["field"], row["ledger"], row["upstream"],
                 "match" if row["agrees"] else "differs")
            )  # fmt: skip
    for line in report["differences"]:
        writer.writerow(("3202", line["msgid"], line["field"], line["ledger"], line["centre"], "differs"))
    payments = report["payments"]
    if payments["gateway"] != "ok":
        writer.writerow(("payment", report["date"], "", payments["ledger_paid"], "", "gateway_unavailable"))
    for kind in ("orders", "refunds"):
        for row in payments[kind]:
            writer.writerow(
                ("payment" if kind == "orders" else "refund", row["out_trade_no"], row["msgid"],
                 row["ledger"] or "", row["gateway"] or "", row["status"])
            )  # fmt: skip
    for row in report["collect_or_refund"]:
        writer.writerow(("collect_or_refund", row["msgid"], "psn_cash_pay", row["charged"], row["binding"],
                         f"{row['action']} {row['amount']}"))  # fmt: skip
    for row in report.get("refunds_owed", ()):
        writer.writerow(("refund_owed", row["msgid"], row["reason"], row["amount"], row["out_refund_no"],
                         row["action"]))  # fmt: skip
    for kind, count in report.get("benefit_hints", {}).items():
        writer.writerow(("benefit_hint", report["date"], kind, count, "", "shown"))
    return out.getvalue()
