"""Nothing personal in the logs at any level: the main flows run at DEBUG and the logs are searched.

The flows: the demo (1:N face checkout, settlement, sync to the reference upstream) as `medpay -v`; and
the served counter with its simulated readers: a QR checkout, a card checkout of a counter basket, a
typed ID number. Searched for: the demo people's names, ID numbers (either case), psn_no, the QR token,
the card number and serial, and the staff token. (Payment codes arrive with the payment gateway; add
them to SECRETS when it lands.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from devkit.serving import ServerThread
from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN
from terminal.demo_data import DEMO_PEOPLE
from tests.integration.service_kit import choose_bill, confirm_shown
from tests.integration.test_cli import medpay
from tests.integration.test_readers_service import CASHIER, METFORMIN, Counter, _reader
from tests.integration.test_readers_service import counter as counter  # the served counter fixture


def _secrets() -> list[str]:
    found = [DEMO_EC_TOKEN, DEMO_CARD.card_no, DEMO_CARD.card_sn, "cashier-secret", "tech-secret"]
    for person in DEMO_PEOPLE:
        found += [person.psn_name, person.certno, person.certno.lower(), person.psn_no]
    return [s for s in found if s]


def _leaks(text: str) -> list[str]:
    return [secret for secret in _secrets() if secret in text]


def _log_text(caplog: pytest.LogCaptureFixture) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(lines)


@pytest.mark.usefixtures("require_models")
def test_the_demo_with_sync_at_debug_logs_nothing_personal(tmp_path: Path) -> None:
    from devkit.upstream.app import create_app
    from devkit.upstream.state import build_upstream

    upstream = build_upstream(tmp_path / "upstream.sqlite")
    try:
        with ServerThread(create_app(upstream)) as server:
            result = medpay("-v", "demo", "--upstream", server.url, data_dir=tmp_path / "data")
    finally:
        upstream.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DEBUG" in result.stderr, "the run logged at DEBUG"
    assert "recognised 张伟" in result.stdout, "the flow ran (the CLI's own output may name the patient)"
    assert _leaks(result.stderr) == []


def test_counter_checkouts_by_qr_card_and_id_number_at_debug_log_nothing_personal(
    counter: Counter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    http = counter.http
    # By QR: the simulator's token, resolved, the bill chosen and confirmed.
    counter.qr.scan(DEMO_EC_TOKEN)
    counter.readers(lambda s: _reader(s, "qr")["events"] >= 1)
    assert choose_bill(http, "DEMO-OP-0001").json()["state"] == "priced"
    assert confirm_shown(http).json()["state"] == "settled"
    assert http.post("/api/session/finish").json()["state"] == "idle"
    # By card, at the counter: the basket becomes the bill.
    http.post("/api/counter/basket/lines", json={"code": METFORMIN}, headers=CASHIER).raise_for_status()
    counter.card.insert(DEMO_CARD)
    counter.readers(lambda s: _reader(s, "card")["events"] >= 1)
    items = [{"code": METFORMIN, "cnt": "1", "pric": "12.80"}]
    assert (
        http.post("/api/counter/basket", json={"items": items}, headers=CASHIER).json()["state"] == "priced"
    )
    assert confirm_shown(http).json()["state"] == "settled"
    assert http.post("/api/session/finish").json()["state"] == "idle"
    # A typed ID number (known, and one nobody holds), then the counter withdraws a consent by it.
    http.post("/api/session/start")
    for certno in (DEMO_PEOPLE[2].certno.lower(), "11010119900307002X"):
        http.post("/api/session/credential", json={"method": "id", "value": certno})
        http.post("/api/session/cancel")
    http.post("/api/counter/consent/withdraw", json={"certno": DEMO_PEOPLE[2].certno}, headers=CASHIER)
    http.get("/api/tech/diagnostics", headers={"Authorization": "Bearer tech-secret"})

    logged = _log_text(caplog)
    assert any(r.levelno == logging.DEBUG for r in caplog.records), "DEBUG records were captured"
    assert "settled" in logged, "the flows ran and logged"
    assert _leaks(logged) == []


def test_the_search_would_find_a_leak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("terminal.pipeline.checkout").debug("person %s", DEMO_PEOPLE[1].psn_no)
    assert _leaks(_log_text(caplog)) == [DEMO_PEOPLE[1].psn_no]
