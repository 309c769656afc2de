"""The people of the 1:N index: each person's rows, name and bucket, in arrays rather than Python objects.

A million people as a list of names plus a name → slot dict cost about 130 MB of Python objects, more
than a quarter of the index. Here the people loaded at start-up are one sorted array of UTF-8 names (a
slot is its position: found by binary search); only people enrolled later sit in a small dict. Buckets
(the ID number's last four) are one code per slot, grouped once by sorting so that a bucket's people are
a binary search away; people added later are checked among the few added since.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# people added since the bucket grouping before it is redone (each bucket search scans them)
_REGROUP_AFTER = 4096


class IndexPeople:
    """Slots (one per person ever added since the last load), with their rows, names and buckets."""

    def __init__(self, capacity: int) -> None:
        self._capacity = max(1, capacity)
        self._sorted = np.zeros((0,), dtype="S1")  # names of slots 0 .. len-1, sorted (the load)
        self._late: dict[str, int] = {}  # name → slot of people added after the load
        self._late_names: list[str] = []  # names of slots len(_sorted) ..
        # per slot: first row, row count (0: removed); int32 is 2 billion rows, 4 MB per million people
        self.start = np.zeros((0,), dtype=np.int32)
        self.count = np.zeros((0,), dtype=np.int32)
        self._bucket = np.zeros((0,), dtype=np.int32)  # per slot: bucket code, -1 for none
        self._codes: dict[str, int] = {}
        self._grouped: tuple[NDArray[np.int32], NDArray[np.int32]] | None = None
        self._grouped_upto = 0

    @property
    def slots(self) -> int:
        """Slots in use (removed people keep theirs until the next load)."""
        return len(self._sorted) + len(self._late_names)

    def nbytes(self) -> int:
        """Memory of the arrays (the late names and dict aside: few)."""
        grouped = sum(a.nbytes for a in self._grouped) if self._grouped is not None else 0
        return int(
            self._sorted.nbytes + self.start.nbytes + self.count.nbytes + self._bucket.nbytes + grouped
        )

    def load(
        self,
        names: NDArray[np.bytes_],
        starts: NDArray[np.int64],
        counts: NDArray[np.int64],
        buckets: NDArray[np.int32],
    ) -> None:
        """The start-up people: sorted UTF-8 names, their rows and bucket codes (see `code`)."""
        self._reserve(len(names))
        self._sorted = names
        n = len(names)
        self.start[:n], self.count[:n] = starts, counts
        self._bucket[:n] = buckets
        self._grouped = None

    def code(self, bucket: str | None) -> int:
        """The bucket's code (new buckets get the next), -1 for none."""
        return -1 if bucket is None else self._codes.setdefault(bucket, len(self._codes))

    def add(self, psn_no: str, start: int, count: int, bucket: str | None) -> int:
        """A new slot for a person added after the load."""
        slot = self.slots
        self._reserve(slot + 1)
        self._late[psn_no] = slot
        self._late_names.append(psn_no)
        self.start[slot], self.count[slot] = start, count
        self._bucket[slot] = self.code(bucket)
        return slot

    def find(self, psn_no: str) -> int | None:
        """The live slot of a person, or None."""
        slot = self._late.get(psn_no)
        if slot is None and len(self._sorted):
            key = psn_no.encode("utf-8")
            if len(key) > self._sorted.dtype.itemsize:
                return None  # longer than every loaded name
            # the key in the array's own dtype: another would make numpy convert the whole array first
            at = int(np.searchsorted(self._sorted, np.asarray(key, dtype=self._sorted.dtype)))
            slot = at if at < len(self._sorted) and self._sorted[at] == key else None
        return slot if slot is not None and self.count[slot] > 0 else None

    def drop(self, slot: int) -> None:
        """Mark a slot removed (its rows are the caller's to zero)."""
        self.count[slot] = 0
        name = self.name(slot)
        if self._late.get(name) == slot:
            del self._late[name]

    def name(self, slot: int) -> str:
        """The psn_no of a slot."""
        if slot < len(self._sorted):
            return bytes(self._sorted[slot]).decode("utf-8")
        return self._late_names[slot - len(self._sorted)]

    def live(self) -> NDArray[np.bool_]:
        """Whether each slot holds a person."""
        return np.asarray(self.count[: self.slots] > 0)

    def people(self, bucket: str | None) -> int:
        """Live people, in one bucket when given."""
        if bucket is None:
            return int(np.count_nonzero(self.live()))
        return len(self.members(bucket))

    def members(self, bucket: str) -> NDArray[np.int64]:
        """The live slots of a bucket, in slot order."""
        code = self._codes.get(bucket)
        if code is None:
            return np.zeros((0,), dtype=np.int64)
        if self._grouped is None or self.slots - self._grouped_upto > _REGROUP_AFTER:
            upto = self.slots
            by_code = np.argsort(self._bucket[:upto], kind="stable")
            self._grouped = (self._bucket[:upto][by_code], by_code.astype(np.int32))
            self._grouped_upto = upto
        codes, order = self._grouped
        # the key in the array's own dtype: another would make numpy convert the whole array first
        key = np.int32(code)
        lo, hi = np.searchsorted(codes, key, side="left"), np.searchsorted(codes, key, side="right")
        later = np.arange(self._grouped_upto, self.slots, dtype=np.int64)
        found = np.concatenate([order[lo:hi].astype(np.int64), later[self._bucket[later] == code]])
        return np.sort(found[self.count[found] > 0])

    def _reserve(self, slots: int) -> None:
        if slots <= len(self.start):
            return
        capacity = max(slots, self._capacity, 2 * len(self.start))
        for name, fill in (("start", 0), ("count", 0), ("_bucket", -1)):
            old = getattr(self, name)
            grown = np.full((capacity,), fill, dtype=old.dtype)
            grown[: len(old)] = old
            setattr(self, name, grown)
