"""The HTTP client's error split and its sealed protocol, over httpx.MockTransport."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from terminal.clock import CST
from terminal.domain import AuditHead
from terminal.errors import UplinkAuthRequired
from terminal.uplink.audit_head import verify_head
from terminal.uplink.client import HttpUplink, UplinkRefused, UplinkUnknownOutcome, UplinkUnreachable
from terminal.uplink.signing import is_sealed, public_key_b64, uplink_keys, verify_envelope
from tests.unit.uplink.sealed_peer import SealedPeer

AT = datetime(2025, 6, 3, 9, 30, tzinfo=CST)
IDENTITY = {
    "opter": "KIOSK-0001",
    "fixmedins_code": "H43030200001",
    "mdtrtarea_admvs": "430302",
}


def _link(tmp_path: Path, handler: Any) -> HttpUplink:
    return HttpUplink(
        "http://upstream.test", uplink_keys(tmp_path), IDENTITY, transport=httpx.MockTransport(handler)
    )


def _signed_in(tmp_path: Path, peer: SealedPeer) -> HttpUplink:
    link = _link(tmp_path, peer)
    link.sign_in("S" * 30, AT)
    return link


def test_sign_in_presents_both_keys_and_later_calls_are_sealed_and_sm2_signed(tmp_path: Path) -> None:
    peer = SealedPeer(lambda envelope: {"found": False})
    link = _signed_in(tmp_path, peer)
    assert link.sign_no == "SN1"
    assert link.query("N" * 30, "O" * 30, AT) is None
    keys = uplink_keys(tmp_path)
    sign_in, query = peer.wire
    assert sign_in["input"]["signIn"]["public_key"] == keys.envelope.public_hex
    assert sign_in["input"]["signIn"]["artefact_key"] == public_key_b64(keys.artefacts)
    assert not is_sealed(sign_in["input"])  # no data key exists before sign-in
    assert is_sealed(query["input"]) and "omsgid" not in json.dumps(query)
    assert peer.opened[0]["input"] == {"data": {"omsgid": "O" * 30}}
    assert query["sign_no"] == "SN1" and query["opter_type"] == "2"
    assert all(body["signtype"] == "SM2" for body in peer.wire)
    assert all(verify_envelope(body, keys.envelope.public_hex) for body in peer.wire)


def test_a_business_call_without_a_data_key_is_not_sent(tmp_path: Path) -> None:
    peer = SealedPeer(lambda envelope: {"found": False})
    link = _link(tmp_path, peer)
    link.sign_no = "SN1"  # a sign_no without the sign-in that agreed its key: nothing to seal with
    with pytest.raises(UplinkAuthRequired, match="no data key"):
        link.query("N" * 30, "O" * 30, AT)
    assert peer.wire == []


@pytest.mark.parametrize(
    "agreement",
    [None, {"ephemeral": "00" * 64}, {"ephemeral": "not hex"}],
    ids=["missing", "off-curve", "garbled"],
)
def test_a_sign_in_answer_without_a_usable_key_agreement_is_refused(
    tmp_path: Path, agreement: dict[str, str] | None
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        answer: dict[str, Any] = {"sign_no": "SN1", "sign_time": "t"}
        if agreement is not None:
            answer["key_agreement"] = agreement
        return httpx.Response(200, json={"infcode": 0, "output": {"signinoutb": answer}})

    link = _link(tmp_path, handler)
    with pytest.raises(UplinkRefused, match="key agreement"):
        link.sign_in("S" * 30, AT)
    assert link.sign_no == ""


def test_an_answer_unsealed_or_sealed_for_another_message_is_an_unknown_outcome(tmp_path: Path) -> None:
    plain = SealedPeer(lambda envelope: _raw({"found": False}))
    with pytest.raises(UplinkUnknownOutcome, match="not sealed"):
        _signed_in(tmp_path, plain).query("N" * 30, "O" * 30, AT)
    # A genuine sealed answer replayed for another msgid: the AAD names the request it answers.
    moved = SealedPeer(lambda envelope: _raw(moved.sealed({"found": False}, "5203", "X" * 30)))
    with pytest.raises(UplinkUnknownOutcome, match="does not open"):
        _signed_in(tmp_path, moved).query("N" * 30, "O" * 30, AT)


def test_a_refusal_with_a_sealed_output_is_opened(tmp_path: Path) -> None:
    def refuse(envelope: dict[str, Any]) -> httpx.Response:
        sealed = peer.sealed({"expected_seq": 7}, envelope["infno"], envelope["msgid"])
        return httpx.Response(200, json={"infcode": -1, "err_msg": "unanchored", "output": sealed})

    peer = SealedPeer(refuse)
    with pytest.raises(UplinkRefused) as refused:
        _signed_in(tmp_path, peer).query("N" * 30, "O" * 30, AT)
    assert refused.value.output == {"expected_seq": 7}


def test_the_audit_head_is_signed_with_the_ed25519_artefact_key(tmp_path: Path) -> None:
    peer = SealedPeer(lambda envelope: {"accepted": {}})
    _signed_in(tmp_path, peer).report_audit_head("H" * 30, AuditHead(3, "ab" * 32), None, AT)
    head = peer.opened[0]["input"]["data"]["head"]
    artefacts = public_key_b64(uplink_keys(tmp_path).artefacts)
    assert verify_head("KIOSK-0001", AuditHead(3, "ab" * 32), head["signature"], artefacts)


def _raw(output: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"infcode": 0, "inf_refmsgid": "r", "output": output})


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
        if json.loads(request.content)["infno"] == "9001":
            return peer(request)
        raise failure

    peer = SealedPeer(lambda envelope: {})
    link = _link(tmp_path, handler)
    link.sign_in("S" * 30, AT)
    with pytest.raises(error):
        link.query("N" * 30, "O" * 30, AT)


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
        _signed_in(tmp_path, SealedPeer(lambda envelope: reply)).query("N" * 30, "O" * 30, AT)
