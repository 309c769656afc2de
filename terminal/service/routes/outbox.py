"""The technician's view of the outbox: parked entries and the background sync's state.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from terminal.app import Terminal
from terminal.app.parked import parked_view
from terminal.service.deps import Service


def outbox_routes(svc: Service) -> APIRouter:
    """GET /api/tech/outbox/parked behind the technician's token."""
    router = APIRouter()
    TerminalDep = Annotated[Terminal, Depends(svc.use_terminal)]

    @router.get("/api/tech/outbox/parked", dependencies=[Depends(svc.technician)])
    def parked(term: TerminalDep) -> dict[str, Any]:
        """Parked entries with their errors, the outbox counts, and the background sync's last runs."""
        sync = term.uplink_sync
        return {**parked_view(term), "sync": sync.state() if sync is not None else None}

    return router
