"""HTTP client for the upstream: one POST path, signed and sealed envelopes, errors split by what is known.

Every envelope is SM2-signed; every call after sign-in has its input SM4-sealed with the data key that
sign-in agreed, and its answer's output must come back sealed with the same key (terminal/uplink/
signing.py; docs/uplink.md, "Cryptography").

The errors are the UplinkError subtree of terminal/errors/ (unreachable, unknown outcome, auth
required, refused); they live there so the sync stage catches them without importing this adapter.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from terminal.clock import CST
from terminal.domain import INFNO_AUDIT_HEAD, AuditHead, UplinkReply
from terminal.errors import (
    AuditHeadRefused,
    UplinkAuthRequired,
    UplinkEnvelopeInvalid,
    UplinkError,
    UplinkRefused,
    UplinkUnknownOutcome,
    UplinkUnreachable,
)
from terminal.uplink.audit_head import head_payload
from terminal.uplink.signing import (
    UplinkKeys,
    is_sealed,
    output_aad,
    public_key_b64,
    seal_input,
    sign_envelope,
    unseal,
)
from terminal.uplink.sm_crypto import agreement_context
from terminal.uplink.wire import (
    CALL_PATH,
    INFNO_CORRECT,
    INFNO_GALLERY,
    INFNO_QUERY,
    INFNO_REGISTER,
    INFNO_REVERSE,
    INFNO_SIGN_IN,
    INFNO_TOTALS,
    Response,
    envelope_problem,
)

UNSEALED = (INFNO_REGISTER, INFNO_SIGN_IN)  # signed, not sealed: no data key exists before sign-in

log = logging.getLogger(__name__)


class HttpUplink:
    """The Uplink port over httpx; pass `transport` to swap the network out in tests."""

    def __init__(
        self,
        base_url: str,
        keys: UplinkKeys,
        identity: Mapping[str, str],
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        on_time: Callable[[datetime], None] | None = None,
    ) -> None:
        """`on_time` is told the upstream's time (`respond_time`) of every answer, for the clock check."""
        self._keys = keys
        # (sign_no, SM4 data key) of the current sign-in; in memory only, agreed afresh at each sign-in.
        self._session: tuple[str, bytes] | None = None
        self._on_time = on_time
        # identity: the envelope fields naming this terminal (opter, fixmedins_code, mdtrtarea_admvs, …).
        self._identity = dict(identity)
        if transport is None:
            # httpx writes headers and body separately; without NODELAY, Nagle plus the server's
            # delayed ACK adds ~40 ms to every call, which caps a drain at ~20 messages/s.
            nodelay = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
            transport = httpx.HTTPTransport(socket_options=nodelay)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)
        self.sign_no = ""

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    @property
    def identity(self) -> Mapping[str, str]:
        """The envelope fields naming this terminal (opter, fixmedins_code, mdtrtarea_admvs, …)."""
        return dict(self._identity)

    def call(self, envelope: Mapping[str, Any]) -> UplinkReply:
        """Send one envelope (sign_no filled in, then signed); the response when infcode is 0."""
        body = dict(envelope)
        if not body.get("sign_no"):
            body["sign_no"] = self.sign_no
        problem = envelope_problem(body)
        if problem:
            # Final for this message: no resend makes it valid (the sync worker parks it).
            raise UplinkEnvelopeInvalid(f"{body.get('infno')} {body.get('msgid')}: {problem}")
        infno, msgid = str(body["infno"]), str(body["msgid"])
        data_key = None if infno in UNSEALED else self._data_key(body)
        wire = body if data_key is None else seal_input(body, data_key)
        # Encrypt, then sign: the signature covers the sealed input, so it can be checked before opening.
        signed = sign_envelope(wire, self._keys.envelope)
        try:
            reply = self._http.post(CALL_PATH, json=signed)
        except (
            httpx.ConnectError,
            httpx.UnsupportedProtocol,
            httpx.ProxyError,
            httpx.LocalProtocolError,
        ) as exc:
            raise UplinkUnreachable(f"upstream unreachable: {exc}") from exc
        except httpx.HTTPError as exc:
            # Connected, then lost (timeout, dropped, garbled): the request may have been committed upstream.
            raise UplinkUnknownOutcome(f"{body['infno']} {body['msgid']}: {type(exc).__name__}") from exc
        if reply.status_code == 401:
            raise UplinkAuthRequired(f"{body['infno']} {body['msgid']}: {reply.text[:200]}")
        if reply.status_code == 503:
            raise UplinkUnreachable(f"upstream unavailable (503): {reply.text[:200]}")
        if reply.status_code != 200:
            raise UplinkUnknownOutcome(f"{body['infno']} {body['msgid']}: HTTP {reply.status_code}")
        try:
            response = Response.model_validate_json(reply.content)
        except ValidationError as exc:
            raise UplinkUnknownOutcome(f"{body['infno']} {body['msgid']}: malformed response") from exc
        told = upstream_time(response.respond_time)
        if told is not None and self._on_time is not None:
            self._on_time(told)
        output = response.output
        if data_key is not None:
            output = self._opened(response, data_key, infno, msgid)
        if response.infcode != 0:
            raise UplinkRefused(f"{infno} {msgid} refused: {response.err_msg}", response.err_msg, output)
        return UplinkReply(output=output, inf_refmsgid=response.inf_refmsgid)

    def _data_key(self, body: Mapping[str, Any]) -> bytes:
        if self._session is None or self._session[0] != body["sign_no"]:
            # Nothing sent: without the sign-in's data key the input cannot be sealed; sign in again.
            raise UplinkAuthRequired(f"{body['infno']} {body['msgid']}: no data key for this sign-in")
        return self._session[1]

    @staticmethod
    def _opened(response: Response, key: bytes, infno: str, msgid: str) -> dict[str, Any]:
        """The answer's output opened; a plain output only on a refusal (the input may not have opened)."""
        if not is_sealed(response.output):
            if response.infcode == 0:
                # Only the holder of the data key can seal: an unsealed success is not the upstream's word.
                raise UplinkUnknownOutcome(f"{infno} {msgid}: the answer is not sealed")
            return dict(response.output)
        try:
            return unseal(response.output, key, output_aad(infno, msgid))
        except UplinkError as exc:
            # The upstream may have committed the request: its outcome is unknown, not refused.
            raise UplinkUnknownOutcome(f"{infno} {msgid}: the sealed answer does not open ({exc})") from exc

    def envelope(self, infno: str, msgid: str, at: datetime, payload: Mapping[str, Any]) -> dict[str, Any]:
        """An envelope for an operation the uplink itself originates (sign-in, query, correct, totals)."""
        return {
            "infno": infno,
            "msgid": msgid,
            "insuplc_admdvs": "",
            "opter_type": "2",
            "inf_time": at.strftime("%Y-%m-%d %H:%M:%S"),
            **self._identity,
            "input": dict(payload),
        }

    def sign_in(self, msgid: str, at: datetime) -> str:
        """9001: present this terminal's keys, get the day's sign_no and agree the SM4 data key."""
        payload = {
            "signIn": {
                "opter_no": self._identity.get("opter", ""),
                "mac": "",
                "ip": socket.gethostname(),
                "public_key": self._keys.envelope.public_hex,
                "artefact_key": public_key_b64(self._keys.artefacts),
            }
        }
        response = self.call(self.envelope(INFNO_SIGN_IN, msgid, at, payload) | {"sign_no": "-"})
        answer = response.output["signinoutb"]
        sign_no = str(answer["sign_no"])
        try:
            ephemeral = str(answer["key_agreement"]["ephemeral"])
            data_key = self._keys.envelope.agree(ephemeral, agreement_context(sign_no))
        except (KeyError, TypeError, UplinkError) as exc:
            message = f"the sign-in answer carries no usable SM2 key agreement ({exc})"
            raise UplinkRefused(f"{INFNO_SIGN_IN} {msgid}: {message}", message, {}) from exc
        self._session = (sign_no, data_key)
        self.sign_no = sign_no
        log.info("signed in to upstream: sign_no %s", self.sign_no)
        return self.sign_no

    def register(self, msgid: str, at: datetime) -> dict[str, Any]:
        """9000: register id, institution, area and both public keys (idempotent); the registration."""
        payload = {
            "terminal": {
                "terminal_id": self._identity.get("opter", ""),
                "fixmedins_code": self._identity.get("fixmedins_code", ""),
                "admdvs": self._identity.get("mdtrtarea_admvs", ""),
                "public_key": self._keys.envelope.public_hex,
                "artefact_key": public_key_b64(self._keys.artefacts),
            }
        }
        # Like 9001 it needs no sign_no: registration comes before the first sign-in.
        response = self.call(self.envelope(INFNO_REGISTER, msgid, at, payload) | {"sign_no": "-"})
        registration = response.output.get("terminal")
        if not isinstance(registration, dict):
            raise UplinkUnknownOutcome(f"{INFNO_REGISTER} {msgid}: the reply carries no registration")
        return dict(registration)

    def gallery_delta(self, msgid: str, since: int, at: datetime) -> dict[str, Any]:
        """9103: the upstream's signed gallery delta since a version, unverified (see uplink/gallery.py)."""
        return dict(self.call(self.envelope(INFNO_GALLERY, msgid, at, {"data": {"since": since}})).output)

    def query(self, msgid: str, omsgid: str, at: datetime) -> dict[str, Any] | None:
        """5203 by original msgid: the stored response output if the upstream committed it, else None."""
        output = self.call(self.envelope(INFNO_QUERY, msgid, at, {"data": {"omsgid": omsgid}})).output
        return dict(output["response"]) if output.get("found") else None

    def correct(self, msgid: str, omsgid: str, oinfno: str, psn_no: str, at: datetime) -> bool:
        """2601: cancel whatever the upstream did with an original message; True when something was undone."""
        payload = {"data": {"psn_no": psn_no, "omsgid": omsgid, "oinfno": oinfno}}
        return bool(self.call(self.envelope(INFNO_CORRECT, msgid, at, payload)).output.get("corrected"))

    def reverse(self, msgid: str, omsgid: str, psn_no: str, at: datetime) -> dict[str, Any]:
        """2208: reverse a delivered settlement; the reversal's setlinfo."""
        payload = {"data": {"psn_no": psn_no, "omsgid": omsgid}}
        return dict(self.call(self.envelope(INFNO_REVERSE, msgid, at, payload)).output)

    def daily_totals(self, msgid: str, totals: Mapping[str, str], at: datetime) -> dict[str, Any]:
        """3201: compare one day's totals; output stmt_rslt ('0' agree, '1' differ) and the upstream's."""
        return dict(self.call(self.envelope(INFNO_TOTALS, msgid, at, {"data": dict(totals)})).output)

    def report_audit_head(self, msgid: str, head: AuditHead, since: AuditHead | None, at: datetime) -> None:
        """9104: the signed audit chain head; AuditHeadRefused when the upstream flags it (rollback, fork)."""
        payload = {"data": head_payload(self._identity.get("opter", ""), head, since, self._keys.artefacts)}
        try:
            self.call(self.envelope(INFNO_AUDIT_HEAD, msgid, at, payload))
        except UplinkRefused as exc:
            raise AuditHeadRefused(str(exc), exc.err_msg, exc.output) from exc


def upstream_time(respond_time: str) -> datetime | None:
    """The upstream's yyyyMMddHHmmssSSS (Beijing time) as an aware datetime; None when absent or garbled."""
    try:
        at = datetime.strptime(respond_time[:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None
    millis = respond_time[14:17]
    micro = int(millis) * 1000 if millis.isdigit() and len(millis) == 3 else 0
    return at.replace(microsecond=micro, tzinfo=CST)
