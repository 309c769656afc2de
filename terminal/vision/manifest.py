"""The model manifest: every model declared with its source, sha256, input spec and licence."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator

from terminal.errors import ModelError, ModelIntegrityError, ModelMissingError, PolicyError
from terminal.settlement.signing import verify_detached

MANIFEST_NAME = "manifest.toml"
SIGNATURE_NAME = "manifest.toml.sig"  # detached Ed25519 signature over manifest.toml's exact bytes
# What a template model id may look like (name@sha256-prefix by default); it travels in gallery deltas.
MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@:+-]{0,79}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSource(_Strict):
    """Where a model file comes from and how it is produced."""

    kind: Annotated[
        Literal["sdist-member", "sdist-convert", "wheel-member", "local-pack"],
        Field(description="how to obtain"),
    ]
    package: str | None = None
    version: str | None = None
    archive: Annotated[str | None, Field(description="archive file name in the package index")] = None
    archive_sha256: str | None = None
    member: Annotated[str | None, Field(description="path inside the archive")] = None
    member_sha256: Annotated[
        str | None,
        Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the member, checked before any conversion"),
    ] = None
    converter: Annotated[str | None, Field(description="module:function that converts the member")] = None
    note: str = ""


class InputSpec(_Strict):
    """What a model expects at its input."""

    name: str
    shape: str
    layout: str
    colour: Literal["RGB", "BGR"]
    normalisation: str


class GraphSpec(_Strict):
    """The tensor contract the runtime checks when it loads the file: one float32 input, one output."""

    input: Annotated[str, Field(description="name of the graph's input (equals [model.input] name)")]
    input_dims: Annotated[
        tuple[PositiveInt, ...], Field(min_length=1, description="input sizes after the dynamic batch axis")
    ]
    output: Annotated[str, Field(description="name of the graph's output")]
    output_dims: Annotated[
        tuple[PositiveInt, ...], Field(min_length=1, description="output sizes after the dynamic batch axis")
    ]


class DetectorPoint(_Strict):
    """An embedder's operating point measured on chips aligned by one detector's landmarks."""

    threshold: Annotated[
        float, Field(description="the measured 1:1 operating point in the embedder's metric")
    ]
    fmr: Annotated[float, Field(description="upper 95 % bound of the false-match rate there", gt=0, lt=1)]


class ModelEntry(_Strict):
    """One declared model file."""

    name: str
    task: str
    file: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    licence: str
    default: bool
    source: ModelSource
    input: InputSpec
    output: str
    metric: Annotated[
        Literal["euclidean", "cosine"] | None, Field(description="how an embedder's templates compare")
    ] = None
    threshold: Annotated[
        float | None,
        Field(description="an embedder's measured 1:1 operating point in its metric (docs/identity.md)"),
    ] = None
    fmr: Annotated[
        float | None,
        Field(
            description="upper 95 % bound of the false-match rate measured at threshold on held-out "
            "East-Asian faces; the 1:N gallery cap is derived from it (docs/identity.md)",
            gt=0,
            lt=1,
        ),
    ] = None
    measured_with: Annotated[
        str,
        Field(
            description="the detector whose landmarks aligned the chips threshold and fmr were measured on"
        ),
    ] = "mtcnn"
    by_detector: Annotated[
        dict[str, DetectorPoint],
        Field(description="operating points measured on other detectors' chips, by detector type"),
    ] = {}
    graph: Annotated[GraphSpec | None, Field(description="what the runtime checks the graph against")] = None
    model_id: Annotated[
        str | None,
        Field(
            pattern=MODEL_ID_PATTERN,
            description="an embedder's template model id; default name@sha256[:12] (docs/identity.md)",
        ),
    ] = None

    @model_validator(mode="after")
    def _graph_input_is_the_input(self) -> ModelEntry:
        if self.graph is not None and self.graph.input != self.input.name:
            raise ValueError(f"graph input {self.graph.input!r} differs from input name {self.input.name!r}")
        return self

    @model_validator(mode="after")
    def _operating_point_is_whole(self) -> ModelEntry:
        # A threshold is meaningless without its metric, and a cap needs the rate measured at it.
        if (self.threshold is None) != (self.fmr is None):
            raise ValueError(f"model {self.name}: threshold and fmr are declared together or not at all")
        if self.threshold is not None and self.metric is None:
            raise ValueError(f"model {self.name}: a threshold needs the metric it is measured in")
        return self

    def for_detector(self, detector: str) -> ModelEntry:
        """This entry with the threshold and fmr measured on `detector`'s chips; both None if never measured.

        Why per detector: the aligner cuts the chip from the detector's landmarks, and a threshold measured
        on one detector's chips says nothing certain about another's (docs/identity.md).
        """
        if detector == self.measured_with:
            return self
        point = self.by_detector.get(detector)
        threshold, fmr = (None, None) if point is None else (point.threshold, point.fmr)
        return self.model_copy(update={"threshold": threshold, "fmr": fmr, "measured_with": detector})

    def template_model_id(self) -> str:
        """The id stamped on each template this embedder makes: `model_id`, else name@sha256[:12]."""
        return self.model_id or f"{self.name}@{self.sha256[:12]}"

    def contract(self) -> GraphSpec:
        """The declared graph contract; ModelError when the entry declares none."""
        if self.graph is None:
            raise ModelError(f"model {self.name} declares no [model.graph] in {MANIFEST_NAME}")
        return self.graph


class Manifest(_Strict):
    """All declared models."""

    model: list[ModelEntry]

    def entry(self, name: str) -> ModelEntry:
        """The entry named name; ModelError when undeclared."""
        for entry in self.model:
            if entry.name == name:
                return entry
        raise ModelError(f"model {name!r} is not declared in {MANIFEST_NAME}")


def load_manifest(models_dir: Path) -> Manifest:
    """Read models_dir/manifest.toml."""
    path = models_dir / MANIFEST_NAME
    try:
        return Manifest.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ModelMissingError(f"model manifest {path} cannot be read: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ModelError(f"model manifest {path} is invalid: {exc}") from exc


def verify_manifest_signature(models_dir: Path, trusted_keys: Mapping[str, bytes]) -> str:
    """Check manifest.toml against its detached signature (manifest.toml.sig); the signing key's id.

    The sha256 list is only worth what its signature is: without this, a changed model file plus an
    edited list verifies. ModelIntegrityError when the signature is missing, malformed or not from a
    trusted key (the policies' trust store), or the manifest changed after signing.
    """
    path, sig = models_dir / MANIFEST_NAME, models_dir / SIGNATURE_NAME
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelMissingError(f"model manifest {path} cannot be read: {exc.strerror}") from exc
    try:
        block = json.loads(sig.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelIntegrityError(
            f"model manifest signature {sig} is missing: the model list is unsigned"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ModelIntegrityError(f"model manifest signature {sig} cannot be read: {exc}") from exc
    try:
        return verify_detached(data, block, trusted_keys, f"model manifest {path}")
    except PolicyError as exc:
        raise ModelIntegrityError(str(exc)) from exc


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_path(models_dir: Path, entry: ModelEntry) -> Path:
    """Path of a provisioned model file whose sha256 matches the manifest."""
    path = models_dir / entry.file
    if not path.is_file():
        raise ModelMissingError(
            f"model {entry.name} ({path}) is not provisioned; run `medpay-provision models`"
        )
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ModelIntegrityError(
            f"model {entry.name} ({path}) has sha256 {actual[:12]}…, manifest says {entry.sha256[:12]}…; "
            "re-run `medpay-provision models`"
        )
    return path
