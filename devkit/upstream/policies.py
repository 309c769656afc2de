"""Policy bundle downloads (9102) from the reference upstream, optionally tampered with."""

from __future__ import annotations

import json
from typing import Any

from devkit.upstream.replies import Refusal, ok
from devkit.upstream.state import Upstream
from terminal.store.policy_files import BUNDLE_FILE
from terminal.uplink.wire import Request as Envelope


def download(upstream: Upstream, env: Envelope) -> dict[str, Any]:
    """The list of policy files, or one signed policy document when data.filename names it."""
    data = env.input.get("data", {})
    folder = upstream.policy_folder
    if data.get("kind") != "policy" or folder is None:
        raise Refusal("only policy bundles are offered for download")
    names = sorted(p.name for p in folder.iterdir() if BUNDLE_FILE.match(p.name))
    name = data.get("filename")
    if name is None:
        return ok(env.msgid, {"files": names})
    if name not in names:
        raise Refusal(f"no policy file {name}")
    document = json.loads((folder / name).read_text(encoding="utf-8"))
    if upstream.faults.tamper:
        # A man in the middle raising one figure: the signature no longer matches the bundle.
        document["bundle"]["version"] = f"{document['bundle']['version']}-tampered"
    return ok(env.msgid, {"filename": name, "document": document})
