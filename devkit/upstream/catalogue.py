"""Catalogue queries (1312 items, 1318 price limits, 1319 self-pay ratios) from the reference upstream.

As the national interface pages them: input `data{updt_time, page_num, page_size}` gives the rows updated
at or after `updt_time` (all rows without it), ordered by update time then record number; output
`{pageNum, pageSize, pages, recordCounts, data[]}`. The rows are devkit/upstream/catalogue_rows.json,
placeholders in the national layout (docs/catalogue.md); `Upstream.catalogue_rows` may be changed by tests.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from devkit.upstream.replies import Refusal, ok
from terminal.domain import INFNO_CATALOGUE_ITEMS, INFNO_CATALOGUE_PRICE_LIMITS, INFNO_CATALOGUE_SELFPAY
from terminal.uplink.wire import Request as Envelope

ROWS_FILE = Path(__file__).with_name("catalogue_rows.json")
INFNOS = (INFNO_CATALOGUE_ITEMS, INFNO_CATALOGUE_PRICE_LIMITS, INFNO_CATALOGUE_SELFPAY)
MAX_PAGE = 1000


def load_rows(path: Path = ROWS_FILE) -> dict[str, list[dict[str, Any]]]:
    """The rows of each catalogue interface, by infno."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {infno: list(data[infno]) for infno in INFNOS}


def query(rows: dict[str, list[dict[str, Any]]], env: Envelope) -> dict[str, Any]:
    """One page of one catalogue interface's rows updated since `updt_time`."""
    data = env.input.get("data", {})
    try:
        page_num = int(data.get("page_num", 1))
        page_size = int(data.get("page_size", 100))
        since = datetime.fromisoformat(str(data["updt_time"])) if data.get("updt_time") else None
    except (TypeError, ValueError) as exc:
        raise Refusal(f"{env.infno}: bad query: {exc}") from exc
    if page_num < 1 or not 1 <= page_size <= MAX_PAGE:
        raise Refusal(f"{env.infno}: page_num ≥ 1 and page_size 1..{MAX_PAGE}")
    selected = sorted(
        (r for r in rows[env.infno] if since is None or datetime.fromisoformat(r["updt_time"]) >= since),
        key=lambda r: (r["updt_time"], r["rid"]),
    )
    pages = max(1, -(-len(selected) // page_size))
    start = (page_num - 1) * page_size
    return ok(
        env.msgid,
        {
            "pageNum": page_num,
            "pageSize": page_size,
            "pages": pages,
            "recordCounts": len(selected),
            "data": selected[start : start + page_size],
        },
    )
