"""Counter helpers shared by the browser tests: the office's staff accounts and a counter sale over HTTP.

Holds no tests itself (moved here from test_staff_office.py so the payment tests use the same ones).
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from terminal.store.staff import StaffStore
from tests.ui.conftest import CASHIER, Kiosk, bearer

PASSWORD = "counter-ui-password-1"
CASHIER_ID, SUPERVISOR_ID = "ui-cashier", "ui-super"
METFORMIN = "XA10BAE054A001010100001"


def add_staff(kiosk: Kiosk) -> str:
    """A cashier (王收银) and a supervisor (赵主管) who sign in at the office; the cashier's staff ID."""
    with kiosk.terminal.lock:
        store = StaffStore(kiosk.terminal.db)
        if not [m for m in store.all() if m.staff_id == CASHIER_ID]:
            now = kiosk.terminal.clock.now()
            store.add(CASHIER_ID, "王收银", "cashier", PASSWORD, now, "technician:test")
            store.add(SUPERVISOR_ID, "赵主管", "supervisor", PASSWORD, now, "technician:test")
    return CASHIER_ID


def settle_at_the_counter(
    kiosk: Kiosk, pay_code: str | None = None, items: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """One counter sale settled over HTTP (the basket, the ID number, the patient's face, confirm).

    `items` are the basket's lines (one 盐酸二甲双胍片 when None). With `pay_code` the cash share is then
    charged to that payment code (a terminal with a gateway). The session's last view is returned.
    """
    with httpx.Client(base_url=kiosk.url, timeout=30) as http:
        http.post("/api/session/start").raise_for_status()
        lines = items or [{"code": METFORMIN, "cnt": "1", "pric": "12.80"}]
        http.post("/api/counter/basket", json={"items": lines}, headers=bearer(CASHIER)).raise_for_status()
        http.post("/api/session/credential", json={"method": "id", "value": kiosk.patient.certno})
        http.post("/api/session/face/start").raise_for_status()
        deadline = time.monotonic() + 60
        view = http.get("/api/session").json()
        while view["state"] != "priced" and time.monotonic() < deadline:
            view = http.get("/api/session").json()
        assert view["state"] == "priced", view
        shown = {k: view[k] for k in ("session_id", "amounts_digest")} | {
            "chrg_bchno": view["bill"]["chrg_bchno"]
        }
        view = http.post("/api/session/confirm", json=shown).json()
        assert view["state"] in ("settled", "paying"), view
        if pay_code is not None:
            paid = {"session_id": view["session_id"], "auth_code": pay_code}
            view = http.post("/api/session/pay/code", json=paid).json()
            assert view["state"] == "settled", view
        http.post("/api/session/finish")
        http.delete("/api/counter/basket", headers=bearer(CASHIER))
        return dict(view)
