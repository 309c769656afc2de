"""Counter codes: catalogue and shop EAN-13 codes, and the cashier's price for items without a ceiling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from terminal.config import DEFAULT_CONFIG, load
from terminal.errors import CashierPriceError, CatalogError, UnknownCatalogCodeError
from terminal.pipeline.basket import CounterBasket
from terminal.pipeline.counter_items import CounterItems, checked_shop_codes
from terminal.settlement.policy import CashierPrices
from terminal.store.policy_files import load_catalog
from terminal.store.shop_codes import load_shop_codes
from tests.fakes import FixedClock

CATALOG = load_catalog(load(DEFAULT_CONFIG).settlement.catalog)
METFORMIN = "XA10BAE054A001010100001"  # 甲, ceiling 12.80
VITAMINS = "ZC99HPD001A001010300001"  # 丙, no ceiling
RULE = CashierPrices(placeholder=True, source="test", levels=("03",), unit_max=Decimal("500.00"))


def items(rule: CashierPrices | None = RULE, shop: dict[str, str] | None = None) -> CounterItems:
    return CounterItems(CATALOG, shop or {}, rule, "430300-2026")


class NothingSettled:
    def is_settled(self, chrg_bchno: str) -> bool:
        return False


def test_a_ceilinged_item_is_priced_at_its_ceiling() -> None:
    line = items().line(METFORMIN)
    assert (line.pric, line.open_price, line.cls) == (Decimal("12.80"), False, "甲")


def test_an_item_without_a_ceiling_waits_for_the_cashier_and_cannot_be_sent_unpriced() -> None:
    line = items().line(VITAMINS)
    assert (line.pric, line.open_price, line.cls) == (Decimal("0.00"), True, "丙")
    basket = CounterBasket(FixedClock(), NothingSettled())
    basket.add(line)
    with pytest.raises(CashierPriceError, match="price these items first"):
        basket.send(lambda bill: bill)
    basket.replace_lines([items().priced(VITAMINS, Decimal(2), Decimal("88.50"), None)])
    bill = basket.send(lambda bill: bill)
    assert bill.lines[0].det_item_fee_sumamt == Decimal("177.00")


@pytest.mark.parametrize("price", ["500.01", "-1", "0.005"])
def test_the_cashier_price_must_be_within_the_bundle_rule(price: str) -> None:
    with pytest.raises(CashierPriceError):
        items().priced(VITAMINS, Decimal(1), Decimal(price), None)
    assert items().priced(VITAMINS, Decimal(1), Decimal("500.00"), None).pric == Decimal("500.00")


def test_without_a_rule_in_the_bundle_an_item_without_a_ceiling_is_refused_clearly() -> None:
    with pytest.raises(CashierPriceError, match="no cashier_prices rule"):
        items(rule=None).line(VITAMINS)
    assert items(rule=None).line(METFORMIN).pric == Decimal("12.80")  # ceilinged items still sell


def test_a_rule_for_other_classes_refuses_the_item() -> None:
    only_b = RULE.model_copy(update={"levels": ("02",)})
    with pytest.raises(CashierPriceError, match="丙类 without a price ceiling"):
        items(rule=only_b).line(VITAMINS)


def test_a_shop_ean13_adds_the_mapped_item_and_an_unknown_one_is_refused() -> None:
    table = load_shop_codes(load(DEFAULT_CONFIG).settlement.catalog)
    assert table is not None and table.catalog_id == CATALOG.catalog_id
    shop = checked_shop_codes(table.codes, table.catalog_id, CATALOG)
    ean = next(ean for ean, code in shop.items() if code == METFORMIN)
    assert items(shop=shop).line(ean).code == METFORMIN
    with pytest.raises(UnknownCatalogCodeError):
        items(shop=shop).line("6900000000991")


def test_a_shop_table_mapping_into_codes_the_catalogue_lacks_is_refused() -> None:
    with pytest.raises(CatalogError, match="not in"):
        checked_shop_codes({"6900000000014": "X-NOT-LISTED"}, CATALOG.catalog_id, CATALOG)
    with pytest.raises(CatalogError, match="maps into"):
        checked_shop_codes({}, "another-catalogue", CATALOG)
