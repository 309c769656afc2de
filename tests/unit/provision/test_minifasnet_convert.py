"""The .pth reader refuses what is not a plain legacy state dict (no code runs from a hostile file)."""

from __future__ import annotations

import pickle

import pytest

from terminal.errors import ModelError
from terminal.provision.minifasnet_convert import _MAGIC, _PROTOCOL, read_state_dict


def _legacy_header() -> bytes:
    info = {"protocol_version": _PROTOCOL, "little_endian": True, "type_sizes": {}}
    return pickle.dumps(_MAGIC, 2) + pickle.dumps(_PROTOCOL, 2) + pickle.dumps(info, 2)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def test_refuses_globals_outside_the_whitelist() -> None:
    data = _legacy_header() + pickle.dumps({"w": _Evil()}, 2)
    with pytest.raises(ModelError, match="refusing global"):
        read_state_dict(data, "evil.pth")


def test_refuses_a_bad_magic_number() -> None:
    with pytest.raises(ModelError, match="magic"):
        read_state_dict(pickle.dumps(12345, 2), "x.pth")


def test_refuses_truncated_storages() -> None:
    data = _legacy_header() + pickle.dumps({}, 2) + pickle.dumps(["1"], 2) + b"\x04\x00"
    with pytest.raises(ModelError):
        read_state_dict(data, "short.pth")


def test_reads_an_empty_state_dict() -> None:
    data = _legacy_header() + pickle.dumps({}, 2) + pickle.dumps([], 2)
    assert read_state_dict(data, "empty.pth") == {}
