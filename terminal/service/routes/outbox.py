"""The technician's view of the outbox: parked entries and the background sync's state.

No `from __future__ import annotations` here: FastAPI reads the route annotations at run time.
"""

from typing import Any

from fastapi import APIRouter, Depends

from terminal.app.parked import parked_view
from terminal.service.deps import Service


def outbox_routes(svc: Service) -> APIRouter:
    """GET /api/tech/outbox/parked behind the technician's token."""
    router = APIRouter()

    @router.get("/api/tech/outbox/parked", dependencies=[Depends(svc.technician)])
    def parked() -> dict[str, Any]:
        """Parked entries with their errors, the outbox counts, and the background sync's last runs."""
        term = svc.terminal
        # A bounded wait, taken and released in this one worker thread; the sync's state needs no lock.
        with svc.hold("parked outbox entries"):
            view = parked_view(term)
        sync = term.uplink_sync
        return {**view, "sync": sync.state() if sync is not None else None}

    return router
