"""Policy bundles and the catalogue from an offline folder: every file verified before any is installed.

The folder (docs/provisioning.md) holds the model source archives, signed `<admdvs>-<year>.json` policy
bundles, optionally `catalog.json` (and the shop's EAN-13 table `catalog.ean13.json`, installed beside it),
and `SHA256SUMS` (`sha256sum` output). A bundle must carry a signature by a key in the terminal's
trusted-keys file (the folder cannot bring its own keys); the catalogue and the shop table are unsigned, so
SHA256SUMS must list them, which catches a damaged copy on the stick.

Bundles fetched from the upstream go through the same installer from a private staging folder
(terminal/provision/upstream.py); a bundle already installed as the same JSON document is left alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from terminal.config import SettlementConfig
from terminal.errors import PolicyError, TerminalError
from terminal.settlement.bundle import parse_bundle
from terminal.settlement.catalog import CatalogError
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.shelf import PolicyShelf
from terminal.store.policy_files import (
    BUNDLE_FILE,
    catalog_from_bytes,
    load_bundle,
    load_catalog,
    load_shelf,
    load_trusted_keys,
)
from terminal.store.shop_codes import parse_shop_codes, shop_codes_path

log = logging.getLogger("medpay.provision")

CHECKSUMS = "SHA256SUMS"
CATALOG_FILE = "catalog.json"
_SUM_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def read_checksums(folder: Path) -> dict[str, str]:
    """File name → sha256 from the folder's SHA256SUMS (empty when there is none)."""
    path = folder / CHECKSUMS
    if not path.is_file():
        return {}
    sums = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        match = _SUM_LINE.match(line)
        if match is None:
            raise TerminalError(f"{path}:{number}: not a `sha256sum` line; regenerate it with sha256sum")
        sums[match.group(2)] = match.group(1).lower()
    return sums


def install_settlement_files(folder: Path, settlement: SettlementConfig) -> list[str]:
    """Verify the folder's bundles and catalogue, then install them; the file names written."""
    if not folder.is_dir():
        raise TerminalError(f"offline folder {folder} does not exist; mount the stick or fix the path")
    keys = load_trusted_keys(settlement.trusted_keys)
    sums = read_checksums(folder)
    staged: list[tuple[Path, bytes]] = []
    incoming: dict[str, PolicyBundle] = {}
    for path in sorted(p for p in folder.iterdir() if BUNDLE_FILE.match(p.name)):
        data = path.read_bytes()
        _check_sum(path, data, sums, PolicyError)
        try:
            bundle = parse_bundle(data, keys)
        except PolicyError as exc:
            raise PolicyError(f"{path}: {exc}; nothing was installed") from exc
        if path.name != f"{bundle.bundle_id}.json":
            raise PolicyError(f"{path} holds bundle {bundle.bundle_id}; name it {bundle.bundle_id}.json")
        incoming[path.name] = bundle
        staged.append((settlement.policies / path.name, data))
    catalog = folder / CATALOG_FILE
    if catalog.is_file():
        data = catalog.read_bytes()
        if CATALOG_FILE not in sums:
            raise CatalogError(
                f"{catalog} is not listed in {folder / CHECKSUMS}; add it (`sha256sum {CATALOG_FILE} >> "
                f"{CHECKSUMS}` where the catalogue was exported) and copy the folder again"
            )
        _check_sum(catalog, data, sums, CatalogError)
        try:
            catalog_from_bytes(data)
        except CatalogError as exc:
            raise CatalogError(f"{catalog}: {exc}; nothing was installed") from exc
        staged.append((settlement.catalog, data))
    staged.extend(_shop_codes(folder, sums, settlement))
    _check_shelf(settlement.policies, incoming, keys)
    # Only now, with every file verified: write each to a temp name, fsync, rename into place.
    written = []
    for target, data in staged:
        if _already_installed(target, data):
            continue
        _write_atomic(target, data)
        written.append(target.name)
        log.info("installed %s", target)
    return written


def verify_settlement(settlement: SettlementConfig, today: date) -> str:
    """Check the installed bundles (signatures, one prices today) and catalogue; a summary line."""
    shelf = load_shelf(settlement.policies, load_trusted_keys(settlement.trusted_keys))
    bundle = shelf.for_date(today)
    catalog = load_catalog(settlement.catalog)
    note = " (PLACEHOLDER parameters)" if bundle.placeholder else ""
    return f"{bundle.bundle_id} v{bundle.version} prices today{note}; catalogue {catalog.catalog_id}"


def _already_installed(target: Path, data: bytes) -> bool:
    """Whether target holds data already, byte for byte or as the same JSON document."""
    if not target.is_file():
        return False
    held = target.read_bytes()
    if held == data:
        return True
    # A bundle fetched from the upstream is re-serialised; the installed copy of the same signed
    # document is kept rather than rewritten, so a re-run changes nothing.
    try:
        return bool(json.loads(held) == json.loads(data))
    except ValueError:
        return False


def _shop_codes(
    folder: Path, sums: Mapping[str, str], settlement: SettlementConfig
) -> list[tuple[Path, bytes]]:
    """The shop's EAN-13 table (`catalog.ean13.json`), checked like the catalogue, to go beside it."""
    path = shop_codes_path(folder / CATALOG_FILE)
    if not path.is_file():
        return []
    data = path.read_bytes()
    if path.name not in sums:
        raise CatalogError(f"{path} is not listed in {folder / CHECKSUMS}; add it and copy the folder again")
    _check_sum(path, data, sums, CatalogError)
    parse_shop_codes(data, str(path))
    return [(shop_codes_path(settlement.catalog), data)]


def _check_sum(path: Path, data: bytes, sums: Mapping[str, str], error: type[TerminalError]) -> None:
    expected = sums.get(path.name)
    if expected is None:
        return
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise error(
            f"{path} has sha256 {actual[:12]}…, {CHECKSUMS} says {expected[:12]}…: a damaged or altered "
            "copy; nothing was installed. Copy the folder again"
        )


def _check_shelf(policies: Path, incoming: Mapping[str, PolicyBundle], keys: Mapping[str, bytes]) -> None:
    """The bundles kept plus the incoming ones must not overlap in time."""
    kept: list[PolicyBundle] = []
    if policies.is_dir():
        for path in sorted(policies.iterdir()):
            if BUNDLE_FILE.match(path.name) and path.name not in incoming:
                kept.append(load_bundle(path, keys))
    try:
        PolicyShelf([*kept, *incoming.values()])
    except PolicyError as exc:
        raise PolicyError(f"{exc}; remove the older bundle from {policies}; nothing was installed") from exc


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
