"""`python -m devkit`: development tools (the reference servers run as `python -m devkit.<server>`).

python -m devkit sign config/policies/430300-2025.json            # with the development key
python -m devkit sign delta.json --kind gallery-delta --key KEY.pem --out signed.json
python -m devkit sign models/manifest.toml --kind model-manifest   # writes models/manifest.toml.sig
python -m devkit keygen --key /secure/region.pem --trusted config/policies/trusted_keys.json
python -m devkit schema config/policies/schema.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from devkit.sign import DEV_KEY, KINDS, keygen, sign_file, write_schema
from terminal.errors import TerminalError


def _sign(args: argparse.Namespace) -> None:
    key_id = sign_file(args.file, args.key, args.kind, args.out)
    sys.stdout.write(f"{args.out or args.file} signed with key {key_id}\n")


def _keygen(args: argparse.Namespace) -> None:
    entry = keygen(args.key, args.trusted, args.note)
    sys.stdout.write(f"key {entry.key_id} written to {args.key}\n")


def _schema(args: argparse.Namespace) -> None:
    write_schema(args.out)
    sys.stdout.write(f"schema written to {args.out}\n")


def build_parser() -> argparse.ArgumentParser:
    """The devkit command line; each subcommand sets `func`."""
    parser = argparse.ArgumentParser(prog="python -m devkit", description="medpay development tools")
    sub = parser.add_subparsers(dest="command", required=True)

    sign = sub.add_parser("sign", help="validate and sign a policy bundle or gallery delta file")
    sign.add_argument("file", type=Path, help='a {"bundle": …, "signature": …} file (signature may be null)')
    sign.add_argument(
        "--key", type=Path, default=DEV_KEY, help="Ed25519 private key PEM (default: the development key)"
    )
    sign.add_argument("--kind", choices=KINDS, default="policy", help="what the file holds")
    sign.add_argument("--out", type=Path, help="write the signed file here instead of in place")
    sign.set_defaults(func=_sign)

    gen = sub.add_parser("keygen", help="new Ed25519 signing key")
    gen.add_argument("--key", type=Path, required=True, help="private key file to create")
    gen.add_argument("--trusted", type=Path, help="trusted-keys file to add the public half to")
    gen.add_argument("--note", default="development key", help="who holds the private half")
    gen.set_defaults(func=_keygen)

    schema = sub.add_parser("schema", help="write the policy bundle JSON Schema")
    schema.add_argument("out", type=Path)
    schema.set_defaults(func=_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one devkit command; 1 with a one-line error on a refused file or an unreadable key."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (TerminalError, OSError) as exc:
        sys.stderr.write(f"devkit {args.command}: error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
