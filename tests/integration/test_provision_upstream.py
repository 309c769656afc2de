"""medpay-provision against the real reference upstream on loopback: register, policy, first gallery sync."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from numpy.typing import NDArray

from devkit.serving import ServerThread, refusing_port
from devkit.upstream.state import Upstream
from terminal.app import Terminal, register_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import face_crop
from terminal.domain import Frame
from terminal.provision.config_file import Answers
from terminal.provision.main import Options, StepResult, provision_all
from terminal.store.db import DB_NAME, open_db
from terminal.store.gallery import SqliteGallery, gallery_version
from terminal.store.keys import TemplateCipher, read_key
from terminal.uplink.gallery import wire_template
from terminal.uplink.registration import REGISTRATION_FILE, saved_registration
from terminal.uplink.signing import public_key_b64, uplink_keys
from terminal.vision.images import load_image
from tests.conftest import REPO, insightface_image
from tests.fakes import SteppingClock
from tests.integration.uplink_kit import PEOPLE, set_faults

pytestmark = pytest.mark.usefixtures("require_models")

# demo mode: the reference upstream serves the shipped placeholder bundles, signed with the development key
IDENTITY = Answers(mode="demo", terminal_id="KIOSK-0042", fixmedins_code="H43030400042", admdvs="430304")
SHIPPED_BUNDLES = sorted(p.name for p in (REPO / "config" / "policies").glob("4*.json"))


def _gallery_keys(url: str, folder: Path) -> Path:
    """The upstream's gallery-delta key as a trusted-keys file (in the field it ships with the config)."""
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.get("/admin/gallery/key")
        reply.raise_for_status()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gallery_keys.json"
    path.write_bytes(reply.content)
    return path


def _options(tmp_path: Path, url: str, gallery_keys: Path | None = None) -> Options:
    answers = replace(
        IDENTITY, upstream_url=url, gallery_keys=gallery_keys, policies=tmp_path / "etc" / "policies"
    )
    return Options(tmp_path / "etc" / "terminal.toml", tmp_path / "kiosk", answers, clock=SteppingClock())


def _by_step(results: list[StepResult]) -> dict[str, StepResult]:
    return {r.step: r for r in results}


def _statuses(results: list[StepResult]) -> dict[str, str]:
    return {r.step: r.status for r in results}


def _real_template(terminal: Terminal, index: int) -> NDArray[np.float32]:
    """The dlib template of one face in t1.jpg, computed by the real models (as an enrolment desk would)."""
    image = load_image(insightface_image("t1.jpg"))
    faces = terminal.face_stage.observe(Frame(image, "test", terminal.clock.now()))
    box = faces[index].box
    crop = face_crop(image, (box.x1, box.y1, box.x2, box.y2), 0.6)
    return terminal.face_stage.observe_primary(Frame(crop, "test", terminal.clock.now())).template


def _enrol(url: str, psn_no: str, template: NDArray[np.float32], model_id: str) -> int:
    body = {
        "psn_no": psn_no,
        "consent": {
            "granted_at": "2025-05-20T10:00:00+08:00",
            "purpose": "刷脸就医身份核验",
            "operator": "enrol-desk-3",
            "text": "本人同意在本院自助机上保存并使用本人人脸特征用于医保结算身份核验。",
        },
        "templates": [wire_template(template, model_id)],
    }
    with httpx.Client(base_url=url, timeout=5) as client:
        reply = client.post("/admin/gallery/enrol", json=body)
        reply.raise_for_status()
        return int(reply.json()["version"])


def _snapshot(tmp_path: Path) -> dict[str, bytes]:
    """Config, policies, keys and the registration record (the database records each check it makes)."""
    files = [*sorted((tmp_path / "etc").rglob("*")), *sorted((tmp_path / "kiosk").rglob("*"))]
    return {str(p): p.read_bytes() for p in files if p.is_file() and not p.name.startswith(DB_NAME)}


def test_provisioning_registers_fetches_policy_syncs_the_gallery_and_a_rerun_changes_nothing(
    tmp_path: Path, terminal: Terminal, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    template = _real_template(terminal, 0)
    model_id = terminal.face_stage.embedder.model_id
    version = _enrol(server.url, PEOPLE[0].psn_no, template, model_id)
    options = _options(tmp_path, server.url, _gallery_keys(server.url, tmp_path / "etc"))

    first = _by_step(provision_all(options))

    assert _statuses(list(first.values())) == {
        "machine": "done",
        "data folder": "done",
        "config": "done",
        "models": "unchanged",
        "register": "done",
        "policy": "done",
        "gallery": "done",
        "devices": "skipped",
        "self-test": "done",
    }, first
    kiosk = tmp_path / "kiosk"
    [registration] = up.registrations()
    assert registration["opter"] == "KIOSK-0042" and registration["admdvs"] == "430304"
    keys = uplink_keys(kiosk)
    assert registration["public_key"] == keys.envelope.public_hex
    assert registration["artefact_key"] == public_key_b64(keys.artefacts)
    assert f"KIOSK-0042 (H43030400042, area 430304) registered with {server.url}" in first["register"].detail
    saved = saved_registration(kiosk)
    assert saved is not None and saved["url"] == server.url
    assert sorted(p.name for p in (tmp_path / "etc" / "policies").iterdir()) == SHIPPED_BUNDLES
    assert first["policy"].detail.startswith(f"installed {', '.join(SHIPPED_BUNDLES)} from {server.url}")
    assert (
        first["gallery"].detail
        == f"gallery v0 → v{version}: 1 added or updated, 0 removed; 1 person enrolled"
    )
    db = open_db(kiosk)
    try:
        gallery = SqliteGallery(db, TemplateCipher(read_key(kiosk)), SteppingClock())
        assert gallery_version(db) == version
        assert np.array_equal(gallery.templates_of(PEOPLE[0].psn_no, model_id)[0], template)
    finally:
        db.close()

    before = _snapshot(tmp_path)
    again = _by_step(provision_all(options))

    assert {s: again[s].status for s in ("data folder", "config", "register", "policy", "gallery")} == {
        "data folder": "unchanged",
        "config": "unchanged",
        "register": "unchanged",
        "policy": "unchanged",
        "gallery": "unchanged",
    }, again
    assert again["gallery"].detail == f"gallery v{version} is current; 1 person enrolled"
    assert _snapshot(tmp_path) == before
    assert up.registrations() == [registration], "the upstream's registration is untouched"

    # A later run applies only what changed upstream since.
    newer = _enrol(server.url, PEOPLE[1].psn_no, _real_template(terminal, 1), model_id)
    third = _by_step(provision_all(options))
    assert third["gallery"].status == "done"
    assert (
        third["gallery"].detail
        == f"gallery v{version} → v{newer}: 1 added or updated, 0 removed; 2 people enrolled"
    )


def test_an_unreachable_upstream_fails_registration_with_a_fix(tmp_path: Path) -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}"
        results = provision_all(_options(tmp_path, url))
    failed = results[-1]
    assert (failed.step, failed.status) == ("register", "failed"), results
    assert "unreachable" in failed.detail
    assert f"fix: check the network and that the upstream runs at {url}" in failed.detail
    assert "--offline FOLDER" in failed.detail
    assert not (tmp_path / "kiosk" / REGISTRATION_FILE).exists()


def test_a_run_stopped_by_an_upstream_outage_completes_when_rerun(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    options = _options(tmp_path, server.url)
    set_faults(server.url, down=True)
    first = _by_step(provision_all(options))
    assert first["register"].status == "failed" and "503" in first["register"].detail
    assert "policy" not in first and not (tmp_path / "etc" / "policies").exists()

    set_faults(server.url, down=False)
    again = _statuses(provision_all(options))

    assert again["config"] == "unchanged" and again["register"] == "done" and again["policy"] == "done"
    assert again["self-test"] == "done"


def test_an_upstream_holding_the_terminal_id_with_another_key_refuses_and_says_how_to_fix(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    up, server = upstream
    other = load(DEFAULT_CONFIG).terminal.model_copy(
        update={
            "terminal_id": IDENTITY.terminal_id,
            "fixmedins_code": IDENTITY.fixmedins_code,
            "mdtrtarea_admvs": IDENTITY.admdvs,
        }
    )
    at = SteppingClock().now()
    register_terminal(tmp_path / "other-machine", other, server.url, at, f"H43030400042{at:%Y%m%d%H%M%S}0001")

    results = provision_all(_options(tmp_path, server.url))

    failed = results[-1]
    assert (failed.step, failed.status) == ("register", "failed"), results
    assert "already registered with another artefact_key, public_key" in failed.detail
    assert "fix: terminal id KIOSK-0042 is registered with another signing key" in failed.detail
    assert "--terminal-id" in failed.detail
    assert [r["public_key"] for r in up.registrations()] == [
        uplink_keys(tmp_path / "other-machine").envelope.public_hex
    ]
    assert not (tmp_path / "kiosk" / REGISTRATION_FILE).exists()


def test_a_tampered_policy_bundle_is_refused_whole_and_a_rerun_installs_the_genuine_ones(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    options = _options(tmp_path, server.url)
    set_faults(server.url, tamper=True)
    first = _by_step(provision_all(options))
    assert first["register"].status == "done"
    assert first["policy"].status == "failed"
    assert "does not verify" in first["policy"].detail and "nothing was installed" in first["policy"].detail
    policies = tmp_path / "etc" / "policies"
    assert not policies.exists() or not list(policies.iterdir())

    set_faults(server.url, tamper=False)
    again = _by_step(provision_all(options))
    assert again["register"].status == "unchanged" and again["policy"].status == "done"
    assert sorted(p.name for p in policies.iterdir()) == SHIPPED_BUNDLES


def test_without_gallery_keys_the_gallery_step_is_skipped_and_says_what_to_pass(
    tmp_path: Path, upstream: tuple[Upstream, ServerThread]
) -> None:
    _, server = upstream
    results = _by_step(provision_all(_options(tmp_path, server.url)))
    assert results["register"].status == "done"
    assert results["gallery"].status == "skipped" and "--gallery-keys FILE" in results["gallery"].detail


def test_without_an_upstream_register_and_gallery_are_skipped(tmp_path: Path) -> None:
    options = Options(tmp_path / "terminal.toml", tmp_path / "kiosk", IDENTITY)
    results = _by_step(provision_all(options))
    for step in ("register", "gallery"):
        assert results[step].status == "skipped"
        assert results[step].detail.startswith("no upstream configured ([uplink] url)")
    assert results["self-test"].status == "done"
