"""`make kiosk` tells a new user what to type: tokens, office accounts, demo patients, QR, card, paying."""

from __future__ import annotations

from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN
from terminal.app import Terminal
from terminal.cli.demo_welcome import DEMO_PAY_CODE, create_demo_staff, welcome
from terminal.demo_data import DEMO_PEOPLE
from terminal.payment.codes import route_auth_code
from terminal.store.keys import create_token, read_token
from terminal.store.staff import StaffStore


def test_the_cheat_sheet_names_every_token_account_and_credential(terminal: Terminal) -> None:
    for role in ("cashier", "technician"):
        create_token(terminal.data_dir, role)
    staff = create_demo_staff(terminal)
    gateway = terminal.config.payment.model_copy(update={"url": "http://127.0.0.1:9"})
    terminal.config = terminal.config.model_copy(update={"payment": gateway})
    text = welcome(terminal, "http://127.0.0.1:8080", staff)
    for role in ("cashier", "technician"):
        assert f"{role} token: {read_token(terminal.data_dir, role)}" in text
    for staff_id, _, _, password in staff:
        assert f"staff ID {staff_id}  password {password}" in text
    with terminal.lock:
        store = StaffStore(terminal.db)
        assert {m.staff_id for m in store.all()} >= {s[0] for s in staff}
    assert all(person.certno in text for person in DEMO_PEOPLE)
    assert DEMO_EC_TOKEN in text and DEMO_CARD.card_no in text
    assert "http://127.0.0.1:9/control/pay-qr" in text and DEMO_PAY_CODE in text
    route_auth_code(DEMO_PAY_CODE)  # a code the counter accepts as a payment code
