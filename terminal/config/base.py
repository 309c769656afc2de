"""The one base every config section shares: strict, immutable, plain data."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config table: unknown keys are refused, values never change after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)
