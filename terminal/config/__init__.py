"""Terminal configuration: plain pydantic sections, loaded from TOML; nothing here imports the runtime."""

from __future__ import annotations

from terminal.config.base import Section
from terminal.config.camera import CameraSection
from terminal.config.checkout import SessionConfig, SettlementConfig
from terminal.config.devices import CardDevice, DevicesSection, PrinterDevice, ScannerDevice
from terminal.config.identity import IdentityConfig
from terminal.config.liveness import (
    ChallengeSettings,
    DepthSettings,
    LivenessConfig,
    NirSettings,
    PassiveSettings,
    Profile,
)
from terminal.config.load import DEFAULT_CONFIG, data_dir, json_schema, load, models_folder
from terminal.config.models import DetectorConfig, EmbedderConfig, ModelsConfig
from terminal.config.payment import PaymentSection
from terminal.config.root import REPO_ROOT, TerminalConfig
from terminal.config.storage import StorageSection
from terminal.config.terminal import Mode, ServiceConfig, TerminalSection
from terminal.config.uplink import UplinkSection

__all__ = [
    "DEFAULT_CONFIG",
    "REPO_ROOT",
    "CameraSection",
    "CardDevice",
    "ChallengeSettings",
    "DepthSettings",
    "DetectorConfig",
    "DevicesSection",
    "EmbedderConfig",
    "IdentityConfig",
    "LivenessConfig",
    "Mode",
    "ModelsConfig",
    "NirSettings",
    "PassiveSettings",
    "PaymentSection",
    "PrinterDevice",
    "Profile",
    "ScannerDevice",
    "Section",
    "ServiceConfig",
    "SessionConfig",
    "SettlementConfig",
    "StorageSection",
    "TerminalConfig",
    "TerminalSection",
    "UplinkSection",
    "data_dir",
    "json_schema",
    "load",
    "models_folder",
]
