"""`medpay consent withdraw` and `medpay purge`: thin over terminal/app/privacy.py."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from terminal.app import build_terminal
from terminal.app.privacy import purge_expired, withdraw_consent
from terminal.clock import SystemClock
from terminal.config import data_dir, load


def cmd_consent_withdraw(args: argparse.Namespace) -> int:
    """Withdraw a person's face consent: their templates are deleted and face no longer finds them."""
    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        done = withdraw_consent(terminal, args.operator, psn_no=args.psn_no, certno=args.certno)
    finally:
        terminal.close()
    sys.stdout.write(
        f"consent of {done.psn_no} withdrawn: {done.templates_deleted} template(s) deleted (audited)\n"
    )
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Purge identification attempts and finished session journals older than [storage] retention_days."""
    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        purged = purge_expired(terminal, args.operator)
        days = terminal.config.storage.retention_days
    finally:
        terminal.close()
    sys.stdout.write(
        f"purged {purged.attempts} attempts, {purged.sessions} sessions and {purged.events} session events"
        f" older than {days} days\n"
    )
    return 0


def add_privacy(sub: Any) -> None:
    """The consent and purge subcommands."""
    consent = sub.add_parser("consent", help="face consent").add_subparsers(
        dest="consent_command", required=True
    )
    withdraw = consent.add_parser(
        "withdraw", help="withdraw a person's face consent", description=cmd_consent_withdraw.__doc__
    )
    who = withdraw.add_mutually_exclusive_group(required=True)
    who.add_argument("--psn-no", help="the person's psn_no")
    who.add_argument("--certno", help="the person's ID number (looked up by its keyed hash)")
    withdraw.add_argument("--operator", default="technician", help="who recorded the withdrawal")
    withdraw.set_defaults(func=cmd_consent_withdraw)
    purge = sub.add_parser(
        "purge", help="purge old attempts and session journals", description=cmd_purge.__doc__
    )
    purge.add_argument("--operator", default="technician", help="who ran the purge (audited)")
    purge.set_defaults(func=cmd_purge)
