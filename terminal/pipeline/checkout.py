"""Stage 4: checkout — price a bill for an identified person (pure engine), then settle it durably."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from terminal.config import TerminalSection
from terminal.domain import Bill, CertType, Match, Person, SettlementRecord
from terminal.pipeline.outbox import INFNO_SETTLE, envelope
from terminal.ports import Clock, Gallery, Ledger
from terminal.settlement import (
    Accumulators,
    Catalog,
    SafetyFacts,
    SettlementContext,
    SettlementResult,
    presettle,
)
from terminal.settlement.shelf import PolicyShelf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Priced:
    """A pre-settlement: the bill, who pays, the engine's result and the state it was priced against."""

    bill: Bill
    person: Person
    result: SettlementResult
    stored_accumulators: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The pre-settlement as the service and CLI show it (national field names)."""
        return {"psn_no": self.person.psn_no, "chrg_bchno": self.bill.chrg_bchno, **self.result.to_json()}


class Checkout:
    """Prices bills with the local rule engine and records settlements with their outbox entries."""

    def __init__(
        self,
        gallery: Gallery,
        ledger: Ledger,
        policies: PolicyShelf,
        catalog: Catalog,
        terminal: TerminalSection,
        clock: Clock,
    ) -> None:
        self._gallery = gallery
        self._ledger = ledger
        self._policies = policies
        self._catalog = catalog
        self._terminal = terminal
        self._clock = clock

    def price(self, bill: Bill, psn_no: str) -> Priced:
        """The patient's share at once: a pre-settlement; nothing is recorded."""
        person = self._gallery.person(psn_no)
        today = self._clock.now().date()
        stored = self._ledger.accumulators(person.psn_no, today.year)
        context = SettlementContext(
            institution_level=self._terminal.institution_level,
            setl_date=today,
            cross_region=None
            if person.insuplc_admdvs[:4] == self._terminal.mdtrtarea_admvs[:4]
            else "unfiled",
            safety=SafetyFacts(bill_already_settled=self._ledger.is_settled(bill.chrg_bchno)),
        )
        result = presettle(
            bill,
            person,
            Accumulators.from_json(stored, today.year),
            self._policies.for_date(today),
            self._catalog,
            context,
        )
        return Priced(bill=bill, person=person, result=result, stored_accumulators=stored)

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Record the confirmed settlement, its accumulators, outbox entry and audit in one transaction."""
        now = self._clock.now()
        msgid = self._ledger.allocate_msgid(now)
        info = priced.result.setlinfo
        person = priced.person
        # Until the province's e-credential SDK gives a face token (cert type 01), a face match is
        # sent upstream as the matched person's ID number (02); the ledger keeps how they were identified.
        payload = {
            "data": {
                "psn_no": person.psn_no,
                "mdtrt_cert_type": CertType.ID_NUMBER.value,
                "mdtrt_cert_no": person.certno,
                "med_type": priced.bill.med_type,
                "medfee_sumamt": str(info.medfee_sumamt),
                "psn_setlway": "01",
                "chrg_bchno": priced.bill.chrg_bchno,
                "acct_used_flag": "1" if priced.bill.acct_used_flag else "0",
                "insutype": person.insutype,
            },
            "feedetail": [
                {
                    "feedetl_sn": line.feedetl_sn,
                    "med_list_codg": line.med_list_codg,
                    "cnt": str(line.cnt),
                    "pric": str(line.pric),
                    "det_item_fee_sumamt": str(line.det_item_fee_sumamt),
                    **({"dise_codg": line.dise_codg} if line.dise_codg else {}),
                }
                for line in priced.bill.lines
            ],
        }
        record = SettlementRecord(
            msgid=msgid,
            chrg_bchno=priced.bill.chrg_bchno,
            psn_no=person.psn_no,
            med_type=priced.bill.med_type,
            identified_by=match.method,
            setl_time=now,
            medfee_sumamt=info.medfee_sumamt,
            fund_pay_sumamt=info.fund_pay_sumamt,
            psn_part_amt=info.psn_part_amt,
            result=priced.result.to_json(),
            year=priced.result.accumulators_after.year,
            accumulators_before=priced.stored_accumulators,
            accumulators_after=priced.result.accumulators_after.to_json(),
            infno=INFNO_SETTLE,
            envelope=envelope(INFNO_SETTLE, msgid, self._terminal, person.insuplc_admdvs, now, payload),
        )
        self._ledger.record(record)
        log.info("settled %s for %s: msgid %s", priced.bill.chrg_bchno, person.psn_no, msgid)
        return record
