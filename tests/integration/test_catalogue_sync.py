"""`medpay catalogue sync` against the reference upstream: paged 1312/1318/1319, incremental by update."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.app.catalogue import held_snapshot
from terminal.cli.main import main
from terminal.errors import CatalogError
from terminal.settlement.national_catalog import NationalCatalogue, parse_national, to_catalog
from terminal.store.policy_files import catalogue_in_use, downloaded_catalogue_path
from terminal.uplink.catalogue import download_catalogue
from terminal.uplink.client import HttpUplink
from tests.integration.uplink_kit import REPO, SteppingClock, start_upstream, uplink

SHIPPED = REPO / "config" / "catalog" / "430300-national.json"
_count = itertools.count(1)


def _msgid(at: datetime) -> str:
    return f"H43030200001{at:%Y%m%d%H%M%S}{next(_count):04d}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Upstream, ServerThread, HttpUplink]]:
    upstream, server = start_upstream(tmp_path / "upstream")
    link = uplink(tmp_path / "terminal", server.url)
    clock = SteppingClock()
    link.register(_msgid(clock.now()), clock.now())
    link.sign_in(_msgid(clock.now()), clock.now())
    try:
        yield upstream, server, link
    finally:
        link.close()
        server.stop()
        upstream.close()


def _empty() -> NationalCatalogue:
    return NationalCatalogue(catalog_id="430300-national", insu_admdvs="430300")


def test_a_paged_download_is_the_shipped_snapshot(served: tuple[Upstream, ServerThread, HttpUplink]) -> None:
    _, _, link = served
    # 7 rows a page: 40 items take 6 pages, 28 ceilings 4, 12 ratios 2 — all fetched, none twice
    snapshot, fetched = download_catalogue(link, _msgid, datetime(2025, 6, 3, 9, 0), _empty(), page_size=7)
    assert fetched == 80
    shipped = parse_national(SHIPPED.read_bytes())
    assert (snapshot.hilist, snapshot.lmtpric, snapshot.selfpay) == (
        shipped.hilist,
        shipped.lmtpric,
        shipped.selfpay,
    )
    assert to_catalog(snapshot).items == to_catalog(shipped).items


def test_a_second_sync_fetches_only_rows_updated_since(
    served: tuple[Upstream, ServerThread, HttpUplink],
) -> None:
    upstream, _, link = served
    held = parse_national(SHIPPED.read_bytes())
    # the centre raises glargine's self-pay-first ratio from 10 % to 20 % on 1 March
    ratio = next(r for r in upstream.catalogue_rows["1319"] if r["hilist_code"] == "XA10AEG061B002010200001")
    ratio.update(selfpay_prop="0.20", updt_time="2025-03-01T09:00:00")
    snapshot, fetched = download_catalogue(link, _msgid, datetime(2025, 6, 3, 9, 0), held)
    # rows at the held update time come again (>=, merged by rid, harmless) with the changed one
    assert fetched == len(
        [r for rows in upstream.catalogue_rows.values() for r in rows if r["updt_time"] >= "2025-01-04"]
    )
    assert fetched < 80
    assert to_catalog(snapshot).item("XA10AEG061B002010200001").selfpay_prop == Decimal("0.20")
    assert snapshot.updt_time == datetime(2025, 3, 1, 9, 0)


def test_a_row_the_engine_cannot_price_with_leaves_nothing_written(
    served: tuple[Upstream, ServerThread, HttpUplink],
) -> None:
    upstream, _, link = served
    upstream.catalogue_rows["1312"][0].update(chrgitm_lv="09")  # no such class
    with pytest.raises(CatalogError, match="1312"):
        download_catalogue(link, _msgid, datetime(2025, 6, 3, 9, 0), _empty())


def test_the_cli_writes_the_data_folder_and_the_terminal_prices_with_it(
    served: tuple[Upstream, ServerThread, HttpUplink], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream, server, _ = served
    data_dir = tmp_path / "terminal"  # registered by the fixture
    ratio = next(r for r in upstream.catalogue_rows["1319"] if r["hilist_code"] == "XA10AEG061B002010200001")
    ratio.update(selfpay_prop="0.20", updt_time="2025-03-01T09:00:00")
    assert main(["--data-dir", str(data_dir), "catalogue", "sync", "--upstream", server.url]) == 0
    assert "430300-national:" in capsys.readouterr().out
    written = downloaded_catalogue_path(data_dir)
    assert parse_national(written.read_bytes()).updt_time == datetime(2025, 3, 1, 9, 0)
    assert catalogue_in_use(data_dir, SHIPPED).item("XA10AEG061B002010200001").selfpay_prop == Decimal("0.20")
    # --full starts from nothing: every row again
    assert held_snapshot(data_dir, SHIPPED, "430302", full=True).hilist == ()
