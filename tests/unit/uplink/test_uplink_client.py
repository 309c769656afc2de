"""The HTTP client's error split, over httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.clock import CST
from terminal.uplink.client import HttpUplink, UplinkRefused, UplinkUnknownOutcome, UplinkUnreachable
from terminal.uplink.signing import public_key_b64, terminal_key, verify_envelope

AT = datetime(2025, 6, 3, 9, 30, tzinfo=CST)
IDENTITY = {
    "opter": "KIOSK-0001",
    "fixmedins_code": "H43030200001",
    "mdtrtarea_admvs": "430302",
}


def _link(tmp_path: Path, handler: Any) -> HttpUplink:
    return HttpUplink(
        "http://upstream.test", terminal_key(tmp_path), IDENTITY, transport=httpx.MockTransport(handler)
    )


def _ok(output: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"infcode": 0, "inf_refmsgid": "r", "output": output})


def test_sign_in_registers_the_public_key_and_signs_later_calls(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if body["infno"] == "9001":
            return _ok({"signinoutb": {"sign_no": "SN1", "sign_time": body["inf_time"]}})
        return _ok({"found": False})

    link = _link(tmp_path, handler)
    assert link.sign_in("M" * 30, AT) == "SN1"
    assert link.query("N" * 30, "O" * 30, AT) is None
    key = public_key_b64(terminal_key(tmp_path))
    assert seen[0]["input"]["signIn"]["public_key"] == key
    assert seen[1]["sign_no"] == "SN1"
    assert seen[1]["opter_type"] == "2"
    assert all(verify_envelope(body, key) for body in seen)


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (httpx.ConnectError("refused"), UplinkUnreachable),
        (httpx.ReadTimeout("slow"), UplinkUnknownOutcome),
        (httpx.RemoteProtocolError("dropped"), UplinkUnknownOutcome),
    ],
)
def test_transport_failures_say_whether_the_outcome_is_known(
    tmp_path: Path, failure: Exception, error: type[Exception]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise failure

    with pytest.raises(error):
        _link(tmp_path, handler).query("N" * 30, "O" * 30, AT)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (httpx.Response(503, text="maintenance"), UplinkUnreachable),
        (httpx.Response(500, text="boom"), UplinkUnknownOutcome),
        (httpx.Response(200, text="{not json"), UplinkUnknownOutcome),
        (httpx.Response(200, json={"infcode": -1, "err_msg": "unknown person"}), UplinkRefused),
    ],
)
def test_http_replies_map_to_the_error_tree(
    tmp_path: Path, reply: httpx.Response, error: type[Exception]
) -> None:
    with pytest.raises(error):
        _link(tmp_path, lambda request: reply).query("N" * 30, "O" * 30, AT)
