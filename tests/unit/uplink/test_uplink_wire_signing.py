"""Wire models and envelope signatures."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from terminal.uplink.signing import (
    KEY_FILE,
    public_key_b64,
    sign_envelope,
    terminal_key,
    verify_envelope,
)
from terminal.uplink.wire import Request, Response


def _envelope(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "infno": "2207",
        "msgid": "H43030200001202506030930000001",
        "mdtrtarea_admvs": "430302",
        "insuplc_admdvs": "430302",
        "opter_type": "2",
        "opter": "KIOSK-0001",
        "inf_time": "2025-06-03 09:30:00",
        "fixmedins_code": "H43030200001",
        "sign_no": "430302000000000001",
        "input": {"data": {"psn_no": "1", "medfee_sumamt": "430.00"}},
    }
    return {**base, **changes}


def test_request_accepts_a_kiosk_envelope() -> None:
    assert Request.model_validate(_envelope()).opter_type == "2"


@pytest.mark.parametrize(
    "changes",
    [{"opter_type": "1"}, {"msgid": "X" * 31}, {"infno": "22070"}, {"inf_time": "2025-06-03T09:30"}],
)
def test_request_refuses_what_the_national_envelope_would(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Request.model_validate(_envelope(**changes))


def test_response_reads_success_and_failure() -> None:
    assert Response.model_validate({"infcode": 0, "output": {"a": 1}}).output == {"a": 1}
    assert Response.model_validate({"infcode": -1, "err_msg": "no"}).err_msg == "no"
    with pytest.raises(ValidationError):
        Response.model_validate({"infcode": 1})


def test_key_is_created_once_private_and_reused(tmp_path: Path) -> None:
    first = terminal_key(tmp_path)
    mode = stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert public_key_b64(terminal_key(tmp_path)) == public_key_b64(first)


def test_signature_covers_every_field_but_itself(tmp_path: Path) -> None:
    key = terminal_key(tmp_path)
    signed = sign_envelope(_envelope(), key)
    assert signed["signtype"] == "Ed25519"
    assert verify_envelope(signed, public_key_b64(key))
    tampered = {**signed, "input": {"data": {"psn_no": "1", "medfee_sumamt": "1.00"}}}
    assert not verify_envelope(tampered, public_key_b64(key))
    assert not verify_envelope({**signed, "sign_no": "other"}, public_key_b64(key))
    other = terminal_key(tmp_path / "other")
    assert not verify_envelope(signed, public_key_b64(other))
    assert not verify_envelope({**signed, "cainfo": "not base64!"}, public_key_b64(key))
