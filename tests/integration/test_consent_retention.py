"""Consent withdrawal at the terminal (technician command, counter page) and `medpay purge`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np

from devkit.serving import serving
from terminal.app import Terminal, build_terminal, embedder_model_id
from terminal.clock import SystemClock
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import CONSENT, DEMO_PEOPLE
from terminal.domain import Consent
from terminal.service.app import create_app
from terminal.store.attempts import AttemptJournal
from tests.integration.test_cli import medpay

LI, WANG = DEMO_PEOPLE[0], DEMO_PEOPLE[1]


def _enrol(terminal: Terminal) -> str:
    """Enrol people with random templates of the configured embedder (no face models needed)."""
    model = embedder_model_id(terminal.config)
    rng = np.random.default_rng(17)
    for person in DEMO_PEOPLE[:2]:
        consent = Consent(person.psn_no, terminal.clock.now(), "刷脸结算", "tech-1", CONSENT)
        vectors = [rng.standard_normal(128).astype(np.float32) for _ in range(2)]
        terminal.gallery.enroll(person, consent, vectors, model)
    return model


def _audit_actions(terminal: Terminal) -> list[tuple[str, str, str]]:
    rows = terminal.db.query("SELECT actor, action, subject FROM audit ORDER BY seq")
    return [(row["actor"], row["action"], row["subject"]) for row in rows]


def test_a_technician_withdraws_consent_by_id_number_and_face_no_longer_finds_them(data_dir: Path) -> None:
    terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, SystemClock())
    try:
        model = _enrol(terminal)
    finally:
        terminal.close()

    # A typed lower-case x, as people type it: found through the keyed hash all the same.
    result = medpay(
        "consent", "withdraw", "--certno", LI.certno.lower(), "--operator", "tech-7", data_dir=data_dir
    )

    assert result.returncode == 0, result.stderr
    assert f"consent of {LI.psn_no} withdrawn: 2 template(s) deleted" in result.stdout
    terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, SystemClock())
    try:
        owners, _ = terminal.gallery.all_templates(model)
        assert set(owners) == {WANG.psn_no}, "1:N searches only the people still consenting"
        assert ("tech-7", "withdraw-consent", LI.psn_no) in _audit_actions(terminal)
        assert terminal.gallery.person(LI.psn_no) == LI, "the insurance record stays: QR, card, ID still pay"
    finally:
        terminal.close()


def test_withdrawing_for_nobody_known_is_a_clear_error(data_dir: Path) -> None:
    result = medpay("consent", "withdraw", "--psn-no", "NOBODY", data_dir=data_dir)
    assert result.returncode == 1
    assert "NOBODY is not known to this terminal" in result.stderr


def test_the_counter_withdraws_consent_with_the_cashier_token_only(terminal: Terminal) -> None:
    model = _enrol(terminal)
    withdraw = "/api/counter/consent/withdraw"
    cashier = {"Authorization": "Bearer c"}
    with serving(create_app(terminal, cashier_token="c", technician_token="t")) as url:
        body = {"certno": WANG.certno}
        assert httpx.post(url + withdraw, json=body).status_code == 401
        answer = httpx.post(url + withdraw, json=body, headers=cashier)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"psn_no": WANG.psn_no, "templates_deleted": 2}
        unknown = httpx.post(url + withdraw, json={"certno": "430302190001010008"}, headers=cashier)
        assert unknown.status_code == 404
        both = httpx.post(url + withdraw, json={**body, "psn_no": WANG.psn_no}, headers=cashier)
        assert both.status_code == 404
    owners, _ = terminal.gallery.all_templates(model)
    assert set(owners) == {LI.psn_no}
    assert ("cashier", "withdraw-consent", WANG.psn_no) in _audit_actions(terminal)


def test_medpay_purge_uses_the_configured_retention(data_dir: Path, tmp_path: Path) -> None:
    days = 30
    config = tmp_path / "terminal.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8").replace(
        '"policies/', f'"{DEFAULT_CONFIG.parent}/policies/'
    )
    text = text.replace('"catalog/', f'"{DEFAULT_CONFIG.parent}/catalog/')
    config.write_text(text + f"\n[storage]\nretention_days = {days}\n", encoding="utf-8")
    terminal = build_terminal(load(config), data_dir, SystemClock())
    try:
        now = terminal.clock.now()
        journal = AttemptJournal(terminal.db)
        journal.begin("OLD", "face", now - timedelta(days=days + 1))
        journal.begin("NEW", "face", now - timedelta(days=days - 1))
    finally:
        terminal.close()

    result = medpay("purge", data_dir=data_dir, config=config)

    assert result.returncode == 0, result.stderr
    assert "purged 1 attempts, 0 sessions and 0 session events older than 30 days" in result.stdout
