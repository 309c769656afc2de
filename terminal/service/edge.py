"""Request bodies capped while they stream in, per route: nothing past a route's cap is read, buffered or
spooled to disk.

A declared Content-Length over the cap is answered 413 before the body is read at all; a chunked body is
counted as it arrives and refused at the first chunk past the cap. The cap is per path, so the one upload
route may take a camera frame while every JSON route stays small.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal.errors import RequestTooLargeError

MIB = 1024 * 1024
# JSON bodies: a bill of a few hundred lines is well under this.
DEFAULT_BODY_CAP = 1 * MIB
# The routes that take more: a camera frame (plus the multipart framing), a what-if with a whole policy.
BODY_CAPS: Mapping[str, int] = {
    "/api/identify": 10 * MIB + 64 * 1024,
    "/api/presettle/person": 10 * MIB,
}


class BodyTooLarge(HTTPException):
    """Raised from `receive` past the cap; an HTTPException, so FastAPI's body parsing passes it on."""

    def __init__(self, cap: int) -> None:
        super().__init__(status_code=413, detail=f"request body larger than {cap} bytes")
        self.cap = cap


def too_large_body(cap: int) -> bytes:
    """The 413 answer's JSON: the REQUEST_TOO_LARGE error naming the cap."""
    error = RequestTooLargeError(f"request body larger than {cap} bytes; nothing was read past it")
    return json.dumps(error.as_json(), ensure_ascii=False).encode("utf-8")


class BodyCap:
    """ASGI middleware: each request's body capped by its path (BODY_CAPS, else the default)."""

    def __init__(
        self, app: ASGIApp, caps: Mapping[str, int] = BODY_CAPS, default: int = DEFAULT_BODY_CAP
    ) -> None:
        self.app = app
        self._caps = dict(caps)
        self._default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self._caps.get(scope["path"], self._default)
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            await _answer_413(send, cap)  # refused before a byte of the body is read
            return
        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge(cap)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await _answer_413(send, cap)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _answer_413(send: Send, cap: int) -> None:
    body = too_large_body(cap)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            # The client may still be sending: close rather than read the rest of what was refused.
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
