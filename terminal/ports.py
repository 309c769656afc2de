"""Protocols the pipeline depends on; adapters implement them, unit tests fake them.

Nothing here imports onnxruntime, serial, sqlite or httpx.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from terminal.domain import (
    Bill,
    Consent,
    DepthFrame,
    FaceBox,
    FaceObservation,
    Frame,
    IdentityClaim,
    LocalSettlement,
    Match,
    NoMatch,
    OutboxEntry,
    PendingBill,
    Person,
    PersonBenefits,
    PersonHistory,
    SensorFrame,
    SettledNotice,
    SettlementRecord,
    UplinkFacts,
    UplinkReply,
)
from terminal.payment_types import GatewayBillLine, PayOrder, PayOutcome, RefundOutcome

# (stored accumulators, the refused settlement's stored result) -> accumulators with it taken back out.
Revert = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]


class Clock(Protocol):
    """Source of the current time (injected so tests and the rule engine never read the wall clock)."""

    def now(self) -> datetime:
        """Current local time, timezone-aware."""
        ...


class Camera(Protocol):
    """The kiosk's camera, held by the terminal: delivers captures, never accepts them from a client."""

    def read(self) -> SensorFrame:
        """The next capture (RGB, plus NIR and depth when fitted); DeviceError when gone or ended."""
        ...

    def set_cue(self, cue: str | None) -> None:
        """The challenge's current cue (centre, turn_left, ...); real cameras ignore it."""
        ...

    def close(self) -> None:
        """Release the device; read() raises DeviceError afterwards."""
        ...

    def describe(self) -> dict[str, str]:
        """kind, url (credentials redacted) and state, for the technician page and logs."""
        ...


class DepthCamera(Protocol):
    """A depth sensor registered to the RGB camera (a vendor SDK, or synthetic for demos)."""

    def depth_for(self, rgb: Frame) -> DepthFrame:
        """The depth map of the instant `rgb` was captured, on its pixel grid; DeviceError when gone."""
        ...

    def close(self) -> None:
        """Release the sensor."""
        ...


class FaceDetector(Protocol):
    """Finds faces and their five landmarks in a BGR image."""

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Return faces, best score first."""
        ...


# A pixel rectangle (x1, y1, x2, y2), half-open, inside an image.
Region = tuple[int, int, int, int]


@runtime_checkable
class RegionDetector(Protocol):
    """A detector that can also look inside one region of an image (a face tracked between frames)."""

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Return faces, best score first."""
        ...

    def detect_in(self, image: NDArray[np.uint8], region: Region) -> list[FaceBox]:
        """Faces inside `region`, in the whole image's coordinates, best score first."""
        ...


# How templates compare: "euclidean" is a distance (smaller = closer), "cosine" a similarity (larger =
# closer).
Metric = Literal["euclidean", "cosine"]


class FaceEmbedder(Protocol):
    """Turns aligned face chips into templates."""

    chip_size: int
    # the five landmark positions, in chip pixels, the chip is aligned to (the model's training template)
    template: NDArray[np.float64]
    metric: Metric
    # which model made its templates (the manifest entry's template_model_id(), set by the composition
    # root): templates of different models are never compared
    model_id: str

    def embed(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        """Map N RGB chips (N×S×S×3 uint8) to N×D float32 templates."""
        ...


class LivenessCheck(Protocol):
    """Decides whether a face presentation is a live person."""

    name: str

    def check(self, frames: Sequence[Frame], box: FaceBox) -> float:
        """Return a liveness score in [0, 1]; higher is more likely live."""
        ...


class Gallery(Protocol):
    """Enrolled, consenting people and their templates (decrypted only in memory)."""

    def enroll(
        self, person: Person, consent: Consent, templates: Sequence[NDArray[np.float32]], model_id: str
    ) -> None:
        """Store a person with consent and the templates model_id made, encrypted at rest."""
        ...

    def templates_of(self, psn_no: str, model_id: str) -> list[NDArray[np.float32]]:
        """One person's templates of model_id; UnknownPersonError (NotEnrolledForModelError) when none."""
        ...

    def all_templates(self, model_id: str) -> tuple[list[str], NDArray[np.float32]]:
        """Every template of model_id with its owner, as (owners, N×D matrix)."""
        ...

    def person(self, psn_no: str) -> Person:
        """One person's record; UnknownPersonError when absent."""
        ...

    def person_by_claim(self, claim: IdentityClaim) -> Person:
        """Resolve a credential to a person; UnknownPersonError when absent."""
        ...

    def benefits_of(self, psn_no: str) -> PersonBenefits:
        """门特 filings, assistance category, insurance status; defaults when none were recorded."""
        ...


class FaceIndex(Protocol):
    """The running model's templates held for 1:N search, current with the gallery's enrolments.

    A bucket is the last four characters of the ID number (the second factor of a large gallery).
    """

    def people(self, bucket: str | None = None) -> int:
        """People searchable, in one bucket when given."""
        ...

    def search(self, probe: NDArray[np.float32], bucket: str | None = None) -> list[tuple[str, float]]:
        """The best and second-best people (at most two), best first, with their exact scores."""
        ...


class GalleryFreshness(Protocol):
    """When the local gallery (and the benefit facts it carries) last took an upstream delta."""

    def last_synced(self) -> datetime | None:
        """Time the last gallery delta was applied, None if never."""
        ...


class PersonHistories(Protocol):
    """The upstream's history of a person (gallery delta) and this terminal's own settlements of them."""

    def history_of(self, psn_no: str) -> PersonHistory | None:
        """The last history the upstream sent for the person, None if none."""
        ...

    def local_settlements(self, psn_no: str, since: date) -> list[LocalSettlement]:
        """This terminal's settlements of the person since a day (standing or not), oldest first."""
        ...


class SupervisionLog(Protocol):
    """Where fund-supervision refusals and 政策找人 hints are kept for the hospital's insurance office."""

    def note(self, at: datetime, kind: str, psn_no: str, chrg_bchno: str, detail: Mapping[str, Any]) -> None:
        """Record one event (kind: refused, flagged or hint) in its own transaction."""
        ...


class Reader(Protocol):
    """A credential reader (QR scanner, card reader) that yields identity claims."""

    def poll(self, timeout: float) -> IdentityClaim | None:
        """Wait up to timeout seconds for the next claim."""
        ...


class FacePort(Protocol):
    """Turns a frame into the face of the person at the kiosk."""

    def observe_primary(self, frame: Frame) -> FaceObservation:
        """The largest usable face; NoFaceError when there is none."""
        ...


class IdentifyPort(Protocol):
    """Decides who a face or credential is."""

    def verify(self, observation: FaceObservation, psn_no: str) -> Match | NoMatch:
        """1:1 against a claim."""
        ...

    def identify(self, observation: FaceObservation, last4: str | None = None) -> Match | NoMatch:
        """1:N over the consented gallery, or over those whose ID number ends in last4.

        SecondFactorRequiredError when the gallery is above the 1:N cap and no last4 was given.
        """
        ...

    def combine(self, observations: Sequence[FaceObservation]) -> FaceObservation | None:
        """One probe from several frames of an attempt; None when they do not show one face."""
        ...

    def by_credential(self, claim: IdentityClaim) -> Match:
        """From a QR / card / ID claim alone."""
        ...


class Ledger(Protocol):
    """Durable record of settlements with their outbox entries and audit trail."""

    def allocate_msgid(self, at: datetime) -> str:
        """A new 30-character msgid: fixmedins_code + yyyyMMddHHmmss + 4-digit sequence."""
        ...

    def accumulators(self, psn_no: str, year: int) -> Mapping[str, Any]:
        """The stored year-to-date accumulator state of a person ({} when none)."""
        ...

    def is_settled(self, chrg_bchno: str) -> bool:
        """Whether this bill already has a recorded settlement."""
        ...

    def record(self, record: SettlementRecord) -> None:
        """Write settlement, accumulators, outbox entry and audit record in one transaction."""
        ...


class Outbox(Protocol):
    """The outbox as the sync worker drains it; each method that writes is one transaction."""

    def pending(self, limit: int) -> list[OutboxEntry]:
        """Undelivered entries, oldest first."""
        ...

    def note_attempt(self, seq: int, error: str, outcome_unknown: bool) -> None:
        """Count a failed attempt; remember an unknown outcome so the next attempt asks first."""
        ...

    def local_setlinfo(self, msgid: str) -> Mapping[str, Any] | None:
        """The terminal's own estimate for a settlement, None when the msgid is not a settlement."""
        ...

    def deliver(
        self,
        entry: OutboxEntry,
        inf_refmsgid: str,
        output: Mapping[str, Any],
        local: Mapping[str, Any] | None,
        at: datetime,
    ) -> list[tuple[str, str, str]]:
        """Mark delivered with the binding output; return (field, local, upstream) for each difference."""
        ...

    def refuse(self, entry: OutboxEntry, reason: str, at: datetime, revert: Revert) -> bool:
        """Set a refused entry aside and take its settlement out of the accumulators; True if it had one."""
        ...

    def park(self, entry: OutboxEntry, reason: str, at: datetime) -> None:
        """Set an entry no retry can deliver aside for a technician; its person's later entries wait."""
        ...

    def note_failure(self, at: datetime, error: str) -> int:
        """A delivery or probe failed: offline from now; unconfirmed settlements marked offline (count)."""
        ...

    def note_contact(self, at: datetime, synced: bool) -> None:
        """The upstream answered at `at`; `synced` when the whole outbox has just been delivered."""
        ...

    def local_totals(self, day: str) -> dict[str, str]:
        """3201 input totals for one day (yyyy-mm-dd) from the local estimates."""
        ...

    def keep_totals(
        self, day: str, stmt_rslt: str, local: Mapping[str, Any], upstream: Mapping[str, Any], at: datetime
    ) -> None:
        """Store one day's 3201 verdict beside both sides' totals."""
        ...


class UplinkState(Protocol):
    """What checkout needs to know about the upstream to apply the offline limits."""

    def uplink_facts(self) -> UplinkFacts:
        """Queue size and age, last answer from the upstream, last complete sync."""
        ...


class Uplink(Protocol):
    """The upstream settlement platform, as the sync worker uses it (terminal/uplink/client.py)."""

    sign_no: str

    def sign_in(self, msgid: str, at: datetime) -> str:
        """9001: register the terminal's key and return the sign_no."""
        ...

    def call(self, envelope: Mapping[str, Any]) -> UplinkReply:
        """Send one envelope; the accepted reply, or an UplinkError."""
        ...

    def query(self, msgid: str, omsgid: str, at: datetime) -> dict[str, Any] | None:
        """The stored response to an original msgid, None when the upstream never committed it."""
        ...

    def daily_totals(self, msgid: str, totals: Mapping[str, str], at: datetime) -> dict[str, Any]:
        """3201: compare one day's totals."""
        ...


class EcTokenResolver(Protocol):
    """Resolves a scanned 医保电子凭证 QR token to its person (online at the upstream; demo: a table)."""

    def resolve(self, token: str) -> IdentityClaim:
        """The claim with psn_no set; EcTokenError (expired, used, unknown, unavailable) otherwise."""
        ...


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


class PaymentGateway(Protocol):
    """The aggregated-payment gateway for the cash share (docs/payment.md); outcomes learnt by query only.

    Every call raises PaymentUnavailableError when nothing reached the gateway and
    PaymentUnknownOutcomeError when the request may have been processed (query before anything else).
    """

    def create_qr(self, order: PayOrder, expires_s: int) -> PayOutcome:
        """主扫: create (or, for the same out_trade_no, return) an order; state NOTPAY with code_url."""
        ...

    def micropay(self, order: PayOrder, auth_code: str) -> PayOutcome:
        """被扫: charge a scanned payment code; SUCCESS, USERPAYING (poll) or PaymentDeclinedError."""
        ...

    def query(self, out_trade_no: str) -> PayOutcome:
        """The order's state now (NOTFOUND when the gateway never created it)."""
        ...

    def cancel(self, out_trade_no: str) -> PayOutcome:
        """Close an unpaid order or reverse (撤销) a paid one; CLOSED or REVOKED, idempotent."""
        ...

    def refund(self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int) -> RefundOutcome:
        """Refund part or all of a paid order, idempotent on out_refund_no."""
        ...

    def refund_query(self, out_refund_no: str) -> RefundOutcome:
        """A refund's state now."""
        ...

    def bill(self, day: date) -> list[GatewayBillLine]:
        """The gateway's payments and refunds for one day (Asia/Shanghai), for reconciliation."""
        ...
