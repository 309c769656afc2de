"""Sessions from names and folders, the deterministic split, and which pairs are genuine."""

from __future__ import annotations

from pathlib import Path

import pytest

from terminal.evaluation.datasets import (
    DatasetError,
    Sample,
    genuine_pairs,
    genuine_samples,
    group_pairs,
    nuaa_session,
    parse_part,
    probe_groups,
    select_part,
)


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_nuaa_names_carry_the_session_in_the_fourth_field() -> None:
    assert nuaa_session("0001_00_00_02_156.jpg") == "02"
    assert nuaa_session("0006_01_00_03_7.png") == "03"
    assert nuaa_session("fty12.jpg") is None and nuaa_session("0001_00_02_15.jpg") is None


def test_sessions_come_from_names_in_a_flat_folder_and_from_session_subfolders(tmp_path: Path) -> None:
    _touch(tmp_path / "0001" / "0001_00_00_01_0.jpg")
    _touch(tmp_path / "0001" / "0001_00_00_02_5.jpg")
    _touch(tmp_path / "0001" / "notes.txt")
    _touch(tmp_path / "anna" / "morning" / "a.jpg")
    _touch(tmp_path / "anna" / "evening" / "b.png")
    _touch(tmp_path / "bo" / "one.jpg")
    got = {(s.path.name, s.person, s.session) for s in genuine_samples(tmp_path)}
    assert got == {
        ("0001_00_00_01_0.jpg", "0001", "01"),
        ("0001_00_00_02_5.jpg", "0001", "02"),
        ("a.jpg", "anna", "morning"),
        ("b.png", "anna", "evening"),
        ("one.jpg", "bo", None),
    }
    with pytest.raises(DatasetError):
        genuine_samples(tmp_path / "0001" / "missing")


def _samples(spec: dict[str, list[str | None]]) -> list[Sample]:
    return [
        Sample(Path(f"{person}_{i}.jpg"), person, session)
        for person, sessions in spec.items()
        for i, session in enumerate(sessions)
    ]


def test_genuine_pairs_cross_sessions_only_when_a_person_has_several() -> None:
    # A: 2 frames in s1 × 3 in s2 = 6 cross pairs (the 1 + 3 same-session pairs are left out);
    # B: one session of 4 frames = all 6 pairs; C: one image = none.
    samples = _samples({"A": ["s1", "s1", "s2", "s2", "s2"], "B": ["s1"] * 4, "C": [None]})
    first, second = genuine_pairs(samples)
    pairs = {
        (samples[i].person, samples[i].session, samples[j].session)
        for i, j in zip(first, second, strict=True)
    }
    assert len(first) == 12 and (first < second).all()
    assert ("A", "s1", "s1") not in pairs and ("A", "s2", "s2") not in pairs
    assert sum(samples[i].person == "B" for i in first) == 6
    cross_first, _ = genuine_pairs(samples, cross_session_only=True)
    assert len(cross_first) == 6 and all(samples[i].person == "A" for i in cross_first)


def test_k_frame_probes_are_consecutive_frames_of_one_session_against_other_sessions() -> None:
    samples = [Sample(Path(f"0001_00_00_01_{n}.jpg"), "A", "01") for n in (30, 10, 20, 40)]
    samples += [Sample(Path(f"0001_00_00_02_{n}.jpg"), "A", "02") for n in (5, 6, 7)]
    groups = probe_groups(samples, 3)
    # frame order, not listing order; the 4th frame of session 01 is left over
    assert [[samples[i].path.name for i in g] for g in groups] == [
        ["0001_00_00_01_10.jpg", "0001_00_00_01_20.jpg", "0001_00_00_01_30.jpg"],
        ["0001_00_00_02_5.jpg", "0001_00_00_02_6.jpg", "0001_00_00_02_7.jpg"],
    ]
    g, right = group_pairs(samples, groups)
    # group of 01 against the 3 images of 02, group of 02 against the 4 images of 01
    assert len(g) == 7 and all(
        samples[r].session != samples[groups[k][0]].session for k, r in zip(g, right, strict=True)
    )


def test_part_selects_a_deterministic_disjoint_split() -> None:
    files = [Path(name) for name in ("c.jpg", "a.jpg", "d.jpg", "b.jpg", "e.jpg")]
    even, odd = select_part(files, parse_part("0/2")), select_part(files, parse_part("1/2"))
    assert [p.name for p in even] == ["a.jpg", "c.jpg", "e.jpg"] and [p.name for p in odd] == [
        "b.jpg",
        "d.jpg",
    ]
    assert select_part(files, None) == files
    for bad in ("2/2", "x", "1/0"):
        with pytest.raises(DatasetError):
            parse_part(bad)
