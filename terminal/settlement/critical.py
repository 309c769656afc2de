"""The critical-illness terms a person gets under a bundle's rule, tilted for assistance recipients or not."""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from terminal.settlement.money import clamp_ratio, fen
from terminal.settlement.policy import CriticalIllness, CriticalIllnessTilt
from terminal.settlement.run import pct


class CriticalTerms(NamedTuple):
    """The critical-illness terms a person gets under one rule, tilted or not, and their trace text."""

    threshold: Decimal
    segments: tuple[tuple[Decimal | None, Decimal], ...]
    cap: Decimal | None
    tilt_note: str
    bands: str


# (id(rule), id(tilt)) → (rule, tilt, terms). The terms depend only on the two policy objects, which
# are frozen all the way down, yet were rebuilt for every resident's bill (segment tuples, tilted
# ratios, the band text). Each entry holds the objects themselves, so their ids cannot be reused by
# other objects while it exists, and a hit must find the very same objects: a bundle copied with other
# tables (model_copy shares nothing here) never reads another bundle's terms.
_TERMS: dict[tuple[int, int], tuple[CriticalIllness, CriticalIllnessTilt | None, CriticalTerms]] = {}
_TERMS_MAX = 64  # a kiosk loads one or two bundles a year; the bound only keeps tests from growing it


def critical_terms(rule: CriticalIllness, tilt: CriticalIllnessTilt | None) -> CriticalTerms:
    """The threshold, segments, cap and texts of `rule` for a person with `tilt` (or none)."""
    key = (id(rule), id(tilt))
    hit = _TERMS.get(key)
    if hit is not None and hit[0] is rule and hit[1] is tilt:
        return hit[2]
    threshold = rule.threshold
    segments = tuple((s.upto, s.ratio) for s in rule.segments)
    cap: Decimal | None = rule.annual_cap
    tilt_note = ""
    if tilt is not None:
        # 国办发〔2021〕42号: assistance recipients get a lower threshold, higher ratios, maybe no cap.
        threshold = fen(threshold * tilt.threshold_factor)
        segments = tuple((upto, clamp_ratio(ratio + tilt.ratio_bonus)) for upto, ratio in segments)
        cap = None if tilt.remove_cap else cap
        tilt_note = f" (救助对象倾斜: 起付线 {threshold}, 比例各加 {pct(tilt.ratio_bonus)})"
    bands = ", ".join(f"{'以上' if u is None else f'≤{fen(u)}'} {pct(r)}" for u, r in segments)
    terms = CriticalTerms(threshold, segments, cap, tilt_note, bands)
    if len(_TERMS) >= _TERMS_MAX:
        _TERMS.clear()
    _TERMS[key] = (rule, tilt, terms)
    return terms
