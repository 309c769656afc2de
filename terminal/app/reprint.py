"""Reprinting a settlement's receipt at the counter, marked 补打 (a copy, not a second payment)."""

from __future__ import annotations

from typing import Any

from firmware_bridge.printer import RECEIPT_TITLE, receipt_from_view
from terminal.app.receipts import ledger_receipt
from terminal.app.terminal import Terminal
from terminal.devices import ReceiptPrinting
from terminal.errors import ReceiptNotFoundError
from terminal.pipeline.offline import OFFLINE_NOTE
from terminal.store.reprints import note_reprint, settlement_receipt

REPRINT_MARK = "补打"


def reprint_receipt(
    terminal: Terminal, printing: ReceiptPrinting | None, msgid: str, actor: str
) -> dict[str, Any]:
    """The receipt rebuilt from the ledger, audited with its actor, printed when a printer is fitted."""
    with terminal.lock:
        row = settlement_receipt(terminal.db, msgid)
        if row is None:
            raise ReceiptNotFoundError(f"no settlement {msgid}")
        copy = note_reprint(terminal.db, msgid, terminal.clock.now(), actor)
    receipt: dict[str, Any] = {
        **ledger_receipt(row),
        "reprint": REPRINT_MARK,
        "copy": copy,
    }
    document = receipt_from_view(receipt, offline_note=OFFLINE_NOTE)
    lines = [
        f"{RECEIPT_TITLE}（{REPRINT_MARK} 第{copy}次）",
        *(f"{label}  {value}" for label, value in document.rows),
    ]
    if receipt["payment"]["transaction_id"]:
        lines.append(f"支付单号  {receipt['payment']['transaction_id']}")
    if receipt["reversed"]:
        lines.append("已退费 REFUNDED / REVERSED")
    printed = printing.reprint(receipt, copy) if printing is not None else "no_printer"
    return {"receipt": receipt, "text": "\n".join(lines), "printed": printed}
