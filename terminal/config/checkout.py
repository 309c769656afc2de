"""`[settlement]` and `[session]`: what prices a bill and where the kiosk's bills come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from terminal.config.base import Section


class SettlementConfig(Section):
    """Policy bundle and catalogue used by the local rule engine."""

    policies: Annotated[
        Path,
        Field(description="folder of signed <admdvs>-<year>.json bundles (relative to this file)"),
    ]
    catalog: Annotated[Path, Field(description="catalogue JSON (relative to this file)")]
    trusted_keys: Annotated[
        Path, Field(description="Ed25519 public keys allowed to sign policy bundles (relative to this file)")
    ]


class SessionConfig(Section):
    """The kiosk's checkout session and where its bills come from."""

    timeout_s: Annotated[int, Field(description="seconds of inactivity before a step times out", ge=10)] = 120
    bills: Annotated[
        Path, Field(description="folder of bill JSON files (the demo's bill source; relative to this file)")
    ] = Path("bills")
    his_url: Annotated[
        str | None,
        Field(
            description="the hospital HIS base URL (docs/kiosk.md); its bearer token is read from "
            "<data>/keys/his.token; unset: bills come from the `bills` folder (demo)",
            pattern=r"^https?://\S+$",
        ),
    ] = None
    his_timeout_s: Annotated[
        float,
        Field(description="seconds to wait for the HIS per call; then the patient asks at the counter", gt=0),
    ] = 5.0
