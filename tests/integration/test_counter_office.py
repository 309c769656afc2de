"""The counter office over HTTP and the CLI: named staff, refunds with a supervisor, reprint 补打, 对账."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from devkit.serving import serving
from terminal.app import Terminal
from terminal.cli.main import main
from terminal.service.app import create_app
from terminal.store.staff import StaffStore
from tests.fakes import FixedClock
from tests.integration.uplink_kit import terminal_side

PASSWORD = "correct horse 1"


def _staff(terminal: Terminal) -> None:
    store = StaffStore(terminal.db)
    at = terminal.clock.now()
    store.add("c01", "王收银", "cashier", PASSWORD, at, "technician:test")
    store.add("c02", "李收银", "cashier", PASSWORD, at, "technician:test")
    store.add("s01", "张主管", "supervisor", PASSWORD, at, "technician:test")


@pytest.fixture
def client(terminal: Terminal) -> Iterator[httpx.Client]:
    _staff(terminal)
    app = create_app(terminal, cashier_token="c", technician_token="t")
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def _sign_in(client: httpx.Client, staff_id: str) -> dict[str, str]:
    reply = client.post("/api/staff/sign-in", json={"staff_id": staff_id, "password": PASSWORD})
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _amount(client: httpx.Client, cashier: str, msgid: str) -> str:
    """What the office page shows a refund of this settlement hands back."""
    day = client.get("/api/counter/settlements?date=2025-06-03", headers=_bearer(cashier)).json()
    return str(next(s for s in day["settlements"] if s["msgid"] == msgid)["refund_amount"])


def _approve(client: httpx.Client, cashier: str, staff_id: str, msgid: str, amount: str) -> httpx.Response:
    body = {"staff_id": staff_id, "password": PASSWORD, "msgid": msgid, "amount": amount}
    return client.post("/api/staff/approve", json=body, headers=_bearer(cashier))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _settled(data_dir: Path, state: str = "external") -> str:
    """A settlement in the terminal's ledger whose cash share was taken at the counter (no gateway)."""
    side = terminal_side(data_dir, FixedClock())
    record = side.settle(0)
    side.db.execute(
        "UPDATE payments SET state = ?, fen = estimate_fen WHERE msgid = ?", [state, record.msgid]
    )
    return record.msgid


def test_wrong_passwords_pause_the_staff_id_and_the_shared_token_moves_no_money(client: httpx.Client) -> None:
    for _ in range(5):
        wrong = client.post("/api/staff/sign-in", json={"staff_id": "c01", "password": "wrong password"})
        assert wrong.status_code == 401 and wrong.json()["code"] == "STAFF_SIGN_IN_FAILED"
    paused = client.post("/api/staff/sign-in", json={"staff_id": "c01", "password": PASSWORD})
    assert paused.status_code == 429 and paused.json()["code"] == "STAFF_LOCKED_OUT"
    assert (
        client.post("/api/staff/sign-in", json={"staff_id": "c02", "password": PASSWORD}).status_code == 200
    )
    # the shared cashier token reads the day's list, never refunds or reprints
    assert client.get("/api/counter/settlements", headers=_bearer("c")).status_code == 200
    assert "office.js" in client.get("/office").text
    for path, body in (("/api/counter/reprint", {"msgid": "x"}),
                       ("/api/counter/refund", {"msgid": "x", "reason": "r", "approval": "a"})):  # fmt: skip
        assert client.post(path, json=body, headers=_bearer("c")).status_code == 401


def test_a_sign_in_expires(client: httpx.Client, terminal: Terminal) -> None:
    token = _sign_in(client, "c01")["token"]
    assert client.get("/api/staff/me", headers=_bearer(token)).json()["name"] == "王收银"
    assert isinstance(terminal.clock, FixedClock)
    terminal.clock.at += timedelta(minutes=31)
    assert client.get("/api/staff/me", headers=_bearer(token)).status_code == 401


def test_refund_over_http_needs_a_second_person_who_is_a_supervisor(
    client: httpx.Client, terminal: Terminal, data_dir: Path
) -> None:
    msgid = _settled(data_dir)
    cashier = _sign_in(client, "c01")["token"]
    amount = _amount(client, cashier, msgid)
    # a cashier cannot approve; nor can anyone without a cashier asking
    refused = _approve(client, cashier, "c02", msgid, amount)
    assert refused.status_code == 403 and refused.json()["code"] == "SUPERVISOR_APPROVAL_REQUIRED"
    body = {"staff_id": "s01", "password": PASSWORD, "msgid": msgid, "amount": amount}
    assert client.post("/api/staff/approve", json=body).status_code == 401
    # the supervisor cannot approve their own refund
    supervisor = _sign_in(client, "s01")["token"]
    own = _approve(client, supervisor, "s01", msgid, amount)
    assert own.status_code == 403 and own.json()["code"] == "SUPERVISOR_APPROVAL_REQUIRED"
    # an approval of another amount is refused at once
    wrong = _approve(client, cashier, "s01", msgid, f"{Decimal(amount) + Decimal('0.01')}")
    assert wrong.status_code == 403 and wrong.json()["code"] == "APPROVAL_MISMATCH"
    approval = _approve(client, cashier, "s01", msgid, amount).json()
    assert (approval["operation"], approval["msgid"]) == ("refund", msgid)
    body = {"msgid": msgid, "reason": "returned", "approval": approval["token"]}
    # the approval is the asking cashier's only: another signed-in person cannot use it
    other_cashier = _sign_in(client, "c02")["token"]
    stolen = client.post("/api/counter/refund", json=body, headers=_bearer(other_cashier))
    assert stolen.status_code == 403 and stolen.json()["code"] == "APPROVAL_MISMATCH"
    # nor does it fit another settlement
    other = client.post("/api/counter/refund", json={**body, "msgid": "OTHER"}, headers=_bearer(cashier))
    assert other.status_code == 409 and other.json()["code"] == "REFUND_REFUSED"
    done = client.post("/api/counter/refund", json=body, headers=_bearer(cashier))
    assert done.status_code == 200, done.text
    assert (
        done.json().items()
        >= {
            "state": "refunded",
            "insurance": "voided",
            "by": "staff:c01",
            "approved_by": "staff:s01",
        }.items()
    )
    # spent: the same approval refunds nothing again; a new one meets the refunded settlement
    again = client.post("/api/counter/refund", json=body, headers=_bearer(cashier))
    assert again.status_code == 403 and again.json()["code"] == "APPROVAL_MISMATCH"
    fresh = _approve(client, cashier, "s01", msgid, amount).json()["token"]
    refunded = client.post("/api/counter/refund", json={**body, "approval": fresh}, headers=_bearer(cashier))
    assert refunded.status_code == 409 and refunded.json()["code"] == "REFUND_REFUSED"
    [row] = terminal.db.query("SELECT actor, detail FROM audit WHERE action = 'refund_approved'")
    assert row["actor"] == "staff:c01" and json.loads(row["detail"])["approved_by"] == "staff:s01"


def test_a_supervisor_demoted_mid_shift_approves_nothing_more(
    client: httpx.Client, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msgid = _settled(data_dir)
    cashier = _sign_in(client, "c01")["token"]
    supervisor = _sign_in(client, "s01")["token"]
    amount = _amount(client, cashier, msgid)
    approval = _approve(client, cashier, "s01", msgid, amount).json()["token"]
    assert main(["--data-dir", str(data_dir), "staff", "role", "s01", "--role", "cashier"]) == 0
    assert "s01 (张主管) is now a cashier" in capsys.readouterr().out
    assert client.get("/api/staff/me", headers=_bearer(supervisor)).status_code == 401
    body = {"msgid": msgid, "reason": "returned", "approval": approval}
    late = client.post("/api/counter/refund", json=body, headers=_bearer(cashier))
    assert late.status_code == 401 and late.json()["code"] == "STAFF_SIGN_IN_FAILED"
    again = _approve(client, cashier, "s01", msgid, amount)
    assert again.status_code == 403 and again.json()["code"] == "SUPERVISOR_APPROVAL_REQUIRED"


def test_reprint_is_marked_and_names_who_reprinted(
    client: httpx.Client, terminal: Terminal, data_dir: Path
) -> None:
    msgid = _settled(data_dir, "paid")
    token = _sign_in(client, "c01")["token"]
    first = client.post("/api/counter/reprint", json={"msgid": msgid}, headers=_bearer(token)).json()
    second = client.post("/api/counter/reprint", json={"msgid": msgid}, headers=_bearer(token)).json()
    assert (
        first["receipt"]["reprint"] == "补打"
        and first["receipt"]["copy"] == 1
        and second["receipt"]["copy"] == 2
    )
    assert "补打" in first["text"].splitlines()[0] and msgid in first["text"]
    assert first["printed"] == "no_printer"
    actors = [r["actor"] for r in terminal.db.query("SELECT actor FROM audit WHERE action = 'reprint'")]
    assert actors == ["staff:c01", "staff:c01"]
    missing = client.post("/api/counter/reprint", json={"msgid": "NOPE"}, headers=_bearer(token))
    assert missing.status_code == 404 and missing.json()["code"] == "RECEIPT_NOT_FOUND"


def test_report_day_over_http_and_the_cli_json_and_csv(
    client: httpx.Client, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    msgid = _settled(data_dir, "paid")
    over_http = client.get("/api/report/day?date=2025-06-03", headers=_bearer("t"))
    assert over_http.status_code == 200
    assert over_http.json()["insurance"]["settlements"] == 1
    assert main(["--data-dir", str(data_dir), "report", "day", "--date", "2025-06-03", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # no gateway is configured: the ledger's payment is listed, the gateway's side is unavailable
    assert report["payments"]["gateway"] == "unavailable" and report["insurance"]["settlements"] == 1
    assert report["insurance"]["unconfirmed"] == [msgid] and report["insurance"]["totals_3201"] is None
    assert report["benefit_hints"] == {}  # no 政策找人 hint was shown that day
    main(["--data-dir", str(data_dir), "report", "day", "--date", "2025-06-03", "--csv"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["section"] for r in rows} >= {"fund", "3201", "payment"}
    fund = next(r for r in rows if r["section"] == "fund" and r["field"] == "medfee_sumamt")
    assert fund["ledger"] == report["insurance"]["funds"][0]["ledger"] != "0.00"


def test_staff_cli_adds_lists_and_disables(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    args = ["--data-dir", str(data_dir), "staff"]
    assert main([*args, "add", "s09", "--name", "赵主管", "--role", "supervisor", "--password-stdin"]) == 0
    assert main([*args, "disable", "s09", "--operator", "it"]) == 0
    assert main([*args, "list", "--json"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("[") :])
    assert [(m["staff_id"], m["role"], m["active"]) for m in listed] == [("s09", "supervisor", False)]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*args, "add", "c09", "--name", "x", "--password-stdin"]) == 1
    assert "COUNTER_REFUSED" in capsys.readouterr().err
