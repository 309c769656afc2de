"""`python -m devkit.upstream`: run the reference upstream until interrupted."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import uvicorn

import devkit.upstream
from devkit.upstream.app import create_app
from devkit.upstream.faults import Faults
from devkit.upstream.state import build_upstream
from terminal.config import DEFAULT_CONFIG

log = logging.getLogger("dev_upstream")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reference upstream until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m devkit.upstream",
        description=devkit.upstream.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--db", type=Path, default=Path("dev_upstream.sqlite"))
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="terminal config for catalogue/policies"
    )
    parser.add_argument("--persons", type=Path, action="append", default=[], help="JSON list of people")
    parser.add_argument("--down", action="store_true")
    parser.add_argument("--slow", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--http500", type=int, default=0, metavar="N")
    parser.add_argument("--lost", type=int, default=0, metavar="N")
    parser.add_argument("--differs", type=Decimal, default=Decimal("0.00"), metavar="AMOUNT")
    parser.add_argument("--tamper", action="store_true", help="serve altered policy bundles")
    parser.add_argument("--gallery-key", type=Path, help="gallery-delta signing key (default: beside --db)")
    parser.add_argument(
        "--gallery-trusted", type=Path, help="write the trusted-keys file terminals need for gallery deltas"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    upstream = build_upstream(args.db, args.config, args.gallery_key)
    if args.gallery_trusted is not None:
        args.gallery_trusted.write_text(
            upstream.gallery_key().model_dump_json(indent=2) + "\n", encoding="utf-8"
        )
    for path in args.persons:
        upstream.add_persons(json.loads(path.read_text(encoding="utf-8")))
    upstream.faults = Faults(
        down=args.down,
        slow_s=args.slow,
        http500=args.http500,
        lost=args.lost,
        differs=args.differs,
        tamper=args.tamper,
    )
    log.info("dev upstream on http://127.0.0.1:%d (db %s)", args.port, args.db)
    try:
        uvicorn.run(create_app(upstream), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        upstream.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
