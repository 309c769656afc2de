"""The browser-facing guards of the local service: Host allow-list, same-origin writes, security headers.

- Host: only loopback names and `[service] allowed_hosts` are served, so a DNS-rebinding page (a name
  of the attacker's that resolves to 127.0.0.1) reaches nothing: 421 with the error JSON.
- Origin: a POST, PUT, PATCH or DELETE sent by another site's page (its Origin, or the browser's
  Sec-Fetch-Site) is refused with 403 before it runs. The terminal's own pages are same-origin; clients
  that are not browsers (the counter's token client, scripts, tests) send neither header.
- Headers: a CSP allowing only the service's own scripts, styles and images and no framing, nosniff,
  no referrer, and `Cache-Control: no-store` on everything but the static files (the views carry amounts,
  names and receipts; no cache keeps them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from terminal.errors import CrossSiteRequestError, HostNotAllowedError, RequestRefusedError

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Sec-Fetch-Site values of a request the terminal's own page (or the user's own navigation) made.
SAME_SITE_FETCH = frozenset({"same-origin", "none"})
CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
NO_STORE = (b"cache-control", b"no-store")
UNCACHED_PREFIXES = ("/static/",)  # the pages' code and style may be cached; nothing else may


def host_name(host: str) -> str:
    """The name part of a Host header value: no port, IPv6 without brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(configured: Iterable[str], bind_host: str) -> frozenset[str]:
    """Loopback names, the configured names, and the bind address when it is a specific one."""
    names = set(LOOPBACK_NAMES) | {host_name(name) for name in configured}
    if bind_host not in ("0.0.0.0", "::", ""):
        names.add(host_name(bind_host))
    return frozenset(names)


def refusal(scope: Scope, hosts: frozenset[str]) -> tuple[int, RequestRefusedError] | None:
    """(status, error) when the request must not reach a route, else None."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    host = headers.get("host", "")
    if host_name(host) not in hosts:
        # 421 Misdirected Request: this server does not answer for that name.
        return 421, HostNotAllowedError(f"Host {host or '(none)'} is not one this terminal answers to")
    if scope["method"] in STATE_CHANGING:
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in SAME_SITE_FETCH:
            return 403, CrossSiteRequestError(f"Sec-Fetch-Site {fetch_site}: only this terminal's pages")
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, host):
            return 403, CrossSiteRequestError(f"Origin {origin} is not this terminal ({host})")
    return None


def _same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)  # "null" (a sandboxed or file page) has no host and is refused
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


class SecurityGuard:
    """ASGI middleware: refuses misdirected and cross-site requests, adds the security headers."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self._hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = refusal(scope, self._hosts)
        if refused is not None:
            status, error = refused
            await _answer(send, status, error)
            return
        cacheable = scope["path"].startswith(UNCACHED_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _headers(list(message.get("headers", [])), cacheable)
            await send(message)

        await self.app(scope, receive, with_headers)


def _headers(headers: list[tuple[bytes, bytes]], cacheable: bool) -> list[tuple[bytes, bytes]]:
    present = {name.lower() for name, _ in headers}
    added = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
    if not cacheable and NO_STORE[0] not in present:
        added.append(NO_STORE)
    return headers + added


async def _answer(send: Send, status: int, error: RequestRefusedError) -> None:
    body = json.dumps(error.as_json(), ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + list(SECURITY_HEADERS)})
    await send({"type": "http.response.body", "body": body})
