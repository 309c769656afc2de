"""Terminal configuration: strict pydantic models loaded from TOML, errors with line numbers."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.errors import ConfigError
from terminal.uplink.config import UplinkSection
from terminal.vision.liveness.fusion import LivenessConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "terminal.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TerminalSection(_Strict):
    """Who this terminal is, as the national envelope names it."""

    terminal_id: Annotated[str, Field(description="opter: the terminal's operator id", max_length=30)]
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


class DetectorConfig(_Strict):
    """Face detector choice and parameters."""

    type: Annotated[Literal["mtcnn"], Field(description="detector backend")] = "mtcnn"
    min_face_size: Annotated[
        int, Field(description="smallest face in pixels; from kiosk geometry (~80 px at 0.5 m)", ge=12)
    ] = 80
    thresholds: Annotated[tuple[float, float, float], Field(description="P/R/O-Net candidate thresholds")] = (
        0.6,
        0.7,
        0.7,
    )
    min_score: Annotated[
        float, Field(description="final detector score a payment-grade capture needs", ge=0, le=1)
    ] = 0.95


class EmbedderConfig(_Strict):
    """Face embedder choice."""

    type: Annotated[Literal["dlib_resnet", "sface"], Field(description="embedder backend")] = "dlib_resnet"


class ModelsConfig(_Strict):
    """Where models live and how many CPU threads they get."""

    dir: Annotated[Path | None, Field(description="model folder; default: the repository's models/")] = None
    intra_op_threads: Annotated[int, Field(description="onnxruntime intra-op threads per model", ge=1)] = 1
    detector: DetectorConfig = DetectorConfig()
    embedder: EmbedderConfig = EmbedderConfig()


class IdentityConfig(_Strict):
    """Matching policy."""

    threshold: Annotated[
        float,
        Field(
            description="max Euclidean template distance for a match; 0.5 is stricter than dlib's 0.6 "
            "because a false accept pays with someone else's insurance",
            gt=0,
            lt=2,
        ),
    ] = 0.5
    max_face_attempts: Annotated[
        int, Field(description="failed face attempts before only QR / card / ID are offered", ge=1, le=10)
    ] = 3
    max_gallery_for_1n: Annotated[
        int, Field(description="largest gallery searched 1:N without a second factor", ge=1)
    ] = 5000
    face_lockout_s: Annotated[
        int,
        Field(
            description="failed face attempts count across sessions for this long: cancelling and "
            "starting again does not give an attacker new attempts",
            ge=0,
        ),
    ] = 600


class SettlementConfig(_Strict):
    """Policy bundle and catalogue used by the local rule engine."""

    policies: Annotated[
        Path,
        Field(description="folder of signed <admdvs>-<year>.json bundles (relative to this file)"),
    ]
    catalog: Annotated[Path, Field(description="catalogue JSON (relative to this file)")]
    trusted_keys: Annotated[
        Path, Field(description="Ed25519 public keys allowed to sign policy bundles (relative to this file)")
    ]


class SessionConfig(_Strict):
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


class ServiceConfig(_Strict):
    """The local HTTP service."""

    host: Annotated[str, Field(description="bind address; loopback unless a kiosk browser is remote")] = (
        "127.0.0.1"
    )
    port: Annotated[int, Field(description="TCP port", ge=1, le=65535)] = 8080


class _SerialDevice(_Strict):
    """A serial device addressed by a pyserial URL."""

    url: Annotated[
        str,
        Field(
            description="pyserial URL: /dev/ttyUSB0, /dev/serial/by-id/…, hwgrep://VID:PID, socket://host:port",
            min_length=1,
        ),
    ]


class ScannerDevice(_SerialDevice):
    """A QR or barcode scanner in serial (USB-COM) mode, CR after each scan."""

    baudrate: Annotated[int, Field(description="line speed (8N1)", gt=0)] = 9600


class CardDevice(_SerialDevice):
    """A social-security card reader speaking the medpay card protocol (docs/devices.md)."""

    baudrate: Annotated[int, Field(description="line speed (8N1)", gt=0)] = 115200


class PrinterDevice(_Strict):
    """An ESC/POS receipt printer with a Chinese (GB) font; receipts print after each settlement."""

    url: Annotated[
        str,
        Field(
            description="socket://host:9100 (network printer), /dev/usb/lp0 (USB printer class), "
            "/dev/ttyUSB0 or hwgrep://VID:PID (serial)",
            min_length=1,
        ),
    ]
    baudrate: Annotated[int, Field(description="line speed (8N1) of a serial printer", gt=0)] = 9600
    encoding: Annotated[
        Literal["gb18030", "gb2312"],
        Field(
            description="the printer's Chinese font: gb18030 (2-byte GBK area) or gb2312 (older printers); "
            "characters outside it print as ?"
        ),
    ] = "gb18030"
    width: Annotated[
        int,
        Field(description="characters per line: 32 on 58 mm paper, 48 on 80 mm (12x24 font)", ge=16, le=96),
    ] = 32


class DevicesSection(_Strict):
    """The serial devices this terminal has; a device without a table is not fitted."""

    qr: Annotated[ScannerDevice | None, Field(description="医保电子凭证 QR scanner")] = None
    card: Annotated[CardDevice | None, Field(description="social-security card reader")] = None
    barcode: Annotated[ScannerDevice | None, Field(description="pharmacy barcode scanner")] = None
    printer: Annotated[PrinterDevice | None, Field(description="ESC/POS receipt printer")] = None


class TerminalConfig(_Strict):
    """The whole terminal configuration."""

    terminal: TerminalSection
    models: ModelsConfig = ModelsConfig()
    identity: IdentityConfig = IdentityConfig()
    liveness: LivenessConfig = LivenessConfig()
    settlement: SettlementConfig
    session: SessionConfig = SessionConfig()
    service: ServiceConfig = ServiceConfig()
    uplink: UplinkSection = UplinkSection()
    devices: DevicesSection = DevicesSection()

    def models_dir(self) -> Path:
        """The folder holding provisioned model files."""
        return self.models.dir if self.models.dir is not None else REPO_ROOT / "models"


def load(path: Path = DEFAULT_CONFIG) -> TerminalConfig:
    """Read and validate a TOML config; relative paths resolve against the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        config = TerminalConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(path, text, exc)) from exc
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: TerminalConfig, base: Path) -> TerminalConfig:
    def resolve(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    settlement = config.settlement.model_copy(
        update={
            "policies": resolve(config.settlement.policies),
            "catalog": resolve(config.settlement.catalog),
            "trusted_keys": resolve(config.settlement.trusted_keys),
        }
    )
    session = config.session.model_copy(update={"bills": resolve(config.session.bills)})
    models = config.models
    if models.dir is not None:
        models = models.model_copy(update={"dir": resolve(models.dir)})
    uplink = config.uplink
    if uplink.gallery_trusted_keys is not None:
        uplink = uplink.model_copy(update={"gallery_trusted_keys": resolve(uplink.gallery_trusted_keys)})
    return config.model_copy(
        update={"settlement": settlement, "session": session, "models": models, "uplink": uplink}
    )


def _describe(path: Path, text: str, exc: ValidationError) -> str:
    """Turn pydantic errors into 'file:line: key: message' lines a technician can act on."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
        line_no = _line_of(text, loc)
        where = f"{path}:{line_no}" if line_no else str(path)
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{where}: {'.'.join(loc)}: {message}")
    return "invalid config:\n  " + "\n  ".join(lines)


def _line_of(text: str, loc: list[str]) -> int | None:
    """Best-effort line of a key: inside its [section] when it has one."""
    if not loc:
        return None
    section = ".".join(loc[:-1])
    key = loc[-1]
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[([^\]]+)\]", line)
        if header:
            current = header.group(1).strip()
            if current == ".".join(loc):
                return number
            continue
        if current == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None


def data_dir(explicit: Path | None = None) -> Path:
    """Where the terminal keeps state: --data-dir, then MEDPAY_DATA_DIR, then the user's data folder."""
    if explicit is not None:
        return explicit
    env = os.environ.get("MEDPAY_DATA_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "medpay"


def json_schema() -> dict[str, Any]:
    """JSON Schema of the config, for operators and editors."""
    return TerminalConfig.model_json_schema()
