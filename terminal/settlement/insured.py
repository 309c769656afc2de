"""Which bundle prices a patient, and under which cross-region status (docs/settlement.md §Cross-region).

The national rule for care outside the insured region: the place of care's catalogue, the insured
place's benefits (domain.md 2.5 [C: Qingyang DRG rules; I: 医保发〔2022〕22号, not verified]). So a
patient insured in the terminal's own prefecture is priced by the treating place's bundle; anyone else
by their insured place's bundle from the insured-place shelf, or refused when it does not hold one.
Checkout and what-if both call choose_policy(), so they decide the same way from insuplc_admdvs.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from terminal.domain import OffsiteFiling
from terminal.errors import InsuredPolicyMissingError
from terminal.settlement.policy import CrossRegionKind, PolicyBundle
from terminal.settlement.shelf import PolicyShelf, prefecture, province

_STATUS = {"filed": "已备案", "temporary": "临时外出就医", "unfiled": "未备案"}


class PolicyChoice(NamedTuple):
    """The bundle that prices the patient's benefits, the cross-region status, and the rule in words."""

    bundle: PolicyBundle
    cross_region: CrossRegionKind | None  # None: insured where treated
    rule: str  # the trace's first step: names the bundle and the rule used


def choose_policy(
    treating: PolicyShelf,
    insured: PolicyShelf,
    treating_admdvs: str,
    insuplc_admdvs: str,
    day: date,
    declared: CrossRegionKind | None = None,
    override: PolicyBundle | None = None,
) -> PolicyChoice:
    """Pick the bundle and status for a patient insured in `insuplc_admdvs` treated in `treating_admdvs`.

    - Same prefecture: the treating place's bundle, no cross-region status.
    - Same province (first two digits), another prefecture: 免备案 — care without prior filing is
      treated as filed [I: inferred from domain.md §0 "异地就医免备案", no notice read].
    - Another province: the filing status the caller knows (`declared`: from the person file or the
      person's facts), unfiled when it knows none; the insured bundle's reduction for that status.
    Outside the prefecture the bundle is the insured place's (`override`, a bundle the technician
    named, takes its place), InsuredPolicyMissingError when the insured-place shelf has none for `day`.
    """
    home = prefecture(treating_admdvs)
    place = prefecture(insuplc_admdvs)
    if place == home:
        bundle = override or treating.for_date(day)
        return PolicyChoice(bundle, None, f"本地参保({insuplc_admdvs}): 按就医地政策 {_named(bundle)}")
    found = override or insured.for_region(place, day)
    if found is None:
        raise InsuredPolicyMissingError(
            f"patient insured in {insuplc_admdvs} (region {place}), treated in {home}: no bundle of "
            f"region {place} prices {day} on the insured-place shelf (it holds {insured.held()})"
        )
    bundle = found
    if province(place) == province(home):
        kind: CrossRegionKind = "filed"
        status = "省内异地就医免备案, 视同已备案"
    else:
        kind = declared or "unfiled"
        status = f"跨省异地就医, {_STATUS[kind]}" + ("" if declared else " (未收到备案信息)")
    rule = f"异地就医: 参保地 {place} 待遇按参保地政策 {_named(bundle)}, 目录按就医地 {home}; {status}"
    return PolicyChoice(bundle, kind, rule)


def _named(bundle: PolicyBundle) -> str:
    return f"{bundle.bundle_id} v{bundle.version} 修订{bundle.revision}"


def filed_status(
    filings: tuple[OffsiteFiling, ...], treating_admdvs: str, day: date
) -> CrossRegionKind | None:
    """The 异地就医备案 status the person's filings give for care here on `day`; None when none covers it.

    A long-term filing wins over a temporary one when both cover the day (the better benefits).
    """
    kinds = {f.kind for f in filings if f.covers(treating_admdvs, day)}
    return "filed" if "filed" in kinds else "temporary" if kinds else None
