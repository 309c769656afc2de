"""The model manifest's graph contract: typed, consistent with the input it describes, required on use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from terminal.errors import ModelError
from terminal.vision.manifest import ModelEntry, load_manifest
from tests.conftest import MODELS


def _entry(**changes: Any) -> dict[str, Any]:
    raw = load_manifest(MODELS).entry("dlib_resnet").model_dump()
    raw.update(changes)
    return raw


def test_the_shipped_manifest_declares_a_contract_for_every_model_the_runtime_checks() -> None:
    manifest = load_manifest(MODELS)
    for name in ("dlib_resnet", "minifasnet_v2", "minifasnet_v1se"):
        graph = manifest.entry(name).contract()
        assert graph.input == manifest.entry(name).input.name


def test_a_graph_input_other_than_the_declared_input_is_refused() -> None:
    graph = {**_entry()["graph"], "input": "data"}
    with pytest.raises(ValueError, match="differs from input name"):
        ModelEntry.model_validate(_entry(graph=graph))


@pytest.mark.parametrize("dims", [[], [3, 0, 150], [-1]])
def test_graph_dims_must_be_positive_and_present(dims: list[int]) -> None:
    graph = {**_entry()["graph"], "output_dims": dims}
    with pytest.raises(ValueError):
        ModelEntry.model_validate(_entry(graph=graph))


def test_an_entry_without_a_contract_says_so_when_asked_for_one() -> None:
    entry = load_manifest(MODELS).entry("mtcnn_pnet")
    assert entry.graph is None
    with pytest.raises(ModelError, match=r"mtcnn_pnet declares no \[model.graph\]"):
        entry.contract()


def test_a_manifest_with_a_malformed_contract_is_invalid(tmp_path: Path) -> None:
    text = (MODELS / "manifest.toml").read_text(encoding="utf-8")
    (tmp_path / "manifest.toml").write_text(text.replace("output_dims = [128]", 'output_dims = "128"'))
    with pytest.raises(ModelError, match="is invalid"):
        load_manifest(tmp_path)
