"""Checkout over what the signed gallery delta brought: benefit facts price the bill, sync age limits offline.

Real reference upstream on loopback, real SQLite, real rule engine with the 2025 placeholder bundle
(config/policies/430300-2025.json) and the sample catalogue; the terminal is the level3_city
institution of the embedded default config, and the clock stands on 2025-06-03.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from devkit.serving import ServerThread
from devkit.upstream.state import Upstream
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, UplinkSection, load
from terminal.domain import Bill, FeeLine, Match
from terminal.errors import OfflineLimitError
from terminal.settlement import FundSafetyError, SettlementResult
from terminal.store.outbox import OutboxStore
from terminal.store.policy_files import load_trusted_keys
from terminal.uplink.client import HttpUplink
from terminal.uplink.gallery import sync_gallery, wire_template
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys
from tests.fakes import FixedClock
from tests.integration.uplink_kit import PEOPLE

# 钱二: resident scheme (390), active, no personal account balance.
RESIDENT = PEOPLE[1]
DIABETES = "M03900"
FILING = {"opsp_dise_code": DIABETES, "begndate": "2025-01-01", "enddate": None}


@dataclass
class Kiosk:
    """A terminal configured with the upstream and its gallery key, registered there."""

    terminal: Terminal
    link: HttpUplink
    upstream_url: str
    trusted: dict[str, bytes]
    clock: FixedClock

    def enrol(self, psn_no: str, **benefits: Any) -> None:
        """An enrolment at the centre's desk, with the benefit facts the delta will carry."""
        template = np.full(128, 0.05, dtype=np.float32)
        body = {
            "psn_no": psn_no,
            "consent": {
                "granted_at": "2025-05-20T10:00:00+08:00",
                "purpose": "刷脸就医身份核验",
                "operator": "enrol-desk-3",
                "text": "本人同意在本院自助机上保存并使用本人人脸特征用于医保结算身份核验。",
            },
            "templates": [wire_template(template, "dlib_resnet@e0b69024dfe5")],
            "benefits": benefits,
        }
        with httpx.Client(base_url=self.upstream_url, timeout=5) as client:
            client.post("/admin/gallery/enrol", json=body).raise_for_status()

    def remove(self, psn_no: str, reason: str) -> None:
        """The centre removes a face enrolment."""
        with httpx.Client(base_url=self.upstream_url, timeout=5) as client:
            client.post("/admin/gallery/remove", json={"psn_no": psn_no, "reason": reason}).raise_for_status()

    def sync_gallery(self) -> None:
        """One gallery sync at the clock's time."""
        term = self.terminal
        sync_gallery(term.db, self.link, term.gallery, term.ledger.allocate_msgid, self.clock, self.trusted)

    def price(self, bill: Bill, psn_no: str = RESIDENT.psn_no) -> SettlementResult:
        """The kiosk's pre-settlement of a bill."""
        return self.terminal.checkout.price(bill, psn_no).result


@pytest.fixture
def kiosk(data_dir: Path, clock: FixedClock, upstream: tuple[Upstream, ServerThread]) -> Iterator[Kiosk]:
    """A terminal with [uplink] url and gallery_trusted_keys set, registered with the upstream."""
    up, server = upstream
    keys_file = data_dir / "gallery_keys.json"
    keys_file.write_text(up.gallery_key().model_dump_json(), encoding="utf-8")
    config = load(DEFAULT_CONFIG)
    section = UplinkSection(url=server.url, gallery_trusted_keys=keys_file)
    terminal = build_terminal(config.model_copy(update={"uplink": section}), data_dir, clock)
    link = HttpUplink(server.url, uplink_keys(data_dir), identity(config.terminal))
    link.register(terminal.ledger.allocate_msgid(clock.now()), clock.now())
    try:
        yield Kiosk(terminal, link, server.url, load_trusted_keys(keys_file), clock)
    finally:
        link.close()
        terminal.close()


def _line(sn: str, code: str, cnt: str, pric: str, dise_codg: str | None = None) -> FeeLine:
    cnt_d, pric_d = Decimal(cnt), Decimal(pric)
    return FeeLine(sn, code, cnt_d, pric_d, cnt_d * pric_d, dise_codg=dise_codg)


def _opsp_bill(chrg_bchno: str = "OPSP-0001") -> Bill:
    """A 门特 visit (med_type 14): metformin for the filed diabetes, and a consultation."""
    return Bill(
        chrg_bchno=chrg_bchno,
        med_type="14",
        lines=(
            # 甲类 within its price ceiling of 12.80: all 128.00 in scope, for disease M03900.
            _line("1", "XA10BAE054A001010100001", "10", "12.80", DIABETES),
            # 甲类 consultation, no disease code: never in a 门特 group.
            _line("2", "001102000010000", "1", "10.00"),
        ),
        begntime=datetime.fromisoformat("2025-06-03T09:10:00+08:00"),
        acct_used_flag=False,
    )


def _layers(result: SettlementResult) -> set[str]:
    return {step.layer for step in result.trace}


# --- benefit facts from the delta price the bill --------------------------------------------------


def test_opsp_filing_from_the_gallery_delta_prices_the_opsp_layer(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no, opsp_filings=[FILING])
    kiosk.sync_gallery()

    result = kiosk.price(_opsp_bill())
    info = result.setlinfo

    # Resident 门特 M03900: deductible 0.00, ratio 70%, limit 2000.00 → 128.00 × 0.70 = 89.60.
    # The consultation (10.00) falls back to med_type 11, whose resident benefit covers only primary
    # institutions: 0.00 at this level3_city terminal. Patient: 138.00 − 89.60 = 48.40.
    assert "opsp" in _layers(result)
    assert (info.medfee_sumamt, info.inscp_scp_amt) == (Decimal("138.00"), Decimal("138.00"))
    assert info.hifp_pay == Decimal("89.60")
    assert info.fund_pay_sumamt == Decimal("89.60")
    assert info.psn_part_amt == Decimal("48.40")


def test_the_same_bill_without_a_filing_is_priced_as_ordinary_outpatient(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no)
    kiosk.sync_gallery()

    result = kiosk.price(_opsp_bill())

    # No filing: the whole bill falls back to med_type 11, not covered at level3_city → fund 0.00.
    assert "opsp" not in _layers(result)
    assert result.setlinfo.hifp_pay == Decimal("0.00")
    assert result.setlinfo.psn_part_amt == Decimal("138.00")


def test_a_filing_outside_its_valid_dates_does_not_price_the_opsp_layer(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no, opsp_filings=[{**FILING, "enddate": "2025-05-31"}])
    kiosk.sync_gallery()

    result = kiosk.price(_opsp_bill())

    # Ended three days before the visit: as without a filing.
    assert "opsp" not in _layers(result)
    assert result.setlinfo.hifp_pay == Decimal("0.00")


def test_an_assistance_recipient_from_the_gallery_delta_gets_maf_pay(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no, opsp_filings=[FILING], assistance_category="dibao")
    kiosk.sync_gallery()

    info = kiosk.price(_opsp_bill()).setlinfo

    # Pooled 89.60 as above; in-scope self-pay left 138.00 − 89.60 = 48.40. Critical illness: the
    # resident threshold 16000.00 halved for an assistance recipient (8000.00) is far off → 0.00.
    # 低保 assistance (med_type 14 is covered): deductible 0.00, ratio 70% → 48.40 × 0.70 = 33.88.
    # Fund 89.60 + 33.88 = 123.48; patient 138.00 − 123.48 = 14.52.
    assert info.hifmi_pay == Decimal("0.00")
    assert info.maf_pay == Decimal("33.88")
    assert info.fund_pay_sumamt == Decimal("123.48")
    assert info.psn_part_amt == Decimal("14.52")


def test_a_deceased_person_in_the_gallery_delta_is_refused_at_checkout(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no, deceased=True)
    kiosk.sync_gallery()

    with pytest.raises(FundSafetyError, match="已登记死亡") as refused:
        kiosk.price(_opsp_bill())
    assert [f.check for f in refused.value.findings] == ["insurance_not_active"]


def test_a_person_removed_as_no_longer_insured_is_refused_at_checkout(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no)
    kiosk.sync_gallery()
    assert kiosk.price(_opsp_bill()).setlinfo.medfee_sumamt == Decimal("138.00")
    kiosk.remove(RESIDENT.psn_no, "not_insured")
    kiosk.sync_gallery()

    # The ID-number path still finds the person record; the stored status refuses the settlement.
    with pytest.raises(FundSafetyError, match="参保状态非正常"):
        kiosk.price(_opsp_bill())


# --- the gallery's age counts against the offline limits ------------------------------------------


def _outbox_synced(kiosk: Kiosk, ago: timedelta) -> None:
    """A complete outbox drain `ago` before now, and nothing heard since: the upstream is unreachable."""
    OutboxStore(kiosk.terminal.db).note_contact(kiosk.clock.at - ago, synced=True)


def _settle(kiosk: Kiosk, chrg_bchno: str) -> bool:
    """Settle the 门特 bill; whether it was recorded offline."""
    checkout = kiosk.terminal.checkout
    priced = checkout.price(_opsp_bill(chrg_bchno), RESIDENT.psn_no)
    return checkout.settle(priced, Match(RESIDENT.psn_no, "credential")).offline


def test_a_gallery_older_than_the_offline_age_limit_declines_though_the_outbox_synced_recently(
    kiosk: Kiosk,
) -> None:
    kiosk.enrol(RESIDENT.psn_no)
    kiosk.sync_gallery()
    # Three days and a bit later: the outbox kept draining (a refused delta leaves the gallery behind)
    # until five hours ago; the gallery is 73 h old, beyond offline_max_age_h = 72.
    kiosk.clock.at += timedelta(hours=73)
    _outbox_synced(kiosk, timedelta(hours=5))

    with pytest.raises(OfflineLimitError, match="超过72小时未同步"):
        _settle(kiosk, "OFF-0001")
    assert next(iter(kiosk.terminal.db.query("SELECT COUNT(*) AS n FROM settlements")))["n"] == 0


def test_a_gallery_inside_the_offline_age_limit_settles_offline(kiosk: Kiosk) -> None:
    kiosk.enrol(RESIDENT.psn_no)
    kiosk.sync_gallery()
    kiosk.clock.at += timedelta(hours=71)
    _outbox_synced(kiosk, timedelta(hours=5))

    assert _settle(kiosk, "OFF-0002") is True


def test_a_configured_gallery_that_never_synced_declines_offline(kiosk: Kiosk) -> None:
    # The person is known (ID-number path) but no gallery delta was ever applied.
    kiosk.terminal.gallery.upsert_person(RESIDENT)
    _outbox_synced(kiosk, timedelta(hours=5))

    with pytest.raises(OfflineLimitError, match="nothing was charged"):
        _settle(kiosk, "OFF-0003")


def test_without_a_gallery_configured_only_the_outbox_sync_counts(data_dir: Path, clock: FixedClock) -> None:
    config = load(DEFAULT_CONFIG)
    # An upstream for settlements only: no gallery_trusted_keys, so no gallery sync to wait for.
    section = UplinkSection(url="http://127.0.0.1:9")
    terminal = build_terminal(config.model_copy(update={"uplink": section}), data_dir, clock)
    try:
        terminal.gallery.upsert_person(RESIDENT)
        OutboxStore(terminal.db).note_contact(clock.at - timedelta(hours=5), synced=True)
        priced = terminal.checkout.price(_opsp_bill("OFF-0004"), RESIDENT.psn_no)
        assert terminal.checkout.settle(priced, Match(RESIDENT.psn_no, "credential")).offline
    finally:
        terminal.close()
