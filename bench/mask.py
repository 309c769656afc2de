"""Synthetic surgical masks drawn over real faces, and how often the quality gate's mask check flags them.

The masked set is SYNTHETIC: a mask-shaped polygon (light blue, white or black, with pleats, the scene's
own shading and sensor noise) drawn from each face's five landmarks. It measures the check's rates on
real faces and real lighting; it is not a set of photographs of people wearing masks.

    python bench/mask.py --scut ../shared/data/faces/asian/scut \
        --nuaa ../shared/data/faces/asian/nuaa/client

Prints the rates and writes bench/results/mask.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.ports import FaceDetector
from terminal.vision.quality import (
    MASK_REASON,
    MAX_LOWER_SKIN,
    MIN_LIP_REDNESS,
    quality_reason,
    rejection_reason,
)

log = logging.getLogger("bench.mask")
RESULTS = Path(__file__).resolve().parent / "results" / "mask.json"

COLOURS = ("blue", "white", "black", "green")


def mask_texture(colour: str) -> NDArray[np.uint8]:
    """A photographed surgical mask, flat (the insightface wheel's mask_<colour>.jpg, BGR)."""
    import insightface

    path = Path(insightface.__file__).parent / "data" / "images" / f"mask_{colour}.jpg"
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"mask texture {path} not found (insightface is a test dependency)")
    return np.asarray(image, dtype=np.uint8)


def _face_frame(
    landmarks: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], float, float]:
    """Eye midpoint, unit vectors across (u) and down (v) the face, eye distance d, eye-mouth depth h."""
    left, right = landmarks[0], landmarks[1]
    mouth = (landmarks[3] + landmarks[4]) / 2
    eyes = (left + right) / 2
    d = float(np.linalg.norm(right - left))
    u = (right - left) / max(d, 1e-6)
    v = np.array([-u[1], u[0]])
    if float(np.dot(mouth - eyes, v)) < 0:
        v = -v
    h = max(float(np.dot(mouth - eyes, v)), 0.5 * d)
    return eyes, u, v, d, h


def mask_outline(landmarks: NDArray[np.float64], top: float = 0.42) -> NDArray[np.float64]:
    """Image points of a mask's outline: nose bridge at `top` × eye-mouth depth, down past the chin."""
    eyes, u, v, d, h = _face_frame(landmarks)
    # (across in eye distances, down in eye-mouth depths), from the nose bridge clockwise
    shape = [
        (0.0, top),
        (0.35, top + 0.05),
        (0.7, top + 0.16),
        (1.02, top + 0.3),
        (1.05, 0.95),
        (0.95, 1.3),
        (0.7, 1.58),
        (0.35, 1.74),
        (0.0, 1.78),
    ]
    right = [eyes + a * d * u + b * h * v for a, b in shape]
    left = [eyes - a * d * u + b * h * v for a, b in reversed(shape[1:-1])]
    return np.array([*right, *left], dtype=np.float64)


def draw_mask(
    image: NDArray[np.uint8],
    landmarks: NDArray[np.float64] | list[tuple[float, float]] | tuple[tuple[float, float], ...],
    colour: str = "blue",
    rng: np.random.Generator | None = None,
) -> NDArray[np.uint8]:
    """A copy of a BGR image with a photographed mask, bent over the face the five landmarks belong to.

    The flat mask photo is warped onto the face's lower half, cut to a mask's outline, and lit by the
    scene's own light (the covered skin's smoothed brightness) with a bulge over nose and chin.
    """
    rng = rng or np.random.default_rng(0)
    points = np.asarray(landmarks, dtype=np.float64)
    top = float(rng.uniform(0.25, 0.45))
    outline = mask_outline(points, top)
    height, width = image.shape[:2]
    # Draw at 4× and shrink: an anti-aliased edge, as a camera would see it.
    scale = 4
    cover = np.zeros((height * scale, width * scale), dtype=np.uint8)
    cv2.fillPoly(cover, [np.round(outline * scale).astype(np.int32)], 255, lineType=cv2.LINE_AA)
    alpha = cv2.resize(cover, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0

    eyes, u, v, d, h = _face_frame(points)
    texture = mask_texture(colour).astype(np.float32)
    th, tw = texture.shape[:2]
    corners = [(-1.08, top), (1.08, top), (1.08, 1.8), (-1.08, 1.8)]
    quad = np.array([eyes + a * d * u + b * h * v for a, b in corners], dtype=np.float32)
    flat = np.array([[0, 0], [tw, 0], [tw, th], [0, th]], dtype=np.float32)
    fabric = cv2.warpPerspective(
        texture, cv2.getPerspectiveTransform(flat, quad), (width, height), flags=cv2.INTER_AREA
    )
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    across = ((xs - eyes[0]) * u[0] + (ys - eyes[1]) * u[1]) / d
    # The mask bulges over nose and chin: lighter in the middle, darker towards the cheeks.
    bulge = 1.0 - 0.15 * np.clip(np.abs(across), 0, 1.1) ** 2
    # The scene's own light: the face's smoothed brightness relative to its median.
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    light = cv2.GaussianBlur(gray, (0, 0), max(2.0, d * 0.35))
    inside = alpha > 0.5
    reference = float(np.median(light[inside])) if inside.any() else float(np.median(light))
    shade = np.clip(light / max(reference, 1.0), 0.55, 1.25)
    # A dim scene dims the fabric too (a white mask is not white in a dark room).
    level = float(rng.uniform(0.85, 1.0)) * (0.6 + 0.4 * min(1.0, reference / 150.0))
    fabric = fabric * (bulge * shade * level)[..., np.newaxis]
    fabric += rng.normal(0.0, 2.5, size=fabric.shape).astype(np.float32)
    out = image.astype(np.float32) * (1 - alpha[..., np.newaxis]) + fabric * alpha[..., np.newaxis]
    # Ear loops from the mask's upper and lower corners towards the ears.
    loop = tuple(float(c) * 0.9 for c in np.median(texture.reshape(-1, 3), axis=0))
    for a, b in ((1.02, top + 0.3), (0.95, 1.3)):
        for sign in (1, -1):
            start = eyes + sign * a * d * u + b * h * v
            end = eyes + sign * 1.3 * d * u + 0.35 * h * v
            cv2.line(out, _pixel(start), _pixel(end), loop, 1, cv2.LINE_AA)
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)


def _pixel(point: NDArray[np.float64]) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


def _largest(boxes: list[FaceBox]) -> FaceBox | None:
    return max(boxes, key=lambda b: b.width * b.height) if boxes else None


def measure(detector: FaceDetector, files: list[Path], min_face_size: int, first: int) -> dict[str, Any]:
    """Flag rates of the quality gate's mask check on bare faces and on the same faces masked.

    Colours rotate over blue, white, black and green; each image's mask shape and light come from a
    generator seeded by its position, so a run is reproducible.
    """
    bare_flagged: list[str] = []
    bare = masked = masked_flagged = undetected = 0
    by_colour: dict[str, list[int]] = {c: [0, 0] for c in COLOURS}
    for index, path in enumerate(files):
        image = cv2.imread(str(path))
        box = _largest(detector.detect(image)) if image is not None else None
        if image is None or box is None:
            continue
        if rejection_reason(box, image.shape[1], image.shape[0], min_face_size):
            continue  # not a usable bare face: nothing to measure on it
        bare += 1
        if quality_reason(image, box, min_face_size) == MASK_REASON:
            bare_flagged.append(path.name)
        colour = COLOURS[(first + index) % len(COLOURS)]
        covered = draw_mask(image, box.landmarks, colour, np.random.default_rng(first + index))
        found = _largest(detector.detect(covered))
        if found is None:
            undetected += 1
            continue
        masked += 1
        by_colour[colour][1] += 1
        if quality_reason(covered, found, min_face_size) == MASK_REASON:
            masked_flagged += 1
            by_colour[colour][0] += 1
    return {
        "bare_faces": bare,
        "bare_flagged": len(bare_flagged),
        "bare_flag_rate": len(bare_flagged) / bare if bare else None,
        "bare_flagged_files": bare_flagged,
        "masked_detected": masked,
        "masked_not_detected": undetected,
        "masked_flagged": masked_flagged,
        "masked_flag_rate": masked_flagged / masked if masked else None,
        "masked_flag_rate_by_colour": {c: (f / n if n else None) for c, (f, n) in by_colour.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Measure the mask check on SCUT faces and NUAA live frames, print the rates, write JSON."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--scut", type=Path, required=True, help="folder of SCUT-FBP5500 faces")
    parser.add_argument("--nuaa", type=Path, required=True, help="NUAA client folder (live frames)")
    parser.add_argument("--count", type=int, default=200, help="SCUT faces per set")
    parser.add_argument("--other", type=Path, help="another folder of faces, e.g. deepface/")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from terminal.app import build_face_stage
    from terminal.config import DEFAULT_CONFIG, load

    config = load(DEFAULT_CONFIG)
    detector = build_face_stage(config).detector
    min_face = config.models.detector.min_face_size
    scut = sorted(args.scut.glob("*.jpg"))
    nuaa = sorted(args.nuaa.glob("*/*.jpg"))
    # The check's two thresholds were chosen on the "tuning" sets (every tenth SCUT face from the first,
    # NUAA subjects 0001-0003); the "held-out" sets were not looked at while choosing them.
    sets = {
        "scut_tuning": scut[0::10][: args.count],
        "scut_held_out": scut[5::10][: args.count],
        "nuaa_tuning": [p for p in nuaa if p.parent.name in ("0001", "0002", "0003")],
        "nuaa_held_out": [p for p in nuaa if p.parent.name not in ("0001", "0002", "0003")],
    }
    if args.other:
        sets["other"] = sorted(p for p in args.other.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    results: dict[str, Any] = {
        "masks": "synthetic (bench/mask.py draw_mask on real faces)",
        "thresholds": {"max_lower_skin": MAX_LOWER_SKIN, "min_lip_redness": MIN_LIP_REDNESS},
    }
    offset = 0
    for name, files in sets.items():
        results[name] = measure(detector, files, min_face, offset)
        offset += len(files)
        row = results[name]
        sys.stdout.write(
            f"{name:<14} bare flagged {row['bare_flagged']}/{row['bare_faces']}   "
            f"masked flagged {row['masked_flagged']}/{row['masked_detected']} "
            f"(+{row['masked_not_detected']} masked faces the detector did not find)\n"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
