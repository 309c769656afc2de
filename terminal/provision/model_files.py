"""Writing converted models: checked, deterministic bytes, replaced atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import onnx

from terminal.errors import ModelError, ModelMissingError

log = logging.getLogger(__name__)


def checked_bytes(model: onnx.ModelProto, name: str) -> bytes:
    """The model's deterministic serialization, after the full ONNX checker passed."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"converted {name} fails the ONNX checker: {exc}") from exc
    # deterministic: the manifest pins the sha256 of what a converter produces
    serialized: bytes = model.SerializeToString(deterministic=True)
    return serialized


def write_atomically(data: bytes, path: Path) -> None:
    """Write to a temp file in the target folder, fsync, then rename over path."""
    # A crash never leaves a half-written model that would later fail the manifest check confusingly.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp creates 0600; model files are read by the terminal's service user too.
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def convert_file(source: Path, target: Path, convert_bytes: Callable[[bytes, str], bytes], what: str) -> None:
    """Read `what` at source, convert it with convert_bytes(data, name), write target atomically."""
    try:
        data = source.read_bytes()
    except FileNotFoundError as exc:
        raise ModelMissingError(f"{what} {source} is missing; run `medpay-provision models`") from exc
    except OSError as exc:
        raise ModelError(f"cannot read {what} {source}: {exc.strerror}") from exc
    serialized = convert_bytes(data, source.name)
    write_atomically(serialized, target)
    log.info(
        "converted %s -> %s (%d bytes, sha256 %s)",
        source.name,
        target,
        len(serialized),
        hashlib.sha256(serialized).hexdigest(),
    )
