"""`medpay payment refunded-by-hand MSGID --by STAFF_ID --ref RECEIPT_NO`: money owed by hand, handed back."""

from __future__ import annotations

import argparse
import getpass
import sys
from decimal import Decimal
from typing import Any

from terminal.app import build_terminal
from terminal.app.counter import refunded_by_hand
from terminal.clock import SystemClock
from terminal.config import data_dir, load


def cmd_refunded_by_hand(args: argparse.Namespace) -> int:
    """Record that a supervisor handed back a refund_manual settlement's money.

    Nobody signs in here: the audit's actor is the operator (`--operator`, else the shell user), and the
    supervisor `--by` names is recorded as `named_supervisor` only.
    """
    operator = f"technician:{args.operator or getpass.getuser()}"
    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        with terminal.lock:
            ended = refunded_by_hand(terminal, args.msgid, args.ref, args.by, operator=operator)
    finally:
        terminal.close()
    yuan = f"{Decimal(ended.fen or 0) / 100:.2f}"
    sys.stdout.write(
        f"{ended.msgid}: ¥{yuan} refunded by hand (named supervisor {args.by}, recorded by {operator},"
        f" receipt {args.ref.strip()})\n"
    )
    return 0


def add_payment(sub: Any) -> None:
    """The `payment` command group on the `medpay` parser."""
    payment = sub.add_parser("payment", help="payments owed back (counter)").add_subparsers(
        dest="payment_command", required=True
    )
    by_hand = payment.add_parser(
        "refunded-by-hand", help="record that staff handed back money the gateway would not refund"
    )
    by_hand.add_argument("msgid", help="the settlement's msgid (refunds_owed in `medpay report day`)")
    by_hand.add_argument(
        "--by",
        required=True,
        metavar="STAFF_ID",
        help="the supervisor who paid it back (recorded as named, not verified)",
    )
    by_hand.add_argument("--ref", required=True, metavar="RECEIPT_NO", help="the counter's receipt number")
    by_hand.add_argument(
        "--operator", default="", help="who types this in: the audit's actor (default: the shell user)"
    )
    by_hand.set_defaults(func=cmd_refunded_by_hand)
