"""Installing an operator model pack: licence accepted, every file verified, the pack swapped in at once.

Layout under the models folder (docs/model-packs.md):
    packs/<pack>          a symlink to the installed version, replaced in one rename
    packs/.<pack>-XXXX/   a version: manifest.toml, the licence text, licence-accepted.toml, the .onnx files
A version folder is complete before the link points at it, so the runtime sees the old pack or the new
one, never part of either; an interrupted install leaves only an unreferenced dot-folder, removed by the
next install.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import tomllib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import tomli_w

from terminal.errors import ModelError, ModelIntegrityError, ModelMissingError
from terminal.store import audit
from terminal.store.db import immediate, open_db
from terminal.vision.insightface_pack import pack_detector, pack_embedder
from terminal.vision.manifest import MANIFEST_NAME, load_manifest, sha256_of
from terminal.vision.operator_pack import (
    ACCEPTANCE,
    PACK_MANIFEST,
    PACKS_DIR,
    PackFile,
    PackManifest,
    installed_packs,
    read_pack_manifest,
)

log = logging.getLogger("medpay.provision")

_CHUNK = 1 << 20


def _copy_verified(source: Path, target: Path, expected: str | None, what: str) -> str:
    """Copy source to target, fsync it, and return its sha256; ModelIntegrityError when it is not expected."""
    if not source.is_file():
        raise ModelMissingError(f"{what}: {source} is missing")
    copy_file(source, target)
    actual = sha256_of(target)
    if expected is not None and actual != expected:
        raise ModelIntegrityError(
            f"{what}: {source} has sha256 {actual[:12]}…, the pack manifest says {expected[:12]}…; "
            "refused, nothing installed"
        )
    return actual


def copy_file(source: Path, target: Path) -> None:
    """Copy bytes and fsync: the version folder is complete on disk before it becomes visible."""
    with source.open("rb") as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)
        out.flush()
        os.fsync(out.fileno())
    target.chmod(0o644)


def _check_loads(folder: Path, manifest: PackManifest) -> None:
    """Open every model of the copied pack with the runtime's own adapter, so a wrong graph is refused now."""
    for entry in manifest.model:
        pack = PackFile(folder, manifest, entry)
        if entry.kind == "scrfd":
            pack_detector(pack, threads=1, min_score=0.5)
        else:
            pack_embedder(pack, threads=1)


def _refuse_name_clashes(models_dir: Path, manifest: PackManifest) -> None:
    """A pack model name must select one model: not a shipped one, not one of another installed pack."""
    names = {entry.name for entry in manifest.model}
    if (models_dir / MANIFEST_NAME).is_file():
        shipped = names & {entry.name for entry in load_manifest(models_dir).model}
        if shipped:
            raise ModelError(f"pack {manifest.pack.name}: {sorted(shipped)} already name shipped models")
    for _, other in installed_packs(models_dir):
        if other.pack.name == manifest.pack.name:
            continue
        taken = names & {entry.name for entry in other.model}
        if taken:
            raise ModelError(f"pack {manifest.pack.name}: {sorted(taken)} already in pack {other.pack.name}")


def _installed_unchanged(link: Path, manifest_bytes: bytes, manifest: PackManifest, licence_sha: str) -> bool:
    folder = link.resolve()
    try:
        if (folder / PACK_MANIFEST).read_bytes() != manifest_bytes:
            return False
        if sha256_of(folder / manifest.pack.licence_file) != licence_sha:
            return False
        return all(sha256_of(folder / entry.file) == entry.sha256 for entry in manifest.model)
    except OSError:
        return False


def _remove_unreferenced(root: Path) -> None:
    """Delete version folders no pack link points at (older versions, interrupted installs)."""
    links = [child for child in root.iterdir() if child.is_symlink() and not child.name.startswith(".")]
    live = {link.resolve() for link in links}
    for child in root.iterdir():
        if not child.name.startswith("."):
            continue
        if child.is_symlink() or not child.is_dir():
            child.unlink(missing_ok=True)  # a link or file an interrupted swap left behind
        elif child.resolve() not in live:
            shutil.rmtree(child, ignore_errors=True)


def _swap_in(root: Path, version: Path, name: str) -> None:
    """Point packs/<name> at version with one rename of a fresh symlink."""
    link = root / name
    if link.exists() and not link.is_symlink():
        raise ModelError(f"{link} is not a pack installed by medpay-provision; move it away and re-run")
    fresh = root / f".link-{name}-{version.name}"
    fresh.unlink(missing_ok=True)
    fresh.symlink_to(version.name, target_is_directory=True)
    os.replace(fresh, link)
    _fsync_dir(root)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def install_operator_pack(
    models_dir: Path,
    folder: Path,
    accept_licence: bool,
    at: datetime,
    accepted_by: str,
    check: Callable[[Path, PackManifest], None] = _check_loads,
) -> list[str]:
    """Install the pack in folder under models_dir/packs; returns the model names installed ([] if unchanged).

    Refused (ModelError) without the licence text in the folder or without accept_licence; a file whose
    sha256 differs from the pack manifest (ModelIntegrityError) leaves the installed state as it was.
    """
    manifest_path = folder / PACK_MANIFEST
    manifest = read_pack_manifest(manifest_path)
    manifest_bytes = manifest_path.read_bytes()
    info = manifest.pack
    licence = folder / info.licence_file
    if not licence.is_file() or licence.stat().st_size == 0:
        raise ModelError(
            f"pack {info.name}: the text of licence {info.licence!r} ({info.licence_file}) is not in "
            f"{folder}; a pack is installed only with the licence text the operator accepts"
        )
    if not accept_licence:
        raise ModelError(
            f"pack {info.name} is under licence {info.licence!r}; read {licence} and re-run with "
            "--accept-licence to accept it"
        )
    _refuse_name_clashes(models_dir, manifest)
    root = models_dir / PACKS_DIR
    root.mkdir(parents=True, exist_ok=True)
    _remove_unreferenced(root)
    licence_sha = sha256_of(licence)
    link = root / info.name
    if link.is_symlink() and _installed_unchanged(link, manifest_bytes, manifest, licence_sha):
        log.info("pack %s: present and verified", info.name)
        return []
    version = Path(tempfile.mkdtemp(prefix=f".{info.name}-", dir=root))
    try:
        for entry in manifest.model:
            _copy_verified(
                folder / entry.file, version / entry.file, entry.sha256, f"pack model {entry.name}"
            )
        _copy_verified(licence, version / info.licence_file, licence_sha, f"pack {info.name} licence text")
        _copy_verified(manifest_path, version / PACK_MANIFEST, None, f"pack {info.name} manifest")
        if (version / PACK_MANIFEST).read_bytes() != manifest_bytes:
            raise ModelIntegrityError(f"pack {info.name}: {manifest_path} changed while it was installed")
        record = {
            "pack": info.name,
            "licence": info.licence,
            "licence_file": info.licence_file,
            "licence_sha256": licence_sha,
            "accepted_at": at.isoformat(),
            "accepted_by": accepted_by,
            "source": info.source,
        }
        (version / ACCEPTANCE).write_text(tomli_w.dumps(record), encoding="utf-8")
        check(version, manifest)
        version.chmod(0o755)  # mkdtemp makes it 0700; the terminal's service user reads the pack
        _fsync_dir(version)
    except BaseException:
        shutil.rmtree(version, ignore_errors=True)
        raise
    _swap_in(root, version, info.name)
    _remove_unreferenced(root)
    log.info(
        "pack %s: installed %s under licence %r", info.name, [e.name for e in manifest.model], info.licence
    )
    return [entry.name for entry in manifest.model]


def audit_pack_acceptance(data_dir: Path, models_dir: Path, folder: Path, at: datetime) -> None:
    """Record an installed pack in the terminal's audit log: each model's sha256 and the licence accepted.

    The pack is accepted on those two facts (docs/threat-model.md, "Stored state"); the audit record
    says who accepted which licence text for which files, and when.
    """
    manifest = read_pack_manifest(folder / PACK_MANIFEST)
    installed = models_dir / PACKS_DIR / manifest.pack.name
    acceptance = tomllib.loads((installed / ACCEPTANCE).read_text(encoding="utf-8"))
    detail = {
        "licence": acceptance.get("licence"),
        "licence_sha256": acceptance.get("licence_sha256"),
        "accepted_by": acceptance.get("accepted_by"),
        "models": {entry.name: entry.sha256 for entry in manifest.model},
    }
    db = open_db(data_dir)
    try:
        with immediate(db):
            audit.append(
                db, at, f"technician:{detail['accepted_by']}", "operator-pack", manifest.pack.name, detail
            )
    finally:
        db.close()
