"""The `medpay` command as a user runs it: real processes, real files, clear one-line errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import MODELS, REPO, insightface_image

CONFIG = REPO / "config" / "terminal.toml"


def medpay(*args: str, data_dir: Path, config: Path = CONFIG) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess the way a technician would."""
    env = {**os.environ, "MEDPAY_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "terminal.cli.main", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _config_with(tmp_path: Path, **replacements: str) -> Path:
    text = CONFIG.read_text(encoding="utf-8")
    text = text.replace('"policies/', f'"{REPO}/config/policies/').replace(
        '"catalog/', f'"{REPO}/config/catalog/'
    )
    for old, new in replacements.items():
        text = text.replace(old, new)
    path = tmp_path / "terminal.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _assert_clean_error(result: subprocess.CompletedProcess[str], pattern: str, code: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("medpay: error:"), result.stderr
    assert pattern in result.stderr, result.stderr
    assert f"[{code}]" in result.stderr, result.stderr


def test_config_validate_accepts_the_default(data_dir: Path) -> None:
    result = medpay("config", "validate", data_dir=data_dir)
    assert result.returncode == 0 and "ok" in result.stdout


def test_config_with_an_unknown_key_is_refused(tmp_path: Path, data_dir: Path) -> None:
    config = _config_with(tmp_path, **{"[service]": "[service]\ncolour = 'blue'"})
    _assert_clean_error(
        medpay("config", "validate", data_dir=data_dir, config=config), "unknown key", "CONFIG_INVALID"
    )


@pytest.mark.usefixtures("require_models")
def test_identify_a_file_that_is_not_an_image(tmp_path: Path, data_dir: Path) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_bytes(b"%PDF-1.4 this is not an image")
    _assert_clean_error(
        medpay("identify", "--image", str(fake), data_dir=data_dir), "not a decodable image", "IMAGE_INVALID"
    )


@pytest.mark.usefixtures("require_models")
def test_identify_an_image_without_a_face_reports_no_faces(tmp_path: Path, data_dir: Path) -> None:
    import cv2
    import numpy as np

    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 200, np.uint8))
    result = medpay("identify", "--image", str(blank), "--json", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"faces": []}


@pytest.mark.usefixtures("require_models")
def test_enrol_then_identify_prints_the_person(tmp_path: Path, data_dir: Path) -> None:
    hanks = str(insightface_image("Tom_Hanks_54745.png"))
    enrol = medpay(
        "enroll", "--person-id", "P100", "--image", hanks, "--consent", "我同意", "--name", "汤姆",
        "--certno", "430302196607090011", data_dir=data_dir,
    )  # fmt: skip
    assert enrol.returncode == 0, enrol.stderr
    result = medpay("identify", "--image", hanks, "--json", data_dir=data_dir)
    faces = json.loads(result.stdout)["faces"]
    assert [f["person_id"] for f in faces] == ["P100"]
    assert set(faces[0]) == {"box", "landmarks", "person_id"}
    assert len(faces[0]["landmarks"]) == 5


@pytest.mark.usefixtures("require_models")
def test_enrol_from_several_photos_reports_the_one_it_could_not_use(tmp_path: Path, data_dir: Path) -> None:
    import cv2
    import numpy as np

    hanks = str(insightface_image("Tom_Hanks_54745.png"))
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((480, 640, 3), 200, np.uint8))
    refused = medpay(
        "enroll", "--person-id", "P100", "--image", str(wall), "--consent", "我同意", "--name", "汤姆",
        "--certno", "430302196607090011", data_dir=data_dir,
    )  # fmt: skip
    _assert_clean_error(refused, f"no photo can be enrolled: {wall}: no usable face", "FACE_QUALITY")
    enrol = medpay(
        "enroll", "--person-id", "P100", "--image", hanks, "--image", str(wall), "--consent", "我同意",
        "--name", "汤姆", "--certno", "430302196607090011", data_dir=data_dir,
    )  # fmt: skip
    assert enrol.returncode == 0, enrol.stderr
    lines = enrol.stdout.splitlines()
    assert lines[0] == f"not used: {wall}: no usable face (no face found)"
    assert lines[1].startswith("enrolled P100 (汤姆) with recorded consent: 1 template(s) of model ")


@pytest.mark.usefixtures("require_models")
def test_a_corrupted_model_file_is_refused(tmp_path: Path, data_dir: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in (
        "manifest.toml",
        "manifest.toml.sig",
        "mtcnn_pnet.onnx",
        "mtcnn_rnet.onnx",
        "mtcnn_onet.onnx",
        "face_detection_yunet_2023mar.onnx",
        "dlib_resnet_v1.onnx",
    ):
        shutil.copyfile(MODELS / name, models / name)
    onet = models / "mtcnn_onet.onnx"
    data = bytearray(onet.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onet.write_bytes(bytes(data))
    config = _config_with(tmp_path, **{"[models]": f'[models]\ndir = "{models}"'})
    hanks = str(insightface_image("Tom_Hanks_54745.png"))
    _assert_clean_error(
        medpay("identify", "--image", hanks, data_dir=data_dir, config=config), "sha256", "MODEL_INTEGRITY"
    )


def _known_person(data_dir: Path) -> str:
    """Record one demo person's insurance data (no face) in the terminal database."""
    from terminal.clock import SystemClock
    from terminal.demo_data import DEMO_PEOPLE
    from terminal.store.db import open_db
    from terminal.store.gallery import SqliteGallery
    from terminal.store.keys import TemplateCipher, read_key

    db = open_db(data_dir)
    SqliteGallery(db, TemplateCipher(read_key(data_dir)), SystemClock()).upsert_person(DEMO_PEOPLE[2])
    db.close()
    return DEMO_PEOPLE[2].psn_no


def test_settle_with_an_unmatched_refund_line_records_nothing(tmp_path: Path, data_dir: Path) -> None:
    psn_no = _known_person(data_dir)
    bill = json.loads((REPO / "config" / "bills" / "outpatient-sample.json").read_text(encoding="utf-8"))
    refund = dict(bill["feedetail"][0], feedetl_sn="R1", med_list_codg="NOT-IN-CATALOGUE")
    refund["cnt"], refund["det_item_fee_sumamt"] = "-1", f"-{refund['pric']}"
    bill["feedetail"].append(refund)
    path = tmp_path / "bill.json"
    path.write_text(json.dumps(bill, ensure_ascii=False), encoding="utf-8")
    result = medpay("settle", "--bill", str(path), "--person-id", psn_no, data_dir=data_dir)
    _assert_clean_error(result, "NOT-IN-CATALOGUE", "BILL_REFUND_UNMATCHED")
    assert medpay("audit", "verify", data_dir=data_dir).returncode == 0


def test_settle_prices_an_out_of_catalogue_code_fully_self_paid(tmp_path: Path, data_dir: Path) -> None:
    psn_no = _known_person(data_dir)
    bill = json.loads((REPO / "config" / "bills" / "outpatient-sample.json").read_text(encoding="utf-8"))
    bill["feedetail"][0]["med_list_codg"] = "NOT-IN-CATALOGUE"
    path = tmp_path / "bill.json"
    path.write_text(json.dumps(bill, ensure_ascii=False), encoding="utf-8")
    result = medpay("settle", "--bill", str(path), "--person-id", psn_no, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    # the receipt shows the line wholly the patient's (丙, own 10.00 of 10.00) and the bill settles
    assert re.search(r"普通门诊诊查费\s+丙\s+10\.00\s+10\.00", result.stdout), result.stdout


def test_settle_a_malformed_bill_is_a_clear_error(tmp_path: Path, data_dir: Path) -> None:
    psn_no = _known_person(data_dir)
    path = tmp_path / "bill.json"
    path.write_text('{"chrg_bchno": "X", "med_type": "11"', encoding="utf-8")
    _assert_clean_error(
        medpay("settle", "--bill", str(path), "--person-id", psn_no, data_dir=data_dir),
        "not JSON",
        "BILL_INVALID",
    )


def test_settle_with_a_person_file_prices_the_xiangtan_case(data_dir: Path) -> None:
    # domain.md part 4, scenario B: 102,300 total, 9,400 out of scope; basic 59,605.00, critical
    # illness (tilted) 16,606.50, assistance 11,681.95 → personal 14,406.55 (placeholder parameters).
    result = medpay(
        "settle", "--json",
        "--bill", str(REPO / "config" / "bills" / "xiangtan-inpatient.json"),
        "--person", str(REPO / "config" / "people" / "xiangtan-disabled-resident.json"),
        data_dir=data_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)["setlinfo"]
    assert (info["hifp_pay"], info["hifmi_pay"], info["maf_pay"]) == ("59605.00", "16606.50", "11681.95")
    assert info["psn_part_amt"] == "14406.55"


def test_policy_validate_refuses_an_altered_bundle(tmp_path: Path, data_dir: Path) -> None:
    bundle = REPO / "config" / "policies" / "430300-2026.json"
    ok = medpay("policy", "validate", str(bundle), data_dir=data_dir)
    assert ok.returncode == 0 and "PLACEHOLDER" in ok.stdout
    altered = tmp_path / "430300-2026.json"
    altered.write_text(bundle.read_text(encoding="utf-8").replace('"0.60"', '"0.70"', 1), encoding="utf-8")
    _assert_clean_error(
        medpay("policy", "validate", str(altered), data_dir=data_dir), "altered", "POLICY_INVALID"
    )


def test_sync_sends_a_cli_settlement_to_the_reference_upstream(tmp_path: Path, data_dir: Path) -> None:
    from devkit.serving import ServerThread
    from devkit.upstream.app import create_app
    from devkit.upstream.client import register_people
    from devkit.upstream.state import build_upstream
    from terminal.demo_data import DEMO_PEOPLE

    psn_no = _known_person(data_dir)
    server = ServerThread(create_app(build_upstream(tmp_path / "upstream.sqlite"))).start()
    try:
        register_people(server.url, DEMO_PEOPLE)
        bill = str(REPO / "config" / "bills" / "outpatient-sample.json")
        assert medpay("settle", "--bill", bill, "--person-id", psn_no, data_dir=data_dir).returncode == 0
        result = medpay("sync", "--upstream", server.url, data_dir=data_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "delivered 1" in result.stdout
        assert "upstream results agree with the local estimates" in result.stdout
    finally:
        server.stop()


def test_sync_without_an_upstream_is_a_clear_error(data_dir: Path) -> None:
    _assert_clean_error(medpay("sync", data_dir=data_dir), "no upstream", "UPLINK_ERROR")


def _config_with_unreachable_upstream(tmp_path: Path) -> Path:
    # Port 9 (discard) on loopback: configured, never answering.
    return _config_with(
        tmp_path,
        **{
            '# url = "http://127.0.0.1:8765"': 'url = "http://127.0.0.1:9"',
            'policies = "policies"': f'policies = "{REPO}/config/policies"',
        },
    )


def test_settle_with_a_configured_upstream_never_reached_declines_and_records_nothing(
    tmp_path: Path, data_dir: Path
) -> None:
    psn_no = _known_person(data_dir)
    config = _config_with_unreachable_upstream(tmp_path)
    bill = str(REPO / "config" / "bills" / "outpatient-sample.json")
    result = medpay("settle", "--bill", bill, "--person-id", psn_no, data_dir=data_dir, config=config)
    _assert_clean_error(result, "nothing was charged", "OFFLINE_LIMIT")
    assert "未扣费" in result.stderr
    from terminal.store.db import open_db

    db = open_db(data_dir)
    try:
        assert next(iter(db.query("SELECT COUNT(*) AS n FROM settlements")))["n"] == 0
    finally:
        db.close()


def test_settle_offline_inside_the_limits_says_so_on_the_receipt(tmp_path: Path, data_dir: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from terminal.store.db import open_db
    from terminal.store.outbox import OutboxStore

    psn_no = _known_person(data_dir)
    db = open_db(data_dir)
    # The last complete sync an hour ago: offline now (silent > 10 min), well inside the 72 h limit.
    OutboxStore(db).note_contact(datetime.now(UTC) - timedelta(hours=1), synced=True)
    db.close()
    config = _config_with_unreachable_upstream(tmp_path)
    bill = str(REPO / "config" / "bills" / "outpatient-sample.json")
    result = medpay("settle", "--bill", bill, "--person-id", psn_no, data_dir=data_dir, config=config)
    assert result.returncode == 0, result.stderr
    assert "离线结算" in result.stdout and "Settled offline" in result.stdout


def test_settle_without_an_upstream_is_never_offline(data_dir: Path) -> None:
    psn_no = _known_person(data_dir)
    bill = str(REPO / "config" / "bills" / "outpatient-sample.json")
    result = medpay("settle", "--json", "--bill", bill, "--person-id", psn_no, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["offline"] is False


@pytest.mark.usefixtures("require_models")
def test_demo_refuses_the_photo_recognises_the_live_patient_and_settles(tmp_path: Path) -> None:
    result = medpay("demo", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "swung to follow the prompts: refused by the liveness challenge" in out
    assert "liveness passed, 1:N on its frames: recognised 张伟" in out
    assert "a person not enrolled: not recognised" in out
    assert "amounts add up: True" in out


@pytest.mark.usefixtures("require_models")
def test_demo_collects_the_cash_share_at_the_reference_gateway_before_it_says_paid(tmp_path: Path) -> None:
    import sqlite3

    from terminal.payment_types import out_trade_no_for

    result = medpay("demo", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # Collected before it says paid: unpaid at first, the patient pays, then 已支付 and 支付成功.
    assert out.index("未支付 not paid yet") < out.index("POST /control/pay-qr") < out.index("已支付:")
    assert out.index("已支付:") < out.index("支付成功")
    folder = tmp_path / "data" / "demo"
    with sqlite3.connect(folder / "medpay.sqlite") as db:
        msgid, result_json = db.execute("SELECT msgid, result FROM settlements").fetchone()
    psn_cash_pay = Decimal(str(json.loads(result_json)["setlinfo"]["psn_cash_pay"]))
    with sqlite3.connect(folder / "gateway" / "gateway.sqlite") as gateway:
        orders = gateway.execute("SELECT out_trade_no, total_fen, state FROM orders").fetchall()
    # The gateway's own database: one successful order, psn_cash_pay × 100 fen, numbered from the msgid.
    assert orders == [(out_trade_no_for(msgid), int(psn_cash_pay * 100), "SUCCESS")]
    assert psn_cash_pay > 0


@pytest.mark.usefixtures("require_models")
def test_demo_with_an_upstream_registers_its_people_there_over_http_and_reconciles(tmp_path: Path) -> None:
    from devkit.serving import ServerThread
    from devkit.upstream.app import create_app
    from devkit.upstream.state import build_upstream
    from terminal.demo_data import DEMO_PEOPLE

    upstream = build_upstream(tmp_path / "upstream.sqlite")
    try:
        with ServerThread(create_app(upstream)) as server:
            result = medpay("demo", "--upstream", server.url, data_dir=tmp_path / "data")
        held = upstream.settlements()
    finally:
        upstream.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"6. sync to {server.url}:" in result.stdout
    assert "delivered 1" in result.stdout
    assert "upstream results agree with the local estimates" in result.stdout
    # The upstream priced it for the demo's patient: the people reached it through /admin/demo-people.
    assert [s["psn_no"] for s in held] == [DEMO_PEOPLE[2].psn_no]
