"""`medpay staff add|list|role|disable` and `medpay report day`: the technician's counter commands."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import date
from typing import Any

from terminal.app import build_terminal
from terminal.app.day_report import day_report, report_csv
from terminal.clock import SystemClock
from terminal.config import data_dir, load
from terminal.errors import CounterError
from terminal.store.staff import ROLES, StaffStore


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.staff_id}: ")
    if getpass.getpass("again: ") != first:
        raise CounterError("the two passwords differ")
    return first


def cmd_staff(args: argparse.Namespace) -> int:
    """Add, list, re-role or disable staff who sign in at the counter (audited as the operator).

    A new role or disabling takes effect at once: the person's current sign-ins stop (app/staff_auth.py).
    """
    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        with terminal.lock:
            store = StaffStore(terminal.db)
            actor = f"technician:{args.operator}" if args.staff_command != "list" else ""
            if args.staff_command == "add":
                member = store.add(
                    args.staff_id, args.name, args.role, _password(args), terminal.clock.now(), actor
                )
                sys.stdout.write(f"added {member.staff_id} ({member.name}, {member.role})\n")
            elif args.staff_command == "role":
                member = store.set_role(args.staff_id, args.role, terminal.clock.now(), actor)
                sys.stdout.write(f"{member.staff_id} ({member.name}) is now a {member.role}\n")
            elif args.staff_command == "disable":
                member = store.disable(args.staff_id, terminal.clock.now(), actor)
                sys.stdout.write(f"disabled {member.staff_id} ({member.name})\n")
            else:
                rows = [m.__dict__ | {"active": m.active} for m in store.all()]
                if args.json:
                    sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
                for m in [] if args.json else rows:
                    state = "active" if m["active"] else f"disabled {m['disabled_at']}"
                    sys.stdout.write(f"{m['staff_id']}\t{m['name']}\t{m['role']}\t{state}\n")
    finally:
        terminal.close()
    return 0


def cmd_report_day(args: argparse.Namespace) -> int:
    """Print one day's reconciliation; exit 3 when anything differs."""
    terminal = build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())
    try:
        report = day_report(terminal, date.fromisoformat(args.date))
    finally:
        terminal.close()
    if args.csv:
        sys.stdout.write(report_csv(report))
    elif args.json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(_text(report))
    return 3 if differs(report) else 0


def differs(report: dict[str, Any]) -> bool:
    """Whether the day has anything to follow up: a difference on any side, or a charge to settle."""
    payments = report["payments"]
    answer = report["insurance"]["totals_3201"]
    return bool(
        report["differences"]
        or report["collect_or_refund"]
        or report.get("refunds_owed")
        or (answer is not None and not answer["agrees"])
        or any(r["status"] != "match" for r in (*payments["orders"], *payments["refunds"]))
    )


def _text(report: dict[str, Any]) -> str:
    out = [f"对账 {report['date']}"]
    ins = report["insurance"]
    out.append(f"insurance: {ins['settlements']} settlements ({ins['reversed']} reversed)")
    out.extend(f"  {f['fund']:<16} ledger {f['ledger']:>12}  centre {f['centre']:>12}" for f in ins["funds"])
    answer = ins["totals_3201"]
    if answer is None:
        out.append("3201: not checked (medpay sync --day)")
    else:
        out.append(f"3201: {'agree' if answer['agrees'] else 'DIFFER'} (checked {answer['checked_at']})")
    out.extend(
        f"3202 {d['msgid']} {d['field']}: ledger {d['ledger']} centre {d['centre']}"
        for d in report["differences"]
    )
    pay = report["payments"]
    out.append(
        f"payments: gateway {pay['gateway']} ledger {pay['ledger_paid']} gateway {pay['gateway_paid']}"
    )
    for kind in ("orders", "refunds"):
        for r in pay[kind]:
            if r["status"] != "match":
                out.append(f"  {kind[:-1]} {r['out_trade_no']} {r['status']}: ledger {r['ledger']}"
                           f" gateway {r['gateway']}")  # fmt: skip
    for r in report["collect_or_refund"]:
        out.append(f"{r['action']} {r['amount']} for {r['msgid']} (charged {r['charged']},"
                   f" binding {r['binding']})")  # fmt: skip
    for r in report.get("refunds_owed", ()):
        out.append(f"REFUND OWED {r['amount']} for {r['msgid']} ({r['reason']}): {r['action']}"
                   f" [{r['out_refund_no']}] {r['last_error']}")  # fmt: skip
    hints = report.get("benefit_hints", {})
    shown = ", ".join(f"{kind} {n}" for kind, n in hints.items()) or "none"
    out.append(f"政策找人 hints: {sum(hints.values())} shown ({shown})")
    return "\n".join(out) + "\n"


def add_staff(sub: Any) -> None:
    """The `staff` and `report` command groups on the `medpay` parser."""
    staff = sub.add_parser("staff", help="counter staff sign-ins (technician)").add_subparsers(
        dest="staff_command", required=True
    )
    add = staff.add_parser(
        "add", help="add a named cashier or supervisor (password asked, or --password-stdin)"
    )
    add.add_argument("staff_id")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=ROLES, default="cashier")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one stdin line")
    listing = staff.add_parser("list", help="everyone, active or disabled")
    listing.add_argument("--json", action="store_true")
    role = staff.add_parser("role", help="give a person another role; their current sign-ins stop at once")
    role.add_argument("staff_id")
    role.add_argument("--role", choices=ROLES, required=True)
    disable = staff.add_parser("disable", help="stop a person signing in (kept for the audit)")
    disable.add_argument("staff_id")
    for p in (add, role, disable):
        p.add_argument("--operator", default="technician", help="who does this (audited)")
    for p in (add, listing, role, disable):
        p.set_defaults(func=cmd_staff)
    report = sub.add_parser("report", help="reports").add_subparsers(dest="report_command", required=True)
    day = report.add_parser("day", help="the daily reconciliation (对账): insurance, 3202 lines, payments")
    day.add_argument("--date", required=True, metavar="YYYY-MM-DD")
    form = day.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--csv", action="store_true")
    day.set_defaults(func=cmd_report_day)
