"""The national-format catalogue (1312/1318/1319 rows) → the engine's catalogue, and merging downloads."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from terminal.errors import CatalogError
from terminal.settlement.national_catalog import (
    HilistRow,
    LmtpricRow,
    NationalCatalogue,
    SelfpayRow,
    merge,
    parse_national,
    to_catalog,
)

from .helpers import CATALOG_PATH, GLARGINE, METFORMIN, TAMSULOSIN, catalog

T0 = datetime(2025, 1, 2, 8, 0)


def _item(code: str, lv: str, rid: str, at: datetime = T0, **extra: Any) -> HilistRow:
    return HilistRow.model_validate(
        {"hilist_code": code, "hilist_name": code, "insu_admdvs": "430300", "begndate": "2025-01-01",
         "list_type": "101", "chrgitm_lv": lv, "rid": rid, "updt_time": at, **extra}
    )  # fmt: skip


def _ratio(code: str, prop: str, rid: str, at: datetime = T0) -> SelfpayRow:
    return SelfpayRow.model_validate(
        {"hilist_code": code, "selfpay_prop": prop, "begndate": "2025-01-01", "rid": rid, "updt_time": at}
    )


def _held() -> NationalCatalogue:
    return NationalCatalogue(catalog_id="430300-national", insu_admdvs="430300")


def test_the_shipped_snapshot_is_the_catalogue_the_tests_price_with() -> None:
    snapshot = parse_national(CATALOG_PATH.read_bytes())
    shipped = catalog()
    assert (shipped.catalog_id, shipped.admdvs, len(shipped.items)) == ("430300-national", "430300", 40)
    # 乙 ratio from 1319, ceiling from 1318, limits from the row: glargine 10 %, 98.00; tamsulosin male only
    glargine = shipped.item(GLARGINE)
    assert (glargine.chrgitm_lv, glargine.selfpay_prop, glargine.pric_uplmt_amt) == (
        "02",
        Decimal("0.10"),
        Decimal("98.00"),
    )
    assert shipped.item(TAMSULOSIN).gend_lmt == "1" and shipped.item(METFORMIN).days_per_unit == 30
    assert snapshot.updt_time == datetime(2025, 1, 4, 8, 0)  # the newest row: the consumables


def test_classes_map_to_the_engines_and_unlisted_ratios_default_by_class() -> None:
    snapshot = merge(
        _held(),
        [_item("XA", "01", "1"), _item("XB", "02", "2"), _item("XC", "03", "3")],
        [],
        [_ratio("XB", "0.15", "9")],
    )
    levels = {i.med_list_codg: (i.chrgitm_lv, i.selfpay_prop) for i in to_catalog(snapshot).items}
    assert levels == {"XA": ("01", Decimal(0)), "XB": ("02", Decimal("0.15")), "XC": ("03", Decimal(1))}


def test_a_later_update_of_a_record_replaces_it_and_an_invalidated_row_drops_out() -> None:
    first = merge(_held(), [_item("XA", "01", "1"), _item("XB", "02", "2")], [], [_ratio("XB", "0.10", "9")])
    later = datetime(2025, 3, 1, 9, 0)
    second = merge(
        first, [_item("XA", "01", "1", later, vali_flag="0")], [], [_ratio("XB", "0.20", "9", later)]
    )
    items = {i.med_list_codg: i for i in to_catalog(second).items}
    assert set(items) == {"XB"} and items["XB"].selfpay_prop == Decimal("0.20")
    assert second.updt_time == later
    # an older copy arriving late does not overwrite the newer one
    third = merge(second, [], [], [_ratio("XB", "0.10", "9")])
    assert to_catalog(third).item("XB").selfpay_prop == Decimal("0.20")


def test_rows_not_yet_in_force_or_expired_are_left_out_on_a_day() -> None:
    rows = [_item("XA", "01", "1", enddate="2025-03-31"), _item("XB", "01", "2", begndate="2025-04-01")]
    ceiling = {"hilist_code": "XA", "hilist_pric_uplmt_amt": "5.00", "begndate": "2025-01-01", "rid": "7"}
    snapshot = merge(_held(), rows, [LmtpricRow.model_validate({**ceiling, "updt_time": T0})], [])
    assert [i.med_list_codg for i in to_catalog(snapshot, date(2025, 2, 1)).items] == ["XA"]
    assert [i.med_list_codg for i in to_catalog(snapshot, date(2025, 5, 1)).items] == ["XB"]
    assert to_catalog(snapshot, date(2025, 2, 1)).item("XA").pric_uplmt_amt == Decimal("5.00")


def test_a_class_a_entry_with_a_ratio_is_refused() -> None:
    snapshot = merge(_held(), [_item("XA", "01", "1")], [], [_ratio("XA", "0.10", "9")])
    with pytest.raises(CatalogError, match="XA"):
        to_catalog(snapshot)


def test_two_valid_records_of_one_code_are_refused() -> None:
    with pytest.raises(CatalogError, match="appears twice"):
        to_catalog(merge(_held(), [_item("XA", "01", "1"), _item("XA", "01", "2")], [], []))


def test_a_malformed_snapshot_is_refused() -> None:
    with pytest.raises(CatalogError, match="invalid national catalogue"):
        parse_national(b'{"format": "medpay-national-catalogue/1", "catalog_id": "x", "insu_admdvs": "43"}')
