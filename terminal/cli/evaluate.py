"""`medpay evaluate faces|liveness`: measure the terminal's own pipeline on labelled folders."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from terminal.app import EMBEDDER_METRICS, build_face_stage, embedder_operating_point
from terminal.clock import SystemClock
from terminal.config import DetectorConfig, EmbedderConfig, TerminalConfig, load, models_folder
from terminal.domain import FaceBox
from terminal.evaluation.collect import embed_files, primary_faces
from terminal.evaluation.datasets import (
    DatasetError,
    genuine_samples,
    image_files,
    image_files_under,
    parse_part,
    select_part,
)
from terminal.evaluation.faces import evaluate_faces
from terminal.evaluation.groups import load_labels
from terminal.evaluation.liveness import evaluate_liveness, scores_of
from terminal.evaluation.report import face_json, face_text, liveness_json, liveness_text
from terminal.vision.liveness.minifasnet import REAL_CLASS
from terminal.vision.liveness.pack import load_passive
from terminal.vision.manifest import load_manifest

Tick = Callable[[], None]


@contextmanager
def _progress(label: str, total: int) -> Iterator[Tick]:
    """A progress bar on stderr (stdout may carry the JSON); nothing is drawn when stderr is no terminal."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


def _with_embedder(config: TerminalConfig, embedder: str | None) -> TerminalConfig:
    if embedder is None or embedder == config.models.embedder.type:
        return config
    models = config.models.model_copy(update={"embedder": EmbedderConfig.model_validate({"type": embedder})})
    # [identity] threshold is in the configured embedder's metric; another embedder runs at its own point
    identity = config.identity.model_copy(update={"threshold": None})
    return config.model_copy(update={"models": models, "identity": identity})


def _with_detector(config: TerminalConfig, detector: str | None) -> TerminalConfig:
    """The config with another shipped detector (its own score floor): chips aligned on its landmarks."""
    if detector is None or detector == config.models.detector.type:
        return config
    cfg = config.models.detector
    chosen = DetectorConfig.model_validate(
        {"type": detector, "min_face_size": cfg.min_face_size, "thresholds": cfg.thresholds}
    )
    return config.model_copy(update={"models": config.models.model_copy(update={"detector": chosen})})


def shipped_threshold(config: TerminalConfig) -> float:
    """The 1:1 operating point in use: the embedder's manifest threshold, or a stricter [identity] one."""
    return embedder_operating_point(config).threshold


def cmd_evaluate_faces(args: argparse.Namespace) -> int:
    """False- and true-match rates of the configured (or named) embedder on two folders."""
    config = _with_detector(_with_embedder(load(args.config), args.embedder), args.detector)
    threshold = args.threshold if args.threshold is not None else shipped_threshold(config)
    part = parse_part(args.part) if args.part else None
    impostor_paths = select_part(image_files(args.impostors), part)
    samples = genuine_samples(args.genuine)
    labels = load_labels(args.labels) if args.labels else None
    stage = build_face_stage(config)
    clock = SystemClock()
    with _progress("impostor images", len(impostor_paths)) as tick:
        impostors = embed_files(stage, impostor_paths, clock, tick)
    with _progress("genuine images", len(samples)) as tick:
        genuine = embed_files(stage, [s.path for s in samples], clock, tick)
    gallery = None
    if args.gallery_detector is not None:
        # the gallery side: the same images as templates enrolled on another detector's chips
        enrolment = build_face_stage(_with_detector(config, args.gallery_detector))
        with _progress("gallery impostor images", len(impostor_paths)) as tick:
            gallery_impostors = embed_files(enrolment, impostor_paths, clock, tick)
        with _progress("gallery genuine images", len(samples)) as tick:
            gallery = (gallery_impostors, embed_files(enrolment, [s.path for s in samples], clock, tick))
    result = evaluate_faces(
        impostors, impostor_paths, genuine, samples, EMBEDDER_METRICS[config.models.embedder.type], threshold,
        frames=args.frames, cross_session_only=args.cross_session_only, labels=labels, gallery=gallery,
    )  # fmt: skip
    if args.json:
        sys.stdout.write(json.dumps(face_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        probe = config.models.detector.type
        chips = f"gallery on {args.gallery_detector or probe} chips, probes on {probe} chips"
        head = f"embedder {config.models.embedder.type}, {chips}\n"
        sys.stdout.write(head + "\n".join(face_text(result)) + "\n")
    return 0


def cmd_evaluate_liveness(args: argparse.Namespace) -> int:
    """APCER and BPCER of the passive check (MiniFASNet pack) on live and attack folders."""
    config = load(args.config)
    threshold = args.threshold if args.threshold is not None else config.liveness.passive.real_threshold
    live_paths, attack_paths = image_files_under(args.live), image_files_under(args.attack)
    if not live_paths or not attack_paths:
        raise DatasetError("both --live and --attack must hold images")
    models_dir = models_folder(config)
    passive = load_passive(models_dir, load_manifest(models_dir), config.models.intra_op_threads, threshold)
    detector = build_face_stage(config).detector

    def score(image: NDArray[np.uint8], box: FaceBox) -> float:
        return float(passive.predict(image, box).probabilities[REAL_CLASS])

    with _progress("live images", len(live_paths)) as tick:
        live_faces, live_skipped = primary_faces(detector, live_paths, tick)
        live = scores_of(live_faces, score)
    with _progress("attack images", len(attack_paths)) as tick:
        attack_faces, attack_skipped = primary_faces(detector, attack_paths, tick)
        attack = scores_of(attack_faces, score)
    result = evaluate_liveness(live, attack, threshold, live_skipped + attack_skipped)
    if args.json:
        sys.stdout.write(json.dumps(liveness_json(result), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(liveness_text(result)) + "\n")
    return 0


def add_evaluate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `medpay evaluate faces` and `medpay evaluate liveness`."""
    evaluate = sub.add_parser("evaluate", help="measure face matching or liveness on labelled image folders")
    commands = evaluate.add_subparsers(dest="evaluate_command", required=True)
    faces = commands.add_parser(
        "faces",
        help="false/true-match rates: --impostors (one person per image), --genuine (per-person folders)",
    )
    faces.set_defaults(func=cmd_evaluate_faces)
    faces.add_argument("--impostors", type=Path, required=True, help="folder, one different person per image")
    faces.add_argument(
        "--genuine", type=Path, required=True,
        help="folder of per-person subfolders (sessions: subfolders or NUAA-style names)",
    )  # fmt: skip
    faces.add_argument("--embedder", choices=sorted(EMBEDDER_METRICS), help="default: the config's embedder")
    faces.add_argument(
        "--detector", choices=["mtcnn", "yunet"], help="default: the config's detector (it aligns the chips)"
    )
    faces.add_argument(
        "--gallery-detector",
        choices=["mtcnn", "yunet"],
        help="gallery templates from this detector's chips, probes from --detector's (default: the same)",
    )
    faces.add_argument("--threshold", type=float, help="operating point in the embedder's metric")
    faces.add_argument("--part", metavar="K/N", help="only impostor images whose sorted index is K mod N")
    faces.add_argument("--frames", type=int, default=1, help="genuine probes: mean template of K frames")
    faces.add_argument(
        "--cross-session-only",
        action="store_true",
        help="people recorded in one session give no genuine pairs",
    )
    faces.add_argument("--labels", type=Path, help="JSON {file: {attribute: value}} for per-group rates")
    faces.add_argument("--json", action="store_true")
    liveness = commands.add_parser("liveness", help="APCER/BPCER of the passive check (MiniFASNet pack)")
    liveness.set_defaults(func=cmd_evaluate_liveness)
    liveness.add_argument(
        "--live", type=Path, required=True, help="folder (searched recursively) of live faces"
    )
    liveness.add_argument("--attack", type=Path, required=True, help="folder (recursively) of attack images")
    liveness.add_argument("--threshold", type=float, help="default: [liveness.passive] real_threshold")
    liveness.add_argument("--json", action="store_true")
