"""Client helpers for a running reference upstream (tests, bench and demo setup; dev only)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from devkit.upstream.people import person_json
from terminal.domain import Person


def register_people(url: str, people: Sequence[Person]) -> int:
    """Give a running dev upstream its copy of people; how many it added."""
    with httpx.Client(base_url=url, timeout=10) as client:
        reply = client.post("/admin/persons", json=[person_json(p) for p in people])
        reply.raise_for_status()
        return int(reply.json()["added"])
