"""The hospital's HIS as a bill source over HTTP (docs/kiosk.md), and settled-bill notices sent back to it.

The ledger is the source of truth for what was settled. The HIS only hears about it, from a worker
thread that retries until it does; a settlement never waits for, or depends on, the HIS.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.config import TerminalConfig
from terminal.domain import Bill
from terminal.errors import (
    BillError,
    HisAuthError,
    HisError,
    HisRefused,
    HisTimeout,
    HisUnavailable,
)
from terminal.pipeline.bill_source import BillSource, FileBillSource, PendingBill, SettledNotice
from terminal.pipeline.bills import bill_from_json
from terminal.ports import Clock
from terminal.store.keys import read_token
from terminal.store.notices import NoticeJournal

log = logging.getLogger(__name__)

HIS_TOKEN_ROLE = "his"  # the token lives in <data>/keys/his.token, beside the staff tokens
PATIENT_MESSAGE = "no bill found; ask at the counter"


class _PendingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    chrg_bchno: Annotated[str, Field(min_length=1, max_length=30)]
    med_type: Annotated[str, Field(pattern=r"^\d{2,4}$")]
    begntime: datetime
    medfee_sumamt: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
    items: Annotated[int, Field(ge=1)]


class HttpBillSource:
    """The BillSource over the documented HIS interface: bearer token, one timeout per call."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        fixmedins_code: str,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._token = token
        self._fixmedins_code = fixmedins_code
        self._timeout = timeout
        if transport is None:
            # Without NODELAY, Nagle plus the server's delayed ACK adds ~40 ms to every call.
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout, transport=transport)

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def pending(self, psn_no: str) -> list[PendingBill]:
        """The person's pending bills; a listing entry not in the documented shape is left out and logged."""
        reply = self._send(
            "GET",
            "/pending-bills",
            for_patient=True,
            params={"psn_no": psn_no, "fixmedins_code": self._fixmedins_code},
        )
        if reply.status_code != 200:
            raise HisUnavailable(f"{PATIENT_MESSAGE} (HIS listing answered HTTP {reply.status_code})")
        data = _json(reply, "the bill listing", for_patient=True)
        entries = data.get("bills") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise HisUnavailable(f'{PATIENT_MESSAGE} (HIS listing has no "bills" list)')
        bills = []
        for entry in entries:
            try:
                parsed = _PendingIn.model_validate(entry)
            except ValidationError as exc:
                # One bad entry must not hide the person's other bills; the counter sees the log.
                name = entry.get("chrg_bchno", "?") if isinstance(entry, dict) else "?"
                log.warning("HIS listed bill %s in an undocumented shape; left out: %s", name, _problems(exc))
                continue
            bills.append(
                PendingBill(
                    parsed.chrg_bchno, parsed.med_type, parsed.begntime, parsed.medfee_sumamt, parsed.items
                )
            )
        return bills

    def get(self, chrg_bchno: str) -> Bill:
        """The full bill, validated by the strict bill parser; BillError when unknown or malformed."""
        reply = self._send("GET", f"/bills/{quote(chrg_bchno, safe='')}", for_patient=True)
        if reply.status_code == 404:
            raise BillError(f"no pending bill {chrg_bchno}")
        if reply.status_code != 200:
            raise HisUnavailable(
                f"{PATIENT_MESSAGE} (HIS bill {chrg_bchno} answered HTTP {reply.status_code})"
            )
        try:
            data = json.loads(reply.content, parse_float=Decimal)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BillError(f"bill {chrg_bchno} from the HIS is not JSON") from exc
        try:
            bill = bill_from_json(data)
        except BillError as exc:
            raise BillError(f"bill {chrg_bchno} from the HIS: {exc}") from exc
        if bill.chrg_bchno != chrg_bchno:
            raise BillError(f"the HIS answered bill {bill.chrg_bchno} when asked for {chrg_bchno}")
        return bill

    def notify_settled(self, chrg_bchno: str, notice: SettledNotice) -> None:
        """POST …/settled; HisRefused when the HIS will never take it (unknown bill, another msgid)."""
        reply = self._send("POST", f"/bills/{quote(chrg_bchno, safe='')}/settled", json=notice.body())
        if reply.status_code == 200:
            return
        if 400 <= reply.status_code < 500:
            raise HisRefused(
                f"HIS refused the settlement of {chrg_bchno}: HTTP {reply.status_code} {_text(reply)}"
            )
        raise HisUnavailable(f"HIS answered the settlement of {chrg_bchno} with HTTP {reply.status_code}")

    def _send(self, method: str, path: str, *, for_patient: bool = False, **kwargs: Any) -> httpx.Response:
        """One call with the bearer token; network failures, 401/403 and 5xx become typed errors."""
        prefix = f"{PATIENT_MESSAGE} (" if for_patient else ""
        suffix = ")" if for_patient else ""
        if self._token is None:
            raise HisAuthError(
                f"{prefix}no HIS token: put the hospital's token in <data>/keys/his.token{suffix}"
            )
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            reply = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise HisTimeout(f"{prefix}the HIS did not answer within {self._timeout:g} s{suffix}") from exc
        except httpx.TransportError as exc:
            raise HisUnavailable(f"{prefix}the HIS cannot be reached: {type(exc).__name__}{suffix}") from exc
        if reply.status_code in (401, 403):
            raise HisAuthError(
                f"{prefix}the HIS refused this terminal's token (HTTP {reply.status_code}){suffix}"
            )
        if reply.status_code >= 500:
            raise HisUnavailable(f"{prefix}the HIS failed with HTTP {reply.status_code}{suffix}")
        return reply


def _json(reply: httpx.Response, what: str, *, for_patient: bool) -> Any:
    try:
        return json.loads(reply.content, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = f"the HIS answered {what} with something that is not JSON"
        raise HisUnavailable(f"{PATIENT_MESSAGE} ({message})" if for_patient else message) from exc


def _text(reply: httpx.Response) -> str:
    return reply.text[:200].strip()


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}" for err in exc.errors()
    )


def bill_source(config: TerminalConfig, data_dir: Path) -> BillSource:
    """The HIS when `[session] his_url` is set (token from <data>/keys/his.token), else the bill folder."""
    session = config.session
    if session.his_url is None:
        return FileBillSource(session.bills)
    token = read_token(data_dir, HIS_TOKEN_ROLE)
    if token is None:
        # Served anyway: QR / card / ID and the pharmacy counter work without the HIS.
        log.error("[session] his_url is set but %s is missing: bill listing will fail", _token_path(data_dir))
    return HttpBillSource(
        session.his_url, token, config.terminal.fixmedins_code, timeout=session.his_timeout_s
    )


def _token_path(data_dir: Path) -> Path:
    return data_dir / "keys" / f"{HIS_TOKEN_ROLE}.token"


class HisNotifier:
    """Tells the bill source about settled bills from a worker thread, retrying with backoff until it hears.

    Nothing here touches money: the settlement is in the ledger before a notice is queued, and a
    notice that never arrives leaves the bill listed at the HIS, where the kiosk's listing filters it
    out (the ledger says settled) and queues the notice again.
    """

    def __init__(
        self,
        source: BillSource,
        journal: NoticeJournal,
        clock: Clock,
        retry_s: float = 5.0,
        retry_cap_s: float = 300.0,
    ) -> None:
        self.journal = journal
        self._source = source
        self._clock = clock
        self._retry_s = retry_s
        self._retry_cap_s = max(retry_cap_s, retry_s)
        self._wake = threading.Event()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def loaded(self, chrg_bchno: str) -> None:
        """The patient chose this bill from the source."""
        self.journal.loaded(chrg_bchno, self._now())

    def settled(self, notice: SettledNotice, *, listed: bool = False) -> None:
        """Queue a settled bill's notice (if it came from the source) and wake the worker; returns at once."""
        # A notice already waiting is sent now too: the patient is back, so the HIS may well be.
        if self.journal.settled(notice.chrg_bchno, notice.msgid, notice.body(), self._now(), listed=listed):
            self._kick()

    def reconcile(self, settlement_of: Callable[[str], Mapping[str, Any] | None]) -> None:
        """Queue notices for loaded bills the ledger settled (a restart right after settling); at start."""
        for chrg_bchno in self.journal.waiting("loaded"):
            row = settlement_of(chrg_bchno)
            if row is not None:
                notice = SettledNotice.from_ledger(chrg_bchno, row)
                self.journal.settled(chrg_bchno, notice.msgid, notice.body(), self._now())
        if self.journal.pending():
            self._kick()

    def flush(self) -> int:
        """Send every pending notice now, stopping at the first failure the source may recover from."""
        sent = 0
        with self._flush_lock:
            for notice in self._pending():
                try:
                    self._source.notify_settled(notice.chrg_bchno, notice)
                except HisRefused as exc:
                    # Final: e.g. the HIS says another msgid paid it. The ledger stands; a person must look.
                    log.error("HIS will not take the settlement of %s: %s", notice.chrg_bchno, exc)
                    self.journal.finish(notice.chrg_bchno, "refused", self._now(), str(exc))
                    continue
                except HisError as exc:
                    log.warning("HIS not told of %s yet (will retry): %s", notice.chrg_bchno, exc)
                    self.journal.finish(notice.chrg_bchno, "pending", self._now(), str(exc))
                    break
                self.journal.finish(notice.chrg_bchno, "sent", self._now())
                log.info("HIS told: %s settled as %s", notice.chrg_bchno, notice.msgid)
                sent += 1
        return sent

    def _kick(self) -> None:
        # Set before a first start: the new thread's first flush then answers this kick.
        self._wake.set()
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="his-notices", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        delay = self._retry_s
        while True:
            self._wake.clear()
            try:
                self.flush()
                waiting = bool(self.journal.pending())
            except Exception:
                # The thread boundary: an unexpected failure must not end all later notices.
                log.exception("HIS notices: flush failed unexpectedly")
                waiting = True
            if waiting:
                # Why real time, not the injected clock: this paces network retries, it decides nothing.
                self._wake.wait(delay)
                delay = min(delay * 2, self._retry_cap_s)
            else:
                delay = self._retry_s
                self._wake.wait()

    def _pending(self) -> list[SettledNotice]:
        return [SettledNotice(chrg_bchno=no, **body) for no, body in self.journal.pending()]

    def _now(self) -> str:
        return self._clock.now().isoformat()
