"""What a scanned or typed code puts in the counter basket: catalogue items, shop EAN-13s, cashier prices.

A pharmacy's shelf goods carry the maker's EAN-13 barcode, not the 医保 catalogue code; the shop's code
table (provisioned beside the catalogue) maps one to the other. An item the catalogue gives no unit price
ceiling (丙 items, mostly) has no price to sell at: the cashier prices it, within the policy bundle's
`cashier_prices` rule; a bundle without that rule refuses such items at the counter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from terminal.errors import CashierPriceError, CatalogError
from terminal.pipeline.basket import BasketLine
from terminal.settlement.catalog import LEVEL_CHARS, LEVEL_NAMES, Catalog, CatalogItem
from terminal.settlement.policy import CashierPrices

UNPRICED = Decimal("0.00")


@dataclass(frozen=True)
class CounterItems:
    """The catalogue, the shop's EAN-13 table and the bundle's cashier-price rule codes resolve by."""

    catalog: Catalog
    shop_codes: Mapping[str, str]  # EAN-13 → med_list_codg
    rule: CashierPrices | None
    bundle_id: str

    def find(self, code: str) -> CatalogItem | None:
        """The catalogue item of a 医保 code or of a shop EAN-13 mapped to one; None when neither."""
        code = code.strip()
        item = self.catalog.find(code)
        if item is None and code in self.shop_codes:
            item = self.catalog.find(self.shop_codes[code])
        return item

    def line(self, code: str, cnt: Decimal = Decimal(1), feedetl_sn: str = "") -> BasketLine:
        """A basket line at the item's price ceiling, or unpriced for the cashier when it has none.

        UnknownCatalogCodeError for a code in neither table; CashierPriceError for an item without a
        ceiling that the bundle does not let the cashier price.
        """
        item = self.find(code)
        if item is None:
            item = self.catalog.item(code.strip(), feedetl_sn)  # raises, naming the code
        if item.pric_uplmt_amt is not None:
            return _basket_line(item, item.pric_uplmt_amt, cnt, open_price=False)
        self._allowed(item)
        return _basket_line(item, UNPRICED, cnt, open_price=True)

    def priced(
        self, code: str, cnt: Decimal, pric: Decimal, dise_codg: str | None, feedetl_sn: str = ""
    ) -> BasketLine:
        """The cashier's line: the price sent, checked against the bundle's rule when the item has no ceiling.

        A line the cashier has not priced yet (0.00) stays in the basket; sending it is refused.
        """
        line = self.line(code, cnt, feedetl_sn)
        if line.open_price and pric != UNPRICED:
            self.check_price(line, pric)
        return BasketLine(
            line.code, line.name, line.cls, pric, cnt, dise_codg or None, open_price=line.open_price
        )

    def check_price(self, line: BasketLine, pric: Decimal) -> None:
        """CashierPriceError unless `pric` is a whole-fen amount above zero and within the rule's unit cap."""
        rule = self._allowed(self.catalog.item(line.code))
        if pric <= 0 or pric != pric.quantize(Decimal("0.01")):
            raise CashierPriceError(f"{line.name}: the price {pric} must be above 0.00, in whole fen")
        if pric > rule.unit_max:
            raise CashierPriceError(
                f"{line.name}: the price {pric} is above the unit cap {rule.unit_max} of bundle "
                f"{self.bundle_id} (cashier_prices)"
            )

    def _allowed(self, item: CatalogItem) -> CashierPrices:
        if self.rule is None:
            raise CashierPriceError(
                f"{item.name} ({item.med_list_codg}) has no price ceiling, and policy bundle "
                f"{self.bundle_id} has no cashier_prices rule: it cannot be sold at the counter"
            )
        if item.chrgitm_lv not in self.rule.levels:
            allowed = "、".join(LEVEL_NAMES[level] for level in self.rule.levels) or "none"
            raise CashierPriceError(
                f"{item.name} ({item.med_list_codg}) is {LEVEL_NAMES[item.chrgitm_lv]} without a price "
                f"ceiling; bundle {self.bundle_id} lets the cashier price only {allowed}"
            )
        return self.rule


def _basket_line(item: CatalogItem, pric: Decimal, cnt: Decimal, *, open_price: bool) -> BasketLine:
    cls = LEVEL_CHARS.get(item.chrgitm_lv, "?")
    return BasketLine(item.med_list_codg, item.name, cls, pric, cnt, open_price=open_price)


def checked_shop_codes(codes: Mapping[str, str], catalog_id: str, catalog: Catalog) -> dict[str, str]:
    """The shop's table, once it is known to map into this catalogue; CatalogError naming what does not."""
    if catalog_id != catalog.catalog_id:
        raise CatalogError(f"the shop code table maps into {catalog_id}, not into {catalog.catalog_id}")
    missing = sorted(f"{ean} → {code}" for ean, code in codes.items() if catalog.find(code) is None)
    if missing:
        raise CatalogError(f"shop codes map to codes not in {catalog.catalog_id}: {', '.join(missing)}")
    return dict(codes)
