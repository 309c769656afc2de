"""Every completed payment's receipt printed once, whichever path completed it.

The kiosk's confirm and poll routes print the receipt they show. A payment completed elsewhere — by the
payment worker's recovery, a timeout's tick, or the counter's barcode reader — has no route answer to
print from, so after each worker pass and each scanned payment code the ledger is asked for completed
payments no printing job has taken yet (store/reprints.py), and their receipts, rebuilt from the ledger,
go to the printer's queue. A msgid already waiting in that queue (a route queued it, the printer's thread
has not claimed it yet) is not queued again, and the print journal claims each msgid once
(store/prints.py), so a receipt a route queued first is not printed again. A failed print — the printer
may have stopped halfway — is recorded (technician page) and printed again only by a reprint
(app/reprint.py, 补打), never by the next pass nor by a second job for the same msgid. None of this
blocks the payment: the queue is worked by the printer's own thread.
"""

from __future__ import annotations

import logging
from typing import Any

from terminal.app.terminal import Terminal
from terminal.devices import ReceiptPrinting
from terminal.pipeline.session_view import mask_name
from terminal.store.prints import PrintJournal
from terminal.store.reprints import completed_unprinted, settlement_receipt

log = logging.getLogger(__name__)

NO_PRINTER = "no printer configured ([devices.printer]): shown on screen only"


def ledger_receipt(row: dict[str, Any]) -> dict[str, Any]:
    """A settlement's receipt view rebuilt from its ledger row (store/reprints.settlement_receipt)."""
    info = row["setlinfo"]
    return {
        "msgid": row["msgid"],
        "setl_time": row["setl_time"],
        "offline": bool(info.get("offline", False)),
        "identified_by": row["identified_by"],
        "name": mask_name(str(info.get("psn_name", ""))),
        "chrg_bchno": row["chrg_bchno"],
        **{
            k: str(info[k])
            for k in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")
            if k in info
        },
        "payment": {
            "state": row["payment_state"] or "",
            "channel": row["channel"] or "",
            "wallet": row["wallet"] or "",
            "transaction_id": row["transaction_id"] or "",
        },
        "reversed": row["reversed_at"] is not None,
    }


class CompletedReceipts:
    """Queues the receipt of every completed payment not yet taken by a printing job."""

    def __init__(self, terminal: Terminal, printing: ReceiptPrinting | None) -> None:
        self._terminal = terminal
        self._printing = printing
        # Without a printer the journal still notes each receipt, so one fitted later prints no backlog.
        self._journal = printing.journal if printing is not None else PrintJournal(terminal.data_dir)

    def sweep(self) -> int:
        """Queue (or note, without a printer) each completed, unprinted receipt; how many (under the lock)."""
        term = self._terminal
        queued = 0
        for msgid in completed_unprinted(term.db):
            row = settlement_receipt(term.db, msgid)
            if row is None:
                continue
            if self._printing is None:
                self._journal.skip(msgid, term.clock.now().isoformat(), NO_PRINTER)
                continue
            if self._printing.submit(ledger_receipt(row)):
                queued += 1
        if queued:
            log.info("receipts: %d completed payment(s) queued for printing", queued)
        return queued
