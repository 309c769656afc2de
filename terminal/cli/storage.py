"""`medpay backup`, `medpay restore` and `medpay audit verify`: thin over terminal/store/backup.py."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from terminal.app import build_terminal
from terminal.clock import SystemClock
from terminal.config import data_dir, load


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the database (consistent while serving) to DEST; every key file only to a separate --keys-to."""
    from terminal.app.key_files import key_files
    from terminal.store.backup import backup

    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        keys = key_files(terminal.config, terminal.data_dir)
        result = backup(terminal.db, terminal.data_dir, args.dest, datetime.now(UTC), args.keys_to, keys)
    finally:
        terminal.close()
    sys.stdout.write(f"database: {result.database} ({result.settlements} settlements, verified)\n")
    sys.stdout.write(f"sha256:   {result.sha256}\nmanifest: {result.manifest}\n")
    if result.keys is None:
        sys.stdout.write("keys:     NOT copied (pass --keys-to a separate place; see docs/operations.md)\n")
    else:
        sys.stdout.write(f"keys:     {result.keys} (keep apart from the database backup)\n")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Verify a backup and make it the terminal's database (the service must be stopped)."""
    from terminal.app.key_files import key_files
    from terminal.store.backup import restore

    folder = data_dir(args.data_dir)
    keys = key_files(load(args.config), folder)
    replaced = restore(args.src, folder, datetime.now(UTC), args.keys_from, keys)
    sys.stdout.write(f"restored {args.src}: quick_check ok, audit chain and ledger agree\n")
    if replaced is not None:
        sys.stdout.write(f"the database it replaced is kept as {replaced}\n")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """Check the keyed audit chain and the settlements and outbox against it; each finding names its kind."""
    from terminal.store.audit_check import verify_all

    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        problems = verify_all(terminal.db)
    finally:
        terminal.close()
    for problem in problems:
        sys.stdout.write(f"audit: {problem}\n")
    if problems:
        return 1
    sys.stdout.write("audit log intact; settlements and outbox agree with it\n")
    return 0


def add_storage(sub: Any) -> None:
    """The backup and restore subcommands."""
    backup = sub.add_parser(
        "backup", help="copy the database to a folder (safe while serving)", description=cmd_backup.__doc__
    )
    backup.add_argument("dest", type=Path, help="folder for the database copy and its manifest")
    backup.add_argument(
        "--keys-to",
        type=Path,
        help="also copy every key file (data/keys/*, the uplink keys, the merchant key) here:"
        " a separate place, never inside DEST",
    )
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="verify a backup and make it the database", description=cmd_restore.__doc__
    )
    restore.add_argument("src", type=Path, help="a medpay-….sqlite file written by medpay backup")
    restore.add_argument(
        "--keys-from", type=Path, help="put keys from this --keys-to folder back where they were (0600)"
    )
    restore.set_defaults(func=cmd_restore)
