"""`python -m devkit.his`: run the reference HIS until interrupted."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import uvicorn

import devkit.his
from devkit.his.app import create_app
from devkit.his.faults import Faults
from devkit.his.state import His, loads
from terminal.config import REPO_ROOT

log = logging.getLogger("dev_his")


def token_from_file(path: Path) -> str:
    """The token in path, created (0600, random) when the file does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise SystemExit(f"{path} is empty")
    return token


def main(argv: Sequence[str] | None = None) -> int:
    """Run the reference HIS until interrupted."""
    from terminal.demo_data import DEMO_PEOPLE

    parser = argparse.ArgumentParser(
        prog="python -m devkit.his",
        description=devkit.his.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--db", type=Path, default=Path("dev_his.sqlite"))
    parser.add_argument("--token-file", type=Path, required=True, help="bearer token (created when missing)")
    parser.add_argument(
        "--bill", action="append", default=[], metavar="PSN_NO=FILE", help="add a bill JSON file"
    )
    parser.add_argument(
        "--demo", action="store_true", help="add config/bills/*.json for the demo QR/card person"
    )
    parser.add_argument("--down", action="store_true")
    parser.add_argument("--slow", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--malformed", action="store_true", help="serve bills with a broken fee line")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    his = His(args.db, token_from_file(args.token_file))
    seeds = [spec.partition("=")[::2] for spec in args.bill]
    if args.demo:
        seeds += [
            (DEMO_PEOPLE[0].psn_no, str(p)) for p in sorted((REPO_ROOT / "config" / "bills").glob("*.json"))
        ]
    for psn_no, file in seeds:
        if not psn_no or not file:
            parser.error("--bill takes PSN_NO=FILE")
        number = his.add_bill(psn_no, loads(Path(file).read_text(encoding="utf-8")))
        log.info("bill %s pending for %s", number, psn_no)
    his.faults = Faults(down=args.down, slow_s=args.slow, malformed=args.malformed)
    log.info("dev HIS on http://127.0.0.1:%d (db %s)", args.port, args.db)
    try:
        uvicorn.run(create_app(his), host="127.0.0.1", port=args.port, log_level="warning")
    finally:
        his.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
