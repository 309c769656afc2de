"""The pages (kiosk, counter, technician, counter office) and their static files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
PAGES = {"kiosk": "kiosk.html", "counter": "counter.html", "tech": "tech.html", "office": "office.html"}


def page_routes() -> APIRouter:
    """`/` redirects to the kiosk; `/kiosk`, `/counter`, `/tech`, `/office` serve their pages uncached."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/kiosk")

    @router.get("/favicon.ico")
    def favicon() -> FileResponse:
        # Browsers ask for /favicon.ico whatever the page links; the one icon is an SVG file.
        return FileResponse(STATIC_DIR / "favicon.svg", media_type="image/svg+xml")

    for name, file in PAGES.items():
        router.add_api_route(f"/{name}", _serve(file))
    return router


def _serve(file: str) -> Callable[[], FileResponse]:
    def serve() -> FileResponse:
        return FileResponse(STATIC_DIR / file, headers={"Cache-Control": "no-store"})

    return serve
