"""`medpay serve --demo` (`make kiosk`): what a new user types, printed once the demo terminal is ready.

The staff tokens, the demo office accounts (created here with fresh passwords), the demo patients' ID
numbers, the simulators' QR token and card, which face the synthetic camera shows, and how to pay.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN
from terminal.app import Terminal
from terminal.demo_data import DEMO_PEOPLE
from terminal.store.keys import read_token
from terminal.store.staff import StaffStore

DEMO_STAFF = (("demo-cashier", "演示收银员", "cashier"), ("demo-super", "演示主管", "supervisor"))
# A WeChat-shaped payment code (18 digits from 10-15) the reference gateway charges.
DEMO_PAY_CODE = "134567890123456789"


def create_demo_staff(terminal: Terminal) -> list[tuple[str, str, str, str]]:
    """The office's demo cashier and supervisor with fresh passwords: (staff_id, name, role, password)."""
    made = []
    with terminal.lock:
        store = StaffStore(terminal.db)
        for staff_id, name, role in DEMO_STAFF:
            password = secrets.token_urlsafe(9)
            store.add(staff_id, name, role, password, terminal.clock.now(), "technician:demo")
            made.append((staff_id, name, role, password))
    return made


def welcome(
    terminal: Terminal, base_url: str, staff: list[tuple[str, str, str, str]], keys: Path | None = None
) -> str:
    """The demo's cheat sheet: pages, tokens, accounts, demo patients and credentials, how to pay."""
    keys = keys or terminal.data_dir
    gateway = terminal.config.payment.url
    presenter = DEMO_PEOPLE[terminal.config.camera.demo_presenter]
    card_holder = DEMO_PEOPLE[0]
    lines = [
        "",
        "== medpay demo terminal: everything below is invented demo data ==",
        f"kiosk (patient screen):  {base_url}/kiosk",
        f"counter (cashier):       {base_url}/counter    cashier token: {read_token(keys, 'cashier')}",
        f"technician:              {base_url}/tech       technician token: {read_token(keys, 'technician')}",
        f"counter office:          {base_url}/office",
        *(f"    staff ID {sid}  password {pw}  ({name}, {role})" for sid, name, role, pw in staff),
        "demo patients (ID numbers; at the counter type one, then the patient's face confirms it):",
        *(f"    {p.certno}  {p.psn_name}" for p in DEMO_PEOPLE),
        f"the synthetic camera shows {presenter.psn_name} ({presenter.certno}): tap 刷脸 on the kiosk",
        f"medical-insurance QR (the QR reader simulator scans it): {DEMO_EC_TOKEN} → {card_holder.psn_name}",
        f"social security card (the card reader simulator): {DEMO_CARD.card_no} → {card_holder.psn_name}",
        "counter items: scan or type a catalogue code (config/catalog/430300-national.json) or a shop EAN-13",
        "    (config/catalog/430300-national.ean13.json), e.g. 6900000000014 (盐酸二甲双胍片)",
    ]
    if gateway:
        lines += [
            f"payment gateway (reference): {gateway}",
            "pay the kiosk's QR as the patient's phone would:",
            f"    curl -X POST {gateway}/control/pay-qr -H 'Content-Type: application/json' "
            """-d '{"out_trade_no": "<the order number under the QR>"}'""",
            f"or at the counter's 收款 step scan or type a payment code, e.g. {DEMO_PAY_CODE} (WeChat)",
        ]
    else:
        lines.append("no payment gateway: the cash share is collected at the counter outside the terminal")
    return "\n".join(lines) + "\n"
