"""The hospital's HIS as a bill source over HTTP (docs/kiosk.md): pending bills, one bill, settled notices."""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.bill_json import bill_from_json
from terminal.domain import Bill, PendingBill, SettledNotice
from terminal.errors import (
    BillError,
    HisAuthError,
    HisRefused,
    HisTimeout,
    HisUnavailable,
)

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
    # Optional: the visit's department and doctor, shown on the kiosk's bill list.
    dept_name: Annotated[str, Field(max_length=100)] = ""
    dr_name: Annotated[str, Field(max_length=50)] = ""


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
                    parsed.chrg_bchno,
                    parsed.med_type,
                    parsed.begntime,
                    parsed.medfee_sumamt,
                    parsed.items,
                    parsed.dept_name,
                    parsed.dr_name,
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
