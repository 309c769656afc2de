"""Where pending bills come from and what they are told after settlement: the port and the demo folder."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from terminal.domain import Bill
from terminal.errors import BillError
from terminal.pipeline.bills import load_bill
from terminal.settlement.money import fen

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingBill:
    """A pending bill as listed for the patient to choose (the HIS listing gives no fee lines)."""

    chrg_bchno: str
    med_type: str
    begntime: datetime
    medfee_sumamt: Decimal
    items: int

    @classmethod
    def of(cls, bill: Bill) -> PendingBill:
        """The listing entry of a full bill."""
        return cls(bill.chrg_bchno, bill.med_type, bill.begntime, bill.medfee_sumamt, len(bill.lines))

    def as_json(self) -> dict[str, Any]:
        """Number, type, time, total (to the fen, as a string) and item count."""
        return {
            "chrg_bchno": self.chrg_bchno,
            "med_type": self.med_type,
            "begntime": self.begntime.isoformat(),
            "medfee_sumamt": str(fen(self.medfee_sumamt)),
            "items": self.items,
        }


@dataclass(frozen=True)
class SettledNotice:
    """What the terminal tells the bill source after recording a settlement; taken from the ledger."""

    chrg_bchno: str
    msgid: str
    setl_time: str
    medfee_sumamt: str
    fund_pay_sumamt: str
    psn_part_amt: str

    @classmethod
    def from_ledger(cls, chrg_bchno: str, row: Mapping[str, Any]) -> SettledNotice:
        """From the ledger's settlement row (amounts are stored as decimal strings)."""
        return cls(
            chrg_bchno=chrg_bchno,
            msgid=str(row["msgid"]),
            setl_time=str(row["setl_time"]),
            medfee_sumamt=str(row["medfee_sumamt"]),
            fund_pay_sumamt=str(row["fund_pay_sumamt"]),
            psn_part_amt=str(row["psn_part_amt"]),
        )

    def body(self) -> dict[str, str]:
        """The documented POST …/settled body."""
        return {
            "msgid": self.msgid,
            "setl_time": self.setl_time,
            "medfee_sumamt": self.medfee_sumamt,
            "fund_pay_sumamt": self.fund_pay_sumamt,
            "psn_part_amt": self.psn_part_amt,
        }


class BillSource(Protocol):
    """Where pending bills come from: the hospital's HIS (HTTP) or, for the demo, a folder of JSON."""

    def pending(self, psn_no: str) -> list[PendingBill]:
        """Bills waiting to be paid by this person; HisError when the source cannot answer."""
        ...

    def get(self, chrg_bchno: str) -> Bill:
        """One bill by number; BillError when there is none or it is malformed."""
        ...

    def notify_settled(self, chrg_bchno: str, notice: SettledNotice) -> None:
        """Tell the source the bill was settled (idempotent on msgid); HisError when it did not hear."""
        ...


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
