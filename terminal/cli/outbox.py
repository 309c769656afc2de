"""`medpay outbox list | requeue MSGID | void MSGID --reason …`: a technician settles parked entries."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from terminal.app import build_terminal
from terminal.app.parked import parked_view, requeue_parked, void_parked
from terminal.clock import SystemClock
from terminal.config import data_dir, load


def _view(args: argparse.Namespace) -> dict[str, Any]:
    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        if args.outbox_command == "requeue":
            requeue_parked(terminal, args.msgid, args.operator)
        elif args.outbox_command == "void":
            restored = void_parked(terminal, args.msgid, args.reason, args.operator)
            sys.stdout.write(
                f"voided {args.msgid}"
                + ("; its settlement was taken out of the accumulators\n" if restored else "\n")
            )
        with terminal.lock:
            return parked_view(terminal)
    finally:
        terminal.close()


def cmd_outbox(args: argparse.Namespace) -> int:
    """List parked outbox entries, or re-queue / void one (audited)."""
    view = _view(args)
    if args.outbox_command == "requeue":
        sys.stdout.write(f"re-queued {args.msgid}: the next sync sends it\n")
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(view, ensure_ascii=False, indent=2) + "\n")
        return 0
    for row in view["parked"]:
        holding = f", holding {row['holding']} later of {row['psn_no']}" if row["holding"] else ""
        since = f"since {row['parked_at']}{holding}"
        sys.stdout.write(f"parked {row['msgid']} ({row['infno']}, {since}): {row['last_error']}\n")
    if not view["parked"]:
        sys.stdout.write("no parked entries\n")
    return 0


def add_outbox(sub: Any) -> None:
    """The `outbox` command group on the `medpay` parser."""
    outbox = sub.add_parser("outbox", help="parked outbox entries (technician)").add_subparsers(
        dest="outbox_command", required=True
    )
    listing = outbox.add_parser("list", help="parked entries and why")
    listing.add_argument("--json", action="store_true")
    requeue = outbox.add_parser("requeue", help="put a parked entry back in line (audited)")
    requeue.add_argument("msgid")
    void = outbox.add_parser("void", help="never send a parked entry; its settlement leaves the accumulators")
    void.add_argument("msgid")
    void.add_argument("--reason", required=True, help="why (kept in the audit log)")
    for parser in (requeue, void):
        parser.add_argument("--operator", default="technician", help="who decided (kept in the audit log)")
    for parser in (listing, requeue, void):
        parser.set_defaults(func=cmd_outbox)
