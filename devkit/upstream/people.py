"""People records as the reference upstream stores them and /admin/persons takes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

from terminal.domain import Person


def person_from_json(data: Mapping[str, Any]) -> Person:
    """The Person in a stored or posted record; ValueError when it is malformed."""
    try:
        brdy = data.get("brdy")
        return Person(
            psn_no=str(data["psn_no"]),
            psn_name=str(data["psn_name"]),
            certno=str(data["certno"]),
            insutype=str(data["insutype"]),
            psn_type=str(data["psn_type"]),
            insuplc_admdvs=str(data["insuplc_admdvs"]),
            acct_balc=Decimal(str(data.get("acct_balc", "0.00"))),
            gend=str(data.get("gend", "")),
            brdy=date.fromisoformat(str(brdy)) if brdy else None,
        )
    except (KeyError, ValueError, ArithmeticError) as exc:
        raise ValueError(f"malformed person record: {exc!r}") from exc


def person_json(person: Person) -> dict[str, Any]:
    """A Person as /admin/persons takes it."""
    return {k: (str(v) if v is not None and not isinstance(v, str) else v) for k, v in asdict(person).items()}
