"""NIR check: a lit face must be in the NIR frame where the RGB face is, with relief, without print texture.

Why it works: LCD/OLED screens emit no near-infrared and look dark under the kiosk's NIR emitter;
skin scatters NIR below the surface, so a live face looks smooth with shading from its shape (nose
bright, eye sockets dark), while a print is flat-lit and shows its halftone texture.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from terminal.domain import FaceBox
from terminal.ports import FaceDetector
from terminal.vision.liveness.types import CheckResult, LivenessSample, NirFrame, box_region, landmark_array

NAME = "nir"


@dataclass(frozen=True)
class NirConfig:
    """Thresholds of the NIR check (grey levels 0–255 and unit-free ratios)."""

    min_face_level: float = 40.0  # mean grey of the face; screens stay far below under NIR
    min_face_contrast: float = 0.08  # std / mean inside the face
    min_shading: float = 0.08  # (centre − sides) / centre: the face turns away from the emitter at its sides
    max_fine_texture: float = 0.35  # high-frequency share of the face's variation (halftone, moiré)
    min_iou: float = 0.3  # NIR detection vs RGB box, when a detector is injected


def centre_to_side_shading(image: NDArray[np.uint8], box: FaceBox) -> float:
    """How much darker the cheeks' outer parts are than the nose column, relative to the nose column.

    Under an emitter beside the lens a 3-D face darkens where its surface turns away; flat paper
    lit the same way stays even (and its inks are mostly transparent in NIR, so the printed shading
    is weak too).
    """
    p = landmark_array(box)
    iod = float(np.linalg.norm(p[1] - p[0]))
    top, bottom = float(p[:2, 1].mean()), float(p[3:, 1].mean())
    cx = float(p[2, 0])
    h, w = image.shape

    def strip(x_from: float, x_to: float) -> float:
        x1, x2 = max(round(x_from), 0), min(round(x_to), w)
        y1, y2 = max(round(top), 0), min(round(bottom), h)
        patch = image[y1:y2, x1:x2]
        return float(patch.mean()) if patch.size else 0.0

    centre = strip(cx - 0.2 * iod, cx + 0.2 * iod)
    sides = (strip(cx - 1.05 * iod, cx - 0.8 * iod) + strip(cx + 0.8 * iod, cx + 1.05 * iod)) / 2
    return (centre - sides) / max(centre, 1.0)


def _iou(a: FaceBox, b: FaceBox) -> float:
    ix = max(0.0, min(a.x2, b.x2) - max(a.x1, b.x1))
    iy = max(0.0, min(a.y2, b.y2) - max(a.y1, b.y1))
    inter = ix * iy
    union = a.width * a.height + b.width * b.height - inter
    return inter / union if union > 0 else 0.0


def judge_nir(frame: NirFrame, box: FaceBox, cfg: NirConfig | None = None) -> CheckResult:
    """Pass one NIR frame whose face region is lit, shaded like a 3-D face and free of print texture."""
    cfg = cfg or NirConfig()
    image = frame.image
    x1, y1, x2, y2 = box_region(box, image.shape)
    face = image[y1:y2, x1:x2].astype(np.float32)
    if face.size == 0:
        return CheckResult.failed(NAME, 0.0, "face box outside the NIR frame")
    level = float(face.mean())
    contrast = float(face.std()) / max(level, 1.0)
    details = {"face_level": level, "contrast": contrast}
    if level < cfg.min_face_level:
        return CheckResult.failed(NAME, level / cfg.min_face_level, "no lit face in NIR (a screen?)", details)
    if contrast < cfg.min_face_contrast:
        return CheckResult.failed(
            NAME, contrast / cfg.min_face_contrast, "flat NIR face (no structure)", details
        )
    shading = centre_to_side_shading(image, box)
    # Fine texture: energy of a 3×3 Laplacian relative to the face's overall variation.
    lap = cv2.Laplacian(face, cv2.CV_32F, ksize=3)
    fine = float(np.std(lap)) / max(float(face.std()) * 4.0, 1e-6)
    details.update({"shading": shading, "fine_texture": fine})
    if shading < cfg.min_shading:
        return CheckResult.failed(NAME, max(shading, 0.0) / cfg.min_shading, "no NIR relief shading", details)
    if fine > cfg.max_fine_texture:
        return CheckResult.failed(
            NAME, cfg.max_fine_texture / fine, "print or screen texture in NIR", details
        )
    return CheckResult.passed(NAME, min(1.0, shading / (2 * cfg.min_shading)), details)


class NirCheck:
    """LivenessCheck `nir`: the best emitter-on NIR frame must pass (pulsed emitters light only some)."""

    name = NAME

    def __init__(self, cfg: NirConfig | None = None, detector: FaceDetector | None = None) -> None:
        self.cfg = cfg or NirConfig()
        self._detector = detector

    def check(self, sample: LivenessSample) -> CheckResult:
        """Judge the NIR frames against the RGB face box."""
        box = sample.primary_box
        lit = [f for f in sample.nir if f.emitter_on]
        if not lit:
            return CheckResult.missing(NAME, "no NIR frame with the emitter on")
        if box is None:
            return CheckResult.failed(NAME, 0.0, "no RGB face to locate in NIR")
        results = [judge_nir(f, box, self.cfg) for f in lit]
        best_index = max(range(len(results)), key=lambda i: (results[i].status == "pass", results[i].score))
        best = results[best_index]
        if best.status == "pass" and self._detector is not None:
            grey = lit[best_index].image
            found = self._detector.detect(np.ascontiguousarray(np.stack([grey] * 3, axis=2)))
            overlap = max((_iou(box, f) for f in found), default=0.0)
            if overlap < self.cfg.min_iou:
                return CheckResult.failed(NAME, overlap, "no NIR face where the RGB face is", best.details)
        return best
