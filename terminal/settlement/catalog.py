"""The medical-insurance catalogue the engine prices against (1301/1305/1306 + 1318/1319 data)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from terminal.domain import FeeLine
from terminal.errors import CatalogError as CatalogError
from terminal.errors import UnknownCatalogCodeError

ChrgitmLv = Literal["01", "02", "03"]
# The catalogue level names as printed on Chinese lists, mapped to the 2204 chrgitm_lv codes.
LEVEL_CODES: dict[str, ChrgitmLv] = {"甲": "01", "乙": "02", "丙": "03"}
LEVEL_NAMES: dict[str, str] = {"01": "甲类", "02": "乙类", "03": "丙类"}
# The one character shown beside a fee line on receipts and screens.
LEVEL_CHARS: dict[str, str] = {code: char for char, code in LEVEL_CODES.items()}


class CatalogItem(BaseModel):
    """One catalogue entry: a drug, a service item or a consumable with its insurance class."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    med_list_codg: Annotated[str, Field(description="national catalogue code", min_length=1, max_length=50)]
    name: Annotated[str, Field(description="item name as printed on the receipt")]
    list_type: Annotated[
        Literal["drug", "service", "consumable"], Field(description="which national list the item is from")
    ]
    chrgitm_lv: Annotated[
        ChrgitmLv,
        Field(description="01 甲 (fully in scope), 02 乙 (self-pay-first ratio), 03 丙 (fully self-paid)"),
    ]
    selfpay_prop: Annotated[
        Decimal, Field(description="self-pay-first ratio (1319); 0 for 甲, 1 for 丙", ge=0, le=1)
    ] = Decimal(0)
    pric_uplmt_amt: Annotated[
        Decimal | None, Field(description="unit price ceiling (1318); the excess is overlmt_selfpay", ge=0)
    ] = None
    lmt_used_flag: Annotated[
        Literal["0", "1"], Field(description="1 when the item carries restricted-use conditions")
    ] = "0"
    gend_lmt: Annotated[
        Literal["1", "2"] | None, Field(description="only for this gender (1 male, 2 female)")
    ] = None
    min_age: Annotated[int | None, Field(description="only from this age (years)", ge=0)] = None
    max_age: Annotated[int | None, Field(description="only up to this age (years)", ge=0)] = None
    days_per_unit: Annotated[
        int | None,
        Field(description="days one unit lasts at the standard dose (repeat-dispensing check)", ge=1),
    ] = None

    @field_validator("chrgitm_lv", mode="before")
    @classmethod
    def _level_from_name(cls, value: object) -> object:
        # Operators copy lists that print 甲/乙/丙; accept those and store the 2204 code.
        return LEVEL_CODES.get(str(value), value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _class_matches_ratio(self) -> CatalogItem:
        if self.chrgitm_lv == "01" and self.selfpay_prop != 0:
            raise ValueError("a 甲 item has no self-pay-first ratio (selfpay_prop must be 0)")
        if self.chrgitm_lv == "03" and self.selfpay_prop != 1:
            raise ValueError("a 丙 item is fully self-paid (selfpay_prop must be 1)")
        return self


class ItemPlan(NamedTuple):
    """What pricing a fee line needs from its catalogue item, read once per item, not once per line.

    A tuple of plain values: the line loop unpacks it in one step instead of reading five attributes
    of a pydantic model and comparing two Decimals for every fee line. Built from the item alone, when
    the catalogue is loaded, so nothing in it can outlive or leak beyond its catalogue.
    """

    item: CatalogItem
    fully_selfpaid: bool  # 丙, or a self-pay-first ratio of 1 or more: the whole line is the patient's
    selfpay_prop: Decimal
    has_selfpay_prop: bool  # False when selfpay_prop is zero (0 × anything rounds to 0.00)
    pric_uplmt_amt: Decimal | None
    chrgitm_lv: str
    name: str
    lmt_used_flag: str
    limited: bool  # carries a gender or age limit, so the fund-safety limit check must look at it


def item_plan(item: CatalogItem) -> ItemPlan:
    """The pricing facts of one item, as line pricing (pricing.py) reads them."""
    prop = item.selfpay_prop
    return ItemPlan(
        item,
        item.chrgitm_lv == "03" or prop >= 1,
        prop,
        bool(prop),
        item.pric_uplmt_amt,
        item.chrgitm_lv,
        item.name,
        item.lmt_used_flag,
        item.gend_lmt is not None or item.min_age is not None or item.max_age is not None,
    )


OUTSIDE_NAME = "目录外项目"


def _outside_list_type(code: str) -> Literal["drug", "service", "consumable"]:
    # National codes: drugs start with X (western) or Z (Chinese patent), consumables with C, service
    # items with a digit (inferred from the code layout, domain.md 1.4 lists 1301/1305/1306).
    head = code[:1]
    return "drug" if head in ("X", "Z") else "consumable" if head == "C" else "service"


@lru_cache(maxsize=1024)
def outside_plan(med_list_codg: str, name: str = "") -> ItemPlan:
    """The plan of a code the catalogue does not list: fully self-paid (domain.md 2.1, non-catalogue)."""
    # model_construct: the values are the engine's own and a HIS code may be longer than a catalogue's
    item = CatalogItem.model_construct(
        med_list_codg=med_list_codg,
        name=name or OUTSIDE_NAME,
        list_type=_outside_list_type(med_list_codg),
        chrgitm_lv="03",
        selfpay_prop=Decimal(1),
        pric_uplmt_amt=None,
        lmt_used_flag="0",
        gend_lmt=None,
        min_age=None,
        max_age=None,
        days_per_unit=None,
    )
    return item_plan(item)


class Catalog(BaseModel):
    """A catalogue: items keyed by med_list_codg, with where the data came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog_id: Annotated[str, Field(description="name and version of this catalogue")]
    admdvs: Annotated[str, Field(description="area whose catalogue this is (the treatment place)")]
    sample: Annotated[bool, Field(description="true when the file is invented sample data")] = False
    source: Annotated[str, Field(description="where the entries come from")] = ""
    items: Annotated[tuple[CatalogItem, ...], Field(description="catalogue entries")]
    _index: dict[str, CatalogItem] = PrivateAttr(default_factory=dict)
    _plans: dict[str, ItemPlan] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _unique_codes(self) -> Catalog:
        seen: set[str] = set()
        for item in self.items:
            if item.med_list_codg in seen:
                raise ValueError(f"med_list_codg {item.med_list_codg} appears twice")
            seen.add(item.med_list_codg)
        return self

    def model_post_init(self, __context: object) -> None:
        """Index the items and their pricing plans once; lookups happen for every fee line."""
        self._index = {item.med_list_codg: item for item in self.items}
        self._plans = {item.med_list_codg: item_plan(item) for item in self.items}

    @property
    def plans(self) -> Mapping[str, ItemPlan]:
        """Each item's pricing plan by med_list_codg (read-only: the engine's line loop uses it)."""
        plans: dict[str, ItemPlan] = self.__pydantic_private__["_plans"]  # type: ignore[index]
        return plans

    def find(self, med_list_codg: str) -> CatalogItem | None:
        """The item with this code, or None."""
        # Straight to pydantic's private-attribute store: this runs once per fee line, and the
        # generic __getattr__ path costs more than the lookup itself.
        index: dict[str, CatalogItem] = self.__pydantic_private__["_index"]  # type: ignore[index]
        return index.get(med_list_codg)

    def items_for(self, lines: Sequence[FeeLine]) -> tuple[CatalogItem, ...]:
        """The item of every fee line, in order; UnknownCatalogCodeError for the first unknown code.

        For callers that must know every code (tests, tools); a bill prices unknown codes as
        out-of-catalogue lines (items_or_outside).
        """
        index: dict[str, CatalogItem] = self.__pydantic_private__["_index"]  # type: ignore[index]
        try:
            return tuple([index[line.med_list_codg] for line in lines])
        except KeyError:
            # the slow path, for its message: which code on which line
            return tuple(self.item(line.med_list_codg, line.feedetl_sn) for line in lines)

    def items_or_outside(self, lines: Sequence[FeeLine]) -> tuple[CatalogItem, ...]:
        """The item of every fee line, in order; a code not listed gets its out-of-catalogue item."""
        index: dict[str, CatalogItem] = self.__pydantic_private__["_index"]  # type: ignore[index]
        return tuple(
            [
                index.get(line.med_list_codg) or outside_plan(line.med_list_codg, line.name).item
                for line in lines
            ]
        )

    def item(self, med_list_codg: str, feedetl_sn: str = "") -> CatalogItem:
        """The item with this code; UnknownCatalogCodeError naming the code and the fee line."""
        found = self.find(med_list_codg)
        if found is None:
            where = f" (fee line {feedetl_sn})" if feedetl_sn else ""
            raise UnknownCatalogCodeError(
                f"catalogue code {med_list_codg}{where} is not in {self.catalog_id}"
            )
        return found


def parse_catalog(data: bytes) -> Catalog:
    """A catalogue from JSON bytes; CatalogError when malformed."""
    try:
        raw = json.loads(data.decode("utf-8"), parse_float=Decimal)
        return Catalog.model_validate(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"catalogue is not UTF-8 JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"invalid catalogue: {problems}") from exc
