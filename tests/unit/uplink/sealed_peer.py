"""A stand-in upstream behind httpx.MockTransport that speaks the sealed protocol (9001 key agreement)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from terminal.uplink.signing import open_input, output_aad, seal
from terminal.uplink.sm_crypto import agreement_context, ephemeral_agreement

Answer = Callable[[dict[str, Any]], "dict[str, Any] | httpx.Response"]


class SealedPeer:
    """Agrees a data key at 9001, opens every later input and seals the output `answer` gives for it.

    `answer` gets the opened envelope and returns the output, or an httpx.Response sent as it is.
    """

    def __init__(self, answer: Answer, sign_no: str = "SN1") -> None:
        self.answer = answer
        self.sign_no = sign_no
        self.data_key = b""
        self.wire: list[dict[str, Any]] = []  # every body as it crossed the wire
        self.opened: list[dict[str, Any]] = []  # the business calls, inputs opened

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.wire.append(body)
        if body["infno"] == "9001":
            public = body["input"]["signIn"]["public_key"]
            ephemeral, self.data_key = ephemeral_agreement(public, agreement_context(self.sign_no))
            answer = {"sign_no": self.sign_no, "sign_time": body["inf_time"]}
            return _ok({"signinoutb": {**answer, "key_agreement": {"ephemeral": ephemeral}}})
        opened = open_input(body, self.data_key)
        self.opened.append(opened)
        output = self.answer(opened)
        if isinstance(output, httpx.Response):
            return output
        return _ok(self.sealed(output, body["infno"], body["msgid"]))

    def sealed(self, output: dict[str, Any], infno: str, msgid: str) -> dict[str, str]:
        """An output sealed for the answer to (infno, msgid), as the upstream sends it."""
        return seal(output, self.data_key, output_aad(infno, msgid))


def _ok(output: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"infcode": 0, "inf_refmsgid": "r", "output": output})
