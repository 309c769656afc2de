"""Composition root: builds a terminal from config. The one place that picks adapters."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import sqlite_utils

from terminal.config import DetectorConfig, EmbedderConfig, TerminalConfig
from terminal.errors import ModelMissingError, StoreError
from terminal.pipeline.checkout import Checkout, OfflineGate
from terminal.pipeline.face import FaceStage
from terminal.pipeline.identify import Identifier
from terminal.pipeline.liveness import LivenessStage
from terminal.ports import Clock, FaceDetector, FaceEmbedder
from terminal.settlement import Catalog
from terminal.settlement.shelf import PolicyShelf
from terminal.store.db import open_db
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.ledger import SqliteLedger
from terminal.store.outbox import OutboxStore
from terminal.store.policy_files import load_catalog, load_shelf, load_trusted_keys
from terminal.vision.embedder import DlibResnetEmbedder
from terminal.vision.liveness.pack import load_passive
from terminal.vision.manifest import Manifest, load_manifest, verified_path
from terminal.vision.mtcnn import MtcnnDetector
from terminal.vision.runtime import create_session

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
    return DlibResnetEmbedder(
        create_session(verified_path(models_dir, manifest.entry("dlib_resnet")), threads)
    )


# Explicit registries keyed by the config's `type`; pydantic's Literal already refused unknown ones.
DETECTORS: dict[str, Callable[[DetectorConfig, Path, Manifest, int], FaceDetector]] = {"mtcnn": _mtcnn}
EMBEDDERS: dict[str, Callable[[EmbedderConfig, Path, Manifest, int], FaceEmbedder]] = {
    "dlib_resnet": _dlib_resnet
}


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
        models_dir = self.config.models_dir()
        manifest = load_manifest(models_dir)
        threads = self.config.models.intra_op_threads
        detector_cfg = self.config.models.detector
        detector = DETECTORS[detector_cfg.type](detector_cfg, models_dir, manifest, threads)
        embedder_cfg = self.config.models.embedder
        embedder = EMBEDDERS[embedder_cfg.type](embedder_cfg, models_dir, manifest, threads)
        return FaceStage(detector, embedder, detector_cfg.min_face_size)

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
        return LivenessStage(cfg, self.face_stage.detector, self.clock, passive=passive)

    @cached_property
    def identifier(self) -> Identifier:
        """1:1 and 1:N matching over the gallery."""
        identity = self.config.identity
        return Identifier(self.gallery, identity.threshold, identity.max_gallery_for_1n)

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
            OfflineGate(OutboxStore(self.db), uplink.offline_limits(), synced_gallery) if uplink.url else None
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
