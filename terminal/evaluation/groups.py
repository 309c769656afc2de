"""Demographic groups of impostor pairs, from file-name rules and an optional labels file (data-driven)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from terminal.evaluation.datasets import DatasetError

# SCUT-FBP5500 (aligned copy): f/m = female/male, then ty/tw = Asian ("yellow") / white, then a number.
_SCUT_NAME = re.compile(r"^(?P<sex>[fm])t(?P<ethnicity>[yw])\d+$")
_SCUT_SEX = {"f": "female", "m": "male"}
_SCUT_ETHNICITY = {"y": "asian", "w": "white"}

Attributes = dict[str, str]


def name_attributes(path: Path) -> Attributes:
    """What a file name says about the face (SCUT's `fty123.jpg` → female, asian); {} when nothing."""
    match = _SCUT_NAME.match(path.stem)
    if match is None:
        return {}
    return {"sex": _SCUT_SEX[match["sex"]], "ethnicity": _SCUT_ETHNICITY[match["ethnicity"]]}


def load_labels(path: Path) -> dict[str, Attributes]:
    """A JSON object {file name: {attribute: value}} that adds to or overrides the file-name rules."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"labels file {path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict) or not all(
        isinstance(v, dict) and all(isinstance(x, str) for x in v.values()) for v in raw.values()
    ):
        raise DatasetError(f"labels file {path} must map file names to {{attribute: value}} objects")
    return {str(name): {str(k): v for k, v in attrs.items()} for name, attrs in raw.items()}


def attributes_of(paths: list[Path], labels: dict[str, Attributes] | None = None) -> list[Attributes]:
    """Each file's attributes: the name rule, then the labels file on top."""
    extra = labels or {}
    return [{**name_attributes(p), **extra.get(p.name, {})} for p in paths]


def pair_groups(
    attributes: list[Attributes], first: NDArray[np.int64], second: NDArray[np.int64]
) -> dict[str, NDArray[np.bool_]]:
    """Masks over the pairs: `female–female`, `male–male`, `mixed sex`, … for every attribute the data has.

    A group exists only when both faces of some pair carry the attribute: with no labelled white faces
    there is no `white–white` group, and the report says nothing about them.
    """
    groups: dict[str, NDArray[np.bool_]] = {}
    names = sorted({key for attrs in attributes for key in attrs})
    for name in names:
        values = [attrs.get(name) for attrs in attributes]
        levels = sorted({v for v in values if v is not None})
        code = np.array([levels.index(v) if v is not None else -1 for v in values], dtype=np.int64)
        a, b = code[first], code[second]
        known = (a >= 0) & (b >= 0)
        for level, value in enumerate(levels):
            mask = known & (a == level) & (b == level)
            if mask.any():
                groups[f"{value}–{value}"] = mask
        mixed = known & (a != b)
        if mixed.any():
            groups[f"mixed {name}"] = mixed
    return groups
