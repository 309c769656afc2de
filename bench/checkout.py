"""The payment saga's terminal-side cost per checkout, against the reference gateway on loopback.

Two terminals check out the same kind of bill through the real session: one without a gateway (the
checkout as before issue 16) and one whose cash share goes through the saga to the reference gateway
(`python -m devkit payment`, a subprocess on 127.0.0.1): confirm, QR created, one poll unpaid, the
"patient" pays (the gateway's control endpoint; not timed), one poll paid, receipt. The saga's cost
is the paying checkout's time less the time spent inside gateway calls (the gateway's own work and
loopback, which a real gateway replaces with its own) less the checkout without a gateway.

Goal from issue 16: at most 50 ms added to a checkout, injected gateway delays excluded. Prints the
figures and writes bench/results/checkout.json. Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.app import Terminal, build_session, build_terminal
from terminal.bill_json import load_bill
from terminal.cli.pay_gateway import ReferenceGateway, reference_gateway
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL
from terminal.domain import CertType, IdentityClaim
from terminal.pipeline.session import Session
from terminal.store.keys import create_key

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "checkout.json"
GOAL_MS = 50.0
PATIENT = DEMO_PEOPLE[2]  # 张伟


class _VisitClock:
    """The sample visit's time, running forward in real time (the shipped policy year applies)."""

    def __init__(self, start: datetime) -> None:
        self._offset = start - SystemClock().now()

    def now(self) -> datetime:
        """The replayed time."""
        return SystemClock().now() + self._offset


class _TimedGateway:
    """The adapter with the time spent inside each call added up (the gateway's share of a checkout)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.spent = 0.0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return target(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - began

        return timed


def _terminal(folder: Path, gateway: ReferenceGateway | None) -> Terminal:
    create_key(folder)
    config = load(DEFAULT_CONFIG)
    if gateway is not None:
        config = gateway.configure(config)
    term = build_terminal(config, folder, _VisitClock(load_bill(SAMPLE_BILL).begntime))
    for person in DEMO_PEOPLE:
        term.gallery.upsert_person(person)
    return term


def _checkout(session: Session, index: int, pay: Callable[[dict[str, Any]], dict[str, Any]] | None) -> None:
    session.start()
    session.identify_credential(IdentityClaim(CertType.EC_TOKEN, "BENCH", psn_no=PATIENT.psn_no))
    # Without the personal account: the whole personal share is the cash share, on every checkout.
    bill = replace(load_bill(SAMPLE_BILL), chrg_bchno=f"BENCH-{index:05d}", acct_used_flag=False)
    view = session.load_bill(bill, session.session_id)
    view = session.confirm(view["session_id"], bill.chrg_bchno, view["amounts_digest"])
    if pay is not None:
        view = pay(view)
    if view["state"] != "settled":
        raise RuntimeError(f"checkout {index} ended {view['state']}: {view.get('payment')}")
    session.finish()


def run(count: int, warmup: int) -> dict[str, Any]:
    """Time `count` checkouts each way (after `warmup`); the figures as a dict."""
    with tempfile.TemporaryDirectory() as tmp, reference_gateway(Path(tmp) / "gateway") as gateway:
        plain = _terminal(Path(tmp) / "plain", None)
        paying = _terminal(Path(tmp) / "paying", gateway)
        timed = _TimedGateway(paying.payment_gateway)
        paying.__dict__["payment_gateway"] = timed  # the cached adapter, measured
        plain_session = build_session(plain, face=False)
        paying_session = build_session(paying, face=False)
        patient_s = 0.0

        def pay(view: dict[str, Any]) -> dict[str, Any]:
            nonlocal patient_s
            shown = paying_session.pay_qr(view["session_id"])
            unpaid = paying_session.poll_payment()
            assert unpaid["payment"]["paid"] is False
            began = time.perf_counter()
            gateway.pay_qr(shown["payment"]["code_url"])  # the patient's phone: not the terminal's cost
            patient_s += time.perf_counter() - began
            return paying_session.poll_payment()

        plain_ms, paying_ms, gateway_ms = [], [], []
        for index in range(warmup + count):
            began = time.perf_counter()
            _checkout(plain_session, index, None)
            plain_elapsed = time.perf_counter() - began
            timed.spent, patient_s = 0.0, 0.0
            began = time.perf_counter()
            _checkout(paying_session, index, pay)
            paying_elapsed = time.perf_counter() - began - patient_s
            if index >= warmup:
                plain_ms.append(plain_elapsed * 1000)
                gateway_ms.append(timed.spent * 1000)
                paying_ms.append((paying_elapsed - timed.spent) * 1000)
        paid = sum(1 for o in gateway.orders() if o["state"] == "SUCCESS")
        plain.close()
        paying.close()
    added = [p - q for p, q in zip(paying_ms, plain_ms, strict=True)]
    return {
        "checkouts": count,
        "orders_paid_at_gateway": paid,
        "plain_checkout_ms_median": round(statistics.median(plain_ms), 2),
        "paying_checkout_ms_median_terminal_side": round(statistics.median(paying_ms), 2),
        "gateway_calls_ms_median": round(statistics.median(gateway_ms), 2),
        "added_ms_median": round(statistics.median(added), 2),
        "added_ms_p95": round(sorted(added)[int(0.95 * (len(added) - 1))], 2),
        "goal_added_ms": GOAL_MS,
        "calls_per_checkout": "create_qr + 2 queries (one unpaid, one paid)",
    }


def main(argv: list[str] | None = None) -> int:
    """Run, print, write bench/results/checkout.json; 0 when the median added cost meets the goal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    figures = run(args.count, args.warmup)
    figures["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count()}
    figures["at"] = datetime.now().astimezone().isoformat(timespec="seconds")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for key, value in figures.items():
        sys.stdout.write(f"{key}: {value}\n")
    met = figures["added_ms_median"] <= GOAL_MS
    sys.stdout.write(f"goal ≤ {GOAL_MS:g} ms added (median): {'met' if met else 'NOT met'}\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
