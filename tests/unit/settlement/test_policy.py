"""Policy bundle and catalogue loading: strict, placeholders marked, clear PolicyError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from terminal.errors import PolicyError
from terminal.settlement import CatalogError, parse_bundle, parse_catalog
from terminal.settlement.bundle import bundle_json_schema
from terminal.settlement.signing import generate_signing_key, parse_trusted_keys, sign_bundle
from terminal.store.policy_files import load_bundle, load_trusted_keys

from .helpers import BUNDLE_PATH, bundle, catalog


def _doc() -> dict[str, Any]:
    return dict(json.loads(BUNDLE_PATH.read_text(encoding="utf-8")))


def _bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def test_shipped_bundle_marks_every_table_as_placeholder() -> None:
    b = bundle()
    assert b.placeholder
    tables = [b, *b.schemes.values(), *(x for s in b.schemes.values() for x in s.benefits)]
    tables += [d for s in b.schemes.values() for d in s.opsp_diseases.values()]
    assert all(t.placeholder and t.source for t in tables)


def test_shipped_bundle_carries_the_changsha_resident_rows() -> None:
    rows = bundle().schemes["390"].benefit_for("2101").levels  # type: ignore[union-attr]
    assert {k: (str(v.deductible), str(v.ratio)) for k, v in rows.items()} == {
        "primary": ("200.00", "0.85"),
        "level1": ("500.00", "0.82"),
        "level2": ("800.00", "0.80"),
        "level3_city": ("1200.00", "0.65"),
        "level3_provincial": ("2000.00", "0.60"),
    }


def test_sample_catalogue_is_marked_and_has_a_dozen_of_each_class() -> None:
    c = catalog()
    assert c.sample
    levels = [i.chrgitm_lv for i in c.items]
    assert levels.count("01") >= 12 and levels.count("02") >= 12 and levels.count("03") >= 12


def test_unknown_key_is_refused_with_its_path() -> None:
    doc = _doc()
    doc["bundle"]["schemes"]["390"]["benefits"][0]["ratoi"] = "0.5"
    with pytest.raises(PolicyError, match=r"schemes\.390\.benefits\.0\.ratoi: unknown key"):
        parse_bundle(_bytes(doc), None)


def test_float_amounts_are_refused() -> None:
    text = BUNDLE_PATH.read_text(encoding="utf-8").replace('"ratio": "0.65"', '"ratio": 0.65')
    with pytest.raises(PolicyError, match=r"must be JSON strings.*0\.65"):
        parse_bundle(text.encode(), None)


def test_ratio_above_one_is_refused() -> None:
    doc = _doc()
    doc["bundle"]["schemes"]["390"]["benefits"][0]["levels"]["primary"]["ratio"] = "1.5"
    with pytest.raises(PolicyError, match="ratio"):
        parse_bundle(_bytes(doc), None)


def test_benefit_pointing_at_a_missing_cap_group_is_refused() -> None:
    doc = _doc()
    doc["bundle"]["schemes"]["390"]["benefits"][0]["cap_group"] = "nowhere"
    with pytest.raises(PolicyError, match="cap_group nowhere"):
        parse_bundle(_bytes(doc), None)


def test_med_type_priced_twice_is_refused() -> None:
    doc = _doc()
    doc["bundle"]["schemes"]["310"]["benefits"][1]["med_types"].append("2101")
    with pytest.raises(PolicyError, match="med_type 2101 is in both"):
        parse_bundle(_bytes(doc), None)


def test_table_without_placeholder_flag_is_refused() -> None:
    doc = _doc()
    del doc["bundle"]["critical_illness"]["placeholder"]
    with pytest.raises(PolicyError, match=r"critical_illness\.placeholder: Field required"):
        parse_bundle(_bytes(doc), None)


def test_not_json_and_missing_file_are_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not UTF-8 JSON"):
        parse_bundle(b"{nope", None)
    with pytest.raises(PolicyError, match="cannot read policy bundle"):
        load_bundle(tmp_path / "absent.json")


def _engine_doc() -> dict[str, Any]:
    # the shipped catalogue in the engine's own JSON format (what parse_catalog reads)
    shipped = catalog()
    items = [item.model_dump(mode="json") for item in shipped.items]
    return {"catalog_id": shipped.catalog_id, "admdvs": shipped.admdvs, "items": items}


def test_catalogue_rejects_a_class_a_item_with_a_self_pay_ratio() -> None:
    doc = _engine_doc()
    doc["items"][0]["selfpay_prop"] = "0.1"
    with pytest.raises(CatalogError, match="甲 item has no self-pay-first ratio"):
        parse_catalog(json.dumps(doc).encode())


def test_catalogue_rejects_duplicate_codes() -> None:
    doc = _engine_doc()
    doc["items"].append(doc["items"][0])
    with pytest.raises(CatalogError, match="appears twice"):
        parse_catalog(json.dumps(doc).encode())


def _keys(*entries: object) -> dict[str, bytes]:
    return parse_trusted_keys(json.dumps({"keys": [e.model_dump() for e in entries]}).encode())  # type: ignore[attr-defined]


def test_shipped_bundle_verifies_with_the_shipped_trusted_key() -> None:
    assert bundle().bundle_id == "430300-2025"
    assert parse_bundle(BUNDLE_PATH.read_bytes(), load_trusted_keys()).version == bundle().version


def test_a_changed_figure_breaks_the_signature() -> None:
    text = BUNDLE_PATH.read_text(encoding="utf-8").replace('"ratio": "0.65"', '"ratio": "0.95"', 1)
    with pytest.raises(PolicyError, match=r"does not verify.*altered"):
        parse_bundle(text.encode(), load_trusted_keys())


def test_whitespace_and_key_order_do_not_matter_to_the_signature() -> None:
    doc = _doc()
    reordered = {"signature": doc["signature"], "bundle": dict(reversed(list(doc["bundle"].items())))}
    assert parse_bundle(json.dumps(reordered, ensure_ascii=False, indent=7).encode(), load_trusted_keys())


def test_unsigned_bundle_is_refused() -> None:
    doc = _doc()
    doc["signature"] = None
    with pytest.raises(PolicyError, match="not signed"):
        parse_bundle(_bytes(doc), load_trusted_keys())


def test_bundle_signed_by_an_untrusted_key_is_refused() -> None:
    pem, _ = generate_signing_key()
    signed = sign_bundle(_doc()["bundle"], pem)
    with pytest.raises(PolicyError, match="does not trust"):
        parse_bundle(_bytes(signed), load_trusted_keys())


def test_bundle_signed_by_a_newly_trusted_key_loads(tmp_path: Path) -> None:
    pem, entry = generate_signing_key()
    doc = _doc()
    doc["bundle"]["version"] = "2025.2-drill"
    path = tmp_path / "b.json"
    path.write_bytes(_bytes(sign_bundle(doc["bundle"], pem)))
    assert load_bundle(path, _keys(entry)).version == "2025.2-drill"


def test_a_signed_bundle_that_breaks_the_schema_is_still_refused() -> None:
    pem, entry = generate_signing_key()
    doc = _doc()
    doc["bundle"]["year"] = 1999
    with pytest.raises(PolicyError, match="year"):
        parse_bundle(_bytes(sign_bundle(doc["bundle"], pem)), _keys(entry))


def test_trusted_key_whose_id_does_not_match_is_refused() -> None:
    _, entry = generate_signing_key()
    forged = entry.model_copy(update={"key_id": "0" * 16})
    with pytest.raises(PolicyError, match="does not match"):
        _keys(forged)


def test_published_schema_is_the_models_schema() -> None:
    published = json.loads((BUNDLE_PATH.parent / "schema.json").read_text(encoding="utf-8"))
    assert published == bundle_json_schema(), "regenerate: python -m devkit schema …"
