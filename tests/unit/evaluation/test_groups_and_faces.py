"""Per-group false-match rates and the whole face evaluation on constructed templates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from terminal.evaluation.collect import Embedded, Skip
from terminal.evaluation.datasets import DatasetError, Sample
from terminal.evaluation.faces import evaluate_faces
from terminal.evaluation.groups import attributes_of, load_labels, name_attributes, pair_groups
from terminal.evaluation.report import face_json

REPORT_KEYS = {
    "threshold", "metric", "fmr", "tmr", "fmr_ci95", "tmr_ci95", "pairs", "tmr_min_per_person", "skipped",
    "operating_points", "groups",
}  # fmt: skip


def test_scut_names_give_sex_and_ethnicity_and_other_names_nothing() -> None:
    assert name_attributes(Path("fty12.jpg")) == {"sex": "female", "ethnicity": "asian"}
    assert name_attributes(Path("mtw7.png")) == {"sex": "male", "ethnicity": "white"}
    assert name_attributes(Path("0001_00_00_01_0.jpg")) == {}


def test_groups_exist_only_for_what_the_data_labels(tmp_path: Path) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"x.jpg": {"sex": "male", "camera": "kiosk"}}), encoding="utf-8")
    paths = [Path("fty1.jpg"), Path("fty2.jpg"), Path("mty3.jpg"), Path("x.jpg")]
    attributes = attributes_of(paths, load_labels(labels))
    first, second = np.triu_indices(4, k=1)
    groups = {name: int(mask.sum()) for name, mask in pair_groups(attributes, first, second).items()}
    # sex: ff = (1,2); mm = (3,x); mixed = 4. ethnicity: only the three SCUT faces carry it.
    # camera: one labelled face makes no pair, so no group
    assert groups == {"asian–asian": 3, "female–female": 1, "male–male": 1, "mixed sex": 4}
    labels.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(DatasetError):
        load_labels(labels)


def _unit(angle_deg: float) -> list[float]:
    a = np.radians(angle_deg)
    return [float(np.cos(a)), float(np.sin(a)), 0.0]


def test_face_evaluation_on_known_similarities() -> None:
    # impostors: 4 faces at 0°, 90°, 180°, 270° → pair cosines 0, -1, 0, 0, -1, 0 (6 pairs, max 0)
    impostors = Embedded(np.array([_unit(a) for a in (0, 90, 180, 270)], np.float32), [0, 1, 2, 3], [])
    imp_paths = [Path(n) for n in ("fty1.jpg", "fty2.jpg", "mty3.jpg", "mty4.jpg")]
    # genuine: A across two sessions at cos 0.9 and 0.6; B one session, a pair at cos 1.0
    genuine_vectors = [_unit(0), _unit(25.84193), _unit(0), _unit(53.13010), _unit(10), _unit(10)]
    people = [("a1", "A", "1"), ("a2", "A", "2"), ("skip", "A", "1"), ("a3", "A", "3"), ("b1", "B", None)]
    samples = [Sample(Path(f"{n}.jpg"), p, s) for n, p, s in [*people, ("b2", "B", None)]]
    kept = [0, 1, 3, 4, 5]
    genuine = Embedded(
        np.array([genuine_vectors[i] for i in kept], np.float32), kept, [Skip("skip.jpg", "no face detected")]
    )
    result = evaluate_faces(impostors, imp_paths, genuine, samples, "cosine", 0.7)
    report = face_json(result)
    assert set(report) == REPORT_KEYS
    # A: (a1,a2)=0.9 (a1,a3)=0.6 (a2,a3)=cos(27.3°)≈0.889; B: (b1,b2)=1.0 → 3 of 4 at ≥ 0.7
    assert report["pairs"] == {"impostor": 6, "genuine": 4}
    assert report["tmr"] == pytest.approx(0.75) and report["tmr_min_per_person"] == pytest.approx(2 / 3)
    assert report["fmr"] == 0.0 and report["fmr_ci95"][0] == 0.0 and 0 < report["fmr_ci95"][1] < 1
    assert report["skipped"] == [{"file": "skip.jpg", "reason": "no face detected"}]
    # every target admits no impostor pair of six, so the threshold sits just above the best impostor (0)
    for point in report["operating_points"]:
        assert 0.0 < point["threshold"] < 1e-9 and point["tmr"] == 1.0
    assert report["groups"]["female–female"] == {"fmr": 0.0, "pairs": 1}
    assert report["groups"]["mixed sex"]["pairs"] == 4
    loose = face_json(evaluate_faces(impostors, imp_paths, genuine, samples, "cosine", -0.5))
    assert loose["fmr"] == pytest.approx(4 / 6)


def test_distance_metric_reports_thresholds_as_distances() -> None:
    impostors = Embedded(np.array([[0, 0], [3, 0], [0, 4]], np.float32), [0, 1, 2], [])  # distances 3, 4, 5
    genuine = Embedded(np.array([[0, 0], [0.5, 0], [9, 9], [9, 9.2]], np.float32), [0, 1, 2, 3], [])
    samples = [Sample(Path(f"{p}{i}.jpg"), p, None) for p, i in (("A", 1), ("A", 2), ("B", 1), ("B", 2))]
    paths = [Path(f"{i}.jpg") for i in range(3)]
    report = face_json(evaluate_faces(impostors, paths, genuine, samples, "euclidean", 3.0))
    assert report["metric"] == "euclidean" and report["fmr"] == pytest.approx(1 / 3)
    assert report["tmr"] == 1.0 and report["groups"] == {}
    point = report["operating_points"][0]  # no impostor may pass: just below the closest impostor pair (3)
    assert 3.0 - 1e-9 < point["threshold"] < 3.0


def test_mixed_chips_compare_gallery_templates_with_probe_templates() -> None:
    # probe side: image 1 found, gallery side: image 1 not found → only images 0 and 2 pair up
    probe_imp = Embedded(np.array([_unit(0), _unit(180), _unit(90)], np.float32), [0, 1, 2], [])
    gallery_imp = Embedded(np.array([_unit(60), _unit(90)], np.float32), [0, 2], [Skip("1.jpg", "no face")])
    paths = [Path(f"{i}.jpg") for i in range(3)]
    # A in two sessions: the probe's a2 chip is far from a1, the gallery's a2 chip close to it
    samples = [Sample(Path("a1.jpg"), "A", "1"), Sample(Path("a2.jpg"), "A", "2")]
    probe_gen = Embedded(np.array([_unit(0), _unit(80)], np.float32), [0, 1], [])
    gallery_gen = Embedded(np.array([_unit(0), _unit(10)], np.float32), [0, 1], [])
    same = face_json(evaluate_faces(probe_imp, paths, probe_gen, samples, "cosine", 0.7))
    assert same["pairs"] == {"impostor": 3, "genuine": 1} and same["fmr"] == 0.0 and same["tmr"] == 0.0
    mixed = evaluate_faces(
        probe_imp, paths, probe_gen, samples, "cosine", 0.7, gallery=(gallery_imp, gallery_gen)
    )
    report = face_json(mixed)
    # pair (0, 2) is gallery 0 (60°) against probe 2 (90°): cos 30° ≈ 0.87, a false match;
    # probe a1 (0°) against gallery a2 (10°): cos 10°, a true match
    assert report["pairs"] == {"impostor": 1, "genuine": 1}
    assert report["fmr"] == 1.0 and report["tmr"] == 1.0
    assert report["skipped"] == [{"file": "1.jpg", "reason": "no face"}]
    # swapped sides: gallery 0 is probe 0 (0°) against 90°, and a1 (0°) against a2 at 80°: neither matches
    swapped = face_json(
        evaluate_faces(gallery_imp, [paths[0], paths[1], paths[2]], gallery_gen, samples, "cosine", 0.7,
                       gallery=(probe_imp, probe_gen))
    )  # fmt: skip
    assert swapped["pairs"] == {"impostor": 1, "genuine": 1}
    assert swapped["fmr"] == 0.0 and swapped["tmr"] == 0.0


def test_mixed_chips_with_frame_groups_average_the_probe_side_only() -> None:
    # A: three frames in session 1 (the probe), one in session 2 (the gallery)
    samples = [Sample(Path(f"a{i}.jpg"), "A", "1" if i < 3 else "2") for i in range(4)]
    probe = Embedded(np.array([_unit(0), _unit(0), _unit(0), _unit(90)], np.float32), [0, 1, 2, 3], [])
    gallery = Embedded(np.array([_unit(90), _unit(90), _unit(90), _unit(20)], np.float32), [0, 1, 2, 3], [])
    imp = Embedded(np.array([_unit(0), _unit(180)], np.float32), [0, 1], [])
    paths = [Path("x.jpg"), Path("y.jpg")]
    args = (imp, paths, probe, samples, "cosine", 0.7)
    assert face_json(evaluate_faces(*args, frames=3))["tmr"] == 0.0
    # the mean of the probe's three 0° frames against the gallery's session-2 chip at 20°: cos 20°
    mixed = face_json(evaluate_faces(*args, frames=3, gallery=(imp, gallery)))
    assert mixed["pairs"]["genuine"] == 1 and mixed["tmr"] == 1.0
