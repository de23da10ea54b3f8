"""Loads, stores, lddw and the legacy packet loads through the interpreter:
the entry convention, sizes, sign extension, faults and the stack."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ebpfvm.errors import MemoryFault
from ebpfvm.interp import UnresolvedPseudo, run
from ebpfvm.interp import build as b
from ebpfvm.isa import AluOp, Instruction, JmpOp, LddwSource, Size
from ebpfvm.memory import MEM_BASE, STACK_SIZE, code_address, stack_frame_base

M64 = 2**64 - 1
MEM = bytes(range(0x11, 0x11 + 16))  # 11 12 13 ... 20
WIDTH = {Size.B: 1, Size.H: 2, Size.W: 4, Size.DW: 8}


def prog(*items) -> list[Instruction]:
    return b.flatten(items)


# -- entry convention --------------------------------------------------------------
def test_r1_points_to_mem_and_r2_is_its_length() -> None:
    result = run(prog(b.mov64_reg(0, 2), b.exit_insn()), mem=b"\0\0\0\1\0\0\0\2")
    assert result.r0 == 8
    assert result.regs[1] == MEM_BASE


def test_no_mem_means_null_r1() -> None:
    result = run(prog(b.mov64_reg(0, 1), b.alu64_reg(AluOp.ADD, 0, 2), b.exit_insn()))
    assert result.r0 == 0
    with pytest.raises(MemoryFault) as info:
        run(prog(b.ldx(Size.B, 0, 1), b.exit_insn()))
    assert info.value.address == 0


def test_r10_is_the_top_of_frame_0_stack() -> None:
    result = run(prog(b.mov64_reg(0, 10), b.exit_insn()))
    assert result.r0 == stack_frame_base(0) + STACK_SIZE


# -- loads -------------------------------------------------------------------------
@pytest.mark.parametrize("size, off, expected", [
    (Size.B, 0, 0x11), (Size.B, 15, 0x20),
    (Size.H, 0, 0x1211), (Size.H, 3, 0x1514),
    (Size.W, 0, 0x1413_1211), (Size.W, 12, 0x201F_1E1D),
    (Size.DW, 0, 0x1817_1615_1413_1211), (Size.DW, 8, 0x201F_1E1D_1C1B_1A19), (Size.DW, 5, 0x1D1C_1B1A_1918_1716),
])
def test_load_little_endian(size: Size, off: int, expected: int) -> None:
    assert run(prog(b.ldx(size, 0, 1, off), b.exit_insn()), mem=MEM).r0 == expected


def test_load_through_negative_offset() -> None:
    program = prog(b.mov64_reg(2, 1), b.alu64_imm(AluOp.ADD, 2, 10), b.ldx(Size.H, 0, 2, -10), b.exit_insn())
    assert run(program, mem=MEM).r0 == 0x1211


def test_load_overwrites_all_64_bits() -> None:
    program = prog(b.lddw(0, M64), b.ldx(Size.B, 0, 1), b.exit_insn())
    assert run(program, mem=MEM).r0 == 0x11


@pytest.mark.parametrize("size, data, expected", [
    (Size.B, b"\x80", M64 - 0x7F), (Size.B, b"\x7f", 0x7F), (Size.B, b"\xff", M64),
    (Size.H, b"\x00\x80", 0xFFFF_FFFF_FFFF_8000), (Size.H, b"\xff\x7f", 0x7FFF),
    (Size.W, b"\x00\x00\x00\x80", 0xFFFF_FFFF_8000_0000), (Size.W, b"\xff\xff\xff\x7f", 0x7FFF_FFFF),
])
def test_sign_extending_loads(size: Size, data: bytes, expected: int) -> None:
    assert run(prog(b.ldxs(size, 0, 1), b.exit_insn()), mem=data).r0 == expected


# -- stores ------------------------------------------------------------------------
@pytest.mark.parametrize("size", list(Size))
def test_store_register_writes_low_bytes(size: Size) -> None:
    program = prog(b.lddw(2, 0x8877_6655_4433_2211), b.stx(size, 1, 2, 1), b.exit_insn())
    result = run(program, mem=bytes(10))
    n = WIDTH[size]
    assert result.mem == b"\0" + bytes.fromhex("1122334455667788")[:n] + bytes(9 - n)


@pytest.mark.parametrize("size, imm, expected", [
    (Size.B, -1, b"\xff"), (Size.H, 0x1234, b"\x34\x12"), (Size.W, -2, b"\xfe\xff\xff\xff"),
    (Size.DW, -2, b"\xfe" + b"\xff" * 7),  # imm is sign-extended to 64 bits
    (Size.DW, 0x7FFF_FFFF, b"\xff\xff\xff\x7f" + bytes(4)),
])
def test_store_immediate(size: Size, imm: int, expected: bytes) -> None:
    result = run(prog(b.st(size, 1, 0, imm), b.exit_insn()), mem=bytes(8))
    assert result.mem[:len(expected)] == expected
    assert result.mem[len(expected):] == bytes(8 - len(expected))


def test_input_memory_is_copied_not_mutated() -> None:
    data = bytearray(4)
    result = run(prog(b.st(Size.W, 1, 0, -1), b.exit_insn()), mem=data)
    assert result.mem == b"\xff" * 4
    assert data == bytearray(4)


@settings(max_examples=50, deadline=None)
@given(value=st.integers(0, M64), off=st.integers(-STACK_SIZE, -8))
def test_stack_round_trip(value: int, off: int) -> None:
    program = prog(b.lddw(1, value), b.stx(Size.DW, 10, 1, off), b.ldx(Size.DW, 0, 10, off), b.exit_insn())
    assert run(program).r0 == value


# -- faults ------------------------------------------------------------------------
def test_read_past_the_end_of_mem_names_the_region() -> None:
    with pytest.raises(MemoryFault) as info:
        run(prog(b.mov64_imm(0, 0), b.ldx(Size.W, 0, 1, 14), b.exit_insn()), mem=MEM)
    fault = info.value
    assert (fault.pc, fault.address, fault.size, fault.write) == (1, MEM_BASE + 14, 4, False)
    assert fault.nearest == f"mem [{MEM_BASE:#x}-{MEM_BASE + 15:#x}]"
    assert f"{MEM_BASE + 14:#x}" in str(fault) and "insn 1" in str(fault)


def test_write_below_the_stack_names_the_frame() -> None:
    with pytest.raises(MemoryFault) as info:
        run(prog(b.st(Size.DW, 10, -STACK_SIZE - 8, 1), b.exit_insn()))
    fault = info.value
    base = stack_frame_base(0)
    assert (fault.address, fault.size, fault.write) == (base - 8, 8, True)
    assert fault.nearest == f"stack frame 0 [{base:#x}-{base + STACK_SIZE - 1:#x}]"


def test_stack_bounds() -> None:
    assert run(prog(b.st(Size.B, 10, -STACK_SIZE, 1), b.exit_insn())).r0 == 0
    with pytest.raises(MemoryFault):
        run(prog(b.ldx(Size.B, 0, 10, 0), b.exit_insn()))  # r10 itself is one past the end


def test_null_and_wrapping_pointers_fault() -> None:
    with pytest.raises(MemoryFault) as info:
        run(prog(b.mov64_imm(1, 0), b.stx(Size.DW, 1, 1, 0), b.exit_insn()))
    assert info.value.address == 0
    with pytest.raises(MemoryFault) as info:
        run(prog(b.mov64_imm(1, -1), b.ldx(Size.B, 0, 1, 4), b.exit_insn()))
    assert info.value.address == 3  # reported modulo 2**64


def test_truncated_pointer_faults() -> None:
    # A pointer squeezed through a 32-bit move no longer points anywhere.
    program = prog(b.alu32_reg(AluOp.MOV, 1, 1), b.ldx(Size.B, 0, 1, 0), b.exit_insn())
    with pytest.raises(MemoryFault):
        run(program, mem=MEM)


# -- lddw --------------------------------------------------------------------------
def test_lddw_constant() -> None:
    assert run(prog(b.lddw(0, 0x1234_5678_9ABC_DEF0), b.exit_insn())).r0 == 0x1234_5678_9ABC_DEF0
    assert run(prog(b.lddw(0, M64), b.exit_insn())).r0 == M64


def test_lddw_func_loads_a_code_address() -> None:
    # As in the kernel, imm counts from the slot after the lddw's first slot.
    program = prog(b.lddw(0, 2, LddwSource.FUNC), b.exit_insn(), b.exit_insn())
    assert run(program).r0 == code_address(3)


def test_lddw_map_reference_without_resolver_faults_when_executed() -> None:
    program = prog(b.lddw(1, 3, LddwSource.MAP_FD), b.exit_insn())
    with pytest.raises(UnresolvedPseudo) as info:
        run(program)
    assert (info.value.pc, info.value.src, info.value.imm) == (0, LddwSource.MAP_FD, 3)
    # Not executed, not a problem.
    assert run(prog(b.ja(2), b.lddw(1, 3, LddwSource.MAP_FD), b.exit_insn())).r0 == 0


def test_lddw_resolver_hook() -> None:
    seen = []

    def resolve(pc: int, head: Instruction, tail: Instruction) -> int:
        seen.append((pc, head.src, head.imm))
        return 0xABC0_0000 + head.imm

    program = prog(b.mov64_imm(0, 0), b.lddw(0, 3, LddwSource.MAP_FD), b.exit_insn())
    assert run(program, resolve_pseudo=resolve).r0 == 0xABC0_0003
    assert seen == [(1, LddwSource.MAP_FD, 3)]


# -- legacy packet loads -----------------------------------------------------------
@pytest.mark.parametrize("size, imm, expected", [
    (Size.B, 0, 0x11), (Size.B, 15, 0x20), (Size.H, 0, 0x1112), (Size.W, 12, 0x1D1E_1F20),
])
def test_ld_abs_is_big_endian(size: Size, imm: int, expected: int) -> None:
    assert run(prog(b.lddw(0, M64), b.ld_abs(size, imm), b.exit_insn()), mem=MEM).r0 == expected


def test_ld_ind_adds_register_and_imm() -> None:
    program = prog(b.mov64_imm(3, 10), b.ld_ind(Size.H, 3, 2), b.exit_insn())
    assert run(program, mem=MEM).r0 == 0x1D1E


@pytest.mark.parametrize("insns", [
    [b.ld_abs(Size.W, 13)],  # straddles the end
    [b.ld_abs(Size.B, 16)],
    [b.ld_abs(Size.B, -1)],
    [b.mov64_imm(3, -20), b.ld_ind(Size.B, 3, 4)],
])
def test_packet_load_out_of_bounds_exits_with_zero(insns: list[Instruction]) -> None:
    program = prog(b.mov64_imm(0, 99), *insns, b.mov64_imm(0, 7), b.exit_insn())
    result = run(program, mem=MEM)
    assert result.r0 == 0
    assert result.executed == len(insns) + 1  # nothing after the faulting load ran


def test_packet_load_out_of_bounds_in_subprogram_returns_zero_to_caller() -> None:
    program = prog(b.call_local(2), b.alu64_imm(AluOp.ADD, 0, 5), b.exit_insn(),
                   b.mov64_imm(0, 9), b.ld_abs(Size.B, 100), b.exit_insn())
    assert run(program, mem=MEM).r0 == 5


def test_packet_load_with_empty_packet() -> None:
    assert run(prog(b.mov64_imm(0, 1), b.ld_abs(Size.B, 0), b.exit_insn())).r0 == 0


def test_mem_write_and_read_back_via_jump_loop() -> None:
    # Fill mem[i] = i for i < len, then return mem[len-1].
    program = prog(
        b.mov64_imm(3, 0),
        b.mov64_reg(4, 1), b.alu64_reg(AluOp.ADD, 4, 3), b.stx(Size.B, 4, 3, 0),
        b.alu64_imm(AluOp.ADD, 3, 1), b.jmp_reg(JmpOp.JLT, 3, 2, -5),
        b.ldx(Size.B, 0, 4, 0), b.exit_insn())
    result = run(program, mem=bytes(32))
    assert result.r0 == 31
    assert result.mem == bytes(range(32))


def test_bundled_primes_example() -> None:
    asm = pytest.importorskip("ebpfvm.asm")
    from pathlib import Path
    source = Path(__file__).resolve().parent.parent / "examples" / "asm" / "primes.asm"
    if not source.exists():
        pytest.skip("examples/asm/primes.asm is not in this tree")
    assert run(asm.assemble(source.read_text())).r0 == 78  # primes below 400, sieved on the stack
