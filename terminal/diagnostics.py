"""Terminal self-checks for `medpay doctor`: each says what is wrong and how to fix it."""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

from firmware_bridge.printer import ReceiptPrinter
from firmware_bridge.probe import DEVICE_KINDS, DEVICE_NAMES, ProbeResult, ProbeStatus, probe_device
from terminal.app import Terminal, embedder_model_id, refuse_unsafe_production
from terminal.app.clock_guard import clock_line
from terminal.config import TerminalConfig, models_folder
from terminal.errors import KeyFileError, StoreCorruptError, StoreReadOnlyError, TerminalError
from terminal.store.audit_check import verify_all
from terminal.store.audit_heads import AuditHeadStore
from terminal.store.file_modes import loose_modes
from terminal.store.gallery import enrolled_count, gallery_version, last_gallery_sync
from terminal.store.health import quick_check, write_probe
from terminal.store.keys import read_key
from terminal.store.outbox_parked import ParkedEntries
from terminal.store.people import unreadable_people
from terminal.store.policy_files import load_trusted_keys
from terminal.store.templates import model_coverage, unreadable_templates
from terminal.uplink.registration import saved_registration
from terminal.uplink.signing import KEY_FILE, public_key_b64, uplink_keys
from terminal.uplink.sm_crypto import SM2_KEY_FILE
from terminal.vision.images import load_image
from terminal.vision.liveness.fusion import required_checks
from terminal.vision.manifest import load_manifest, verified_path, verify_manifest_signature

MIN_FREE_BYTES = 1 << 30
SELF_TEST_FACES = 6  # insightface's t1.jpg
RESTORE_FIX = "settling is refused: restore the last good backup with `medpay restore` (docs/operations.md)"
WRITABLE_FIX = "make the data folder writable (permissions, a read-only or full mount), then restart"
DEVICE_KEY_FIX = "put keys/device.key back from the key backup (`medpay restore --keys-from`), chmod 600"
REGISTER_FIX = "run `medpay-provision all --upstream URL` (its register step registers this terminal)"


@dataclass(frozen=True)
class Check:
    """One diagnostic result."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _run(name: str, probe: Callable[[], str], fix: str) -> Check:
    try:
        return Check(name, True, probe())
    except StoreReadOnlyError as exc:
        return Check(name, False, str(exc), WRITABLE_FIX)
    except TerminalError as exc:
        return Check(name, False, str(exc), fix)
    except OSError as exc:
        return Check(name, False, f"{type(exc).__name__}: {exc}", fix)


def run_checks(terminal: Terminal, devices: list[Check] | None = None) -> list[Check]:
    """Every check, in the order a technician would fix things.

    `devices`: the reader and printer checks made beforehand (device_checks), so a caller holding the
    terminal's lock does not hold it while ports are probed; probed here when None.
    """
    if devices is None:
        devices = device_checks(terminal.config)
    return [
        _run("machine", _machine, ""),
        _run("disk", lambda: _disk(terminal.data_dir), "free space on the data folder's disk"),
        _run("template key", lambda: _key(terminal), "run `medpay-provision init` or `chmod 600` the key"),
        _run("device key", lambda: _device_key(terminal), DEVICE_KEY_FIX),
        modes_check(terminal),
        _run("models", lambda: _models(terminal), "run `medpay-provision models`"),
        _run("integrity", lambda: _integrity(terminal), RESTORE_FIX),
        _run("write probe", lambda: _write_probe(terminal), WRITABLE_FIX),
        _run("database", lambda: _database(terminal), RESTORE_FIX),
        _run("policy", lambda: _policy(terminal), "install this year's signed bundle in config/policies"),
        _run("catalogue", lambda: f"{len(terminal.catalog.items)} items", "check settlement.catalog"),
        _run("production bounds", lambda: _bounds(terminal), "change each key named (docs/operations.md)"),
        _run(
            "clock",
            lambda: clock_line(terminal.clock_guard, terminal.db),
            "set the time (NTP), then run `medpay sync`",
        ),
        upstream_check(terminal),
        outbox_check(terminal),
        audit_head_check(terminal),
        gallery_check(terminal),
        templates_check(terminal),
        _run(
            "liveness",
            lambda: _liveness(terminal),
            "`medpay-provision models --packs`, or disable the pack",
        ),
        *devices,
        _run("face self-test", lambda: _self_test(terminal), "run `medpay-provision models`; check the CPU"),
    ]


def device_checks(config: TerminalConfig) -> list[Check]:
    """The serial readers and the receipt printer (each probe waits on its port for up to a second)."""
    return [*(_device_check(result) for result in probe_devices(config)), printer_check(config)]


def upstream_check(terminal: Terminal) -> Check:
    """Whether this terminal is registered, as configured, with its upstream (from the local record)."""
    try:
        return _upstream(terminal)
    except TerminalError as exc:
        return Check("upstream", False, str(exc), REGISTER_FIX)


def _upstream(terminal: Terminal) -> Check:
    name = "upstream"
    url = terminal.config.uplink.url
    if not url:
        return Check(name, True, "not configured ([uplink] url unset): settles without an upstream")
    saved = saved_registration(terminal.data_dir)
    if saved is None:
        return Check(name, False, f"not registered with {url}", REGISTER_FIX)
    ident = terminal.config.terminal
    wanted = {
        "url": url,
        "terminal_id": ident.terminal_id,
        "fixmedins_code": ident.fixmedins_code,
        "admdvs": ident.mdtrtarea_admvs,
    }
    differs = sorted(k for k, v in wanted.items() if saved.get(k) != v)
    if differs:
        held = ", ".join(f"{k} {saved.get(k)}" for k in differs)
        config_says = ", ".join(f"{k} {wanted[k]}" for k in differs)
        return Check(
            name, False, f"registered with {held}; the config says otherwise ({config_says})", REGISTER_FIX
        )
    wrong = _unregistered_keys(terminal.data_dir, saved)
    if wrong:
        return Check(
            name,
            False,
            f"{' and '.join(str(f) for f in wrong)} {'is' if len(wrong) == 1 else 'are'} not the key"
            f"{'' if len(wrong) == 1 else 's'} registered with {url}",
            "restore the data folder the terminal was registered from, or ask the upstream operator to "
            "release the registration and run `medpay-provision all`",
        )
    return Check(name, True, f"{ident.terminal_id} registered with {url} since {saved.get('registered_at')}")


def _unregistered_keys(data_dir: Path, saved: Mapping[str, Any]) -> list[Path]:
    """Uplink key files missing or not those the registration names (SM2 envelope, Ed25519 artefacts)."""
    sm2_file, ed_file = data_dir / SM2_KEY_FILE, data_dir / KEY_FILE
    # Read only when present: uplink_keys would create a missing key, and doctor changes nothing.
    if not (sm2_file.exists() and ed_file.exists()):
        return [f for f in (sm2_file, ed_file) if not f.exists()]
    keys = uplink_keys(data_dir)
    wrong = [sm2_file] if keys.envelope.public_hex != saved.get("public_key") else []
    return wrong + ([ed_file] if public_key_b64(keys.artefacts) != saved.get("artefact_key") else [])


def outbox_check(terminal: Terminal) -> Check:
    """Outbox entries parked for a technician (never sent until re-queued or voided), and the queue."""
    name = "outbox"
    try:
        facts = terminal.outbox.uplink_facts()
        parked = ParkedEntries(terminal.db).entries(limit=5)
    except TerminalError as exc:
        return Check(name, False, str(exc), "restore the data folder from backup; see docs")
    queue = f"{facts.queued} waiting for delivery"
    if facts.down_since is not None:
        queue += f"; upstream failing since {facts.down_since:%Y-%m-%d %H:%M} UTC (offline limits apply)"
    if not parked:
        return Check(name, True, f"{queue}; none parked")
    shown = "; ".join(f"{row['msgid']}: {row['last_error']}" for row in parked)
    return Check(
        name,
        False,
        f"{facts.parked} parked ({shown}); {queue}",
        "`medpay outbox list`, then `medpay outbox requeue MSGID` once the cause is fixed, or"
        " `medpay outbox void MSGID --reason …` (docs/uplink.md, Parked entries)",
    )


def audit_head_check(terminal: Terminal) -> Check:
    """The last audit chain head sent upstream: a refusal means the upstream saw the log go back or fork."""
    name = "audit head"
    try:
        report = AuditHeadStore(terminal.db).last_report()
    except TerminalError as exc:
        return Check(name, False, str(exc), RESTORE_FIX)
    if report is None:
        return Check(name, True, "not reported upstream yet")
    if report.accepted:
        return Check(name, True, report.describe())
    fix = "run `medpay audit verify`; the insurance centre holds the heads it received: ask it to review"
    return Check(name, False, report.describe(), fix)


def gallery_check(terminal: Terminal) -> Check:
    """The gallery version held and how long ago a delta was applied."""
    name = "gallery"
    uplink = terminal.config.uplink
    if not uplink.url or uplink.gallery_trusted_keys is None:
        return Check(name, True, "not synced from an upstream (no [uplink] url or gallery_trusted_keys)")
    sync = "check the network to the upstream, then run `medpay sync`"
    keys = uplink.gallery_trusted_keys
    if not keys.is_file():
        # Without the key every delta is refused: the gallery can only grow stale from here.
        return Check(
            name,
            False,
            f"gallery key file {keys} is missing",
            "copy the upstream operator's gallery key file there, or run `medpay-provision all "
            "--gallery-keys FILE`",
        )
    now = terminal.clock.now()
    synced = last_gallery_sync(terminal.db, now.tzinfo or UTC)
    if synced is None:
        return Check(name, False, "never synced from the upstream", sync)
    version = gallery_version(terminal.db)
    age = max(now - synced, timedelta(0))
    detail = f"v{version}, last synced {_age(age)} ago ({synced:%Y-%m-%d %H:%M})"
    # Beyond the offline limit the kiosk already refuses offline settlements; the gallery is as stale.
    if age > timedelta(hours=uplink.offline_max_age_h):
        limit = f"more than offline_max_age_h = {uplink.offline_max_age_h} h"
        return Check(name, False, f"{detail}, {limit}", sync)
    return Check(name, True, detail)


REENROL_FIX = (
    "re-enrol them for the running model: `medpay enroll --person-id P --image PHOTO [--image PHOTO …]` "
    "for people enrolled here, at the upstream's enrolment desk (then `medpay sync`) for synced ones; "
    "until then they pay by QR code, card or ID (docs/identity.md, Changing the embedder)"
)


def templates_check(terminal: Terminal) -> Check:
    """Enrolled people the running embedder's model can recognise, those it cannot, and sealed rows intact."""
    name = "templates"
    try:
        model_id = embedder_model_id(terminal.config)
        coverage = model_coverage(terminal.db, model_id)
    except TerminalError as exc:
        return Check(name, False, str(exc), "run `medpay-provision models`")
    detail = f"model {model_id}: {coverage.enrolled} people enrolled"
    try:
        cipher = terminal.cipher
    except TerminalError:
        cipher = None  # the template key check says why; the counts above need no key
    broken = unreadable_templates(terminal.db, cipher) if cipher is not None else []
    if broken:
        return Check(
            name,
            False,
            f"{detail}; {len(broken)} templates fail authentication: {', '.join(broken[:3])}",
            "the rows were altered or the key is not this database's: restore the data folder from backup",
        )
    if coverage.without:
        others = ", ".join(f"{model} {count}" for model, count in coverage.other_models.items())
        return Check(
            name,
            False,
            f"{detail}; {coverage.without} enrolled people have no template for it (other models: {others})",
            REENROL_FIX,
        )
    return Check(name, True, detail)


def _age(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def probe_devices(config: TerminalConfig, listen: float = 1.0) -> list[ProbeResult]:
    """Probe every reader kind: the configured ones on their URL, the others reported as not configured."""
    results = []
    for kind in DEVICE_KINDS:
        device = getattr(config.devices, kind)
        if device is None:
            results.append(probe_device(kind, None))
        else:
            results.append(probe_device(kind, device.url, device.baudrate, listen=listen))
    return results


def printer_check(config: TerminalConfig) -> Check:
    """The receipt printer answers its status request (or is not fitted: receipts show on screen)."""
    device = config.devices.printer
    if device is None:
        return Check("receipt printer", True, "not configured: receipts are shown on screen only")
    found = ReceiptPrinter(device.url, baudrate=device.baudrate).check()
    status = "" if found.status is ProbeStatus.OK else f"{found.status}: "
    return Check(
        "receipt printer", found.status is ProbeStatus.OK, f"{device.url}: {status}{found.detail}", found.fix
    )


def _device_check(result: ProbeResult) -> Check:
    where = f"{result.url}: " if result.url else ""
    status = "" if result.status is ProbeStatus.OK else f"{result.status}: "
    detail = f"{where}{status}{result.detail}"
    return Check(DEVICE_NAMES[result.kind], result.ok, detail, result.fix)


def _bounds(terminal: Terminal) -> str:
    if terminal.config.terminal.mode != "production":
        return "demo mode: production's bounds are not applied"
    refuse_unsafe_production(terminal.config)
    return "threshold, face pause, loopback service, https upstream and HIS: within bounds"


def _machine() -> str:
    return f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs"


def _disk(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        raise TerminalError(f"only {free // (1 << 20)} MiB free under {folder}")
    return f"{free // (1 << 30)} GiB free under {folder}"


def _key(terminal: Terminal) -> str:
    read_key(terminal.data_dir)
    return "present, owner-only"


def _device_key(terminal: Terminal) -> str:
    unreadable = unreadable_people(terminal.db, terminal.device_keys)
    if unreadable:
        raise KeyFileError(
            f"{len(unreadable)} sealed people do not open under this device key (e.g. {unreadable[0]})"
        )
    return "present, owner-only; every sealed person opens"


def modes_check(terminal: Terminal) -> Check:
    """The data folder 0700 and every file in it 0600 (`medpay doctor --fix-modes` tightens them)."""
    loose = loose_modes(terminal.data_dir)
    if not loose:
        return Check("file modes", True, f"{terminal.data_dir} and everything in it owner-only")
    more = f" and {len(loose) - 3} more" if len(loose) > 3 else ""
    detail = "; ".join(item.describe() for item in loose[:3]) + more
    return Check("file modes", False, f"open to other users: {detail}", "run `medpay doctor --fix-modes`")


def _models(terminal: Terminal) -> str:
    models_dir = models_folder(terminal.config)
    # The list first: a sha256 list nobody signed proves nothing about the files (issue 17).
    key_id = verify_manifest_signature(models_dir, load_trusted_keys(terminal.config.settlement.trusted_keys))
    manifest = load_manifest(models_dir)
    names = [verified_path(models_dir, entry).name for entry in manifest.model if entry.default]
    return f"manifest signed by key {key_id}; {len(names)} default models verified (sha256)"


def _integrity(terminal: Terminal) -> str:
    problems = quick_check(terminal.db)
    if problems:
        raise StoreCorruptError(f"{len(problems)} problems: " + "; ".join(problems[:3]))
    return "quick_check ok"


def _write_probe(terminal: Terminal) -> str:
    failure = write_probe(terminal.db, terminal.data_dir)
    if failure is not None:
        raise StoreReadOnlyError(failure)
    return f"database and {terminal.data_dir} take writes"


def _database(terminal: Terminal) -> str:
    problems = verify_all(terminal.db)
    if problems:
        more = f" (and {len(problems) - 3} more: run `medpay audit verify`)" if len(problems) > 3 else ""
        raise TerminalError("; ".join(problems[:3]) + more)
    # counted in SQL without the template key: this check must not depend on the key check
    enrolled = enrolled_count(terminal.db)
    pending = terminal.outbox.counts().get("pending", 0)
    return f"audit chain intact, ledger agrees with it; {enrolled} people enrolled; outbox {pending} pending"


def _policy(terminal: Terminal) -> str:
    today = terminal.clock.now().date()
    bundle = terminal.policies.for_date(today)
    note = " (PLACEHOLDER parameters)" if bundle.placeholder else ""
    return f"{bundle.bundle_id} v{bundle.version} prices today{note}"


def _liveness(terminal: Terminal) -> str:
    cfg = terminal.config.liveness
    if cfg.passive.enabled:
        models_dir = models_folder(terminal.config)
        manifest = load_manifest(models_dir)
        for entry in manifest.model:
            if entry.source.kind == "local-pack":
                verified_path(models_dir, entry)
    return f"profile {cfg.profile}; required checks: {', '.join(required_checks(cfg))}"


def _self_test(terminal: Terminal) -> str:
    import insightface

    from terminal.domain import Frame

    image = load_image(Path(os.path.dirname(insightface.__file__)) / "data" / "images" / "t1.jpg")
    found = terminal.face_stage.observe(Frame(image, "self-test", terminal.clock.now()))
    if len(found) != SELF_TEST_FACES:
        raise TerminalError(f"found {len(found)} faces in the test image, expected {SELF_TEST_FACES}")
    return f"{len(found)} faces found and embedded"
