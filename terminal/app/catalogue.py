"""The catalogue this terminal prices with, and `medpay catalogue sync` fetching it from the upstream.

The downloaded catalogue lives in the data folder (`catalogue/national.json`, national format) and, once
there, takes the place of the configured one (`[settlement] catalog`, the snapshot shipped in config/
catalog/). A sync asks only for rows updated since the held snapshot's update time; `full` asks for all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from pathlib import Path

from terminal.app.uplink import build_uplink
from terminal.config import TerminalSection
from terminal.errors import UplinkError
from terminal.ports import Clock
from terminal.settlement.national_catalog import FORMAT, NationalCatalogue, parse_national
from terminal.settlement.shelf import prefecture
from terminal.store.policy_files import downloaded_catalogue_path as downloaded_path
from terminal.uplink.catalogue import download_catalogue, write_catalogue

log = logging.getLogger(__name__)


def held_snapshot(data_dir: Path, configured: Path, mdtrtarea_admvs: str, full: bool) -> NationalCatalogue:
    """What a sync starts from: the downloaded snapshot, else a national-format configured one, else
    nothing (and nothing either with `full`, which fetches every row again)."""
    empty = NationalCatalogue(
        catalog_id=f"{prefecture(mdtrtarea_admvs)}-national", insu_admdvs=prefecture(mdtrtarea_admvs)
    )
    for path in (downloaded_path(data_dir), configured):
        if path.exists():
            data = path.read_bytes()
            if FORMAT.encode() in data[:200]:
                held = parse_national(data)
                return (
                    held.model_copy(update={"hilist": (), "lmtpric": (), "selfpay": (), "updt_time": None})
                    if full
                    else held
                )
    return empty


def sync_catalogue(
    data_dir: Path,
    configured: Path,
    terminal: TerminalSection,
    url: str,
    timeout_s: float,
    clock: Clock,
    new_msgid: Callable[[datetime], str],
    full: bool = False,
    out: Path | None = None,
) -> tuple[NationalCatalogue, int, Path]:
    """Sign in, download the rows since the held update time, write the merged snapshot; (snapshot,
    rows fetched, file written). UplinkError or CatalogError leave the held catalogue as it was."""
    if not url:
        raise UplinkError("no upstream: set [uplink] url in the config or pass --upstream URL")
    held = held_snapshot(data_dir, configured, terminal.mdtrtarea_admvs, full)
    with closing(build_uplink(data_dir, terminal, url, timeout_s)) as link:
        now = clock.now()
        link.sign_in(new_msgid(now), now)
        snapshot, fetched = download_catalogue(link, new_msgid, now, held)
    snapshot = snapshot.model_copy(
        update={
            "source": f"downloaded from {url} (1312/1318/1319) by medpay catalogue sync, {now:%Y-%m-%d %H:%M}"
        }
    )
    target = out or downloaded_path(data_dir)
    write_catalogue(target, snapshot)
    return snapshot, fetched, target
