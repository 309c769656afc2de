"""The registries the root picks adapters from, keyed by the config's `type`: models and liveness checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from terminal.config import (
    DetectorConfig,
    EmbedderConfig,
    LivenessConfig,
    Profile,
    TerminalConfig,
    models_folder,
)
from terminal.config.models import PACK_TYPES
from terminal.pipeline.face import FaceStage
from terminal.ports import FaceDetector, FaceEmbedder, Metric
from terminal.store.policy_files import load_trusted_keys
from terminal.vision.embedder import DlibResnetEmbedder
from terminal.vision.insightface_pack import ArcFaceEmbedder, arcface_embedder, scrfd_detector
from terminal.vision.liveness.depth import DepthCheck, DepthConfig
from terminal.vision.liveness.nir import NirCheck, NirConfig
from terminal.vision.liveness.types import LivenessCheck
from terminal.vision.manifest import Manifest, load_manifest, verified_path, verify_manifest_signature
from terminal.vision.mtcnn import MtcnnDetector
from terminal.vision.operating_point import MeasuredModel, OperatingPoint, operating_point
from terminal.vision.operator_pack import find_pack_model
from terminal.vision.runtime import create_session
from terminal.vision.sface import SFaceEmbedder
from terminal.vision.yunet import YuNetDetector
from terminal.vision.yunet_onet import YuNetOnetDetector

# Default detector score floors, each on its detector's own scale. "yunet" is scored by MTCNN's O-Net on
# YuNet's box (terminal/vision/yunet_onet.py): one crop, where MTCNN keeps the best of many windows, so
# it scores a little lower: real SCUT/NUAA/deepface faces p1 0.936, median 0.999 (2 of 320 below 0.9);
# the rendered presenter's 30° turns and nods 0.92-0.93; proposals on images without a face at most 0.18.
DETECTOR_MIN_SCORES: dict[str, float] = {"mtcnn": 0.95, "yunet": 0.9, "scrfd": 0.95}
# YuNet's own score a face needs to be shown to O-Net. Real faces of the East-Asian sets score 0.91-0.96,
# the bench's blurred upscaled face 0.79-0.87; 172 real images without a face (skimage's non-face
# samples, the deepface and NUAA frames with the face filled in, the bench's blurred crowd) gave no
# proposal above 0.39, and O-Net gave those proposals at most 0.18 (docs/liveness.md).
YUNET_PROPOSAL_SCORE = 0.5


def min_score(cfg: DetectorConfig) -> float:
    """The configured `min_score`, or the detector type's own when it is unset."""
    return cfg.min_score if cfg.min_score is not None else DETECTOR_MIN_SCORES[cfg.type]


def _mtcnn(cfg: DetectorConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceDetector:
    pnet, rnet, onet = (
        create_session(verified_path(models_dir, manifest.entry(name)), threads, blocked_prelu=True)
        for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet")
    )
    return MtcnnDetector(
        pnet,
        rnet,
        onet,
        min_face_size=cfg.min_face_size,
        thresholds=cfg.thresholds,
        min_score=min_score(cfg),
    )


def _yunet(cfg: DetectorConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceDetector:
    path = verified_path(models_dir, manifest.entry("yunet"))
    proposals = YuNetDetector(path, min_face_size=cfg.min_face_size, min_score=YUNET_PROPOSAL_SCORE)
    onet = create_session(
        verified_path(models_dir, manifest.entry("mtcnn_onet")), threads, blocked_prelu=True
    )
    return YuNetOnetDetector(proposals, onet, min_score=min_score(cfg))


def _dlib_resnet(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    entry = manifest.entry("dlib_resnet")
    embedder = DlibResnetEmbedder(create_session(verified_path(models_dir, entry), threads), entry.contract())
    embedder.model_id = entry.template_model_id()
    return embedder


def _sface(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    entry = manifest.entry("sface")
    # its 27 per-channel PRelu rewritten in memory into bit-identical blocked-layout operators (2.3× faster)
    embedder = SFaceEmbedder(create_session(verified_path(models_dir, entry), threads, blocked_prelu=True))
    embedder.model_id = entry.template_model_id()
    return embedder


def _scrfd(cfg: DetectorConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceDetector:
    return scrfd_detector(models_dir, cfg.model, threads, min_score(cfg))  # an operator pack's model


def _arcface(cfg: EmbedderConfig, models_dir: Path, manifest: Manifest, threads: int) -> FaceEmbedder:
    return arcface_embedder(models_dir, cfg.model, threads)  # an operator pack's model


# Explicit registries keyed by the config's `type`; pydantic's Literal already refused unknown ones.
DETECTORS: dict[str, Callable[[DetectorConfig, Path, Manifest, int], FaceDetector]] = {
    "mtcnn": _mtcnn,
    "yunet": _yunet,
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


def verified_manifest(config: TerminalConfig) -> Manifest:
    """The model manifest, after its signature checks out against the policies' trusted keys."""
    models_dir = models_folder(config)
    verify_manifest_signature(models_dir, load_trusted_keys(config.settlement.trusted_keys))
    return load_manifest(models_dir)


# Each embedder type's manifest entry, whose template_model_id() tags the templates it makes.
EMBEDDER_ENTRIES: dict[str, str] = {"dlib_resnet": "dlib_resnet", "sface": "sface"}


def _embedder_declaration(config: TerminalConfig) -> tuple[MeasuredModel, str]:
    """The configured embedder's declaration (manifest or pack entry) and the model id it stamps.

    A shipped embedder's operating point is the one measured on the configured detector's chips; an
    embedder never measured on them has none, and cannot match (operating_point says so).
    """
    embedder = config.models.embedder
    if embedder.type in PACK_TYPES:
        pack = find_pack_model(models_folder(config), embedder.model, "arcface")
        return pack.entry, pack.model_id
    entry = verified_manifest(config).entry(EMBEDDER_ENTRIES[embedder.type])
    return entry.for_detector(config.models.detector.type), entry.template_model_id()


def embedder_model_id(config: TerminalConfig) -> str:
    """The model id the configured embedder stamps on templates, from its manifest (loads no model)."""
    return _embedder_declaration(config)[1]


def embedder_operating_point(config: TerminalConfig) -> OperatingPoint:
    """The configured embedder's manifest operating point, tightened (never loosened) by [identity]."""
    entry, _ = _embedder_declaration(config)
    return operating_point(entry, config.identity, EMBEDDER_METRICS[config.models.embedder.type])


def build_face_stage(config: TerminalConfig) -> FaceStage:
    """Detector + quality gate + aligner + embedder from config, with verified models."""
    models_dir = models_folder(config)
    manifest = verified_manifest(config)
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
