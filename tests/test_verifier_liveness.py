"""Static register liveness (``verifier.liveness``): hand-worked tables, and
the ``Live regs before insn:`` table of the live kernel's level-2 log."""

from __future__ import annotations

import re

import pytest
from kernel_support import require_kernel

from ebpfvm.asm import assemble
from ebpfvm.program import Program
from verifier.liveness import format_mask, live_regs_before, use_def
from verifier.log import live_regs_table
from test_verifier_log import NESTED_THIRD_PATH


def masks(source: str, helper_args=None) -> list[str]:
    program = assemble(source)
    live = live_regs_before(program, helper_args)
    return [format_mask(live[pc]) for pc in range(len(program.instructions))]


def regs(*numbers: int) -> int:
    return sum(1 << n for n in numbers)


def test_straight_line_reads_and_overwrites():
    # r2 is read at 1 and dead after; r3 is written before any read; r0 read by exit
    assert masks("""
        mov %r3, 1
        mov %r0, %r2
        add %r0, %r3
        exit
    """) == ["..2.......", "..23......", "0..3......", "0........."]


def test_branch_joins_both_successors():
    # at the jump r0 is live along the fall-through only, r4 along the target only
    assert masks("""
        jgt %r1, 5, +2
        mov %r0, 1
        exit
        mov %r0, %r4
        exit
    """) == [".1..4.....", "..........", "0.........", "....4.....", "0........."]


def test_loop_keeps_counter_live():
    assert masks("""
        mov %r1, 0
        add %r1, 1
        jlt %r1, 10, -2
        mov %r0, 0
        exit
    """) == ["..........", ".1........", ".1........", "..........", "0........."]


def test_helper_call_reads_declared_arguments_only():
    # with a summary saying the helper takes 2 arguments, r3-r5 are not read
    source = """
        mov %r3, 7
        call 1
        exit
    """
    assert masks(source, lambda fid: 2) == [".12.......", ".12.......", "0........."]
    assert masks(source) == [".12.45....", ".12345....", "0........."]  # unknown helper: r1-r5


def test_local_call_is_intraprocedural():
    # the callee's body does not make caller registers live; the call reads r1-r5
    program = assemble("""
        mov %r6, 1
        call local f
        mov %r0, %r6
        exit
    f:
        mov %r0, %r7
        exit
    """)
    live = live_regs_before(program)
    assert live[1] == regs(1, 2, 3, 4, 5, 6)
    assert live[2] == regs(6)
    assert live[4] == regs(7)


def test_use_def_of_atomics_and_ld_abs():
    fetch = assemble("lock fetch add [%r2+0], %r3").instructions[0]
    assert use_def(fetch) == (regs(2, 3), regs(3))
    cmpxchg = assemble("lock cmpxchg [%r2+0], %r3").instructions[0]
    assert use_def(cmpxchg) == (regs(0, 2, 3), regs(0))
    ldabs = assemble("ldabsb 4").instructions[0]
    assert use_def(ldabs)[0] == (1 << 10) - 1  # an implicit exit: everything may be read


def test_lddw_second_slot_is_not_an_instruction():
    program = assemble("""
        lddw %r1, 0x100000000
        mov %r0, %r1
        exit
    """)
    live = live_regs_before(program)
    assert live[0] == 0 and live[1] == 0 and live[2] == regs(1)


# --- against the live kernel --------------------------------------------------------

KERNEL_PROGRAMS = {
    "branches": NESTED_THIRD_PATH,
    "helper-and-atomics": """
        mov %r6, %r1
        mov %r7, 0
        stxdw [%r10-8], %r7
        mov %r2, %r10
        add %r2, -8
        mov %r3, 1
        lock fetch add [%r2+0], %r3
        lock cmpxchg [%r2+0], %r3
        ldabsb 4
        ldindh %r7, 2
        lddw %r1, 0x100000000
        mov %r2, %r10
        add %r2, -8
        mov %r3, 8
        call 4
        mov %r0, 0
        exit
    """,
    "local-calls": """
        mov %r6, %r1
        ldxw %r2, [%r1+0]
        mov %r1, 5
        call local f
        mov %r0, %r6
        call local g
        exit
    f:
        mov %r0, %r1
        add %r0, %r2
        mov %r3, 1
        jgt %r0, 5, +1
        mov %r0, %r3
        exit
    g:
        mov %r8, %r4
        mov %r0, 0
        call local f
        exit
    """,
    "nested-loops": """
        mov %r6, %r1
        mov %r1, 0
        mov %r2, 3
        ldxw %r3, [%r6+0]
        jgt %r3, 5, +4
        add %r1, %r2
        jlt %r1, 10, -2
        mov %r0, %r1
        exit
        mov %r4, 0
        add %r4, 1
        jlt %r4, 10, -2
        add %r2, 1
        jlt %r2, 10, -5
        mov %r0, 0
        exit
    """,
    "sequential-loops": """
        mov %r1, 0
        add %r1, 1
        jlt %r1, 10, -2
        mov %r2, 0
        add %r2, 1
        jlt %r2, 10, -2
        mov %r0, 0
        exit
    """,
    "loop": """
        mov %r1, 0
        mov %r2, 3
        add %r1, %r2
        jlt %r1, 10, -2
        mov %r0, %r1
        exit
    """,
}


def _kernel_table(program: Program) -> str:
    from ebpfvm.kernel import KernelVerifierError, load_program
    try:
        log = load_program(program.to_bytes(), program.prog_type, log_level=2).log
    except KernelVerifierError as exc:
        log = exc.log
    lines = [line for line in log.splitlines() if re.match(r"func#\d+ @|Live regs|[ \d]{3} +\d+: [.0-9]{10} ", line)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("name", sorted(KERNEL_PROGRAMS))
def test_live_regs_table_matches_kernel(name):
    require_kernel()
    program = Program(assemble(KERNEL_PROGRAMS[name]).instructions, prog_type="socket_filter")
    assert "Live regs before insn:" in _kernel_table(program)
    assert live_regs_table(program) == _kernel_table(program)


def test_live_regs_table_of_object_with_subprograms_matches_kernel():
    """global_data.o: four subprograms, map-value loads (whose lddw text is
    the map's kernel address there, ``map[fd:N]`` here: compared up to the
    liveness columns)."""
    require_kernel()
    from pathlib import Path

    from ebpfvm.elf import load_object
    from ebpfvm.kernel import KernelVerifierError
    from ebpfvm.kernel.objects import load_object_in_kernel
    obj = load_object(str(Path(__file__).resolve().parents[1] / "examples" / "global_data.o"))
    program = obj.programs[0]
    try:
        with load_object_in_kernel(obj, program.name, log_level=2) as loaded:
            log = loaded.programs[program.name].log
    except KernelVerifierError as exc:
        log = exc.log

    def columns(text: str) -> list[str]:
        return [line.split(" (")[0] for line in text.splitlines()
                if re.match(r"func#\d+ @|Live regs|[ \d]{3} +\d+: [.0-9]{10} ", line)]

    ours = columns(live_regs_table(program))
    assert len(ours) > 30 and ours == columns(log)
