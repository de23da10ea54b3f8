"""Runtime cost of running the example objects: microseconds per run.

Each example is loaded once (ELF, maps) and run ``repeat`` times on a fixed
input through ``ebpfvm.runtime``; the best run counts. This is what one call
costs end to end (context and packet set-up, maps bound, helpers called), not
the bare dispatch loop that ``interp`` measures.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from ebpfvm.elf import load_object
from ebpfvm.runtime import Runtime

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# An Ethernet/IPv4/TCP SYN 192.168.1.10:12345 -> 10.0.0.1:80, checksums correct
# (the `rewrite-match` input of examples/README.md).
TCP_SYN = bytes.fromhex("020000000002020000000001080045000028000000004006af1dc0a8010a0a0000013039005000000000"
                        "000000005002ffffb3a60000")


# (object, program, packet, expected r0)
RUNS = (
    ("xdp_firewall", "xdp_firewall", TCP_SYN, 2),
    ("tc_rewrite", "tc_rewrite", TCP_SYN, 0),
    ("global_data", "score_packet", TCP_SYN, None),
    ("loop_sum", "sum_squares", TCP_SYN, 285),
    ("tail_calls", "dispatch", TCP_SYN, None),
    ("kprobe_counter", "count_unlinkat", None, 0),
)


def measure(obj_name: str, program: str, packet: bytes | None, expected: int | None,
            repeat: int) -> dict[str, float | int | str]:
    runtime = Runtime.for_object(load_object(EXAMPLES / f"{obj_name}.o"))
    best = float("inf")
    executed = 0
    for _ in range(repeat):
        start = time.perf_counter()
        result = runtime.run(program, packet=packet)
        elapsed = time.perf_counter() - start
        if expected is not None and result.r0 != expected:
            raise SystemExit(f"{obj_name}/{program}: r0 = {result.r0}, expected {expected}")
        best = min(best, elapsed)
        executed = result.executed
    return {"name": f"{obj_name}/{program}", "executed": executed, "us": best * 1e6,
            "rate": executed / best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks objects", description=__doc__)
    parser.add_argument("--repeat", type=int, default=200, help="runs per example; the best counts")
    args = parser.parse_args(argv)
    print(f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeat} runs")
    print("| program | executed insns | us per run | M insn/s |")
    print("| --- | ---: | ---: | ---: |")
    for run in RUNS:
        row = measure(*run, repeat=args.repeat)
        print(f"| {row['name']} | {row['executed']} | {row['us']:.1f} | {row['rate'] / 1e6:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
