"""The local HTTP service: create_app(terminal) wires routes to the use cases, nothing more.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.requests import Request

from terminal import __version__
from terminal.app import Terminal
from terminal.errors import (
    BillError,
    FaceError,
    IdentityError,
    ImageError,
    ModelError,
    SettlementError,
    TerminalError,
    UnknownPersonError,
)
from terminal.operations import identify_faces
from terminal.pipeline.bills import bill_from_json
from terminal.pipeline.capture import frame_from_bytes

MAX_UPLOAD_BYTES = 10 * 1024 * 1024

# Which HTTP status each kind of terminal error maps to; the message is always the error's own.
_STATUS: tuple[tuple[type[TerminalError], int], ...] = (
    (UnknownPersonError, 404),
    (ImageError, 422),
    (BillError, 422),
    (SettlementError, 422),
    (FaceError, 422),
    (IdentityError, 409),
    (ModelError, 503),
)


class PresettleRequest(BaseModel):
    """A bill to price for an identified person."""

    model_config = ConfigDict(extra="forbid")

    psn_no: str
    bill: dict[str, Any]


def create_app(terminal: Terminal) -> FastAPI:
    """The FastAPI application over one terminal."""
    app = FastAPI(title="medpay terminal", version=__version__)
    # One checkout at a time: the terminal's models and database are used by one request at once.
    lock = threading.Lock()

    def use_terminal() -> Iterator[Terminal]:
        with lock:
            yield terminal

    TerminalDep = Annotated[Terminal, Depends(use_terminal)]

    @app.exception_handler(TerminalError)
    async def terminal_error(request: Request, exc: TerminalError) -> JSONResponse:
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
        return JSONResponse(status_code=status, content={"error": type(exc).__name__, "detail": str(exc)})

    @app.get("/health")
    def health(term: TerminalDep) -> dict[str, Any]:
        """Liveness of the service and what it has loaded."""
        return {
            "status": "ok",
            "version": __version__,
            "terminal_id": term.config.terminal.terminal_id,
            "gallery_size": term.gallery.size(),
            "outbox_pending": len(term.ledger.pending_outbox()),
        }

    @app.post("/api/identify")
    def identify(
        term: TerminalDep,
        image: Annotated[UploadFile, File(description="a camera frame (JPEG or PNG)")],
        claim: Annotated[str | None, Form(description="psn_no claimed by a credential (1:1)")] = None,
    ) -> dict[str, Any]:
        """Who is in the uploaded image: box, landmarks and person id per face; never a score."""
        data = image.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise HTTPException(status_code=413, detail="image larger than 10 MB")
        frame = frame_from_bytes(data, image.filename or "upload", term.clock)
        return {"faces": [face.as_json() for face in identify_faces(term, frame, claim)]}

    @app.post("/api/presettle")
    def presettle(term: TerminalDep, request: PresettleRequest) -> dict[str, Any]:
        """Price a bill for a person with the local rule engine (an estimate; nothing is recorded)."""
        priced = term.checkout.price(bill_from_json(request.bill), request.psn_no)
        return priced.as_json()

    return app
