"""Provisioning the optional MiniFASNet pack: the local .pth files converted into verified ONNX files."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from terminal.errors import ModelError, ModelIntegrityError, ModelMissingError
from terminal.provision.minifasnet_convert import convert
from terminal.vision.liveness.pack import PACK, V1SE_ENTRY, V2_ENTRY
from terminal.vision.manifest import Manifest, ModelEntry, sha256_of

log = logging.getLogger(__name__)

# What our converter produces from the published .pth files (PRODUCER_VERSION 1); the manifest
# entries for the pack must declare exactly these (docs/liveness.md has the entries).
SOURCE_SHA256 = {
    V2_ENTRY: "a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
    V1SE_ENTRY: "84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
}
ONNX_SHA256 = {
    V2_ENTRY: "89f19ffe2580e9bbd15d060d14f5aff857a82be2cb51d3f9c2b750adf207b6fd",
    V1SE_ENTRY: "2860068f3774204fb87df6918fcbbbd7883728b2a2a23dfe9f3a514c75a77aa5",
}


def provision_pack_entry(models_dir: Path, entry: ModelEntry, source_dir: Path | None = None) -> bool:
    """Convert one local-pack entry's .pth into its verified ONNX file; False when already in place.

    The source path in the manifest is relative to the repository root (models_dir's parent);
    source_dir, when given, is searched first for the file by name (offline provisioning).
    """
    target = models_dir / entry.file
    if target.is_file() and sha256_of(target) == entry.sha256:
        return False
    src = entry.source
    if src.kind != "local-pack" or src.archive is None or src.archive_sha256 is None:
        raise ModelError(f"model {entry.name} is not a local-pack entry with a source file")
    candidates = [source_dir / Path(src.archive).name] if source_dir is not None else []
    candidates.append((models_dir.parent / src.archive).resolve())
    source = next((c for c in candidates if c.is_file()), None)
    if source is None:
        raise ModelMissingError(f"model {entry.name}: source {src.archive} not found")
    actual = sha256_of(source)
    if actual != src.archive_sha256:
        raise ModelIntegrityError(
            f"{source} has sha256 {actual[:12]}…, manifest says {src.archive_sha256[:12]}…"
        )
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        produced = Path(tmp) / target.name
        convert(source, produced)
        produced_sha = sha256_of(produced)
        if produced_sha != entry.sha256:
            raise ModelIntegrityError(
                f"{entry.name}: produced sha256 {produced_sha}, manifest says {entry.sha256}; not installed"
            )
        os.replace(produced, target)
    log.info("%s: installed %s", entry.name, target.name)
    return True


def provision_pack(models_dir: Path, manifest: Manifest, source_dir: Path | None = None) -> list[str]:
    """Provision both MiniFASNet models; returns the names newly installed."""
    return [name for name in PACK if provision_pack_entry(models_dir, manifest.entry(name), source_dir)]
