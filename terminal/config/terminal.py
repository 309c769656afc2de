"""`[terminal]` and `[service]`: who this terminal is and where its local service listens."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from terminal.config.base import Section

Mode = Literal["production", "demo"]


class TerminalSection(Section):
    """Who this terminal is, as the national envelope names it."""

    terminal_id: Annotated[str, Field(description="opter: the terminal's operator id", max_length=30)]
    # One institution, several kiosks: each needs its own digit so their msgids never collide.
    msgid_slot: Annotated[
        int,
        Field(
            description="this kiosk's digit in its msgids (0-9), distinct for every kiosk of one "
            "institution (fixmedins_code)",
            ge=0,
            le=9,
        ),
    ] = 0
    fixmedins_code: Annotated[
        str, Field(description="designated institution code (12 chars)", pattern=r"^[A-Z0-9]{12}$")
    ]
    fixmedins_name: Annotated[str, Field(description="designated institution name", max_length=20)]
    mdtrtarea_admvs: Annotated[
        str, Field(description="area code where treatment happens (6 digits)", pattern=r"^\d{6}$")
    ]
    institution_level: Annotated[
        Literal["primary", "level1", "level2", "level3_city", "level3_provincial"],
        Field(description="hospital level; selects deductible and ratio rows of the policy"),
    ] = "level3_city"
    # The default is the strict one: a config that does not say is treated as a real terminal.
    mode: Annotated[
        Mode,
        Field(
            description="production: a terminal that settles real money (development keys, placeholder "
            "policies and synthetic cameras are refused); demo: the shipped example configuration, "
            "which allows them"
        ),
    ] = "production"


class ServiceConfig(Section):
    """The local HTTP service."""

    host: Annotated[str, Field(description="bind address; loopback unless a kiosk browser is remote")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(description="TCP port", ge=1, le=65535)] = 8080
    allowed_hosts: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\[\]-]+$")], ...],
        Field(
            description="Host names (besides loopback and the bind address) the service answers to; any "
            "other Host header is refused (421), so a DNS-rebinding page reaches nothing",
            max_length=32,
        ),
    ] = ()
    # A request never waits without bound for the terminal's models and database: past this it answers
    # 503 TERMINAL_BUSY with Retry-After, and its worker thread is free again.
    lock_wait_s: Annotated[
        float,
        Field(
            description="seconds a request waits for the terminal (held by another caller) before a 503",
            gt=0,
            le=30,
        ),
    ] = 2.0
    background_wait_s: Annotated[
        float,
        Field(
            description="seconds the camera loop and reader threads wait for the terminal before they "
            "skip that frame or scan",
            gt=0,
            le=300,
        ),
    ] = 30.0
    max_streams: Annotated[
        int,
        Field(
            description="event streams (session events, camera preview) open at once; more answer 503",
            ge=1,
            le=64,
        ),
    ] = 8
    stream_max_s: Annotated[
        float,
        Field(description="seconds after which an event stream ends (the page reconnects)", gt=0, le=86400),
    ] = 300.0
    # The only listener that may face the hospital network: read-only metrics for its Prometheus.
    metrics_host: Annotated[
        str,
        Field(description="bind address of the separate metrics listener (only /metrics and /health/live)"),
    ] = "127.0.0.1"
    metrics_port: Annotated[
        int | None,
        Field(
            description="port of the separate metrics listener; unset: /metrics only on the service's own "
            "(loopback) listener",
            ge=1,
            le=65535,
        ),
    ] = None
