"""The in-memory index decides exactly as a brute-force scan over the same templates (property tests)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from terminal.domain import FaceBox, FaceObservation, Match, NoMatch
from terminal.errors import ModelError
from terminal.pipeline.identify import Identifier
from terminal.ports import Metric
from terminal.vision import int8_screen
from terminal.vision.index_screen import ScreenKind
from terminal.vision.int8_screen import Int8Screen
from terminal.vision.metric import accepts, closeness, scores
from terminal.vision.template_index import ExactSource, TemplateIndex


def _new(metric: Metric, **options: Any) -> TemplateIndex:
    """An index as the terminal builds it (app/face_index.py): int8 screen available."""
    return TemplateIndex(metric, int8=Int8Screen, **options)


BOX = FaceBox(0, 0, 10, 10, 1.0, np.zeros((5, 2)))
DIM = 8


def brute_force(
    probe: NDArray[np.float32],
    owners: list[str],
    matrix: NDArray[np.float32],
    threshold: float,
    metric: Metric,
    margin: float,
) -> Match | NoMatch:
    """The reference: every row scored, best row per person by a loop, the two rules on the top two."""
    if not owners:
        return NoMatch(method="face-1:N")
    values = scores(probe, matrix, metric)
    near = closeness(values, metric)
    best_row: dict[str, int] = {}
    for row, owner in enumerate(owners):
        if owner not in best_row or near[row] > near[best_row[owner]]:
            best_row[owner] = row
    ranked = sorted(best_row.items(), key=lambda item: -near[item[1]])
    psn_no, best = ranked[0][0], float(values[ranked[0][1]])
    if not accepts(best, threshold, metric):
        return NoMatch(method="face-1:N", best_distance=best)
    if len(ranked) > 1:
        second = float(values[ranked[1][1]])
        if accepts(second, threshold, metric) or abs(best - second) < margin:
            return NoMatch(method="face-1:N", best_distance=best)
    return Match(psn_no=psn_no, method="face-1:N", distance=best)


class _NoGallery:
    def templates_of(self, psn_no: str, model_id: str) -> list[NDArray[np.float32]]:
        raise AssertionError("1:N must not read the gallery when it has an index")

    def all_templates(self, model_id: str) -> tuple[list[str], NDArray[np.float32]]:
        raise AssertionError("1:N must not read the gallery when it has an index")


def _identifier(index: TemplateIndex, threshold: float, margin: float) -> Identifier:
    return Identifier(
        _NoGallery(),  # type: ignore[arg-type]
        threshold,
        10**9,
        index.metric,
        model_id="m",
        index=index,
        min_margin=margin,
    )


# A gallery: people p0..p{n-1} with 1-3 templates each, rows in random order; values near a few centres
# so that matches, near ties and ambiguities all occur.
galleries = st.integers(min_value=0, max_value=2**32 - 1).map(np.random.default_rng)


def _gallery(rng: np.random.Generator, people: int) -> tuple[list[str], NDArray[np.float32]]:
    owners = [f"p{i}" for i in range(people) for _ in range(int(rng.integers(1, 4)))]
    rng.shuffle(owners)
    centres = rng.normal(size=(4, DIM))
    rows = centres[rng.integers(0, 4, size=len(owners))] + rng.normal(scale=0.3, size=(len(owners), DIM))
    return owners, rows.astype(np.float32)


def _threshold(probe: NDArray[np.float32], matrix: NDArray[np.float32], metric: Metric, q: float) -> float:
    if matrix.shape[0] == 0:
        return 0.5
    return float(np.quantile(scores(probe, matrix, metric), q))


def _source_over(owners: list[str], matrix: NDArray[np.float32]) -> ExactSource:
    """An exact source like the gallery's: each person's rows in their stored order."""

    def source(people: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        return {p: matrix[[i for i, o in enumerate(owners) if o == p]] for p in people if p in owners}

    return source


@pytest.mark.parametrize("screen", [None, "int8", "float16"])
@pytest.mark.parametrize("held", [True, False], ids=["float32 held", "float32 from the source"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@settings(max_examples=100, deadline=None)
@given(
    rng=galleries,
    people=st.integers(min_value=0, max_value=40),
    q=st.floats(min_value=0.0, max_value=1.0),
    margin=st.sampled_from([0.0, 0.01, 0.05]),
)
def test_index_decides_as_brute_force(
    metric: Metric,
    held: bool,
    screen: ScreenKind | None,
    rng: np.random.Generator,
    people: int,
    q: float,
    margin: float,
) -> None:
    owners, matrix = _gallery(rng, people)
    if held:
        index = _new(metric, capacity=4, screen=screen)
    else:
        source = _source_over(owners, matrix)
        index = _new(metric, capacity=4, source=source, exact_budget=0, screen=screen)
    index.load(owners, matrix, {})
    assert index.holds_exact() == (held or not owners)
    if owners:
        assert index.screen_kind() == (screen or ("int8" if held else "float16"))
    for _ in range(3):
        # half the probes are a noisy copy of an enrolled row, so matches occur as well as strangers
        near = matrix[rng.integers(0, len(matrix))] if len(matrix) and rng.random() < 0.5 else 0.0
        probe = np.asarray(near + rng.normal(scale=0.2, size=DIM), dtype=np.float32)
        threshold = _threshold(probe, matrix, metric, q)
        expected = brute_force(probe, owners, matrix, threshold, metric, margin)
        got = _identifier(index, threshold, margin).identify(FaceObservation(BOX, probe))
        assert got == expected


@pytest.mark.parametrize("screen", [None, "int8", "float16"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@settings(max_examples=80, deadline=None)
@given(rng=galleries, steps=st.integers(min_value=1, max_value=30), q=st.floats(0.0, 1.0))
def test_incremental_changes_decide_as_brute_force_over_what_remains(
    metric: Metric, screen: ScreenKind | None, rng: np.random.Generator, steps: int, q: float
) -> None:
    """Enrolments, re-enrolments and removals applied one by one (with compactions) leave an index that
    decides as brute force over the gallery as it now stands. Later rows may be far larger than the
    first (an int8 screen is rebuilt from the float32 copy rather than clamp them), and with a source
    and a small budget the copy is dropped part way (int8 → float16)."""
    held: dict[str, NDArray[np.float32]] = {}

    def source(people: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        return {p: held[p] for p in people if p in held}

    if rng.random() < 0.5:
        index = _new(metric, capacity=2, screen=screen)
    else:
        index = _new(metric, capacity=2, screen=screen, source=source, exact_budget=20 * DIM * 4)
    for _ in range(steps):
        person = f"p{int(rng.integers(0, 12))}"
        if rng.random() < 0.3:
            index.remove(person)
            held.pop(person, None)
        else:
            size = 10.0 ** int(rng.integers(-2, 3))
            rows = rng.normal(scale=size, size=(int(rng.integers(1, 4)), DIM)).astype(np.float32)
            index.replace(person, rows, bucket=None)
            held[person] = rows
    owners = [p for p, rows in held.items() for _ in rows]
    matrix = np.concatenate(list(held.values())) if held else np.zeros((0, DIM), dtype=np.float32)
    assert index.people() == len(held)
    probe = rng.normal(size=DIM).astype(np.float32)
    threshold = _threshold(probe, matrix, metric, q)
    expected = brute_force(probe, owners, matrix, threshold, metric, 0.02)
    assert _identifier(index, threshold, 0.02).identify(FaceObservation(BOX, probe)) == expected


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_bucket_search_sees_only_its_people(metric: Metric) -> None:
    rng = np.random.default_rng(7)
    index = _new(metric)
    twin = rng.normal(size=DIM).astype(np.float32)
    index.replace("A", twin[np.newaxis], bucket="1234")
    index.replace("B", (twin + 1e-3)[np.newaxis], bucket="5678")
    index.replace("C", rng.normal(size=(2, DIM)).astype(np.float32), bucket="1234")
    assert index.people() == 3 and index.people("1234") == 2 and index.people("0000") == 0
    assert [p for p, _ in index.search(twin)] == ["A", "B"]
    assert [p for p, _ in index.search(twin, "5678")] == ["B"]
    assert index.search(twin, "1234")[0][0] == "A" and len(index.search(twin, "1234")) == 2
    index.remove("A")
    assert index.people("1234") == 1 and [p for p, _ in index.search(twin, "1234")] == ["C"]
    assert index.search(twin, "0000") == []


@pytest.mark.parametrize("screen", ["int8", "float16"])
def test_removed_rows_are_zeroed_and_clear_empties_the_index(screen: ScreenKind) -> None:
    index = _new("cosine", capacity=8, screen=screen)
    a = np.arange(1, DIM + 1, dtype=np.float32)
    index.replace("A", np.stack([a, a]), bucket=None)
    index.replace("B", np.full((1, DIM), 2.0, dtype=np.float32), bucket=None)
    index.replace("C", np.full((5, DIM), 3.0, dtype=np.float32), bucket=None)
    assert index._screen is not None
    unit = a / np.linalg.norm(a)

    def held_a() -> bool:
        assert index._screen is not None
        decoded = index._screen.decoded(index._screen.codes)
        return bool(np.any(np.linalg.norm(decoded - unit, axis=1) < 0.05))

    assert held_a()
    index.remove("A")
    # the decrypted rows of a removed person do not linger in memory: neither float32 nor the screen
    assert index._exact is not None and not np.any(np.all(index._exact == a, axis=1))
    assert not held_a()
    index.clear()
    assert index.people() == 0 and index.search(np.ones(DIM, dtype=np.float32)) == []


def test_templates_of_another_length_are_refused() -> None:
    index = _new("euclidean")
    index.replace("A", np.zeros((1, DIM), dtype=np.float32), bucket=None)
    with pytest.raises(ModelError):
        index.replace("B", np.zeros((1, DIM + 1), dtype=np.float32), bucket=None)
    with pytest.raises(ModelError):
        index.search(np.zeros(DIM + 1, dtype=np.float32))


def test_a_large_gallery_reads_only_a_few_people_from_the_source() -> None:
    """Without the float32 copy, a search re-ranks from the source only the people the screen left in."""
    rng = np.random.default_rng(18)
    owners = [f"p{i}" for i in range(3000)]
    matrix = rng.normal(size=(3000, 128)).astype(np.float32)
    asked: list[str] = []
    source = _source_over(owners, matrix)

    def counting(people: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        asked.extend(people)
        return source(people)

    index = _new("cosine", source=counting, exact_budget=0)
    index.load(owners, matrix, {})
    probe = matrix[1234] + rng.normal(scale=0.3, size=128).astype(np.float32)
    found = index.search(probe)
    expected = np.argsort(-closeness(scores(probe, matrix, "cosine"), "cosine"))[:2]
    assert [p for p, _ in found] == [owners[i] for i in expected]
    assert 2 <= len(asked) <= 10


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@settings(max_examples=60, deadline=None)
@given(rng=galleries, steps=st.integers(min_value=0, max_value=20))
def test_bucket_searches_after_a_load_and_changes_see_exactly_their_bucket(
    metric: Metric, rng: np.random.Generator, steps: int
) -> None:
    """Loaded people (found by binary search) and people changed later (a dict) land in the right bucket."""
    owners, matrix = _gallery(rng, 30)
    bucket_of = {p: str(int(rng.integers(0, 3))) for p in set(owners)}
    index = _new(metric, capacity=4)
    index.load(owners, matrix, dict(bucket_of))
    held = {p: matrix[[i for i, o in enumerate(owners) if o == p]] for p in set(owners)}
    for _ in range(steps):
        person = f"p{int(rng.integers(0, 40))}"
        if rng.random() < 0.4:
            index.remove(person)
            held.pop(person, None)
        else:
            held[person] = rng.normal(size=(int(rng.integers(1, 3)), DIM)).astype(np.float32)
            bucket_of[person] = str(int(rng.integers(0, 3)))
            index.replace(person, held[person], bucket_of[person])
    probe = rng.normal(size=DIM).astype(np.float32)
    for bucket in "0123":
        members = [p for p in held if bucket_of[p] == bucket]
        assert index.people(bucket) == len(members)
        got = index.search(probe, bucket)
        best = sorted((float(closeness(scores(probe, held[p], metric), metric).max()), p) for p in members)[
            ::-1
        ][:2]
        assert [p for p, _ in got] == [p for _, p in best]


@pytest.mark.parametrize("screen", ["int8", "float16"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@settings(max_examples=120, deadline=None)
@given(
    rng=galleries,
    rows=st.integers(min_value=1, max_value=60),
    dim=st.sampled_from([DIM, 128]),
    size=st.integers(min_value=-6, max_value=4),
    probe_kind=st.sampled_from(["near", "random", "zero", "far"]),
)
def test_every_screened_score_is_within_the_bound_of_the_exact_one(
    metric: Metric,
    screen: ScreenKind,
    rng: np.random.Generator,
    rows: int,
    dim: int,
    size: int,
    probe_kind: str,
) -> None:
    """The bound is what makes the index exact: over galleries of any scale (values from 1e-6 to 1e4,
    dimensions of different sizes, zero rows) and probes near, random, zero or far away, each row's
    screened closeness (faiss's SIMD kernel, at the shipped dimension too, and the decoded codes of a
    bucket search) lies within it."""
    scales = 10.0 ** (size + rng.uniform(-1, 1, size=dim))
    matrix = (rng.normal(size=(rows, dim)) * scales).astype(np.float32)
    matrix[rng.random(rows) < 0.1] = 0.0
    if screen == "float16" and metric == "euclidean" and np.abs(matrix).max() > 60000:
        return
    index = _new(metric, screen=screen)
    index.load([f"p{i:03d}" for i in range(rows)], matrix, {})  # names in row order
    probe = {
        "near": matrix[int(rng.integers(0, rows))] + 0.1 * scales * rng.normal(size=dim),
        "random": rng.normal(size=dim) * scales,
        "zero": np.zeros(dim),
        "far": rng.normal(size=dim) * scales * 1e3,
    }[probe_kind].astype(np.float32)
    assert index._screen is not None
    bound = index._screen.bound(probe)
    near, found = index._screen.search(index._screen.query(probe), rows)
    exact = scores(probe, matrix, metric)
    exact_near = exact if metric == "cosine" else -(exact**2)
    assert np.all(np.abs(near - exact_near[found]) <= bound)
    decoded = index._screen.near_rows(probe, np.arange(rows, dtype=np.int64))
    assert np.all(np.abs(decoded - exact_near) <= bound)


def test_int8_codes_clamped_beyond_their_range_stay_exact() -> None:
    """Without the float32 copy an int8 screen cannot be rebuilt: rows beyond its range are clamped, the
    measured error widens the bound, and the decisions stay those of brute force."""
    rng = np.random.default_rng(3)
    owners = [f"p{i}" for i in range(50)]
    matrix = rng.normal(size=(50, DIM)).astype(np.float32)
    big = (rng.normal(size=(3, DIM)) * 50).astype(np.float32)
    held = {o: matrix[i : i + 1] for i, o in enumerate(owners)} | {"big": big}

    def source(people: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        return {p: held[p] for p in people if p in held}

    index = _new("euclidean", screen="int8", source=source, exact_budget=0)
    index.load(owners, matrix, {})
    assert index._screen is not None
    before = index._screen.bound(big[0])
    assert not index._screen.covers(big)
    index.replace("big", big, bucket=None)
    assert index._screen.bound(big[0]) > before and not index.holds_exact()
    everyone = owners + ["big"] * 3
    rows = np.concatenate([matrix, big])
    for probe in [big[1] + rng.normal(size=DIM).astype(np.float32), matrix[7], np.zeros(DIM, np.float32)]:
        expected = brute_force(
            probe, everyone, rows, float(np.median(scores(probe, rows, "euclidean"))), "euclidean", 0.0
        )
        got = _identifier(index, float(np.median(scores(probe, rows, "euclidean"))), 0.0).identify(
            FaceObservation(BOX, probe)
        )
        assert got == expected


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_probe_beyond_float32s_sums_is_ranked_exactly(metric: Metric) -> None:
    """A probe the kernel cannot take (its float32 squared distances would overflow) is scored exactly."""
    rng = np.random.default_rng(5)
    owners, matrix = _gallery(rng, 20)
    index = _new(metric, screen="int8")
    index.load(owners, matrix, {"p3": "b"})
    probe = np.full(DIM, 3e38, dtype=np.float32)
    threshold = _threshold(probe, matrix, metric, 0.5)
    expected = brute_force(probe, owners, matrix, threshold, metric, 0.0)
    assert _identifier(index, threshold, 0.0).identify(FaceObservation(BOX, probe)) == expected
    assert [p for p, _ in index.search(probe, "b")] == ["p3"]


def test_the_screen_searches_on_one_thread() -> None:
    """faiss's OpenMP pool is held to one thread: a search never waits for threads to start."""
    _new("cosine")
    assert faiss.omp_get_max_threads() == 1


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rows_enrolled_after_packing_are_scored_until_the_weights_are_repacked(
    metric: Metric, monkeypatch: pytest.MonkeyPatch
) -> None:
    """People enrolled after the int8 weights were packed are scored from their codes (a tail) until
    enough wait, then packed; a removal repacks at the next search. Each search equals brute force."""
    monkeypatch.setattr(int8_screen, "_TAIL", 3)
    rng = np.random.default_rng(11)
    index = _new(metric)
    held: dict[str, NDArray[np.float32]] = {}
    packed: list[int] = []
    for step in range(12):
        person = f"p{step:02d}"
        held[person] = rng.normal(size=(1, DIM)).astype(np.float32)
        index.replace(person, held[person], bucket=None)
        if step == 8:
            index.remove("p03")
            held.pop("p03")
        owners = list(held)
        matrix = np.concatenate(list(held.values()))
        probe = (matrix[int(rng.integers(0, len(matrix)))] + 0.1 * rng.normal(size=DIM)).astype(np.float32)
        threshold = _threshold(probe, matrix, metric, 0.5)
        expected = brute_force(probe, owners, matrix, threshold, metric, 0.0)
        assert _identifier(index, threshold, 0.0).identify(FaceObservation(BOX, probe)) == expected
        assert isinstance(index._screen, int8_screen.Int8Screen)
        packed.append(index._screen._packed)
    # packed once at the first enrolment, again when more than three waited, and after the removal
    assert packed[:5] == [1, 1, 1, 1, 5] and packed[8] == 9


@settings(max_examples=200, deadline=None)
@given(
    rng=galleries,
    rows=st.integers(min_value=1, max_value=3000),
    k=st.integers(min_value=1, max_value=200),
    levels=st.sampled_from([3, 50, 10**6]),
)
def test_the_top_rows_through_block_maxima_are_the_k_largest(
    rng: np.random.Generator, rows: int, k: int, levels: int
) -> None:
    """Block maxima find the k largest values (few levels: many ties), as a full selection does."""
    near = rng.integers(0, levels, size=rows).astype(np.float64)
    top = int8_screen.top_rows(near, k)
    assert len(top) == min(k, rows) and len(set(top.tolist())) == len(top)
    assert np.array_equal(np.sort(near[top]), np.sort(near)[::-1][: len(top)][::-1])


def test_without_an_int8_factory_the_index_screens_in_float16() -> None:
    """The pipeline's own indexes (no onnxruntime behind the pipeline) screen in float16, even if asked."""
    rng = np.random.default_rng(2)
    owners, matrix = _gallery(rng, 20)
    for screen in (None, "int8"):
        index = TemplateIndex("cosine", screen=screen)  # type: ignore[arg-type]
        index.load(owners, matrix, {})
        assert index.screen_kind() == "float16"
        probe = matrix[3]
        threshold = _threshold(probe, matrix, "cosine", 0.5)
        expected = brute_force(probe, owners, matrix, threshold, "cosine", 0.0)
        assert _identifier(index, threshold, 0.0).identify(FaceObservation(BOX, probe)) == expected
