"""Signing tools for development and drills: keys, signed policy bundles and gallery deltas, the schema.

The default key is the development key in devkit/keys/ (committed on purpose, trusted by the shipped
config/policies/trusted_keys.json). A region signs its real bundles with its own offline key
(`--key`); a field terminal trusts that key and not the development one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from terminal.errors import GalleryDeltaError
from terminal.settlement.bundle import bundle_json_schema, parse_document, validate_bundle
from terminal.settlement.signing import (
    TrustedKey,
    TrustedKeys,
    canonical_json,
    generate_signing_key,
    sign_bundle,
    sign_detached,
)
from terminal.uplink.gallery import GalleryDelta

KEYS = Path(__file__).resolve().parent / "keys"
DEV_KEY = KEYS / "development-only.ed25519.pem"
DEV_PUBLIC = KEYS / "development-only.trusted.json"

Kind = Literal["policy", "gallery-delta", "model-manifest"]
KINDS: tuple[Kind, ...] = ("policy", "gallery-delta", "model-manifest")


def write_json(path: Path, value: object) -> None:
    """Write JSON the way the shipped files are written: UTF-8, two-space indent, final newline."""
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def keygen(key: Path, trusted: Path | None, note: str = "development key") -> TrustedKey:
    """Write a new private key (0600, never over an existing file); add its public half to `trusted`."""
    pem, entry = generate_signing_key()
    entry = entry.model_copy(update={"note": note})
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    if trusted is not None:
        old = TrustedKeys.model_validate_json(trusted.read_bytes()).keys if trusted.exists() else ()
        write_json(trusted, TrustedKeys(keys=(*old, entry)).model_dump())
    return entry


def _gallery_document(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GalleryDeltaError(f"gallery delta is not UTF-8 JSON: {exc}") from exc
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("bundle"), dict)
        or set(document) - {"bundle", "signature"}
    ):
        raise GalleryDeltaError('gallery delta file must be an object {"bundle": {...}, "signature": ...}')
    try:
        # As the terminal reads it: from canonical JSON, so dates are parsed from their ISO strings.
        GalleryDelta.model_validate_json(canonical_json(document["bundle"]))
    except ValidationError as exc:
        raise GalleryDeltaError(f"invalid gallery delta: {exc}") from exc
    return document


def sign_document(data: bytes, private_pem: bytes, kind: Kind = "policy") -> dict[str, Any]:
    """The signed document for a draft file's bytes; refuses (PolicyError, GalleryDeltaError) what a
    terminal would refuse, so nothing invalid ever carries a signature."""
    if kind == "policy":
        document = parse_document(data)
        validate_bundle(document["bundle"])
    else:
        document = _gallery_document(data)
    return sign_bundle(document["bundle"], private_pem)


def sign_manifest(path: Path, key: Path = DEV_KEY, out: Path | None = None) -> str:
    """Write the detached signature of a model manifest (beside it as manifest.toml.sig); the key id."""
    block = sign_detached(path.read_bytes(), key.read_bytes())
    write_json(out or path.with_name(path.name + ".sig"), block)
    return str(block["key_id"])


def sign_file(path: Path, key: Path = DEV_KEY, kind: Kind = "policy", out: Path | None = None) -> str:
    """Sign a bundle, delta or model manifest (in place, or its .sig, unless `out`); the key id."""
    if kind == "model-manifest":
        return sign_manifest(path, key, out)
    signed = sign_document(path.read_bytes(), key.read_bytes(), kind)
    write_json(out or path, signed)
    return str(signed["signature"]["key_id"])


def write_schema(out: Path) -> None:
    """Write the policy bundle file's JSON Schema (config/policies/schema.json)."""
    write_json(out, bundle_json_schema())
