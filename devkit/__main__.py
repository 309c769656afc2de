"""`python -m devkit`: development tools (the reference servers run as `python -m devkit.<server>`).

python -m devkit sign config/policies/430300-2025.json            # with the development key
python -m devkit sign delta.json --kind gallery-delta --key KEY.pem --out signed.json
python -m devkit sign models/manifest.toml --kind model-manifest   # writes models/manifest.toml.sig
python -m devkit keygen --key /secure/region.pem --trusted config/policies/trusted_keys.json
python -m devkit schema config/policies/schema.json
python -m devkit payment --db /tmp/pay.sqlite --key-file /tmp/pay.key  # reference payment gateway
"""

from __future__ import annotations

import argparse
import logging
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


def _payment(args: argparse.Namespace) -> None:
    # Imported here: the server pulls in FastAPI and uvicorn, which the other commands never need.
    from devkit.payment.faults import Faults
    from devkit.payment.serve import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    faults = Faults(
        decline=args.decline,
        slow_s=args.slow,
        lost=args.lost,
        userpaying=args.userpaying,
        userpaying_result=args.userpaying_result,
        refund_fail=args.refund_fail,
        down=args.down,
    )
    serve(args.db, args.key_file, args.merchant_id, args.port, faults)


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

    pay = sub.add_parser(
        "payment",
        help="run the reference payment gateway (docs/payment.md) until interrupted",
        description="Binds 127.0.0.1 (port 0: any free port), then prints 'payment gateway ready URL'.",
    )
    pay.add_argument("--db", type=Path, required=True, help="the gateway's SQLite file (created)")
    pay.add_argument(
        "--key-file", type=Path, required=True, help="merchant key file (created 0600 if absent)"
    )
    pay.add_argument("--merchant-id", default="MEDPAY-DEMO", help="the one merchant the gateway serves")
    pay.add_argument(
        "--port", type=int, default=0, help="0 (default): a free port, printed in the ready line"
    )
    pay.add_argument("--decline", metavar="ERR_CODE", help="decline every micropay with this err_code")
    pay.add_argument("--slow", type=float, default=0.0, metavar="SECONDS", help="delay every signed call")
    pay.add_argument(
        "--lost", type=int, default=0, metavar="N", help="drop the answers of the next N changes"
    )
    pay.add_argument(
        "--userpaying", type=int, default=0, metavar="N", help="micropays resolve after N queries"
    )
    pay.add_argument("--userpaying-result", default="SUCCESS", metavar="CODE", help="SUCCESS or an err_code")
    pay.add_argument("--refund-fail", type=int, default=0, metavar="N", help="fail the next N refunds")
    pay.add_argument("--down", action="store_true", help="answer 503 SERVICE_UNAVAILABLE to every call")
    pay.set_defaults(func=_payment)
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
