"""Policy files: signed bundles, trusted keys, the catalogue; read here, parsed by settlement.

Settlement is pure and takes bytes; these functions do the reading and name the file in any error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from terminal.errors import PolicyError
from terminal.settlement.bundle import parse_bundle
from terminal.settlement.catalog import Catalog, CatalogError, parse_catalog
from terminal.settlement.national_catalog import FORMAT as NATIONAL_FORMAT
from terminal.settlement.national_catalog import parse_national, to_catalog
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.shelf import PolicyShelf, prefecture
from terminal.settlement.signing import parse_trusted_keys

DEFAULT_TRUSTED_KEYS = Path(__file__).resolve().parents[2] / "config" / "policies" / "trusted_keys.json"
BUNDLE_FILE = re.compile(r"^\d{6}-\d{4}\.json$")  # <admdvs>-<year>.json
INSURED_FOLDER = "insured"  # <policies>/insured/: the insured-place shelf (other regions' bundles)

__all__ = [
    "BUNDLE_FILE",
    "INSURED_FOLDER",
    "catalog_from_bytes",
    "catalogue_in_use",
    "downloaded_catalogue_path",
    "load_bundle",
    "load_catalog",
    "load_insured_shelf",
    "load_shelf",
    "load_trusted_keys",
    "prefecture",
]


def load_trusted_keys(path: Path = DEFAULT_TRUSTED_KEYS) -> dict[str, bytes]:
    """Read a trusted-keys file; PolicyError when unreadable or malformed."""
    try:
        return parse_trusted_keys(path.read_bytes())
    except OSError as exc:
        raise PolicyError(f"cannot read trusted keys {path}: {exc.strerror}") from exc


def load_bundle(path: Path, trusted_keys: Mapping[str, bytes] | None = None) -> PolicyBundle:
    """Read and verify a signed bundle file (keys default to the shipped trusted-keys file); PolicyError."""
    keys = load_trusted_keys() if trusted_keys is None else trusted_keys
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read policy bundle {path}: {exc.strerror}") from exc
    try:
        return parse_bundle(data, keys)
    except PolicyError as exc:
        raise PolicyError(f"{path}: {exc}") from exc


def load_shelf(
    folder: Path, trusted_keys: Mapping[str, bytes], treating_admdvs: str | None = None
) -> PolicyShelf:
    """Verify and load every <admdvs>-<year>.json bundle in a folder.

    Each file must be named for the bundle it holds. With `treating_admdvs` (the terminal's area),
    every bundle must be its prefecture's: the treating-place shelf holds no other region's bundle.
    """
    if not folder.is_dir():
        raise PolicyError(f"policy folder {folder} does not exist")
    bundles = _bundles_in(folder, trusted_keys)
    if not bundles:
        raise PolicyError(f"policy folder {folder} holds no <admdvs>-<year>.json bundle")
    for path, bundle in bundles:
        if treating_admdvs is not None and bundle.admdvs != prefecture(treating_admdvs):
            raise PolicyError(
                f"{path}: bundle {bundle.bundle_id} is for region {bundle.admdvs}, not this terminal's "
                f"prefecture {prefecture(treating_admdvs)} ({treating_admdvs}); another region's bundle "
                f"belongs on the insured-place shelf, {folder / INSURED_FOLDER}"
            )
    return PolicyShelf([bundle for _, bundle in bundles])


def load_insured_shelf(folder: Path, trusted_keys: Mapping[str, bytes], treating_admdvs: str) -> PolicyShelf:
    """The insured-place shelf: every bundle in `<policies>/insured/` (none when the folder is absent).

    Each must be another region's than the terminal's prefecture (whose bundles live on the treating
    shelf) and pass the same signature and name checks; the high-water marks apply per bundle id.
    """
    shelf = folder / INSURED_FOLDER
    if not shelf.is_dir():
        return PolicyShelf([])
    bundles = _bundles_in(shelf, trusted_keys)
    for path, bundle in bundles:
        if bundle.admdvs == prefecture(treating_admdvs):
            raise PolicyError(
                f"{path}: bundle {bundle.bundle_id} is this terminal's own region's; it belongs on the "
                f"treating shelf, {folder}"
            )
    return PolicyShelf([bundle for _, bundle in bundles])


def _bundles_in(folder: Path, trusted_keys: Mapping[str, bytes]) -> list[tuple[Path, PolicyBundle]]:
    """Every <admdvs>-<year>.json bundle in a folder, verified, each named for the bundle it holds."""
    out = []
    for path in sorted(p for p in folder.iterdir() if BUNDLE_FILE.match(p.name)):
        bundle = load_bundle(path, trusted_keys)
        if path.name != f"{bundle.bundle_id}.json":
            raise PolicyError(
                f"{path}: holds bundle {bundle.bundle_id}, saved under another region or year's name"
            )
        out.append((path, bundle))
    return out


def load_catalog(path: Path) -> Catalog:
    """Read a catalogue JSON file; CatalogError when unreadable or malformed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError(f"cannot read catalogue {path}: {exc.strerror}") from exc
    return catalog_from_bytes(data)


def catalog_from_bytes(data: bytes) -> Catalog:
    """A catalogue file's contents: a national-format snapshot (`medpay catalogue sync`) or the engine's
    own format; CatalogError when malformed."""
    if NATIONAL_FORMAT.encode() in data[:200]:
        return to_catalog(parse_national(data))
    return parse_catalog(data)


DOWNLOADED_CATALOGUE = Path("catalogue") / "national.json"


def downloaded_catalogue_path(data_dir: Path) -> Path:
    """Where `medpay catalogue sync` keeps the catalogue it downloaded (national format)."""
    return data_dir / DOWNLOADED_CATALOGUE


def catalogue_in_use(data_dir: Path, configured: Path) -> Catalog:
    """The downloaded catalogue when the data folder holds one, else the configured file."""
    downloaded = downloaded_catalogue_path(data_dir)
    return load_catalog(downloaded if downloaded.exists() else configured)
