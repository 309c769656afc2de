"""Per-stage face latency (detect, align, embed, match) on a 640×480 frame, against face_recognition.

Prints a table and writes bench/results/face.json. The peer is measured only when the bench extra
is installed (`make bench-deps`: dlib-bin, face_recognition_models, face_recognition --no-deps).
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, load
from terminal.pipeline.identify import distances
from terminal.vision.align import align_chip

log = logging.getLogger("bench.face")
RESULTS = Path(__file__).resolve().parent / "results" / "face.json"


def one_face_frame() -> NDArray[np.uint8]:
    """A 640×480 frame with one frontal face (from the insightface wheel) on a faceless background."""
    import insightface

    images = Path(os.path.dirname(insightface.__file__)) / "data" / "images"
    background = cv2.imread(str(images / "t1.jpg"))
    # Heavy blur of a crowd photo: realistic colours and texture, but no detectable face.
    frame = cv2.GaussianBlur(cv2.resize(background, (640, 480)), (0, 0), 25)
    face = cv2.resize(
        cv2.imread(str(images / "Tom_Hanks_54745.png")), (200, 200), interpolation=cv2.INTER_CUBIC
    )
    frame[140:340, 220:420] = face
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


def bench_ours(frame: NDArray[np.uint8], runs: int, gallery_size: int) -> dict[str, float]:
    """Our stages, each timed alone, plus the whole path."""
    from terminal.app import build_terminal

    terminal = build_terminal(load(DEFAULT_CONFIG), Path("/tmp/medpay-bench"), SystemClock())
    stage = terminal.face_stage
    detector, embedder = stage.detector, stage.embedder
    boxes = detector.detect(frame)
    if len(boxes) != 1:
        raise SystemExit(f"bench frame should hold one face, detector found {len(boxes)}")
    landmarks = np.asarray(boxes[0].landmarks, dtype=np.float32)
    chip = align_chip(frame, landmarks, 150)
    template = embedder.embed(chip[np.newaxis])[0]
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(gallery_size, 128)).astype(np.float32) * 0.09

    def whole() -> None:
        found = detector.detect(frame)
        chips = np.stack([align_chip(frame, np.asarray(b.landmarks, np.float32), 150) for b in found])
        vectors = embedder.embed(chips)
        distances(vectors[0], gallery).argmin()

    return {
        "detect_ms": median_ms(lambda: detector.detect(frame), runs),
        "align_ms": median_ms(lambda: align_chip(frame, landmarks, 150), runs),
        "embed_ms": median_ms(lambda: embedder.embed(chip[np.newaxis]), runs),
        "match_ms": median_ms(lambda: distances(template, gallery).argmin(), runs),
        "end_to_end_ms": median_ms(whole, runs),
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


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per stage (>= 20)")
    parser.add_argument("--gallery", type=int, default=1000, help="templates in the 1:N match")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs = max(20, args.runs)
    frame = one_face_frame()
    ours = bench_ours(frame, runs, args.gallery)
    peer = bench_peer(frame, runs)
    result: dict[str, Any] = {
        "frame": "640x480, one face",
        "runs": runs,
        "statistic": "median",
        "min_face_size": load(DEFAULT_CONFIG).models.detector.min_face_size,
        "intra_op_threads": load(DEFAULT_CONFIG).models.intra_op_threads,
        "gallery_templates": args.gallery,
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "ours": ours,
        "peer_face_recognition": peer,
        "peer_over_ours": (peer["end_to_end_ms"] / ours["end_to_end_ms"]) if peer else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out = sys.stdout
    for key, value in ours.items():
        out.write(f"ours  {key:<14} {value:8.2f}\n")
    if peer:
        out.write(f"peer  end_to_end_ms  {peer['end_to_end_ms']:8.2f}\n")
        out.write(f"peer/ours        {result['peer_over_ours']:8.2f}x\n")
    out.write(f"written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
