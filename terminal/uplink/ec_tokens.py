"""医保电子凭证 QR tokens resolved to a person: online through the upstream, or a demo-only table.

Tokens are issued by the national platform to the patient's phone, expire within minutes and are
single-use; only the upstream can tell whose one is. The terminal asks it with 1101 (mdtrt_cert_type 01)
and never identifies from the token string alone. The demo table stands in where no upstream runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from terminal.domain import CertType, IdentityClaim
from terminal.errors import (
    ConfigError,
    EcTokenError,
    EcTokenExpiredError,
    EcTokenUnavailableError,
    EcTokenUsedError,
    UnknownPersonError,
    UplinkAuthRequired,
    UplinkError,
    UplinkRefused,
)
from terminal.ports import Clock, Gallery
from terminal.uplink.client import HttpUplink
from terminal.uplink.wire import INFNO_PERSON_INFO

log = logging.getLogger(__name__)

_REFUSALS: dict[str, type[EcTokenError]] = {
    "expired": EcTokenExpiredError,
    "used": EcTokenUsedError,
    "unknown": EcTokenError,
}


class HttpEcTokenResolver:
    """EcTokenResolver over the upstream's signed call path (the link's timeout bounds every wait)."""

    def __init__(self, link: HttpUplink, clock: Clock, new_msgid: Callable[[datetime], str]) -> None:
        self._link = link
        self._clock = clock
        self._new_msgid = new_msgid

    def resolve(self, token: str) -> IdentityClaim:
        """The token's person (psn_no set); EcTokenError subclasses say why not."""
        payload = {"data": {"mdtrt_cert_type": CertType.EC_TOKEN.value, "mdtrt_cert_no": token}}
        for attempt in (1, 2):
            now = self._clock.now()
            try:
                if not self._link.sign_no:
                    self._link.sign_in(self._new_msgid(now), now)
                reply = self._link.call(
                    self._link.envelope(INFNO_PERSON_INFO, self._new_msgid(now), now, payload)
                )
            except UplinkAuthRequired as exc:
                # A restarted upstream or a new day's sign_no: sign in again, once.
                self._link.sign_no = ""
                if attempt == 2:
                    raise EcTokenUnavailableError(f"upstream refused this terminal: {exc}") from exc
                continue
            except UplinkRefused as exc:
                err_type = str(exc.output.get("err_type", "unknown")) if exc.output else "unknown"
                raise _REFUSALS.get(err_type, EcTokenError)(f"upstream: {exc.err_msg}") from exc
            except UplinkError as exc:
                raise EcTokenUnavailableError(f"upstream did not resolve the token: {exc}") from exc
            baseinfo = reply.output.get("baseinfo")
            psn_no = baseinfo.get("psn_no") if isinstance(baseinfo, dict) else None
            if not isinstance(psn_no, str) or not psn_no:
                raise EcTokenUnavailableError("upstream answered 1101 without baseinfo.psn_no")
            return IdentityClaim(CertType.EC_TOKEN, token, psn_no=psn_no)
        raise EcTokenUnavailableError("upstream sign-in failed")  # not reached: the loop returns or raises

    def close(self) -> None:
        """Release the link's connections."""
        self._link.close()


class DemoEcTokenTable:
    """DEMO ONLY: tokens linked to people in the local gallery (static, reusable: proves nothing).

    Refused outside demo mode: a static token is a password printed on paper.
    """

    def __init__(self, gallery: Gallery, mode: str) -> None:
        if mode != "demo":
            raise ConfigError("the demo QR-token table is refused outside demo mode; configure [uplink] url")
        self._gallery = gallery

    def resolve(self, token: str) -> IdentityClaim:
        """The person the demo data linked this token to; EcTokenError when none."""
        try:
            person = self._gallery.person_by_claim(IdentityClaim(CertType.EC_TOKEN, token))
        except UnknownPersonError:
            raise EcTokenError("token not in the demo table") from None
        log.info("demo QR-token table resolved a token (demo mode: no online check)")
        return IdentityClaim(CertType.EC_TOKEN, token, psn_no=person.psn_no)
