"""The [uplink] section: strict, with defaults that leave the embedded terminal offline."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from terminal.uplink.config import UplinkSection


def test_defaults_have_no_upstream_and_sane_limits() -> None:
    section = UplinkSection()
    assert section.url is None
    assert section.backoff().max_attempts == 8
    assert section.offline_limits().max_age == timedelta(hours=72)
    assert section.offline_limits().max_amount == Decimal("500.00")


def test_unknown_keys_and_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        UplinkSection.model_validate({"urll": "http://127.0.0.1:1"})
    with pytest.raises(ValidationError):
        UplinkSection.model_validate({"timeout_s": 0})
