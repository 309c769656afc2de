"""Composition root: builds a terminal from config. The one place that picks adapters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlite_utils

from terminal.config import (
    DetectorConfig,
    EmbedderConfig,
    LivenessConfig,
    Profile,
    TerminalConfig,
    TerminalSection,
    UplinkSection,
)
from terminal.domain import Bill, FaceObservation, Frame, IdentityClaim, Match, NoMatch, SettlementRecord
from terminal.errors import ModelMissingError, StoreError
from terminal.pipeline.checkout import Checkout, OfflineGate, Priced
from terminal.pipeline.face import FaceStage
from terminal.pipeline.identify import Identifier
from terminal.pipeline.liveness import LivenessStage
from terminal.pipeline.session import Session
from terminal.pipeline.session_ports import LivenessFactory, LivenessPort
from terminal.pipeline.sync import Backoff, SyncReport, SyncWorker
from terminal.ports import Clock, FaceDetector, FaceEmbedder, Metric
from terminal.settlement import Catalog, load_catalog
from terminal.settlement.bundle import load_trusted_keys
from terminal.settlement.shelf import PolicyShelf, load_shelf
from terminal.store.db import open_db
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.ledger import SqliteLedger
from terminal.store.outbox import OutboxStore
from terminal.store.sessions import SessionJournal
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import sync_gallery
from terminal.uplink.offline import OfflineLimits
from terminal.uplink.registration import identity
from terminal.uplink.signing import terminal_key
from terminal.vision.embedder import DlibResnetEmbedder
from terminal.vision.liveness.depth import DepthCheck, DepthConfig
from terminal.vision.liveness.nir import NirCheck, NirConfig
from terminal.vision.liveness.pack import load_passive
from terminal.vision.liveness.types import LivenessCheck
from terminal.vision.manifest import Manifest, load_manifest, verified_path
from terminal.vision.mtcnn import MtcnnDetector
from terminal.vision.runtime import create_session
from terminal.vision.sface import SFaceEmbedder

log = logging.getLogger(__name__)


def _mtcnn(cfg: DetectorConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceDetector:
    pnet, rnet, onet = (
        create_session(verified_path(models_dir, manifest.entry(name)), threads)
        for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
    )
    return MtcnnDetector(
        pnet, rnet, onet, min_face_size=cfg.min_face_size, thresholds=cfg.thresholds, min_score=cfg.min_score
    )


def _dlib_resnet(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    entry = manifest.entry("dlib_resnet")
    return DlibResnetEmbedder(create_session(verified_path(models_dir, entry), threads), entry.contract())


def _sface(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    return SFaceEmbedder(create_session(verified_path(models_dir, manifest.entry("sface")), threads))


# Explicit registries keyed by the config's `type`; pydantic's Literal already refused unknown ones.
DETECTORS: dict[str, Callable[[DetectorConfig, Path, Manifest, int], FaceDetector]] = {"mtcnn": _mtcnn}
EMBEDDERS: dict[str, Callable[[EmbedderConfig, Path, Manifest, int], FaceEmbedder]] = {
    "dlib_resnet": _dlib_resnet,
    "sface": _sface,
}
# Each embedder's metric, read from its class so the identifier needs no model loaded to know it.
EMBEDDER_METRICS: dict[str, Metric] = {
    "dlib_resnet": DlibResnetEmbedder.metric,
    "sface": SFaceEmbedder.metric,
}


def build_face_stage(config: TerminalConfig) -> FaceStage:
    """Detector + quality gate + aligner + embedder from config, with verified models."""
    models_dir = config.models_dir()
    manifest = load_manifest(models_dir)
    threads = config.models.intra_op_threads
    detector_cfg = config.models.detector
    detector = DETECTORS[detector_cfg.type](detector_cfg, models_dir, manifest, threads)
    embedder_cfg = config.models.embedder
    embedder = EMBEDDERS[embedder_cfg.type](embedder_cfg, models_dir, manifest, threads)
    return FaceStage(detector, embedder, detector_cfg.min_face_size)


def _no_sensor_checks(cfg: LivenessConfig, nir_detector: FaceDetector | None) -> dict[str, LivenessCheck]:
    return {}


def _depth_checks(cfg: LivenessConfig, nir_detector: FaceDetector | None) -> dict[str, LivenessCheck]:
    d = cfg.depth
    config = DepthConfig(
        max_hole_fraction=d.max_hole_fraction,
        min_plane_rms=d.min_plane_rms,
        min_cylinder_rms=d.min_cylinder_rms,
        min_nose_relief=d.min_nose_relief,
    )
    return {"depth": DepthCheck(config)}


def _nir_checks(cfg: LivenessConfig, nir_detector: FaceDetector | None) -> dict[str, LivenessCheck]:
    n = cfg.nir
    config = NirConfig(
        min_face_level=n.min_face_level,
        min_face_contrast=n.min_face_contrast,
        min_shading=n.min_shading,
        max_fine_texture=n.max_fine_texture,
    )
    return {"nir": NirCheck(config, detector=nir_detector)}


# The sensor checks each hardware profile (`[liveness] profile`) brings; the active challenge runs on
# every profile inside the stage, and fusion fails closed on any required signal that has no check.
LIVENESS_CHECKS: dict[Profile, Callable[[LivenessConfig, FaceDetector | None], dict[str, LivenessCheck]]] = {
    "rgb": _no_sensor_checks,
    "rgb+nir": _nir_checks,
    "rgb+depth": _depth_checks,
}


def liveness_checks(
    cfg: LivenessConfig, passive: LivenessCheck | None = None, nir_detector: FaceDetector | None = None
) -> dict[str, LivenessCheck]:
    """The checks a liveness stage runs for this profile, plus the passive model when provisioned."""
    checks = LIVENESS_CHECKS[cfg.profile](cfg, nir_detector)
    if passive is not None:
        checks[passive.name] = passive
    return checks


def uplink_backoff(section: UplinkSection) -> Backoff:
    """The sync worker's retry backoff from the `[uplink]` section."""
    return Backoff(base=section.backoff_base_s, cap=section.backoff_cap_s, max_attempts=section.max_attempts)


def offline_limits(section: UplinkSection) -> OfflineLimits:
    """The offline policy's limits from the `[uplink]` section."""
    return OfflineLimits(
        max_amount=section.offline_max_amount,
        max_count=section.offline_max_count,
        max_age=timedelta(hours=section.offline_max_age_h),
        offline_after=timedelta(seconds=section.offline_after_s),
    )


@dataclass
class Terminal:
    """Everything a running terminal needs, built lazily so each command loads only what it uses."""

    config: TerminalConfig
    data_dir: Path
    clock: Clock
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """The terminal database."""
        db = open_db(self.data_dir)
        self._closers.append(db.close)
        return db

    @cached_property
    def gallery(self) -> SqliteGallery:
        """Enrolled people and their encrypted templates."""
        return SqliteGallery(self.db, TemplateCipher(read_key(self.data_dir)), self.clock)

    @cached_property
    def ledger(self) -> SqliteLedger:
        """Settlements, accumulators, outbox and audit."""
        return SqliteLedger(self.db, self.config.terminal.fixmedins_code, self.clock)

    @cached_property
    def face_stage(self) -> FaceStage:
        """Detector + quality gate + aligner + embedder, with verified models."""
        return build_face_stage(self.config)

    @cached_property
    def liveness_stage(self) -> LivenessStage:
        """Presentation-attack checks fused for this kiosk's hardware profile (fail closed)."""
        cfg = self.config.liveness
        passive = None
        if cfg.passive.enabled:
            models_dir = self.config.models_dir()
            try:
                passive = load_passive(
                    models_dir, load_manifest(models_dir), self.config.models.intra_op_threads,
                    cfg.passive.real_threshold,
                )  # fmt: skip
            except ModelMissingError as exc:
                # the passive check stays required: every attempt now fails closed, and doctor says why
                log.error("liveness pack unavailable: %s", exc)
        return LivenessStage(cfg, self.face_stage.detector, self.clock, liveness_checks(cfg, passive))

    @cached_property
    def identifier(self) -> Identifier:
        """1:1 and 1:N matching over the gallery."""
        identity = self.config.identity
        metric = EMBEDDER_METRICS[self.config.models.embedder.type]
        return Identifier(self.gallery, identity.threshold, identity.max_gallery_for_1n, metric)

    @cached_property
    def policies(self) -> PolicyShelf:
        """The verified policy bundles the rule engine prices with, one per year."""
        settlement = self.config.settlement
        return load_shelf(settlement.policies, load_trusted_keys(settlement.trusted_keys))

    @cached_property
    def catalog(self) -> Catalog:
        """The medical-insurance catalogue."""
        return load_catalog(self.config.settlement.catalog)

    @cached_property
    def checkout(self) -> Checkout:
        """Pricing and settling bills; the offline limits apply only when an upstream is configured."""
        uplink = self.config.uplink
        # No [uplink] url (the embedded demo default): there is nothing to be offline from. With a gallery
        # synced from the upstream, its age counts against the offline limits too.
        synced_gallery = self.gallery if uplink.gallery_trusted_keys is not None else None
        offline = (
            OfflineGate(OutboxStore(self.db), offline_limits(uplink), synced_gallery) if uplink.url else None
        )
        return Checkout(
            gallery=self.gallery,
            ledger=self.ledger,
            policies=self.policies,
            catalog=self.catalog,
            terminal=self.config.terminal,
            clock=self.clock,
            offline=offline,
        )

    def close(self) -> None:
        """Release the database."""
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()


def build_terminal(config: TerminalConfig, data_dir: Path, clock: Clock) -> Terminal:
    """A terminal over the given config and state folder."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot use data folder {data_dir}: {exc.strerror}") from exc
    return Terminal(config=config, data_dir=data_dir, clock=clock)


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

    def identify(self, observation: FaceObservation) -> Match | NoMatch:
        """1:N."""
        return self._terminal.identifier.identify(observation)

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
    ports = TerminalPorts(terminal)

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
        decision_frames=terminal.config.identity.decision_frames,
    )


def build_uplink(data_dir: Path, terminal: TerminalSection, url: str, timeout_s: float = 10.0) -> HttpUplink:
    """An HTTP uplink signing with this terminal's key (created under data_dir on first use)."""
    return HttpUplink(url, terminal_key(data_dir), identity(terminal), timeout=timeout_s)


def register_terminal(
    data_dir: Path, terminal: TerminalSection, url: str, at: datetime, msgid: str, timeout_s: float = 10.0
) -> dict[str, Any]:
    """9000: register this terminal (id, institution, area, public key) with the upstream; idempotent."""
    link = build_uplink(data_dir, terminal, url, timeout_s)
    try:
        return link.register(msgid, at)
    finally:
        link.close()


def sync_once(
    db: sqlite_utils.Database,
    data_dir: Path,
    terminal: TerminalSection,
    section: UplinkSection,
    clock: Clock,
    new_msgid: Callable[[datetime], str],
    url: str | None = None,
    day: str | None = None,
    backoff: Backoff | None = None,
) -> tuple[SyncReport, dict[str, Any] | None]:
    """Drain the outbox, then pull the gallery delta (when configured) and compare `day`'s totals."""
    target = url or section.url
    if not target:
        raise ValueError("no upstream URL: set [uplink] url or pass --upstream")
    link = build_uplink(data_dir, terminal, target, section.timeout_s)
    try:
        worker = SyncWorker(
            OutboxStore(db),
            link,
            clock,
            new_msgid,
            batch=section.batch,
            backoff=backoff or uplink_backoff(section),
            sleep=time.sleep,
        )
        result = worker.drain()
        # Settlements first: the gallery waits for a drain that got through, and a refused delta
        # (GalleryDeltaError) is raised only after the outbox has been delivered and recorded.
        if section.gallery_trusted_keys is not None and not result.stopped_on:
            gallery = SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock)
            trusted = load_trusted_keys(section.gallery_trusted_keys)
            sync_gallery(db, link, gallery, new_msgid, clock, trusted)
        totals = worker.compare_totals(day) if day and not result.stopped_on else None
    finally:
        link.close()
    return result, totals
