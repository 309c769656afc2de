"""Outbox durability and sync throughput.

1. durable settlements/s: price + record (settlement, accumulators, outbox, audit in one transaction)
   on a real SQLite file with synchronous=FULL, so each one is on disk before the patient is told;
2. sync throughput: a full drain of those settlements to the reference upstream on loopback
   (sign, POST, upstream prices and commits with FULL sync, local result + reconcile + audit commit).

Prints the figures and writes bench/results/outbox.json. Timing lives here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.integration.uplink_kit import start_upstream, terminal_side, uplink, worker

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "outbox.json"

log = logging.getLogger("bench.outbox")


def run(count: int) -> dict[str, Any]:
    """Settle `count` bills durably, then drain them to a loopback upstream; the measured figures."""
    with tempfile.TemporaryDirectory(prefix="medpay-bench-") as tmp:
        folder = Path(tmp)
        side = terminal_side(folder / "terminal")
        latencies = []
        start = time.perf_counter()
        for i in range(count):
            t0 = time.perf_counter()
            side.settle(i)
            latencies.append((time.perf_counter() - t0) * 1000)
        settle_s = time.perf_counter() - start
        up, server = start_upstream(folder / "upstream")
        link = uplink(folder / "terminal", server.url)
        try:
            sync = worker(side, link)
            start = time.perf_counter()
            report = sync.drain()
            sync_s = time.perf_counter() - start
        finally:
            link.close()
            server.stop()
            up.close()
            side.db.close()
        if report.delivered != count:
            raise RuntimeError(f"only {report.delivered} of {count} delivered: {report.stopped_on}")
    latencies.sort()
    return {
        "benchmark": "outbox",
        "settlements": count,
        "synchronous": "FULL",
        "durable_settlements_per_s": round(count / settle_s, 1),
        "settle_latency_ms": {
            "median": round(statistics.median(latencies), 3),
            "p99": round(latencies[int(0.99 * (count - 1))], 3),
            "max": round(latencies[-1], 3),
        },
        "sync_delivered_per_s": round(count / sync_s, 1),
        "machine": {"python": platform.python_version(), "cpu": platform.machine(), "cpus": os.cpu_count()},
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print it and write the JSON result."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="settlements to record and deliver")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    result = run(args.count)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
