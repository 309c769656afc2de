"""The whole configuration: one table per section of terminal.toml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from terminal.config.base import Section
from terminal.config.camera import CameraSection
from terminal.config.checkout import SessionConfig, SettlementConfig
from terminal.config.devices import DevicesSection
from terminal.config.identity import IdentityConfig
from terminal.config.liveness import LivenessConfig
from terminal.config.models import ModelsConfig
from terminal.config.payment import PaymentSection
from terminal.config.storage import StorageSection
from terminal.config.terminal import ServiceConfig, TerminalSection
from terminal.config.uplink import UplinkSection

REPO_ROOT = Path(__file__).resolve().parents[2]


class TerminalConfig(Section):
    """The whole terminal configuration."""

    terminal: Annotated[TerminalSection, Field(description="who this terminal is")]
    models: Annotated[ModelsConfig, Field(description="face models")] = ModelsConfig()
    identity: Annotated[IdentityConfig, Field(description="face matching policy")] = IdentityConfig()
    liveness: Annotated[LivenessConfig, Field(description="presentation-attack checks")] = LivenessConfig()
    settlement: Annotated[SettlementConfig, Field(description="policy bundles and catalogue")]
    session: Annotated[SessionConfig, Field(description="the kiosk's checkout session")] = SessionConfig()
    service: Annotated[ServiceConfig, Field(description="the local HTTP service")] = ServiceConfig()
    uplink: Annotated[UplinkSection, Field(description="the upstream and offline limits")] = UplinkSection()
    devices: Annotated[DevicesSection, Field(description="serial readers and printer")] = DevicesSection()
    camera: Annotated[CameraSection, Field(description="the kiosk camera, NIR and depth")] = CameraSection()
    payment: Annotated[PaymentSection, Field(description="the cash share's payment gateway")] = (
        PaymentSection()
    )
    storage: Annotated[StorageSection, Field(description="retention of attempts and journals")] = (
        StorageSection()
    )
