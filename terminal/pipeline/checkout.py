"""Stage 4: checkout — price a bill for an identified person (pure engine), then settle it durably.

With an upstream configured, settling applies the offline policy (terminal/pipeline/offline.py): while
the upstream is unreachable a settlement inside the limits is recorded with `offline=True` (the
receipt says the centre's result binds), and one beyond them raises OfflineLimitError before anything
is written. Without an upstream (the embedded demo default) there is no offline policy.

Pricing uses the benefit facts the gallery delta brought (门特 filings, assistance category, insurance
status); a person the upstream sent none for is priced as insured without filings or assistance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from terminal.config import TerminalSection
from terminal.domain import Bill, CertType, Match, Person, SettlementRecord, log_ref
from terminal.errors import FundSafetyError, OfflineLimitError, PaymentMethodError, PolicyError
from terminal.pipeline.offline import (
    OfflineDecision,
    OfflineLimits,
    is_offline,
    offline_decision,
    oldest_sync,
)
from terminal.pipeline.outbox import INFNO_SETTLE, envelope
from terminal.pipeline.policy_finder import benefit_hints
from terminal.pipeline.supervision import SupervisionFacts, local_since, supervision_facts
from terminal.ports import (
    Clock,
    Gallery,
    GalleryFreshness,
    Ledger,
    PersonHistories,
    SupervisionLog,
    UplinkState,
)
from terminal.settlement import (
    Accumulators,
    Catalog,
    SafetyFacts,
    SettlementContext,
    SettlementResult,
    presettle,
)
from terminal.settlement.insured import choose_policy, filed_status
from terminal.settlement.methods import settlement_day
from terminal.settlement.shelf import PolicyShelf

log = logging.getLogger(__name__)

ONLINE = OfflineDecision(allowed=True, offline=False, message="")


@dataclass(frozen=True)
class OfflineGate:
    """The offline policy as checkout applies it; built only when an upstream is configured."""

    state: UplinkState
    limits: OfflineLimits
    # Set when the gallery is synced from the upstream ([uplink] gallery_trusted_keys): the benefit
    # facts an offline estimate is priced with are then only as fresh as the last gallery delta.
    gallery: GalleryFreshness | None = None


@dataclass(frozen=True)
class Priced:
    """A pre-settlement: the bill, who pays, the engine's result and the state it was priced against."""

    bill: Bill
    person: Person
    result: SettlementResult
    stored_accumulators: Mapping[str, Any]
    # What supervision read: where the year totals came from, the diagnoses and identities (政策找人).
    supervision: SupervisionFacts | None = None

    def as_json(self) -> dict[str, Any]:
        """The pre-settlement as the service and CLI show it (national field names)."""
        return {"psn_no": self.person.psn_no, "chrg_bchno": self.bill.chrg_bchno, **self.result.to_json()}


class StoreCheck(Protocol):
    """What the start-up storage checks found (store/health.py): whether money may be recorded."""

    def require_settleable(self) -> None:
        """Raise the StoreError saying why no settlement may be recorded (a damaged or read-only store)."""
        ...


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
        offline: OfflineGate | None = None,
        store: StoreCheck | None = None,
        history: PersonHistories | None = None,
        supervision_log: SupervisionLog | None = None,
        insured_policies: PolicyShelf | None = None,
    ) -> None:
        self._gallery = gallery
        self._ledger = ledger
        self._policies = policies
        self._insured = insured_policies or PolicyShelf([])
        self._catalog = catalog
        self._terminal = terminal
        self._clock = clock
        self._offline = offline
        self._store = store
        self._history = history
        self._supervision_log = supervision_log

    def price(self, bill: Bill, psn_no: str, *, also_identified: tuple[str, ...] = ()) -> Priced:
        """The patient's share at once: a pre-settlement; nothing is recorded.

        `also_identified` lists the people other proofs in this checkout named (a face where a
        credential identified, or the reverse): any other than `psn_no` is an identity mismatch.
        A refusal by the fund-safety checks is noted for the insurance office before it is raised.
        """
        person = self._gallery.person(psn_no)
        # Insurance status too: a suspended or deceased person is refused by the fund-safety checks.
        benefits = self._gallery.benefits_of(person.psn_no)
        today = self._clock.now().date()
        # A stay is priced on the day it (or its period) ends, with that year's bundle and totals,
        # as what-if prices it (settlement/methods.py); a period that ends after today is not settled.
        day = settlement_day(bill, today)
        if day > today:
            raise PaymentMethodError(f"bill {bill.chrg_bchno}: its stay or period ends {day}, after today")
        stored = self._ledger.accumulators(person.psn_no, day.year)
        # The 异地就医备案 facts came with the gallery delta; another province's patient with no filing
        # that covers this place and day is unfiled (settlement/insured.py).
        here = self._terminal.mdtrtarea_admvs
        choice = choose_policy(
            self._policies,
            self._insured,
            here,
            person.insuplc_admdvs,
            day,
            declared=filed_status(benefits.offsite_filings, here, day),
        )
        facts: SupervisionFacts | None = None
        if self._history is not None:
            local = self._history.local_settlements(person.psn_no, local_since(today))
            facts = supervision_facts(self._history.history_of(person.psn_no), local, day, stored)
        safety = SafetyFacts(
            identity_mismatch=any(other != person.psn_no for other in also_identified),
            bill_already_settled=self._ledger.is_settled(bill.chrg_bchno),
            recent_dispensings=facts.dispensings if facts else (),
            recent_visits=facts.visits if facts else (),
        )
        context = SettlementContext(
            institution_level=self._terminal.institution_level,
            setl_date=day,
            benefits=benefits,
            cross_region=choice.cross_region,
            safety=safety,
            policy_rule=choice.rule,
            # the cause the HIS bill carries (med_type 22); the bundle's injury rule judges it
            injury_cause=bill.injury_cause,
        )
        # With the upstream's history: its year totals plus what this terminal added since (issue 19.10);
        # the ledger still compares the stored row it read (stored) when recording.
        start = facts.start if facts else stored
        try:
            result = presettle(
                bill,
                person,
                Accumulators.from_json(start, day.year),
                choice.bundle,
                self._catalog,
                context,
            )
        except FundSafetyError as exc:
            refused = [{"check": f.check, "action": "block", "message": f.message} for f in exc.findings]
            self._note("refused", person.psn_no, bill.chrg_bchno, refused)
            raise
        return Priced(bill=bill, person=person, result=result, stored_accumulators=stored, supervision=facts)

    def benefit_hints(self, psn_no: str) -> list[dict[str, Any]]:
        """政策找人 for an identified person (the bundle's rules, the delta's facts); each is logged.

        Never raises for want of data: no bundle for today, no history or no opt-in give no hints.
        """
        today = self._clock.now().date()
        try:
            policy = self._policies.for_date(today)
        except PolicyError:
            return []
        person = self._gallery.person(psn_no)
        benefits = self._gallery.benefits_of(psn_no)
        if not benefits.benefit_hints or policy.benefit_hints is None:
            return []
        facts = None
        if self._history is not None:
            local = self._history.local_settlements(psn_no, local_since(today))
            stored = self._ledger.accumulators(psn_no, today.year)
            facts = supervision_facts(self._history.history_of(psn_no), local, today, stored)
        hints = benefit_hints(
            policy.benefit_hints,
            person,
            benefits,
            facts.diagnoses if facts else (),
            facts.identities if facts else (),
            facts.med_types if facts else (),
            today,
        )
        for hint in hints:
            if self._supervision_log is not None:
                self._supervision_log.note(self._clock.now(), "hint", psn_no, "", hint)
        return hints

    def _note(self, kind: str, psn_no: str, chrg_bchno: str, findings: list[dict[str, str]]) -> None:
        if self._supervision_log is not None:
            self._supervision_log.note(self._clock.now(), kind, psn_no, chrg_bchno, {"findings": findings})

    def offline_check(self, priced: Priced) -> OfflineDecision:
        """Whether this pre-settlement may be recorded now, and whether it would be recorded offline."""
        if self._offline is None:
            return ONLINE
        facts = self._offline.state.uplink_facts()
        now = self._clock.now()
        limits = self._offline.limits
        gallery = self._offline.gallery
        synced = facts.last_sync if gallery is None else oldest_sync(facts.last_sync, gallery.last_synced())
        return offline_decision(
            not is_offline(facts, now, limits.offline_after),
            priced.result.setlinfo.medfee_sumamt,
            facts.queued,
            synced,
            now,
            limits,
        )

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Record the confirmed settlement, its accumulators, outbox entry and audit in one transaction."""
        if self._store is not None:
            # Never add settlements to a file that failed its integrity check or a disk that takes no write.
            self._store.require_settleable()
        decision = self.offline_check(priced)
        if not decision.allowed:
            log.info("offline limits: %s declined (%s)", priced.bill.chrg_bchno, decision.message)
            raise OfflineLimitError(
                f"{decision.message}本次未扣费。 The insurance network is unreachable and this settlement is"
                " beyond the offline limits: nothing was charged; please go to the staffed window."
            )
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
                "psn_setlway": priced.bill.psn_setlway,
                "mid_setl_flag": "1" if priced.bill.mid_setl_flag else "0",
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
            offline=decision.offline,
        )
        self._ledger.record(record)
        if priced.result.findings:
            # Settled, but marked for review: the reason goes to the technician page and the report.
            flagged = [f.to_json() for f in priced.result.findings]
            self._note("flagged", person.psn_no, priced.bill.chrg_bchno, flagged)
        log.info(
            "settled %s for %s: msgid %s%s",
            priced.bill.chrg_bchno,
            log_ref(person.psn_no),
            msgid,
            " (offline)" if decision.offline else "",
        )
        return record
