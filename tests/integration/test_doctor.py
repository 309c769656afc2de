"""`medpay doctor` on a healthy terminal and on a broken one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest

from firmware_bridge.simulate import CardSimulator, TcpEndpoint
from terminal.app import build_terminal, embedder_model_id
from terminal.config import DEFAULT_CONFIG, load
from terminal.diagnostics import Check, gallery_check, templates_check, upstream_check
from terminal.domain import Consent
from terminal.provision.config_file import Answers, write_config
from terminal.provision.main import provision_init
from terminal.provision.upstream import gallery_step, register_step
from terminal.store.keys import key_path
from terminal.uplink.gallery import wire_template
from terminal.uplink.signing import KEY_FILE, terminal_key
from terminal.uplink.sm_crypto import SM2_KEY_FILE, sm2_key
from tests.fakes import FixedClock
from tests.integration.test_cli import medpay
from tests.integration.uplink_kit import PEOPLE, start_upstream

IDENTITY = Answers(terminal_id="KIOSK-0042", fixmedins_code="H43010500042", admdvs="430105")


@pytest.mark.usefixtures("require_models")
def test_doctor_passes_on_a_provisioned_terminal(data_dir: Path) -> None:
    result = medpay("doctor", data_dir=data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    assert "6 faces found" in result.stdout


@pytest.mark.usefixtures("require_models")
def test_doctor_names_an_open_key_file_and_the_fix(data_dir: Path) -> None:
    key_path(data_dir).chmod(0o644)
    result = medpay("doctor", data_dir=data_dir)
    assert result.returncode == 1
    assert "FAIL template key" in result.stdout
    assert "chmod 600" in result.stdout


def test_doctor_probes_each_configured_reader_and_names_the_fix(data_dir: Path, tmp_path: Path) -> None:
    endpoint = TcpEndpoint()
    endpoint.start()
    CardSimulator(endpoint)
    config = tmp_path / "terminal.toml"
    write_config(config, Answers(card=endpoint.url, qr=str(tmp_path / "ttyQR-unplugged")))
    try:
        result = medpay("doctor", data_dir=data_dir, config=config)
    finally:
        endpoint.stop()
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    card = next(line for line in lines if "card reader" in line)
    assert card.startswith("ok   card reader") and "firmware 'MEDPAY-SIM-CARD 1.0'" in card
    qr = lines.index(next(line for line in lines if "QR scanner" in line))
    assert lines[qr].startswith("FAIL QR scanner") and "unreachable" in lines[qr]
    assert "fix: check the cable" in lines[qr + 1]
    assert any(line.startswith("ok   barcode scanner not configured") for line in lines)


# --- upstream registration and gallery age (against the real reference upstream on loopback) -----


@dataclass(frozen=True)
class Registered:
    """A terminal the provisioning steps registered and gallery-synced."""

    config: Path
    data: Path
    url: str
    synced_at: datetime
    version: int


@pytest.fixture
def registered(tmp_path: Path) -> Iterator[Registered]:
    """A data folder registered and gallery-synced (one enrolment) against the reference upstream."""
    up, server = start_upstream(tmp_path / "upstream")
    try:
        vector = np.random.default_rng(7).normal(size=128).astype(np.float32)
        enrolment = {
            "psn_no": PEOPLE[0].psn_no,
            "consent": {
                "granted_at": "2025-05-20T10:00:00+08:00",
                "purpose": "刷脸就医身份核验",
                "operator": "enrol-desk-3",
                "text": "本人同意保存并使用本人人脸特征用于医保结算身份核验。",
            },
            "templates": [
                wire_template(vector / np.linalg.norm(vector), embedder_model_id(load(DEFAULT_CONFIG)))
            ],
        }
        with httpx.Client(base_url=server.url, timeout=5) as client:
            version = int(
                client.post("/admin/gallery/enrol", json=enrolment).raise_for_status().json()["version"]
            )
            keys = tmp_path / "gallery_keys.json"
            keys.write_bytes(client.get("/admin/gallery/key").raise_for_status().content)
        config = tmp_path / "terminal.toml"
        write_config(config, replace(IDENTITY, upstream_url=server.url, gallery_keys=keys))
        data, clock = tmp_path / "kiosk", FixedClock()
        provision_init(data)
        assert register_step(load(config), data, clock, offline=False)[0] == "done"
        assert gallery_step(load(config), data, clock, offline=False)[0] == "done"
        yield Registered(config, data, server.url, clock.at, version)
    finally:
        server.stop()
        up.close()


def _upstream_checks(config: Path, data: Path, at: datetime) -> tuple[Check, Check]:
    terminal = build_terminal(load(config), data, FixedClock(at))
    try:
        return upstream_check(terminal), gallery_check(terminal)
    finally:
        terminal.close()


def test_doctor_reports_the_registration_and_the_gallery_version_and_age(registered: Registered) -> None:
    at = registered.synced_at + timedelta(hours=2, minutes=5)
    upstream, gallery = _upstream_checks(registered.config, registered.data, at)
    assert upstream.ok
    assert upstream.detail == f"KIOSK-0042 registered with {registered.url} since 2025-06-03 09:30:00"
    assert gallery.ok
    assert gallery.detail == f"v{registered.version}, last synced 2 h ago (2025-06-03 09:30)"


def test_doctor_fails_a_gallery_older_than_the_offline_limit_and_says_to_sync(registered: Registered) -> None:
    at = registered.synced_at + timedelta(days=4)
    _, gallery = _upstream_checks(registered.config, registered.data, at)
    assert not gallery.ok
    assert gallery.detail == (
        f"v{registered.version}, last synced 4 d ago (2025-06-03 09:30), more than offline_max_age_h = 72 h"
    )
    assert "`medpay sync`" in gallery.fix


def test_doctor_fails_when_the_config_names_another_terminal_than_the_one_registered(
    registered: Registered,
) -> None:
    write_config(registered.config, Answers(terminal_id="KIOSK-0043"))
    upstream, _ = _upstream_checks(registered.config, registered.data, registered.synced_at)
    assert not upstream.ok
    assert upstream.detail == (
        "registered with terminal_id KIOSK-0042; the config says otherwise (terminal_id KIOSK-0043)"
    )
    assert "medpay-provision all" in upstream.fix


def test_doctor_fails_an_unregistered_terminal_and_passes_one_without_an_upstream(tmp_path: Path) -> None:
    config = tmp_path / "terminal.toml"
    write_config(config, replace(IDENTITY, upstream_url="http://127.0.0.1:9"))
    upstream, gallery = _upstream_checks(config, tmp_path / "kiosk", FixedClock().at)
    assert not upstream.ok and upstream.detail == "not registered with http://127.0.0.1:9"
    assert "--upstream URL" in upstream.fix
    assert gallery.ok, "no gallery keys configured: nothing to sync, nothing to report"
    upstream, gallery = _upstream_checks(DEFAULT_CONFIG, tmp_path / "plain", FixedClock().at)
    assert upstream.ok and upstream.detail.startswith("not configured")
    assert gallery.ok


def test_doctor_fails_when_the_data_folder_key_is_not_the_registered_one(registered: Registered) -> None:
    (registered.data / KEY_FILE).unlink()
    terminal_key(registered.data)  # a fresh key, as after restoring the wrong backup
    upstream, _ = _upstream_checks(registered.config, registered.data, registered.synced_at)
    assert not upstream.ok
    assert upstream.detail == f"{registered.data / KEY_FILE} is not the key registered with {registered.url}"
    assert "release the registration" in upstream.fix


def test_doctor_fails_when_the_sm2_envelope_key_is_not_the_registered_one(registered: Registered) -> None:
    (registered.data / SM2_KEY_FILE).unlink()
    upstream, _ = _upstream_checks(registered.config, registered.data, registered.synced_at)
    assert not upstream.ok  # missing: doctor says so and creates nothing
    assert not (registered.data / SM2_KEY_FILE).exists()
    sm2_key(registered.data)  # a fresh SM2 key beside the registered Ed25519 one
    upstream, _ = _upstream_checks(registered.config, registered.data, registered.synced_at)
    assert upstream.detail == (
        f"{registered.data / SM2_KEY_FILE} is not the key registered with {registered.url}"
    )


def test_doctor_fails_when_the_gallery_key_file_is_gone(registered: Registered) -> None:
    keys = load(registered.config).uplink.gallery_trusted_keys
    assert keys is not None
    keys.unlink()
    _, gallery = _upstream_checks(registered.config, registered.data, registered.synced_at)
    assert not gallery.ok and gallery.detail == f"gallery key file {keys} is missing"
    assert "--gallery-keys" in gallery.fix


def test_doctor_counts_people_without_a_template_for_the_running_model_and_says_how_to_re_enrol(
    data_dir: Path,
) -> None:
    terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, FixedClock())
    try:
        running = embedder_model_id(terminal.config)
        check = templates_check(terminal)
        assert check.ok and check.detail == f"model {running}: 0 people enrolled"
        consent = Consent(PEOPLE[0].psn_no, FixedClock().now(), "刷脸就医", "desk", "同意")
        terminal.gallery.enroll(PEOPLE[0], consent, [np.ones(128, np.float32)], "retired_model@000000000000")
        check = templates_check(terminal)
        assert not check.ok
        assert check.detail == (
            f"model {running}: 0 people enrolled; 1 enrolled people have no template for it "
            "(other models: retired_model@000000000000 1)"
        )
        assert "medpay enroll --person-id" in check.fix and "enrolment desk" in check.fix
        # A row relabelled in SQL to the running model fails authentication, and doctor says so.
        terminal.db.execute("UPDATE templates SET model_id = ?", [running])
        check = templates_check(terminal)
        assert not check.ok and "1 templates fail authentication" in check.detail
    finally:
        terminal.close()


def test_doctor_names_files_open_to_others_and_fix_modes_tightens_them(data_dir: Path) -> None:
    medpay("doctor", data_dir=data_dir)  # creates the database
    data_dir.chmod(0o755)
    (data_dir / "medpay.sqlite").chmod(0o644)
    notices = data_dir / "his_notices.sqlite"  # an old journal file left by an earlier release
    notices.write_bytes(b"")
    notices.chmod(0o664)

    result = medpay("doctor", data_dir=data_dir)
    line = next(line for line in result.stdout.splitlines() if "file modes" in line)
    assert line.startswith("FAIL"), result.stdout
    assert "medpay.sqlite is 0644 (want 0600)" in line and "0755 (want 0700)" in line
    assert "medpay doctor --fix-modes" in result.stdout

    fixed = medpay("doctor", "--fix-modes", data_dir=data_dir)
    assert f"fixed {notices}: 0664 -> 0600" in fixed.stdout
    line = next(line for line in fixed.stdout.splitlines() if "file modes" in line)
    assert line.startswith("ok"), fixed.stdout
    assert [oct(p.stat().st_mode & 0o777) for p in (data_dir, notices)] == ["0o700", "0o600"]


def test_doctor_fails_when_the_device_key_is_not_the_one_people_were_sealed_under(data_dir: Path) -> None:
    from terminal.demo_data import DEMO_PEOPLE
    from terminal.store.device_key import device_key_path

    terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, FixedClock())
    try:
        terminal.gallery.upsert_person(DEMO_PEOPLE[0])
    finally:
        terminal.close()
    device_key_path(data_dir).write_bytes(b"w" * 32)  # another terminal's key copied over this one
    result = medpay("doctor", data_dir=data_dir)
    line = next(line for line in result.stdout.splitlines() if "device key" in line)
    assert line.startswith("FAIL") and "1 sealed people do not open" in line, result.stdout
