"""Wire models, SM2 envelope signatures and SM4 input sealing."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from terminal.errors import UplinkError
from terminal.settlement.signing import canonical_json
from terminal.uplink.signing import (
    KEY_FILE,
    is_sealed,
    open_input,
    public_key_b64,
    seal_input,
    sign_envelope,
    terminal_key,
    uplink_keys,
    verify_envelope,
)
from terminal.uplink.sm_crypto import SM2_KEY_FILE, Sm2Signer
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


def test_both_uplink_keys_are_created_private_and_kept(tmp_path: Path) -> None:
    keys = uplink_keys(tmp_path)
    for name in (KEY_FILE, SM2_KEY_FILE):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    again = uplink_keys(tmp_path)
    assert again.envelope.public_hex == keys.envelope.public_hex
    assert public_key_b64(again.artefacts) == public_key_b64(keys.artefacts)


def test_signature_covers_every_field_but_itself() -> None:
    signer = Sm2Signer.generate()
    public = signer.public_hex
    signed = sign_envelope(_envelope(), signer)
    assert signed["signtype"] == "SM2"
    assert verify_envelope(signed, public)
    tampered = {**signed, "input": {"data": {"psn_no": "1", "medfee_sumamt": "1.00"}}}
    assert not verify_envelope(tampered, public)
    assert not verify_envelope({**signed, "sign_no": "other"}, public)
    assert not verify_envelope(signed, Sm2Signer.generate().public_hex)
    assert not verify_envelope({**signed, "cainfo": "not base64!"}, public)


def test_an_ed25519_signed_envelope_is_refused_even_with_the_signtype_changed(tmp_path: Path) -> None:
    key, signer = terminal_key(tmp_path), Sm2Signer.generate()
    # The old form: Ed25519 over the envelope without cainfo. Refused for its signtype…
    old = {**_envelope(), "signtype": "Ed25519"}
    old["cainfo"] = base64.b64encode(key.sign(canonical_json(old))).decode()
    assert not verify_envelope(old, signer.public_hex)
    # …and, relabelled SM2, because an Ed25519 signature is no SM2 signature.
    relabelled = {**_envelope(), "signtype": "SM2"}
    relabelled["cainfo"] = base64.b64encode(key.sign(canonical_json(relabelled))).decode()
    assert not verify_envelope(relabelled, signer.public_hex)


KEY = bytes(range(16))


def test_a_sealed_input_hides_the_payload_and_opens_only_where_it_was_sealed() -> None:
    sealed = seal_input(_envelope(), KEY)
    assert is_sealed(sealed["input"]) and "430.00" not in json.dumps(sealed)
    assert {k: v for k, v in sealed.items() if k != "input"} == {
        k: v for k, v in _envelope().items() if k != "input"
    }
    assert open_input(sealed, KEY) == _envelope()
    # Bound to infno, msgid and sign_no (AAD): moved to another message, it does not open.
    for change in ({"msgid": "H43030200001202506030930000002"}, {"infno": "2208"}, {"sign_no": "x"}):
        with pytest.raises(UplinkError, match="does not open"):
            open_input({**sealed, **change}, KEY)
    with pytest.raises(UplinkError, match="does not open"):
        open_input(sealed, bytes(16))


@pytest.mark.parametrize(
    "payload",
    [
        {"data": {"psn_no": "1"}},
        {"encType": "SM4-CBC", "encData": "AAAA"},
        {"encType": "SM4-GCM", "encData": 5},
        {"encType": "SM4-GCM", "encData": "AAAA", "data": {}},
    ],
    ids=["plain", "other-cipher", "not-text", "extra-field"],
)
def test_an_input_that_is_not_exactly_the_sealed_form_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(UplinkError, match="not SM4-sealed"):
        open_input(_envelope(input=payload), KEY)


def test_a_tampered_sealed_input_does_not_open() -> None:
    sealed = seal_input(_envelope(), KEY)
    raw = bytearray(base64.b64decode(sealed["input"]["encData"]))
    raw[20] ^= 1
    forged = {**sealed, "input": {**sealed["input"], "encData": base64.b64encode(raw).decode()}}
    with pytest.raises(UplinkError, match="does not open"):
        open_input(forged, KEY)
