"""The optional MiniFASNet pack: loading the passive RGB checker from its two verified model files."""

from __future__ import annotations

import logging
from pathlib import Path

from terminal.errors import ModelError
from terminal.vision.liveness.minifasnet import MiniFasNet
from terminal.vision.manifest import Manifest, verified_path
from terminal.vision.runtime import create_session

log = logging.getLogger(__name__)

V2_ENTRY = "minifasnet_v2"
V1SE_ENTRY = "minifasnet_v1se"
PACK = (V2_ENTRY, V1SE_ENTRY)


def load_passive(models_dir: Path, manifest: Manifest, threads: int, real_threshold: float) -> MiniFasNet:
    """The passive RGB check on the verified pack; ModelMissingError when it is not provisioned."""
    v2_entry, v1se_entry = (manifest.entry(name) for name in PACK)
    graph = v2_entry.contract()
    if v1se_entry.contract() != graph:
        # one crop side and one class order serve both models; the manifest must say so
        raise ModelError(f"{V2_ENTRY} and {V1SE_ENTRY} declare different [model.graph] contracts")
    v2, v1se = (create_session(verified_path(models_dir, entry), threads) for entry in (v2_entry, v1se_entry))
    return MiniFasNet(v2, v1se, graph, real_threshold=real_threshold)
