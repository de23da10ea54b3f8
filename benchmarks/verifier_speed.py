"""Verifier speed: every program of every example object, ebpfvm.verifier's
wall time and processed instructions per second next to the kernel's own
``verification time`` (the ``verification time N usec`` of its log, from
``ebpfvm.kernel.objects.verify_object_in_kernel``; "-" without a kernel).

Each program is verified ``repeat`` times; the best run counts.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from ebpfvm.elf import load_object
from ebpfvm.verifier import verify

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _kernel_verdicts(obj) -> dict:
    try:
        from ebpfvm.kernel import available
        if not available():
            return {}
        from ebpfvm.kernel.objects import verify_object_in_kernel
        return verify_object_in_kernel(obj)
    except Exception:
        return {}


def measure(repeat: int) -> list[dict]:
    rows = []
    for path in sorted(EXAMPLES.glob("*.o")):
        obj = load_object(str(path))
        kernel = _kernel_verdicts(obj)
        for program in obj.programs:
            best = float("inf")
            result = None
            for _ in range(repeat):
                start = time.perf_counter()
                result = verify(program, prog_type=program.prog_type,
                                expected_attach_type=program.expected_attach_type)
                best = min(best, time.perf_counter() - start)
            kv = kernel.get(program.name)
            kstats = getattr(kv, "stats", None)
            rows.append({"name": f"{path.stem}/{program.name}", "verdict": result.verdict,
                         "insns": result.stats["processed_insns"], "us": best * 1e6,
                         "rate": result.stats["processed_insns"] / best if best > 0 else 0.0,
                         "kernel_verdict": None if kv is None else ("accept" if kv.accepted else "reject"),
                         "kernel_insns": getattr(kstats, "insns_processed", None),
                         "kernel_us": getattr(kstats, "verification_time_usec", None)})
    return rows


def table(rows: list[dict]) -> str:
    def opt(v, fmt="{:,}"):
        return "-" if v is None else fmt.format(v)

    lines = ["| program | verdict (ebpfvm / kernel) | processed insns (ebpfvm / kernel) | ebpfvm us | ebpfvm insns/s "
             "| kernel verification us | ebpfvm / kernel |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        ratio = f"{r['us'] / r['kernel_us']:,.0f}x" if r["kernel_us"] else "-"
        lines.append(f"| {r['name']} | {r['verdict']} / {opt(r['kernel_verdict'], '{}')} | {r['insns']:,} / "
                     f"{opt(r['kernel_insns'])} | {r['us']:,.0f} | {r['rate']:,.0f} | {opt(r['kernel_us'])} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks verifier", description=__doc__)
    parser.add_argument("--repeat", type=int, default=20, help="verifications per program; the best counts")
    args = parser.parse_args(argv)
    print(f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeat} verifications")
    rows = measure(args.repeat)
    print(table(rows))
    slow = [r["name"] for r in rows if r["us"] >= 1e6]
    print(f"slowest: {max(r['us'] for r in rows) / 1e3:.1f} ms; over 1 s: {', '.join(slow) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
