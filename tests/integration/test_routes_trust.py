"""No route a LAN client can reach without a token takes a file, an image or raw bytes.

The camera, readers and printer belong to the service; a browser is a display. The test walks the app's
own routes and OpenAPI schema, so a renamed or new route cannot slip a frame upload past it.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.routing import BaseRoute

from terminal.app import Terminal
from terminal.service.app import create_app

JSON = "application/json"


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside included routers (FastAPI 0.165 keeps them as _IncludedRouter)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def _guarded(operation: dict[str, Any]) -> bool:
    """Whether the OpenAPI operation takes the bearer token's Authorization header."""
    return any(
        p.get("in") == "header" and p.get("name", "").lower() == "authorization"
        for p in operation.get("parameters", [])
    )


def _needs_token(route: APIRoute) -> bool:
    """Whether a bearer-token dependency guards the route (the cashier's or the technician's)."""
    names = {getattr(d.call, "__name__", "") for d in route.dependant.dependencies}
    stack = list(route.dependant.dependencies)
    while stack:
        dependency = stack.pop()
        names.add(getattr(dependency.call, "__name__", ""))
        stack.extend(dependency.dependencies)
    return bool(names & {"cashier", "technician"})


def _reads_raw_body(route: APIRoute) -> bool:
    """A handler taking the Request itself may read any body: it must be guarded like an upload."""
    return any(p.annotation is Request for p in inspect.signature(route.endpoint).parameters.values())


def _app(terminal: Terminal) -> FastAPI:
    return create_app(terminal, cashier_token="c", technician_token="t")


def test_no_untokened_route_accepts_a_file_or_raw_bytes(terminal: Terminal) -> None:
    app = _app(terminal)
    schema: dict[str, Any] = app.openapi()
    offenders = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {})
            if set(body) - {JSON} and not _guarded(operation):
                offenders.append(f"{method.upper()} {path}: {sorted(body)}")
    routes = list(_api_routes(app.routes))
    assert len(routes) >= len(schema["paths"]), "the walk found every route"
    for route in routes:
        if _reads_raw_body(route) and route.methods - {"GET"} and not _needs_token(route):
            offenders.append(f"{route.path} reads the raw request body")
    assert offenders == [], "untokened routes taking files or raw bodies"


def test_the_walk_sees_the_technicians_upload_and_its_guard(terminal: Terminal) -> None:
    app = _app(terminal)
    identify = next(r for r in _api_routes(app.routes) if r.path == "/api/identify")
    operation = app.openapi()["paths"]["/api/identify"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert _guarded(operation) and _needs_token(identify)
    presettle = next(r for r in _api_routes(app.routes) if r.path == "/api/presettle/person")
    assert _reads_raw_body(presettle) and _needs_token(presettle)


def test_frame_upload_routes_are_gone(terminal: Terminal) -> None:
    paths = {r.path for r in _api_routes(_app(terminal).routes)}
    assert "/api/session/face" not in paths and "/api/session/preview" not in paths
    assert "/api/session/face/start" in paths and "/api/session/camera" in paths


def _ask(app: FastAPI, client: tuple[str, int], method: str, path: str, **kwargs: Any) -> int:
    """The status a client at `client` gets (httpx's ASGI transport sets the peer address)."""

    async def ask() -> int:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return (await http.request(method, path, **kwargs)).status_code

    # A thread of its own: a session-scoped Playwright browser may own this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, ask).result()


def test_a_client_elsewhere_on_the_network_cannot_drive_the_checkout(terminal: Terminal) -> None:
    app = _app(terminal)
    lan, here = ("10.20.30.40", 50000), ("127.0.0.1", 50000)
    confirm = {"session_id": "x", "chrg_bchno": "B", "amounts_digest": "d"}
    for method, path, body in (
        ("GET", "/api/session", None),
        ("POST", "/api/session/start", None),
        ("POST", "/api/session/credential", {"method": "id", "value": "110101199003070003"}),
        ("POST", "/api/session/second-factor", {"last4": "0003"}),
        ("POST", "/api/session/bill", {"chrg_bchno": "B", "session_id": "x"}),
        ("POST", "/api/session/confirm", confirm),
    ):
        assert _ask(app, lan, method, path, json=body) == 403, path
    assert _ask(app, here, "GET", "/api/session") == 200, "the kiosk browser on this machine"
    cashier = {"Authorization": "Bearer c"}
    assert _ask(app, lan, "GET", "/api/session", headers=cashier) == 200, "the counter"
    wrong = {"Authorization": "Bearer t"}
    assert _ask(app, lan, "GET", "/api/session", headers=wrong) == 401
