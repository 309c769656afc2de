"""Bundle tooling for policy operators: make a key, sign a bundle, write the schema.

python -m terminal.settlement.sign_tool keygen --key KEY.pem --trusted config/policies/trusted_keys.json
python -m terminal.settlement.sign_tool sign config/policies/430100-2025.json --key KEY.pem
python -m terminal.settlement.sign_tool schema config/policies/schema.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from terminal.errors import TerminalError
from terminal.settlement.bundle import bundle_json_schema, parse_document, validate_bundle
from terminal.settlement.signing import TrustedKeys, generate_signing_key, sign_bundle


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def keygen(key: Path, trusted: Path | None) -> None:
    """Write a new private key (0600) and add its public key to a trusted-keys file."""
    pem, entry = generate_signing_key()
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    if trusted is not None:
        old = TrustedKeys.model_validate_json(trusted.read_bytes()).keys if trusted.exists() else ()
        _write_json(trusted, TrustedKeys(keys=(*old, entry)).model_dump())
    sys.stdout.write(f"key {entry.key_id} written to {key}\n")


def sign(bundle_path: Path, key: Path) -> None:
    """Validate a bundle file's content and rewrite it with a fresh signature."""
    document = parse_document(bundle_path.read_bytes())
    validate_bundle(document["bundle"])  # never sign what the terminal would refuse
    signed = sign_bundle(document["bundle"], key.read_bytes())
    _write_json(bundle_path, signed)
    sys.stdout.write(f"{bundle_path} signed with key {signed['signature']['key_id']}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the bundle tool."""
    parser = argparse.ArgumentParser(prog="python -m terminal.settlement.sign_tool")
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="new Ed25519 signing key")
    k.add_argument("--key", type=Path, required=True, help="private key file to create (never commit it)")
    k.add_argument("--trusted", type=Path, help="trusted-keys file to add the public key to")
    s = sub.add_parser("sign", help="sign a bundle file in place")
    s.add_argument("bundle", type=Path)
    s.add_argument("--key", type=Path, required=True)
    sch = sub.add_parser("schema", help="write the bundle JSON Schema")
    sch.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            keygen(args.key, args.trusted)
        elif args.command == "sign":
            sign(args.bundle, args.key)
        else:
            _write_json(args.out, bundle_json_schema())
    except (TerminalError, OSError) as exc:
        sys.stderr.write(f"sign_tool: error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
