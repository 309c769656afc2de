"""Download the catalogue (1312/1318/1319) from the upstream, page by page, since the held update time.

The rows are merged into the held snapshot by their record number (settlement/national_catalog.py) and
the result is checked by turning it into the engine's catalogue before anything is written; the file is
replaced atomically (temp name, fsync, rename), so a failed download leaves the held catalogue as it was.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from terminal.domain import INFNO_CATALOGUE_ITEMS, INFNO_CATALOGUE_PRICE_LIMITS, INFNO_CATALOGUE_SELFPAY
from terminal.errors import CatalogError
from terminal.settlement.national_catalog import (
    HilistRow,
    LmtpricRow,
    NationalCatalogue,
    SelfpayRow,
    merge,
    national_json,
    to_catalog,
)
from terminal.uplink.client import HttpUplink

log = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_PAGES = 10_000  # a bound, so an upstream that never says "last page" cannot loop us forever
R = TypeVar("R", bound=BaseModel)


def _pages(
    link: HttpUplink,
    new_msgid: Callable[[datetime], str],
    at: datetime,
    infno: str,
    row: type[R],
    since: datetime | None,
    page_size: int,
) -> list[R]:
    rows: list[R] = []
    page = 1
    while page <= MAX_PAGES:
        data: dict[str, Any] = {"page_num": page, "page_size": page_size}
        if since is not None:
            data["updt_time"] = since.isoformat()
        out = link.call(link.envelope(infno, new_msgid(at), at, {"data": data})).output
        try:
            rows.extend(row.model_validate(r) for r in out.get("data", []))
            pages = int(out.get("pages", 1))
        except (ValidationError, TypeError, ValueError) as exc:
            raise CatalogError(f"upstream {infno} page {page}: unusable rows: {exc}") from exc
        if page >= pages:
            return rows
        page += 1
    raise CatalogError(f"upstream {infno}: more than {MAX_PAGES} pages")


def download_catalogue(
    link: HttpUplink,
    new_msgid: Callable[[datetime], str],
    at: datetime,
    held: NationalCatalogue,
    page_size: int = PAGE_SIZE,
) -> tuple[NationalCatalogue, int]:
    """The held snapshot with every row updated since its update time merged in; (snapshot, rows fetched).

    CatalogError when a row is malformed or the merged catalogue is not one the engine can price with.
    """
    since = held.updt_time
    hilist = _pages(link, new_msgid, at, INFNO_CATALOGUE_ITEMS, HilistRow, since, page_size)
    lmtpric = _pages(link, new_msgid, at, INFNO_CATALOGUE_PRICE_LIMITS, LmtpricRow, since, page_size)
    selfpay = _pages(link, new_msgid, at, INFNO_CATALOGUE_SELFPAY, SelfpayRow, since, page_size)
    merged = merge(held, hilist, lmtpric, selfpay)
    to_catalog(merged)  # refuse now what the engine would refuse at the next start
    fetched = len(hilist) + len(lmtpric) + len(selfpay)
    log.info(
        "catalogue %s: %d rows since %s, now %d entries",
        merged.catalog_id,
        fetched,
        since,
        len(merged.hilist),
    )
    return merged, fetched


def write_catalogue(path: Path, snapshot: NationalCatalogue) -> None:
    """Write the snapshot to `path` atomically (temp name, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(national_json(snapshot))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
