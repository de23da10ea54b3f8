"""Benchmark programs, built as instructions with symbolic jump labels.

Each ``Workload`` carries its program, input memory and the r0 it must
return, so a benchmark run also checks that the interpreter computed the
right thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Instruction, JmpOp, Size
from ebpfvm.program import Program

ADD, SUB, MUL, DIV, MOD, XOR, LSH, RSH, ARSH, MOV, AND = (
    AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.MOD, AluOp.XOR, AluOp.LSH, AluOp.RSH, AluOp.ARSH,
    AluOp.MOV, AluOp.AND)
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Jump:
    """A jump to a label, resolved by ``link``."""

    op: JmpOp
    dst: int
    operand: int  # immediate, or register when ``reg``
    label: str
    reg: bool = False


Item = Union[Instruction, tuple, str, Jump]


def link(items: list[Item]) -> Program:
    """Lay out ``items`` (instructions, lddw pairs, label strings, ``Jump``s)."""
    labels: dict[str, int] = {}
    pc = 0
    for item in items:
        if isinstance(item, str):
            labels[item] = pc
        else:
            pc += len(item) if isinstance(item, tuple) else 1
    out: list[Instruction] = []
    for item in items:
        if isinstance(item, str):
            continue
        if isinstance(item, Jump):
            off = labels[item.label] - (len(out) + 1)
            if item.op == JmpOp.JA:
                out.append(b.ja(off))
            elif item.reg:
                out.append(b.jmp_reg(item.op, item.dst, item.operand, off))
            else:
                out.append(b.jmp_imm(item.op, item.dst, item.operand, off))
        elif isinstance(item, tuple):
            out.extend(item)
        else:
            out.append(item)
    return Program(out, labels={pc: name for name, pc in labels.items()}).check()


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    program: Program
    mem: bytes
    expected_r0: int


def sieve_stack(limit: int = 400, repeats: int = 200) -> Workload:
    """Sieve of Eratosthenes over bytes on the stack, ``repeats`` times."""
    items: list[Item] = [
        b.mov64_imm(9, repeats),
        "outer",
        b.mov64_imm(1, 0),
        "clear",
        b.mov64_reg(2, 10), b.alu64_imm(SUB, 2, limit), b.alu64_reg(ADD, 2, 1),
        b.st(Size.B, 2, 0, 0),
        b.alu64_imm(ADD, 1, 1),
        Jump(JmpOp.JLT, 1, limit, "clear"),
        b.mov64_imm(0, 0), b.mov64_imm(1, 2),
        "next",
        b.mov64_reg(2, 10), b.alu64_imm(SUB, 2, limit), b.alu64_reg(ADD, 2, 1),
        b.ldx(Size.B, 3, 2, 0),
        Jump(JmpOp.JNE, 3, 0, "skip"),
        b.alu64_imm(ADD, 0, 1),
        b.mov64_reg(4, 1), b.alu64_reg(MUL, 4, 1),
        "mark",
        Jump(JmpOp.JGE, 4, limit, "skip"),
        b.mov64_reg(2, 10), b.alu64_imm(SUB, 2, limit), b.alu64_reg(ADD, 2, 4),
        b.st(Size.B, 2, 0, 1),
        b.alu64_reg(ADD, 4, 1),
        Jump(JmpOp.JA, 0, 0, "mark"),
        "skip",
        b.alu64_imm(ADD, 1, 1),
        Jump(JmpOp.JLT, 1, limit, "next"),
        b.alu64_imm(SUB, 9, 1),
        Jump(JmpOp.JNE, 9, 0, "outer"),
        b.exit_insn(),
    ]
    return Workload("sieve-stack", f"primes below {limit} on the stack, {repeats} times",
                    link(items), b"", _count_primes(limit))


def sieve_mem(limit: int = 100_000) -> Workload:
    """Sieve of Eratosthenes over the input memory (r1 = base, r2 = length)."""
    items: list[Item] = [
        b.mov64_reg(6, 1), b.mov64_reg(7, 2),
        b.mov64_imm(0, 0), b.mov64_imm(1, 2),
        "next",
        b.mov64_reg(2, 6), b.alu64_reg(ADD, 2, 1),
        b.ldx(Size.B, 3, 2, 0),
        Jump(JmpOp.JNE, 3, 0, "skip"),
        b.alu64_imm(ADD, 0, 1),
        b.mov64_reg(4, 1), b.alu64_reg(MUL, 4, 1),
        "mark",
        Jump(JmpOp.JGE, 4, 7, "skip", reg=True),
        b.mov64_reg(2, 6), b.alu64_reg(ADD, 2, 4),
        b.st(Size.B, 2, 0, 1),
        b.alu64_reg(ADD, 4, 1),
        Jump(JmpOp.JA, 0, 0, "mark"),
        "skip",
        b.alu64_imm(ADD, 1, 1),
        Jump(JmpOp.JLT, 1, 7, "next", reg=True),
        b.exit_insn(),
    ]
    return Workload("sieve-mem", f"primes below {limit} in a {limit}-byte input memory",
                    link(items), bytes(limit), _count_primes(limit))


def alu_mix(iterations: int = 40_000) -> Workload:
    """xorshift64 state mixed into an accumulator with mul, div, mod, 32-bit ops."""
    items: list[Item] = [
        b.mov64_imm(0, 0),
        b.lddw(6, 0x9E37_79B9_7F4A_7C15),
        b.mov64_imm(7, 1),
        b.mov64_imm(8, iterations),
        "loop",
        b.mov64_reg(1, 7), b.alu64_imm(LSH, 1, 13), b.alu64_reg(XOR, 7, 1),
        b.mov64_reg(1, 7), b.alu64_imm(RSH, 1, 7), b.alu64_reg(XOR, 7, 1),
        b.mov64_reg(1, 7), b.alu64_imm(LSH, 1, 17), b.alu64_reg(XOR, 7, 1),
        b.mov64_reg(2, 7), b.alu64_reg(MUL, 2, 6), b.alu64_reg(ADD, 0, 2),
        b.alu32_reg(MOV, 3, 7), b.alu32_imm(ADD, 3, 12345), b.alu32_imm(MOD, 3, 1000),
        b.mov64_reg(4, 7), b.alu64_imm(RSH, 4, 40), b.alu64_imm(ADD, 4, 1),
        b.mov64_reg(5, 0), b.alu64_reg(DIV, 5, 4), b.alu64_reg(XOR, 0, 5),
        b.alu64_reg(ADD, 0, 3), b.alu64_imm(ARSH, 0, 1),
        b.alu64_imm(SUB, 8, 1),
        Jump(JmpOp.JNE, 8, 0, "loop"),
        b.exit_insn(),
    ]
    return Workload("alu-mix", f"{iterations} rounds of xorshift64 + mul/div/mod mixing",
                    link(items), b"", _alu_mix_reference(iterations))


def _count_primes(limit: int) -> int:
    return sum(1 for n in range(2, limit) if all(n % d for d in range(2, int(n ** 0.5) + 1)))


def _alu_mix_reference(iterations: int) -> int:
    """The same computation in plain Python, to check the interpreter's result."""
    acc, x, golden = 0, 1, 0x9E37_79B9_7F4A_7C15
    for _ in range(iterations):
        x ^= (x << 13) & MASK64
        x ^= x >> 7
        x ^= (x << 17) & MASK64
        acc = (acc + x * golden) & MASK64
        w = ((x & 0xFFFF_FFFF) + 12345) & 0xFFFF_FFFF
        w %= 1000
        acc ^= acc // ((x >> 40) + 1)
        acc = (acc + w) & MASK64
        signed = acc - (1 << 64) if acc >> 63 else acc
        acc = (signed >> 1) & MASK64
    return acc


WORKLOADS = {"sieve-stack": sieve_stack, "sieve-mem": sieve_mem, "alu-mix": alu_mix}
