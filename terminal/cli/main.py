"""The `medpay` command: thin over the library; every TerminalError becomes one clear line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from terminal.app import Terminal, build_terminal, refuse_unsafe_production, uplink_backoff
from terminal.cli.catalogue import add_catalogue
from terminal.cli.evaluate import add_evaluate
from terminal.cli.outbox import add_outbox
from terminal.cli.payment import add_payment
from terminal.cli.privacy import add_privacy
from terminal.cli.staff import add_staff
from terminal.cli.storage import add_storage, cmd_audit_verify
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, data_dir, json_schema, load
from terminal.errors import TerminalError
from terminal.operations import enroll_person, identify_faces, known_or_new_person
from terminal.pipeline.capture import frame_from_file
from terminal.store.file_modes import set_private_umask

log = logging.getLogger("medpay")


def _terminal(args: argparse.Namespace) -> Terminal:
    return build_terminal(load(args.config), data_dir(args.data_dir), SystemClock())


def _emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


def cmd_config_validate(args: argparse.Namespace) -> int:
    """Validate a config file."""
    config = load(args.config)
    refuse_unsafe_production(config)  # production mode's bounds (app/bounds.py), each with its reason
    sys.stdout.write(f"{args.config}: ok (terminal {config.terminal.terminal_id}, {config.terminal.mode})\n")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    """Print the config's JSON Schema."""
    _emit(json_schema())
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    """Enrol a consenting person's face from one or more photos (one template per usable photo)."""
    terminal = _terminal(args)
    try:
        person = known_or_new_person(
            terminal, args.person_id, args.name, args.certno, args.insutype, args.psn_type
        )
        frames = [frame_from_file(path, terminal.clock) for path in args.image]
        done = enroll_person(
            terminal, frames, person, args.consent, "face checkout at this terminal", args.operator
        )
    finally:
        terminal.close()
    for source, reason in done.refused:
        sys.stdout.write(f"not used: {source}: {reason}\n")
    sys.stdout.write(
        f"enrolled {person.psn_no} ({person.psn_name}) with recorded consent: {len(done.used)} template(s)"
        f" of model {done.model_id}\n"
    )
    return 0


def cmd_identify(args: argparse.Namespace) -> int:
    """Identify every face in an image (1:N), or verify them against --claim (1:1)."""
    terminal = _terminal(args)
    try:
        frame = frame_from_file(args.image, terminal.clock)
        faces = [face.as_json() for face in identify_faces(terminal, frame, args.claim)]
    finally:
        terminal.close()
    if args.json:
        _emit({"faces": faces})
    else:
        for face in faces:
            sys.stdout.write(f"face at {face['box']}: {face['person_id'] or 'not recognised'}\n")
    return 0


def cmd_settle(args: argparse.Namespace) -> int:
    """Price a bill for a person and, unless --estimate, record the settlement."""
    from terminal.cli.settle import price_with_person_file, settle_bill_file

    terminal = _terminal(args)
    try:
        if args.person is not None:
            report = price_with_person_file(terminal, args.bill, args.person, args.policy)
        else:
            report = settle_bill_file(terminal, args.bill, args.person_id, record=not args.estimate)
    finally:
        terminal.close()
    _emit(report) if args.json else sys.stdout.write(report["receipt"])
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole path on the embedded default."""
    from terminal.cli.demo import run_demo

    folder = data_dir(args.data_dir)
    return run_demo(
        args.config,
        folder,
        not args.keep,
        card_url=args.card,
        qr_url=args.qr,
        upstream=args.upstream,
        payment=not args.no_payment,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the local HTTP service."""
    from datetime import timedelta

    import uvicorn

    from terminal.service.app import create_app
    from terminal.store.keys import read_token

    # What the served terminal runs beside it (the demo's reference payment gateway), stopped after it.
    beside = contextlib.ExitStack()
    if args.demo:
        from terminal.cli.demo import prepare_demo_terminal

        terminal = prepare_demo_terminal(args.config, data_dir(args.data_dir), beside)
    else:
        terminal = _terminal(args)
    config = terminal.config
    host = args.host or config.service.host
    port = args.port or config.service.port
    refuse_unsafe_production(config, host)
    app = create_app(
        terminal,
        cashier_token=read_token(terminal.data_dir, "cashier"),
        technician_token=read_token(terminal.data_dir, "technician"),
        session_timeout=timedelta(seconds=config.session.timeout_s),
        bind_host=host,
    )
    if host not in ("127.0.0.1", "::1", "localhost"):
        # The patient endpoints carry no token: the kiosk browser runs on this machine.
        log.warning("serving on %s, not loopback: anyone on that network can drive the checkout", host)
    sys.stdout.write(f"kiosk: http://{host}:{port}/kiosk  counter: /counter  technician: /tech\n")
    if args.demo:
        from terminal.cli.demo_welcome import create_demo_staff, welcome

        sys.stdout.write(welcome(terminal, f"http://{host}:{port}", create_demo_staff(terminal)))
    log_config: Any = uvicorn.config.LOGGING_CONFIG
    if args.log_file is not None:
        from terminal.cli.serve_log import serve_log_config

        args.log_file.parent.mkdir(parents=True, exist_ok=True)
        log_config = serve_log_config(log_config, args.log_file, args.log_max_mb << 20, args.log_backups)
    listener = None
    try:
        if config.service.metrics_port is not None:
            from terminal.service.app import create_metrics_app
            from terminal.service.listener import BackgroundListener

            metrics_app = create_metrics_app(app)
            listener = BackgroundListener(
                metrics_app, config.service.metrics_host, config.service.metrics_port
            )
            listener.start()
            sys.stdout.write(f"metrics: http://{listener.host}:{listener.port}/metrics\n")
        # open event streams would otherwise hold shutdown forever
        uvicorn.run(
            app, host=host, port=port, log_level="info", timeout_graceful_shutdown=5, log_config=log_config
        )
    finally:
        if listener is not None:
            listener.stop()
        terminal.close()
        beside.close()
    return 0


def cmd_policy_validate(args: argparse.Namespace) -> int:
    """Verify a policy bundle's signature and schema against the terminal's trusted keys."""
    from terminal.app import refuse_demo_bundles
    from terminal.store.policy_files import load_bundle, load_trusted_keys

    config = load(args.config)
    trusted = load_trusted_keys(config.settlement.trusted_keys)
    bundle = load_bundle(args.file, trusted)
    refuse_demo_bundles(config, [bundle], trusted)  # what production would refuse is not "ok"
    sys.stdout.write(
        f"{args.file}: ok — {bundle.bundle_id} version {bundle.version}, region {bundle.admdvs}, "
        f"prices {bundle.valid_from}…{bundle.valid_to}\n"
    )
    if bundle.placeholder:
        sys.stdout.write("warning: this bundle holds PLACEHOLDER parameters, not an official notice\n")
    return 0


def cmd_devices_simulate(args: argparse.Namespace) -> int:
    """Run a reader simulator (QR, card or barcode) over TCP or a pty."""
    from firmware_bridge.simulate import main as simulate_main

    return simulate_main(args.extra)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check the terminal and say what is wrong and how to fix it."""
    from terminal.diagnostics import run_checks

    if args.fix_modes:
        from terminal.store.file_modes import fix_modes

        for fixed in fix_modes(data_dir(args.data_dir)):
            sys.stdout.write(f"fixed {fixed.path}: {fixed.mode:04o} -> {fixed.wanted:04o}\n")
    terminal = _terminal(args)
    try:
        checks = run_checks(terminal)
    finally:
        terminal.close()
    for check in checks:
        mark = "ok  " if check.ok else "FAIL"
        sys.stdout.write(f"{mark} {check.name:<15} {check.detail}\n")
        if not check.ok:
            sys.stdout.write(f"     {'':<15} fix: {check.fix}\n")
    failed = sum(not check.ok for check in checks)
    sys.stdout.write(f"{len(checks) - failed} passed, {failed} failed\n" if failed else "all checks passed\n")
    return 1 if failed else 0


def cmd_sync(args: argparse.Namespace) -> int:
    """Send queued settlements upstream, store the binding results, report differences.

    Exit 0: everything deliverable was delivered; 2: that, but entries are parked for a technician
    (`medpay outbox list`); 1: the sync stopped early or failed (the line says why).
    """
    from terminal.app import sync_once
    from terminal.cli.sync_report import describe
    from terminal.errors import UplinkError

    terminal = _terminal(args)
    try:
        if not (args.upstream or terminal.config.uplink.url):
            raise UplinkError("no upstream: set [uplink] url in the config or pass --upstream URL")
        result, totals = sync_once(
            terminal.db, terminal.data_dir, terminal.config.terminal, terminal.config.uplink, terminal.clock,
            terminal.ledger.allocate_msgid, backoff=uplink_backoff(terminal.config.uplink),
            url=args.upstream, day=args.day,
        )  # fmt: skip
        for line in describe(result, terminal.db):
            sys.stdout.write(line + "\n")
        if totals:
            sys.stdout.write(f"3201 {args.day}: {totals['stmt_rslt_dscr']}\n")
        parked = terminal.outbox.uplink_facts().parked
    finally:
        terminal.close()
    if result.stopped_on:
        return 1
    if parked:
        sys.stdout.write(f"{parked} entr{'y is' if parked == 1 else 'ies are'} parked: medpay outbox list\n")
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `medpay` (also used by the docs test)."""
    parser = argparse.ArgumentParser(prog="medpay", description="Face-recognition settlement terminal")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="terminal config (TOML)")
    parser.add_argument("--data-dir", type=Path, help="state folder (default: $MEDPAY_DATA_DIR)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

    demo = add("demo", cmd_demo, "enrol demo faces, identify probes, price and settle a bill")
    demo.add_argument("--keep", action="store_true", help="keep the demo's earlier state")
    demo.add_argument(
        "--upstream", metavar="URL", help="then sync to this upstream and show the reconciled result"
    )
    demo.add_argument(
        "--no-payment", action="store_true", help="skip the cash share (no reference payment gateway)"
    )
    reader = demo.add_mutually_exclusive_group()
    reader.add_argument("--card", metavar="URL", help="then check out again with a card reader at this URL")
    reader.add_argument("--qr", metavar="URL", help="then check out again with a QR scanner at this URL")

    enroll = add("enroll", cmd_enroll, "enrol a consenting person's face")
    enroll.add_argument("--person-id", required=True, help="psn_no")
    enroll.add_argument(
        "--image",
        type=Path,
        required=True,
        action="append",
        help="a photo of the person alone; repeat for several (each usable one is a template)",
    )
    enroll.add_argument("--consent", required=True, help="the consent text the person agreed to")
    enroll.add_argument("--name", help="psn_name (required for a person new to this terminal)")
    enroll.add_argument("--certno", help="resident ID number (required for a new person)")
    enroll.add_argument("--insutype", default="390", help="310 employee / 390 resident (default 390)")
    enroll.add_argument("--psn-type", default="active", choices=["active", "retired"])
    enroll.add_argument("--operator", default="technician", help="who recorded the consent")

    identify = add("identify", cmd_identify, "identify faces in an image")
    identify.add_argument("--image", type=Path, required=True)
    identify.add_argument("--claim", help="psn_no claimed by a credential: verify 1:1 instead of 1:N")
    identify.add_argument("--json", action="store_true")

    settle = add("settle", cmd_settle, "price and settle a bill")
    settle.add_argument("--bill", type=Path, required=True, help="bill JSON")
    who = settle.add_mutually_exclusive_group(required=True)
    who.add_argument("--person-id", help="psn_no of a patient known to this terminal (records it)")
    who.add_argument("--person", type=Path, help="person JSON file: a what-if estimate on the bill's date")
    settle.add_argument("--policy", type=Path, help="price with this signed bundle (with --person)")
    settle.add_argument("--estimate", action="store_true", help="price only (pre-settlement); record nothing")
    settle.add_argument("--json", action="store_true")

    config = sub.add_parser("config", help="configuration").add_subparsers(
        dest="config_command", required=True
    )
    validate = config.add_parser("validate", help="validate the config file")
    validate.set_defaults(func=cmd_config_validate)
    schema = config.add_parser("schema", help="print the config JSON Schema")
    schema.set_defaults(func=cmd_config_schema)

    serve = add("serve", cmd_serve, "run the local HTTP service")
    serve.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--demo", action="store_true", help="a fresh demo terminal with the demo people enrolled"
    )
    serve.add_argument("--log-file", type=Path, help="also log to this file, rotated by size")
    serve.add_argument("--log-max-mb", type=int, default=10, help="rotate the log file at this size")
    serve.add_argument("--log-backups", type=int, default=5, help="rotated log files kept")

    policy = sub.add_parser("policy", help="policy bundles").add_subparsers(
        dest="policy_command", required=True
    )
    policy_validate = policy.add_parser("validate", help="verify a bundle's signature and schema")
    policy_validate.add_argument("file", type=Path)
    policy_validate.set_defaults(func=cmd_policy_validate)

    devices = sub.add_parser("devices", help="serial readers").add_subparsers(
        dest="devices_command", required=True
    )
    simulate = devices.add_parser(
        "simulate",
        help="simulate a reader: qr|card|barcode [--tcp PORT | --pty] [--script FILE]",
        add_help=False,
    )
    # its own options (and --help) belong to the simulator: main() hands over whatever is unparsed
    simulate.set_defaults(func=cmd_devices_simulate)

    doctor = add("doctor", cmd_doctor, "check this terminal and say how to fix what is wrong")
    doctor.add_argument(
        "--fix-modes", action="store_true", help="first make the data folder 0700 and its files 0600"
    )

    sync = add("sync", cmd_sync, "send queued settlements upstream and reconcile the results")
    sync.add_argument("--upstream", metavar="URL", help="upstream base URL (default from [uplink] url)")
    sync.add_argument("--day", metavar="YYYY-MM-DD", help="also compare this day's totals (3201)")

    audit_cmd = sub.add_parser("audit", help="audit log").add_subparsers(dest="audit_command", required=True)
    verify = audit_cmd.add_parser(
        "verify", help="check the audit hash chain and the settlements and outbox against it"
    )
    verify.set_defaults(func=cmd_audit_verify)

    add_storage(sub)
    add_evaluate(sub)
    add_outbox(sub)
    add_payment(sub)
    add_privacy(sub)
    add_staff(sub)
    add_catalogue(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `medpay`."""
    # Everything the CLI and the service create (database, journals, logs, backups) is owner-only.
    set_private_umask()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.func is not cmd_devices_simulate:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    try:
        result: int = args.func(args)
    except TerminalError as exc:
        # One line: the detail, the stable code, and what to do next in both languages.
        sys.stderr.write(f"medpay: error: {exc} [{exc.code}] {exc.message_zh} {exc.message_en}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
