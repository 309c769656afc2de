"""The composition root: the one place that builds adapters, workers and the session from config.

Read it in this order: `registries.py` (which adapter each config `type` picks: detectors, embedders,
liveness checks), `terminal.py` (the Terminal and every collaborator it builds), `readers.py` (the
configured readers adapted to the reader worker's ports), `session.py` (the
checkout session over it), `uplink.py` (registration and a sync run). Shells import from here.
"""

from terminal.app.bounds import production_problems, refuse_unsafe_production
from terminal.app.registries import (
    DETECTORS,
    EMBEDDER_ENTRIES,
    EMBEDDER_METRICS,
    EMBEDDERS,
    LIVENESS_CHECKS,
    build_face_stage,
    embedder_model_id,
    embedder_operating_point,
    liveness_checks,
)
from terminal.app.session import TerminalPorts, build_session
from terminal.app.terminal import (
    DEVELOPMENT_KEY_IDS,
    Terminal,
    build_bill_source,
    build_terminal,
    offline_limits,
    refuse_demo_bundles,
    refuse_development_keys,
    uplink_backoff,
)
from terminal.app.uplink import build_uplink, register_terminal, sync_once

__all__ = [
    "DETECTORS",
    "DEVELOPMENT_KEY_IDS",
    "EMBEDDERS",
    "EMBEDDER_ENTRIES",
    "EMBEDDER_METRICS",
    "LIVENESS_CHECKS",
    "Terminal",
    "TerminalPorts",
    "build_bill_source",
    "build_face_stage",
    "build_session",
    "build_terminal",
    "build_uplink",
    "embedder_model_id",
    "embedder_operating_point",
    "liveness_checks",
    "offline_limits",
    "production_problems",
    "refuse_demo_bundles",
    "refuse_development_keys",
    "refuse_unsafe_production",
    "register_terminal",
    "sync_once",
    "uplink_backoff",
]
