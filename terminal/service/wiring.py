"""Builds the checkout session and bill source over a Terminal, loading models only when first used."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from terminal.app import Terminal
from terminal.domain import Bill, FaceObservation, Frame, IdentityClaim, Match, NoMatch, SettlementRecord
from terminal.errors import BillError
from terminal.pipeline.bills import bill_from_json, load_bill
from terminal.pipeline.checkout import Priced
from terminal.pipeline.session import Session
from terminal.pipeline.session_ports import LivenessFactory, LivenessPort
from terminal.settlement.money import fen
from terminal.store.sessions import SessionJournal

log = logging.getLogger(__name__)


class _TerminalPorts:
    """The session's ports over a Terminal; each touches the terminal's lazy parts only when called."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """The largest usable face."""
        return self._terminal.face_stage.observe_primary(frame)

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1."""
        return self._terminal.identifier.verify(observation, psn_no)

    def identify(self, observation: FaceObservation) -> Match | NoMatch:
        """1:N."""
        return self._terminal.identifier.identify(observation)

    def by_credential(self, claim: IdentityClaim) -> Match:
        """QR / card / ID."""
        return self._terminal.identifier.by_credential(claim)

    def price(self, bill: Bill, psn_no: str) -> Priced:
        """Pre-settle."""
        return self._terminal.checkout.price(bill, psn_no)

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Settle."""
        return self._terminal.checkout.settle(priced, match)

    def is_settled(self, chrg_bchno: str) -> bool:
        """Ask the ledger."""
        return self._terminal.ledger.is_settled(chrg_bchno)

    def settlement_of(self, chrg_bchno: str) -> Mapping[str, Any] | None:
        """The ledger's row for a settled bill."""
        return self._terminal.ledger.settlement_of(chrg_bchno)


def build_session(
    terminal: Terminal,
    timeout: timedelta = timedelta(seconds=120),
    receipt_timeout: timedelta = timedelta(seconds=60),
    liveness: LivenessFactory | None = None,
) -> Session:
    """The terminal's one checkout session, resumed from the journal if a restart interrupted it.

    Face attempts run the terminal's own liveness stage unless a factory is given (tests, replays).
    """
    ports = _TerminalPorts(terminal)

    def terminal_liveness() -> LivenessPort:
        return terminal.liveness_stage.session()

    # A failed liveness attempt is a failed face attempt: the stricter of the two limits applies.
    attempts = min(terminal.config.identity.max_face_attempts, terminal.config.liveness.max_attempts)
    return Session(
        faces=ports,
        identifier=ports,
        checkout=ports,
        ledger=ports,
        journal=SessionJournal(terminal.db),
        clock=terminal.clock,
        max_face_attempts=attempts,
        timeout=timeout,
        receipt_timeout=receipt_timeout,
        liveness=liveness or terminal_liveness,
        face_lockout=timedelta(seconds=terminal.config.identity.face_lockout_s),
    )


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


def bill_from_text(text: str) -> Bill:
    """A bill from JSON text with exact decimals; BillError when malformed."""
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise BillError(f"bill is not JSON: {exc}") from exc
    return bill_from_json(data)
