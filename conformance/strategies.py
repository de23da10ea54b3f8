"""Hypothesis strategies for programs the Linux verifier accepts by construction.

They drive the differential tests (interpreter against kernel, later JIT
against both) and, without a kernel, interpreter-only properties. Needs
hypothesis (the ``test`` extra).

Shape of every generated program::

    prologue   r9 = r1 (the input memory, MEM_SIZE bytes); r0..r8 = constants;
               the STACK_AREA bytes below r10 zeroed
    body       ALU64/ALU32 of every operation, byte swaps, sign extensions,
               forward conditional jumps of every condition, loads, stores and
               atomics on the stack and on the input memory, lddw constants,
               bounded counting loops
    epilogue   r0 = a hash of r0..r8, the stack area and the input memory

so any divergence in any register or byte shows in r0 or in the output memory.

The rules that keep the kernel's verifier happy: r9 and r10 are pointers and
never ALU operands; immediate shifts stay below the operand width and
immediate divisors are non-zero ("invalid shift", "div by zero"); memory
accesses are in bounds and aligned to their size; loops count a reserved
register down from a small constant. Loop bodies never AND: this 6.18 kernel
Oopses when a scalar in [-1, 0] is AND-ed with a constant over and over.
"""

from __future__ import annotations

from typing import Callable

from hypothesis import strategies as st

from ebpfvm.isa import AluOp, AtomicOp, InsnClass, Instruction, JmpOp, Mode, Size, Source, lddw_pair
from ebpfvm.isa.jump import CONDITIONAL_JUMPS
from ebpfvm.program import Program

MEM_SIZE = 64
STACK_AREA = 64
SCALAR_REGS = tuple(range(9))  # r0..r8
MEM_REG = 9
FP = 10
_S32 = (-(1 << 31), (1 << 31) - 1)

Block = list[Instruction]
Draw = Callable


def _imm32() -> st.SearchStrategy[int]:
    edges = st.sampled_from([0, 1, -1, 2, 7, 8, 16, 31, 32, 63, 64, 0x7FFF_FFFF, -(1 << 31), 0xFF, 0xFFFF, -0x8000])
    return st.one_of(edges, st.integers(*_S32), st.integers(-64, 64))


def _imm64() -> st.SearchStrategy[int]:
    edges = st.sampled_from([0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1, 0xFFFF_FFFF, 1 << 32, 0x8000_0000])
    return st.one_of(edges, st.integers(0, (1 << 64) - 1))


_BINARY_OPS = (AluOp.ADD, AluOp.SUB, AluOp.MUL, AluOp.DIV, AluOp.OR, AluOp.AND, AluOp.LSH, AluOp.RSH,
               AluOp.MOD, AluOp.XOR, AluOp.MOV, AluOp.ARSH)
_SHIFTS = (AluOp.LSH, AluOp.RSH, AluOp.ARSH)


@st.composite
def alu_instruction(draw: Draw, dsts: tuple[int, ...] = SCALAR_REGS, allow_and: bool = True) -> Instruction:
    """One ALU or ALU64 instruction on scalar registers, every operation and form."""
    cls = draw(st.sampled_from((InsnClass.ALU64, InsnClass.ALU)))
    width = 64 if cls is InsnClass.ALU64 else 32
    dst = draw(st.sampled_from(dsts))
    src = draw(st.sampled_from(SCALAR_REGS))
    kind = draw(st.sampled_from(("binary", "binary", "binary", "signed_div", "movsx", "neg", "swap")))
    if kind == "neg":
        return Instruction(AluOp.NEG | cls, dst)
    if kind == "swap":
        bits = draw(st.sampled_from((16, 32, 64)))
        if cls is InsnClass.ALU64:  # bswap
            return Instruction(AluOp.END | cls, dst, imm=bits)
        return Instruction(AluOp.END | cls | draw(st.sampled_from((Source.K, Source.X))), dst, imm=bits)
    if kind == "movsx":
        off = draw(st.sampled_from((8, 16, 32) if width == 64 else (8, 16)))
        return Instruction(AluOp.MOV | Source.X | cls, dst, src, off)
    ops = [op for op in _BINARY_OPS if allow_and or op is not AluOp.AND]
    op = draw(st.sampled_from((AluOp.DIV, AluOp.MOD))) if kind == "signed_div" else draw(st.sampled_from(ops))
    off = 1 if kind == "signed_div" else 0
    if draw(st.booleans()):
        return Instruction(op | Source.X | cls, dst, src, off)
    if op in _SHIFTS:
        imm = draw(st.integers(0, width - 1))
    elif op in (AluOp.DIV, AluOp.MOD):
        imm = draw(_imm32().filter(lambda v: v != 0))
    else:
        imm = draw(_imm32())
    return Instruction(op | Source.K | cls, dst, off=off, imm=imm)


_SIZES = ((Size.B, 1), (Size.H, 2), (Size.W, 4), (Size.DW, 8))


@st.composite
def memory_instruction(draw: Draw, dsts: tuple[int, ...] = SCALAR_REGS) -> Instruction:
    """A load, store or atomic on the zeroed stack area or the input memory."""
    base = draw(st.sampled_from((FP, MEM_REG)))
    size, nbytes = draw(st.sampled_from(_SIZES))
    slot = draw(st.integers(0, STACK_AREA // nbytes - 1)) * nbytes
    off = slot - STACK_AREA if base == FP else slot
    reg = draw(st.sampled_from(SCALAR_REGS))
    dst = draw(st.sampled_from(dsts))
    what = draw(st.sampled_from(("load", "load_sx", "store_reg", "store_imm", "atomic")))
    if what == "load":
        return Instruction(InsnClass.LDX | Mode.MEM | size, dst, base, off)
    if what == "load_sx" and size is not Size.DW:
        return Instruction(InsnClass.LDX | Mode.MEMSX | size, dst, base, off)
    if what == "store_imm":
        return Instruction(InsnClass.ST | Mode.MEM | size, base, 0, off, draw(_imm32()))
    if what == "atomic" and size in (Size.W, Size.DW):
        op = draw(st.sampled_from(list(AtomicOp)))
        # Fetching atomics write their source register (cmpxchg writes r0).
        src = draw(st.sampled_from(dsts)) if op & 0x01 else reg
        if op is AtomicOp.CMPXCHG and 0 not in dsts:
            op = AtomicOp.ADD
        return Instruction(InsnClass.STX | Mode.ATOMIC | size, base, src, off, int(op))
    return Instruction(InsnClass.STX | Mode.MEM | size, base, reg, off)


@st.composite
def conditional_jump(draw: Draw, skip: int) -> Instruction:
    """A conditional jump of any condition, 64 or 32 bit, over ``skip`` slots."""
    cls = draw(st.sampled_from((InsnClass.JMP, InsnClass.JMP32)))
    op = draw(st.sampled_from(CONDITIONAL_JUMPS))
    dst = draw(st.sampled_from(SCALAR_REGS))
    if draw(st.booleans()):
        return Instruction(cls | op | Source.X, dst, draw(st.sampled_from(SCALAR_REGS)), skip)
    return Instruction(cls | op | Source.K, dst, 0, skip, draw(_imm32()))


@st.composite
def straight_block(draw: Draw, max_size: int, dsts: tuple[int, ...] = SCALAR_REGS,
                   allow_and: bool = True) -> Block:
    """Instructions without backward jumps."""
    items = draw(st.lists(st.sampled_from(("alu", "alu", "alu", "mem", "lddw", "jump")), max_size=max_size))
    out: Block = []
    for item in items:
        if item == "alu":
            out.append(draw(alu_instruction(dsts, allow_and)))
        elif item == "mem":
            out.append(draw(memory_instruction(dsts)))
        elif item == "lddw":
            out.extend(lddw_pair(draw(st.sampled_from(dsts)), draw(_imm64())))
        else:
            inner = draw(straight_block(max(0, max_size // 3), dsts, allow_and)) if max_size > 1 else []
            out.append(draw(conditional_jump(len(inner))))
            out.extend(inner)
    return out


@st.composite
def bounded_loop(draw: Draw) -> Block:
    """``counter = N; do { body } while (--counter != 0)`` on a reserved register."""
    counter = draw(st.sampled_from((6, 7, 8)))
    dsts = tuple(r for r in SCALAR_REGS if r != counter)
    body = draw(straight_block(5, dsts, allow_and=False))
    trips = draw(st.integers(1, 6))
    back = -(len(body) + 2)
    return [Instruction(AluOp.MOV | InsnClass.ALU64, counter, imm=trips), *body,
            Instruction(AluOp.SUB | InsnClass.ALU64, counter, imm=1),
            Instruction(JmpOp.JNE | InsnClass.JMP, counter, 0, back, 0)]


def _prologue(draw: Draw) -> Block:
    out: Block = [Instruction(AluOp.MOV | Source.X | InsnClass.ALU64, MEM_REG, 1)]
    for reg in SCALAR_REGS:
        if draw(st.booleans()):
            out.extend(lddw_pair(reg, draw(_imm64())))
        else:
            out.append(Instruction(AluOp.MOV | InsnClass.ALU64, reg, imm=draw(_imm32())))
    for slot in range(STACK_AREA // 8):
        out.append(Instruction(InsnClass.ST | Mode.MEM | Size.DW, FP, 0, -8 * (slot + 1), 0))
    return out


def _fold(reg: int) -> Block:
    """r0 = r0 * 31 + reg: order-sensitive, so swapped values show too."""
    return [Instruction(AluOp.MUL | InsnClass.ALU64, 0, imm=31),
            Instruction(AluOp.ADD | Source.X | InsnClass.ALU64, 0, reg)]


def _epilogue() -> Block:
    out: Block = []
    for reg in range(1, 9):
        out.extend(_fold(reg))
    for base, first in ((FP, -STACK_AREA), (MEM_REG, 0)):
        for slot in range(8):
            out.append(Instruction(InsnClass.LDX | Mode.MEM | Size.DW, 1, base, first + 8 * slot))
            out.extend(_fold(1))
    out.append(Instruction(JmpOp.EXIT | InsnClass.JMP))
    return out


@st.composite
def kernel_safe_programs(draw: Draw, max_items: int = 24, loops: bool = True) -> Program:
    """A program over MEM_SIZE bytes of input memory that the kernel verifier
    accepts and whose r0 and memory depend on every computed value."""
    body: Block = []
    for _ in range(draw(st.integers(1, 3))):
        body.extend(draw(straight_block(max_items // 3)))
        if loops and draw(st.booleans()):
            body.extend(draw(bounded_loop()))
    return Program([*_prologue(draw), *body, *_epilogue()])


def input_memory() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=MEM_SIZE, max_size=MEM_SIZE)
