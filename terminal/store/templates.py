"""Face templates at rest: each row tagged with the model that made it and sealed to its owner and model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlite_utils
from numpy.typing import NDArray

from terminal.errors import TemplateIntegrityError
from terminal.store.keys import TemplateCipher

TEMPLATE_DTYPE = np.dtype("<f4")

# The model every template stored before templates were tagged came from: the dlib ResNet, then the only
# embedder (its manifest entry's name@sha256[:12]). Migration 0009 tags those rows with it; a test holds
# it equal to the manifest's dlib entry. Never change it: it names what old rows are, not a default.
PRE_TAGGING_MODEL_ID = "dlib_resnet@e0b69024dfe5"

# templates.sealed_with: how a row's ciphertext is bound (the AES-GCM associated data, store/keys.py).
SEALED_OWNER_ONLY = 1  # rows from before tagging: psn_no only; they may only claim PRE_TAGGING_MODEL_ID
SEALED_OWNER_AND_MODEL = 2  # psn_no and model_id: editing either in SQL makes the row fail to open

_CONSENTED_JOIN = "templates t JOIN consents c ON c.id = t.consent_id WHERE c.withdrawn_at IS NULL"
CONSENTED_TEMPLATES = (
    "SELECT t.id, t.psn_no, t.model_id, t.sealed_with, t.nonce, t.ciphertext FROM " + _CONSENTED_JOIN
)


@dataclass(frozen=True)
class StoredTemplate:
    """One template and the id of the embedder model that made it (templates of two models never compare)."""

    model_id: str
    vector: NDArray[np.float32]


@dataclass(frozen=True)
class ModelCoverage:
    """How many consenting enrolled people the running model can recognise, and how many it cannot."""

    model_id: str
    enrolled: int
    without: int
    other_models: dict[str, int] = field(default_factory=dict)


def insert_templates(
    db: sqlite_utils.Database,
    cipher: TemplateCipher,
    psn_no: str,
    consent_id: int,
    templates: Sequence[StoredTemplate],
    created_at: str,
) -> None:
    """Seal and store templates under a consent record, each bound to its owner and its model."""
    for template in templates:
        blob = np.ascontiguousarray(template.vector, dtype=TEMPLATE_DTYPE).tobytes()
        nonce, ciphertext = cipher.seal(psn_no, blob, template.model_id)
        db.execute(
            "INSERT INTO templates (psn_no, consent_id, model_id, sealed_with, nonce, ciphertext, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [psn_no, consent_id, template.model_id, SEALED_OWNER_AND_MODEL, nonce, ciphertext, created_at],
        )


def open_template(cipher: TemplateCipher, row: dict[str, Any]) -> NDArray[np.float32]:
    """Decrypt one row; TemplateIntegrityError when altered, moved to another person or relabelled."""
    if row["sealed_with"] == SEALED_OWNER_ONLY:
        # Sealed before tagging, so the model is not in the associated data: only the model the old
        # terminal ran can have made it. A row claiming another model was relabelled in SQL.
        if row["model_id"] != PRE_TAGGING_MODEL_ID:
            raise TemplateIntegrityError(
                f"a template of {row['psn_no']} sealed before model tagging claims model {row['model_id']}"
            )
        plain = cipher.open(row["psn_no"], row["nonce"], row["ciphertext"])
    elif row["sealed_with"] == SEALED_OWNER_AND_MODEL:
        plain = cipher.open(row["psn_no"], row["nonce"], row["ciphertext"], row["model_id"])
    else:
        raise TemplateIntegrityError(
            f"a template of {row['psn_no']} has unknown sealing {row['sealed_with']}"
        )
    return np.frombuffer(plain, dtype=TEMPLATE_DTYPE).astype(np.float32)


def model_coverage(db: sqlite_utils.Database, model_id: str) -> ModelCoverage:
    """People with a consenting template of model_id, and those with templates of other models only.

    Counted in SQL without the template key, so doctor can report it when the key check fails.
    """
    with_model = _CONSENTED_JOIN + " AND t.model_id = ?"
    enrolled = _count(db, "SELECT COUNT(DISTINCT t.psn_no) AS n FROM " + with_model, model_id)
    lacking = " GROUP BY t.psn_no HAVING SUM(t.model_id = ?) = 0"
    per_person = "SELECT t.psn_no FROM " + _CONSENTED_JOIN + lacking
    without = _count(db, "SELECT COUNT(*) AS n FROM (" + per_person + ")", model_id)
    other_sql = (
        "SELECT t.model_id, COUNT(DISTINCT t.psn_no) AS n FROM " + _CONSENTED_JOIN
        + " AND t.model_id != ? GROUP BY t.model_id ORDER BY t.model_id"
    )  # fmt: skip
    others = {row["model_id"]: int(row["n"]) for row in db.query(other_sql, [model_id])}
    return ModelCoverage(model_id, enrolled, without, others)


def unreadable_templates(db: sqlite_utils.Database, cipher: TemplateCipher) -> list[str]:
    """Every stored template that fails authentication, as 'psn_no (model)'; empty when all open."""
    failures = []
    for row in db.query("SELECT id, psn_no, model_id, sealed_with, nonce, ciphertext FROM templates"):
        try:
            open_template(cipher, row)
        except TemplateIntegrityError:
            failures.append(f"{row['psn_no']} ({row['model_id']})")
    return failures


def _count(db: sqlite_utils.Database, sql: str, model_id: str) -> int:
    return int(next(iter(db.query(sql, [model_id])))["n"])
