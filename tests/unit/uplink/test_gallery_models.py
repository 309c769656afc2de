"""Gallery deltas carry each template's model: foreign-model templates are kept apart, never compared."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from terminal.errors import GalleryDeltaError, NotEnrolledForModelError
from terminal.store.templates import PRE_TAGGING_MODEL_ID
from terminal.uplink.gallery import (
    MAX_MODELS,
    MAX_TEMPLATES,
    apply_gallery_delta,
    template_from_wire,
    template_to_wire,
    verify_delta,
    wire_template,
)
from tests.unit.uplink.test_gallery_delta import (
    AT,
    MODEL,
    TRUSTED,
    _body,
    _signed,
    _store,
    _tagged,
    _template,
    _upsert,
)

FOREIGN = "buffalo_l_w600k@4c06341c33c2"


def _foreign(seed: int) -> dict[str, str]:
    # A 512-value ArcFace-style template: another model, another length.
    vector = np.random.default_rng(seed).normal(size=512).astype(np.float32)
    return wire_template(vector, FOREIGN)


def test_a_delta_with_a_foreign_model_template_applies_and_the_running_model_sees_only_its_own(
    tmp_path: Path,
) -> None:
    both = _upsert("P1", "430302197001010018", 1)
    both["templates"] = [_tagged(1), _foreign(11)]
    only_foreign = _upsert("P2", "430302197001010026", 2)
    only_foreign["templates"] = [_foreign(12), _foreign(13)]
    delta = verify_delta(_signed(_body(upserts=[both, only_foreign])), TRUSTED)
    db, gallery = _store(tmp_path)
    try:
        apply_gallery_delta(gallery, delta, AT)
        (mine,) = gallery.templates_of("P1", MODEL)
        assert np.array_equal(mine, template_from_wire(_template(1)))
        owners, matrix = gallery.all_templates(MODEL)
        assert owners == ["P1"] and matrix.shape == (1, 128)
        with pytest.raises(NotEnrolledForModelError, match=f"not enrolled for model {MODEL}"):
            gallery.templates_of("P2", MODEL)
        # Kept, tagged: a terminal switched to that model uses them without another sync.
        assert gallery.all_templates(FOREIGN)[1].shape == (3, 512)
        detail = next(
            json.loads(r["detail"]) for r in db.query("SELECT detail FROM audit WHERE subject = 'P2'")
        )
        assert detail["models"] == {FOREIGN: 2}
    finally:
        db.close()


def test_a_legacy_untagged_delta_is_read_as_the_dlib_templates_it_always_was(tmp_path: Path) -> None:
    body = _body(template_format="dlib_resnet_v1/128/f32le")
    for upsert in body["upserts"]:
        upsert["templates"] = [t["vector"] for t in upsert["templates"]]
    delta = verify_delta(_signed(body), TRUSTED)
    assert {t.model_id for u in delta.upserts for t in u.templates} == {PRE_TAGGING_MODEL_ID}
    db, gallery = _store(tmp_path)
    try:
        apply_gallery_delta(gallery, delta, AT)
        assert len(gallery.templates_of("P1", PRE_TAGGING_MODEL_ID)) == 1
        with pytest.raises(NotEnrolledForModelError):
            gallery.templates_of("P1", MODEL)
    finally:
        db.close()


@pytest.mark.parametrize(
    ("templates", "where"),
    [
        ([{"model_id": PRE_TAGGING_MODEL_ID, "vector": _template(1)}], "templates"),
        ([template_to_wire(np.ones(512, np.float32))], "expected 512"),
    ],
    ids=["tagged-in-a-legacy-delta", "legacy-not-128"],
)
def test_a_legacy_delta_holds_only_bare_dlib_templates(templates: list[Any], where: str) -> None:
    body = _body(template_format="dlib_resnet_v1/128/f32le")
    body["upserts"] = [{**body["upserts"][0], "templates": templates}]
    with pytest.raises(GalleryDeltaError, match="malformed") as info:
        verify_delta(_signed(body), TRUSTED)
    assert where in str(info.value)


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ([_tagged(i) for i in range(MAX_TEMPLATES + 1)], "at most 10"),
        ([_tagged(i, f"m{i}@000000000000") for i in range(MAX_MODELS + 1)], "at most 4"),
        ([_tagged(1), wire_template(np.ones(256, np.float32), MODEL)], "differ in length"),
    ],
    ids=["too-many-of-one-model", "too-many-models", "one-model-two-lengths"],
)
def test_an_upsert_with_inconsistent_model_templates_is_refused(templates: list[Any], message: str) -> None:
    upsert = _upsert("P1", "430302197001010018", 1)
    upsert["templates"] = templates
    with pytest.raises(GalleryDeltaError, match=message):
        verify_delta(_signed(_body(upserts=[upsert])), TRUSTED)


def test_relabelling_a_template_after_signing_breaks_the_signature() -> None:
    document = _signed(_body())
    document["bundle"]["upserts"][0]["templates"][0]["model_id"] = FOREIGN
    with pytest.raises(GalleryDeltaError, match="altered"):
        verify_delta(document, TRUSTED)
