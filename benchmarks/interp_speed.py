"""Interpreter speed: executed instructions per second on loop-heavy programs.

Each workload is decoded once, then run ``repeat`` times; the best run counts
(the others absorb warm-up and noise). Every run's r0 is checked against the
workload's expected value, so a fast wrong interpreter cannot score.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from ebpfvm.interp import Interpreter

from .programs import WORKLOADS


def measure(name: str, repeat: int) -> dict[str, float | int | str]:
    workload = WORKLOADS[name]()
    start = time.perf_counter()
    interpreter = Interpreter(workload.program)
    decode_seconds = time.perf_counter() - start
    best = float("inf")
    executed = 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = interpreter.run(workload.mem, budget=100_000_000)
        elapsed = time.perf_counter() - start
        if result.r0 != workload.expected_r0:
            raise SystemExit(f"{name}: r0 = {result.r0}, expected {workload.expected_r0}")
        best = min(best, elapsed)
        executed = result.executed
    return {"name": name, "description": workload.description, "slots": len(workload.program),
            "executed": executed, "seconds": best, "rate": executed / best, "decode_ms": decode_seconds * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks interp", description=__doc__)
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"any of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per workload (best counts)")
    args = parser.parse_args(argv)
    names = args.workloads or list(WORKLOADS)
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(unknown)}")
    print(f"# Python {platform.python_version()} ({platform.python_implementation()}) on {platform.machine()}")
    print(f"{'workload':<12} {'slots':>5} {'executed':>10} {'best s':>8} {'M insn/s':>9} {'decode ms':>9}")
    rates = []
    for name in names:
        row = measure(name, args.repeat)
        rates.append(row["rate"])
        print(f"{row['name']:<12} {row['slots']:>5} {row['executed']:>10,} {row['seconds']:>8.3f} "
              f"{row['rate'] / 1e6:>9.2f} {row['decode_ms']:>9.2f}")
    geomean = 1.0
    for rate in rates:
        geomean *= rate
    geomean **= 1 / len(rates)
    print(f"geometric mean: {geomean / 1e6:.2f} M instructions/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
