"""Face latency on a 640×480 frame: per-frame stages and the k-frame decision, per embedder, and a peer.

For each embedder (SFace, the default for East-Asian faces, and dlib's ResNet): detect, quality gate,
align, embed and match against 1,000 templates, each timed alone; then the decision as the session runs
it (`identify_frames`: k identity frames — the face regions the liveness stage keeps, each carrying the
challenge's tracked face as a 640×480 capture does — through gate + align + embed, their combination
with the continuity check, and one 1:N match over 1,000 templates in the index), and the same with the
faces detected again (a camera above 640×480). Then the per-capture challenge path (detection only:
liveness never embeds) for MTCNN and YuNet, on the whole frame every time and tracked
(bench/face_challenge.py). Beside them face_recognition on the same frames, when the bench extra is
installed (`make bench-deps`: dlib-bin, face_recognition_models, face_recognition --no-deps): end to
end, per challenge frame, per decision.
OpenCV runs on one thread, onnxruntime on [models] intra_op_threads (1). Prints a table and writes
bench/results/face.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.face_challenge import bench_challenge, bench_peer_challenge, bench_peer_decision, mean_ms
from terminal.app import embedder_operating_point
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, EmbedderConfig, TerminalConfig, load
from terminal.domain import Consent, Frame, IdentityClaim, Person
from terminal.errors import ModelMissingError, UnknownPersonError
from terminal.pipeline.face import FaceStage
from terminal.pipeline.identify import Identifier, combine_templates, identify_frames
from terminal.pipeline.liveness import IDENTITY_MARGIN, IDENTITY_SIDE
from terminal.ports import Metric
from terminal.settlement.context import PersonBenefits
from terminal.vision.align import align_chip
from terminal.vision.int8_screen import Int8Screen
from terminal.vision.liveness.downscale import face_region
from terminal.vision.metric import closeness, scores
from terminal.vision.quality import quality_reason
from terminal.vision.template_index import TemplateIndex

log = logging.getLogger("bench.face")
RESULTS = Path(__file__).resolve().parent / "results" / "face.json"
EMBEDDERS = ("sface", "dlib_resnet")


def one_face_frame(dx: int = 0) -> NDArray[np.uint8]:
    """A 640×480 frame with one frontal face (from the insightface wheel) on a faceless background.

    `dx` moves the face sideways by that many pixels (a head moving between challenge captures).
    """
    import insightface

    images = Path(os.path.dirname(insightface.__file__)) / "data" / "images"
    background = cv2.imread(str(images / "t1.jpg"))
    # Heavy blur of a crowd photo: realistic colours and texture, but no detectable face.
    frame = cv2.GaussianBlur(cv2.resize(background, (640, 480)), (0, 0), 25)
    face = cv2.resize(
        cv2.imread(str(images / "Tom_Hanks_54745.png")), (200, 200), interpolation=cv2.INTER_CUBIC
    )
    frame[140:340, 220 + dx : 420 + dx] = face
    return frame


def median_ms(func: Callable[[], Any], runs: int) -> float:
    """Median wall time of func in milliseconds after one warm-up call."""
    func()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


# every template of this in-memory gallery is made by the embedder under test
BENCH_MODEL = "bench"


class MemoryGallery:
    """A Gallery port over random templates, one person each (the 1:N search's cost, not its accuracy)."""

    def __init__(self, templates: NDArray[np.float32]) -> None:
        self._owners = [f"P{i:05d}" for i in range(templates.shape[0])]
        self._templates = templates

    def enroll(self, person: Person, consent: Consent, templates: Sequence[NDArray[np.float32]]) -> None:
        """Not used by the benchmark."""
        raise NotImplementedError

    def templates_of(self, psn_no: str, model_id: str = BENCH_MODEL) -> list[NDArray[np.float32]]:
        """One person's template."""
        if psn_no not in self._owners:
            raise UnknownPersonError(psn_no)
        return [self._templates[self._owners.index(psn_no)]]

    def all_templates(self, model_id: str = BENCH_MODEL) -> tuple[list[str], NDArray[np.float32]]:
        """Every template with its owner."""
        return self._owners, self._templates

    def person(self, psn_no: str) -> Person:
        """Not used by the benchmark."""
        raise UnknownPersonError(psn_no)

    def person_by_claim(self, claim: IdentityClaim) -> Person:
        """Not used by the benchmark."""
        raise UnknownPersonError(claim.mdtrt_cert_no)

    def benefits_of(self, psn_no: str) -> PersonBenefits:
        """Not used by the benchmark."""
        raise UnknownPersonError(psn_no)


def _config_with(config: TerminalConfig, embedder: str) -> TerminalConfig:
    models = config.models.model_copy(update={"embedder": EmbedderConfig.model_validate({"type": embedder})})
    return config.model_copy(update={"models": models})


def _threshold(config: TerminalConfig) -> float:
    """The embedder's shipped operating point (only the cost is measured, but in the metric's own units)."""
    return embedder_operating_point(config).threshold


def bench_embedder(
    stage: FaceStage,
    frame: NDArray[np.uint8],
    runs: int,
    gallery_size: int,
    k: int,
    threshold: float,
    min_face: int,
) -> dict[str, float]:
    """One embedder's per-frame stages, each timed alone, and the k-frame decision as the session runs it."""
    detector, embedder = stage.detector, stage.embedder
    metric: Metric = embedder.metric
    boxes = detector.detect(frame)
    if len(boxes) != 1:
        raise SystemExit(f"bench frame should hold one face, detector found {len(boxes)}")
    box = boxes[0]
    landmarks = np.asarray(box.landmarks, dtype=np.float32)
    size, template_points = embedder.chip_size, embedder.template
    chip = align_chip(frame, landmarks, size, template_points)
    template = embedder.embed(chip[np.newaxis])[0]
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(gallery_size, template.shape[0])).astype(np.float32) * 0.09
    # the terminal's index is loaded once at start-up (app/face_index.py), not per decision
    index = TemplateIndex(metric, int8=Int8Screen)  # as the terminal builds it (app/face_index.py)
    index.load(MemoryGallery(gallery).all_templates()[0], gallery, {})
    identifier = Identifier(
        MemoryGallery(gallery), threshold, max(gallery_size, 1), metric, model_id=BENCH_MODEL, index=index
    )
    clock = SystemClock()

    # k distinct identity frames of the same capture, cut as the liveness stage keeps them (the face
    # region with IDENTITY_MARGIN of context). A 640×480 capture is worked on at full resolution, so
    # each carries the challenge's tracked face and the decision embeds it without detecting again;
    # a larger camera's are detected again in the region (`decision_redetect_*`).
    def identity(i: int, carry: bool) -> Frame:
        capture = Frame(frame.copy(), f"bench-{i}", clock.now())
        return face_region(capture, box, IDENTITY_MARGIN, IDENTITY_SIDE, carry_face=carry)

    frames = [identity(i, carry=True) for i in range(k)]
    redetect = [identity(i, carry=False) for i in range(k)]
    probes = np.stack([template] * k)

    def match() -> None:
        closeness(scores(template, gallery, metric), metric).argmax()

    def decision() -> None:
        identify_frames(stage, identifier, frames, None, k)

    def decision_redetect() -> None:
        identify_frames(stage, identifier, redetect, None, k)

    return {
        "detect_ms": median_ms(lambda: detector.detect(frame), runs),
        # what the decision detects: an identity frame (the face region the liveness stage keeps)
        "detect_identity_frame_ms": median_ms(lambda: detector.detect(redetect[0].image), runs),
        "quality_gate_ms": median_ms(lambda: quality_reason(frame, box, min_face), runs),
        "align_ms": median_ms(lambda: align_chip(frame, landmarks, size, template_points), runs),
        "embed_ms": median_ms(lambda: embedder.embed(chip[np.newaxis]), runs),
        "match_1n_ms": median_ms(match, runs),
        "combine_ms": median_ms(lambda: combine_templates(probes, metric), runs),
        "decision_ms": median_ms(decision, max(5, runs // 3)),
        "decision_cpu_ms": mean_ms(decision, max(5, runs // 3), 1)[1],
        "decision_redetect_ms": median_ms(decision_redetect, max(5, runs // 3)),
        "decision_redetect_cpu_ms": mean_ms(decision_redetect, max(5, runs // 3), 1)[1],
        "embed_cpu_ms": mean_ms(lambda: embedder.embed(chip[np.newaxis]), runs, 1)[1],
    }


def bench_peer(frame: NDArray[np.uint8], runs: int) -> dict[str, float] | None:
    """face_recognition (dlib HOG detector + 5-point landmarks + ResNet) on the same frame."""
    try:
        import face_recognition
    except ImportError:
        log.warning("peer not installed (make bench-deps); skipping face_recognition")
        return None
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def whole() -> None:
        locations = face_recognition.face_locations(rgb)
        face_recognition.face_encodings(rgb, locations, model="small")

    return {"end_to_end_ms": median_ms(whole, runs)}


def bench_challenges(
    config: TerminalConfig, runs: int
) -> tuple[dict[str, dict[str, float]], dict[str, float] | None]:
    """Each detector per challenge capture, and face_recognition's.

    yunet is the shipped detector (YuNet's boxes, O-Net's landmarks); yunet_alone is YuNet with its own
    landmarks at its former 0.8 floor, which the challenge cannot use (docs/liveness.md), for the cost
    of the O-Net step.
    """
    from terminal.app.registries import DETECTORS
    from terminal.config import models_folder
    from terminal.vision.manifest import load_manifest, verified_path
    from terminal.vision.yunet import YuNetDetector

    captures = [one_face_frame(dx) for dx in (0, 2, 4, 6, 8, 10, 8, 6, 4, 2)]
    folder = models_folder(config)
    manifest = load_manifest(folder)
    threads = config.models.intra_op_threads
    results: dict[str, dict[str, float]] = {}
    for kind in ("mtcnn", "yunet"):
        cfg = config.models.detector.model_copy(update={"type": kind, "min_score": None})
        try:
            detector = DETECTORS[kind](cfg, folder, manifest, threads)
        except ModelMissingError:
            log.warning("%s not provisioned; skipping it", kind)
            continue
        results[kind] = bench_challenge(detector, captures, runs)
    if "yunet" in results:
        alone = YuNetDetector(verified_path(folder, manifest.entry("yunet")), min_score=0.8)
        results["yunet_alone"] = bench_challenge(alone, captures, runs)
    return results, bench_peer_challenge(captures, max(3, runs // 6))


def write_challenge(
    out: Any,
    challenge: dict[str, dict[str, float]],
    peer: dict[str, float] | None,
    peer_decision: dict[str, float] | None,
    embedders: dict[str, dict[str, float]],
    k: int,
) -> None:
    """The challenge-capture and decision table (wall: median; CPU, every thread: least-loaded run)."""
    out.write(
        f"\n{'per challenge capture (mean)':<34}{'wall ms':>9}{'CPU ms':>9}{'faces/s':>9}{'/core':>9}\n"
    )
    for name, row in challenge.items():
        out.write(
            f"{name + ', whole frame every time':<34}"
            f"{row['whole_frame_ms']:9.2f}{row['whole_frame_cpu_ms']:9.2f}\n"
        )
        out.write(
            f"{name + ', tracked':<34}{row['tracked_ms']:9.2f}{row['tracked_cpu_ms']:9.2f}"
            f"{row['tracked_faces_per_s']:9.1f}{row['tracked_faces_per_s_one_core']:9.1f}"
            f"  whole frame on {row['full_per_capture']:.0%} of captures, face missed on "
            f"{row['missed_share']:.0%}\n"
        )
    if peer:
        out.write(
            f"{'face_recognition (HOG + landmarks)':<34}{peer['frame_ms']:9.2f}{peer['frame_cpu_ms']:9.2f}"
            f"{peer['faces_per_s']:9.1f}{peer['faces_per_s_one_core']:9.1f}\n"
        )
    out.write(f"\ndecision, k = {k} (wall median / CPU least-loaded ms):\n")
    for name, row in embedders.items():
        out.write(
            f"  {name + ', challenge faces':<30}{row['decision_ms']:9.2f}{row['decision_cpu_ms']:9.2f}\n"
        )
        out.write(
            f"  {name + ', detected again':<30}"
            f"{row['decision_redetect_ms']:9.2f}{row['decision_redetect_cpu_ms']:9.2f}\n"
        )
    if peer_decision:
        out.write(
            f"  {'face_recognition':<30}"
            f"{peer_decision['decision_ms']:9.2f}{peer_decision['decision_cpu_ms']:9.2f}\n"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, write JSON."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per stage (>= 20)")
    parser.add_argument("--gallery", type=int, default=1000, help="templates in the 1:N match")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs = max(20, args.runs)
    cv2.setNumThreads(1)  # one core: OpenCV's own thread pool would spread resizing and YuNet over both
    config = load(DEFAULT_CONFIG)
    k = config.identity.decision_frames
    frame = one_face_frame()
    from terminal.app import build_face_stage

    embedders: dict[str, dict[str, float]] = {}
    detect_only = 0.0
    for name in EMBEDDERS:
        stage = build_face_stage(_config_with(config, name))
        threshold = _threshold(_config_with(config, name))
        min_face = config.models.detector.min_face_size
        embedders[name] = bench_embedder(stage, frame, runs, args.gallery, k, threshold, min_face)
        detect_only = embedders[name]["detect_ms"]
    peer = bench_peer(frame, runs)
    challenge, peer_challenge = bench_challenges(config, runs)
    peer_decision = bench_peer_decision(frame, k, args.gallery, max(5, runs // 3))
    result: dict[str, Any] = {
        "frame": "640x480, one face",
        "runs": runs,
        "statistic": "median",
        "min_face_size": config.models.detector.min_face_size,
        "intra_op_threads": config.models.intra_op_threads,
        "gallery_templates": args.gallery,
        "decision_frames": k,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            # other jobs share this machine: read the figures beside its load
            "load_average": os.getloadavg(),
        },
        # LivenessSession.feed runs the detector on each capture and nothing else from the face stage.
        "challenge_frame_ms": detect_only,
        "embedders": embedders,
        "peer_face_recognition": peer,
        # per challenge capture, detection only (a mean over whole tracking cycles), per detector
        "challenge": challenge,
        "peer_challenge": peer_challenge,
        "peer_decision": peer_decision,
        "opencv_threads": cv2.getNumThreads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out = sys.stdout
    keys = list(embedders[EMBEDDERS[0]])
    out.write(f"{'ms (median)':<18}" + "".join(f"{name:>14}" for name in EMBEDDERS) + "\n")
    for key in keys:
        out.write(f"{key:<18}" + "".join(f"{embedders[name][key]:14.2f}" for name in EMBEDDERS) + "\n")
    out.write(f"challenge frame (detect only) {detect_only:8.2f}\n")
    steps = "gate + align + embed (the challenge's faces; detected again: + detect)"
    out.write(f"decision = {k} frames × ({steps}) + combine + 1:N over {args.gallery}\n")
    if peer:
        out.write(f"face_recognition end to end (1 frame) {peer['end_to_end_ms']:8.2f}\n")
    write_challenge(out, challenge, peer_challenge, peer_decision, embedders, k)
    out.write(f"written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
