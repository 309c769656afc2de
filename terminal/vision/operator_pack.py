"""Operator model packs: the pack manifest, and an installed pack model found by name and verified.

A pack is installed by `medpay-provision models --operator-pack FOLDER --accept-licence` into
`<models>/packs/<pack>/` (docs/model-packs.md). The runtime reads every installed pack's manifest; it never
writes them, and the shipped `models/manifest.toml` is never touched.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from terminal.errors import ConfigError, ModelError, ModelIntegrityError, ModelMissingError
from terminal.vision.align import ARCFACE_CHIP_SIZE
from terminal.vision.manifest import sha256_of

PACKS_DIR = "packs"
PACK_MANIFEST = "manifest.toml"
ACCEPTANCE = "licence-accepted.toml"
# What installs a pack; every error that a missing or unaccepted pack raises names it.
INSTALL_HINT = "medpay-provision models --operator-pack FOLDER --accept-licence"

PackKind = Literal["scrfd", "arcface"]
# Names become folder names and file names inside the models folder: no separators, no leading dot.
_PACK_NAME = r"^[a-z0-9][a-z0-9_.-]*$"
_FILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackInfo(_Strict):
    """The pack as a whole: its name, the licence the operator accepts, and where the weights came from."""

    name: Annotated[str, Field(pattern=_PACK_NAME, description="folder name under <models>/packs/")]
    licence: Annotated[str, Field(min_length=1, description="the licence's name, as the operator holds it")]
    licence_file: Annotated[
        str, Field(pattern=_FILE_NAME, description="the licence text in the pack folder, accepted as a whole")
    ]
    source: Annotated[str, Field(min_length=1, description="where the operator obtained the weights")]
    note: str = ""


class PackInput(_Strict):
    """What a pack model expects at its input: declared, never read off node names."""

    name: Annotated[str, Field(description="the graph's input tensor")]
    size: Annotated[tuple[PositiveInt, PositiveInt], Field(description="[width, height] the model runs at")]
    layout: Literal["NCHW"] = "NCHW"
    colour: Literal["RGB", "BGR"]
    mean: Annotated[float, Field(description="subtracted from every 0-255 pixel value")]
    std: Annotated[PositiveFloat, Field(description="the difference is divided by this")]


class PackModel(_Strict):
    """One model file of a pack."""

    name: Annotated[
        # short enough that name@sha256[:12] fits a template model id (80 characters)
        str, Field(pattern=_PACK_NAME, max_length=60, description="what `[models.*] model` selects")
    ]
    kind: Annotated[PackKind, Field(description="the runtime family: the config `type` that runs it")]
    task: str
    file: Annotated[str, Field(pattern=_FILE_NAME)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    input: PackInput
    output: Annotated[str, Field(description="what the graph returns, in words")]
    dim: Annotated[PositiveInt | None, Field(description="an embedder's template length")] = None
    metric: Annotated[Literal["cosine"] | None, Field(description="how an embedder's templates compare")] = (
        None
    )
    threshold: Annotated[
        float | None,
        Field(
            description="an embedder's 1:1 operating point (cosine similarity) measured with "
            "`medpay evaluate faces` on the East-Asian set; absent until measured",
            gt=-1,
            lt=1,
        ),
    ] = None
    fmr: Annotated[
        float | None,
        Field(
            description="upper 95 % bound of the false-match rate measured at `threshold` on the East-Asian "
            "set; declared together with threshold (it sets the 1:N cap)",
            gt=0,
            lt=1,
        ),
    ] = None

    @model_validator(mode="after")
    def _fits_its_kind(self) -> PackModel:
        if self.kind == "arcface":
            if self.dim is None or self.metric is None:
                raise ValueError(f"arcface model {self.name} must declare dim and metric = 'cosine'")
            side = ARCFACE_CHIP_SIZE
            if self.input.size != (side, side):
                # the chip is aligned onto ArcFace's 112×112 five-point template; other sizes need another
                raise ValueError(f"arcface model {self.name} must take [{side}, {side}] chips")
        elif self.dim is not None or self.metric is not None or self.threshold is not None:
            raise ValueError(f"{self.kind} model {self.name} is a detector: no dim, metric or threshold")
        return self


class PackManifest(_Strict):
    """A pack's manifest.toml: one [pack] table and its [[model]] entries."""

    pack: PackInfo
    model: Annotated[list[PackModel], Field(min_length=1)]

    @model_validator(mode="after")
    def _distinct_names_and_files(self) -> PackManifest:
        names = [m.name for m in self.model]
        files = [m.file for m in self.model]
        if len(set(names)) != len(names):
            raise ValueError(f"model names repeat: {names}")
        reserved = {PACK_MANIFEST, ACCEPTANCE, self.pack.licence_file}
        if len(set(files)) != len(files) or reserved & set(files):
            raise ValueError(f"model files must be distinct and none of {sorted(reserved)}: {files}")
        if self.pack.licence_file in (PACK_MANIFEST, ACCEPTANCE):
            raise ValueError(f"licence_file may not be named {self.pack.licence_file}")
        return self


def read_pack_manifest(path: Path) -> PackManifest:
    """Parse one pack manifest; ModelMissingError when unreadable, ModelError when invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelMissingError(f"pack manifest {path} cannot be read: {exc.strerror}") from exc
    try:
        return PackManifest.model_validate(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ModelError(f"pack manifest {path} is invalid: {exc}") from exc


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PackFile:
    """A pack model in a folder: the folder, its pack's manifest and the model's entry."""

    folder: Path
    manifest: PackManifest
    entry: PackModel

    @property
    def path(self) -> Path:
        """The model file."""
        return self.folder / self.entry.file

    @property
    def label(self) -> str:
        """`<pack>/<model>`, for messages."""
        return f"{self.manifest.pack.name}/{self.entry.name}"

    @property
    def model_id(self) -> str:
        """`<model>@<sha256[:12]>`, as for shipped models: what made a template (names are unique)."""
        return f"{self.entry.name}@{self.entry.sha256[:12]}"

    def verified(self) -> Path:
        """The model file when its sha256 matches the pack manifest."""
        if not self.path.is_file():
            raise ModelMissingError(
                f"pack model {self.label} ({self.path}) is missing; re-install the pack: {INSTALL_HINT}"
            )
        actual = sha256_of(self.path)
        if actual != self.entry.sha256:
            raise ModelIntegrityError(
                f"pack model {self.label} ({self.path}) has sha256 {actual[:12]}…, its manifest says "
                f"{self.entry.sha256[:12]}…; re-install the pack: {INSTALL_HINT}"
            )
        return self.path


def installed_packs(models_dir: Path) -> list[tuple[Path, PackManifest]]:
    """Every installed pack (folder, manifest) by name; dot-folders are versions, reached through links."""
    root = models_dir / PACKS_DIR
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / PACK_MANIFEST).is_file():
            continue
        manifest = read_pack_manifest(folder / PACK_MANIFEST)
        if manifest.pack.name != folder.name:
            raise ModelError(f"pack folder {folder} holds pack {manifest.pack.name!r}; re-install it")
        found.append((folder, manifest))
    return found


def accepted_licence_sha256(folder: Path) -> str | None:
    """The sha256 of the licence text the operator accepted for the pack in folder, None when not recorded."""
    try:
        record = tomllib.loads((folder / ACCEPTANCE).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    value = record.get("licence_sha256")
    return value if isinstance(value, str) else None


def find_pack_model(models_dir: Path, name: str | None, kind: PackKind) -> PackFile:
    """The installed pack model called name, of the given kind, whose licence the operator accepted."""
    if name is None:
        raise ConfigError(f'type "{kind}" runs an operator-pack model: name it with model = "<name>"')
    matches = [
        PackFile(folder, manifest, entry)
        for folder, manifest in installed_packs(models_dir)
        for entry in manifest.model
        if entry.name == name
    ]
    if not matches:
        raise ModelMissingError(
            f"pack model {name!r} is not installed under {models_dir / PACKS_DIR}; install its pack: "
            f"{INSTALL_HINT}"
        )
    if len(matches) > 1:
        raise ModelError(f"pack model {name!r} is in several packs: {[m.label for m in matches]}")
    found = matches[0]
    if found.entry.kind != kind:
        raise ModelError(f"pack model {found.label} is of kind {found.entry.kind}, not {kind}")
    licence = found.folder / found.manifest.pack.licence_file
    accepted = accepted_licence_sha256(found.folder)
    if not licence.is_file() or accepted is None or accepted != sha256_of(licence):
        raise ModelError(
            f"pack {found.manifest.pack.name}: no recorded acceptance of licence "
            f"{found.manifest.pack.licence!r} ({licence}); re-install it: {INSTALL_HINT}"
        )
    return found
