"""The demo's bill source: bills as JSON files in a folder (config/bills/*.json)."""

from __future__ import annotations

import logging
from pathlib import Path

from terminal.bill_json import load_bill
from terminal.domain import Bill, PendingBill, SettledNotice
from terminal.errors import BillError

log = logging.getLogger(__name__)


class FileBillSource:
    """Bills as JSON files in a folder (config/bills/*.json). Demo only: every bill is pending for anyone."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def _all(self) -> list[Bill]:
        bills = []
        for path in sorted(self._folder.glob("*.json")):
            try:
                bills.append(load_bill(path))
            except BillError as exc:
                log.warning("skipping bill file %s: %s", path.name, exc)
        return bills

    def pending(self, psn_no: str) -> list[PendingBill]:
        """Every readable bill in the folder."""
        return [PendingBill.of(bill) for bill in self._all()]

    def get(self, chrg_bchno: str) -> Bill:
        """The bill with this number."""
        for bill in self._all():
            if bill.chrg_bchno == chrg_bchno:
                return bill
        raise BillError(f"no pending bill {chrg_bchno}")

    def notify_settled(self, chrg_bchno: str, notice: SettledNotice) -> None:
        """Nothing to tell: the ledger alone keeps a settled file bill out of the listing."""
        log.debug("file bill %s settled as %s", chrg_bchno, notice.msgid)
