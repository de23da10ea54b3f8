"""State pruning: checkpoint policy, register and stack liveness, precision.

Each program joins two paths that differ in one value; whether the second
path may be pruned at the join depends on what the first one needed:

* ``ptr_arith``, ``known_branch``, ``spill_fill``, ``subprog_arg``: the value
  becomes a stack offset or decides a branch further on (directly, through a
  stack slot, through a subprogram's argument), so it is *precise* and the
  second path must be explored — and rejected.  Pruning it would accept an
  unsafe program.
* ``imprecise_store``, ``dead_reg``, ``dead_slot``: the value is never needed
  exactly, or is dead, so the second path is pruned at the join, as the
  kernel does (same ``processed`` count and state counters).

Against the live kernel the whole statistics line must match; without a
kernel the verdicts are still checked.
"""

from __future__ import annotations

import pytest
from kernel_support import require_kernel

from ebpfvm.asm import assemble
from verifier.api import verify

# r7 is 0 on the fall-through path and 100 on the other; they meet at the
# instruction after ``mov %r7, 100`` (a jump target, 2 jumps and 8+ insns in)
SPLIT = """
    ldxw %r6, [%r1+0]
    mov %r7, 0
    mov %r3, 0
    mov %r4, 0
    mov %r5, 0
    mov %r8, 0
    jgt %r6, 10, +1
    ja +1
    mov %r7, 100
"""

PROGRAMS = {
    "ptr_arith": (SPLIT + """
        mov %r2, %r10
        add %r2, -64
        add %r2, %r7
        stb [%r2+0], 1
        mov %r0, 0
        exit
    """, "invalid write to stack R2 off=36 size=1"),
    "known_branch": (SPLIT + """
        mov %r0, 0
        jgt %r7, 50, +1
        exit
        mov %r0, %r9
        exit
    """, "R9 !read_ok"),
    "spill_fill": ("""
        ldxw %r6, [%r1+0]
        mov %r7, 0
        mov %r3, 0
        mov %r4, 0
        mov %r5, 0
        jgt %r6, 10, +1
        ja +1
        mov %r7, 100
        stxdw [%r10-16], %r7
        mov %r7, 0
        mov %r8, 0
        ja +0
        ldxdw %r3, [%r10-16]
        mov %r2, %r10
        add %r2, -64
        add %r2, %r3
        stb [%r2+0], 1
        mov %r0, 0
        exit
    """, "invalid write to stack R2 off=36 size=1"),
    "subprog_arg": (SPLIT + """
        mov %r1, %r7
        call local f
        mov %r0, 0
        exit
    f:
        mov %r2, %r10
        add %r2, -64
        add %r2, %r1
        stb [%r2+0], 1
        mov %r0, 0
        exit
    """, "invalid write to stack R2 off=36 size=1"),
    "imprecise_store": (SPLIT + """
        stxdw [%r10-8], %r7
        mov %r2, %r10
        add %r2, -64
        stb [%r2+0], 1
        mov %r0, 0
        exit
    """, None),
    "dead_reg": ("""
        ldxw %r6, [%r1+0]
        mov %r8, 1
        mov %r3, 0
        mov %r4, 0
        mov %r5, 0
        mov %r7, 0
        jgt %r6, 10, +1
        ja +1
        mov %r8, 2
        mov %r0, 0
        mov %r2, 1
        mov %r3, 2
        exit
    """, None),
    "dead_slot": ("""
        ldxw %r6, [%r1+0]
        stdw [%r10-8], 1
        mov %r3, 0
        mov %r4, 0
        mov %r5, 0
        mov %r7, 0
        jgt %r6, 10, +1
        ja +1
        stdw [%r10-8], 2
        stdw [%r10-8], 3
        mov %r0, 0
        ldxdw %r0, [%r10-8]
        exit
    """, None),
}


def _ours(name: str):
    return verify(assemble(PROGRAMS[name][0]), prog_type="socket_filter")


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_verdict(name):
    result = _ours(name)
    error = PROGRAMS[name][1]
    if error is None:
        assert result.accepted, result.log
    else:
        assert not result.accepted and result.error.message == error


@pytest.mark.parametrize("name", ["imprecise_store", "dead_reg", "dead_slot"])
def test_second_path_is_pruned(name):
    """The join is processed twice (once per path) and only one checkpoint
    is taken: the second arrival was pruned there."""
    result = _ours(name)
    program = assemble(PROGRAMS[name][0])
    straight = len(program.instructions) - 1  # every instruction once, the alternative mov skipped
    assert result.stats["total_states"] == 1
    assert result.stats["processed_insns"] == straight - 1 + 3  # + branch target, its mov, the pruned join


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_statistics_match_kernel(name):
    require_kernel()
    from ebpfvm.kernel import KernelVerifierError, load_program
    program = assemble(PROGRAMS[name][0])
    try:
        kernel = load_program(program.to_bytes(), "socket_filter", log_level=1).log
    except KernelVerifierError as exc:
        kernel = exc.log
    ours = verify(program, prog_type="socket_filter", log_level=1).log
    assert ours.splitlines()[-1] == kernel.splitlines()[-1]
    if PROGRAMS[name][1] is not None:
        assert PROGRAMS[name][1] in kernel.splitlines()


# --- the pieces ---------------------------------------------------------------------


def test_imprecise_scalar_matches_any_scalar_but_not_a_pointer():
    from verifier.state import RegType, const, pointer, reg_within, scalar
    assert reg_within(const(0), const(100), precise=False)
    assert not reg_within(const(0), const(100), precise=True)
    assert reg_within(scalar(), const(100), precise=True)
    assert not reg_within(const(0), pointer(RegType.PTR_TO_CTX), precise=False)


def test_precise_scalar_ids_must_map_one_to_one():
    from dataclasses import replace

    from verifier.state import IdMap, const, reg_within
    a, b = replace(const(1), id=3), replace(const(1), id=4)
    ids = IdMap()
    assert reg_within(a, replace(a, id=7), True, ids)
    assert not reg_within(a, replace(a, id=8), True, ids)  # old id 3 is already mapped to 7
    assert not reg_within(b, replace(b, id=7), True, ids)  # cur id 7 belongs to old id 3


def test_backtracking_follows_moves_spills_and_stops_at_constants():
    from verifier.backtrack import STACK_ACCESS, Marks, mark_precise
    from verifier.state import initial_state, scalar

    program = assemble("""
        mov %r3, %r2
        stxdw [%r10-8], %r3
        ldxdw %r4, [%r10-8]
        add %r4, %r5
        mov %r5, 1
    """)

    class Checkpoint:  # what mark_precise reads of one
        def __init__(self):
            self.state = initial_state()
            for r in (2, 3, 4, 5):
                self.state.regs[r] = scalar()
            self.precise, self.parent, self.history = Marks(), None, []

    cp = Checkpoint()
    history = [(0, 0, 0, None), (1, 0, STACK_ACCESS, (0, 0)), (2, 0, STACK_ACCESS, (0, 0)), (3, 0, 0, None)]
    track = Marks()
    track.frame(0)[0].add(4)
    mark_precise(history, cp, program.instructions, track)
    # r4 = fill of fp-8 = spill of r3 = r2; plus r5 through the addition
    assert cp.precise.regs[0] == {2, 5}
    track = Marks()
    track.frame(0)[0].add(5)
    mark_precise(history + [(4, 0, 0, None)], cp, program.instructions, track)
    assert cp.precise.regs[0] == {2, 5}  # r5 came from a constant: nothing new


def test_stack_liveness_reads_kill_and_calls():
    from verifier.liveness import ALL_SLOTS, StackLiveness, slot_mask
    program = assemble("""
        stdw [%r10-8], 1
        ldxdw %r0, [%r10-16]
        call local f
        exit
    f:
        mov %r0, 0
        exit
    """)
    live = StackLiveness(program)
    assert live.live_before(0) == 0
    live.read(1, slot_mask(-16, 8))
    assert live.live_before(0) == slot_mask(-16, 8)
    live.read(2, ALL_SLOTS)  # the callee read the caller's stack: counted at the call
    assert live.live_before(1) == ALL_SLOTS
    assert live.live_before(0) == ALL_SLOTS & ~slot_mask(-8, 8)  # fp-8 is written first
