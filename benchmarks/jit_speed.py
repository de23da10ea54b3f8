"""JIT speed: interpreter vs JIT (checked, trusted) on the workloads of
``programs.py``, JIT compile time by program size (with the optimisation
tier each program got), and ``run_many`` throughput for a trivial program.

    python -m benchmarks jit [--repeat N] [--opt-level 2] [--compile-only]

Every run's r0 is checked against the workload's expected value. ns/run of
the JIT includes the ctypes call (about a microsecond); ``run_many`` shows
the cost without it.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
from ebpfvm.jit import compile
from ebpfvm.jit.engine import clear_cache, ir_instructions
from ebpfvm.jit.lowering import lower_program

from ebpfvm.interp import Interpreter
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, JmpOp, Size
from ebpfvm.program import Program

from .programs import WORKLOADS


def _best(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def workload_rows(repeat: int, opt_level: int) -> list[str]:
    lines = [(f"{'workload':<12} {'executed':>10} {'interp ms':>10} {'checked ms':>10} {'trusted ms':>10} "
              f"{'interp M/s':>10} {'checked M/s':>11} {'trusted M/s':>11} {'speedup':>8} {'compile ms':>10}")]
    for name, make in WORKLOADS.items():
        w = make()
        interp = Interpreter(w.program)
        t_interp, res = _best(lambda interp=interp, w=w: interp.run(w.mem, budget=100_000_000), max(1, repeat // 2))
        assert res.r0 == w.expected_r0, name
        executed = res.executed
        row = {}
        for mode in ("checked", "trusted"):
            clear_cache()
            jit = compile(w.program, mode=mode, opt_level=opt_level)
            t, got = _best(lambda jit=jit, w=w: jit.run(w.mem, budget=100_000_000), repeat)
            assert got.r0 == w.expected_r0, (name, mode)
            row[mode] = (t, jit.compile_seconds)
        tc, tt = row["checked"][0], row["trusted"][0]
        lines.append(f"{name:<12} {executed:>10,} {t_interp * 1e3:>10.2f} {tc * 1e3:>10.3f} {tt * 1e3:>10.3f} "
                     f"{executed / t_interp / 1e6:>10.2f} {executed / tc / 1e6:>11.0f} {executed / tt / 1e6:>11.0f} "
                     f"{t_interp / tc:>7.0f}x {row['checked'][1] * 1e3:>10.1f}")
    return lines


def synthetic(n: int, seed: int = 1, loop: bool = False) -> Program:
    """``n`` instructions of straight-line ALU work with stack traffic and a few
    forward branches (the shape of compiled C), ending in exit. ``loop``: the
    first three instructions are a short counted loop (the program then has a
    back edge, which keeps it in the JIT's full optimisation tier)."""
    rng = random.Random(seed)
    ops = [AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.XOR, AluOp.OR, AluOp.AND, AluOp.LSH, AluOp.RSH]
    insns = [b.mov64_imm(r, r * 7 + 1) for r in range(10)]
    if loop:
        insns[:0] = [b.mov64_imm(9, 0), b.alu64_imm(AluOp.ADD, 9, 1), b.jmp_imm(JmpOp.JLT, 9, 3, -2)]
    while len(insns) < n - 1:
        k = rng.random()
        dst = rng.randrange(10)
        if k < 0.6:
            op = rng.choice(ops)
            if rng.random() < 0.5:
                insns.append(b.alu64_reg(op, dst, rng.randrange(10)))
            else:
                insns.append(b.alu64_imm(op, dst, rng.randrange(1, 63)))
        elif k < 0.75:
            insns.append(b.stx(Size.DW, 10, dst, -8 * rng.randrange(1, 64)))
        elif k < 0.9:
            insns.append(b.ldx(Size.DW, dst, 10, -8 * rng.randrange(1, 64)))
        else:
            insns.append(b.jmp_imm(rng.choice((JmpOp.JEQ, JmpOp.JGT, JmpOp.JSET)), dst,
                                   rng.randrange(100), rng.randrange(0, 3)))
    insns = insns[:n - 1]
    # Keep jumps inside the program.
    fixed = []
    for pc, insn in enumerate(insns):
        if insn.opcode & 0x07 == 0x05 and pc + 1 + insn.off >= len(insns):
            insn = b.mov64_imm(0, 0)
        fixed.append(insn)
    return Program([*fixed, b.exit_insn()])


@dataclass
class CompileTime:
    """Best-of wall times of compiling one program (cache cleared before each)."""

    total: float  # all of ``compile``
    python: float  # lowering and writing the IR text (the rest is LLVM)
    hit: float  # ``compile`` again with the program in the in-memory cache
    tier: str
    ir_size: int  # IR instructions


def compile_time(program: Program, mode: str, opt_level: int = 2, repeat: int = 5) -> CompileTime:
    best_total = best_python = float("inf")
    for _ in range(repeat):
        clear_cache()
        start = time.perf_counter()
        jit = compile(program, mode=mode, opt_level=opt_level)
        best_total = min(best_total, time.perf_counter() - start)
        start = time.perf_counter()
        ir_text = str(lower_program(program, checked=mode == "checked", helpers=jit.helpers).module)
        best_python = min(best_python, time.perf_counter() - start)
    hit, _ = _best(lambda: compile(program, mode=mode, opt_level=opt_level), repeat)
    return CompileTime(best_total, best_python, hit, jit.compiled.tier.name, ir_instructions(ir_text))


def compile_rows(opt_level: int, repeat: int = 3) -> list[str]:
    """Compile time of ``synthetic`` programs, best of ``repeat`` (one run at
    10,000 instructions): all of ``compile``, the part of it spent in Python
    (lowering and writing the IR text; the rest is LLVM), and ``compile``
    again when the in-memory cache has the program (a hit)."""
    lines = [(f"{'insns':>12} {'mode':<8} {'tier':<6} {'IR insns':>8} {'compile ms':>10} {'python ms':>9} "
              f"{'LLVM ms':>8} {'hit ms':>7}")]
    for n, loop in ((100, False), (1_000, False), (1_000, True), (10_000, False)):
        program = synthetic(n, loop=loop)
        for mode in ("checked", "trusted"):
            t = compile_time(program, mode, opt_level, repeat if n < 10_000 else 1)
            label = f"{n:,}" + (" (loop)" if loop else "")
            lines.append(f"{label:>12} {mode:<8} {t.tier:<6} {t.ir_size:>8,} {t.total * 1e3:>10.1f} "
                         f"{t.python * 1e3:>9.1f} {(t.total - t.python) * 1e3:>8.1f} {t.hit * 1e3:>7.2f}")
    return lines


def run_many_rows(count: int) -> list[str]:
    trivial = Program([b.mov64_imm(0, 1), b.exit_insn()])
    loads = Program([b.ldx(Size.W, 0, 1, 0), b.alu64_imm(AluOp.ADD, 0, 1), b.stx(Size.W, 1, 0, 0), b.exit_insn()])
    lines = []
    for label, program in (("mov r0,1; exit", trivial), ("ldxw/add/stxw (8-byte rows)", loads)):
        for mode in ("checked", "trusted"):
            jit = compile(program, mode=mode)
            rows = np.zeros((count, 8), dtype=np.uint8)
            t, _ = _best(lambda jit=jit, rows=rows: jit.run_many(rows), 3)
            one, _ = _best(lambda jit=jit: jit.run(b"\0" * 8), 2000)
            lines.append(f"run_many {label:<28} {mode:<8} {count / t / 1e6:>7.1f} M runs/s "
                         f"({t / count * 1e9:.1f} ns/run); run(): {one * 1e9:.0f} ns/call")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks jit", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--opt-level", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compile-only", action="store_true", help="only the compile-time rows")
    args = parser.parse_args(argv)
    print(f"# Python {platform.python_version()} on {platform.machine()}, opt level {args.opt_level}")
    if args.compile_only:
        for line in compile_rows(args.opt_level, args.repeat):
            print(line)
        return 0
    for line in workload_rows(args.repeat, args.opt_level):
        print(line)
    print()
    for line in compile_rows(args.opt_level, args.repeat):
        print(line)
    print()
    for line in run_many_rows(args.rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
