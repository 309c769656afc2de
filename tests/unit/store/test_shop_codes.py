"""The shop's EAN-13 table beside the catalogue: valid barcodes only, none when the file is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terminal.errors import CatalogError
from terminal.store.shop_codes import ean13_valid, load_shop_codes, shop_codes_path


def test_ean13_check_digit() -> None:
    assert ean13_valid("4006381333931")
    assert not ean13_valid("4006381333932")
    assert not ean13_valid("400638133393")
    assert not ean13_valid("４００６３８１３３３９３１")  # full-width digits


def test_the_table_lives_beside_the_catalogue_and_is_optional(tmp_path: Path) -> None:
    catalog = tmp_path / "sample.json"
    assert shop_codes_path(catalog) == tmp_path / "sample.ean13.json"
    assert load_shop_codes(catalog) is None
    doc = {"format": "medpay-shop-codes/1", "catalog_id": "c", "codes": {"4006381333931": "X1"}}
    shop_codes_path(catalog).write_text(json.dumps(doc), encoding="utf-8")
    table = load_shop_codes(catalog)
    assert table is not None and table.codes == {"4006381333931": "X1"}


def test_a_bad_barcode_in_the_table_is_refused(tmp_path: Path) -> None:
    catalog = tmp_path / "c.json"
    doc = {"format": "medpay-shop-codes/1", "catalog_id": "c", "codes": {"4006381333932": "X1"}}
    shop_codes_path(catalog).write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(CatalogError, match="not an EAN-13"):
        load_shop_codes(catalog)
