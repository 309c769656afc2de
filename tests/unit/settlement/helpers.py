"""Builders for settlement tests: the shipped placeholder bundle, the sample catalogue, bills, people."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from terminal.domain import Bill, FeeLine, Person
from terminal.settlement import (
    Accumulators,
    Catalog,
    PolicyBundle,
    SettlementContext,
)
from terminal.settlement.context import PersonBenefits
from terminal.settlement.policy import Level
from terminal.store.policy_files import load_bundle, load_catalog

REPO = Path(__file__).resolve().parents[3]
BUNDLE_PATH = REPO / "config" / "policies" / "430300-2025.json"
CATALOG_PATH = REPO / "config" / "catalog" / "430300-national.json"
DAY = date(2025, 6, 3)

# Placeholder catalogue codes used by the tests (config/catalog/430300-national.json, downloaded from the
# reference upstream by scripts/catalogue_snapshot.py).
METFORMIN = "XA10BAE054A001010100001"  # 甲, ceiling 12.80
INSULIN = "XA10ABA088B002010100002"  # 甲, ceiling 45.00
GLARGINE = "XA10AEG061B002010200001"  # 乙 10%, ceiling 98.00
CT = "002101000030000"  # 乙 10%, ceiling 260.00
VISIT = "001102000010000"  # 甲 service, ceiling 10.00
SALINE = "XB05BBA001B002010100006"  # 甲, ceiling 3.50
BED = "001101000010000"  # 甲 service, ceiling 40.00
STENT = "C02010105000000000000002"  # 乙 30%, ceiling 800.00
VITAMINS = "ZC99HPD001A001010300001"  # 丙
VIP_BED = "003101000090000"  # 丙
TAMSULOSIN = "XG04CAT046E001010200005"  # 乙 10%, male only
CHILD_SYRUP = "XR05CBA035X001010200007"  # 乙 10%, up to 14 years


@cache
def bundle() -> PolicyBundle:
    """The shipped placeholder bundle."""
    return load_bundle(BUNDLE_PATH)


@cache
def catalog() -> Catalog:
    """The shipped sample catalogue."""
    return load_catalog(CATALOG_PATH)


def line(sn: str, code: str, cnt: str, pric: str, dise_codg: str | None = None) -> FeeLine:
    """A fee line whose total is cnt × pric rounded to the fen."""
    amount = (Decimal(cnt) * Decimal(pric)).quantize(Decimal("0.01"))
    return FeeLine(sn, code, Decimal(cnt), Decimal(pric), amount, dise_codg=dise_codg)


def bill(med_type: str, *lines: FeeLine, acct: bool = True, bchno: str = "B1") -> Bill:
    """A bill of these lines."""
    return Bill(bchno, med_type, tuple(lines), datetime(2025, 6, 3, 9, 30), acct_used_flag=acct)


def person(insutype: str = "390", psn_type: str = "active", balc: str = "0.00", **kw: object) -> Person:
    """An insured person."""
    return Person(
        psn_no=str(kw.get("psn_no", "P001")),
        psn_name="测试",
        certno="430302199001011239",
        insutype=insutype,
        psn_type=psn_type,
        insuplc_admdvs="430100",
        acct_balc=Decimal(balc),
        gend=str(kw.get("gend", "1")),
        brdy=kw.get("brdy", date(1960, 5, 1)),  # type: ignore[arg-type]
    )


def context(
    level: Level = "level3_city", benefits: PersonBenefits | None = None, **kw: object
) -> SettlementContext:
    """A settlement context on DAY."""
    return SettlementContext(
        institution_level=level,
        setl_date=DAY,
        benefits=benefits or PersonBenefits(),
        **kw,  # type: ignore[arg-type]
    )


def empty() -> Accumulators:
    """No accumulators yet in 2025."""
    return Accumulators.empty(2025)


ICU = "001107000010000"  # 甲 service, ceiling 800.00 a day
PCI = "003310040010000"  # 甲 service, ceiling 6000.00
DIALYSIS = "003109010010000"  # 甲 service, ceiling 450.00
VENTILATION = "003104000010000"  # 甲 service, ceiling 12.00 an hour
MRI = "002102000010000"  # 乙 20%, ceiling 520.00
TARGETED = "XL01XCT123B002010300003"  # 丙
PROTEIN = "ZC99SUP006A001010300006"  # 丙


def held_fields(obj: object) -> dict[str, Any]:
    """The attributes an instance holds, in order: its __dict__, or its filled slots when mypyc compiled it.

    A class compiled by mypyc (setup.py) has no instance __dict__; its attributes are listed in
    `__mypyc_attrs__`, and an attribute never set reads as missing.
    """
    if hasattr(obj, "__dict__"):
        return dict(vars(obj))
    names = type(obj).__mypyc_attrs__  # type: ignore[attr-defined]
    return {name: getattr(obj, name) for name in names if hasattr(obj, name)}
