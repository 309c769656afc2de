"""The in-memory 1:N index: an int8 or float16 screen over every template, exact re-ranking of a few people.

Every row is held once in a screen (`index_screen`; cosine: the unit row, inner product; euclidean: the
row, squared L2): int8 codes scanned by onnxruntime's integer kernel (`int8`, given by the app) while
the index keeps its float32 copy, float16 codes scanned by faiss's SIMD kernels once it does not (or
without `int8`: the pipeline's own indexes). The screen only narrows: it moves
a screened score by at most its `bound` (derived from the codes' rounding, measured when they are
encoded, and the arithmetic's; not a tuned tolerance), so every person whose
screened best could still be one of the true best two is re-scored exactly with `metric.scores` (the
brute-force function, float64) over their float32 templates. The best and second-best people and their
scores are therefore the ones a brute-force scan over the same templates gives, ties included (a tie goes
to the person whose rows come first, as before).

An open search asks the screen for the top k rows; when the k-th row is not clearly below the second-best
person (by twice the bound), k grows (×8) until it is or every row was returned. A bucket search (the
second factor) screens only that bucket's rows, decoded from the same codes.

Exact templates come from a float32 copy the index keeps while it is small (at most `exact_budget`
bytes), else from `source` (the gallery, decrypted on demand for the few people re-ranked), so a gallery
of 1,000,000 SFace templates is held in about 260 MB (float16) instead of 500 MB. When rows are added
while the copy is held, a screen that would have to clamp them (int8) or is about to lose the copy is
rebuilt from the copy. Removed people's rows are zeroed at once and dropped at the next compaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import faiss
import numpy as np
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric
from terminal.vision.index_people import IndexPeople
from terminal.vision.index_screen import Int8Factory, Screening, ScreenKind, new_screen
from terminal.vision.metric import closeness, scores

# The people's exact float32 templates, by psn_no (a person missing from the answer has none left).
ExactSource = Callable[[Sequence[str]], dict[str, NDArray[np.float32]]]

# compact once dead rows exceed this share of the used rows
_DEAD_SHARE = 0.25
# the float32 copy is kept while it fits this (100,000 SFace templates take 51 MB)
EXACT_BUDGET_BYTES = 64 * 2**20
_FIRST_K = 64  # rows asked of the screen first; ×8 while the answer cannot be proven complete


class TemplateIndex:
    """Templates of one model, grouped by person, for exact 1:N search. Not thread-safe: callers lock."""

    def __init__(
        self,
        metric: Metric,
        capacity: int = 1024,
        source: ExactSource | None = None,
        exact_budget: int = EXACT_BUDGET_BYTES,
        screen: ScreenKind | None = None,
        int8: Int8Factory | None = None,
    ) -> None:
        self._metric: Metric = metric
        self._choice = screen  # None: int8 while the float32 copy is held, float16 once it is not
        self._int8 = int8  # None: float16 only
        self._capacity = max(1, capacity)
        self._source = source
        self._exact_budget = exact_budget if source is not None else None
        # one query at a time: faiss's OpenMP pool would only spin on the kiosk's other core
        faiss.omp_set_num_threads(1)
        self._reset()

    def _reset(self) -> None:
        self._dim = 0
        self._screen: Screening | None = None
        self._exact: NDArray[np.float32] | None = np.zeros((0, 0), dtype=np.float32)
        self._row_slot = np.zeros((0,), dtype=np.int32)
        self._used = 0
        self._dead = 0
        self._people = IndexPeople(self._capacity)
        self.last_reranked = 0  # people the last search re-scored exactly (for the bench and tests)

    @property
    def metric(self) -> Metric:
        """The metric searches score in."""
        return self._metric

    def people(self, bucket: str | None = None) -> int:
        """People held (with at least one template), in one bucket when given."""
        return self._people.people(bucket)

    def holds_exact(self) -> bool:
        """Whether the float32 templates are held here (else the source is read per search)."""
        return self._exact is not None

    def screen_kind(self) -> ScreenKind | None:
        """The screen's codes (None while nothing was added)."""
        return self._screen.kind if self._screen is not None else None

    def nbytes(self) -> int:
        """Memory held by the screen's codes, the float32 copy (if kept) and the per-row/per-slot arrays."""
        codes = self._screen.nbytes() if self._screen is not None else 0
        exact = self._exact.nbytes if self._exact is not None else 0
        return int(codes + exact + self._row_slot.nbytes + self._people.nbytes())

    def load(self, owners: list[str], matrix: NDArray[np.float32], buckets: dict[str, str | None]) -> None:
        """Replace everything with these rows (owners[i] owns matrix[i]); one sort groups each person."""
        self.clear()
        if not owners:
            return
        # UTF-8 names sort in code point order, so the slots follow the names as before
        # encoded as arrays, not a million bytes objects whose freed memory the process would keep
        encoded = np.strings.encode(np.asarray(owners, dtype=np.str_), "utf-8")
        names, codes = np.unique(encoded, return_inverse=True)
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        counts = np.diff(np.r_[starts, len(owners)])
        people = self._people
        first_rows = order[starts].tolist()
        bucket_codes = np.fromiter(
            (people.code(buckets.get(owners[row])) for row in first_rows), dtype=np.int32, count=len(starts)
        )
        # the rows first: rows refused (ModelError) leave no people whose slots point at rows never held
        grouped = np.asarray(matrix, dtype=np.float32)[order]
        try:
            self._append(grouped, np.repeat(np.arange(len(names)), counts))
        finally:
            grouped[:] = 0.0  # a decrypted copy of the whole gallery: not left about
        people.load(names, starts, counts, bucket_codes)

    def replace(self, psn_no: str, templates: NDArray[np.float32], bucket: str | None) -> None:
        """Make a person's rows exactly these (none: the person is removed), decrypted by the caller."""
        if len(templates) == 0:
            self.remove(psn_no)
            return
        rows = np.asarray(templates, dtype=np.float32).reshape(len(templates), -1)
        if self._dim and rows.shape[1] != self._dim:
            # refused before anything changes: the person keeps their rows
            raise ModelError(f"templates of different shapes ({rows.shape[1]},) and ({self._dim},)")
        self.remove(psn_no)
        # the rows first, under the slot the person will get: refused rows (ModelError) leave no person
        # whose slot points at rows never held (the next person's, in another bucket)
        start, slot = self._used, self._people.slots
        self._append(rows, np.full(len(rows), slot))
        added = self._people.add(psn_no, start, len(rows), bucket)
        assert added == slot

    def remove(self, psn_no: str) -> None:
        """Forget a person: their rows are zeroed at once and dropped at the next compaction."""
        slot = self._people.find(psn_no)
        if slot is None:
            return
        start, count = int(self._people.start[slot]), int(self._people.count[slot])
        assert self._screen is not None
        self._screen.zero(start, start + count)
        if self._exact is not None:
            self._exact[start : start + count] = 0.0
        self._row_slot[start : start + count] = -1
        self._people.drop(slot)
        self._dead += count
        if self._dead > _DEAD_SHARE * self._used:
            self._compact()

    def clear(self) -> None:
        """Drop every template (zeroed first, e.g. on shutdown)."""
        if self._exact is not None:
            self._exact[:] = 0.0
        if self._screen is not None:
            self._screen.clear()
        self._reset()

    def search(self, probe: NDArray[np.float32], bucket: str | None = None) -> list[tuple[str, float]]:
        """The best and second-best people (at most two), best first, with their exact scores."""
        if self._used == self._dead:
            return []
        if probe.shape != (self._dim,):
            raise ModelError(f"templates of different shapes {probe.shape} and ({self._dim},)")
        assert self._screen is not None
        probe = np.asarray(probe, dtype=np.float32)
        if not self._screen.takes(probe):
            # a probe so far out that the kernel's float32 sums would overflow: everyone scored exactly
            slots = np.flatnonzero(self._people.count[: self._people.slots] > 0)
            if bucket is not None:
                slots = np.intersect1d(slots, self._people.members(bucket))
            return self._exact_top2(probe, [int(s) for s in slots])
        query = self._screen.query(probe)
        bound = self._screen.bound(probe)
        if bucket is not None:
            rows = self._rows_of(self._people.members(bucket))
            near = self._screen.near_rows(probe, rows)
            return self._exact_top2(probe, self._candidates(rows, near, bound, complete=True) or [])
        k = _FIRST_K
        while True:
            k = min(k, self._used)
            near, rows = self._screen.search(query, k)
            chosen = self._candidates(rows, near, bound, complete=k == self._used)
            if chosen is not None:
                return self._exact_top2(probe, chosen)
            k *= 8

    # ---- screening ---------------------------------------------------------------------------------

    def _candidates(
        self, rows: NDArray[np.int64], near: NDArray[np.float64], bound: float, complete: bool
    ) -> list[int] | None:
        """Slots that could be among the best two people, or None when rows left out might be.

        A row's exact closeness is within `bound` of its screened one. Rows not returned screen at most
        `floor` (the lowest returned), so they cannot reach the top two once floor < second − 2·bound.
        """
        keep = rows >= 0
        rows, near = rows[keep], near[keep]
        slots = self._row_slot[rows]
        live = slots >= 0
        slots, near = slots[live], near[live]
        floor = -np.inf if complete else float(np.min(near, initial=np.inf))
        if slots.size == 0:
            return [] if complete else None
        order = np.lexsort((-near, slots))
        first = order[np.r_[True, slots[order][1:] != slots[order][:-1]]]
        best = np.sort(near[first])[::-1]
        second = float(best[1]) if best.size > 1 else -np.inf
        if not complete and not floor < second - 2 * bound:
            return None
        return [int(s) for s in slots[first][near[first] >= second - 2 * bound]]

    # ---- exact re-ranking --------------------------------------------------------------------------

    def _exact_top2(self, probe: NDArray[np.float32], slots: list[int]) -> list[tuple[str, float]]:
        """Brute force (metric.scores, float64) over the chosen people's rows, top two people."""
        self.last_reranked = len(slots)
        if not slots:
            return []
        blocks, owner, order = self._exact_rows(slots)
        if not blocks:
            return []
        values = scores(probe, np.concatenate(blocks), self._metric)
        near = closeness(values, self._metric)
        # best row per person: by person, then closeness descending, then row order; each person's first
        pick = np.lexsort((order, -near, owner))
        first = pick[np.r_[True, owner[pick][1:] != owner[pick][:-1]]]
        # people by closeness, ties by their first row (the order a brute-force scan meets them)
        ranked = first[np.lexsort((order[first], -near[first]))][:2]
        return [(self._people.name(int(owner[i])), float(values[i])) for i in ranked]

    def _exact_rows(
        self, slots: list[int]
    ) -> tuple[list[NDArray[np.float32]], NDArray[np.int64], NDArray[np.int64]]:
        """The float32 rows of these slots, each row's slot, and each row's place in the index's order."""
        if self._exact is not None:
            # one gather, not a loop per person: an int8 screen re-ranks a few more people
            chosen = np.asarray(slots, dtype=np.int64)
            counts = self._people.count[chosen].astype(np.int64)
            chosen, counts = chosen[counts > 0], counts[counts > 0]
            if chosen.size == 0:
                return [], np.zeros((0,), dtype=np.int64), np.zeros((0,), dtype=np.int64)
            where = self._rows_of(chosen)
            return [self._exact[where]], np.repeat(chosen, counts), where
        blocks: list[NDArray[np.float32]] = []
        owner: list[NDArray[np.int64]] = []
        order: list[NDArray[np.int64]] = []
        held: dict[str, NDArray[np.float32]] = {}
        if self._exact is None and self._source is not None:
            held = self._source([self._people.name(s) for s in slots])
        for slot in slots:
            start, count = int(self._people.start[slot]), int(self._people.count[slot])
            if self._exact is not None:
                rows: NDArray[np.float32] | None = self._exact[start : start + count]
            else:
                rows = held.get(self._people.name(slot))
            if rows is None or len(rows) == 0:
                continue  # removed since the index was refreshed (another process)
            blocks.append(np.asarray(rows, dtype=np.float32).reshape(len(rows), -1))
            owner.append(np.full(len(rows), slot, dtype=np.int64))
            order.append(start + np.arange(len(rows), dtype=np.int64))
        if not blocks:
            return [], np.zeros((0,), dtype=np.int64), np.zeros((0,), dtype=np.int64)
        return blocks, np.concatenate(owner), np.concatenate(order)

    # ---- storage -----------------------------------------------------------------------------------

    def _rows_of(self, slots: NDArray[np.int64]) -> NDArray[np.int64]:
        if slots.size == 0:
            return np.zeros((0,), dtype=np.int64)
        starts = self._people.start[slots].astype(np.int64)
        counts = self._people.count[slots].astype(np.int64)
        # each slot's rows start..start+count, in slot order, without a loop per person
        shift = np.repeat(starts - (np.cumsum(counts) - counts), counts)
        return np.asarray(np.arange(int(counts.sum()), dtype=np.int64) + shift, dtype=np.int64)

    def _append(self, rows: NDArray[np.float32], slots: NDArray[np.int64]) -> None:
        """Rows (grouped by person, slots already made) added to the screen and, while kept, the copy."""
        if self._dim and rows.shape[1] != self._dim:
            # templates of different lengths come from different models and can never be compared
            raise ModelError(f"templates of different shapes ({rows.shape[1]},) and ({self._dim},)")
        start, stop = self._used, self._used + len(rows)
        dim = rows.shape[1]
        kind = self._kind_for(stop, dim)
        if self._screen is None:
            self._screen = new_screen(self._metric, dim, kind, rows, self._int8)
        elif self._exact is not None and (kind != self._screen.kind or not self._screen.covers(rows)):
            # a new screen from the float32 copy: the copy is about to be dropped, or int8 codes would
            # have to clamp the new rows (still correct, but a wider bound). Built before the old one is
            # cleared: a refusal (float16's range) leaves the index as it was
            every = np.concatenate([self._exact[:start], rows]) if start else rows
            try:
                screen = new_screen(self._metric, dim, kind, every, self._int8)
            finally:
                if start:
                    every[:] = 0.0  # a decrypted copy: not left about
            self._screen.clear()
            self._screen = screen
        else:
            self._screen.add(rows)
        self._dim = dim
        self._grow_rows(stop)
        self._row_slot[start:stop] = slots
        if self._exact is not None:
            self._exact[start:stop] = rows
        self._used = stop

    def _kind_for(self, rows: int, dim: int) -> ScreenKind:
        """The screen for this many rows: int8 while the float32 copy will still be held."""
        if self._choice is not None:
            return self._choice if self._int8 is not None else "float16"
        if self._exact is None or self._int8 is None:
            return "float16"
        keeps = self._exact_budget is None or rows * dim * 4 <= self._exact_budget
        return "int8" if keeps else "float16"

    def _grow_rows(self, rows: int) -> None:
        keep_exact = self._exact is not None and (
            self._exact_budget is None or rows * self._dim * 4 <= self._exact_budget
        )
        if self._exact is not None and not keep_exact:
            # too large to hold in float32: the source answers for the few people re-ranked
            self._exact[:] = 0.0
            self._exact = None
        if rows <= len(self._row_slot) and (self._exact is None or rows <= len(self._exact)):
            return
        capacity = max(rows, self._capacity, 2 * len(self._row_slot))
        row_slot = np.full((capacity,), -1, dtype=np.int32)
        row_slot[: self._used] = self._row_slot[: self._used]
        self._row_slot = row_slot
        if self._exact is not None:
            exact = np.zeros((capacity, self._dim), dtype=np.float32)
            if self._used:
                exact[: self._used] = self._exact[: self._used]
            self._exact[:] = 0.0
            self._exact = exact

    def _compact(self) -> None:
        """Drop dead rows: live people move down in their order, the screen keeps their codes."""
        keep = np.flatnonzero(self._row_slot[: self._used] >= 0)
        slots = self._row_slot[keep].astype(np.int64)
        exact = self._exact[keep].copy() if self._exact is not None else None
        assert self._screen is not None
        self._screen.keep(keep)
        self._row_slot[: len(keep)] = slots
        self._row_slot[len(keep) : self._used] = -1
        if self._exact is not None and exact is not None:
            self._exact[: len(keep)] = exact
            self._exact[len(keep) : self._used] = 0.0
            exact[:] = 0.0
        self._used, self._dead = len(keep), 0
        if len(keep):
            starts = np.flatnonzero(np.r_[True, slots[1:] != slots[:-1]])
            counts = np.diff(np.r_[starts, len(keep)])
            self._people.start[slots[starts]] = starts
            self._people.count[slots[starts]] = counts
