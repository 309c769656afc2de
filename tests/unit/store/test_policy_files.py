"""Policy files (store/policy_files.py): read from disk, parsed by settlement, errors name the file."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from terminal.errors import PolicyError
from terminal.settlement import CatalogError
from terminal.store.policy_files import (
    DEFAULT_TRUSTED_KEYS,
    load_bundle,
    load_catalog,
    load_shelf,
    load_trusted_keys,
)

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "config" / "policies" / "430300-2025.json"
CATALOG = REPO / "config" / "catalog" / "430300-national.json"


def test_the_shipped_files_load() -> None:
    keys = load_trusted_keys(DEFAULT_TRUSTED_KEYS)
    assert load_bundle(BUNDLE, keys).bundle_id == "430300-2025"
    assert load_catalog(CATALOG).items


def test_the_shelf_reads_only_files_named_as_bundles(tmp_path: Path) -> None:
    shutil.copy(BUNDLE, tmp_path / "430300-2025.json")
    shutil.copy(BUNDLE, tmp_path / "draft-430300-2025.json")  # not <admdvs>-<year>.json: ignored
    shelf = load_shelf(tmp_path, load_trusted_keys())
    assert [b.bundle_id for b in shelf.bundles] == ["430300-2025"]


def test_a_missing_or_empty_policy_folder_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_shelf(tmp_path / "absent", load_trusted_keys())
    (tmp_path / "notes.json").write_text("{}", encoding="utf-8")
    with pytest.raises(PolicyError, match=r"holds no <admdvs>-<year>\.json bundle"):
        load_shelf(tmp_path, load_trusted_keys())


def test_a_refused_bundle_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "430300-2025.json"
    path.write_bytes(BUNDLE.read_bytes().replace(b'"ratio": "0.65"', b'"ratio": "0.95"', 1))
    with pytest.raises(PolicyError, match=rf"^{re.escape(str(path))}: .*does not verify"):
        load_bundle(path, load_trusted_keys())


def test_unreadable_keys_and_catalogue_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read trusted keys"):
        load_trusted_keys(tmp_path / "absent.json")
    with pytest.raises(CatalogError, match="cannot read catalogue"):
        load_catalog(tmp_path / "absent.json")
    (tmp_path / "bad.json").write_bytes(b"\xff")
    with pytest.raises(CatalogError, match="not UTF-8 JSON"):
        load_catalog(tmp_path / "bad.json")
