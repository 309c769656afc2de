"""`medpay settle`: price a bill for a person from the terminal's records, or from a person file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from terminal.app import Terminal, refuse_demo_bundles
from terminal.bill_json import load_bill
from terminal.cli.receipt import render_receipt
from terminal.domain import Match
from terminal.errors import BillError
from terminal.store.policy_files import load_bundle, load_trusted_keys
from terminal.whatif import person_from_json, price_what_if


def settle_bill_file(terminal: Terminal, bill_path: Path, psn_no: str, record: bool) -> dict[str, Any]:
    """Pre-settle (and unless record is False, settle) a bill; returns JSON and the receipt text."""
    priced = terminal.checkout.price(load_bill(bill_path), psn_no)
    # The technician's CLI names the patient by insurance number: a credential path, not a face.
    settled = terminal.checkout.settle(priced, Match(psn_no, "credential")) if record else None
    report = priced.as_json()
    if settled is not None:
        report["msgid"] = settled.msgid
        report["outbox"] = dict(settled.envelope)
        report["offline"] = settled.offline
    report["receipt"] = render_receipt(priced, settled)
    return report


def price_with_person_file(
    terminal: Terminal, bill_path: Path, person_path: Path, policy_path: Path | None
) -> dict[str, Any]:
    """A pure estimate for a person described in a file, on the bill's own date; records nothing."""
    try:
        spec = person_from_json(person_path.read_bytes(), str(person_path))
    except OSError as exc:
        raise BillError(f"cannot read person file {person_path}: {exc.strerror}") from exc
    policy = None
    if policy_path is not None:
        trusted = load_trusted_keys(terminal.config.settlement.trusted_keys)
        policy = load_bundle(policy_path, trusted)
        refuse_demo_bundles(terminal.config, [policy], trusted)
    priced = price_what_if(terminal, load_bill(bill_path), spec, policy)
    return {**priced.as_json(), "receipt": render_receipt(priced, None)}
