"""Templates tagged by model: the migration of an old database, AAD binding, and per-model coverage."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from terminal.config import REPO_ROOT
from terminal.domain import Consent, Person
from terminal.errors import NotEnrolledForModelError, StoreError, TemplateIntegrityError, UnknownPersonError
from terminal.store import db as store_db
from terminal.store.db import DB_NAME, MIGRATIONS, open_db
from terminal.store.gallery import SqliteGallery
from terminal.store.keys import TemplateCipher, read_key
from terminal.store.templates import (
    PRE_TAGGING_MODEL_ID,
    model_coverage,
    unreadable_templates,
)
from terminal.vision.manifest import load_manifest
from tests.fakes import FixedClock

SFACE = "sface@0ba9fbfa01b5"
OLD = Person("P-OLD", "老用户", "430302195501010007", "390", "active", "430302")
NEW = Person("P-NEW", "新用户", "430302195501010023", "390", "active", "430302")


def _consent(clock: FixedClock, psn_no: str) -> Consent:
    return Consent(psn_no, clock.now(), "face checkout", "tech-1", "我同意")


def _old_database(data_dir: Path, monkeypatch: pytest.MonkeyPatch, vector: np.ndarray) -> None:
    """A database as the release before tagging left it: one dlib template sealed to its owner only."""
    before = [name for name, _ in MIGRATIONS].index("0009_templates_model_id")
    monkeypatch.setattr(store_db, "MIGRATIONS", MIGRATIONS[:before])
    db = open_db(data_dir)
    db.execute(
        "INSERT INTO persons (psn_no, psn_name, certno, insutype, psn_type, insuplc_admdvs, acct_balc, gend)"
        " VALUES (?, ?, ?, '390', 'active', '430302', '0.00', '1')",
        [OLD.psn_no, OLD.psn_name, OLD.certno],
    )
    db.execute(
        "INSERT INTO consents (id, psn_no, granted_at, purpose, operator, text)"
        " VALUES (1, ?, '2025-01-02T09:00:00+08:00', 'face checkout', 'tech-1', '我同意')",
        [OLD.psn_no],
    )
    nonce, sealed = TemplateCipher(read_key(data_dir)).seal(OLD.psn_no, vector.astype("<f4").tobytes())
    db.execute(
        "INSERT INTO templates (psn_no, consent_id, nonce, ciphertext, created_at)"
        " VALUES (?, 1, ?, ?, '2025-01-02T09:00:00+08:00')",
        [OLD.psn_no, nonce, sealed],
    )
    db.conn.commit()
    db.close()
    monkeypatch.undo()


def _gallery(data_dir: Path, clock: FixedClock) -> tuple[sqlite_utils.Database, SqliteGallery]:
    db = open_db(data_dir)
    return db, SqliteGallery(db, TemplateCipher(read_key(data_dir)), clock)


def test_the_migration_tags_old_templates_as_dlib_and_keeps_them_readable(
    data_dir: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    vector = np.linspace(-0.3, 0.3, 128, dtype=np.float32)
    _old_database(data_dir, monkeypatch, vector)
    db, gallery = _gallery(data_dir, clock)
    row = next(iter(db.query("SELECT model_id, sealed_with FROM templates")))
    assert (row["model_id"], row["sealed_with"]) == (PRE_TAGGING_MODEL_ID, 1)
    np.testing.assert_array_equal(gallery.templates_of(OLD.psn_no, PRE_TAGGING_MODEL_ID)[0], vector)
    with pytest.raises(NotEnrolledForModelError, match="re-enrol"):
        gallery.templates_of(OLD.psn_no, SFACE)
    assert gallery.all_templates(SFACE)[0] == []
    # A new row cannot be written without saying which model made it: the column has no default.
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(
            "INSERT INTO templates (psn_no, consent_id, sealed_with, nonce, ciphertext, created_at)"
            " VALUES (?, 1, 2, x'00', x'00', 'now')",
            [OLD.psn_no],
        )


def test_the_pre_tagging_model_id_is_the_manifests_dlib_entry_and_the_migrations_literal() -> None:
    entry = load_manifest(REPO_ROOT / "models").entry("dlib_resnet")
    assert entry.template_model_id() == PRE_TAGGING_MODEL_ID
    step = dict(MIGRATIONS)["0009_templates_model_id"]
    assert isinstance(step, str) and f"'{PRE_TAGGING_MODEL_ID}'" in step


def test_an_old_row_relabelled_to_another_model_is_refused(
    data_dir: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_database(data_dir, monkeypatch, np.ones(128, np.float32))
    db, gallery = _gallery(data_dir, clock)
    db.execute("UPDATE templates SET model_id = ?", [SFACE])
    with pytest.raises(TemplateIntegrityError, match="sealed before model tagging"):
        gallery.templates_of(OLD.psn_no, SFACE)


def test_a_row_whose_model_id_was_edited_in_sql_fails_to_decrypt(data_dir: Path, clock: FixedClock) -> None:
    db, gallery = _gallery(data_dir, clock)
    gallery.enroll(NEW, _consent(clock, NEW.psn_no), [np.ones(128, np.float32)], PRE_TAGGING_MODEL_ID)
    assert gallery.templates_of(NEW.psn_no, PRE_TAGGING_MODEL_ID)
    db.execute("UPDATE templates SET model_id = ?", [SFACE])
    with pytest.raises(TemplateIntegrityError, match="fails authentication"):
        gallery.templates_of(NEW.psn_no, SFACE)
    with pytest.raises(TemplateIntegrityError):
        gallery.all_templates(SFACE)
    assert unreadable_templates(db, TemplateCipher(read_key(data_dir))) == [f"{NEW.psn_no} ({SFACE})"]
    # Nor may a new row pass for an old one (sealed to the owner alone) to dodge the model binding.
    db.execute("UPDATE templates SET model_id = ?, sealed_with = 1", [PRE_TAGGING_MODEL_ID])
    with pytest.raises(TemplateIntegrityError):
        gallery.templates_of(NEW.psn_no, PRE_TAGGING_MODEL_ID)
    raw = sqlite3.connect(data_dir / DB_NAME).execute("SELECT ciphertext FROM templates").fetchone()[0]
    assert np.ones(128, np.float32).tobytes() not in raw


def test_coverage_counts_people_the_running_model_cannot_recognise(data_dir: Path, clock: FixedClock) -> None:
    db, gallery = _gallery(data_dir, clock)
    gallery.enroll(OLD, _consent(clock, OLD.psn_no), [np.ones(128, np.float32)], PRE_TAGGING_MODEL_ID)
    gallery.enroll(NEW, _consent(clock, NEW.psn_no), [np.ones(128, np.float32)] * 2, SFACE)
    gallery.enroll(NEW, _consent(clock, NEW.psn_no), [np.ones(128, np.float32)], PRE_TAGGING_MODEL_ID)
    coverage = model_coverage(db, SFACE)
    assert (coverage.enrolled, coverage.without, coverage.other_models) == (1, 1, {PRE_TAGGING_MODEL_ID: 2})
    gallery.withdraw_consent(OLD.psn_no, "tech-1")
    assert model_coverage(db, SFACE).without == 0
    assert gallery.size() == 1
    with pytest.raises(UnknownPersonError):
        gallery.templates_of(OLD.psn_no, SFACE)


def test_a_template_without_a_model_is_refused(data_dir: Path, clock: FixedClock) -> None:
    _, gallery = _gallery(data_dir, clock)
    with pytest.raises(StoreError, match="model"):
        gallery.enroll(NEW, _consent(clock, NEW.psn_no), [np.ones(128, np.float32)], "")
    assert gallery.size() == 0
