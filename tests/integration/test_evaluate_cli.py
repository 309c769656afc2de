"""`medpay evaluate` on a small subset of ../shared's East-Asian faces, through the terminal's own models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from terminal.cli.main import main
from terminal.config import DEFAULT_CONFIG, load
from terminal.vision.manifest import load_manifest
from tests.conftest import MODELS

pytestmark = [pytest.mark.shared, pytest.mark.models, pytest.mark.usefixtures("require_models")]

FACE_KEYS = {
    "threshold", "metric", "fmr", "tmr", "fmr_ci95", "tmr_ci95", "pairs", "tmr_min_per_person", "skipped",
    "operating_points", "groups",
}  # fmt: skip
SCUT = ("fty1.jpg", "fty1001.jpg", "fty1003.jpg")
NUAA = {
    "0001": ("0001_00_00_01_0.jpg", "0001_00_00_01_127.jpg", "0001_00_00_02_"),
    "0006": ("0006_00_00_01_", "0006_00_00_02_"),
    "0002": ("0002_01_00_01_",),
}


def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)


@pytest.fixture
def subset(shared_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """3 female + 3 male SCUT faces; NUAA 0001 (2 + 1 frames, two sessions), 0006 (1 + 1), 0002 (2, one)."""
    asian = shared_dir / "data" / "faces" / "asian"
    if not asian.is_dir():
        pytest.skip("../shared/data/faces/asian is absent")
    scut = sorted((asian / "scut").glob("mty*.jpg"))[:3] + [asian / "scut" / name for name in SCUT]
    for path in scut:
        _link(path, tmp_path / "impostors" / path.name)
    for person, prefixes in NUAA.items():
        frames = sorted((asian / "nuaa" / "client" / person).iterdir())
        for prefix in prefixes:
            chosen = [f for f in frames if f.name.startswith(prefix)][: 2 if person == "0002" else 1]
            for path in chosen:
                _link(path, tmp_path / "genuine" / person / path.name)
    return tmp_path / "impostors", tmp_path / "genuine"


def _point(embedder: str) -> float | None:
    """The embedder's manifest threshold on the shipped config's detector's chips."""
    detector = load(DEFAULT_CONFIG).models.detector.type
    return load_manifest(MODELS).entry(embedder).for_detector(detector).threshold


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["evaluate", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_faces_json_counts_pairs_groups_and_sessions(
    subset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    impostors, genuine = subset
    dlib = ("--embedder", "dlib_resnet")
    report = _run(capsys, "faces", *dlib, "--impostors", str(impostors), "--genuine", str(genuine), "--json")
    assert set(report) == FACE_KEYS
    # dlib, kept for comparison, at its own point measured on the default detector's (yunet) chips
    assert report["metric"] == "euclidean"
    assert report["threshold"] == _point("dlib_resnet") == 0.332
    # 0001: 2 × 1 across sessions; 0006: 1 × 1; 0002 has one session: its one pair counts
    assert report["pairs"] == {"impostor": 15, "genuine": 4}
    assert report["skipped"] == []
    groups = report["groups"]
    assert {name: group["pairs"] for name, group in groups.items()} == {
        "asian–asian": 15, "female–female": 3, "male–male": 3, "mixed sex": 9,
    }  # fmt: skip
    # the three sex groups partition the pairs, so their false matches add up to the whole
    together = sum(group["fmr"] * group["pairs"] for name, group in groups.items() if name != "asian–asian")
    assert together == pytest.approx(report["fmr"] * 15) and groups["asian–asian"]["fmr"] == report["fmr"]
    low, high = report["fmr_ci95"]
    assert low <= report["fmr"] <= high and high > 0
    assert [p["target_fmr"] for p in report["operating_points"]] == [1e-3, 1e-4, 1e-5]
    cross = _run(
        capsys,
        "faces",
        *dlib,
        "--impostors",
        str(impostors),
        "--genuine",
        str(genuine),
        "--json",
        "--cross-session-only",
    )
    assert cross["pairs"] == {"impostor": 15, "genuine": 3}
    half = _run(
        capsys,
        "faces",
        *dlib,
        "--impostors",
        str(impostors),
        "--genuine",
        str(genuine),
        "--json",
        "--part",
        "1/2",
    )
    assert half["pairs"] == {"impostor": 3, "genuine": 4}


def test_evaluate_faces_with_sface_uses_the_manifest_operating_point(
    subset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # the point measured on the default detector's (yunet) chips
    entry = load_manifest(MODELS).entry("sface").for_detector("yunet")
    if not (MODELS / entry.file).is_file():
        pytest.skip("SFace model not provisioned")
    impostors, genuine = subset
    args = ("faces", "--embedder", "sface", "--impostors", str(impostors), "--genuine", str(genuine))
    # SFace is the configured default: no --embedder needed
    report = _run(capsys, "faces", "--impostors", str(impostors), "--genuine", str(genuine), "--json")
    assert report["metric"] == "cosine" and report["threshold"] == _point("sface")
    # six strangers and four frames of three people: SFace tells them apart at its operating point
    assert report["fmr"] == 0.0 and report["tmr"] == 1.0
    assert main(["evaluate", *args]) == 0
    text = capsys.readouterr().out
    assert "embedder sface" in text and "match when score ≥" in text and "0001: TMR" in text


def test_evaluate_faces_with_a_gallery_from_the_other_detector(
    subset: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    if not (MODELS / load_manifest(MODELS).entry("sface").file).is_file():
        pytest.skip("SFace model not provisioned")
    impostors, genuine = subset
    folders = ("--impostors", str(impostors), "--genuine", str(genuine))
    args = ("faces", "--detector", "yunet", "--gallery-detector", "mtcnn", *folders)
    report = _run(capsys, *args, "--json")
    # the same pairs as one detector gives: each compares an MTCNN-chip template with a YuNet-chip one
    assert set(report) == FACE_KEYS and report["pairs"] == {"impostor": 15, "genuine": 4}
    assert report["threshold"] == _point("sface") == 0.485
    assert report["fmr"] == 0.0 and report["tmr"] == 1.0
    assert main(["evaluate", *args]) == 0
    assert "gallery on mtcnn chips, probes on yunet chips" in capsys.readouterr().out


def test_evaluate_liveness_json(shared_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not all(
        (MODELS / e.file).is_file() for e in load_manifest(MODELS).model if e.name.startswith("minifasnet")
    ):
        pytest.skip("MiniFASNet pack not provisioned (medpay-provision models --packs)")
    nuaa = shared_dir / "data" / "faces" / "asian" / "nuaa"
    for kind in ("client", "imposter"):
        for path in sorted((nuaa / kind / "0003").iterdir())[:2]:
            _link(path, tmp_path / kind / "0003" / path.name)
    report = _run(
        capsys,
        "liveness",
        "--live",
        str(tmp_path / "client"),
        "--attack",
        str(tmp_path / "imposter"),
        "--json",
    )
    assert report["images"] == {"attack": 2, "live": 2} and report["skipped"] == []
    assert 0.0 <= report["apcer"] <= 1.0 and 0.0 <= report["bpcer"] <= 1.0
    assert [p["target_bpcer"] for p in report["operating_points"]] == [0.01, 0.05, 0.1]
