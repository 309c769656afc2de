"""Golden results: the full to_json() of representative bills, pinned byte for byte.

The engine is tuned for speed (issue 3: 50-line bills, ≥ 5,000/s); no optimisation may change a result.
The worked examples are pinned in full, so a failure shows the field that moved; a few hundred
bench-style bills (every scheme, level, med_type, assistance category, cross-region status, and
accumulators from empty to past every cap) are pinned by digest. Both were written by the engine before
it was optimised. Regenerate only for an intended change of results:

    MEDPAY_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/unit/settlement/test_golden.py
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from terminal.domain import Bill, FeeLine, Person
from terminal.errors import SettlementError
from terminal.settlement import (
    Accumulators,
    OpspFiling,
    PersonBenefits,
    SafetyFacts,
    SettlementContext,
    SettlementResult,
    presettle,
)
from terminal.settlement.context import Dispensing
from terminal.settlement.policy import LEVELS

from .helpers import (
    BED,
    CHILD_SYRUP,
    CT,
    GLARGINE,
    METFORMIN,
    STENT,
    TAMSULOSIN,
    VITAMINS,
    bill,
    bundle,
    catalog,
    context,
    empty,
    line,
    person,
)
from .test_worked_examples import _small_inpatient, _xiangtan_bill

GOLDEN = Path(__file__).with_name("golden_results.json")
D = Decimal
Case = Callable[[], SettlementResult]


def _settle(b: Bill, p: Person, a: Accumulators, c: SettlementContext) -> SettlementResult:
    return presettle(b, p, a, bundle(), catalog(), c)


def _filing() -> PersonBenefits:
    return PersonBenefits((OpspFiling("M03900", date(2024, 3, 1), date(2026, 2, 28)),))


def _diabetes_bill(med_type: str) -> Bill:
    return bill(
        med_type,
        line("1", METFORMIN, "2", "12.80", dise_codg="M03900"),
        line("2", GLARGINE, "2", "98", dise_codg="M03900"),
        line("3", VITAMINS, "1", "50"),
    )


WORKED: dict[str, Case] = {
    "xiangtan_severe_disability": lambda: _settle(
        _xiangtan_bill(),
        person("390"),
        empty(),
        context(benefits=PersonBenefits(assistance_category="severe_disability")),
    ),
    "xiangtan_ordinary_resident": lambda: _settle(_xiangtan_bill(), person("390"), empty(), context()),
    "xiangtan_second_stay_earlier_selfpay": lambda: _settle(
        _xiangtan_bill(),
        person("390"),
        Accumulators(
            2025, {"critical_illness_base": D("20000.00"), "admissions.inpatient_level3_city": D(1)}
        ),
        context(),
    ),
    "critical_illness_cap_nearly_used": lambda: _settle(
        _xiangtan_bill(),
        person("390"),
        Accumulators(2025, {"critical_illness_base": D("600000"), "critical_illness_paid": D("399990.00")}),
        context(),
    ),
    "assistance_cap_nearly_used": lambda: _settle(
        _xiangtan_bill(),
        person("390"),
        Accumulators(2025, {"assistance_paid": D("59000.00")}),
        context(benefits=PersonBenefits(assistance_category="tekun")),
    ),
    "dibao_edge": lambda: _settle(
        _xiangtan_bill(),
        person("390"),
        empty(),
        context(benefits=PersonBenefits(assistance_category="dibao_edge")),
    ),
    "diabetes_pharmacy": lambda: _settle(
        _diabetes_bill("41"), person("390"), empty(), context("primary", _filing())
    ),
    "retired_employee_chronic_limit_nearly_used": lambda: _settle(
        _diabetes_bill("14"),
        person("310", "retired", balc="300.00"),
        Accumulators(2025, {"opsp_paid.M03900": D("3900.00")}),
        context("level2", _filing()),
    ),
    "chronic_without_filing_is_outpatient": lambda: _settle(
        _diabetes_bill("14"), person("310", balc="1000.00"), empty(), context("level2")
    ),
    "cross_region_unfiled": lambda: _settle(
        _small_inpatient(), person("390"), empty(), context(cross_region="unfiled")
    ),
    "employee_over_pooled_cap_large_amount": lambda: _settle(
        _small_inpatient(),
        person("310", balc="50.00"),
        Accumulators(2025, {"pooled_paid.pooled": D("149800.00")}),
        context(),
    ),
    "civil_servant": lambda: _settle(
        replace(_small_inpatient(), acct_used_flag=False),
        person("310", balc="5000.00"),
        empty(),
        context(benefits=PersonBenefits(cvlserv_flag=True)),
    ),
    "resident_outpatient_not_covered_at_level3": lambda: _settle(
        bill("11", line("1", BED, "1", "40"), line("2", CT, "1", "300")), person("390"), empty(), context()
    ),
    "fund_safety_flags": lambda: _settle(
        bill(
            "11",
            line("1", TAMSULOSIN, "3", "20"),
            line("2", CHILD_SYRUP, "1", "15.5"),
            line("3", METFORMIN, "2", "12.80"),
            line("4", STENT, "1", "900"),
        ),
        person("310", gend="2", balc="20.00"),
        empty(),
        context(
            "primary",
            safety=SafetyFacts(recent_dispensings=(Dispensing(METFORMIN, date(2025, 5, 30), 30),)),
        ),
    ),
}


def _random_cases(count: int, seed: int) -> list[tuple[str, Case]]:
    """Bench-style bills (up to 50 lines) over every scheme, level, med_type and accumulator state."""
    rng = random.Random(seed)
    items = list(catalog().items)
    med_types = ["11", "13", "14", "41", "21", "2101", "2102"]
    categories = [None, None, "tekun", "dibao_edge", "severe_disability"]
    counters = [
        "deductible_used.outpatient",
        "pooled_paid.pooled",
        "pooled_paid.outpatient",
        "opsp_paid.M03900",
        "opsp_deductible_used.M03900",
        "critical_illness_base",
        "critical_illness_paid",
        "large_amount_paid",
        "civil_servant_paid",
        "assistance_paid",
        "assistance_deductible_used",
    ]
    out: list[tuple[str, Case]] = []
    for n in range(count):
        fee_lines = []
        for i in range(rng.choice([1, 3, 12, 50])):
            item = rng.choice(items)
            cnt = D(rng.randint(1, 5))
            pric = (
                D(rng.randint(1, 9_000_000)) / 100 if rng.random() < 0.2 else D(rng.randint(100, 90000)) / 100
            )
            fee_lines.append(
                FeeLine(
                    f"{i + 1}",
                    item.med_list_codg,
                    cnt,
                    pric,
                    cnt * pric,
                    dise_codg=rng.choice([None, "M03900"]),
                )
            )
        b = bill(rng.choice(med_types), *fee_lines, acct=rng.random() < 0.8, bchno=f"G{n}")
        p = person(
            rng.choice(["310", "390"]),
            rng.choice(["active", "retired"]),
            str(D(rng.randint(0, 500000)) / 100),
            gend=rng.choice(["1", "2"]),
            brdy=date(rng.randint(1930, 2020), 3, 1),
        )
        values = {k: D(rng.randint(0, 40_000_000)) / 100 for k in rng.sample(counters, rng.randint(0, 5))}
        values[f"admissions.inpatient_{rng.choice(LEVELS)}"] = D(rng.randint(0, 2))
        a = Accumulators(2025, values)
        c = SettlementContext(
            institution_level=rng.choice(LEVELS),
            setl_date=date(2025, 6, 3),
            benefits=PersonBenefits(
                opsp_filings=rng.choice([(), (OpspFiling("M03900", date(2024, 1, 1)),)]),
                assistance_category=rng.choice(categories),
                cvlserv_flag=rng.random() < 0.3,
            ),
            cross_region=rng.choice([None, None, None, "filed", "unfiled", "temporary"]),
        )
        out.append((f"random_{n}", partial(_settle, b, p, a, c)))
    return out


RANDOM = _random_cases(300, seed=20251126)


def _canonical(result: SettlementResult) -> str:
    return json.dumps(result.to_json(), ensure_ascii=False, sort_keys=True, indent=1)


def _digest(case: Case) -> str:
    # repr() as well as the JSON: it shows every Decimal's exponent, which to_json() rounds away.
    # A refused bill is pinned by its error.
    try:
        result = case()
    except SettlementError as exc:
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = _canonical(result) + "\n" + repr(result)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _compute() -> dict[str, Any]:
    return {
        "worked": {name: json.loads(_canonical(case())) for name, case in WORKED.items()},
        "worked_digest": {name: _digest(case) for name, case in WORKED.items()},
        "random": {name: _digest(case) for name, case in RANDOM},
    }


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if os.environ.get("MEDPAY_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(_compute(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("name", sorted(WORKED))
def test_worked_example_result_is_unchanged(golden: dict[str, Any], name: str) -> None:
    assert json.loads(_canonical(WORKED[name]())) == golden["worked"][name]


def test_worked_example_reprs_are_unchanged(golden: dict[str, Any]) -> None:
    # the full to_json() above catches a moved figure; the digest also pins Decimal exponents
    assert {name: _digest(case) for name, case in WORKED.items()} == golden["worked_digest"]


def test_bench_style_bills_are_unchanged(golden: dict[str, Any]) -> None:
    got = {name: _digest(case) for name, case in RANDOM}
    changed = sorted(name for name in got if got[name] != golden["random"].get(name))
    assert not changed, f"{len(changed)} of {len(got)} results changed, first {changed[:5]}"
