"""Enterprise supplementary insurance (hifes_pay) and account mutual aid (acct_mulaid_pay), by hand.

The shipped bundles are signed and have neither table, so these tests add placeholder tables to a copy
of the shipped bundle (and sign one with a throwaway key to show a real bundle file can carry them).
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.domain import Bill, Person
from terminal.settlement import (
    Accumulators,
    PersonBenefits,
    PolicyBundle,
    SettlementContext,
    SettlementResult,
    parse_bundle,
    presettle,
    reverse,
)
from terminal.settlement.layers import mutual_aid_layer
from terminal.settlement.policy import AccountMutualAid, EnterpriseSupplementary
from terminal.settlement.signing import generate_signing_key, parse_trusted_keys, sign_bundle

from .helpers import (
    BED,
    BUNDLE_PATH,
    ICU,
    METFORMIN,
    VITAMINS,
    bill,
    bundle,
    catalog,
    context,
    empty,
    line,
    person,
)
from .strategies import accumulators, bills, contexts, people

D = Decimal
PLACEHOLDER = "test placeholder, not in domain.md"
INPATIENT = ("21", "2101", "2102", "24", "28")

ENTERPRISE = EnterpriseSupplementary(
    placeholder=True,
    source=PLACEHOLDER,
    med_types=INPATIENT,
    deductible=D("500.00"),
    ratio=D("0.50"),
    annual_cap=D("20000.00"),
)
MUTUAL_AID = AccountMutualAid(
    placeholder=True,
    source=PLACEHOLDER,
    med_types=("11", "13", "14", "41", *INPATIENT),
    pays_fully_selfpaid=False,
)


def _policy(**tables: object) -> PolicyBundle:
    return bundle().model_copy(update=tables)


def _settle(
    b: Bill, p: Person, policy: PolicyBundle, benefits: PersonBenefits, acc: Accumulators | None = None
) -> SettlementResult:
    return presettle(b, p, acc or empty(), policy, catalog(), context("level3_city", benefits))


def _icu_stay() -> Bill:
    # ICU 10 × 800 = 8000 and bed 10 × 40 = 400, both 甲 and within their ceilings: 8400 in scope
    return bill("2101", line("1", ICU, "10", "800"), line("2", BED, "10", "40"))


def _pharmacy() -> Bill:
    # metformin 2 × 12.80 = 25.60 (甲) and vitamins 50 (丙); med_type 41 is not pooled: all personal
    return bill("41", line("1", METFORMIN, "2", "12.80"), line("2", VITAMINS, "1", "50"))


def _money(r: SettlementResult, *names: str) -> list[str]:
    data = r.setlinfo.to_json()
    return [data[n] for n in names]


# --- enterprise supplementary (hifes_pay) ---


def test_enterprise_plan_pays_its_ratio_of_the_self_pay_above_its_deductible() -> None:
    # pooled: (8400 − 1100) × 85% = 6205.00; self-pay left 2195.00; plan (2195 − 500) × 50% = 847.50
    # personal 8400 − 6205 − 847.50 = 1347.50: account 300, cash 1047.50
    r = _settle(
        _icu_stay(),
        person("310", balc="300.00"),
        _policy(enterprise_supplementary=ENTERPRISE),
        PersonBenefits(enterprise_supplementary=True),
    )
    assert _money(
        r, "hifp_pay", "hifes_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay"
    ) == [
        "6205.00",
        "847.50",
        "7052.50",
        "1347.50",
        "300.00",
        "1047.50",
    ]
    row = next(d for d in r.setldetail if d.fund_pay_type == "370100")
    assert (row.fund_payamt, row.inscp_scp_amt, row.crt_payb_lmt_amt) == (
        D("847.50"),
        D("2195.00"),
        D("20000.00"),
    )
    assert r.delta.changes["enterprise_deductible_used"] == D("500.00")
    assert r.delta.changes["enterprise_paid"] == D("847.50")


def test_enterprise_plan_counts_the_deductible_already_met_and_stops_at_its_cap() -> None:
    # deductible 500 with 200 met leaves 300: (2195 − 300) × 50% = 947.50, but only 500 of the cap is left
    before = Accumulators(2025, {"enterprise_deductible_used": D("200.00"), "enterprise_paid": D("19500.00")})
    r = _settle(
        _icu_stay(),
        person("310"),
        _policy(enterprise_supplementary=ENTERPRISE),
        PersonBenefits(enterprise_supplementary=True),
        before,
    )
    assert _money(r, "hifes_pay", "psn_part_amt") == ["500.00", "1695.00"]
    assert reverse(r.accumulators_after, r) == before


def test_enterprise_plan_pays_before_medical_assistance() -> None:
    # plan 847.50 leaves 1347.50; 特困 assistance 70% of that = 943.25; personal 404.25
    r = _settle(
        _icu_stay(),
        person("310"),
        _policy(enterprise_supplementary=ENTERPRISE),
        PersonBenefits(enterprise_supplementary=True, assistance_category="tekun"),
    )
    assert _money(r, "hifes_pay", "maf_pay", "psn_part_amt") == ["847.50", "943.25", "404.25"]
    assert [d.fund_pay_type for d in r.setldetail] == ["310100", "370100", "610100"]


@pytest.mark.parametrize(
    ("policy", "benefits", "who", "why"),
    [
        ({}, PersonBenefits(enterprise_supplementary=True), "310", "the shipped bundle has no plan"),
        ({"enterprise_supplementary": ENTERPRISE}, PersonBenefits(), "310", "the person is not in a plan"),
        (
            {"enterprise_supplementary": ENTERPRISE},
            PersonBenefits(enterprise_supplementary=True),
            "390",
            "resident",
        ),
    ],
)
def test_enterprise_plan_pays_nothing_without_plan_or_membership(
    policy: dict[str, Any], benefits: PersonBenefits, who: str, why: str
) -> None:
    r = _settle(_icu_stay(), person(who), _policy(**policy), benefits)
    assert r.setlinfo.hifes_pay == 0, why
    assert all(d.fund_pay_type != "370100" for d in r.setldetail)


# --- account mutual aid (acct_mulaid_pay) ---


def test_mutual_aid_layer_pays_what_the_own_account_left_up_to_the_family_balance() -> None:
    assert mutual_aid_layer(D("75.60"), D("10.00"), D("100.00"), True) == D("65.60")
    assert mutual_aid_layer(D("75.60"), D("10.00"), D("30.00"), True) == D("30.00")
    assert mutual_aid_layer(D("75.60"), D("80.00"), D("30.00"), True) == D("0.00")
    assert mutual_aid_layer(D("75.60"), D("0.00"), D("30.00"), False) == D("0.00")


def test_family_account_pays_a_residents_in_catalogue_share() -> None:
    # a resident has no account of their own; the family's pays the 25.60 in catalogue, not the 丙 50
    r = _settle(
        _pharmacy(),
        person("390"),
        _policy(account_mutual_aid=MUTUAL_AID),
        PersonBenefits(mulaid_balc=D("100")),
    )
    assert _money(r, "psn_part_amt", "acct_pay", "acct_mulaid_pay", "psn_cash_pay", "balc") == [
        "75.60",
        "25.60",
        "25.60",
        "50.00",
        "0.00",
    ]
    assert "家庭共济账户支付 25.60 (共济余额 100.00 → 74.40)" in r.trace[-1].text


def test_family_account_pays_after_the_own_account_and_only_the_own_balance_falls() -> None:
    # own account 10.00 first (it may pay 丙), then the family's 65.60 of what is left (rule allows 丙 too)
    aid = MUTUAL_AID.model_copy(update={"pays_fully_selfpaid": True})
    r = _settle(
        _pharmacy(),
        person("310", balc="10.00"),
        _policy(account_mutual_aid=aid),
        PersonBenefits(mulaid_balc=D("100")),
    )
    assert _money(r, "acct_pay", "acct_mulaid_pay", "psn_cash_pay", "balc") == [
        "75.60",
        "65.60",
        "0.00",
        "0.00",
    ]


@pytest.mark.parametrize(
    ("policy", "balance", "acct", "med_type", "why"),
    [
        ({}, "100", True, "41", "the shipped bundle has no mutual aid"),
        ({"account_mutual_aid": MUTUAL_AID}, "0", True, "41", "no family balance"),
        ({"account_mutual_aid": MUTUAL_AID}, "100", False, "41", "the patient declined account payment"),
        (
            {"account_mutual_aid": MUTUAL_AID.model_copy(update={"med_types": ("11",)})},
            "100",
            True,
            "41",
            "41 not",
        ),
    ],
)
def test_family_account_pays_nothing_when_it_may_not(
    policy: dict[str, Any], balance: str, acct: bool, med_type: str, why: str
) -> None:
    b = replace(_pharmacy(), med_type=med_type, acct_used_flag=acct)
    r = _settle(b, person("390"), _policy(**policy), PersonBenefits(mulaid_balc=D(balance)))
    assert (r.setlinfo.acct_mulaid_pay, r.setlinfo.acct_pay, r.setlinfo.psn_cash_pay) == (0, 0, D("75.60")), (
        why
    )


# --- the bundle file ---


def test_a_signed_bundle_file_can_carry_both_tables() -> None:
    pem, entry = generate_signing_key()
    doc = json.loads(BUNDLE_PATH.read_text(encoding="utf-8"))
    doc["bundle"]["enterprise_supplementary"] = {
        "placeholder": True,
        "source": PLACEHOLDER,
        "med_types": ["2101"],
        "ratio": "0.50",
        "annual_cap": None,
    }
    doc["bundle"]["account_mutual_aid"] = {
        "placeholder": True,
        "source": PLACEHOLDER,
        "med_types": ["41"],
        "pays_fully_selfpaid": False,
    }
    keys = parse_trusted_keys(json.dumps({"keys": [entry.model_dump()]}).encode())
    loaded = parse_bundle(json.dumps(sign_bundle(doc["bundle"], pem), ensure_ascii=False).encode(), keys)
    assert loaded.enterprise_supplementary is not None
    assert (loaded.enterprise_supplementary.fund_pay_type, loaded.enterprise_supplementary.deductible) == (
        "370100",
        0,
    )
    assert loaded.account_mutual_aid == AccountMutualAid(
        placeholder=True, source=PLACEHOLDER, med_types=("41",), pays_fully_selfpaid=False
    )


def test_the_shipped_bundles_have_neither_table() -> None:
    # new tables are optional: the signed bundles load unchanged and keep today's results
    assert bundle().enterprise_supplementary is None
    assert bundle().account_mutual_aid is None


# --- properties with both tables in force ---

FULL = _policy(enterprise_supplementary=ENTERPRISE, account_mutual_aid=MUTUAL_AID)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def supplemented(draw: st.DrawFn) -> SettlementContext:
    """contexts(), sometimes in an enterprise plan, sometimes with a family account balance."""
    c = draw(contexts())
    balance = draw(st.sampled_from([D(0), D("0.01"), D("50.00"), D("5000.00")]))
    benefits = replace(c.benefits, enterprise_supplementary=draw(st.booleans()), mulaid_balc=balance)
    return replace(c, benefits=benefits)


enterprise_counters = st.fixed_dictionaries(
    {},
    optional={
        "enterprise_deductible_used": st.decimals(min_value=0, max_value=600, places=2),
        "enterprise_paid": st.decimals(min_value=0, max_value=25000, places=2),
    },
)


@FAST
@given(bills(), people(), accumulators(), enterprise_counters, supplemented())
def test_identities_bounds_and_reversal_hold_with_both_tables(
    b: Bill, p: Person, a: Accumulators, extra: dict[str, Decimal], c: SettlementContext
) -> None:
    a = Accumulators(2025, {**a.counters, **extra})
    r = presettle(b, p, a, FULL, catalog(), c)
    s = r.setlinfo
    assert s.medfee_sumamt == s.fund_pay_sumamt + s.psn_part_amt + s.hosp_part_amt
    assert s.psn_part_amt == s.acct_pay + s.psn_cash_pay
    assert s.fund_pay_sumamt == (
        s.hifp_pay + s.cvlserv_pay + s.hifes_pay + s.hifmi_pay + s.hifob_pay + s.maf_pay + s.oth_pay
    )
    assert sum((d.fund_payamt for d in r.setldetail), D(0)) == s.fund_pay_sumamt
    assert s.fund_pay_sumamt <= s.inscp_scp_amt
    assert 0 <= s.acct_mulaid_pay <= min(s.acct_pay, c.benefits.mulaid_balc)
    assert s.acct_pay - s.acct_mulaid_pay <= p.acct_balc
    assert s.psn_cash_pay >= 0
    assert s.hifes_pay <= max(D(0), ENTERPRISE.annual_cap - a.get("enterprise_paid"))  # type: ignore[operator]
    if not c.benefits.enterprise_supplementary:
        assert s.hifes_pay == 0
    assert reverse(r.accumulators_after, r) == a


@FAST
@given(bills(), people(), accumulators(), supplemented(), st.integers(0, 11), st.integers(1, 26))
def test_more_of_one_item_never_lowers_the_personal_share_with_both_tables(
    b: Bill, p: Person, a: Accumulators, c: SettlementContext, index: int, add: int
) -> None:
    charged = [j for j, line in enumerate(b.lines) if line.cnt > 0]  # refund lines give back, never add
    i = charged[index % len(charged)]
    old = b.lines[i]
    cnt = old.cnt + add
    more = replace(
        b, lines=(*b.lines[:i], replace(old, cnt=cnt, det_item_fee_sumamt=cnt * old.pric), *b.lines[i + 1 :])
    )
    small = presettle(b, p, a, FULL, catalog(), c).setlinfo.psn_part_amt
    assert presettle(more, p, a, FULL, catalog(), c).setlinfo.psn_part_amt >= small
