"""Pure settlement rule engine: policy bundle, catalogue, layers, engine. No I/O: files are read by the store.

from terminal.settlement import presettle, parse_bundle, parse_catalog, Accumulators, SettlementContext
"""

from terminal.settlement.accumulators import AccumulatorDelta, Accumulators
from terminal.settlement.bundle import parse_bundle
from terminal.settlement.catalog import Catalog, CatalogError, CatalogItem, parse_catalog
from terminal.settlement.checks import check_bill
from terminal.settlement.context import (
    Dispensing,
    OpspFiling,
    PersonBenefits,
    SafetyFacts,
    SettlementContext,
    Visit,
)
from terminal.settlement.engine import presettle, reverse
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.result import Finding, LineResult, SetlDetail, SetlInfo, SettlementResult, TraceStep
from terminal.settlement.safety import FundSafetyError, fund_safety

__all__ = [
    "AccumulatorDelta",
    "Accumulators",
    "Catalog",
    "CatalogError",
    "CatalogItem",
    "Dispensing",
    "Finding",
    "FundSafetyError",
    "LineResult",
    "OpspFiling",
    "PersonBenefits",
    "PolicyBundle",
    "SafetyFacts",
    "SetlDetail",
    "SetlInfo",
    "SettlementContext",
    "SettlementResult",
    "TraceStep",
    "Visit",
    "check_bill",
    "fund_safety",
    "parse_bundle",
    "parse_catalog",
    "presettle",
    "reverse",
]
