"""The reader worker: QR scans and card insertions identify the patient, barcode scans fill the basket.

One thread per configured reader polls it through a small port (the app layer adapts the
firmware_bridge readers to these), so the pipeline never touches a serial port. A scan the session
cannot take now (e.g. the bill is already priced) is ignored with a reason the technician sees; an
error costs that one scan, never the worker; a reader's unplug and replug show in its state.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from terminal.domain import IdentityClaim
from terminal.errors import SessionStateError, TerminalError
from terminal.pipeline.basket import BasketLine, CounterBasket
from terminal.ports import Clock

log = logging.getLogger(__name__)

ReadingT = TypeVar("ReadingT")
ReadingT_contra = TypeVar("ReadingT_contra", contravariant=True)
ReadingT_co = TypeVar("ReadingT_co", covariant=True)

CHALLENGE_BYTES = 32  # the card protocol takes 16-64 bytes; the root passes its own size
# States in which a credential may identify: the session starts itself from idle on a credential.
ACCEPTING_STATES = frozenset({"idle", "identifying"})


# ---- ports ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkState:
    """A reader's connection as its link last saw it."""

    url: str
    connected: bool
    reconnects: int
    last_error: str | None = None
    frames_ok: int = 0
    frames_rejected: int = 0
    dropped: int = 0


class ReaderDevice(Protocol):
    """What every reader offers the worker besides its scans: start, close and link state."""

    def start(self) -> object:
        """Start reading (the port is opened, and reopened after an unplug, in the background)."""
        ...

    def close(self) -> None:
        """Stop reading and release the port."""
        ...

    def link_state(self) -> LinkState:
        """Connection state and counters."""
        ...


class QrScans(ReaderDevice, Protocol):
    """A source of 医保电子凭证 QR scans (repeats of one scan already dropped)."""

    def next_token(self, timeout: float) -> str | None:
        """The next scanned ecToken, waiting up to timeout seconds; None when none came."""
        ...


class CardSlot(ReaderDevice, Protocol[ReadingT_co]):
    """A card reader: tells of each newly inserted card, then reads it answering a challenge."""

    def next_insertion(self, timeout: float) -> bool:
        """Whether a new card was inserted, waiting up to timeout seconds."""
        ...

    def read_card(self, challenge: bytes) -> ReadingT_co | None:
        """The card's answer to `challenge`; None when the slot is empty again."""
        ...


@dataclass(frozen=True)
class BarcodeScan:
    """One barcode scan: its basket line when the catalogue knows the code, else why not."""

    code: str
    line: BasketLine | None = None
    problem: str | None = None
    payment: bool = False  # a patient's payment code (付款码): it pays the checkout, never the basket


class BarcodeScans(ReaderDevice, Protocol):
    """A source of pharmacy barcode scans, already looked up in the catalogue."""

    def next_scan(self, timeout: float) -> BarcodeScan | None:
        """The next scan, waiting up to timeout seconds; None when none came."""
        ...


class EcTokenResolver(Protocol):
    """Resolves a scanned ecToken to a proven claim (psn_no set) through the upstream."""

    def resolve(self, token: str) -> IdentityClaim:
        """The claim the token proves; a TerminalError when the upstream refuses it."""
        ...


class CardVerifier(Protocol[ReadingT_contra]):
    """Checks a card's answer to the challenge the terminal sent and names its holder."""

    def verify_card(self, reading: ReadingT_contra, challenge: bytes) -> IdentityClaim:
        """The proven claim (psn_no set); a TerminalError when the answer does not verify."""
        ...


class CredentialSession(Protocol):
    """The part of the checkout session a reader drives."""

    def view(self) -> dict[str, Any]:
        """The patient's view; its "state" says whether a credential is wanted now."""
        ...

    def identify_credential(self, claim: IdentityClaim) -> dict[str, Any]:
        """Identify by a proven claim; SessionStateError when the session is not identifying."""
        ...

    def credential_refused(self, method: str, reason: str) -> dict[str, Any]:
        """A scanned or inserted credential did not prove possession: the patient is told, it counts."""
        ...


class CodePayer(Protocol):
    """The session's payment-code step (pipeline/session_paying.py) as the barcode reader drives it."""

    def payment_due(self) -> str | None:
        """The settlement whose cash share is awaited, or None."""
        ...

    def pay_scanned_code(self, auth_code: str) -> dict[str, Any]:
        """Charge a scanned payment code for the awaited payment."""
        ...


def masked(code: str) -> str:
    """A payment code as notes and logs may show it: never whole."""
    return f"{code[:4]}…{code[-2:]} ({len(code)} digits)"


# ---- the worker ----------------------------------------------------------------------------------


class _Ignored(Exception):
    """A scan the worker drops on purpose, with the reason it notes (control flow only)."""


@dataclass
class _Channel:
    """One reader's thread and what the technician page shows about it."""

    name: str
    device: ReaderDevice
    step: Callable[[float], str | None]
    thread: threading.Thread | None = None
    events: int = 0
    last_event: str | None = None
    last_event_at: str | None = None
    seen: tuple[bool, int] | None = None  # (connected, reconnects) as last reported


@dataclass(frozen=True)
class _Note:
    at: str
    reader: str
    text: str


@dataclass
class _Wiring:
    """What the scans feed; absent parts make their reader's scans ignored with a note."""

    session: CredentialSession
    basket: CounterBasket | None
    resolver: EcTokenResolver | None
    verifier: CardVerifier[Any] | None
    challenge: Callable[[int], bytes] = field(default=secrets.token_bytes)
    challenge_size: int = CHALLENGE_BYTES
    payer: CodePayer | None = None


class ReaderWorker:
    """Turns the configured readers' scans into session events and basket lines, on its own threads."""

    def __init__(
        self,
        session: CredentialSession,
        clock: Clock,
        *,
        basket: CounterBasket | None = None,
        qr: QrScans | None = None,
        resolver: EcTokenResolver | None = None,
        card: CardSlot[ReadingT] | None = None,
        verifier: CardVerifier[ReadingT] | None = None,
        barcode: BarcodeScans | None = None,
        payer: CodePayer | None = None,
        poll_s: float = 0.2,
        challenge: Callable[[int], bytes] = secrets.token_bytes,
        challenge_size: int = CHALLENGE_BYTES,
        max_notes: int = 50,
    ) -> None:
        self._wiring = _Wiring(session, basket, resolver, verifier, challenge, challenge_size, payer)
        self._clock = clock
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._notes: deque[_Note] = deque(maxlen=max_notes)
        self._stop = threading.Event()
        self._running = False
        self._channels: list[_Channel] = []
        if qr is not None:
            self._channels.append(_Channel("qr", qr, lambda t: self._qr_step(qr, t)))
        if card is not None:
            self._channels.append(_Channel("card", card, lambda t: self._card_step(card, t)))
        if barcode is not None:
            self._channels.append(_Channel("barcode", barcode, lambda t: self._barcode_step(barcode, t)))

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every reader and its thread; a reader that is not plugged in is retried in the background."""
        with self._lock:
            if self._running:
                return
            self._running = True
            self._stop.clear()
        for channel in self._channels:
            channel.device.start()
            channel.thread = threading.Thread(
                target=self._run, args=(channel,), name=f"reader:{channel.name}", daemon=True
            )
            channel.thread.start()
        log.info("reader worker started: %s", ", ".join(c.name for c in self._channels) or "no readers")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads, then the readers."""
        self._stop.set()
        for channel in self._channels:
            if channel.thread is not None:
                channel.thread.join(timeout)
                channel.thread = None
            channel.device.close()
        with self._lock:
            self._running = False
            self._bump()

    # ---- read side -------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases on every event, note and connection change."""
        return self._version

    def wait_for_change(self, since: int, timeout: float) -> int:
        """Block up to timeout seconds for a version newer than `since`; return the current version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != since, timeout)
            return self._version

    def state(self) -> dict[str, Any]:
        """Per reader: url, connected, reconnects, last event; and the recent notes, newest first."""
        with self._lock:
            readers = [self._reader_state(channel) for channel in self._channels]
            notes = [{"at": n.at, "reader": n.reader, "text": n.text} for n in reversed(self._notes)]
            return {"version": self._version, "running": self._running, "readers": readers, "notes": notes}

    def link_states(self) -> Mapping[str, LinkState]:
        """Each held reader's link state by reader name (qr, card, barcode)."""
        return {channel.name: channel.device.link_state() for channel in self._channels}

    @property
    def running(self) -> bool:
        """Whether the readers are held (started and not stopped)."""
        return self._running

    # ---- internals -------------------------------------------------------------------------------

    def _run(self, channel: _Channel) -> None:
        while not self._stop.is_set():
            try:
                event = channel.step(self._poll_s)
            except _Ignored as ignored:
                self._event(channel, f"ignored: {ignored}", note=True)
            except Exception as exc:
                # The thread boundary: a reader or resolver bug costs this scan, never the reader.
                log.exception("reader %s: scan handling failed", channel.name)
                self._event(channel, f"error: {type(exc).__name__}: {exc}", note=True)
                self._stop.wait(self._poll_s)  # a reader failing at once on every poll must not spin
            else:
                if event is not None:
                    self._event(channel, event)
            self._watch_link(channel)

    def _watch_link(self, channel: _Channel) -> None:
        try:
            link = channel.device.link_state()
        except Exception:
            log.exception("reader %s: link state failed", channel.name)
            return
        seen = (link.connected, link.reconnects)
        if seen == channel.seen:
            return
        channel.seen = seen
        if link.connected:
            text = "reconnected" if link.reconnects else "connected"
        else:
            text = f"disconnected: {link.last_error}" if link.last_error else "disconnected"
        log.info("reader %s (%s): %s", channel.name, link.url, text)
        self._note(channel.name, text)

    def _reader_state(self, channel: _Channel) -> dict[str, Any]:
        try:
            link: LinkState | None = channel.device.link_state()
        except Exception as exc:  # the page must render even when one reader misbehaves
            log.exception("reader %s: link state failed", channel.name)
            link, error = None, f"{type(exc).__name__}: {exc}"
        return {
            "name": channel.name,
            "url": link.url if link else None,
            "connected": link.connected if link else False,
            "reconnects": link.reconnects if link else 0,
            "last_error": link.last_error if link else error,
            "frames_ok": link.frames_ok if link else 0,
            "frames_rejected": link.frames_rejected if link else 0,
            "dropped": link.dropped if link else 0,
            "events": channel.events,
            "last_event": channel.last_event,
            "last_event_at": channel.last_event_at,
        }

    def _event(self, channel: _Channel, text: str, note: bool = False) -> None:
        at = self._clock.now().isoformat()
        with self._lock:
            channel.events += 1
            channel.last_event, channel.last_event_at = text, at
            if note:
                self._notes.append(_Note(at, channel.name, text))
            self._bump()
        if note:
            log.warning("reader %s: %s", channel.name, text)

    def _note(self, reader: str, text: str) -> None:
        with self._lock:
            self._notes.append(_Note(self._clock.now().isoformat(), reader, text))
            self._bump()

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()

    def _require_identifying(self, what: str) -> None:
        state = self._wiring.session.view().get("state")
        if state not in ACCEPTING_STATES:
            raise _Ignored(f"{what} while the checkout is {state}, not identifying")

    def _refused(self, method: str, exc: TerminalError) -> None:
        """Tell the session (the patient's screen, the terminal-wide window) a credential was refused."""
        # The checkout may have moved on meanwhile: then there is nothing to tell it.
        with contextlib.suppress(SessionStateError):
            self._wiring.session.credential_refused(method, exc.code)

    def _identify(self, what: str, claim: IdentityClaim) -> str:
        if claim.psn_no is None:
            raise _Ignored(f"{what}: the credential was not proven (no psn_no)")
        try:
            view = self._wiring.session.identify_credential(claim)
        except SessionStateError as exc:
            raise _Ignored(f"{what}: {exc}") from None
        return f"{what} → {view.get('state')} ({view.get('result') or '-'})"

    def _qr_step(self, qr: QrScans, timeout: float) -> str | None:
        token = qr.next_token(timeout)
        if token is None:
            return None
        # Checked before resolving: upstream tokens are single-use, so a scan nobody can use now
        # must not spend the patient's token.
        self._require_identifying("QR scan")
        resolver = self._wiring.resolver
        if resolver is None:
            raise _Ignored("QR scan: no ecToken resolver is configured on this terminal")
        try:
            claim = resolver.resolve(token)
        except TerminalError as exc:
            self._refused("qr", exc)
            raise _Ignored(f"QR scan not accepted ({exc.code}): {exc}") from None
        return self._identify("QR scan", claim)

    def _card_step(self, card: CardSlot[Any], timeout: float) -> str | None:
        if not card.next_insertion(timeout):
            return None
        self._require_identifying("card")
        verifier = self._wiring.verifier
        if verifier is None:
            raise _Ignored("card: no card verifier is configured on this terminal")
        # A fresh challenge per read: a recorded answer to an earlier one proves nothing.
        challenge = self._wiring.challenge(self._wiring.challenge_size)
        reading = card.read_card(challenge)
        if reading is None:
            raise _Ignored("card: removed before it could be read")
        try:
            claim = verifier.verify_card(reading, challenge)
        except TerminalError as exc:
            self._refused("card", exc)
            raise _Ignored(f"card not accepted ({exc.code}): {exc}") from None
        return self._identify("card", claim)

    def _barcode_step(self, barcode: BarcodeScans, timeout: float) -> str | None:
        scan = barcode.next_scan(timeout)
        if scan is None:
            return None
        if scan.payment:
            return self._pay_step(scan.code)
        basket = self._wiring.basket
        if basket is None:
            raise _Ignored(f"barcode {scan.code}: no counter basket on this terminal")
        if scan.line is None:
            problem = scan.problem or "not in the catalogue"
            basket.notice(f"扫码未识别 Scan not recognised: {scan.code} ({problem})")
            raise _Ignored(f"barcode {scan.code}: {problem}")
        snapshot = basket.add(scan.line)
        return f"barcode {scan.code} added to basket {snapshot['chrg_bchno']}"

    def _pay_step(self, code: str) -> str:
        # A payment code pays the checkout awaiting payment; it never becomes a basket line.
        payer = self._wiring.payer
        shown = masked(code)
        if payer is None or payer.payment_due() is None:
            raise _Ignored(f"payment code {shown}: no payment is awaited")
        try:
            view = payer.pay_scanned_code(code)
        except TerminalError as exc:
            raise _Ignored(f"payment code {shown} not charged ({exc.code}): {exc}") from None
        payment = view.get("payment") or (view.get("receipt") or {}).get("payment") or {}
        return f"payment code {shown} → {view.get('state')} ({payment.get('state', '-')})"
