"""The service's edge, attacked the way issue 17 did: huge bodies, DNS rebinding, cross-site writes.

Bodies are fed to the ASGI app chunk by chunk through a counting `receive`, so each test asserts how
many bytes the service pulled in before refusing: nothing past a route's cap is read, buffered or spooled.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from terminal.app import Terminal
from terminal.config import TerminalConfig
from terminal.service.app import create_app
from terminal.service.edge import BODY_CAPS, DEFAULT_BODY_CAP, MIB

CHUNK = 64 * 1024
FIFTY_MB = 50 * 1000 * 1000
HERE = ("127.0.0.1", 50000)


@dataclass
class Exchange:
    """What one raw ASGI request pulled in and got back."""

    pulled: int = 0
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def _app(terminal: Terminal) -> FastAPI:
    return create_app(terminal, cashier_token="c", technician_token="t")


def _send_body(
    app: FastAPI,
    path: str,
    total: int,
    headers: Sequence[tuple[str, str]] = (),
    *,
    declared: bool = False,
    prefix: bytes = b"",
) -> Exchange:
    """POST `prefix` then filler, `total` bytes in 64 KiB chunks (chunked unless `declared`), counting
    those pulled."""
    seen = Exchange()
    base = [("host", "127.0.0.1:8080"), *headers]
    if declared:
        base.append(("content-length", str(total)))
    else:
        base.append(("transfer-encoding", "chunked"))

    async def receive() -> dict[str, Any]:
        start = seen.pulled
        size = min(CHUNK, total - start)
        seen.pulled += size
        head = prefix[start : start + size]
        return {
            "type": "http.request",
            "body": head + b"x" * (size - len(head)),
            "more_body": seen.pulled < total,
        }

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen.status = message["status"]
            seen.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            seen.body += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in base], "client": HERE,
        "server": ("127.0.0.1", 8080),
    }  # fmt: skip

    async def run() -> None:
        await app(scope, receive, send)

    with ThreadPoolExecutor(1) as pool:  # a loop of its own (a Playwright browser may own this thread's)
        pool.submit(anyio.run, run).result()
    return seen


def _ask(app: FastAPI, method: str, path: str, host: str = "127.0.0.1:8080", **kwargs: Any) -> httpx.Response:
    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=HERE)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
            return await http.request(method, path, **kwargs)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, ask).result()


# ---- bodies capped while they stream in

# The start of a multipart body whose file part then runs on for as long as the sender likes.
_FILE_PART = (
    b'------x\r\nContent-Disposition: form-data; name="image"; filename="frame.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
)


def test_a_50_mb_chunked_body_to_an_untokened_route_is_refused_after_at_most_its_cap(
    terminal: Terminal,
) -> None:
    # Regression (issue 17): 1 GiB sent to an untokened route was spooled to disk before the 413.
    seen = _send_body(
        _app(terminal), "/api/session/credential", FIFTY_MB, [("content-type", "application/json")]
    )
    assert seen.status == 413
    assert seen.json()["code"] == "REQUEST_TOO_LARGE"
    assert seen.pulled <= DEFAULT_BODY_CAP + CHUNK, (
        f"pulled {seen.pulled} bytes past a {DEFAULT_BODY_CAP} cap"
    )


def test_a_multipart_upload_past_its_cap_is_refused_while_streaming(terminal: Terminal) -> None:
    cap = BODY_CAPS["/api/identify"]
    headers = [("authorization", "Bearer t"), ("content-type", "multipart/form-data; boundary=----x")]
    seen = _send_body(_app(terminal), "/api/identify", FIFTY_MB, headers, prefix=_FILE_PART)
    assert seen.status == 413 and seen.json()["code"] == "REQUEST_TOO_LARGE"
    assert seen.pulled <= cap + CHUNK


def test_the_what_if_route_no_longer_buffers_the_whole_body_before_its_check(terminal: Terminal) -> None:
    # Regression (issue 17): /api/presettle/person held 2.4 GB in memory before its 10 MB check.
    headers = [("authorization", "Bearer c"), ("content-type", "application/json")]
    seen = _send_body(_app(terminal), "/api/presettle/person", FIFTY_MB, headers)
    assert seen.status == 413 and seen.json()["code"] == "REQUEST_TOO_LARGE"
    assert seen.pulled <= 10 * MIB + CHUNK


def test_a_declared_content_length_past_the_cap_is_refused_before_one_byte_is_read(
    terminal: Terminal,
) -> None:
    seen = _send_body(_app(terminal), "/api/session/start", 1 << 30, declared=True)
    assert seen.status == 413 and seen.json()["code"] == "REQUEST_TOO_LARGE"
    assert seen.pulled == 0


def test_a_body_inside_its_cap_still_reaches_the_route(terminal: Terminal) -> None:
    # 2 MB of JSON to the what-if route: over the default cap, inside the route's own; the route answers.
    headers = [("authorization", "Bearer c"), ("content-type", "application/json")]
    seen = _send_body(_app(terminal), "/api/presettle/person", 2 * MIB, headers, declared=True)
    assert seen.status == 422 and seen.json()["code"] != "REQUEST_TOO_LARGE"
    assert seen.pulled == 2 * MIB


# ---- Host allow-list (DNS rebinding)


def test_a_dns_rebinding_host_is_refused_even_from_loopback(terminal: Terminal) -> None:
    app = _app(terminal)
    for method, path in (("GET", "/api/session"), ("POST", "/api/session/start"), ("GET", "/kiosk")):
        answer = _ask(app, method, path, host="attacker.example:8080")
        assert answer.status_code == 421, path
        assert answer.json()["code"] == "HOST_NOT_ALLOWED"
    assert terminal.config.service.allowed_hosts == ()
    assert _ask(app, "GET", "/api/session", host="localhost:8080").status_code == 200
    assert _ask(app, "GET", "/api/session", host="[::1]:8080").status_code == 200


def test_a_configured_host_name_is_served(terminal: Terminal) -> None:
    config: TerminalConfig = terminal.config
    service = config.service.model_copy(update={"allowed_hosts": ("kiosk-07.hospital.lan",)})
    terminal.config = config.model_copy(update={"service": service})
    app = _app(terminal)
    assert _ask(app, "GET", "/api/session", host="kiosk-07.hospital.lan:8080").status_code == 200
    assert _ask(app, "GET", "/api/session", host="kiosk-08.hospital.lan:8080").status_code == 421


# ---- Origin checks on state-changing routes


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9999"},  # another port is another origin
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_site_start_cancel_or_confirm_is_refused_and_changes_nothing(
    terminal: Terminal, headers: dict[str, str]
) -> None:
    app = _app(terminal)
    confirm = {"session_id": "x", "chrg_bchno": "B", "amounts_digest": "d"}
    for path, body in (
        ("/api/session/start", None),
        ("/api/session/cancel", None),
        ("/api/session/confirm", confirm),
    ):
        answer = _ask(app, "POST", path, headers=headers, json=body)
        assert answer.status_code == 403, path
        assert answer.json()["code"] == "CROSS_SITE_REFUSED"
    assert _ask(app, "GET", "/api/session").json()["state"] == "idle", "no cross-site request started one"


def test_a_cross_site_multipart_upload_is_refused_before_the_body_is_read(terminal: Terminal) -> None:
    headers = [("authorization", "Bearer t"), ("origin", "http://attacker.example"),
               ("content-type", "multipart/form-data; boundary=----x")]  # fmt: skip
    seen = _send_body(_app(terminal), "/api/identify", FIFTY_MB, headers)
    assert seen.status == 403 and seen.json()["code"] == "CROSS_SITE_REFUSED"
    assert seen.pulled == 0


def test_the_terminals_own_pages_and_non_browser_clients_may_write(terminal: Terminal) -> None:
    app = _app(terminal)
    own = {"Origin": "http://127.0.0.1:8080", "Sec-Fetch-Site": "same-origin"}
    assert _ask(app, "POST", "/api/session/start", headers=own).status_code == 200
    assert _ask(app, "POST", "/api/session/cancel").status_code == 200  # no Origin: not a browser page
    # Reading is not state-changing: a GET carries no Origin check (the Host check still applies).
    assert _ask(app, "GET", "/api/session", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


# ---- security headers


def test_pages_forbid_framing_and_foreign_scripts_and_money_views_are_never_cached(
    terminal: Terminal,
) -> None:
    app = _app(terminal)
    page = _ask(app, "GET", "/kiosk")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    for path in ("/api/session", "/api/counter/basket", "/api/tech/diagnostics"):
        auth = {"Authorization": "Bearer c" if "counter" in path else "Bearer t"}
        answer = _ask(app, "GET", path, headers=auth)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == "no-store", path
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "no-store" not in _ask(app, "GET", "/static/kiosk.js").headers.get("cache-control", "")
    # Refusals carry the headers too.
    assert "content-security-policy" in _ask(app, "GET", "/kiosk", host="attacker.example").headers
