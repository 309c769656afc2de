"""Convert the MiniFASNet anti-spoofing weights (legacy PyTorch `.pth`) to ONNX, without PyTorch.

Two parts, both ours, written from the facts in `../shared/docs/minifasnet.md`:

* a reader of PyTorch's legacy (pre-zip) serialization: a restricted unpickler that only admits the
  handful of globals a state dict needs (anything else is refused, so a hostile file cannot run
  code), followed by the raw little-endian storages;
* a graph builder that declares the MiniFASNet network (V2 and V1SE) and takes every width from the
  weight shapes. Batch norms are folded into the preceding convolution or linear layer.

Graph contract (declared in the pack's entries of `models/manifest.toml`, `[model.graph]`, which
`terminal.vision.liveness.minifasnet.MiniFasNet` reads and checks; a test holds these constants equal to it):

    input   `crop`  float32 [N, 3, 80, 80], NCHW, **BGR**, raw pixel values 0–255
    output  `prob`  float32 [N, 3], softmax; index 1 = real face, 0 and 2 = attack kinds

The output is byte-for-byte deterministic (fixed producer, IR and opset; no timestamps) because the
model manifest pins its sha256.
"""

from __future__ import annotations

import collections
import hashlib
import io
import logging
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from terminal.errors import ModelError
from terminal.provision.model_files import checked_bytes, convert_file

log = logging.getLogger(__name__)

INPUT_NAME = "crop"
OUTPUT_NAME = "prob"
INPUT_SIDE = 80
CLASSES = 3

# Written into the file, so part of its pinned sha256: keeps the module's old name after the move.
PRODUCER_NAME = "medpay.minifasnet_convert"
# Bump when the emitted graph changes, together with the sha256 entries in models/manifest.toml.
PRODUCER_VERSION = "1"
# Pinned so that upgrading the onnx package never changes the bytes (and the manifest sha256).
IR_VERSION = 8
OPSET = 17

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_BN_EPS = 1e-5
_PREFIX = "module."


@dataclass(frozen=True)
class _StorageType:
    """A torch storage class named in the pickle, reduced to its element dtype."""

    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _TensorRef:
    """A tensor as the pickle describes it: a view into a storage that is read later."""

    key: str
    dtype: np.dtype[Any]
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: tuple[str, _StorageType], offset: int, shape: Any, stride: Any, *_: Any) -> Any:
    """Stand-in for torch._utils._rebuild_tensor_v2 that records the view instead of building it."""
    key, storage_type = storage
    return _TensorRef(key, storage_type.dtype, int(offset), tuple(shape), tuple(stride))


# The only globals a plain state dict needs; everything else is refused.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch", "FloatStorage"): _StorageType(np.dtype("<f4")),
    ("torch", "LongStorage"): _StorageType(np.dtype("<i8")),
}


class _Unpickler(pickle.Unpickler):
    """Unpickler that resolves only whitelisted globals and records storage references."""

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a global from the whitelist, or refuse the file."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        """Map ('storage', type, key, location, size, view) to (key, type)."""
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {pid[1]!r}")
        return (str(pid[2]), pid[1])


def read_state_dict(data: bytes, name: str = "weights") -> dict[str, NDArray[Any]]:
    """Tensors of a legacy-format PyTorch state dict, keyed without the `module.` prefix."""
    stream = io.BytesIO(data)
    try:
        if _Unpickler(stream).load() != _MAGIC:
            raise ModelError(f"{name}: not a legacy PyTorch file (bad magic number)")
        if _Unpickler(stream).load() != _PROTOCOL:
            raise ModelError(f"{name}: unsupported PyTorch serialization protocol")
        info = _Unpickler(stream).load()
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise ModelError(f"{name}: only little-endian files are supported")
        refs = _Unpickler(stream).load()
        keys = _Unpickler(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ModelError(f"{name}: cannot read the pickled state dict: {exc}") from exc
    if not isinstance(refs, dict) or not isinstance(keys, list):
        raise ModelError(f"{name}: the file does not hold a state dict")
    dtypes = {ref.key: ref.dtype for ref in refs.values() if isinstance(ref, _TensorRef)}
    storages: dict[str, NDArray[Any]] = {}
    for key in keys:
        header = stream.read(8)
        if len(header) != 8 or str(key) not in dtypes:
            raise ModelError(f"{name}: truncated or unknown storage {key!r}")
        count = int.from_bytes(header, "little")
        dtype = dtypes[str(key)]
        raw = stream.read(count * dtype.itemsize)
        if len(raw) != count * dtype.itemsize:
            raise ModelError(f"{name}: storage {key!r} is truncated")
        storages[str(key)] = np.frombuffer(raw, dtype=dtype)
    if stream.read(1):
        raise ModelError(f"{name}: trailing bytes after the last storage")
    tensors: dict[str, NDArray[Any]] = {}
    for full_name, ref in refs.items():
        if not isinstance(ref, _TensorRef):
            raise ModelError(f"{name}: entry {full_name!r} is not a tensor")
        storage = storages[ref.key]
        item = ref.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[ref.offset :],
            shape=ref.shape,
            strides=tuple(s * item for s in ref.stride),
            writeable=False,
        )
        tensors[str(full_name).removeprefix(_PREFIX)] = np.array(view)
    return tensors


class _Graph:
    """Emits ONNX nodes and initializers with deterministic names."""

    def __init__(self, weights: dict[str, NDArray[Any]], name: str) -> None:
        self.weights = weights
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.used: set[str] = set()
        # Channel count of every tensor, so a conv can tell depthwise (group = C) from dense.
        self.channels: dict[str, int] = {INPUT_NAME: 3}

    def w(self, key: str) -> NDArray[np.float64]:
        """A weight as float64 (folding is done in double precision, then cast once)."""
        if key not in self.weights:
            raise ModelError(f"{self.name}: missing tensor {key!r}")
        self.used.add(key)
        return self.weights[key].astype(np.float64)

    def const(self, name: str, array: NDArray[Any]) -> str:
        """Add an initializer and return its name."""
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        """Add a node whose single output is named out."""
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def bn_scale_shift(self, prefix: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(scale, shift) of an inference-mode batch norm."""
        gamma, beta = self.w(f"{prefix}.weight"), self.w(f"{prefix}.bias")
        mean, var = self.w(f"{prefix}.running_mean"), self.w(f"{prefix}.running_var")
        self.used.add(f"{prefix}.num_batches_tracked")
        scale = gamma / np.sqrt(var + _BN_EPS)
        return scale, beta - mean * scale

    def conv_bn(
        self, x: str, conv_key: str, bn_prefix: str, out: str, *, stride: int = 1, pad: int = 0
    ) -> str:
        """A bias-free convolution followed by batch norm, folded into one Conv."""
        kernel = self.w(conv_key)
        scale, shift = self.bn_scale_shift(bn_prefix)
        folded = (kernel * scale[:, None, None, None]).astype(np.float32)
        channels_in_per_group = kernel.shape[1]
        inchannels = self.channels[x]
        group = inchannels // channels_in_per_group
        k = kernel.shape[2]
        y = self.node(
            "Conv",
            [x, self.const(f"{out}.w", folded), self.const(f"{out}.b", shift.astype(np.float32))],
            out,
            kernel_shape=[k, k],
            strides=[stride, stride],
            pads=[pad, pad, pad, pad],
            group=group,
        )
        self.channels[y] = kernel.shape[0]
        return y

    def prelu(self, x: str, key: str, out: str) -> str:
        """Per-channel PReLU."""
        slope = self.w(key).astype(np.float32).reshape(-1, 1, 1)
        y = self.node("PRelu", [x, self.const(f"{out}.slope", slope)], out)
        self.channels[y] = self.channels[x]
        return y


def _conv_block(g: _Graph, x: str, prefix: str, *, stride: int, pad: int, act: bool) -> str:
    """conv + BN (+ PReLU): the `Conv_block` / `Linear_block` of the published network."""
    y = g.conv_bn(x, f"{prefix}.conv.weight", f"{prefix}.bn", f"{prefix}.bn_out", stride=stride, pad=pad)
    return g.prelu(y, f"{prefix}.prelu.weight", f"{prefix}.out") if act else y


def _depth_wise(g: _Graph, x: str, prefix: str, *, stride: int, residual: bool) -> str:
    """1×1 expand + depthwise 3×3 + 1×1 project (+ SE when present) (+ residual)."""
    y = _conv_block(g, x, f"{prefix}.conv", stride=1, pad=0, act=True)
    y = _conv_block(g, y, f"{prefix}.conv_dw", stride=stride, pad=1, act=True)
    y = _conv_block(g, y, f"{prefix}.project", stride=1, pad=0, act=False)
    if f"{prefix}.se_module.fc1.weight" in g.weights:
        y = _squeeze_excite(g, y, f"{prefix}.se_module")
    if residual:
        out = g.node("Add", [x, y], f"{prefix}.add")
        g.channels[out] = g.channels[y]
        return out
    return y


def _squeeze_excite(g: _Graph, x: str, prefix: str) -> str:
    """Global pool → 1×1 conv + BN → ReLU → 1×1 conv + BN → sigmoid → scale x."""
    pooled = g.node("GlobalAveragePool", [x], f"{prefix}.pool")
    g.channels[pooled] = g.channels[x]
    y = g.conv_bn(pooled, f"{prefix}.fc1.weight", f"{prefix}.bn1", f"{prefix}.fc1_out")
    y = g.node("Relu", [y], f"{prefix}.relu")
    g.channels[y] = g.channels[f"{prefix}.fc1_out"]
    y = g.conv_bn(y, f"{prefix}.fc2.weight", f"{prefix}.bn2", f"{prefix}.fc2_out")
    gate = g.node("Sigmoid", [y], f"{prefix}.gate")
    out = g.node("Mul", [x, gate], f"{prefix}.out")
    g.channels[out] = g.channels[x]
    return out


def _residual_count(weights: dict[str, NDArray[Any]], stage: str) -> int:
    """Number of residual blocks in a stage, read from the weight names."""
    pattern = re.compile(rf"^{re.escape(stage)}\.model\.(\d+)\.")
    indices = {int(m.group(1)) for key in weights if (m := pattern.match(key))}
    if not indices or indices != set(range(len(indices))):
        raise ModelError(f"stage {stage} has no or non-contiguous blocks: {sorted(indices)}")
    return len(indices)


def build_model(weights: dict[str, NDArray[Any]], source_sha256: str, name: str) -> onnx.ModelProto:
    """The ONNX model for a MiniFASNet (V2 or V1SE) state dict; deterministic for the same input."""
    g = _Graph(weights, name)
    x = _conv_block(g, INPUT_NAME, "conv1", stride=2, pad=1, act=True)
    x = _conv_block(g, x, "conv2_dw", stride=1, pad=1, act=True)
    x = _depth_wise(g, x, "conv_23", stride=2, residual=False)
    for stage, down in (("conv_3", None), ("conv_4", "conv_34"), ("conv_5", "conv_45")):
        if down is not None:
            x = _depth_wise(g, x, down, stride=2, residual=False)
        for i in range(_residual_count(weights, stage)):
            x = _depth_wise(g, x, f"{stage}.model.{i}", stride=1, residual=True)
    x = _conv_block(g, x, "conv_6_sep", stride=1, pad=0, act=True)
    # conv_6_dw: depthwise 5×5 without padding turns the 5×5 map of an 80×80 input into 1×1.
    x = _conv_block(g, x, "conv_6_dw", stride=1, pad=0, act=False)
    x = g.node("Flatten", [x], "flatten", axis=1)
    linear = g.w("linear.weight")
    scale, shift = g.bn_scale_shift("bn")
    x = g.node(
        "Gemm",
        [
            x,
            g.const("linear.w", (linear * scale[:, None]).astype(np.float32)),
            g.const("linear.b", shift.astype(np.float32)),
        ],
        "linear",
        transB=1,
    )
    prob = g.w("prob.weight")
    if prob.shape[0] != CLASSES:
        raise ModelError(f"{name}: expected {CLASSES} classes, the file has {prob.shape[0]}")
    x = g.node(
        "Gemm",
        [x, g.const("prob.w", prob.astype(np.float32)), g.const("prob.b", np.zeros(CLASSES, np.float32))],
        "logits",
        transB=1,
    )
    g.node("Softmax", [x], OUTPUT_NAME, axis=1)
    unused = sorted(set(weights) - g.used)
    if unused:
        raise ModelError(f"{name}: tensors not used by the declared network: {unused[:5]}")
    graph = helper.make_graph(
        g.nodes,
        "minifasnet",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, INPUT_SIDE, INPUT_SIDE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", CLASSES])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    model.doc_string = f"MiniFASNet converted by medpay from {name} (sha256 {source_sha256})"
    return model


def convert_bytes(data: bytes, name: str = "minifasnet.pth") -> bytes:
    """Serialized, checked ONNX model for the bytes of a MiniFASNet .pth file."""
    weights = read_state_dict(data, name)
    model = build_model(weights, hashlib.sha256(data).hexdigest(), name)
    return checked_bytes(model, name)


def convert(pth_path: Path, onnx_path: Path) -> None:
    """Convert the .pth at pth_path into the ONNX model at onnx_path (atomically replaced)."""
    convert_file(pth_path, onnx_path, convert_bytes, "MiniFASNet weights")
