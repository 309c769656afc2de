"""The 1:N index's screen: every row held once, scanned for a bound-checked shortlist.

Two kinds of codes, each with a bound on how far a screened closeness can be from the exact one (what
`metric.scores` gives in float64), so the index can re-rank exactly everyone who could still be first or
second:

- **int8** (`int8_screen.Int8Screen`, onnxruntime's integer kernel): while the index keeps its float32
  copy, so a re-ranked person costs a gather, and a wider bound is cheap.
- **float16** (here: faiss QT_fp16, scanned by its SIMD kernels): relative rounding 2^-11, so the bound
  follows from float16's unit roundoff and the norms, plus the float32 rounding of the kernel's sums (at
  most 4·dim units of 2^-24 of the terms' sizes) and 10 % on top. The index uses it once the float32 copy
  is dropped: a re-ranked person is then decrypted again per search, and the narrow bound keeps them to
  two or three.

(faiss 1.15's 8-bit kernels were measured slower than onnxruntime's here, and its QT_8bit_direct kernels
give wrong sums at 32 dimensions and more with every SIMD level.) Codes of removed rows are set to zero
(the zero row) at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

import faiss
import numpy as np
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric
from terminal.vision.metric import normalised

# The screen's codes: int8 while the float32 copy is held (by default), float16 once it is not.
ScreenKind = Literal["int8", "float16"]

_FP16_MAX = 60000.0  # float16 overflows at 65504: templates never come near it
_UNIT_ROUNDOFF_16 = 2.0**-11
_UNIT_ROUNDOFF_32 = 2.0**-24
_FLOAT32_SAFE = 1e36  # a squared distance below this cannot overflow float32 (3.4e38) in the kernel
_CHUNK = 16384  # rows encoded at a time (float64 temporaries of 16 MB at 128 dims)


class Screening(Protocol):
    """What the index asks of a screen (this module's float16 `Screen`, `int8_screen.Int8Screen`)."""

    @property
    def kind(self) -> ScreenKind: ...
    @property
    def codes(self) -> NDArray[Any]: ...
    def covers(self, rows: NDArray[np.float32]) -> bool: ...
    def add(self, rows: NDArray[np.float32]) -> None: ...
    def zero(self, start: int, stop: int) -> None: ...
    def keep(self, rows: NDArray[np.int64]) -> None: ...
    def clear(self) -> None: ...
    def nbytes(self) -> int: ...
    def takes(self, probe: NDArray[np.float32]) -> bool: ...
    def query(self, probe: NDArray[np.float32]) -> NDArray[Any]: ...
    def search(self, query: NDArray[Any], k: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]: ...
    def near_rows(self, probe: NDArray[np.float32], rows: NDArray[np.int64]) -> NDArray[np.float64]: ...
    def bound(self, probe: NDArray[np.float32]) -> float: ...
    def decoded(self, codes: NDArray[Any]) -> NDArray[np.float64]: ...


# How an int8 screen is made (`int8_screen.Int8Screen`): given to the index by the app, so that the
# pipeline, which builds float16 indexes of its own, never loads onnxruntime (pyproject's contract).
Int8Factory = Callable[[Metric, int, NDArray[np.float32]], Screening]


def new_screen(
    metric: Metric, dim: int, kind: ScreenKind, rows: NDArray[np.float32], int8: Int8Factory | None
) -> Screening:
    """A screen of this kind holding exactly these rows."""
    if kind == "int8" and int8 is not None:
        return int8(metric, dim, rows)
    return Screen(metric, dim, rows)


class Screen:
    """One model's rows as float16 codes in a faiss flat index; exact only up to `bound`."""

    kind: Literal["float16"] = "float16"

    def __init__(self, metric: Metric, dim: int, rows: NDArray[np.float32]) -> None:
        self.metric: Metric = metric
        self.dim = dim
        space = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        self._faiss = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, space)
        self.max_norm = 0.0  # largest |x| held
        self.codes = np.zeros((0, self._faiss.code_size), dtype=np.uint8)
        self.add(rows)

    # ---- rows --------------------------------------------------------------------------------------

    def covers(self, rows: NDArray[np.float32]) -> bool:
        """Whether these rows fit the codes (always: out-of-range values are refused by `add`)."""
        return True

    def add(self, rows: NDArray[np.float32]) -> None:
        """Encode rows after those held."""
        if self.metric != "cosine" and float(np.abs(rows).max(initial=0.0)) > _FP16_MAX:
            raise ModelError("template values out of float16's range")
        for at in range(0, len(rows), _CHUNK):
            exact = self._exact(rows[at : at + _CHUNK])
            self._faiss.add_sa_codes(np.ascontiguousarray(exact.astype(np.float16)).view(np.uint8))
            self.max_norm = max(self.max_norm, float(np.linalg.norm(exact, axis=1).max()))
        self.codes = _codes_view(self._faiss)

    def zero(self, start: int, stop: int) -> None:
        """Rows start..stop become the zero row (a removed person's codes do not linger)."""
        self.codes[start:stop] = 0

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Hold only these rows, in this order (a compaction): the same codes, so the bound still holds."""
        kept = self.codes[rows].copy()
        self.codes[:] = 0
        self._faiss.reset()
        self._faiss.add_sa_codes(kept)
        kept[:] = 0
        self.codes = _codes_view(self._faiss)

    def clear(self) -> None:
        """Zero every code and let faiss free them."""
        self.codes[:] = 0
        self._faiss.reset()
        self.codes = _codes_view(self._faiss)

    def nbytes(self) -> int:
        """Bytes of codes held."""
        return int(self._faiss.codes.size())

    # ---- searching ---------------------------------------------------------------------------------

    def takes(self, probe: NDArray[np.float32]) -> bool:
        """Whether the kernel's float32 sums stay finite for this probe (else score everyone exactly)."""
        reach = float(np.linalg.norm(self._exact(probe[np.newaxis]))) + self.max_norm
        return bool(np.isfinite(reach)) and reach * reach < _FLOAT32_SAFE

    def query(self, probe: NDArray[np.float32]) -> NDArray[np.float32]:
        """What the kernel is asked with: the unit probe (cosine) or the probe."""
        return np.ascontiguousarray(self._exact(probe[np.newaxis]), dtype=np.float32)

    def search(
        self, query: NDArray[np.floating[Any]], k: int
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """The k rows screened closest (faiss order) and their screened closeness (larger: closer)."""
        found, rows = self._faiss.search(query, k)
        near = found[0].astype(np.float64)
        return (near if self.metric == "cosine" else -near), rows[0].astype(np.int64)

    def near_rows(self, probe: NDArray[np.float32], rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """Screened closeness of a few rows, decoded in float64 (a bucket search)."""
        held = self.decoded(self.codes[rows])
        query = self._exact(probe[np.newaxis])[0]
        if self.metric == "cosine":
            return np.asarray(held @ query, dtype=np.float64)
        diff = held - query
        return np.asarray(-np.einsum("ij,ij->i", diff, diff), dtype=np.float64)

    def bound(self, probe: NDArray[np.float32]) -> float:
        """Largest difference between a screened closeness and the exact one, for this probe."""
        dim = self.dim
        accumulate = 4 * dim * _UNIT_ROUNDOFF_32
        if self.metric == "cosine":
            # |fp16(u)·p − u·p| ≤ u16·|u||p| (unit rows and probe), plus float32 sums and the subnormals
            return 1.1 * (_UNIT_ROUNDOFF_16 + accumulate + dim * 2.0**-25) + 1e-7
        # squared distances: (r − r16)·(2p − r − r16) ≤ u16·|r|·(2|p| + 2|r|), plus float32 sums
        p, r = float(np.linalg.norm(probe)), 1.01 * self.max_norm
        return (
            1.1 * (_UNIT_ROUNDOFF_16 * r * (2 * p + 2 * r) + accumulate * (p + r) ** 2 + dim * 2.0**-20)
            + 1e-9
        )

    # ---- codes -------------------------------------------------------------------------------------

    def _exact(self, rows: NDArray[np.float32]) -> NDArray[np.float64]:
        """What the screen stands for, in float64: unit rows (cosine, as `metric.scores`) or the rows."""
        return normalised(rows) if self.metric == "cosine" else np.asarray(rows, dtype=np.float64)

    def decoded(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The values codes stand for, in float64."""
        return np.ascontiguousarray(codes).view(np.float16).astype(np.float64)


def _codes_view(screen: faiss.IndexScalarQuantizer) -> NDArray[np.uint8]:
    """The screen's codes as a (rows, code bytes) array, without a copy (valid until the next add)."""
    size = int(screen.codes.size())
    if size == 0:
        return np.zeros((0, screen.code_size), dtype=np.uint8)
    raw = faiss.rev_swig_ptr(screen.codes.data(), size)
    return np.asarray(raw).view(np.uint8).reshape(-1, screen.code_size)
