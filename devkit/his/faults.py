"""The reference HIS's fault switches, and the broken bill the 'malformed' fault serves."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Fault switches; POST a partial object to /admin/faults to change some."""

    model_config = ConfigDict(extra="forbid")

    down: bool = Field(default=False, description="answer 503 to every call")
    slow_s: float = Field(default=0.0, ge=0, le=30, description="delay before every call")
    malformed: bool = Field(default=False, description="serve bills with a broken fee line")


def malformed(bill: Mapping[str, Any]) -> dict[str, Any]:
    """The bill with its first fee line broken the way a faulty HIS export breaks it."""
    lines = [dict(line) for line in bill.get("feedetail", [])]
    if lines:
        lines[0].pop("med_list_codg", None)
        lines[0]["pric"] = "ten yuan"
    return {**bill, "feedetail": lines}
