"""The converters emit exactly the graph contract the manifest declares, which the runtime reads."""

from __future__ import annotations

import importlib

import pytest

from terminal.provision import dlib_convert, dlib_dat, minifasnet_convert
from terminal.vision.liveness.pack import PACK
from terminal.vision.manifest import load_manifest
from tests.conftest import MODELS


def test_dlib_converter_constants_equal_the_manifest_contract() -> None:
    graph = load_manifest(MODELS).entry("dlib_resnet").contract()
    assert graph.input == dlib_convert.INPUT_NAME
    assert graph.input_dims == (3, dlib_dat.CHIP_SIZE, dlib_dat.CHIP_SIZE)
    assert graph.output == dlib_convert.OUTPUT_NAME
    assert graph.output_dims == (dlib_dat.DESCRIPTOR_DIM,)


@pytest.mark.parametrize("name", PACK)
def test_minifasnet_converter_constants_equal_the_manifest_contract(name: str) -> None:
    graph = load_manifest(MODELS).entry(name).contract()
    side = minifasnet_convert.INPUT_SIDE
    assert graph.input == minifasnet_convert.INPUT_NAME
    assert graph.input_dims == (3, side, side)
    assert graph.output == minifasnet_convert.OUTPUT_NAME
    assert graph.output_dims == (minifasnet_convert.CLASSES,)


def test_every_declared_converter_is_a_provisioning_function() -> None:
    converters = [e.source.converter for e in load_manifest(MODELS).model if e.source.converter]
    assert converters, "the manifest declares converted models"
    for spec in converters:
        module_name, _, func_name = spec.partition(":")
        # the runtime never imports terminal.provision, so converters must live there and nowhere else
        assert module_name.startswith("terminal.provision."), spec
        assert callable(getattr(importlib.import_module(module_name), func_name)), spec
