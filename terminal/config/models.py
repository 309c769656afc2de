"""`[models]`: where the face models live, which backends read them, and with how many threads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from terminal.config.base import Section


class DetectorConfig(Section):
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


class EmbedderConfig(Section):
    """Face embedder choice."""

    type: Annotated[
        Literal["dlib_resnet", "sface"],
        Field(
            description="embedder backend: sface (the default; measured fit for East-Asian faces, "
            "docs/identity.md) or dlib_resnet (kept for comparison)"
        ),
    ] = "sface"


class ModelsConfig(Section):
    """Where models live and how many CPU threads they get."""

    dir: Annotated[Path | None, Field(description="model folder; default: the repository's models/")] = None
    intra_op_threads: Annotated[int, Field(description="onnxruntime intra-op threads per model", ge=1)] = 1
    detector: Annotated[DetectorConfig, Field(description="the face detector")] = DetectorConfig()
    embedder: Annotated[EmbedderConfig, Field(description="the face embedder")] = EmbedderConfig()
