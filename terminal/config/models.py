"""`[models]`: where the face models live, which backends read them, and with how many threads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from terminal.config.base import Section

# Backends whose model comes from an operator pack (docs/model-packs.md); they name it with `model`.
PACK_TYPES = ("scrfd", "arcface")
_PACK_MODEL = Field(
    description="operator-pack model to run (its [[model]] name in the pack manifest); "
    "required for the pack types scrfd and arcface, refused for the others"
)


def _check_pack_model(kind: str, model: str | None) -> None:
    if kind in PACK_TYPES and model is None:
        raise ValueError(f'type "{kind}" runs an operator-pack model: name it with model = "<name>"')
    if kind not in PACK_TYPES and model is not None:
        raise ValueError(f'type "{kind}" is a shipped model: remove model = "{model}"')


class DetectorConfig(Section):
    """Face detector choice and parameters."""

    type: Annotated[Literal["mtcnn", "scrfd"], Field(description="detector backend")] = "mtcnn"
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
        float, Field(description="final detector score a payment-grade capture needs", ge=0, le=1)
    ] = 0.95

    @model_validator(mode="after")
    def _pack_model_named(self) -> DetectorConfig:
        _check_pack_model(self.type, self.model)
        return self


class EmbedderConfig(Section):
    """Face embedder choice."""

    type: Annotated[Literal["dlib_resnet", "sface", "arcface"], Field(description="embedder backend")] = (
        "dlib_resnet"
    )
    model: Annotated[str | None, _PACK_MODEL] = None

    @model_validator(mode="after")
    def _pack_model_named(self) -> EmbedderConfig:
        _check_pack_model(self.type, self.model)
        return self


class ModelsConfig(Section):
    """Where models live and how many CPU threads they get."""

    dir: Annotated[Path | None, Field(description="model folder; default: the repository's models/")] = None
    intra_op_threads: Annotated[int, Field(description="onnxruntime intra-op threads per model", ge=1)] = 1
    detector: Annotated[DetectorConfig, Field(description="the face detector")] = DetectorConfig()
    embedder: Annotated[EmbedderConfig, Field(description="the face embedder")] = EmbedderConfig()
