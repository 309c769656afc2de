"""medpay-provision: make a bare machine a terminal (data, config, models, upstream, devices), re-runnable."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from serial.tools import list_ports

from firmware_bridge.probe import ProbeStatus
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, TerminalConfig, data_dir, load, models_folder
from terminal.diagnostics import probe_devices
from terminal.errors import DeviceError, TerminalError
from terminal.ports import Clock
from terminal.provision.config_file import Answers, write_config
from terminal.provision.models import provision_models
from terminal.provision.offline import install_settlement_files, verify_settlement
from terminal.provision.operator_pack import audit_pack_acceptance, install_operator_pack
from terminal.provision.pack import provision_pack
from terminal.provision.upstream import fetch_policy_step, gallery_step, register_step
from terminal.store.device_key import create_device_key
from terminal.store.file_modes import set_private_umask
from terminal.store.keys import create_key, create_token, key_path
from terminal.uplink.signing import KEY_FILE, uplink_keys
from terminal.uplink.sm_crypto import SM2_KEY_FILE
from terminal.vision.manifest import load_manifest

log = logging.getLogger("medpay.provision")

MIN_FREE_BYTES = 1 << 30
STAFF_ROLES = ("cashier", "technician")


def provision_init(target: Path) -> Path:
    """Create the data folder, the template, device and uplink signing keys (0600); the template key path."""
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for role in STAFF_ROLES:
        create_token(target, role)
    uplink_keys(target)  # the keys registration presents (SM2 envelope, Ed25519 artefacts); never replaced
    create_device_key(target)  # people's lookup hashes and seals (docs/threat-model.md, Stored state)
    return create_key(target)


@dataclass(frozen=True)
class StepResult:
    """What one provisioning step did."""

    step: str
    status: str  # done | unchanged | skipped | would do | failed
    detail: str


def check_machine(folder: Path) -> str:
    """Python, CPU features, disk, cameras and serial ports; TerminalError when unusable."""
    flags = _cpu_flags()
    if flags and "avx2" not in flags:
        log.warning("CPU without AVX2: face recognition will be several times slower")
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    if free < MIN_FREE_BYTES:
        raise TerminalError(f"only {free >> 20} MiB free for {folder}; free at least 1 GiB")
    cameras = sorted(str(p) for p in Path("/dev").glob("video*"))
    ports = [port.device for port in list_ports.comports()]
    avx2 = ", AVX2" if "avx2" in flags else ""
    return (
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs{avx2}, {free >> 30} GiB free, "
        f"cameras: {', '.join(cameras) or 'none'}, serial: {', '.join(ports) or 'none'}"
    )


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def self_test(config_path: Path, folder: Path) -> str:
    """Run the face pipeline once on a shipped image and verify today's policy bundle."""
    import insightface

    from terminal.app import build_terminal
    from terminal.clock import SystemClock
    from terminal.config import load
    from terminal.domain import Frame
    from terminal.vision.images import load_image

    terminal = build_terminal(load(config_path), folder, SystemClock())
    try:
        image = load_image(Path(os.path.dirname(insightface.__file__)) / "data" / "images" / "t1.jpg")
        faces = terminal.face_stage.observe(Frame(image, "self-test", terminal.clock.now()))
        bundle = terminal.policies.for_date(terminal.clock.now().date())
    finally:
        terminal.close()
    if len(faces) != 6:
        raise TerminalError(f"self-test found {len(faces)} faces in t1.jpg, expected 6")
    return f"{len(faces)} faces found; policy {bundle.bundle_id} prices today"


@dataclass(frozen=True)
class Options:
    """Everything one `medpay-provision all` run needs."""

    config_path: Path
    data_dir: Path
    answers: Answers = field(default_factory=Answers)
    offline: Path | None = None  # folder with model archives, signed bundles, catalogue; never the network
    force: bool = False  # replace a config file that provisioning did not write (keeping a .bak)
    dry_run: bool = False
    device_listen: float = 1.0  # seconds a scanner probe waits for a scan
    clock: Clock = field(default_factory=SystemClock)


@dataclass(frozen=True)
class Step:
    """One idempotent provisioning step: its name, what it would do, and how to do it."""

    name: str
    plan: str
    run: Callable[[], tuple[str, str]]  # → (status, detail); TerminalError when it fails
    preview: Callable[[], str] | None = None  # a dry run's sharper plan, computed without changing anything


def plan_steps(options: Options) -> list[Step]:
    """The provisioning sequence, in order; each step reads the config the config step wrote."""
    target = options.config_path

    def config() -> TerminalConfig:
        return load(target)

    def write() -> tuple[str, str]:
        result = write_config(target, options.answers, force=options.force)
        note = "; placeholder identity: pass --terminal-id and --fixmedins-code" if result.placeholder else ""
        if not result.written:
            return "unchanged", f"{target} already holds these answers{note}"
        kept = f"; previous kept as {result.backup.name}" if result.backup else ""
        return "done", f"wrote {target}: {', '.join(result.changed)}{kept}{note}"

    def preview_write() -> str:
        result = write_config(target, options.answers, force=options.force, dry_run=True)
        if not result.changed:
            return f"nothing to change in {target}"
        return f"write {target}: {', '.join(result.changed)}"

    def init() -> tuple[str, str]:
        uplink = [options.data_dir / SM2_KEY_FILE, options.data_dir / KEY_FILE]
        existed = key_path(options.data_dir).exists() and all(f.exists() for f in uplink)
        template_key = provision_init(options.data_dir)
        detail = f"template key {template_key}; uplink signing keys {uplink[0]}, {uplink[1]}"
        return ("unchanged" if existed else "done"), detail

    def models() -> tuple[str, str]:
        models_dir = models_folder(config())
        installed = provision_models(models_dir, options.offline, offline=options.offline is not None)
        if installed:
            return "done", f"installed {', '.join(installed)} in {models_dir}"
        return "unchanged", f"all verified in {models_dir}"

    def register() -> tuple[str, str]:
        return register_step(config(), options.data_dir, options.clock, options.offline is not None)

    def settlement() -> tuple[str, str]:
        cfg = config()
        if options.offline is not None:
            written, origin = install_settlement_files(options.offline, cfg.settlement), str(options.offline)
        else:
            written, origin = fetch_policy_step(cfg, options.data_dir, options.clock), str(cfg.uplink.url)
        summary = verify_settlement(cfg.settlement, options.clock.now().date())
        if written:
            return "done", f"installed {', '.join(written)} from {origin}; {summary}"
        return "unchanged", summary

    def gallery() -> tuple[str, str]:
        return gallery_step(config(), options.data_dir, options.clock, options.offline is not None)

    def devices() -> tuple[str, str]:
        results = probe_devices(config(), listen=options.device_listen)
        lines = [r.describe() + (f" (fix: {r.fix})" if r.fix else "") for r in results]
        if not all(r.ok for r in results):
            raise DeviceError("\n".join(lines))
        fitted = [r for r in results if r.status is not ProbeStatus.NOT_CONFIGURED]
        return ("done" if fitted else "skipped"), "\n".join(lines)

    if options.offline is not None:
        upstream = "skipped under --offline"
        source = f"verify and install the signed policy bundles and the catalogue from {options.offline}"
    else:
        upstream = "skipped without [uplink] url"
        source = "fetch the signed policy bundles from [uplink] url (if set) and install the changed ones"
    return [
        Step(
            "machine",
            "check Python, CPU, disk, cameras, serial ports",
            lambda: ("done", check_machine(options.data_dir)),
        ),
        Step(
            "data folder",
            f"create {options.data_dir}, a 0600 template key, uplink signing key and staff tokens",
            init,
        ),
        Step("config", f"write {target} from the answers", write, preview_write),
        Step("models", "install and verify the manifest's default models", models),
        # Registration needs the config's identity and precedes anything fetched from the upstream.
        Step(
            "register",
            f"register terminal id, institution, area and signing key with the upstream ({upstream})",
            register,
        ),
        Step("policy", f"{source}; check the bundles and the catalogue", settlement),
        Step(
            "gallery",
            f"gallery sync: apply the signed delta since the version held ({upstream})",
            gallery,
        ),
        Step("devices", "probe each serial reader configured in [devices]", devices),
        Step(
            "self-test",
            "run the face pipeline once on a shipped photo",
            lambda: ("done", self_test(target, options.data_dir)),
        ),
    ]


def provision_all(options: Options) -> list[StepResult]:
    """Run the sequence, each step idempotent; stops at the first failure (re-running resumes)."""
    results: list[StepResult] = []
    for step in plan_steps(options):
        try:
            if options.dry_run:
                plan = step.preview() if step.preview is not None else step.plan
                results.append(StepResult(step.name, "would do", plan))
                continue
            status, detail = step.run()
        except TerminalError as exc:
            log.error("%s: %s", step.name, exc)
            results.append(StepResult(step.name, "failed", str(exc)))
            break
        log.info("%s: %s", step.name, status)
        results.append(StepResult(step.name, status, detail))
    return results


def _summary(results: list[StepResult]) -> None:
    table = Table(title="medpay-provision")
    for column in ("step", "status", "detail"):
        table.add_column(column)
    for result in results:
        colour = {"failed": "red", "done": "green"}.get(result.status, "")
        # details quote config tables like [devices.qr]: escape them so rich does not read them as markup
        table.add_row(
            result.step, f"[{colour}]{result.status}[/]" if colour else result.status, escape(result.detail)
        )
    Console().print(table)


def _answers(args: argparse.Namespace) -> Answers:
    return Answers(
        mode=args.mode,
        terminal_id=args.terminal_id,
        fixmedins_code=args.fixmedins_code,
        fixmedins_name=args.fixmedins_name,
        admdvs=args.admdvs,
        institution_level=args.institution_level,
        upstream_url=args.upstream,
        gallery_keys=args.gallery_keys,
        qr=args.qr,
        card=args.card,
        barcode=args.barcode,
        models_dir=args.models_dir,
        policies=args.policies,
        catalog=args.catalog,
    )


def _add_answers(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("answers written into the config (omitted: keep what the file says)")
    group.add_argument(
        "--mode",
        choices=("production", "demo"),
        help="production (default for a new file) refuses placeholder policies and development keys",
    )
    group.add_argument("--terminal-id", help="the terminal's operator id (opter)")
    group.add_argument("--fixmedins-code", help="designated institution code (12 characters)")
    group.add_argument("--fixmedins-name", help="designated institution name")
    group.add_argument("--admdvs", help="area code where treatment happens (6 digits)")
    group.add_argument("--institution-level", help="primary, level1, level2, level3_city, level3_provincial")
    group.add_argument("--upstream", metavar="URL", help="upstream base URL (registration, policy, gallery)")
    group.add_argument(
        "--gallery-keys", type=Path, metavar="FILE", help="trusted keys for the upstream's gallery deltas"
    )
    for kind in ("qr", "card", "barcode"):
        group.add_argument(
            f"--{kind}", metavar="URL", help=f"{kind} reader's pyserial URL; 'none': not fitted"
        )
    group.add_argument("--policies", type=Path, metavar="DIR", help="folder of signed policy bundles")
    group.add_argument("--catalog", type=Path, metavar="FILE", help="catalogue JSON file")


def main(argv: list[str] | None = None) -> int:
    """Entry point of `medpay-provision`."""
    set_private_umask()  # the data folder, keys and database it creates are owner-only
    parser = argparse.ArgumentParser(prog="medpay-provision", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="state folder (default: $MEDPAY_DATA_DIR)")
    parser.add_argument(
        "--models-dir", type=Path, help="model folder (default: [models] dir of the config, else models/)"
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="terminal config (TOML)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the data folder and the template key")
    models = sub.add_parser("models", help="install and verify the embedded default models")
    models.add_argument("--from", dest="source", type=Path, help="folder with the source archives (offline)")
    models.add_argument("--packs", action="store_true", help="also the optional liveness pack (MiniFASNet)")
    models.add_argument(
        "--operator-pack",
        type=Path,
        metavar="FOLDER",
        help="install only this operator model pack (manifest.toml, licence text, .onnx files; "
        "docs/model-packs.md)",
    )
    models.add_argument(
        "--accept-licence",
        action="store_true",
        help="accept the operator pack's licence (its text is in the pack)",
    )
    everything = sub.add_parser(
        "all",
        help="machine, data folder, config, models, register, policy, gallery, devices, self-test; "
        "prints a summary",
    )
    everything.add_argument(
        "--offline",
        "--from",
        dest="offline",
        type=Path,
        metavar="FOLDER",
        help="install from this folder (model archives, signed bundles, catalogue); never the network",
    )
    everything.add_argument("--force", action="store_true", help="replace a hand-edited config (keeps .bak)")
    everything.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    everything.add_argument(
        "--device-listen", type=float, default=1.0, metavar="S", help="seconds to wait for a test scan"
    )
    _add_answers(everything)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request buries the steps
    folder = data_dir(args.data_dir)
    try:
        if args.command == "init":
            log.info("data folder ready; template key at %s", provision_init(folder))
        elif args.command == "models" and args.operator_pack is not None:
            if args.packs or args.source is not None:
                parser.error("--operator-pack installs one pack only; run --packs / --from separately")
            models_dir = args.models_dir or models_folder(load(args.config))
            installed = install_operator_pack(
                models_dir, args.operator_pack, args.accept_licence, SystemClock().now(), getpass.getuser()
            )
            if installed:
                audit_pack_acceptance(folder, models_dir, args.operator_pack, SystemClock().now())
            log.info(
                "operator pack ready (%s)", ", ".join(installed) if installed else "nothing new to install"
            )
        elif args.command == "models":
            models_dir = args.models_dir or models_folder(load(args.config))
            installed = provision_models(models_dir, args.source)
            if args.packs:
                installed += provision_pack(models_dir, load_manifest(models_dir), args.source)
            log.info("models ready (%s)", ", ".join(installed) if installed else "nothing new to install")
        else:
            options = Options(
                config_path=args.config,
                data_dir=folder,
                answers=_answers(args),
                offline=args.offline,
                force=args.force,
                dry_run=args.dry_run,
                device_listen=args.device_listen,
            )
            results = provision_all(options)
            _summary(results)
            return 1 if any(r.status == "failed" for r in results) else 0
    except TerminalError as exc:
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
