"""`[models]`: where the face models live, which backends read them, and with how many threads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, Field

from terminal.config.base import Section

# Backends whose model comes from an operator pack (docs/model-packs.md); they name it with `model`.
PACK_TYPES = ("scrfd", "arcface")
_PACK_MODEL = Field(
    description="operator-pack model to run (its [[model]] name in the pack manifest); "
    "required for the pack types scrfd and arcface, refused for the others"
)


class DetectorConfig(Section):
    """Face detector choice and parameters."""

    type: Annotated[
        Literal["mtcnn", "yunet", "scrfd"],
        Field(
            description="detector backend: yunet (the default: YuNet finds the face, MTCNN's O-Net places "
            "its landmarks; several times faster) or mtcnn (the whole cascade); docs/liveness.md"
        ),
    ] = "yunet"
    model: Annotated[str | None, _PACK_MODEL] = None
    min_face_size: Annotated[
        int, Field(description="smallest face in pixels; from kiosk geometry (~80 px at 0.5 m)", ge=12)
    ] = 80
    thresholds: Annotated[tuple[float, float, float], Field(description="P/R/O-Net candidate thresholds")] = (
        0.6,
        0.7,
        0.7,
    )
    min_score: Annotated[
        float | None,
        Field(
            description="final detector score a payment-grade capture needs; unset: the detector's own "
            "(MTCNN and SCRFD 0.95, yunet 0.9 on O-Net's probability; each scores on its own scale)",
            ge=0,
            le=1,
        ),
    ] = None


class EmbedderConfig(Section):
    """Face embedder choice."""

    type: Annotated[
        Literal["dlib_resnet", "sface", "arcface"],
        Field(
            description="embedder backend: sface (the default; measured fit for East-Asian faces, "
            "docs/identity.md), dlib_resnet (kept for comparison) or arcface (an operator pack's model)"
        ),
    ] = "sface"
    model: Annotated[str | None, _PACK_MODEL] = None


_Backend = TypeVar("_Backend", "DetectorConfig", "EmbedderConfig")


def _names_its_pack_model(section: _Backend) -> _Backend:
    """A pack type names its model; a shipped type names none (sections stay plain data: checked here)."""
    if section.type in PACK_TYPES and section.model is None:
        raise ValueError(f'type "{section.type}" runs an operator-pack model: name it with model = "<name>"')
    if section.type not in PACK_TYPES and section.model is not None:
        raise ValueError(f'type "{section.type}" is a shipped model: remove model = "{section.model}"')
    return section


class ModelsConfig(Section):
    """Where models live and how many CPU threads they get."""

    dir: Annotated[Path | None, Field(description="model folder; default: the repository's models/")] = None
    intra_op_threads: Annotated[int, Field(description="onnxruntime intra-op threads per model", ge=1)] = 1
    detector: Annotated[
        DetectorConfig, Field(description="the face detector"), AfterValidator(_names_its_pack_model)
    ] = DetectorConfig()
    embedder: Annotated[
        EmbedderConfig, Field(description="the face embedder"), AfterValidator(_names_its_pack_model)
    ] = EmbedderConfig()
