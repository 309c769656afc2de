"""The shop's EAN-13 → 医保 code table, a small JSON file provisioned beside the catalogue.

`<catalogue>.ean13.json` next to `<catalogue>.json` (config/catalog/430300-national.ean13.json beside
430300-national.json):
{"format": "medpay-shop-codes/1", "catalog_id": …, "source": …, "codes": {"<EAN-13>": "<med_list_codg>"}}.
No file means no shop codes: only catalogue codes scan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from terminal.errors import CatalogError

SUFFIX = ".ean13.json"


class ShopCodes(BaseModel):
    """The table: which catalogue it maps into, where it came from, and the codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Annotated[Literal["medpay-shop-codes/1"], Field(description="file format version")]
    catalog_id: Annotated[str, Field(description="the catalogue whose codes the table maps to")]
    source: Annotated[str, Field(description="where the mapping comes from")] = ""
    codes: Annotated[dict[str, str], Field(description="EAN-13 barcode → med_list_codg")]

    @field_validator("codes")
    @classmethod
    def _valid_barcodes(cls, codes: dict[str, str]) -> dict[str, str]:
        for barcode in codes:
            if not ean13_valid(barcode):
                raise ValueError(f"{barcode} is not an EAN-13 (13 digits with a valid check digit)")
        return codes


def ean13_valid(code: str) -> bool:
    """Whether `code` is 13 ASCII digits whose last is the GS1 check digit of the first twelve."""
    if len(code) != 13 or not code.isascii() or not code.isdigit():
        return False
    weighted = sum(int(digit) * (3 if n % 2 else 1) for n, digit in enumerate(code[:12]))
    return (10 - weighted % 10) % 10 == int(code[12])


def shop_codes_path(catalog: Path) -> Path:
    """Where the shop code table of a catalogue file lives: beside it, `<stem>.ean13.json`."""
    return catalog.with_name(catalog.stem + SUFFIX)


def parse_shop_codes(data: bytes, where: str) -> ShopCodes:
    """The table from JSON bytes; CatalogError naming `where` when malformed."""
    try:
        return ShopCodes.model_validate(json.loads(data.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{where} is not UTF-8 JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"invalid shop code table {where}: {problems}") from exc


def load_shop_codes(catalog: Path) -> ShopCodes | None:
    """The shop code table beside a catalogue file, or None when there is none."""
    path = shop_codes_path(catalog)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc}") from exc
    return parse_shop_codes(data, str(path))
