"""政策找人: benefits a person appears eligible for and has not claimed, from the bundle's rules.

Pure: it reads the bundle's `benefit_hints` table, the person's benefit facts (gallery delta) and what
supervision merged from their history (diagnoses of recent settlements, 1101 identity types). It never
blocks checkout; the session shows the hints only when the person's settings allow it
(`PersonBenefits.benefit_hints`), and each shown hint is logged for the hospital's insurance office.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from terminal.domain import Person, PersonBenefits
from terminal.settlement.policy import BenefitHints

RESIDENT_INSUTYPES = ("390", "391", "392")  # domain.md §1.6: urban-rural resident schemes


def _diagnosed(codes: Sequence[str], diagnoses: Sequence[str]) -> bool:
    return any(d.startswith(code) for code in codes for d in diagnoses)


def _filed(benefits: PersonBenefits, code: str, today: date) -> bool:
    return any(
        f.opsp_dise_code == code and f.begndate <= today and (f.enddate is None or today <= f.enddate)
        for f in benefits.opsp_filings
    )


def benefit_hints(
    rules: BenefitHints | None,
    person: Person,
    benefits: PersonBenefits,
    diagnoses: Sequence[str],
    identities: Sequence[str],
    med_types: Sequence[str],
    today: date,
) -> list[dict[str, Any]]:
    """The hints whose rule fires, each {kind, message, because}; [] when the person did not opt in."""
    if rules is None or not benefits.benefit_hints:
        return []
    out: list[dict[str, Any]] = []
    for rule in rules.rules:
        because = ""
        if rule.kind == "opsp_filing" and rule.opsp_dise_code:
            if _diagnosed(rule.dise_codes, diagnoses) and not _filed(benefits, rule.opsp_dise_code, today):
                because = f"诊断 {'/'.join(rule.dise_codes)} 而无 {rule.opsp_dise_code} 门特备案"
        elif rule.kind == "two_diseases":
            resident = person.insutype in RESIDENT_INSUTYPES
            if resident and _diagnosed(rule.dise_codes, diagnoses) and "9901" not in med_types:
                because = f"居民, 诊断 {'/'.join(rule.dise_codes)}, 未享受两病门诊(9901)"
        elif rule.kind == "assistance":
            held = [i for i in identities if i in rule.identities]
            if held and benefits.assistance_category is None:
                because = f"身份 {'/'.join(held)} 而无医疗救助类别"
        if because:
            out.append({"kind": rule.kind, "message": rule.message, "because": because})
    return out
