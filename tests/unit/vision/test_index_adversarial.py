"""Adversarial checks of the 1:N index against a float64 brute-force scan: near ties below the int8 codes'
resolution, duplicate rows across people, one person with more templates than the screen's first k,
rows beyond the codes' range, probes of extreme norms, and enrol/remove/re-enrol/bucket sequences, with
the screen's knobs (first k, block size, tail) turned down so that every branch runs on small galleries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from terminal.domain import FaceBox, FaceObservation, Match, NoMatch
from terminal.errors import ModelError
from terminal.pipeline.identify import Identifier
from terminal.ports import Metric
from terminal.vision import int8_screen, template_index
from terminal.vision.index_screen import ScreenKind
from terminal.vision.int8_screen import Int8Screen
from terminal.vision.metric import accepts, closeness, scores
from terminal.vision.template_index import TemplateIndex

BOX = FaceBox(0, 0, 10, 10, 1.0, np.zeros((5, 2)))

Held = dict[str, tuple[NDArray[np.float32], str | None]]


def reference(probe: NDArray[np.float32], held: Held, metric: Metric, bucket: str | None) -> dict[str, float]:
    """Brute force: every row of the (bucket's) people scored in one scan, each person's best score."""
    people = [p for p, (_, b) in held.items() if bucket is None or b == bucket]
    if not people:
        return {}
    owners = [p for p in people for _ in held[p][0]]
    values = scores(probe, np.concatenate([held[p][0] for p in people]), metric)
    near = closeness(values, metric)
    best: dict[str, int] = {}
    for row, owner in enumerate(owners):
        if owner not in best or near[row] > near[best[owner]]:
            best[owner] = row
    return {p: float(values[row]) for p, row in best.items()}


def assert_same_as_brute_force(
    index: TemplateIndex, probe: NDArray[np.float32], held: Held, metric: Metric, bucket: str | None
) -> None:
    """The index's best two people are brute force's (ties: any of the tied people), scores bit-equal,
    and the Identifier's decision is the same at the thresholds and margins where it could flip."""
    got = index.search(probe, bucket)
    best = reference(probe, held, metric, bucket)
    assert len(got) == min(2, len(best))
    assert len({p for p, _ in got}) == len(got)
    for person, score in got:
        assert person in best and score == best[person]
    ranked = sorted(best.values(), key=lambda s: -float(closeness(s, metric)))
    assert [s for _, s in got] == ranked[: len(got)]
    if len(ranked) < 1:
        return
    first = ranked[0]
    second = ranked[1] if len(ranked) > 1 else None
    # on the best score (accepted, inclusive) and just past it; on the second; the margin on the gap
    thresholds = {first, float(np.nextafter(first, -np.inf if metric == "euclidean" else np.inf))}
    margins = {0.0}
    if second is not None:
        thresholds.add(second)
        margins |= {abs(first - second), float(np.nextafter(abs(first - second), 1.0))}
    for threshold in thresholds:
        for margin in margins:
            expected = decide(best, threshold, metric, margin)
            identifier = Identifier(
                None,  # type: ignore[arg-type]  # 1:N with an index never reads the gallery
                threshold,
                10**9,
                metric,
                model_id="m",
                index=index,
                min_margin=margin,
            )
            decided = identifier.identify(FaceObservation(BOX, probe), bucket)
            if isinstance(expected, Match) and isinstance(decided, Match):
                assert decided == expected
            else:
                assert type(decided) is type(expected)
                assert decided.best_distance == expected.best_distance  # type: ignore[union-attr]


def decide(best: dict[str, float], threshold: float, metric: Metric, margin: float) -> Match | NoMatch:
    """The two rules on brute force's best two people."""
    ranked = sorted(best.items(), key=lambda item: -float(closeness(item[1], metric)))
    psn_no, top = ranked[0]
    if not accepts(top, threshold, metric):
        return NoMatch(method="face-1:N", best_distance=top)
    if len(ranked) > 1:
        second = ranked[1][1]
        if accepts(second, threshold, metric) or abs(top - second) < margin:
            return NoMatch(method="face-1:N", best_distance=top)
    return Match(psn_no=psn_no, method="face-1:N", distance=top)


@contextmanager
def knobs(first_k: int, block: int, tail: int) -> Iterator[None]:
    """The screen's sizes turned down, so growth of k, block maxima and the tail run on small galleries."""
    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(template_index, "_FIRST_K", first_k))
        stack.enter_context(mock.patch.object(int8_screen, "_BLOCK", block))
        stack.enter_context(mock.patch.object(int8_screen, "_TAIL", tail))
        yield


def _rows(rng: np.random.Generator, count: int, dim: int, shape: str, scale: float) -> NDArray[np.float32]:
    """Rows shaped to trouble a screen: near copies of a few centres (ties far below the int8 step),
    exact duplicates, zero rows, or rows spread over many magnitudes."""
    centres = rng.normal(size=(3, dim))
    if shape == "twins":
        rows = centres[rng.integers(0, 3, size=count)] + rng.normal(scale=1e-5, size=(count, dim))
    elif shape == "duplicates":
        rows = centres[rng.integers(0, 3, size=count)]
    elif shape == "zeros":
        rows = rng.normal(size=(count, dim)) * (rng.random((count, 1)) < 0.5)
    else:
        rows = rng.normal(size=(count, dim)) * 10.0 ** rng.uniform(-3, 3, size=(count, 1))
    rows = rows * scale
    # float16 codes refuse values beyond 60,000 (squared L2): no embedder comes near
    return np.asarray(rows * min(1.0, 5e4 / max(float(np.abs(rows).max(initial=0.0)), 1e-30)), np.float32)


def _probes(rng: np.random.Generator, held: Held, dim: int, scale: float) -> list[NDArray[np.float32]]:
    """A copy of a row, a row nudged, the midpoint of two people's rows (a tie in exact arithmetic), the
    zero probe, and probes much larger or smaller than the rows."""
    rows = np.concatenate([r for r, _ in held.values()]) if held else np.zeros((0, dim), np.float32)
    out = [np.zeros(dim, np.float32), (rng.normal(size=dim) * scale).astype(np.float32)]
    if len(rows):
        a, b = rows[rng.integers(0, len(rows))], rows[rng.integers(0, len(rows))]
        out += [
            a,
            (a + rng.normal(scale=1e-6 * scale, size=dim)).astype(np.float32),
            ((a.astype(np.float64) + b) / 2).astype(np.float32),
            (a * 1e4).astype(np.float32),
            (a * 1e-4).astype(np.float32),
        ]
    return out


@pytest.mark.parametrize("copy", ["held", "dropped", "int8 clamped"])
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    dim=st.sampled_from([3, 8, 128]),
    shape=st.sampled_from(["twins", "duplicates", "zeros", "spread"]),
    scale=st.sampled_from([1e-6, 1e-2, 1.0, 30.0, 1e3]),
    sizes=st.tuples(st.sampled_from([1, 2, 64]), st.sampled_from([2, 3, 64]), st.sampled_from([0, 2, 4096])),
    steps=st.integers(min_value=0, max_value=12),
)
def test_sequences_of_changes_search_as_brute_force(
    metric: Metric,
    copy: str,
    seed: int,
    dim: int,
    shape: str,
    scale: float,
    sizes: tuple[int, int, int],
    steps: int,
) -> None:
    rng = np.random.default_rng(seed)
    held: Held = {}

    def source(people: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        return {p: held[p][0] for p in people if p in held}

    screen: ScreenKind | None = "int8" if copy == "int8 clamped" else None
    budget = {"held": template_index.EXACT_BUDGET_BYTES, "dropped": 40 * dim * 4, "int8 clamped": 0}[copy]
    with knobs(*sizes):
        index = TemplateIndex(
            metric, capacity=2, source=source, exact_budget=budget, screen=screen, int8=Int8Screen
        )
        people = int(rng.integers(1, 30))
        counts = rng.integers(1, 4, size=people)
        counts[0] = int(rng.integers(1, 90))  # one person with more templates than the first k
        matrix = _rows(rng, int(counts.sum()), dim, shape, scale)
        owners = [f"p{i:02d}" for i, c in enumerate(counts) for _ in range(int(c))]
        order = rng.permutation(len(owners))
        buckets = {f"p{i:02d}": str(int(rng.integers(0, 3))) for i in range(people)}
        index.load([owners[i] for i in order], matrix[order], dict(buckets))
        for i in range(people):
            name = f"p{i:02d}"
            held[name] = (matrix[[j for j, o in enumerate(owners) if o == name]], buckets[name])
        for _step in range(steps + 1):
            for probe in _probes(rng, held, dim, scale):
                for bucket in (None, str(int(rng.integers(0, 4)))):
                    assert_same_as_brute_force(index, probe, held, metric, bucket)
            person = f"p{int(rng.integers(0, people + 5)):02d}"
            action = rng.random()
            if action < 0.3:
                index.remove(person)
                held.pop(person, None)
            else:
                # a re-enrolment may be a copy of another person's rows, or far beyond the codes' range
                grow = 10.0 ** float(rng.choice([0, 0, 1, 2]))
                rows = _rows(rng, int(rng.integers(1, 4)), dim, shape, scale * grow)
                if held and action < 0.45:
                    rows = next(iter(held.values()))[0].copy()
                bucket = str(int(rng.integers(0, 3)))
                index.replace(person, rows, bucket)
                held[person] = (rows, bucket)
            assert index.people() == len(held)


def _people(rng: np.random.Generator, count: int, dim: int = 8) -> dict[str, NDArray[np.float32]]:
    return {f"p{i}": rng.normal(size=(1, dim)).astype(np.float32) for i in range(count)}


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_refused_enrolment_leaves_no_person_behind(metric: Metric) -> None:
    """Templates of another length are refused before anything changes: no person whose slot would point
    at the rows of whoever is enrolled next, found by a search of the refused person's bucket."""
    rng = np.random.default_rng(4)
    index = TemplateIndex(metric, int8=Int8Screen)
    held: Held = {p: (rows, "1111") for p, rows in _people(rng, 3).items()}
    for person, (rows, bucket) in held.items():
        index.replace(person, rows, bucket)
    with pytest.raises(ModelError):
        index.replace("p0", rng.normal(size=(2, 9)).astype(np.float32), "2222")
    with pytest.raises(ModelError):
        index.replace("stranger", rng.normal(size=(1, 9)).astype(np.float32), "2222")
    assert index.people() == 3 and index.people("2222") == 0
    later = rng.normal(size=(1, 8)).astype(np.float32)
    index.replace("later", later, "3333")
    held["later"] = (later, "3333")
    index.remove("stranger")
    for bucket in (None, "1111", "2222", "3333"):
        assert_same_as_brute_force(index, later[0], held, metric, bucket)
        assert_same_as_brute_force(index, held["p0"][0][0], held, metric, bucket)


def test_a_refusal_while_switching_to_float16_leaves_the_index_searching() -> None:
    """Rows float16 cannot hold, enrolled as the float32 copy is about to be dropped, are refused with the
    int8 screen left as it was (not cleared: every open search would then find no one)."""
    rng = np.random.default_rng(5)
    held: Held = {p: (rows, "b") for p, rows in _people(rng, 8).items()}

    def source(people: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        return {p: held[p][0] for p in people if p in held}

    index = TemplateIndex("euclidean", source=source, exact_budget=10 * 8 * 4, int8=Int8Screen)
    for person, (rows, bucket) in held.items():
        index.replace(person, rows, bucket)
    with pytest.raises(ModelError):
        index.replace("huge", (rng.normal(size=(4, 8)) * 1e5).astype(np.float32), "c")
    assert index.people() == 8 and index.people("c") == 0 and index.screen_kind() == "int8"
    for person in ("p3", "p6"):
        for bucket in (None, "b", "c"):
            assert_same_as_brute_force(index, held[person][0][0], held, "euclidean", bucket)
    held["p9"] = (rng.normal(size=(3, 8)).astype(np.float32), "c")
    index.replace("p9", held["p9"][0], "c")  # past the budget: float16 now
    assert index.screen_kind() == "float16"
    assert_same_as_brute_force(index, held["p9"][0][1], held, "euclidean", None)


def test_a_refused_load_leaves_an_empty_index() -> None:
    """A load float16 refuses leaves no people behind whose slots later enrolments would share."""
    rng = np.random.default_rng(6)
    index = TemplateIndex("euclidean", exact_budget=0)  # float16 only
    with pytest.raises(ModelError):
        index.load(["a", "b"], (rng.normal(size=(2, 8)) * 1e5).astype(np.float32), {"a": "1", "b": "2"})
    assert index.people() == 0 and index.people("1") == 0
    later = rng.normal(size=(1, 8)).astype(np.float32)
    index.replace("c", later, "2")
    assert index.people() == 1 and index.search(later[0], "1") == []
    assert [p for p, _ in index.search(later[0], "2")] == ["c"]


def test_a_removed_person_leaves_the_packed_weights_at_once() -> None:
    """The int8 screen's copy of the packed rows (the session's weight source) holds a removed person's
    codes no longer than its codes do: zeroed at the removal, not at the next search."""
    rng = np.random.default_rng(8)
    index = TemplateIndex("cosine", int8=Int8Screen)
    matrix = rng.normal(size=(6, 8)).astype(np.float32)
    index.load([f"p{i}" for i in range(6)], matrix, {})
    screen = index._screen
    assert isinstance(screen, Int8Screen)
    codes = screen.codes[2].copy()
    assert np.any(codes != 0) and np.any(np.all(codes == screen._weights.T, axis=1))
    index.remove("p2")
    assert not np.any(np.all(codes == screen._weights.T, axis=1))
    assert next(p for p, _ in index.search(matrix[2])) != "p2"
    assert_same_as_brute_force(
        index, matrix[2], {f"p{i}": (matrix[i : i + 1], None) for i in range(6) if i != 2}, "cosine", None
    )


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_a_load_leaves_no_decrypted_copy_of_the_gallery(metric: Metric) -> None:
    """The rows a load groups by person (a copy of every decrypted template) are zeroed once the index
    holds them, as the caller zeroes the matrix it read (docs/identity.md)."""
    rng = np.random.default_rng(9)
    matrix = rng.normal(size=(12, 8)).astype(np.float32)
    owners = [f"p{i % 5}" for i in range(12)]
    seen: list[NDArray[np.float32]] = []
    append = TemplateIndex._append

    def keeping(self: TemplateIndex, rows: NDArray[np.float32], slots: NDArray[np.int64]) -> None:
        seen.append(rows)
        append(self, rows, slots)

    index = TemplateIndex(metric, int8=Int8Screen)
    with mock.patch.object(TemplateIndex, "_append", keeping):
        index.load(owners, matrix, {})
    assert seen and all(not np.any(rows) for rows in seen if rows is not matrix)
    held: Held = {p: (matrix[[i for i, o in enumerate(owners) if o == p]], None) for p in set(owners)}
    assert_same_as_brute_force(index, matrix[7], held, metric, None)


def test_a_best_person_screened_below_two_others_by_nearly_the_bound_is_still_found() -> None:
    """The bound's worst case, built: the best person's row sits just below half an int8 step above its
    code in every dimension (screened lower by nearly the whole bound), two others just above half a step
    below theirs (screened higher by as much), exactly farther from the probe. Only re-ranking everyone
    within twice the full bound of the screened second finds the best person; half the bound drops them."""
    dim = 8
    anchor = np.zeros(dim, dtype=np.float32)
    anchor[0] = 7.0  # the largest value: sets the codes' scale, far from the probe
    scale = 127.0 / (float(anchor[0]) * 1.125)  # as Int8Screen: 127 over the largest value plus an eighth
    probe = np.full(dim, 10.5 / scale, dtype=np.float32)  # 127 · probe / max|probe| is whole: no error
    best = np.full(dim, 10.49 / scale, dtype=np.float32)  # codes 10: decoded 0.49 of a step low
    other = np.full(dim, 10.52 / scale, dtype=np.float32)  # codes 11: decoded 0.48 of a step high
    held: Held = {
        "anchor": (anchor[np.newaxis], None),
        "best": (best[np.newaxis], None),
        "other": (other[np.newaxis], None),
        "twin": (other[np.newaxis].copy(), None),
    }
    index = TemplateIndex("euclidean", int8=Int8Screen)
    index.load(list(held), np.concatenate([rows for rows, _ in held.values()]), {})
    screen = index._screen
    assert isinstance(screen, Int8Screen) and screen.scale == pytest.approx(scale)
    near = screen.near_rows(probe, np.arange(4, dtype=np.int64))
    # screened, the best person is below the other two by more than the bound (not twice the bound)
    assert near[1] < near[2] - screen.bound(probe)
    assert_same_as_brute_force(index, probe, held, "euclidean", None)
    assert index.search(probe)[0][0] == "best"
