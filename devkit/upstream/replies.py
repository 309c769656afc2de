"""The reference upstream's answers on the wire: success, refusal and authentication failure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from terminal.clock import CST


class Refusal(Exception):
    """A business refusal: answered with infcode -1 and remembered for the msgid (with `output`, if any)."""

    def __init__(self, message: str, output: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.output = dict(output or {})


class AuthFailure(Exception):
    """Unsigned, wrongly signed or stale sign_no: HTTP 401, nothing remembered."""


def _stamp(skew_s: float = 0.0) -> str:
    return (datetime.now(CST) + timedelta(seconds=skew_s)).strftime("%Y%m%d%H%M%S%f")[:17]


def reclocked(reply: dict[str, Any], skew_s: float) -> dict[str, Any]:
    """The reply with its respond_time on the upstream's clock (the terminal checks its own against it)."""
    return {**reply, "respond_time": _stamp(skew_s)} if skew_s else reply


def ok(msgid: str, output: dict[str, Any]) -> dict[str, Any]:
    """A successful reply (infcode 0) to the message msgid."""
    now = _stamp()
    return {
        "infcode": 0,
        "inf_refmsgid": f"{msgid[:6]}{now[:14]}{abs(hash(msgid)) % 10**10:010d}",
        "refmsg_time": now,
        "respond_time": now,
        "err_msg": "",
        "output": output,
    }


def fail(msgid: str, message: str, output: dict[str, Any] | None = None) -> dict[str, Any]:
    """A refusal (infcode -1) to the message msgid, its reason cut to the wire's 200 characters."""
    return {**ok(msgid, dict(output or {})), "infcode": -1, "err_msg": message[:200]}
