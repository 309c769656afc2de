"""Fetch signed policy bundles from the upstream; all verify or nothing is written."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from terminal.errors import PolicyError
from terminal.settlement.bundle import parse_bundle
from terminal.store.policy_files import BUNDLE_FILE
from terminal.uplink.client import HttpUplink
from terminal.uplink.wire import INFNO_DOWNLOAD

log = logging.getLogger(__name__)


def fetch_policy_bundles(
    link: HttpUplink,
    new_msgid: Callable[[datetime], str],
    at: datetime,
    folder: Path,
    trusted_keys: Mapping[str, bytes],
) -> list[str]:
    """Download every bundle the upstream offers, verify each, then install all; the names written."""
    listing = link.call(link.envelope(INFNO_DOWNLOAD, new_msgid(at), at, {"data": {"kind": "policy"}})).output
    verified: dict[str, bytes] = {}
    for name in listing.get("files", []):
        if not isinstance(name, str) or not BUNDLE_FILE.match(name):
            raise PolicyError(f"upstream offered a policy file with an unusable name: {name!r}")
        payload = {"data": {"kind": "policy", "filename": name}}
        document = link.call(link.envelope(INFNO_DOWNLOAD, new_msgid(at), at, payload)).output.get("document")
        data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
        bundle = parse_bundle(data, trusted_keys)  # PolicyError on a bad signature or schema: nothing written
        if name != f"{bundle.bundle_id}.json":
            raise PolicyError(f"upstream offered bundle {bundle.bundle_id} under the name {name}: refused")
        verified[name] = data
    # Only after every file verified: write each to a temp name, fsync, then rename into place.
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in verified.items():
        tmp = folder / f".{name}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / name)
        log.info("installed policy bundle %s", name)
    return sorted(verified)
