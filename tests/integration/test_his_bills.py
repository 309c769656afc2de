"""Bills from the hospital's HIS over real loopback HTTP: the service against the reference HIS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from devkit.his.app import create_app as create_his_app
from devkit.his.state import His
from devkit.serving import ServerThread, serving
from terminal.app import Terminal, build_bill_source
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.domain import SettledNotice
from terminal.errors import BillError, HisAuthError, HisRefused
from terminal.pipeline.his_notices import HisNotifier
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from terminal.store.notices import NoticeJournal
from terminal.uplink.his import HttpBillSource
from tests.fakes import FixedClock
from tests.integration.service_kit import choose_bill, confirm_shown, reader_identifies, service_of

TOKEN = "his-secret"
TECH = "tech-his"
CASHIER = "cashier-secret"
LI = DEMO_PEOPLE[0].psn_no  # the person the simulators' QR code belongs to
WANG = DEMO_PEOPLE[1].psn_no
BILL = "DEMO-OP-0001"


def _other_bill() -> dict[str, Any]:
    bill = json.loads(SAMPLE_BILL.read_text(encoding="utf-8"), parse_float=Decimal)
    return {**bill, "chrg_bchno": "WANG-OP-0002"}


@pytest.fixture
def his(tmp_path: Path) -> Iterator[tuple[His, ServerThread]]:
    """The reference HIS on a free loopback port: the sample bill pending for 李建国, another for 王秀兰."""
    state = His(tmp_path / "his.sqlite", TOKEN)
    state.add_bill(LI, json.loads(SAMPLE_BILL.read_text(encoding="utf-8"), parse_float=Decimal))
    state.add_bill(WANG, _other_bill())
    server = ServerThread(create_his_app(state)).start()
    try:
        yield state, server
    finally:
        server.stop()
        state.close()


def _faults(server: ServerThread, **switches: Any) -> None:
    httpx.post(f"{server.url}/admin/faults", json=switches).raise_for_status()


def _his_bill(server: ServerThread, chrg_bchno: str) -> dict[str, Any]:
    rows = httpx.get(f"{server.url}/admin/bills").json()
    return next(row for row in rows if row["chrg_bchno"] == chrg_bchno)


def _wait_paid(server: ServerThread, chrg_bchno: str) -> dict[str, Any]:
    """The HIS row once the notice worker has told it (bounded wait; nothing is asserted on time)."""
    row = _his_bill(server, chrg_bchno)
    for _ in range(200):
        if row["state"] == "paid":
            break
        time.sleep(0.05)
        row = _his_bill(server, chrg_bchno)
    return row


@contextmanager
def _service(
    terminal: Terminal, source: HttpBillSource, notice_retry: timedelta = timedelta(seconds=5)
) -> Iterator[str]:
    """The service on loopback with the demo people, their QR / card, a cashier token and this bill source."""
    for person in DEMO_PEOPLE:
        terminal.gallery.upsert_person(person)
    link_demo_credentials(terminal)
    app = create_app(
        terminal,
        bills=source,
        cashier_token=CASHIER,
        technician_token=TECH,
        session_timeout=timedelta(seconds=60),
        notice_retry=notice_retry,
    )
    try:
        with serving(app) as url:
            APPS[url] = app
            try:
                yield url
            finally:
                APPS.pop(url, None)  # the app (and its terminal) freed with the test
    finally:
        source.close()


@pytest.fixture
def base_url(terminal: Terminal, his: tuple[His, ServerThread]) -> Iterator[str]:
    """The service with the HIS as its bill source (right token, the documented 5 s timeout)."""
    source = HttpBillSource(his[1].url, TOKEN, terminal.config.terminal.fixmedins_code)
    with _service(terminal, source) as url:
        yield url


# The app behind each served url: the QR reader hands proven claims to its session in-process.
APPS: dict[str, FastAPI] = {}


def _identify_by_qr(http: httpx.Client, psn_no: str = LI) -> None:
    http.post("/api/session/start").raise_for_status()
    view = reader_identifies(APPS[str(http.base_url).rstrip("/")], psn_no)
    assert view["state"] == "identified", view


def test_his_bills_are_listed_per_person_settled_and_the_his_is_told(
    base_url: str, his: tuple[His, ServerThread], terminal: Terminal
) -> None:
    _, server = his
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _identify_by_qr(http)
        bills = http.get("/api/session/bills").json()["bills"]
        assert [(b["chrg_bchno"], b["medfee_sumamt"]) for b in bills] == [(BILL, "430.00")], (
            "王秀兰's bill not listed"
        )
        view = choose_bill(http, BILL).json()
        assert view["state"] == "priced" and len(view["bill"]["lines"]) == 6
        receipt = confirm_shown(http).json()["receipt"]
        paid = _wait_paid(server, BILL)
        assert (paid["state"], paid["msgid"]) == ("paid", receipt["msgid"])
        assert paid["settled"]["psn_part_amt"] == receipt["psn_part_amt"]
        # The HIS answered before the worker wrote "sent": poll the technician view briefly.
        for _ in range(100):
            tech = http.get("/api/tech/diagnostics", headers={"Authorization": f"Bearer {TECH}"}).json()
            if tech["his_notices"] == {"sent": 1}:
                break
            time.sleep(0.05)
        assert tech["his_notices"] == {"sent": 1}, "the technician sees the notice delivered"
        http.post("/api/session/finish").raise_for_status()
        _identify_by_qr(http)
        assert http.get("/api/session/bills").json()["bills"] == []
    assert terminal.ledger.is_settled(BILL)
    assert _his_bill(server, "WANG-OP-0002")["state"] == "pending"


def test_his_down_is_a_503_asking_for_the_counter_and_a_credential_checkout_still_settles(
    base_url: str, his: tuple[His, ServerThread], terminal: Terminal
) -> None:
    _faults(his[1], down=True)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _identify_by_qr(http)
        answer = http.get("/api/session/bills")
        assert answer.status_code == 503 and answer.json()["code"] == "HIS_UNAVAILABLE"
        assert "ask at the counter" in answer.json()["detail"]
        basket = {"items": [{"code": "XA10BAE054A001010100001", "cnt": "1", "pric": "12.80"}]}
        view = http.post(
            "/api/counter/basket", json=basket, headers={"Authorization": f"Bearer {CASHIER}"}
        ).json()
        assert view["state"] == "priced", view
        receipt = confirm_shown(http).json()["receipt"]
    assert terminal.ledger.is_settled(receipt["chrg_bchno"])
    journal = NoticeJournal(terminal.data_dir)
    assert journal.row(receipt["chrg_bchno"]) is None, "a pharmacy basket is not an HIS bill: never notified"


def test_a_notice_the_down_his_missed_is_sent_when_the_patient_lists_bills_again(
    his: tuple[His, ServerThread], terminal: Terminal
) -> None:
    _, server = his
    journal = NoticeJournal(terminal.data_dir)
    source = HttpBillSource(server.url, TOKEN, terminal.config.terminal.fixmedins_code)
    # An hour between retries: only the listing below can send the notice within this test.
    with (
        _service(terminal, source, notice_retry=timedelta(hours=1)) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        _identify_by_qr(http)
        choose_bill(http, BILL).raise_for_status()
        _faults(server, down=True)
        view = confirm_shown(http).json()
        assert view["state"] == "settled", "settling never waits for the HIS"
        for _ in range(200):
            row = journal.row(BILL)
            if row is not None and row["attempts"] >= 1:
                break
            time.sleep(0.05)
        assert row is not None and row["state"] == "pending" and row["attempts"] >= 1, row
        assert "503" in row["detail"]
        assert _his_bill(server, BILL)["state"] == "pending"
        _faults(server, down=False)
        http.post("/api/session/finish").raise_for_status()
        _identify_by_qr(http)
        # The HIS still lists the bill; the ledger says settled: left out, and the notice goes now.
        assert http.get("/api/session/bills").json()["bills"] == []
    assert _wait_paid(server, BILL)["msgid"] == view["receipt"]["msgid"]


def test_malformed_his_bill_is_a_422_naming_the_bill_and_the_session_stays(
    base_url: str, his: tuple[His, ServerThread]
) -> None:
    _faults(his[1], malformed=True)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _identify_by_qr(http)
        answer = choose_bill(http, BILL)
        assert answer.status_code == 422 and answer.json()["code"] == "BILL_INVALID"
        assert BILL in answer.json()["detail"] and "med_list_codg" in answer.json()["detail"]
        assert http.get("/api/session").json()["state"] == "identified"


def test_unknown_bill_number_is_a_422_no_pending_bill(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        _identify_by_qr(http)
        answer = choose_bill(http, "NOPE-1")
        assert answer.status_code == 422
        assert answer.json()["detail"] == "bill NOPE-1 is not pending for the identified patient"


def test_wrong_his_token_is_a_502_naming_the_token(terminal: Terminal, his: tuple[His, ServerThread]) -> None:
    source = HttpBillSource(his[1].url, "not-the-token", terminal.config.terminal.fixmedins_code)
    with _service(terminal, source) as url:
        with httpx.Client(base_url=url, timeout=30) as http:
            _identify_by_qr(http)
            answer = http.get("/api/session/bills")
        assert answer.status_code == 502 and answer.json()["code"] == "HIS_AUTH"
        assert "token" in answer.json()["detail"] and "ask at the counter" in answer.json()["detail"]


def test_slow_his_is_a_504_timeout(terminal: Terminal, his: tuple[His, ServerThread]) -> None:
    _faults(his[1], slow_s=3.0)
    source = HttpBillSource(his[1].url, TOKEN, terminal.config.terminal.fixmedins_code, timeout=0.2)
    with _service(terminal, source) as url, httpx.Client(base_url=url, timeout=30) as http:
        _identify_by_qr(http)
        answer = http.get("/api/session/bills")
        assert answer.status_code == 504 and answer.json()["code"] == "HIS_TIMEOUT"
        assert "did not answer within 0.2 s" in answer.json()["detail"]
        # The session is untouched: the patient can still pay through the counter's basket.
        assert http.get("/api/session").json()["state"] == "identified"


def _notice(chrg_bchno: str, msgid: str, total: str = "430.00") -> SettledNotice:
    return SettledNotice(
        chrg_bchno, msgid, "2025-06-03T10:00:00+08:00", total, "300.00", str(Decimal(total) - 300)
    )


def test_notify_is_idempotent_on_msgid_and_refused_for_another(his: tuple[His, ServerThread]) -> None:
    source = HttpBillSource(his[1].url, TOKEN, "H43030200001")
    first = _notice(BILL, "H430302000012025060310000001")
    source.notify_settled(BILL, first)
    source.notify_settled(BILL, first)
    assert _his_bill(his[1], BILL)["msgid"] == first.msgid
    with pytest.raises(HisRefused, match="settled already"):
        source.notify_settled(BILL, _notice(BILL, "H430302000012025060310000002"))
    with pytest.raises(BillError, match=f"no pending bill {BILL}"):
        source.get(BILL)
    source.close()


def test_notifier_retries_until_the_his_hears_and_marks_refusals_final(
    his: tuple[His, ServerThread], tmp_path: Path, clock: FixedClock
) -> None:
    _, server = his
    source = HttpBillSource(server.url, TOKEN, "H43030200001")
    journal = NoticeJournal(tmp_path)
    notifier = HisNotifier(source, journal, clock)
    journal.loaded(BILL, "t")
    journal.loaded("UNKNOWN-1", "t")
    journal.loaded("NEVER-SETTLED", "t")
    ledger = {
        BILL: _notice(BILL, "H430302000012025060310000001").body(),
        "UNKNOWN-1": _notice("UNKNOWN-1", "H430302000012025060310000003").body(),
    }
    for chrg_bchno, row in ledger.items():
        assert journal.settled(chrg_bchno, row["msgid"], row, "t")
    basket = _notice("RX-BASKET-1", "H430302000012025060310000004")
    assert not journal.settled(basket.chrg_bchno, basket.msgid, basket.body(), "t"), "never loaded"
    _faults(server, down=True)
    assert notifier.flush() == 0
    assert journal.summary() == {"pending": 2, "loaded": 1}
    _faults(server, down=False)
    assert notifier.flush() == 1
    assert journal.summary() == {"sent": 1, "refused": 1, "loaded": 1}
    assert "404" in str((journal.row("UNKNOWN-1") or {})["detail"])
    assert _his_bill(server, BILL)["state"] == "paid"
    source.close()


def test_reconcile_queues_a_loaded_bill_the_ledger_settled_before_a_restart(
    his: tuple[His, ServerThread], tmp_path: Path, clock: FixedClock
) -> None:
    source = HttpBillSource(his[1].url, TOKEN, "H43030200001")
    journal = NoticeJournal(tmp_path)
    journal.loaded(BILL, "t")
    row = _notice(BILL, "H430302000012025060310000009").body()
    HisNotifier(source, journal, clock).reconcile(lambda chrg_bchno: row if chrg_bchno == BILL else None)
    assert _wait_paid(his[1], BILL)["msgid"] == row["msgid"]
    source.close()


def test_serve_picks_the_his_when_his_url_is_set(tmp_path: Path) -> None:
    config = load(DEFAULT_CONFIG)
    assert isinstance(build_bill_source(config, tmp_path), FileBillSource)
    with_his = config.model_copy(
        update={"session": config.session.model_copy(update={"his_url": "http://127.0.0.1:9"})}
    )
    source = build_bill_source(with_his, tmp_path)
    assert isinstance(source, HttpBillSource)
    with pytest.raises(HisAuthError, match=r"keys/his\.token"):
        source.pending(LI)


def test_another_patients_bill_cannot_be_loaded(base_url: str, his: tuple[His, ServerThread]) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        before = choose_bill(http, "WANG-OP-0002")
        assert before.status_code == 409, "no bill before the patient is identified"
        _identify_by_qr(http)  # 李建国
        answer = choose_bill(http, "WANG-OP-0002")
        assert (
            answer.status_code == 422 and "not pending for the identified patient" in answer.json()["detail"]
        )
        assert http.get("/api/session").json()["state"] == "identified"
    assert _his_bill(his[1], "WANG-OP-0002")["state"] == "pending"


class HookedSource:
    """The HIS bill source, running a hook right after the HIS answered a listing (a concurrent request)."""

    def __init__(self, inner: HttpBillSource, hook: Any) -> None:
        self.inner = inner
        self.hook = hook

    def pending(self, psn_no: str) -> Any:
        """List, then let the hook run before the route goes on."""
        bills = self.inner.pending(psn_no)
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return bills

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_bill_listed_for_one_patient_never_loads_into_the_next_patients_session(
    terminal: Terminal, his: tuple[His, ServerThread]
) -> None:
    """The bill-owner race: while the HIS lists A's bills, A's checkout ends and B is identified."""
    inner = HttpBillSource(his[1].url, TOKEN, terminal.config.terminal.fixmedins_code)

    def next_patient() -> None:
        app = next(iter(APPS.values()))
        checkout = service_of(app).checkout
        checkout.cancel()
        checkout.start()
        reader_identifies(app, WANG)

    source = HookedSource(inner, None)
    APPS.clear()
    with _service(terminal, source) as url, httpx.Client(base_url=url, timeout=30) as http:  # type: ignore[arg-type]
        _identify_by_qr(http)  # 李建国
        source.hook = next_patient
        answer = choose_bill(http, BILL)
        assert answer.status_code == 409 and answer.json()["code"] == "SESSION_CHANGED", answer.text
        view = http.get("/api/session").json()
        assert view["state"] == "identified" and "bill" not in view, "B holds no bill of A"
        assert confirm_shown(http).status_code == 409
    assert not terminal.ledger.is_settled(BILL)
