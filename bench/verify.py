"""Verification accuracy by threshold on the labelled deepface photos in ../shared (a sanity check).

Prints true-match and false-match rates per threshold and writes bench/results/verify.json.
Tiny data (13 people): it shows where errors start, it is not a benchmark of the model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from terminal.app import build_terminal
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, load
from terminal.errors import TerminalError
from terminal.pipeline.capture import frame_from_file

log = logging.getLogger("bench.verify")
REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "data" / "faces" / "deepface"
RESULTS = REPO / "bench" / "results" / "verify.json"
THRESHOLDS = (0.40, 0.45, 0.50, 0.55, 0.60)


def main(argv: list[str] | None = None) -> int:
    """Embed every labelled photo, score every listed pair, report rates per threshold."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    labels_path = args.dataset / "labels.json"
    if not labels_path.is_file():
        log.warning("no dataset at %s; nothing to measure", args.dataset)
        return 0
    labels = json.loads(labels_path.read_text(encoding="utf-8"))
    terminal = build_terminal(load(DEFAULT_CONFIG), Path("/tmp/medpay-bench"), SystemClock())
    templates: dict[str, np.ndarray] = {}
    for name in sorted(labels["identity"]):
        try:
            obs = terminal.face_stage.observe_primary(frame_from_file(args.dataset / name, terminal.clock))
        except TerminalError as exc:
            log.info("%s: %s", name, exc)
            continue
        templates[name] = obs.template
    genuine, impostor, skipped = [], [], 0
    for a, b, same in labels["pairs"]:
        if a not in templates or b not in templates:
            skipped += 1
            continue
        d = float(np.linalg.norm(templates[a] - templates[b]))
        (genuine if same else impostor).append(d)
    rows = []
    for t in THRESHOLDS:
        tmr = sum(d <= t for d in genuine) / len(genuine) if genuine else float("nan")
        fmr = sum(d <= t for d in impostor) / len(impostor) if impostor else float("nan")
        rows.append({"threshold": t, "true_match_rate": tmr, "false_match_rate": fmr,
                     "false_matches": sum(d <= t for d in impostor)})  # fmt: skip
    result: dict[str, Any] = {
        "dataset": str(args.dataset),
        "images_embedded": len(templates),
        "images_listed": len(labels["identity"]),
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "pairs_skipped_no_face": skipped,
        "rates": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    out = sys.stdout
    out.write(f"embedded {len(templates)}/{len(labels['identity'])} images; ")
    out.write(f"{len(genuine)} genuine, {len(impostor)} impostor pairs ({skipped} skipped)\n")
    for row in rows:
        out.write(f"threshold {row['threshold']:.2f}: TMR {row['true_match_rate']:.3f}  ")
        out.write(f"FMR {row['false_match_rate']:.4f} ({row['false_matches']} false matches)\n")
    sys.stdout.write(f"written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
