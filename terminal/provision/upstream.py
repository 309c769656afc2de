"""The provisioning steps that talk to the upstream: register, fetch policy bundles, first gallery sync.

Each is idempotent: registration (9000) answers the same registration again and the local record is
rewritten only when it differs; fetched bundles are verified (all of them, with the bundles already
installed) before any is written, and a bundle already installed is left alone; a gallery sync asks
for the delta since the version held, so a second run applies nothing. Every upstream failure is
re-raised as an UplinkError that says what went wrong and how to fix it.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

from terminal.app import build_terminal, build_uplink, refuse_development_keys, register_terminal
from terminal.config import TerminalConfig, TerminalSection
from terminal.errors import (
    GalleryDeltaError,
    PolicyError,
    UplinkAuthRequired,
    UplinkError,
    UplinkRefused,
    UplinkUnknownOutcome,
    UplinkUnreachable,
)
from terminal.ports import Clock
from terminal.provision.offline import install_settlement_files
from terminal.store.policy_files import load_trusted_keys
from terminal.uplink.gallery import sync_gallery
from terminal.uplink.policies import fetch_policy_bundles
from terminal.uplink.registration import record_registration
from terminal.uplink.signing import KEY_FILE
from terminal.uplink.sm_crypto import SM2_KEY_FILE

log = logging.getLogger("medpay.provision")

NO_UPSTREAM = "no upstream configured ([uplink] url); pass --upstream URL to {}"
OFFLINE = "--offline: nothing from the network; re-run without --offline once the upstream is reachable"
# the dev upstream's refusals: "registered with another public_key" (9000), "with another key" (9001)
_OTHER_KEY = re.compile(r"another [\w, ]*key\b")


def register_step(config: TerminalConfig, data_dir: Path, clock: Clock, offline: bool) -> tuple[str, str]:
    """9000 with the config's identity and this data folder's key; (status, detail)."""
    url = config.uplink.url
    if offline:
        return "skipped", OFFLINE
    if not url:
        return "skipped", NO_UPSTREAM.format("register this terminal")
    terminal = config.terminal
    with closing(build_terminal(config, data_dir, clock)) as term, _explained(url, terminal, "registration"):
        now = clock.now()
        msgid = term.ledger.allocate_msgid(now)
        registration = register_terminal(data_dir, terminal, url, now, msgid, config.uplink.timeout_s)
    changed = record_registration(data_dir, registration, url)
    detail = (
        f"{registration.get('terminal_id')} ({registration.get('fixmedins_code')}, area "
        f"{registration.get('admdvs')}) registered with {url} since {registration.get('registered_at')}"
    )
    return ("done" if changed else "unchanged"), detail


def fetch_policy_step(config: TerminalConfig, data_dir: Path, clock: Clock) -> list[str]:
    """Fetch every signed bundle the upstream offers, verify, install the changed ones; names written."""
    url = config.uplink.url
    if not url:
        return []
    settlement = config.settlement
    trusted = load_trusted_keys(settlement.trusted_keys)
    # Fetched into a private folder outside the terminal's: a killed run leaves nothing in `policies`.
    with tempfile.TemporaryDirectory(prefix="medpay-provision-policy-") as tmp:
        staging = Path(tmp)
        with (
            closing(build_terminal(config, data_dir, clock)) as term,
            closing(build_uplink(data_dir, config.terminal, url, config.uplink.timeout_s)) as link,
            _explained(url, config.terminal, "policy download"),
        ):
            new_msgid = term.ledger.allocate_msgid
            now = clock.now()
            link.sign_in(new_msgid(now), now)
            try:
                offered = fetch_policy_bundles(link, new_msgid, clock.now(), staging, trusted)
            except PolicyError as exc:
                raise PolicyError(
                    f"a policy bundle from {url} does not verify: {exc}; nothing was installed. The "
                    "bundle was altered on the way or signed by a key this terminal does not trust "
                    f"({settlement.trusted_keys}); check the network path and the trusted keys, then re-run"
                ) from exc
        log.info("upstream offers %s", ", ".join(offered) or "no policy bundles")
        # Verified again together with the installed bundles (no overlapping validity); unchanged
        # bundles are kept as they are, changed ones written to a temp name and renamed into place.
        return install_settlement_files(staging, settlement)


def gallery_step(config: TerminalConfig, data_dir: Path, clock: Clock, offline: bool) -> tuple[str, str]:
    """The gallery delta since the version held, verified and applied; (status, detail)."""
    url = config.uplink.url
    if offline:
        return "skipped", OFFLINE
    if not url:
        return "skipped", NO_UPSTREAM.format("sync the gallery")
    keys = config.uplink.gallery_trusted_keys
    if keys is None:
        return "skipped", (
            "no [uplink] gallery_trusted_keys: pass --gallery-keys FILE (the upstream's gallery key, "
            "shipped with this terminal's config); until then faces enrolled upstream are unknown here"
        )
    trusted = load_trusted_keys(keys)
    refuse_development_keys(config.terminal, trusted, "gallery")
    with (
        closing(build_terminal(config, data_dir, clock)) as term,
        closing(build_uplink(data_dir, config.terminal, url, config.uplink.timeout_s)) as link,
        _explained(url, config.terminal, "gallery sync"),
    ):
        new_msgid: Callable[[datetime], str] = term.ledger.allocate_msgid
        applied = sync_gallery(
            term.db, link, term.gallery, new_msgid, clock, trusted, config.uplink.gallery_delta_max_age_s
        )
        enrolled = term.gallery.size()
    if applied.upserted or applied.removed:
        return "done", (
            f"gallery v{applied.since} → v{applied.version}: {applied.upserted} added or updated, "
            f"{applied.removed} removed; {_people(enrolled)} enrolled"
        )
    return "unchanged", f"gallery v{applied.version} is current; {_people(enrolled)} enrolled"


def _people(count: int) -> str:
    return f"{count} {'person' if count == 1 else 'people'}"


@contextmanager
def _explained(url: str, terminal: TerminalSection, doing: str) -> Iterator[None]:
    try:
        yield
    except UplinkError as exc:
        raise UplinkError(f"{doing}: {exc}; fix: {_fix(exc, url, terminal)}") from exc


def _fix(exc: UplinkError, url: str, terminal: TerminalSection) -> str:
    """How a technician gets past an upstream failure."""
    text = str(exc)
    if isinstance(exc, UplinkUnreachable):
        return (
            f"check the network and that the upstream runs at {url} (--upstream URL sets [uplink] url); "
            "or provision without it (--offline FOLDER) and re-run once it is reachable"
        )
    if isinstance(exc, GalleryDeltaError):
        return (
            "nothing was applied; check that [uplink] gallery_trusted_keys holds this upstream's gallery "
            "key (--gallery-keys FILE) and the network path to it, then re-run"
        )
    if isinstance(exc, UplinkRefused) and _OTHER_KEY.search(text):
        return (
            f"terminal id {terminal.terminal_id} is registered with another signing key: another machine "
            f"uses this id, or this data folder's {SM2_KEY_FILE} / {KEY_FILE} are not the ones that "
            "registered. Give this "
            "terminal its own --terminal-id, restore the original data folder, or ask the upstream "
            "operator to release the old registration; then re-run"
        )
    if isinstance(exc, UplinkRefused) and "already registered with another" in text:
        return (
            f"the upstream holds {terminal.terminal_id} for another institution or area: correct "
            "--fixmedins-code / --admdvs, or ask the upstream operator to change the registration"
        )
    if isinstance(exc, UplinkRefused) and "not registered" in text:
        return "registration did not take; re-run `medpay-provision all` with --upstream URL"
    if isinstance(exc, UplinkRefused):
        return "correct what the upstream names (usually an answer such as --admdvs) and re-run"
    if isinstance(exc, UplinkAuthRequired):
        return (
            "the upstream does not accept this terminal's signature; re-run (it signs in again). If it "
            f"persists, the upstream holds another key for {terminal.terminal_id}: see the register step"
        )
    if isinstance(exc, UplinkUnknownOutcome):
        return (
            "HTTP 404 means a wrong --upstream URL (the base URL only, e.g. http://HOST:PORT); otherwise the "
            "answer was lost on the way; registration and downloads are safe to repeat: re-run"
        )
    return "see docs/provisioning.md, 'Upstream'"
