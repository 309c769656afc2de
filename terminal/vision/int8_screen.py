"""The 1:N index's int8 screen: every row as 8-bit integers, scanned by onnxruntime's integer GEMV.

A row x (the unit row for cosine, the row for euclidean) is held as v = round(x·s), integers in
[−127, 127], with one global scale s = 127 / (the largest |value| plus an eighth). The probe q is
quantised the same way (v_q = round(q·t), t = 127 / max|q|), and onnxruntime's `MatMulInteger` (MLAS's
packed int8 kernels; the rows are its constant weight, packed once) gives every v_q·v exactly in int32.
A row's screened closeness is then v_q·v / (t·s) (cosine) or −(|q|² − 2·v_q·v/(t·s) + |x|²) (squared
L2, each row's own |x|² kept, so only the cross term is screened). A quarter of float32's bytes, and no
float rounding in the scan.

The bound is exact arithmetic on measured quantities: when rows are encoded their decode error x − v/s
is measured in float64 (largest per dimension E_d and as a norm), so rows that had to be clamped stay
correct (only a wider bound); the probe's error e = q − v_q/t is known per search. q·x − (v_q/t)·(v/s)
= q·(x − v/s) + e·(v/s), each bounded by dimension or as norms, plus the float rounding after the sums.

Rows enrolled after the weights were packed are scored from their codes in float64 until 4096 of them
wait; a removal or a compaction repacks at the next search (the removed rows' codes, and their copy in
the packed weights' source, are zeroed here at once; onnxruntime frees its own packed copy when the
session is replaced, without zeroing it).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from terminal.ports import Metric
from terminal.vision.metric import normalised

_HEADROOM = 1.125  # the scale leaves an eighth of room for rows enrolled later
_MAX_SCALE = 2.0**20  # all-zero or tiny rows (their values are then their error)
_TAIL = 4096  # rows enrolled since the packing scored from their codes before the weights are repacked
_CHUNK = 16384  # rows encoded at a time (float64 temporaries of 16 MB at 128 dims)
_BLOCK = 64  # rows per block when finding the top k: the best rows lie in the blocks with the best maxima
_UNIT_ROUNDOFF_32 = 2.0**-24
_ROUNDING = 1e-12  # float64 rounding of the screened values and of metric.scores, relative, with room


class Int8Screen:
    """One model's rows as int8 codes with onnxruntime's packed integer kernel; exact up to `bound`."""

    kind: Literal["int8"] = "int8"

    def __init__(self, metric: Metric, dim: int, rows: NDArray[np.float32]) -> None:
        self.metric: Metric = metric
        self.dim = dim
        largest = float(np.abs(self._exact(rows)).max(initial=0.0))
        self.scale = min(127.0 / (largest * _HEADROOM), _MAX_SCALE) if largest > 0 else _MAX_SCALE
        self._codes = np.zeros((0, dim), dtype=np.int8)
        # squared L2, in float32 (half the bytes a cold search reads; the rounding is in the bound):
        self._row_sq = np.zeros((0,), dtype=np.float32)  # |v/s|² per row
        self._near = np.zeros((0,), dtype=np.float32)  # the last query's screened closeness per row
        self._used = 0
        self._err_dim = np.zeros((dim,), dtype=np.float64)  # largest |x_d − v_d/s|
        self._err_row = 0.0  # largest |x − v/s|
        self._code_dim = np.zeros((dim,), dtype=np.float64)  # largest |v_d/s|
        self._code_norm = 0.0  # largest |v/s|
        self.max_norm = 0.0  # largest |x|
        self._session: ort.InferenceSession | None = None
        self._value: ort.OrtValue | None = None
        self._weights = np.zeros((0, 0), dtype=np.int8)  # the packed rows' source, kept while packed
        self._packed = 0  # rows the session scores
        self._stale = True
        # a query, its packed rows' ranking (× factor − offset: their closeness), later rows' closeness
        self._seen: tuple[bytes, NDArray[Any], float, float, NDArray[np.float64]] | None = None
        self.add(rows)
        self._pack()

    @property
    def codes(self) -> NDArray[np.int8]:
        """The rows' codes (a view)."""
        return self._codes[: self._used]

    # ---- rows --------------------------------------------------------------------------------------

    def covers(self, rows: NDArray[np.float32]) -> bool:
        """Whether these rows fit the codes without clamping."""
        return len(rows) == 0 or float(np.abs(self._exact(rows)).max()) * self.scale <= 127.0

    def add(self, rows: NDArray[np.float32]) -> None:
        """Encode rows after those held (their decode errors measured into the bound)."""
        start, stop = self._used, self._used + len(rows)
        self._seen = None
        if stop > len(self._codes):
            capacity = max(stop, 2 * len(self._codes), 16)
            codes = np.zeros((capacity, self.dim), dtype=np.int8)
            codes[:start] = self._codes[:start]
            self._codes[:] = 0
            self._codes = codes
            self._row_sq = np.concatenate([self._row_sq[:start], np.zeros(capacity - start, np.float32)])
            self._near = np.zeros((capacity,), dtype=np.float32)
        for at in range(0, len(rows), _CHUNK):
            exact = self._exact(rows[at : at + _CHUNK])
            codes = np.clip(np.rint(exact * self.scale), -127, 127).astype(np.int8)
            decoded = codes.astype(np.float64) / self.scale
            error = np.abs(decoded - exact)
            squares = np.einsum("ij,ij->i", decoded, decoded)
            self._err_dim = np.maximum(self._err_dim, error.max(axis=0))
            self._err_row = max(self._err_row, float(np.linalg.norm(error, axis=1).max()))
            self._code_dim = np.maximum(self._code_dim, np.abs(decoded).max(axis=0))
            self._code_norm = max(self._code_norm, float(np.sqrt(squares.max())))
            self.max_norm = max(self.max_norm, float(np.linalg.norm(exact, axis=1).max()))
            where = slice(start + at, start + at + len(codes))
            self._codes[where] = codes
            self._row_sq[where] = np.einsum("ij,ij->i", exact, exact)  # the row's own |x|²
        self._used = stop

    def zero(self, start: int, stop: int) -> None:
        """Rows start..stop become the zero row; the packed copy is replaced at the next search."""
        self._codes[start:stop] = 0
        self._row_sq[start:stop] = 0.0
        # the packed rows' source holds them too (rows are its columns); the session is replaced before
        # it scores again, so zeroing them here changes no search
        self._weights[:, start : min(stop, self._packed)] = 0
        self._stale, self._seen = True, None

    def keep(self, rows: NDArray[np.int64]) -> None:
        """Hold only these rows, in this order (a compaction): the same codes, so the bound still holds."""
        kept, squares = self._codes[rows], self._row_sq[rows]
        self._codes[: self._used] = 0
        self._codes[: len(rows)] = kept
        self._row_sq[: len(rows)] = squares
        self._row_sq[len(rows) : self._used] = 0.0
        kept[:] = 0
        self._used = len(rows)
        self._stale, self._seen = True, None

    def clear(self) -> None:
        """Zero every code and drop the packed copy."""
        self._codes[:] = 0
        self._weights[:] = 0
        self._session, self._used, self._packed, self._stale, self._seen = None, 0, 0, True, None

    def nbytes(self) -> int:
        """Bytes held: the codes, the per-row squared norms, and the packed weights (about their size)."""
        return int(self._codes.nbytes + self._row_sq.nbytes + self._near.nbytes + 2 * self._weights.nbytes)

    # ---- searching ---------------------------------------------------------------------------------

    def takes(self, probe: NDArray[np.float32]) -> bool:
        """Whether the screen's arithmetic stays finite for this probe (float32 for squared L2)."""
        reach = float(np.linalg.norm(self._exact(probe[np.newaxis]))) + self._code_norm + self.max_norm
        return bool(np.isfinite(reach)) and reach * reach < (1e300 if self.metric == "cosine" else 1e36)

    def query(self, probe: NDArray[np.float32]) -> NDArray[np.float64]:
        """What the screen scores against: the unit probe (cosine) or the probe, in float64."""
        return self._exact(probe[np.newaxis])

    def search(
        self, query: NDArray[np.floating[Any]], k: int
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """The k rows screened closest and their screened closeness (larger: closer)."""
        # the same query again (k grown): the rows were scored once
        key = query.tobytes()
        if self._seen is None or self._seen[0] != key:
            self._seen = (key, *self._screened(np.asarray(query[0], dtype=np.float64)))
        _, ranking, factor, offset, tail = self._seen
        top = top_rows(ranking, k)
        # closeness = ranking × factor − offset, worked out for these rows only (cosine ranks by the
        # int32 sums; squared L2 leaves |q|² out of the ranking)
        near = ranking[top] * factor - offset
        if len(tail):
            # the k best of the packed rows and every later row hold the k best of all
            top = np.concatenate([top, np.arange(self._packed, self._used, dtype=np.int64)])
            near = np.concatenate([near, tail])
            if len(top) > k:
                pick = np.argpartition(-near, k - 1)[:k]
                top, near = top[pick], near[pick]
        return np.asarray(near, dtype=np.float64), top

    def near_rows(self, probe: NDArray[np.float32], rows: NDArray[np.int64]) -> NDArray[np.float64]:
        """Screened closeness of a few rows, decoded in float64 (a bucket search)."""
        return self._decoded_closeness(self._exact(probe[np.newaxis])[0], rows)

    def bound(self, probe: NDArray[np.float32]) -> float:
        """Largest difference between a screened closeness and the exact one, for this probe."""
        q = self._exact(probe[np.newaxis])[0]
        _, t = self._quantised(q)
        error = np.abs(q - np.rint(q * t) / t) if t > 0 else np.abs(q)
        a, p = np.abs(q), float(np.linalg.norm(q))
        rows = min(float(a @ self._err_dim), p * self._err_row)  # q·(x − v/s)
        query = min(float(error @ self._code_dim), float(np.linalg.norm(error)) * self._code_norm)
        size = 1.0 + (p + self._code_norm + self.max_norm) ** 2
        if self.metric == "cosine":
            return 1.1 * (rows + query) + _ROUNDING * size
        # closeness −(|q|² − 2·(v_q·v)/(t·s) + |x|²) with each row's own |x|² (held in float32): only the
        # cross term is screened. In float32: seven roundings (the int32 sum's too, exact below 2^24),
        # at most 5 units of 2^-24 of (|q| + max(|x|, |v/s|))² together
        rounding = 6 * _UNIT_ROUNDOFF_32 * (p + self._code_norm + self.max_norm) ** 2
        return 1.1 * (2 * (rows + query) + rounding) + _ROUNDING * size

    # ---- internals ---------------------------------------------------------------------------------

    def _exact(self, rows: NDArray[np.float32]) -> NDArray[np.float64]:
        """What the screen stands for, in float64: unit rows (cosine, as `metric.scores`) or the rows."""
        return normalised(rows) if self.metric == "cosine" else np.asarray(rows, dtype=np.float64)

    def decoded(self, codes: NDArray[np.int8]) -> NDArray[np.float64]:
        """The values codes stand for, in float64."""
        return np.asarray(codes, dtype=np.float64) / self.scale

    @staticmethod
    def _quantised(q: NDArray[np.float64]) -> tuple[NDArray[np.uint8], float]:
        """The probe as uint8 codes with zero point 128 (v_q + 128), and its scale t."""
        largest = float(np.abs(q).max(initial=0.0))
        t = 127.0 / largest if largest > 0 else 0.0
        whole = np.rint(q * t) if t > 0 else np.zeros_like(q)
        return (whole + 128.0).astype(np.uint8)[np.newaxis], t

    def _screened(self, q: NDArray[np.float64]) -> tuple[NDArray[Any], float, float, NDArray[np.float64]]:
        """The packed rows' ranking by the kernel (closeness = ranking × factor − offset), later rows'.

        Cosine ranks by the int32 sums themselves (the factor 1/(t·s) is positive); squared L2 needs each
        row's |v/s|², so its closeness goes into a float32 buffer kept between searches (a fresh array
        per search costs page faults).
        """
        if self._stale or self._used - self._packed > _TAIL:
            self._pack()
        codes, t = self._quantised(q)
        inverse = 1.0 / (t * self.scale) if t > 0 else 0.0
        if self._session is not None:
            dots = self._session.run(None, {"Q": codes})[0][0]
        else:
            dots = np.zeros((0,), dtype=np.int32)
        tail = self._decoded_closeness(q, np.arange(self._packed, self._used, dtype=np.int64))
        if self.metric == "cosine":
            return dots, inverse, 0.0, tail
        near = self._near[: self._packed]
        np.multiply(dots, np.float32(2 * inverse), out=near)
        near -= self._row_sq[: self._packed]
        return near, 1.0, float(q @ q), tail

    def _decoded_closeness(self, q: NDArray[np.float64], rows: NDArray[np.int64]) -> NDArray[np.float64]:
        held = self.decoded(self._codes[rows])
        if self.metric == "cosine":
            return np.asarray(held @ q, dtype=np.float64)
        cross = 2 * (held @ q) - self._row_sq[rows].astype(np.float64) - float(q @ q)
        return np.asarray(cross, dtype=np.float64)

    def _pack(self) -> None:
        """A new session whose constant weight is the rows' codes (dim × rows), packed by onnxruntime."""
        self._weights[:] = 0
        self._session, self._value, self._seen = None, None, None
        self._packed, self._stale = self._used, False
        if self._used == 0:
            self._weights = np.zeros((0, 0), dtype=np.int8)
            return
        # a copy (a single row transposed is already contiguous: a view would be zeroed with it)
        self._weights = np.array(self._codes[: self._used].T, order="C", copy=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # onnxruntime reads the weight through this value while the session starts: it must outlive it
        self._value = ort.OrtValue.ortvalue_from_numpy(self._weights)
        options.add_initializer("G", self._value)
        self._session = ort.InferenceSession(_MODEL, options, providers=["CPUExecutionProvider"])


def _field(number: int, payload: bytes | int) -> bytes:
    """One protobuf field: a varint, or length-delimited bytes."""
    if isinstance(payload, int):
        return _varint((number << 3) | 0) + _varint(payload)
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tensor_type(elem_type: int, dims: list[int | str]) -> bytes:
    """ValueInfoProto.type: a TypeProto.Tensor of this element type and shape (numbers or names)."""
    shape = b"".join(_field(1, _field(1, d) if isinstance(d, int) else _field(2, d.encode())) for d in dims)
    return _field(1, _field(1, elem_type) + _field(2, shape))


def _model() -> bytes:
    """Y = (Q − 128) · G in int32 (ONNX MatMulInteger, opset 13), written as protobuf directly: the running
    terminal never loads the `onnx` package (pyproject's import contract). G's initializer is a 1 × 1
    placeholder; the rows replace it when a session starts (`SessionOptions.add_initializer`)."""
    uint8, int8, int32 = 2, 3, 6  # TensorProto.DataType
    node = _field(1, b"Q") + _field(1, b"G") + _field(1, b"zero") + _field(2, b"Y")
    node += _field(4, b"MatMulInteger")
    placeholder = _field(1, 1) + _field(1, 1) + _field(2, int8) + _field(8, b"G") + _field(9, b"\x00")
    zero = _field(2, uint8) + _field(8, b"zero") + _field(9, b"\x80")
    graph = _field(1, node) + _field(2, b"int8_screen") + _field(5, placeholder) + _field(5, zero)
    graph += _field(11, _field(1, b"Q") + _field(2, _tensor_type(uint8, [1, "dim"])))
    graph += _field(12, _field(1, b"Y") + _field(2, _tensor_type(int32, [1, "rows"])))
    return _field(1, 8) + _field(8, _field(1, b"") + _field(2, 13)) + _field(7, graph)


_MODEL = _model()


def top_rows(near: NDArray[Any], k: int) -> NDArray[np.int64]:
    """The k rows of largest `near` (ties: any of them), through block maxima rather than a full selection.

    Every row among the k largest lies in a block whose maximum is at least the k-th largest value, and
    at most k blocks have such a maximum, so the k blocks of largest maxima (and the rows after the last
    whole block) hold them.
    """
    rows = len(near)
    if k >= rows:
        return np.arange(rows, dtype=np.int64)
    blocks = rows // _BLOCK
    if blocks <= k:
        return np.argpartition(-near, k - 1)[:k].astype(np.int64)
    maxima = near[: blocks * _BLOCK].reshape(blocks, _BLOCK).max(axis=1)
    chosen = np.argpartition(-maxima, k - 1)[:k]
    within = (chosen[:, np.newaxis] * _BLOCK + np.arange(_BLOCK)).ravel()
    within = np.concatenate([within, np.arange(blocks * _BLOCK, rows)]).astype(np.int64)
    return within[np.argpartition(-near[within], k - 1)[:k]]
