"""The in-memory 1:N index: templates held decrypted once, searched with one matrix product.

Rows are one float32 matrix; each person's rows are contiguous, so the best row per person is one
`np.maximum.reduceat` over the row scores, never a Python loop per owner. The float32 screen only picks
candidates: every person whose screened score is within a rounding tolerance of the second-best person
is re-scored exactly with `metric.scores` (the brute-force function), so the best and second-best people
and their scores are the ones a brute-force search over the same templates gives.

A person may carry a bucket (the last four characters of their ID number): a search restricted to a
bucket scores only that bucket's rows, exactly. Removed people leave dead rows (zeroed) until the
matrix is compacted.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric
from terminal.vision.metric import closeness, scores

# Relative rounding of a float32 dot product over a few hundred dimensions is ~1e-6; candidates within
# this much of the second-best screened score are re-scored exactly, so a rounding slip cannot reorder them.
_SCREEN_TOLERANCE = 1e-4
# compact once dead rows exceed this share of the used rows
_DEAD_SHARE = 0.25


class TemplateIndex:
    """Templates of one model, grouped by person, for exact 1:N search. Not thread-safe: callers lock."""

    def __init__(self, metric: Metric, capacity: int = 1024) -> None:
        self._metric: Metric = metric
        self._capacity = max(1, capacity)
        self._reset()

    def _reset(self) -> None:
        self._dim = 0
        self._matrix = np.zeros((0, 0), dtype=np.float32)
        # cosine: 1 / row norm; euclidean: the row's squared norm (both float32, one per row)
        self._weight = np.zeros((0,), dtype=np.float32)
        self._row_slot = np.zeros((0,), dtype=np.int64)
        self._used = 0
        self._dead = 0
        self._slot_of: dict[str, int] = {}
        self._names: list[str] = []
        self._span: list[tuple[int, int]] = []  # per slot: (first row, row count); count 0 when removed
        self._bucket_of: list[str | None] = []
        self._buckets: dict[str, set[int]] = {}
        self._segments: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None

    @property
    def metric(self) -> Metric:
        """The metric searches score in."""
        return self._metric

    def people(self, bucket: str | None = None) -> int:
        """People held (with at least one template), in one bucket when given."""
        if bucket is None:
            return sum(1 for _, count in self._span if count)
        return len(self._buckets.get(bucket, ()))

    def nbytes(self) -> int:
        """Memory held by the matrix and its per-row arrays."""
        return int(self._matrix.nbytes + self._weight.nbytes + self._row_slot.nbytes)

    def load(self, owners: list[str], matrix: NDArray[np.float32], buckets: dict[str, str | None]) -> None:
        """Replace everything with these rows (owners[i] owns matrix[i]); one sort groups each person."""
        self.clear()
        if not owners:
            return
        names, codes = np.unique(np.asarray(owners, dtype=object), return_inverse=True)
        order = np.argsort(codes, kind="stable")
        self._reserve(len(owners), matrix.shape[1])
        self._matrix[: len(owners)] = matrix[order]
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        counts = np.diff(np.r_[starts, len(owners)])
        for slot, (name, start, count) in enumerate(zip(names.tolist(), starts, counts, strict=True)):
            self._new_slot(str(name), int(start), int(count), buckets.get(str(name)))
            self._row_slot[start : start + count] = slot
        self._used = len(owners)
        self._weigh(0, self._used)

    def replace(self, psn_no: str, templates: NDArray[np.float32], bucket: str | None) -> None:
        """Make a person's rows exactly these (none: the person is removed), decrypted by the caller."""
        self.remove(psn_no)
        if len(templates) == 0:
            return
        rows = np.asarray(templates, dtype=np.float32).reshape(len(templates), -1)
        self._reserve(self._used + len(rows), rows.shape[1])
        start = self._used
        self._matrix[start : start + len(rows)] = rows
        self._used += len(rows)
        self._new_slot(psn_no, start, len(rows), bucket)
        self._row_slot[start : self._used] = len(self._names) - 1
        self._weigh(start, self._used)
        self._segments = None

    def remove(self, psn_no: str) -> None:
        """Forget a person: their rows are zeroed at once and dropped at the next compaction."""
        slot = self._slot_of.pop(psn_no, None)
        if slot is None:
            return
        start, count = self._span[slot]
        self._matrix[start : start + count] = 0.0
        self._row_slot[start : start + count] = -1
        self._span[slot] = (start, 0)
        bucket = self._bucket_of[slot]
        if bucket is not None:
            self._buckets[bucket].discard(slot)
        self._dead += count
        self._segments = None
        if self._dead > _DEAD_SHARE * self._used:
            self._compact()

    def clear(self) -> None:
        """Drop every template (the matrix is zeroed first, e.g. on shutdown)."""
        self._matrix[:] = 0.0
        self._reset()

    def search(self, probe: NDArray[np.float32], bucket: str | None = None) -> list[tuple[str, float]]:
        """The best and second-best people (at most two), best first, with their exact scores."""
        if bucket is not None:
            rows = self._rows_of(sorted(self._buckets.get(bucket, ())))
            return self._exact_top2(probe, rows)
        if self._used == self._dead:
            return []
        if probe.shape != (self._dim,):
            raise ModelError(f"templates of different shapes {probe.shape} and ({self._dim},)")
        starts, seg_slot = self._segments_now()
        per_person = np.maximum.reduceat(self._screen(probe), starts)
        per_person[seg_slot < 0] = -np.inf
        live = int(np.count_nonzero(seg_slot >= 0))
        second = float(np.partition(per_person, -2)[-2]) if live >= 2 else float(per_person.max())
        chosen = np.flatnonzero(per_person >= second - self._tolerance(probe))
        return self._exact_top2(probe, self._rows_of(seg_slot[chosen].tolist()))

    # ---- internals -------------------------------------------------------------------------------

    def _screen(self, probe: NDArray[np.float32]) -> NDArray[np.float32]:
        """Approximate closeness per used row (larger = more alike), float32."""
        matrix = self._matrix[: self._used]
        weight = self._weight[: self._used]
        p = np.asarray(probe, dtype=np.float32)
        if self._metric == "cosine":
            unit = p / np.float32(max(float(np.linalg.norm(p)), 1e-12))
            return np.asarray((matrix @ unit) * weight, dtype=np.float32)
        # -(|r - p|^2) up to the constant |p|^2, which does not change the order
        return np.asarray(np.float32(2.0) * (matrix @ p) - weight, dtype=np.float32)

    def _tolerance(self, probe: NDArray[np.float32]) -> float:
        if self._metric == "cosine":
            return _SCREEN_TOLERANCE
        largest = float(self._weight[: self._used].max(initial=0.0))
        return _SCREEN_TOLERANCE * (largest + float(np.dot(probe, probe))) + 1e-12

    def _exact_top2(self, probe: NDArray[np.float32], rows: NDArray[np.int64]) -> list[tuple[str, float]]:
        """Brute force (metric.scores, float64) over a few rows, best row per person, top two people."""
        if rows.size == 0:
            return []
        values = scores(probe, self._matrix[rows], self._metric)
        near = closeness(values, self._metric)
        slots = self._row_slot[rows]
        # best row per person: sort by person, then by closeness descending, and take each person's first
        order = np.lexsort((-near, slots))
        first = order[np.r_[True, slots[order][1:] != slots[order][:-1]]]
        # people by closeness, ties by their first row (the order a brute-force scan meets them)
        ranked = first[np.lexsort((rows[first], -near[first]))][:2]
        return [(self._names[int(slots[i])], float(values[i])) for i in ranked]

    def _rows_of(self, slots: list[int]) -> NDArray[np.int64]:
        spans = [self._span[slot] for slot in slots if self._span[slot][1]]
        if not spans:
            return np.zeros((0,), dtype=np.int64)
        return np.concatenate([np.arange(start, start + count, dtype=np.int64) for start, count in spans])

    def _segments_now(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Starts of the runs of equal row owner (a person's rows, or dead rows) and each run's slot."""
        if self._segments is None:
            owner = self._row_slot[: self._used]
            starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]).astype(np.int64)
            self._segments = (starts, owner[starts])
        return self._segments

    def _new_slot(self, psn_no: str, start: int, count: int, bucket: str | None) -> None:
        slot = len(self._names)
        self._slot_of[psn_no] = slot
        self._names.append(psn_no)
        self._span.append((start, count))
        self._bucket_of.append(bucket)
        if bucket is not None:
            self._buckets.setdefault(bucket, set()).add(slot)

    def _weigh(self, start: int, stop: int) -> None:
        rows = self._matrix[start:stop]
        squared = np.einsum("ij,ij->i", rows, rows, dtype=np.float32)
        if self._metric == "cosine":
            self._weight[start:stop] = 1.0 / np.maximum(np.sqrt(squared), np.float32(1e-12))
        else:
            self._weight[start:stop] = squared

    def _reserve(self, rows: int, dim: int) -> None:
        if self._dim and dim != self._dim:
            # templates of different lengths come from different models and can never be compared
            raise ModelError(f"templates of different shapes ({dim},) and ({self._dim},)")
        if self._dim and rows <= len(self._matrix):
            return
        capacity = max(rows, self._capacity, 2 * len(self._matrix))
        matrix = np.zeros((capacity, dim), dtype=np.float32)
        weight = np.zeros((capacity,), dtype=np.float32)
        row_slot = np.full((capacity,), -1, dtype=np.int64)
        if self._used:
            matrix[: self._used] = self._matrix[: self._used]
        weight[: self._used] = self._weight[: self._used]
        row_slot[: self._used] = self._row_slot[: self._used]
        self._matrix[:] = 0.0
        self._matrix, self._weight, self._row_slot, self._dim = matrix, weight, row_slot, dim

    def _compact(self) -> None:
        """Drop dead rows: live people move down in their order, spans are renumbered."""
        keep = np.flatnonzero(self._row_slot[: self._used] >= 0)
        slots = self._row_slot[keep]
        self._matrix[: len(keep)] = self._matrix[keep]
        self._weight[: len(keep)] = self._weight[keep]
        self._row_slot[: len(keep)] = slots
        self._matrix[len(keep) : self._used] = 0.0
        self._row_slot[len(keep) : self._used] = -1
        self._used, self._dead = len(keep), 0
        if len(keep):
            starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
            counts = np.diff(np.r_[starts, len(keep)])
            for start, count in zip(starts.tolist(), counts.tolist(), strict=True):
                self._span[int(slots[start])] = (start, count)
        self._segments = None
