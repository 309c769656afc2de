"""The catalogue as the national platform serves it (1312 items, 1318 price limits, 1319 self-pay ratios).

A snapshot holds the rows exactly as downloaded, merged by their unique record number `rid`, and the
newest `updt_time` seen (the next download asks only for rows updated since). `to_catalog()` turns the
rows valid on a day into the engine's Catalog. Field names follow the national interface (1312: hilist_code,
hilist_name, chrgitm_lv, list_type, lmt_used_flag, vali_flag, rid, updt_time…; 1318: hilist_pric_uplmt_amt;
1319: selfpay_prop, selfpay_prop_psn_type [C: docs/catalogue.md names the public sources]).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.errors import CatalogError
from terminal.settlement.catalog import Catalog, CatalogItem

FORMAT: Literal["medpay-national-catalogue/1"] = "medpay-national-catalogue/1"
# 1312 list_type → the engine's list [I: the national dictionary's 1xx drugs, 2xx service items,
# 3xx consumables, as the public HIS code reads it; see docs/catalogue.md]
_LISTS: dict[str, Literal["drug", "service", "consumable"]] = {"1": "drug", "2": "service", "3": "consumable"}
# 1319 rows for every kind of person (the only kind the reference upstream serves); a row for another
# kind would need the person's type at pricing time, which the engine does not take per line
ALL_PEOPLE = "0"


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    hilist_code: Annotated[str, Field(min_length=1, max_length=50)]
    begndate: date
    enddate: date | None = None
    vali_flag: Literal["0", "1"] = "1"
    rid: Annotated[str, Field(min_length=1, max_length=40)]
    updt_time: datetime

    def valid_on(self, day: date | None) -> bool:
        """Valid (vali_flag 1) and, when a day is given, in force that day."""
        if self.vali_flag != "1":
            return False
        return day is None or (self.begndate <= day and (self.enddate is None or day <= self.enddate))


class HilistRow(_Row):
    """A 1312 row: one catalogue entry with its class (chrgitm_lv 01 甲, 02 乙, 03 丙)."""

    hilist_name: Annotated[str, Field(min_length=1, max_length=200)]
    insu_admdvs: Annotated[str, Field(pattern=r"^\d{6}$")]
    list_type: Annotated[str, Field(pattern=r"^[123]\d{2}$")]
    chrgitm_lv: Literal["01", "02", "03"]
    lmt_used_flag: Literal["0", "1"] = "0"
    memo: str = ""
    # Local extension, not in the national 1312 row: restricted-use facts the province's rule library
    # holds as text (限定性别/年龄), served here as values, and the days one unit lasts (repeat dispensing).
    lmt_gend: Literal["1", "2"] | None = None
    lmt_min_age: Annotated[int, Field(ge=0)] | None = None
    lmt_max_age: Annotated[int, Field(ge=0)] | None = None
    days_per_unit: Annotated[int, Field(ge=1)] | None = None


class LmtpricRow(_Row):
    """A 1318 row: the unit price ceiling of an entry (the excess is overlmt_selfpay)."""

    hilist_pric_uplmt_amt: Annotated[Decimal, Field(ge=0)]


class SelfpayRow(_Row):
    """A 1319 row: the self-pay-first ratio of an entry for a kind of person."""

    selfpay_prop_psn_type: str = ALL_PEOPLE
    selfpay_prop: Annotated[Decimal, Field(ge=0, le=1)]


class NationalCatalogue(BaseModel):
    """A downloaded catalogue: the rows of the three interfaces and the newest update time seen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["medpay-national-catalogue/1"] = FORMAT
    catalog_id: Annotated[str, Field(description="stable name of this catalogue (shop codes refer to it)")]
    insu_admdvs: Annotated[str, Field(pattern=r"^\d{6}$", description="area whose catalogue this is")]
    source: str = ""
    sample: bool = False
    updt_time: datetime | None = None
    hilist: tuple[HilistRow, ...] = ()
    lmtpric: tuple[LmtpricRow, ...] = ()
    selfpay: tuple[SelfpayRow, ...] = ()


R = TypeVar("R", bound=_Row)


def _merged(held: Sequence[R], pages: Iterable[R]) -> tuple[R, ...]:
    by_rid = {row.rid: row for row in held}
    for row in pages:
        # a later update of the same record replaces it; an older copy never overwrites a newer one
        if row.rid not in by_rid or by_rid[row.rid].updt_time <= row.updt_time:
            by_rid[row.rid] = row
    return tuple(sorted(by_rid.values(), key=lambda r: r.rid))


def merge(
    held: NationalCatalogue,
    hilist: Iterable[HilistRow],
    lmtpric: Iterable[LmtpricRow],
    selfpay: Iterable[SelfpayRow],
) -> NationalCatalogue:
    """The held snapshot with downloaded rows merged in by rid, and its newest update time."""
    merged = held.model_copy(
        update={
            "hilist": _merged(held.hilist, hilist),
            "lmtpric": _merged(held.lmtpric, lmtpric),
            "selfpay": _merged(held.selfpay, selfpay),
        }
    )
    times = [r.updt_time for rows in (merged.hilist, merged.lmtpric, merged.selfpay) for r in rows]
    return merged.model_copy(update={"updt_time": max(times, default=held.updt_time)})


def to_catalog(snapshot: NationalCatalogue, day: date | None = None) -> Catalog:
    """The engine's catalogue from the rows valid on `day` (all valid rows when None); CatalogError
    when an entry's class and ratio disagree (a 甲 with a ratio, a 丙 without 1)."""
    ceilings = {r.hilist_code: r.hilist_pric_uplmt_amt for r in snapshot.lmtpric if r.valid_on(day)}
    ratios = {
        r.hilist_code: r.selfpay_prop
        for r in snapshot.selfpay
        if r.valid_on(day) and r.selfpay_prop_psn_type == ALL_PEOPLE
    }
    items = []
    for row in snapshot.hilist:
        if not row.valid_on(day):
            continue
        default = Decimal(1) if row.chrgitm_lv == "03" else Decimal(0)
        try:
            items.append(
                CatalogItem(
                    med_list_codg=row.hilist_code,
                    name=row.hilist_name,
                    list_type=_LISTS[row.list_type[0]],
                    chrgitm_lv=row.chrgitm_lv,
                    selfpay_prop=ratios.get(row.hilist_code, default),
                    pric_uplmt_amt=ceilings.get(row.hilist_code),
                    lmt_used_flag=row.lmt_used_flag,
                    gend_lmt=row.lmt_gend,
                    min_age=row.lmt_min_age,
                    max_age=row.lmt_max_age,
                    days_per_unit=row.days_per_unit,
                )
            )
        except ValidationError as exc:
            raise CatalogError(
                f"catalogue entry {row.hilist_code} (rid {row.rid}): {exc.errors()[0]['msg']}"
            ) from exc
    try:
        return Catalog(
            catalog_id=snapshot.catalog_id,
            admdvs=snapshot.insu_admdvs,
            sample=snapshot.sample,
            source=snapshot.source,
            items=tuple(items),
        )
    except ValidationError as exc:
        raise CatalogError(f"catalogue {snapshot.catalog_id}: {exc.errors()[0]['msg']}") from exc


def parse_national(data: bytes) -> NationalCatalogue:
    """A snapshot from JSON bytes; CatalogError when malformed."""
    try:
        return NationalCatalogue.model_validate(json.loads(data.decode("utf-8"), parse_float=Decimal))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CatalogError(f"national catalogue is not UTF-8 JSON: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise CatalogError(f"invalid national catalogue: {problems}") from exc


def national_json(snapshot: NationalCatalogue) -> bytes:
    """The snapshot as the stable, reviewable JSON it is stored in (amounts as strings)."""
    return (snapshot.model_dump_json(indent=1, exclude_defaults=False) + "\n").encode("utf-8")
