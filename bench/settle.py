"""Settlement engine throughput: 50-line bills through presettle() on one core.

Prints settlements per second and latency percentiles and writes bench/results/settle.json.
Goal: >= 10,000/s (issue 19; issue 3 asked 5,000/s) and p99 <= 2 ms on a kiosk-class CPU. Timing lives
here, never in tests.
The same bills are timed in several rounds and the medians reported with every round's figure,
because the development machine is shared and one round can be a third slower than the next.
The record says whether the engine ran compiled by mypyc (`make setup`, setup.py) or interpreted
(`MEDPAY_PURE_PYTHON=1 make setup`); compare the two in alternating runs (docs/settlement.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal.domain import Bill, FeeLine, Person
from terminal.settlement import (
    Accumulators,
    Catalog,
    OpspFiling,
    PersonBenefits,
    PolicyBundle,
    SettlementContext,
    presettle,
)
from terminal.settlement.native import compiled_modules, engine_build
from terminal.store.policy_files import load_bundle, load_catalog

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "settle.json"
DAY = date(2025, 6, 3)


def _bills(catalog: Catalog, count: int, lines: int, seed: int) -> list[Bill]:
    rng = random.Random(seed)  # fixed seed: the same bills every run
    items = list(catalog.items)
    out = []
    for b in range(count):
        fee_lines = []
        for i in range(lines):
            item = rng.choice(items)
            cnt = Decimal(rng.randint(1, 5))
            pric = Decimal(rng.randint(100, 90000)) / 100
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
        med_type = rng.choice(["11", "14", "2101", "41"])
        out.append(Bill(f"BENCH{b}", med_type, tuple(fee_lines), datetime(2025, 6, 3, 9, 30)))
    return out


def _people() -> list[tuple[Person, SettlementContext]]:
    filing = (OpspFiling("M03900", date(2024, 1, 1)),)
    resident = Person(
        "P1", "居民", "430302199001011239", "390", "active", "430100", gend="1", brdy=date(1958, 1, 1)
    )
    employee = Person("P2", "职工", "430302196001011235", "310", "retired", "430100", Decimal("800.00"), "2")
    return [
        (resident, SettlementContext("level3_city", DAY, PersonBenefits(filing, "severe_disability"))),
        (employee, SettlementContext("level2", DAY, PersonBenefits(filing, cvlserv_flag=True))),
    ]


def _round(
    bills: list[Bill],
    people: list[tuple[Person, SettlementContext]],
    acc: Accumulators,
    policy: PolicyBundle,
    catalog: Catalog,
) -> tuple[float, float, list[float]]:
    """One timed pass over the bills: wall seconds, CPU seconds, sorted latencies in ms."""
    latencies = []
    start = time.perf_counter()
    cpu_start = time.process_time()
    for i, b in enumerate(bills):
        person, ctx = people[i % 2]
        t0 = time.perf_counter_ns()
        presettle(b, person, acc, policy, catalog, ctx)
        latencies.append((time.perf_counter_ns() - t0) / 1e6)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start  # what the process itself used: less hurt by a busy machine
    latencies.sort()
    return elapsed, cpu, latencies


def _pct(latencies: list[float], p: float) -> float:
    return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]


def run(count: int, lines: int, seed: int, rounds: int = 5) -> dict[str, Any]:
    """Time presettle over `count` bills of `lines` lines, `rounds` times; returns the result record."""
    policy = load_bundle(REPO / "config" / "policies" / "430300-2025.json")
    catalog = load_catalog(REPO / "config" / "catalog" / "430300-national.json")
    bills = _bills(catalog, count, lines, seed)
    people = _people()
    acc = Accumulators(
        2025, {"pooled_paid.pooled": Decimal("1200.00"), "critical_illness_base": Decimal("9000")}
    )
    for b in bills[:50]:  # warm-up: imports, caches, branch predictors
        person, ctx = people[0]
        presettle(b, person, acc, policy, catalog, ctx)
    passes = [_round(bills, people, acc, policy, catalog) for _ in range(rounds)]
    wall = [round(count / elapsed, 1) for elapsed, _, _ in passes]
    cpu = [round(count / used, 1) for _, used, _ in passes]
    p99 = [round(_pct(latencies, 99), 4) for _, _, latencies in passes]

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 4)

    return {
        "benchmark": "settle",
        "engine": engine_build(),  # "compiled" (mypyc) or "interpreted"
        "compiled_modules": list(compiled_modules()),
        "bills": count,
        "lines_per_bill": lines,
        "rounds": rounds,
        "settlements_per_s": median(wall),  # median over the rounds
        "settlements_per_cpu_s": median(cpu),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "latency_ms": {  # medians over the rounds of each round's percentile; max over all rounds
            "median": median([statistics.median(latencies) for _, _, latencies in passes]),
            "p90": median([_pct(latencies, 90) for _, _, latencies in passes]),
            "p99": median(p99),
            "max": round(max(latencies[-1] for _, _, latencies in passes), 4),
        },
        "per_round": {"settlements_per_s": wall, "settlements_per_cpu_s": cpu, "p99_ms": p99},
        "goal": {"settlements_per_s": 10000, "p99_ms": 2.0},
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "note": "one process, one thread; includes fund-safety checks, trace text and accumulators",
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a summary, write bench/results/settle.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bills", type=int, default=5000)
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the same bills")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.bills, args.lines, args.seed, args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    lat = result["latency_ms"]
    rounds = result["per_round"]
    sys.stdout.write(
        f"{result['bills']} bills × {result['lines_per_bill']} lines, {result['engine']} engine, "
        f"median of {result['rounds']} rounds: "
        f"{result['settlements_per_s']}/s (rounds {min(rounds['settlements_per_s'])}–"
        f"{max(rounds['settlements_per_s'])}; {result['settlements_per_cpu_s']}/CPU-s, "
        f"load {result['load_average'][0]}), median {lat['median']} ms, p99 {lat['p99']} ms "
        f"(goal ≥ 10000/s, p99 ≤ 2 ms) → {args.out}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
