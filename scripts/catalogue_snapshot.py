"""Write the committed catalogue snapshot with the terminal's own downloader, against the reference upstream.

    PYTHONPATH=. python scripts/catalogue_snapshot.py [--out config/catalog/430300-national.json]

Starts the reference upstream (devkit) on loopback with a throw-away database, registers a throw-away
terminal (the shipped config's identity), runs `medpay catalogue sync --full` (terminal/app/catalogue.py)
into --out, and marks the result as the placeholder data it is. Needs no network.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from contextlib import closing
from pathlib import Path

from devkit.serving import ServerThread
from devkit.upstream.app import create_app
from devkit.upstream.catalogue import ROWS_FILE
from devkit.upstream.state import build_upstream
from terminal.app import build_terminal, register_terminal
from terminal.app.catalogue import sync_catalogue
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, load
from terminal.uplink.catalogue import write_catalogue

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "config" / "catalog" / "430300-national.json"


def main() -> int:
    """Download the reference upstream's catalogue into --out."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    config = load(DEFAULT_CONFIG)
    clock = SystemClock()
    with tempfile.TemporaryDirectory(prefix="medpay-catalogue-") as tmp:
        upstream = build_upstream(Path(tmp) / "upstream.sqlite")
        server = ServerThread(create_app(upstream)).start()
        try:
            data_dir = Path(tmp) / "data"
            with closing(build_terminal(config, data_dir, clock)) as term:
                now = clock.now()
                register_terminal(data_dir, config.terminal, server.url, now, term.ledger.allocate_msgid(now))
                snapshot, fetched, _ = sync_catalogue(
                    data_dir, config.settlement.catalog, config.terminal, server.url, 10.0, clock,
                    term.ledger.allocate_msgid, full=True, out=args.out,
                )  # fmt: skip
        finally:
            server.stop()
            upstream.close()
    note = json.loads(ROWS_FILE.read_text(encoding="utf-8"))["source"]
    # The downloader's own record of where the rows came from, with what the rows are (placeholders).
    source = (
        f"{note} Downloaded from the reference upstream by scripts/catalogue_snapshot.py "
        "(medpay catalogue sync --full)."
    )
    write_catalogue(args.out, snapshot.model_copy(update={"sample": True, "source": source}))
    sys.stdout.write(f"{args.out}: {fetched} rows, {len(snapshot.hilist)} entries\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
