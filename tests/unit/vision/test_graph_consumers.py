"""The embedder and the MiniFASNet check take sizes from the manifest; they refuse shapes they cannot use."""

from __future__ import annotations

from typing import Any

import pytest

from terminal.errors import ModelError
from terminal.vision.embedder import DlibResnetEmbedder
from terminal.vision.liveness.minifasnet import MiniFasNet
from terminal.vision.manifest import GraphSpec

# never reached: the contract is refused before any session is asked anything
NO_SESSION: Any = None


@pytest.mark.parametrize(
    ("input_dims", "output_dims", "message"),
    [
        ((3, 150, 120), (128,), r"input dims \[3, 150, 120\], expected \[3, S, S\]"),
        ((1, 150, 150), (128,), r"input dims \[1, 150, 150\]"),
        ((3, 150, 150), (8, 16), r"output dims \[8, 16\], expected \[D\]"),
    ],
)
def test_embedder_refuses_a_contract_it_cannot_feed(
    input_dims: tuple[int, ...], output_dims: tuple[int, ...], message: str
) -> None:
    graph = GraphSpec(input="chip", input_dims=input_dims, output="descriptor", output_dims=output_dims)
    with pytest.raises(ModelError, match=message):
        DlibResnetEmbedder(NO_SESSION, graph)


@pytest.mark.parametrize(
    ("input_dims", "output_dims", "message"),
    [
        ((3, 80, 64), (3,), r"input dims \[3, 80, 64\], expected \[3, S, S\]"),
        ((3, 80, 80), (1,), r"output dims \[1\], expected \[C\] with C > 1"),
    ],
)
def test_minifasnet_refuses_a_contract_it_cannot_feed(
    input_dims: tuple[int, ...], output_dims: tuple[int, ...], message: str
) -> None:
    graph = GraphSpec(input="crop", input_dims=input_dims, output="prob", output_dims=output_dims)
    with pytest.raises(ModelError, match=message):
        MiniFasNet(NO_SESSION, NO_SESSION, graph)
