"""Evaluation results as the JSON object operators and tests read, and as a short text report."""

from __future__ import annotations

from typing import Any

from terminal.evaluation.faces import FaceEvaluation
from terminal.evaluation.liveness import LivenessEvaluation
from terminal.evaluation.metrics import Rate


def _ci(rate: Rate) -> list[float]:
    low, high = rate.ci95
    return [low, high]


def face_json(result: FaceEvaluation) -> dict[str, Any]:
    """The `medpay evaluate faces --json` object (exactly the keys issue 13 lists)."""
    lowest = min((r.value for r in result.tmr_per_person.values()), default=0.0)
    return {
        "threshold": result.threshold,
        "metric": result.metric,
        "fmr": result.fmr.value,
        "tmr": result.tmr.value,
        "fmr_ci95": _ci(result.fmr),
        "tmr_ci95": _ci(result.tmr),
        "pairs": {"impostor": result.fmr.total, "genuine": result.tmr.total},
        "tmr_min_per_person": lowest,
        "skipped": [{"file": s.file, "reason": s.reason} for s in result.skipped],
        "operating_points": [
            {"target_fmr": p.target_fmr, "threshold": p.threshold, "tmr": p.tmr.value}
            for p in result.operating_points
        ],
        "groups": {name: {"fmr": rate.value, "pairs": rate.total} for name, rate in result.groups.items()},
    }


def _pct(rate: Rate) -> str:
    low, high = rate.ci95
    return f"{rate.value:.3g} ({rate.count}/{rate.total}; 95 % CI {low:.3g}–{high:.3g})"


def face_text(result: FaceEvaluation) -> list[str]:
    """Human-readable lines of the same figures, with the per-person true-match rates."""
    direction = "≥" if result.metric == "cosine" else "≤"
    lines = [
        f"metric {result.metric}, match when score {direction} {result.threshold:.4f}"
        + (f", probes = mean of {result.frames} frames" if result.frames > 1 else ""),
        f"FMR {_pct(result.fmr)}",
        f"TMR {_pct(result.tmr)}",
    ]
    lines += [f"  {person}: TMR {_pct(rate)}" for person, rate in sorted(result.tmr_per_person.items())]
    for point in result.operating_points:
        # with fewer than 1/target impostor pairs the point only shows "no false match in n pairs"
        short = point.target_fmr * point.fmr.total < 1
        lines.append(
            f"FMR ≤ {point.target_fmr:g}: threshold {point.threshold:.4f}, FMR {point.fmr.value:.3g}, "
            f"TMR {_pct(point.tmr)}" + (" (too few impostor pairs to resolve this target)" if short else "")
        )
    lines += [f"group {name}: FMR {_pct(rate)}" for name, rate in result.groups.items()]
    lines.append(f"skipped {len(result.skipped)} image(s)")
    lines += [f"  {s.file}: {s.reason}" for s in result.skipped]
    return lines


def liveness_json(result: LivenessEvaluation) -> dict[str, Any]:
    """The `medpay evaluate liveness --json` object."""
    return {
        "threshold": result.threshold,
        "apcer": result.apcer.value,
        "bpcer": result.bpcer.value,
        "apcer_ci95": _ci(result.apcer),
        "bpcer_ci95": _ci(result.bpcer),
        "images": {"attack": result.apcer.total, "live": result.bpcer.total},
        "skipped": [{"file": s.file, "reason": s.reason} for s in result.skipped],
        "operating_points": [
            {
                "target_bpcer": p.target_bpcer,
                "threshold": p.threshold,
                "bpcer": p.bpcer.value,
                "apcer": p.apcer.value,
            }
            for p in result.operating_points
        ],
    }


def liveness_text(result: LivenessEvaluation) -> list[str]:
    """Human-readable lines of the liveness figures."""
    lines = [
        f"live when real-face probability ≥ {result.threshold:.4f}",
        f"APCER {_pct(result.apcer)}",
        f"BPCER {_pct(result.bpcer)}",
    ]
    for point in result.operating_points:
        lines.append(
            f"BPCER ≤ {point.target_bpcer:g}: threshold {point.threshold:.4f}, "
            f"BPCER {point.bpcer.value:.3g}, APCER {_pct(point.apcer)}"
        )
    lines.append(f"skipped {len(result.skipped)} image(s)")
    lines += [f"  {s.file}: {s.reason}" for s in result.skipped]
    return lines
