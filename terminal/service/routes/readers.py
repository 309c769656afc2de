"""The readers the service holds, for the technician (token).

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from terminal.service.deps import Service

MAX_WAIT_S = 25.0  # a long poll answers before proxies and browsers give up on it


def reader_routes(svc: Service) -> APIRouter:
    """Reader state behind the technician's token."""
    router = APIRouter(dependencies=[Depends(svc.technician)])

    @router.get("/api/tech/readers")
    def tech_readers(
        after: Annotated[int | None, Query(description="wait for a version newer than this")] = None,
        wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="seconds to wait for it")] = 0,
    ) -> dict[str, Any]:
        """Each held reader's url, connection, reconnects and last event; ignored scans as notes."""
        # Never under the terminal lock: reading link state touches no shared part of the terminal.
        if after is not None and wait > 0:
            svc.readers.wait_for_change(after, wait)
        return svc.readers.state()

    return router
