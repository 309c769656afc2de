"""The template key file and AES-GCM sealing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from terminal.errors import KeyFileError, StoreError
from terminal.store.keys import TemplateCipher, create_key, key_path, read_key


def test_key_is_created_owner_only_and_kept(tmp_path: Path) -> None:
    path = create_key(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_key(tmp_path)
    create_key(tmp_path)
    assert read_key(tmp_path) == first, "re-provisioning must never replace an existing key"


def test_missing_key_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="medpay-provision init"):
        read_key(tmp_path)


def test_group_readable_key_is_refused(tmp_path: Path) -> None:
    create_key(tmp_path).chmod(0o640)
    with pytest.raises(KeyFileError, match="readable by others"):
        read_key(tmp_path)


def test_short_key_is_refused(tmp_path: Path) -> None:
    path = key_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"short")
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="5 bytes"):
        read_key(tmp_path)


def test_sealed_template_opens_only_for_its_owner_and_unaltered(tmp_path: Path) -> None:
    cipher = TemplateCipher(read_key(tmp_path) if create_key(tmp_path) else b"")
    nonce, sealed = cipher.seal("P001", b"\x01\x02\x03\x04")
    assert b"\x01\x02\x03\x04" not in sealed
    assert cipher.open("P001", nonce, sealed) == b"\x01\x02\x03\x04"
    with pytest.raises(StoreError):
        cipher.open("P002", nonce, sealed)
    tampered = bytes([sealed[0] ^ 1]) + sealed[1:]
    with pytest.raises(StoreError):
        cipher.open("P001", nonce, tampered)
