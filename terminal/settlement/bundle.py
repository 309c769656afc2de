"""Parsing policy bundle files from their bytes: signature first, then the schema; PolicyError on any failure.

A bundle file is {"bundle": {...}, "signature": {"alg": "Ed25519", "key_id": …, "value": …}}. The
terminal trusts the public keys of a trusted-keys file, which terminal.store.policy_files reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from terminal.errors import PolicyError
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.signing import Signature, verify_signature


class BundleFile(BaseModel):
    """The bundle file as published in config/policies/schema.json."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="medpay policy bundle file")

    bundle: PolicyBundle = Field(description="the parameters; the signature covers its canonical JSON")
    signature: Signature | None = Field(description="Ed25519 signature block; terminals refuse null")


def bundle_json_schema() -> dict[str, Any]:
    """The JSON Schema of a bundle file (written to config/policies/schema.json)."""
    schema = BundleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _no_floats(text: str) -> Decimal:
    # A float in a money table has no exact canonical form to sign and invites binary rounding.
    raise PolicyError(f'policy numbers with a fraction must be JSON strings (found {text}); write "{text}"')


def parse_document(data: bytes) -> dict[str, Any]:
    """The bundle file's JSON object; PolicyError unless UTF-8 JSON with no fractional numbers."""
    try:
        raw = json.loads(data.decode("utf-8"), parse_float=_no_floats)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyError(f"policy bundle is not UTF-8 JSON: {exc}") from exc
    if (
        not isinstance(raw, dict)
        or not isinstance(raw.get("bundle"), dict)
        or set(raw) - {"bundle", "signature"}
    ):
        raise PolicyError('policy bundle file must be an object {"bundle": {...}, "signature": {...}}')
    return raw


def validate_bundle(raw: Any) -> PolicyBundle:
    """A PolicyBundle from parsed JSON; PolicyError listing every problem with its path."""
    try:
        return PolicyBundle.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'bundle'}: "
            f"{'unknown key' if err['type'] == 'extra_forbidden' else err['msg']}"
            for err in exc.errors()
        )
        raise PolicyError(f"invalid policy bundle: {problems}") from exc


def parse_bundle(data: bytes, trusted_keys: Mapping[str, bytes] | None) -> PolicyBundle:
    """A PolicyBundle from file bytes, verified against trusted_keys (None: drafts only, no verification)."""
    document = parse_document(data)
    if trusted_keys is not None:
        verify_signature(document, trusted_keys)
    return validate_bundle(document["bundle"])
