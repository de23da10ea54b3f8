"""The JIT's lowering of every operation against the interpreter's pure
semantics tables (``interp.alu.ALU64/ALU32/ENDIAN``, ``jumps.condition_holds``).

Each operation is compiled once into a program that reads its operands from
the input memory, and ``run_many`` evaluates it on every pair of edge values
in one native call.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ebpfvm.interp import alu, run
from ebpfvm.interp import build as b
from ebpfvm.interp.jumps import condition_holds
from ebpfvm.isa import AluOp, AtomicOp, InsnClass, Instruction, JmpOp, Size, Source
from ebpfvm.isa.jump import CONDITIONAL_JUMPS
from ebpfvm.jit import compile
from ebpfvm.program import Program

M64 = (1 << 64) - 1
EDGES = [0, 1, 2, 3, 7, 31, 32, 63, 64, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
         0xFFFF_FFFF, 0x1_0000_0000, 0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF, M64, M64 - 1,
         0xFFFF_FFFF_8000_0000, 0x1234_5678_9ABC_DEF0, 0xFEDC_BA98_7654_3210, (1 << 64) - 7]
PAIRS = list(itertools.product(EDGES, EDGES))


def _rows(pairs: list[tuple[int, int]]) -> np.ndarray:
    data = b"".join(a.to_bytes(8, "little") + c.to_bytes(8, "little") for a, c in pairs)
    return np.frombuffer(data, dtype=np.uint8).reshape(len(pairs), 16).copy()


def _binary_program(cls: int, op: int, off: int) -> Program:
    return Program([b.ldx(Size.DW, 0, 1, 0), b.ldx(Size.DW, 2, 1, 8),
                    Instruction(cls | op | Source.X, 0, 2, off), b.exit_insn()])


@pytest.mark.parametrize("width,key", [(64, k) for k in alu.ALU64] + [(32, k) for k in alu.ALU32],
                         ids=lambda v: str(v))
def test_alu_register_forms_match_semantics(width: int, key: tuple[int, int]) -> None:
    cls = InsnClass.ALU64 if width == 64 else InsnClass.ALU
    fn = (alu.ALU64 if width == 64 else alu.ALU32)[key]
    jit = compile(_binary_program(cls, key[0], key[1]))
    got = jit.run_many(_rows(PAIRS))
    want = np.array([fn(a, c) for a, c in PAIRS], dtype=np.uint64)
    bad = [(hex(a), hex(c), hex(int(g)), hex(int(w))) for (a, c), g, w in zip(PAIRS, got, want) if g != w]
    assert not bad, bad[:5]


@pytest.mark.parametrize("width", [64, 32])
@pytest.mark.parametrize("op,off", [(AluOp.DIV, 0), (AluOp.DIV, 1), (AluOp.MOD, 0), (AluOp.MOD, 1),
                                    (AluOp.ARSH, 0), (AluOp.LSH, 0), (AluOp.MOV, 0), (AluOp.ADD, 0)])
def test_alu_immediate_forms_match_semantics(width: int, op: int, off: int) -> None:
    cls = InsnClass.ALU64 if width == 64 else InsnClass.ALU
    table = alu.ALU64 if width == 64 else alu.ALU32
    for imm in (0, -1, 1, -(1 << 31), 7, 65):
        insn = Instruction(cls | op | Source.K, 0, 0, off, imm)
        jit = compile(Program([b.ldx(Size.DW, 0, 1, 0), insn, b.exit_insn()]))
        got = jit.run_many(_rows([(a, 0) for a in EDGES]))
        want = [table[(op, off)](a, alu.immediate(insn)) for a in EDGES]
        assert [int(g) for g in got] == want, (op, off, imm)


def test_division_by_zero_and_int_min_by_minus_one_both_widths() -> None:
    # The cases where LLVM's udiv/sdiv/urem/srem are undefined behaviour.
    cases = [(0x8000_0000_0000_0000, M64), (0xFFFF_FFFF_8000_0000, 0xFFFF_FFFF), (5, 0), (M64, 0),
             (0x8000_0000, 0x1_0000_0000)]  # 32-bit: divisor's low half is 0
    for width, table, cls in ((64, alu.ALU64, InsnClass.ALU64), (32, alu.ALU32, InsnClass.ALU)):
        for op, off in ((AluOp.DIV, 0), (AluOp.DIV, 1), (AluOp.MOD, 0), (AluOp.MOD, 1)):
            for opt in (0, 3):
                jit = compile(_binary_program(cls, op, off), opt_level=opt)
                for a, c in cases:
                    assert jit.run(a.to_bytes(8, "little") + c.to_bytes(8, "little")).r0 == table[(op, off)](a, c)
    # Constant operands that LLVM folds at compile time.
    for cls, imm in ((InsnClass.ALU64, -1), (InsnClass.ALU, -1)):
        prog = Program([*b.lddw(0, 0x8000_0000_0000_0000 if cls == InsnClass.ALU64 else 0x8000_0000),
                        Instruction(cls | AluOp.DIV | Source.K, 0, 0, 1, imm),
                        Instruction(cls | AluOp.MOD | Source.K, 0, 0, 1, 0),
                        b.exit_insn()])
        assert compile(prog, opt_level=3).run().r0 == run(prog).r0


@pytest.mark.parametrize("key", list(alu.ENDIAN), ids=str)
def test_byte_swaps_match_semantics(key: tuple[int, int, int]) -> None:
    cls, source, bits = key
    jit = compile(Program([b.ldx(Size.DW, 0, 1, 0), Instruction(cls | AluOp.END | source, 0, imm=bits),
                           b.exit_insn()]))
    got = jit.run_many(_rows([(a, 0) for a in EDGES]))
    assert [int(g) for g in got] == [alu.ENDIAN[key](a) for a in EDGES]


@pytest.mark.parametrize("cls", [InsnClass.ALU64, InsnClass.ALU])
def test_neg_matches_semantics(cls: int) -> None:
    jit = compile(Program([b.ldx(Size.DW, 0, 1, 0), Instruction(cls | AluOp.NEG, 0), b.exit_insn()]))
    fn = alu.neg64 if cls == InsnClass.ALU64 else alu.neg32
    assert [int(g) for g in jit.run_many(_rows([(a, 0) for a in EDGES]))] == [fn(a) for a in EDGES]


@pytest.mark.parametrize("cls", [InsnClass.JMP, InsnClass.JMP32])
@pytest.mark.parametrize("op", CONDITIONAL_JUMPS, ids=lambda o: o.name)
def test_conditions_match_semantics(cls: int, op: JmpOp) -> None:
    prog = Program([b.ldx(Size.DW, 3, 1, 0), b.ldx(Size.DW, 2, 1, 8), b.mov64_imm(0, 1),
                    Instruction(cls | op | Source.X, 3, 2, 1), b.mov64_imm(0, 0), b.exit_insn()])
    got = compile(prog).run_many(_rows(PAIRS))
    want = [int(condition_holds(cls | op, a, c)) for a, c in PAIRS]
    assert [int(g) for g in got] == want


def test_loads_stores_sign_extension_and_atomics_match_interpreter() -> None:
    prog = Program(b.flatten([
        b.ldxs(Size.B, 3, 1, 0), b.ldxs(Size.H, 4, 1, 2), b.ldxs(Size.W, 5, 1, 4),
        b.stx(Size.DW, 10, 3, -8), b.stx(Size.W, 10, 4, -16), b.st(Size.H, 10, -18, -2), b.st(Size.B, 1, 15, 0x1FF),
        b.ldx(Size.DW, 6, 10, -8), b.ldx(Size.W, 7, 10, -16), b.ldx(Size.H, 8, 10, -18),
        b.mov64_imm(2, 5), b.atomic(Size.DW, AtomicOp.FETCH_ADD, 10, 2, -8),
        b.atomic(Size.W, AtomicOp.FETCH_XOR, 1, 2, 8), b.atomic(Size.W, AtomicOp.OR, 1, 5, 12),
        b.atomic(Size.DW, AtomicOp.AND, 10, 4, -8), b.atomic(Size.DW, AtomicOp.XCHG, 1, 6, 16),
        b.mov64_reg(0, 7), b.atomic(Size.W, AtomicOp.CMPXCHG, 10, 8, -16),
        b.atomic(Size.DW, AtomicOp.CMPXCHG, 1, 3, 24),
        b.ldx(Size.DW, 9, 10, -8), b.alu64_reg(AluOp.ADD, 0, 9),
        b.alu64_reg(AluOp.XOR, 0, 2), b.alu64_reg(AluOp.ADD, 0, 3), b.alu64_reg(AluOp.MUL, 0, 5),
        b.alu64_reg(AluOp.ADD, 0, 8), b.lddw(4, 0x0123_4567_89AB_CDEF), b.alu64_reg(AluOp.XOR, 0, 4),
        b.exit_insn(),
    ]))
    mem = bytes(range(0x80, 0xA0)) + bytes(range(8))
    want = run(prog, mem=mem)
    for mode in ("checked", "trusted"):
        got = compile(prog, mode=mode).run(mem)
        assert (got.r0, got.mem) == (want.r0, want.mem)
    assert compile(prog).run(mem).executed == want.executed


def test_local_calls_frames_and_pointer_values() -> None:
    # main passes a pointer to its stack; the callee writes through it, returns
    # its own r10 (a fake address) which main compares with its own.
    prog = Program([
        b.mov64_reg(1, 10), b.alu64_imm(AluOp.ADD, 1, -8), b.mov64_imm(6, 7),
        b.call_local(4),
        b.ldx(Size.DW, 2, 10, -8), b.alu64_reg(AluOp.SUB, 0, 10), b.alu64_reg(AluOp.ADD, 0, 2),
        b.exit_insn(),
        # subprogram at slot 8: *(u64 *)r1 = r6 * 3; r0 = r10
        b.mov64_reg(3, 6), b.alu64_imm(AluOp.MUL, 3, 3), b.stx(Size.DW, 1, 3, 0), b.mov64_reg(0, 10),
        b.exit_insn(),
    ])
    want = run(prog)
    got = compile(prog).run()
    assert (got.r0, got.executed) == (want.r0, want.executed)
    assert compile(Program([b.mov64_reg(0, 10), b.exit_insn()])).run().r0 == run(
        Program([b.mov64_reg(0, 10), b.exit_insn()])).r0


def test_entry_registers_and_run_many_equal_run() -> None:
    prog = Program([b.mov64_reg(0, 1), b.alu64_reg(AluOp.XOR, 0, 2), b.ldx(Size.B, 3, 1, 1),
                    b.alu64_reg(AluOp.ADD, 0, 3), b.st(Size.B, 1, 0, 0x5A), b.exit_insn()])
    jit = compile(prog)
    rows = np.arange(32, dtype=np.uint8).reshape(8, 4).copy()
    expected = [run(prog, mem=bytes(row)) for row in rows]
    out = jit.run_many(rows)
    assert [int(x) for x in out] == [e.r0 for e in expected]
    assert [bytes(row) for row in rows] == [e.mem for e in expected]
    assert compile(Program([b.mov64_reg(0, 1), b.alu64_reg(AluOp.ADD, 0, 2), b.exit_insn()])).run().r0 == 0


def test_trusted_frames_zeroed_where_read_and_memory_pointers_match_interpreter() -> None:
    # Two callees at the same depth: A leaves data in its frame, B reads the
    # same slots without writing them (the interpreter's zeroed frame gives 0),
    # then main reads input memory through a copied, offset r1 and writes back.
    prog = Program([
        b.call_local(4),                                   # A (slot 5)
        b.call_local(5),                                   # B (slot 7) -> r0
        b.mov64_reg(6, 1), b.alu64_imm(AluOp.ADD, 6, 4),
        b.ja(6),                                           # -> slot 11
        # A (slot 5): *(u64 *)(r10 - 16) = 0x77; exit
        b.st(Size.DW, 10, -16, 0x77), b.exit_insn(),
        # B (slot 7): r0 = *(u64 *)(r10 - 16); exit
        b.ldx(Size.DW, 0, 10, -16), b.exit_insn(),
        b.mov64_imm(0, 99), b.exit_insn(),                 # unreachable padding
        # slot 11: r3 = *(u32 *)(r6 + 0); r0 += r3; *(u8 *)(r6 - 4) = r0; exit
        b.ldx(Size.W, 3, 6, 0), b.alu64_reg(AluOp.ADD, 0, 3), b.stx(Size.B, 6, 0, -4), b.exit_insn(),
    ])
    rows = np.arange(64, dtype=np.uint8).reshape(8, 8).copy()
    expected = [run(prog, mem=bytes(row)) for row in rows]
    assert expected[1].r0 == int.from_bytes(bytes(rows[1][4:]), "little") != 99
    trusted_ir = compile(prog, mode="trusted").optimized_ir
    assert "i64 512, i1" not in trusted_ir  # no whole-frame clear: B's 8 bytes only
    for mode in ("checked", "trusted"):
        jit = compile(prog, mode=mode)
        for _ in range(2):  # frames reused across runs
            got = [jit.run(bytes(row)) for row in rows]
            assert [(g.r0, g.mem) for g in got] == [(e.r0, e.mem) for e in expected]
        batch = rows.copy()
        assert [int(x) for x in jit.run_many(batch)] == [e.r0 for e in expected]
        assert [bytes(row) for row in batch] == [e.mem for e in expected]
