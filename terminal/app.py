"""Composition root: builds a terminal from config. The one place that picks adapters."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlite_utils

from firmware_bridge.printer import ReceiptPrinter
from terminal.config import (
    DetectorConfig,
    EmbedderConfig,
    LivenessConfig,
    Profile,
    TerminalConfig,
    TerminalSection,
    UplinkSection,
    models_folder,
)
from terminal.config.models import PACK_TYPES
from terminal.devices import DeviceStatus, ReceiptPrinting
from terminal.domain import Bill, FaceObservation, Frame, IdentityClaim, Match, NoMatch, SettlementRecord
from terminal.errors import ConfigError, ModelMissingError, StoreError
from terminal.pipeline.checkout import Checkout, OfflineGate, Priced
from terminal.pipeline.face import FaceStage
from terminal.pipeline.his_notices import HisNotifier
from terminal.pipeline.identify import Identifier
from terminal.pipeline.liveness import LivenessStage
from terminal.pipeline.offline import OfflineLimits
from terminal.pipeline.session import Session
from terminal.pipeline.session_ports import LivenessFactory, LivenessPort
from terminal.pipeline.sync import Backoff, SyncReport, SyncWorker
from terminal.ports import BillSource, Clock, FaceDetector, FaceEmbedder, Metric
from terminal.settlement import Catalog, load_catalog
from terminal.settlement.bundle import load_trusted_keys
from terminal.settlement.shelf import PolicyShelf, load_shelf
from terminal.store.bill_files import FileBillSource
from terminal.store.db import open_db
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key, read_token
from terminal.store.ledger import SqliteLedger
from terminal.store.notices import NoticeJournal
from terminal.store.outbox import OutboxStore
from terminal.store.prints import PrintJournal
from terminal.store.sessions import SessionJournal
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import sync_gallery
from terminal.uplink.his import HIS_TOKEN_ROLE, HttpBillSource
from terminal.uplink.registration import identity
from terminal.uplink.signing import terminal_key
from terminal.vision.embedder import DlibResnetEmbedder
from terminal.vision.insightface_pack import ArcFaceEmbedder, arcface_embedder, scrfd_detector
from terminal.vision.liveness.depth import DepthCheck, DepthConfig
from terminal.vision.liveness.nir import NirCheck, NirConfig
from terminal.vision.liveness.pack import load_passive
from terminal.vision.liveness.types import LivenessCheck
from terminal.vision.manifest import Manifest, load_manifest, verified_path
from terminal.vision.mtcnn import MtcnnDetector
from terminal.vision.operating_point import OperatingPoint, operating_point
from terminal.vision.operator_pack import find_pack_model
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
    embedder = DlibResnetEmbedder(create_session(verified_path(models_dir, entry), threads), entry.contract())
    embedder.model_id = entry.template_model_id()
    return embedder


def _sface(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    entry = manifest.entry("sface")
    embedder = SFaceEmbedder(create_session(verified_path(models_dir, entry), threads))
    embedder.model_id = entry.template_model_id()
    return embedder


def _scrfd(cfg: DetectorConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceDetector:
    return scrfd_detector(models_dir, cfg.model, threads, cfg.min_score)  # an operator pack's model


def _arcface(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    return arcface_embedder(models_dir, cfg.model, threads)  # an operator pack's model


# Explicit registries keyed by the config's `type`; pydantic's Literal already refused unknown ones.
DETECTORS: dict[str, Callable[[DetectorConfig, Path, Manifest, int], FaceDetector]] = {
    "mtcnn": _mtcnn,
    "scrfd": _scrfd,
}
EMBEDDERS: dict[str, Callable[[EmbedderConfig, Path, Manifest, int], FaceEmbedder]] = {
    "dlib_resnet": _dlib_resnet,
    "sface": _sface,
    "arcface": _arcface,
}
# Each embedder's metric, read from its class so the identifier needs no model loaded to know it.
EMBEDDER_METRICS: dict[str, Metric] = {
    "dlib_resnet": DlibResnetEmbedder.metric,
    "sface": SFaceEmbedder.metric,
    "arcface": ArcFaceEmbedder.metric,
}
# Each embedder type's manifest entry, whose template_model_id() tags the templates it makes.
EMBEDDER_ENTRIES: dict[str, str] = {"dlib_resnet": "dlib_resnet", "sface": "sface"}


def embedder_model_id(config: TerminalConfig) -> str:
    """The model id the configured embedder stamps on templates, from the manifest (loads no model)."""
    entry = load_manifest(models_folder(config)).entry(EMBEDDER_ENTRIES[config.models.embedder.type])
    return entry.template_model_id()


def embedder_operating_point(config: TerminalConfig) -> OperatingPoint:
    """The configured embedder's manifest operating point, tightened (never loosened) by [identity]."""
    kind = config.models.embedder.type
    if kind in PACK_TYPES:
        pack = find_pack_model(models_folder(config), config.models.embedder.model, "arcface").entry
        return operating_point(pack, config.identity, EMBEDDER_METRICS[kind])
    entry = load_manifest(models_folder(config)).entry(kind)
    return operating_point(entry, config.identity, EMBEDDER_METRICS[kind])


def build_face_stage(config: TerminalConfig) -> FaceStage:
    """Detector + quality gate + aligner + embedder from config, with verified models."""
    models_dir = models_folder(config)
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
    def cipher(self) -> TemplateCipher:
        """The template key (KeyFileError when missing, unreadable or too open)."""
        return TemplateCipher(read_key(self.data_dir))

    @cached_property
    def gallery(self) -> SqliteGallery:
        """Enrolled people and their encrypted templates."""
        return SqliteGallery(self.db, self.cipher, self.clock)

    @cached_property
    def outbox(self) -> OutboxStore:
        """Envelopes waiting for the upstream, and the binding results that came back."""
        return OutboxStore(self.db)

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
            models_dir = models_folder(self.config)
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
    def bill_source(self) -> BillSource:
        """Where pending bills come from: the HIS over HTTP, or the demo's bill folder."""
        return build_bill_source(self.config, self.data_dir)

    @cached_property
    def receipts(self) -> ReceiptPrinting | None:
        """The receipt printer's worker, or None when [devices.printer] is not configured."""
        device = self.config.devices.printer
        if device is None:
            return None
        printer = ReceiptPrinter(device.url, baudrate=device.baudrate)
        return ReceiptPrinting(
            printer, PrintJournal(self.data_dir), device, self.clock, self.config.terminal.fixmedins_name
        )

    @cached_property
    def device_status(self) -> DeviceStatus:
        """Probes of the configured readers and printer for the technician page."""
        return DeviceStatus(self.config, self.receipts)

    def his_notifier(self, source: BillSource, retry: timedelta = timedelta(seconds=5)) -> HisNotifier:
        """The worker telling `source` of settled bills, its journal in the terminal database."""
        return HisNotifier(source, NoticeJournal(self.data_dir), self.clock, retry_s=retry.total_seconds())

    @cached_property
    def operating_point(self) -> OperatingPoint:
        """Threshold, metric and 1:N cap in force; ConfigError when [identity] would loosen them."""
        return embedder_operating_point(self.config)

    @cached_property
    def identifier(self) -> Identifier:
        """1:1 and 1:N matching over the gallery, at the embedder's measured operating point or stricter."""
        point = self.operating_point
        return Identifier(
            self.gallery, point.threshold, point.max_gallery_for_1n, point.metric,
            model_id=embedder_model_id(self.config),
        )  # fmt: skip

    @cached_property
    def policies(self) -> PolicyShelf:
        """The verified policy bundles the rule engine prices with, one per year."""
        settlement = self.config.settlement
        trusted = load_trusted_keys(settlement.trusted_keys)
        shelf = load_shelf(settlement.policies, trusted)
        refuse_demo_material(self.config, shelf, trusted)
        return shelf

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
        offline = OfflineGate(self.outbox, offline_limits(uplink), synced_gallery) if uplink.url else None
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


# Key ids of devkit's development signing key: its private half is in the repository, so anything it
# signed proves nothing. Demo mode accepts it; production refuses it (docs/policy-format.md §10).
DEVELOPMENT_KEY_IDS = frozenset({"ac843185968c4980"})


def refuse_development_keys(terminal: TerminalSection, trusted: Mapping[str, bytes], what: str) -> None:
    """ConfigError in production mode when `what`'s trusted keys include the development key."""
    development = sorted(DEVELOPMENT_KEY_IDS & set(trusted))
    if terminal.mode == "production" and development:
        raise ConfigError(
            f"production mode trusts the development key {', '.join(development)} for {what}: "
            'replace it with the region\'s production key, or set [terminal] mode = "demo" on a demo machine'
        )


def refuse_demo_material(config: TerminalConfig, shelf: PolicyShelf, trusted: Mapping[str, bytes]) -> None:
    """ConfigError in production mode for placeholder policy figures or a development signing key."""
    refuse_development_keys(config.terminal, trusted, "policy bundles")
    placeholders = [bundle.bundle_id for bundle in shelf.bundles if bundle.placeholder]
    if config.terminal.mode == "production" and placeholders:
        raise ConfigError(
            f"production mode refuses placeholder policy bundles ({', '.join(placeholders)}): install the "
            'region\'s confirmed bundles, or set [terminal] mode = "demo" on a demo machine'
        )


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
            refuse_development_keys(terminal, trusted, "gallery")
            sync_gallery(db, link, gallery, new_msgid, clock, trusted)
        totals = worker.compare_totals(day) if day and not result.stopped_on else None
    finally:
        link.close()
    return result, totals


def build_bill_source(config: TerminalConfig, data_dir: Path) -> BillSource:
    """The HIS when `[session] his_url` is set (token from <data>/keys/his.token), else the bill folder."""
    session = config.session
    if session.his_url is None:
        return FileBillSource(session.bills)
    token = read_token(data_dir, HIS_TOKEN_ROLE)
    if token is None:
        # Served anyway: QR / card / ID and the pharmacy counter work without the HIS.
        log.error("[session] his_url is set but %s is missing: bill listing will fail", _token_path(data_dir))
    return HttpBillSource(
        session.his_url, token, config.terminal.fixmedins_code, timeout=session.his_timeout_s
    )


def _token_path(data_dir: Path) -> Path:
    return data_dir / "keys" / f"{HIS_TOKEN_ROLE}.token"
