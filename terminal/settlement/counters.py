"""The year-to-date counters a bundle knows, with their caps: what a what-if person file may state.

Pure: a counter name, its value and the bundle's tables in, PersonFileError (naming the field) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from terminal.errors import PersonFileError
from terminal.settlement import accumulators as acc
from terminal.settlement.policy import Level, PolicyBundle, PsnType

_NOUGHT = Decimal(0)
FIELD = "accumulators.counters"


def counter_caps(
    policy: PolicyBundle, insutype: str, psn_type: PsnType, level: Level, category: str | None
) -> dict[str, Decimal | None]:
    """Every counter name the bundle knows for this person, with its cap (None: no cap, ≥ 0 only)."""
    scheme = policy.schemes.get(insutype)
    if scheme is None:
        raise PersonFileError("insutype", f"{insutype} is not a scheme of policy {policy.bundle_id}")
    caps: dict[str, Decimal | None] = {}
    for benefit in scheme.benefits:
        if benefit.deductible_basis == "year":
            row = benefit.levels.get(level)
            rows = [row] if row is not None else list(benefit.levels.values())
            caps[acc.counter(acc.DEDUCTIBLE_USED, benefit.key)] = max(
                (r.deductible for r in rows), default=_NOUGHT
            )
        else:
            for lvl in benefit.levels:
                caps[acc.counter(acc.ADMISSIONS, f"{benefit.key}_{lvl}")] = None
    for group, by_type in scheme.annual_caps.items():
        caps[acc.counter(acc.POOLED_PAID, group)] = by_type[psn_type]
    for code, disease in scheme.opsp_diseases.items():
        caps[acc.counter(acc.OPSP_DEDUCTIBLE_USED, code)] = disease.deductible
        caps[acc.counter(acc.OPSP_PAID, code)] = disease.annual_limit
    assistance = policy.assistance
    chosen = assistance.categories.get(category) if assistance is not None and category else None
    if policy.critical_illness is not None:
        tilt = assistance.critical_illness_tilt if assistance is not None else None
        uncapped = (
            chosen is not None and chosen.critical_illness_tilt and tilt is not None and tilt.remove_cap
        )
        caps[acc.CRITICAL_ILLNESS_BASE] = None
        caps[acc.CRITICAL_ILLNESS_PAID] = None if uncapped else policy.critical_illness.annual_cap
    if policy.large_amount is not None:
        caps[acc.LARGE_AMOUNT_PAID] = policy.large_amount.annual_cap
    if policy.civil_servant is not None:
        caps[acc.CIVIL_SERVANT_PAID] = policy.civil_servant.annual_cap
    if policy.enterprise_supplementary is not None:
        caps[acc.ENTERPRISE_DEDUCTIBLE_USED] = policy.enterprise_supplementary.deductible
        caps[acc.ENTERPRISE_PAID] = policy.enterprise_supplementary.annual_cap
    if assistance is not None:
        kinds = [chosen] if chosen is not None else list(assistance.categories.values())
        caps[acc.ASSISTANCE_DEDUCTIBLE_USED] = max((k.deductible for k in kinds), default=_NOUGHT)
        limits = [k.annual_cap for k in kinds]
        caps[acc.ASSISTANCE_PAID] = None if None in limits else max([x for x in limits if x is not None])
    return caps


def check_counters(counters: Mapping[str, Decimal], caps: Mapping[str, Decimal | None]) -> None:
    """Known names only, each ≥ 0 and within its cap, admissions whole; PersonFileError naming the field."""
    for name, value in counters.items():
        where = f"{FIELD}.{name}"
        if name not in caps:
            known = ", ".join(sorted(caps))
            raise PersonFileError(where, f"unknown counter (this bundle knows: {known})")
        if value < _NOUGHT:
            raise PersonFileError(where, f"{value} is negative")
        cap = caps[name]
        if cap is not None and value > cap:
            raise PersonFileError(where, f"{value} is above its cap {cap}")
        if name.startswith(acc.ADMISSIONS + ".") and value != value.to_integral_value():
            raise PersonFileError(where, f"{value} is not a whole number of stays")
