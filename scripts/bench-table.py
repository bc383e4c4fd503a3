#!/usr/bin/env python3
"""Prints criterion's latest estimates as a markdown table.

Usage: scripts/bench-table.py GROUP [CRITERION_DIR]
  GROUP          verify, layer, claim_complete, ...
  CRITERION_DIR  default: $CARGO_TARGET_DIR/criterion, else target/bench/criterion

Each row: benchmark id, point estimate (slope when criterion fitted one,
else mean) and its 95% confidence interval, and throughput when set.
"""
import json
import os
import sys
from pathlib import Path


def fmt_ns(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    group = sys.argv[1]
    default = Path(os.environ.get("CARGO_TARGET_DIR", "target/bench")) / "criterion"
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else default
    rows = []
    for est in sorted((root / group).glob("**/new/estimates.json")):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        e = json.loads(est.read_text())
        stat = e.get("slope") or e["mean"]
        ci = stat["confidence_interval"]
        point = stat["point_estimate"]
        tp = bench.get("throughput") or {}
        extra = ""
        if "Bytes" in tp:
            extra = f"{tp['Bytes'] / point * 1e9 / 2**20:.0f} MiB/s"
        elif "Elements" in tp:
            extra = f"{tp['Elements'] / point * 1e3:.2f} M/s"
        rows.append((bench["full_id"], point, ci, extra))
    print("| benchmark | time | 95% CI | throughput |")
    print("|---|---|---|---|")
    for name, point, ci, extra in rows:
        print(f"| {name} | {fmt_ns(point)} | {fmt_ns(ci['lower_bound'])} – {fmt_ns(ci['upper_bound'])} | {extra} |")


main()
