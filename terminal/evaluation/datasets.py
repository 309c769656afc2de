"""Evaluation image sets on disk: which files, whose face, which recording session, which pairs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from terminal.errors import DatasetError as DatasetError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
# NUAA Photograph Imposter names: subject_glasses_position_session_frame, all digits.
_NUAA_NAME = re.compile(r"^\d+_\d+_\d+_(?P<session>\d+)_(?P<frame>\d+)$")

Pairs = tuple[NDArray[np.int64], NDArray[np.int64]]


@dataclass(frozen=True)
class Sample:
    """One image of a known person; session is None when the data does not say."""

    path: Path
    person: str
    session: str | None


def image_files(folder: Path) -> list[Path]:
    """The images directly in a folder, sorted by name."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_files_under(folder: Path) -> list[Path]:
    """The images in a folder and all its subfolders, sorted by path."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def parse_part(text: str) -> tuple[int, int]:
    """`K/N` → (K, N): the files whose sorted index is K modulo N (a deterministic split)."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if match is None or not 0 <= int(match[1]) < int(match[2]):
        raise DatasetError(f"part must be K/N with 0 <= K < N, got {text!r}")
    return int(match[1]), int(match[2])


def select_part(files: list[Path], part: tuple[int, int] | None) -> list[Path]:
    """Every N-th file starting at K of the name-sorted list (all files without a part)."""
    if part is None:
        return files
    index, count = part
    return sorted(files)[index::count]


def nuaa_session(name: str) -> str | None:
    """The session field of a NUAA file name (`0001_00_00_02_15.jpg` → `02`), else None."""
    match = _NUAA_NAME.match(Path(name).stem)
    return match["session"] if match else None


def frame_order(path: Path) -> tuple[int, str]:
    """Sort key keeping a session's frames in recording order (NUAA's frame number, else the name)."""
    match = _NUAA_NAME.match(path.stem)
    return (int(match["frame"]) if match else 0, path.name)


def genuine_samples(folder: Path) -> list[Sample]:
    """Per-person subfolders; a person's session is its subfolder, or read from NUAA-style file names."""
    people = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if not people:
        raise DatasetError(f"{folder} holds no per-person subfolders")
    samples: list[Sample] = []
    for person in people:
        for path in image_files(person):
            samples.append(Sample(path, person.name, nuaa_session(path.name)))
        for session in sorted(p for p in person.iterdir() if p.is_dir()):
            samples.extend(Sample(path, person.name, session.name) for path in image_files(session))
    return samples


def _codes(values: list[str | None]) -> NDArray[np.int64]:
    lookup: dict[str | None, int] = {}
    return np.array([lookup.setdefault(v, len(lookup)) for v in values], dtype=np.int64)


def genuine_pairs(samples: list[Sample], cross_session_only: bool = False) -> Pairs:
    """Index pairs (i < j) of one person: across sessions when the person has several, else all pairs.

    With cross_session_only, a person recorded in one session gives no pairs: frames of one session are
    near-duplicates and would flatter the true-match rate.
    """
    person = _codes([s.person for s in samples])
    session = _codes([s.session for s in samples])
    first, second = np.triu_indices(len(samples), k=1)
    same_person = person[first] == person[second]
    sessions_of = {p: len(set(session[person == p].tolist())) for p in set(person.tolist())}
    several = np.array([sessions_of[p] > 1 for p in person.tolist()], dtype=bool)
    keep = same_person & np.where(several[first], session[first] != session[second], not cross_session_only)
    return first[keep].astype(np.int64), second[keep].astype(np.int64)


def probe_groups(samples: list[Sample], frames: int) -> list[list[int]]:
    """Consecutive runs of `frames` images of one person's session (a k-frame decision); rest dropped."""
    runs: dict[tuple[str, str | None], list[int]] = {}
    for index, sample in enumerate(samples):
        runs.setdefault((sample.person, sample.session), []).append(index)
    groups: list[list[int]] = []
    for members in runs.values():
        ordered = sorted(members, key=lambda i: frame_order(samples[i].path))
        groups.extend(
            ordered[start : start + frames] for start in range(0, len(ordered) - frames + 1, frames)
        )
    return groups


def group_pairs(samples: list[Sample], groups: list[list[int]], cross_session_only: bool = False) -> Pairs:
    """(group, sample) pairs of one person: other sessions when the person has several, else other frames."""
    multi = {p: len({s.session for s in samples if s.person == p}) > 1 for p in {s.person for s in samples}}
    left: list[int] = []
    right: list[int] = []
    for g, members in enumerate(groups):
        probe = samples[members[0]]
        if not multi[probe.person] and cross_session_only:
            continue
        for index, sample in enumerate(samples):
            if sample.person != probe.person or index in members:
                continue
            if multi[probe.person] and sample.session == probe.session:
                continue
            left.append(g)
            right.append(index)
    return np.array(left, dtype=np.int64), np.array(right, dtype=np.int64)
