"""The 1:N index's screen: every row held once in faiss, scanned for a bound-checked shortlist.

Two kinds of codes, each with a bound on how far a screened closeness can be from the exact one (what
`metric.scores` gives in float64), so the index can re-rank exactly everyone who could still be first or
second:

- **int8** (faiss QT_8bit_uniform: one range for every dimension): a row x (the unit row for cosine,
  the row for euclidean) is held as c = 128 + round(x·s), standing for (c − 128)/s, with one global
  scale s = 127 / (the largest |value| plus an eighth); the kernel decodes it without a per-dimension
  scale and offset. A quarter of float32's bytes, so a cache-cold scan reads half what float16 does. Its
  bound is measured when rows are encoded: each row's decode error in float64 against the exact row (per
  dimension and as a norm, at most 0.5/s a value), so rows that had to be clamped keep it correct (only
  wider); the kernel's float32 decoding may differ from (c − 128)/s by a few units of 2^-24 of the
  range, allowed as 2^-20 of it. (faiss 1.15's QT_8bit_direct kernels, which would skip the decoding
  arithmetic, give wrong sums at 32 dimensions and more with every SIMD level: a test checks the kernel
  used here against float64 at the shipped dimension.)
- **float16** (faiss QT_fp16): relative rounding 2^-11, so the bound follows from float16's unit roundoff
  and the norms. The index uses it once the float32 copy is dropped: a re-ranked person is then decrypted
  again per search, and float16's narrow bound keeps them to two or three.

Both add the float32 rounding of the kernel's sums (at most 4·dim units of 2^-24 of the terms' sizes)
and 10 % on top. Codes of removed rows are set to zero (the zero row) at once.
"""

from __future__ import annotations

from typing import Literal

import faiss
import numpy as np
from numpy.typing import NDArray

from terminal.errors import ModelError
from terminal.ports import Metric
from terminal.vision.metric import normalised

# The screen's codes: 8-bit while the float32 copy is held (by default), float16 once it is not.
ScreenKind = Literal["int8", "float16"]

_FP16_MAX = 60000.0  # float16 overflows at 65504: templates never come near it
_UNIT_ROUNDOFF_16 = 2.0**-11
_UNIT_ROUNDOFF_32 = 2.0**-24
_HEADROOM = 1.125  # int8: the scale leaves an eighth of room for rows enrolled later
_MAX_SCALE = 2.0**20  # int8: all-zero or tiny rows (their values are then their error)
# faiss's SIMD kernel decodes a code in float32 (fused multiply-add): allowed per value as 2^-20 of the
# range's magnitude (at least 8 units of float32's roundoff)
_KERNEL_SLACK = 2.0**-20
_FLOAT32_SAFE = 1e36  # a squared distance below this cannot overflow float32 (3.4e38) in the kernel
_CHUNK = 16384  # rows encoded at a time (float64 temporaries of 16 MB at 128 dims)


class Screen:
    """One model's rows as int8 or float16 codes in a faiss flat index; exact only up to `bound`."""

    def __init__(self, metric: Metric, dim: int, kind: ScreenKind, rows: NDArray[np.float32]) -> None:
        self.metric: Metric = metric
        self.dim = dim
        self.kind: ScreenKind = kind
        space = faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2
        qtype = faiss.ScalarQuantizer.QT_8bit_uniform if kind == "int8" else faiss.ScalarQuantizer.QT_fp16
        self._faiss = faiss.IndexScalarQuantizer(dim, qtype, space)
        self.scale = 1.0
        self._zero = self._encode(np.zeros((1, dim), dtype=np.float64))  # the codes of the zero row
        self._err_dim = np.zeros((dim,), dtype=np.float64)  # int8: largest |x_d − c_d/s| per dimension
        self._err_row = 0.0  # int8: largest |x − c/s| (a row's error as a norm)
        self._code_norm = 0.0  # int8: largest |c/s| held
        self._reach = np.zeros((dim,), dtype=np.float64)  # int8 euclidean: largest |x_d| + |c_d/s|
        self._norm_err = 0.0  # int8 euclidean: largest | |x|² − |c/s|² |
        self.max_norm = 0.0  # largest |x| held
        self._slack = 0.0  # int8: how far the kernel's float32 decoding may be from (c − 128)/s
        if kind == "int8":
            largest = float(np.abs(self._exact(rows)).max(initial=0.0))
            self.scale = min(127.0 / (largest * _HEADROOM), _MAX_SCALE) if largest > 0 else _MAX_SCALE
            # value = low + (c + 0.5)·width/255 = (c − 128)/s
            low, width = -128.5 / self.scale, 255.0 / self.scale
            trained = np.array([low, width], dtype=np.float32)
            faiss.copy_array_to_vector(trained, self._faiss.sq.trained)
            self._faiss.is_trained = True
            self._slack = _KERNEL_SLACK * (abs(low) + abs(width))
        self.codes = np.zeros((0, self._faiss.code_size), dtype=np.uint8)
        self.add(rows)

    # ---- rows --------------------------------------------------------------------------------------

    def covers(self, rows: NDArray[np.float32]) -> bool:
        """Whether these rows fit the codes without clamping (always, for float16)."""
        if self.kind == "float16" or len(rows) == 0:
            return True
        return float(np.abs(self._exact(rows)).max()) * self.scale <= 127.0

    def add(self, rows: NDArray[np.float32]) -> None:
        """Encode rows after those held (their decode errors measured into the bound)."""
        if (
            self.kind == "float16"
            and self.metric != "cosine"
            and float(np.abs(rows).max(initial=0.0)) > _FP16_MAX
        ):
            raise ModelError("template values out of float16's range")
        for at in range(0, len(rows), _CHUNK):
            exact = self._exact(rows[at : at + _CHUNK])
            codes = self._encode(exact)
            self._faiss.add_sa_codes(codes)
            self.max_norm = max(self.max_norm, float(np.linalg.norm(exact, axis=1).max()))
            if self.kind == "float16":
                continue  # its bound follows from float16's roundoff: nothing to measure
            decoded = self.decoded(codes)
            error = np.abs(decoded - exact)
            self._err_dim = np.maximum(self._err_dim, error.max(axis=0))
            self._err_row = max(self._err_row, float(np.linalg.norm(error, axis=1).max()))
            self._code_norm = max(self._code_norm, float(np.linalg.norm(decoded, axis=1).max()))
            self._reach = np.maximum(self._reach, (np.abs(exact) + np.abs(decoded)).max(axis=0))
            change = np.einsum("ij,ij->i", exact, exact) - np.einsum("ij,ij->i", decoded, decoded)
            self._norm_err = max(self._norm_err, float(np.abs(change).max()) * (1 + 1e-12))
        self.codes = _codes_view(self._faiss)

    def zero(self, start: int, stop: int) -> None:
        """Rows start..stop become the zero row (a removed person's codes do not linger)."""
        self.codes[start:stop] = self._zero

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Hold only these rows, in this order (a compaction): the same codes, so the bound still holds."""
        kept = self.codes[rows].copy()
        self.codes[:] = self._zero
        self._faiss.reset()
        self._faiss.add_sa_codes(kept)
        kept[:] = self._zero
        self.codes = _codes_view(self._faiss)

    def clear(self) -> None:
        """Zero every code and let faiss free them."""
        self.codes[:] = self._zero
        self._faiss.reset()
        self.codes = _codes_view(self._faiss)

    def nbytes(self) -> int:
        """Bytes of codes held."""
        return int(self._faiss.codes.size())

    # ---- searching ---------------------------------------------------------------------------------

    def query(self, probe: NDArray[np.float32]) -> NDArray[np.float32]:
        """What the kernel is asked with: the unit probe (cosine) or the probe."""
        return np.ascontiguousarray(self._exact(probe[np.newaxis]), dtype=np.float32)

    def takes(self, probe: NDArray[np.float32]) -> bool:
        """Whether the kernel's float32 sums stay finite for this probe (else score everyone exactly)."""
        reach = float(np.linalg.norm(self._exact(probe[np.newaxis]))) + self._code_norm + self.max_norm
        return bool(np.isfinite(reach)) and reach * reach < _FLOAT32_SAFE

    def search(self, query: NDArray[np.float32], k: int) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
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
        if self.kind == "float16":
            if self.metric == "cosine":
                # |fp16(u)·p − u·p| ≤ u16·|u||p| (unit rows and probe), plus float32 sums and the subnormals
                return 1.1 * (_UNIT_ROUNDOFF_16 + accumulate + dim * 2.0**-25) + 1e-7
            # squared distances: (r − r16)·(2p − r − r16) ≤ u16·|r|·(2|p| + 2|r|), plus float32 sums
            p, r = float(np.linalg.norm(probe)), 1.01 * self.max_norm
            return (
                1.1 * (_UNIT_ROUNDOFF_16 * r * (2 * p + 2 * r) + accumulate * (p + r) ** 2 + dim * 2.0**-20)
                + 1e-9
            )
        exact = np.abs(self._exact(probe[np.newaxis])[0])
        # the kernel's decoded row k is within sqrt(dim)·slack (a norm) of the float64 one d = (c − 128)/s
        kernel = float(np.sqrt(dim)) * self._slack
        c = self._code_norm + kernel
        p = float(np.linalg.norm(exact))
        if self.metric == "cosine":
            # q·(x − d) by dimension or as norms, q·(d − k), and the float32 unit probe within u32 of q
            quantised = min(float(exact @ self._err_dim), p * self._err_row) + p * kernel
            return 1.1 * (quantised + (_UNIT_ROUNDOFF_32 + accumulate) * c * (1.0 + 1e-6)) + 1e-9
        # |p − d|² − |p − x|² = 2p·(x − d) + (|d|² − |x|²) (the latter measured per row), or
        # (x − d)·(2p − x − d), by dimension or as norms; |p − k|² − |p − d|² = (d − k)·(2p − d − k);
        # the kernel sums in float32
        towards = min(float(exact @ self._err_dim), p * self._err_row)
        quantised = min(
            2 * towards + self._norm_err,
            float((2 * exact + self._reach) @ self._err_dim),
            self._err_row * (2 * p + self.max_norm + c),
        )
        quantised += kernel * (2 * p + 2 * c)
        return 1.1 * (quantised + accumulate * (p + c) ** 2) + 1e-9 * (1.0 + (p + c) ** 2)

    # ---- codes -------------------------------------------------------------------------------------

    def _exact(self, rows: NDArray[np.float32]) -> NDArray[np.float64]:
        """What the screen stands for, in float64: unit rows (cosine, as `metric.scores`) or the rows."""
        return normalised(rows) if self.metric == "cosine" else np.asarray(rows, dtype=np.float64)

    def _encode(self, exact: NDArray[np.float64]) -> NDArray[np.uint8]:
        if self.kind == "float16":
            return np.ascontiguousarray(exact.astype(np.float16)).view(np.uint8)
        whole = np.clip(np.rint(exact * self.scale), -127.0, 127.0)
        return np.asarray(whole + 128.0, dtype=np.uint8)

    def decoded(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The values codes stand for, in float64 (what the kernel computes with, before its rounding)."""
        if self.kind == "float16":
            return np.ascontiguousarray(codes).view(np.float16).astype(np.float64)
        return (codes.astype(np.float64) - 128.0) / self.scale


def _codes_view(screen: faiss.IndexScalarQuantizer) -> NDArray[np.uint8]:
    """The screen's codes as a (rows, code bytes) array, without a copy (valid until the next add)."""
    size = int(screen.codes.size())
    if size == 0:
        return np.zeros((0, screen.code_size), dtype=np.uint8)
    raw = faiss.rev_swig_ptr(screen.codes.data(), size)
    return np.asarray(raw).view(np.uint8).reshape(-1, screen.code_size)
