"""The national platform's cryptography against the reference upstream (issue 17, item 10).

Envelopes SM2-signed, inputs SM4-sealed with the data key agreed at sign-in, answers sealed back;
the audit head still Ed25519. Each attack is crafted by hand and sent over HTTP.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.domain import AuditHead
from terminal.settlement.signing import canonical_json
from terminal.uplink.audit_head import head_payload
from terminal.uplink.signing import is_sealed, seal_input, sign_envelope, terminal_key, uplink_keys
from terminal.uplink.wire import CALL_PATH, INFNO_AUDIT_HEAD, INFNO_SETTLE
from tests.integration.uplink_kit import (
    PEOPLE,
    Side,
    signed_in_by_hand,
    terminal_side,
    uplink,
    upstream_settlements,
    worker,
)


@pytest.fixture
def side(tmp_path: Path) -> Iterator[Side]:
    """The terminal's settlement side over its own SQLite file."""
    s = terminal_side(tmp_path / "terminal")
    try:
        yield s
    finally:
        s.db.close()


class Wiretap:
    """The real connection to the upstream, with every request and answer body kept as it crossed."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[dict[str, Any], bytes, bytes]] = []  # (request, its bytes, answer)
        self._inner = httpx.HTTPTransport()
        self.transport = httpx.MockTransport(self._handle)

    def close(self) -> None:
        """Release the inner connection pool."""
        self._inner.close()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        reply = self._inner.handle_request(request)
        try:
            content = reply.read()
        finally:
            reply.close()
        self.exchanges.append((json.loads(request.content), request.content, content))
        kind = reply.headers.get("content-type", "")
        return httpx.Response(reply.status_code, headers={"content-type": kind}, content=content)


def _visible(raw: bytes) -> str:
    """The body as anyone on the path reads it (JSON escapes undone)."""
    return json.dumps(json.loads(raw), ensure_ascii=False)


def test_a_sync_delivers_sealed_settlements_with_no_person_data_visible_on_the_wire(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    records = [side.settle(0), side.settle(1)]
    tap = Wiretap()
    link = uplink(tmp_path / "terminal", server.url, transport=tap.transport)
    try:
        report = worker(side, link).drain()
    finally:
        link.close()
        tap.close()
    assert report.delivered == 2 and report.refused == []
    held = upstream_settlements(server.url)
    assert [h["msgid"] for h in held] == [r.msgid for r in records]
    public = uplink_keys(tmp_path / "terminal").envelope.public_hex
    settles = [(body, raw, answer) for body, raw, answer in tap.exchanges if body["infno"] == INFNO_SETTLE]
    assert len(settles) == 2
    for person, record, (body, raw, answer) in zip(PEOPLE[:2], records, settles, strict=True):
        # The outbox holds them in the clear and the upstream read them: the seal is what hides them.
        assert person.psn_no in json.dumps(record.envelope)
        assert any(h["psn_no"] == person.psn_no for h in held)
        assert body["signtype"] == "SM2" and is_sealed(body["input"])
        for secret in (person.psn_no, person.psn_name, person.certno):
            assert secret not in _visible(raw) and secret.encode() not in raw
            assert secret not in _visible(answer) and secret.encode() not in answer
    assert all(body["signtype"] == "SM2" for body, _, _ in tap.exchanges)
    assert public == tap.exchanges[0][0]["input"]["signIn"]["public_key"]


def _post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}{CALL_PATH}", json=body, timeout=10)


def _signed_in(tmp_path: Path, side: Side, url: str) -> tuple[str, bytes]:
    now = side.clock.now()
    return signed_in_by_hand(url, tmp_path / "terminal", side.ledger.allocate_msgid(now), now)


def _signed(tmp_path: Path, envelope: dict[str, Any]) -> dict[str, Any]:
    return sign_envelope(envelope, uplink_keys(tmp_path / "terminal").envelope)


def test_a_tampered_sealed_input_is_refused_though_properly_signed(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    sign_no, key = _signed_in(tmp_path, side, server.url)
    sealed = seal_input({**record.envelope, "sign_no": sign_no}, key)
    raw = bytearray(base64.b64decode(sealed["input"]["encData"]))
    raw[30] ^= 0x01  # one bit of the ciphertext, then signed by the terminal's own key
    forged = {**sealed, "input": {**sealed["input"], "encData": base64.b64encode(raw).decode()}}
    answer = _post(server.url, _signed(tmp_path, forged)).json()
    assert answer["infcode"] == -1 and "does not open" in answer["err_msg"]
    assert upstream_settlements(server.url) == []
    # Not remembered against the msgid: the genuine message still settles.
    assert _post(server.url, _signed(tmp_path, sealed)).json()["infcode"] == 0


def test_an_unsealed_business_call_is_refused(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    sign_no, _ = _signed_in(tmp_path, side, server.url)
    answer = _post(server.url, _signed(tmp_path, {**record.envelope, "sign_no": sign_no})).json()
    assert answer["infcode"] == -1 and "not SM4-sealed" in answer["err_msg"]
    assert upstream_settlements(server.url) == []


def test_a_sealed_payload_moved_to_another_msgid_is_refused(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    first, second = side.settle(0), side.settle(1)
    sign_no, key = _signed_in(tmp_path, side, server.url)
    sealed = seal_input({**first.envelope, "sign_no": sign_no}, key)
    # The first bill's sealed payload under the second message's msgid, freshly signed: the AAD differs.
    moved = {**second.envelope, "sign_no": sign_no, "input": sealed["input"]}
    answer = _post(server.url, _signed(tmp_path, moved)).json()
    assert answer["infcode"] == -1 and "does not open" in answer["err_msg"]
    assert upstream_settlements(server.url) == []


def test_an_ed25519_signed_envelope_is_refused(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    record = side.settle(0)
    sign_no, key = _signed_in(tmp_path, side, server.url)
    # The envelope as this terminal signed it before the national cryptography: Ed25519, its own key.
    old = {**seal_input({**record.envelope, "sign_no": sign_no}, key), "signtype": "Ed25519"}
    old["cainfo"] = base64.b64encode(terminal_key(tmp_path / "terminal").sign(canonical_json(old))).decode()
    reply = _post(server.url, old)
    assert reply.status_code == 401 and "signature" in reply.json()["err_msg"]
    assert upstream_settlements(server.url) == []


def test_the_audit_head_is_checked_with_the_ed25519_artefact_key_not_the_sm2_one(
    tmp_path: Path, side: Side, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    link = uplink(tmp_path / "terminal", server.url)
    now = side.clock.now()
    try:
        link.sign_in(side.ledger.allocate_msgid(now), now)
        link.report_audit_head(side.ledger.allocate_msgid(now), AuditHead(1, "ab" * 32), None, now)
    finally:
        link.close()
    sign_no, key = _signed_in(tmp_path, side, server.url)
    opter = link.identity["opter"]
    # A head signed by another Ed25519 key, in an envelope the terminal's SM2 key signed and sealed.
    stranger = head_payload(opter, AuditHead(2, "cd" * 32), None, terminal_key(tmp_path / "stranger"))
    envelope = link.envelope(INFNO_AUDIT_HEAD, side.ledger.allocate_msgid(now), now, {"data": stranger})
    answer = _post(server.url, _signed(tmp_path, seal_input({**envelope, "sign_no": sign_no}, key)))
    assert answer.json()["infcode"] == -1 and "artefact key" in answer.json()["err_msg"]
    held = [tuple(r) for r in up.conn.execute("SELECT seq, verdict FROM audit_heads ORDER BY id")]
    assert held == [(1, "accepted")]
