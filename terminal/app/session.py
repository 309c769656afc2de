"""The checkout session over a Terminal: the session's ports, each touching the terminal only when called."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from terminal.app.centre_link import UplinkCentreLink
from terminal.app.terminal import Terminal
from terminal.app.uplink import build_uplink
from terminal.config import PaymentSection
from terminal.domain import Bill, FaceObservation, Frame, IdentityClaim, Match, NoMatch, SettlementRecord
from terminal.pipeline.attempt_limits import PauseRule, TerminalAttempts
from terminal.pipeline.checkout import Priced
from terminal.pipeline.payment import PaymentSaga, PayPolicy
from terminal.pipeline.payment_ports import CentreLink
from terminal.pipeline.session import Session
from terminal.pipeline.session_ports import LivenessFactory, LivenessPort
from terminal.pipeline.sync import reverted_accumulators
from terminal.store.attempts import AttemptJournal
from terminal.store.payments import PaymentStore
from terminal.store.sessions import SessionJournal


class TerminalPorts:
    """The session's ports over a Terminal; each touches the terminal's lazy parts only when called."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """The largest usable face."""
        return self._terminal.face_stage.observe_primary(frame)

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1."""
        return self._terminal.identifier.verify(observation, psn_no)

    def identify(self, observation: FaceObservation, last4: str | None = None) -> Match | NoMatch:
        """1:N (among those whose ID number ends in last4, when given)."""
        return self._terminal.identifier.identify(observation, last4)

    def combine(self, observations: Sequence[FaceObservation]) -> FaceObservation | None:
        """Several frames' faces as one probe."""
        return self._terminal.identifier.combine(observations)

    def by_credential(self, claim: IdentityClaim) -> Match:
        """QR / card / ID."""
        return self._terminal.identifier.by_credential(claim)

    def price(self, bill: Bill, psn_no: str) -> Priced:
        """Pre-settle."""
        return self._terminal.checkout.price(bill, psn_no)

    def settle(self, priced: Priced, match: Match) -> SettlementRecord:
        """Settle."""
        return self._terminal.checkout.settle(priced, match)

    def benefit_hints(self, psn_no: str) -> list[dict[str, Any]]:
        """政策找人 for the identified person."""
        return self._terminal.checkout.benefit_hints(psn_no)

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
    face: bool = True,
) -> Session:
    """The terminal's one checkout session, resumed from the journal if a restart interrupted it.

    Face attempts run the terminal's own liveness stage unless a factory is given (tests, replays);
    face=False (no camera fitted) offers no face and so no typed ID either.
    """
    ports = TerminalPorts(terminal)

    def terminal_liveness() -> LivenessPort:
        return terminal.liveness_stage.session()

    identity = terminal.config.identity
    # A failed liveness attempt is a failed face attempt: the stricter of the two limits applies.
    attempts = min(identity.max_face_attempts, terminal.config.liveness.max_attempts)
    return Session(
        faces=ports,
        identifier=ports,
        checkout=ports,
        ledger=ports,
        journal=SessionJournal(terminal.db),
        clock=terminal.clock,
        limits=terminal_attempts(terminal),
        max_face_attempts=attempts,
        max_credential_attempts=identity.max_credential_attempts,
        timeout=timeout,
        receipt_timeout=receipt_timeout,
        liveness=(liveness or terminal_liveness) if face else None,
        decision_frames=identity.decision_frames,
        payments=payment_saga(terminal),
    )


def payment_saga(terminal: Terminal) -> PaymentSaga | None:
    """The payment saga over the terminal's ledger and gateway; None when no gateway is configured."""
    gateway = terminal.payment_gateway
    if gateway is None:
        return None
    return PaymentSaga(
        PaymentStore(terminal.db), gateway, terminal.clock, reverted_accumulators,
        pay_policy(terminal.config.payment), centre_link(terminal),
    )  # fmt: skip


def pay_policy(section: PaymentSection) -> PayPolicy:
    """How long the patient's payment is waited for, from `[payment]`."""
    # The pages poll a scanned code every userpaying_poll_s; the give-up time becomes a count of polls.
    polls = max(1, math.ceil(section.userpaying_give_up_s / section.userpaying_poll_s))
    return PayPolicy(
        qr_expires_s=section.qr_expires_s, code_polls=polls, counter_fallback=section.counter_fallback,
        poll_s=section.userpaying_poll_s,
    )  # fmt: skip


def centre_link(terminal: Terminal) -> CentreLink | None:
    """The bounded delivery of a settlement's 2207 before charging; None without an upstream (or wait 0)."""
    uplink, wait_s = terminal.config.uplink, terminal.config.payment.binding_wait_s
    url = uplink.url
    if not url or wait_s <= 0:
        return None
    timeout_s = min(wait_s, uplink.timeout_s)

    def known_down() -> bool:
        # With the background sync probing, a known outage is not asked again at every checkout.
        sync = terminal.uplink_sync
        return sync is not None and sync.running() and terminal.outbox.uplink_facts().down_since is not None

    return UplinkCentreLink(
        terminal.outbox,
        lambda: build_uplink(terminal.data_dir, terminal.config.terminal, url, timeout_s),
        terminal.clock, terminal.ledger.allocate_msgid, terminal.uplink_drain, known_down,
    )  # fmt: skip


def terminal_attempts(terminal: Terminal) -> TerminalAttempts:
    """The terminal-wide attempt window over the terminal's attempt journal, as configured."""
    identity = terminal.config.identity
    rule = PauseRule(
        failures=identity.face_pause_failures,
        window=timedelta(seconds=identity.face_pause_window_s),
        pause=timedelta(seconds=identity.face_pause_s),
    )
    return TerminalAttempts(AttemptJournal(terminal.db), terminal.clock, rule)
