"""`medpay settle`: price a bill file for a person and record it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminal.app import Terminal
from terminal.cli.receipt import render_receipt
from terminal.domain import Match
from terminal.pipeline.bills import load_bill


def settle_bill_file(terminal: Terminal, bill_path: Path, psn_no: str, record: bool) -> dict[str, Any]:
    """Pre-settle (and unless record is False, settle) a bill; returns JSON and the receipt text."""
    priced = terminal.checkout.price(load_bill(bill_path), psn_no)
    # The technician's CLI identifies the patient by their insurance number, a credential path.
    settled = terminal.checkout.settle(priced, Match(psn_no, "credential")) if record else None
    report = priced.as_json()
    if settled is not None:
        report["msgid"] = settled.msgid
        report["outbox"] = dict(settled.envelope)
    report["receipt"] = render_receipt(priced, settled)
    return report
