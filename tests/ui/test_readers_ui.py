"""The readers in the browser: a simulated QR scan identifies at the kiosk, a barcode fills the counter.

The service holds real readers on the simulators' socket:// ports and resolves QR tokens as the root
wires it (the demo table in demo mode); nothing is typed on the pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from devkit.serving import serving
from firmware_bridge.endpoints import TcpEndpoint
from firmware_bridge.link import LinkConfig
from firmware_bridge.simulate import DEMO_EC_TOKEN, LineDeviceSimulator
from terminal.app import Terminal
from terminal.app.readers import build_readers, catalog_lookup
from terminal.config import DevicesSection, ScannerDevice
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from tests.ui.conftest import CASHIER, TECH, shot

FAST = LinkConfig(read_timeout=0.02, backoff_initial=0.02, backoff_max=0.2)
WAIT = 15.0


@dataclass
class Served:
    url: str
    qr: LineDeviceSimulator
    barcode: LineDeviceSimulator


@pytest.fixture
def served(terminal: Terminal, tmp_path: Path) -> Iterator[Served]:
    """The service over a terminal whose QR scanner and barcode scanner are simulators on TCP."""
    qr, barcode = TcpEndpoint(), TcpEndpoint()
    for endpoint in (qr, barcode):
        endpoint.start()
    devices = DevicesSection(qr=ScannerDevice(url=qr.url), barcode=ScannerDevice(url=barcode.url))
    terminal.config = terminal.config.model_copy(update={"devices": devices})
    terminal.readers = build_readers(devices, catalog_lookup(terminal.counter_items), terminal.clock, FAST)
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    bills = tmp_path / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    app = create_app(
        terminal, bills=FileBillSource(bills), cashier_token=CASHIER, technician_token=TECH,
        session_timeout=timedelta(seconds=300), event_interval=0.1,
    )  # fmt: skip
    try:
        with serving(app) as url:
            assert qr.wait_client(WAIT) and barcode.wait_client(WAIT)
            yield Served(url, LineDeviceSimulator(qr), LineDeviceSimulator(barcode))
    finally:
        qr.stop()
        barcode.stop()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    # wait_for_function evaluates with eval, which the pages' CSP forbids (test_csp.py enforces it).
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN", bypass_csp=True)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()


def test_a_qr_scan_at_the_reader_identifies_at_the_kiosk_with_no_typing(tab: Any, served: Served) -> None:
    tab.goto(f"{served.url}/kiosk")
    tab.wait_for_selector("#screen-idle:visible, #screen-identifying:visible")
    served.qr.scan(DEMO_EC_TOKEN)
    tab.wait_for_selector("#screen-identified:visible")
    tab.wait_for_selector("#bills li")
    assert "DEMO-OP-0001" in (tab.text_content("#bills") or "")


def test_qr_checkout_in_english(tab: Any, served: Served, terminal: Terminal) -> None:
    tab.goto(f"{served.url}/kiosk")
    tab.click("#lang")
    assert tab.text_content("#tile-qr span[data-i18n]") == "Insurance QR code"
    assert tab.evaluate("document.documentElement.lang") == "en"
    tab.click("#tile-qr")
    assert "hold it to the scanner" in (tab.text_content("#alt-qr") or ""), (
        "the QR code is scanned, not typed"
    )
    served.qr.scan(DEMO_EC_TOKEN)
    tab.click("button[data-bill='DEMO-OP-0001']")
    tab.wait_for_selector("#confirm:visible")
    assert "Class A (甲)" in (tab.text_content("#screen-priced") or "")
    shot(tab, "kiosk-05-qr-bill-en")
    tab.click("#confirm")
    tab.wait_for_selector("#finish:visible")
    assert "QR code / card" in (tab.text_content("#receipt") or "")
    assert terminal.ledger.is_settled("DEMO-OP-0001")


def test_a_late_answer_never_steps_the_kiosk_screen_back(tab: Any, served: Served) -> None:
    held: list[tuple[Any, Any]] = []

    def hold(route: Any) -> None:
        held.append((route, route.fetch()))  # the service has started the checkout; the page waits

    tab.route("**/api/session/start", hold)
    tab.goto(f"{served.url}/kiosk")
    tab.click("#tile-qr")
    tab.wait_for_selector("#screen-identifying:visible")  # from the event stream
    # The route handler runs when Playwright dispatches the fetched answer, which may come after the
    # event stream's update: wait for it by progress (Playwright dispatches during wait_for_timeout).
    for _ in range(400):
        if held:
            break
        tab.wait_for_timeout(50)
    assert held, "the start answer is held back"
    served.qr.scan(DEMO_EC_TOKEN)
    tab.wait_for_selector("#screen-identified:visible")
    route, answer = held[0]
    route.fulfill(response=answer)  # the older 'identifying' answer arrives after the reader's event
    tab.wait_for_timeout(500)
    assert tab.is_visible("#screen-identified") and tab.is_visible("button[data-bill='DEMO-OP-0001']")


def test_a_barcode_scan_at_the_reader_shows_in_the_counter_basket(tab: Any, served: Served) -> None:
    tab.goto(f"{served.url}/counter")
    tab.fill("#token", CASHIER)
    tab.press("#token", "Enter")
    served.barcode.scan("XA10BAE054A001010100001")
    tab.wait_for_selector("#basket tbody tr >> text=二甲双胍")
    served.barcode.scan("XA10BAE054A001010100001")
    tab.wait_for_function(
        "document.getElementById('qty-0') && document.getElementById('qty-0').value === '2'"
    )
    assert "25.60" in (tab.text_content("#total") or "")
    served.barcode.scan("6920152400012")  # a valid GTIN the catalogue does not know: said, not dropped
    tab.wait_for_selector("#basket-note >> text=6920152400012")
