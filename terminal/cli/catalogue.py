"""`medpay catalogue sync [--upstream URL] [--full] [--out FILE]`: fetch the catalogue (1312/1318/1319)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from terminal.app import build_terminal
from terminal.app.catalogue import sync_catalogue
from terminal.clock import SystemClock
from terminal.config import data_dir, load


def cmd_catalogue_sync(args: argparse.Namespace) -> int:
    """Download the rows updated since the held catalogue, merge and write them; print what changed."""
    config = load(args.config)
    terminal = build_terminal(config, data_dir(args.data_dir), SystemClock())
    try:
        snapshot, fetched, written = sync_catalogue(
            terminal.data_dir,
            config.settlement.catalog,
            config.terminal,
            args.upstream or config.uplink.url or "",
            config.uplink.timeout_s,
            terminal.clock,
            terminal.ledger.allocate_msgid,
            full=args.full,
            out=args.out,
        )
    finally:
        terminal.close()
    since = snapshot.updt_time.isoformat() if snapshot.updt_time else "never"
    sys.stdout.write(
        f"catalogue {snapshot.catalog_id}: {fetched} rows fetched, {len(snapshot.hilist)} entries, "
        f"updated to {since} → {written}\n"
    )
    return 0


def add_catalogue(sub: Any) -> None:
    """The `catalogue` command group."""
    group = sub.add_parser("catalogue", help="the medical-insurance catalogue").add_subparsers(
        dest="catalogue_command", required=True
    )
    sync = group.add_parser("sync", help="download the catalogue rows updated since the held ones")
    sync.add_argument("--upstream", metavar="URL", help="upstream base URL (default from [uplink] url)")
    sync.add_argument("--full", action="store_true", help="fetch every row again, not only the updates")
    sync.add_argument(
        "--out", type=Path, help="write here instead of the data folder's catalogue/national.json"
    )
    sync.set_defaults(func=cmd_catalogue_sync)
