"""``verify(..., log_level=1|2)`` against the live kernel's log (Linux 6.18).

Each case names exactly which normalisations it needs:

* ``time`` (always): ``verification time N usec`` differs run to run;
* ``stack_liveness``: the kernel's ``(0) frame 0 insn 3 +written -8`` lines
  are not reproduced.

Everything else — instruction lines, the ``; R..`` state after each
instruction with the kernel's alignment, ``from A to B:`` lines, the level-1
rewind to the failing path, the ``Live regs before insn:`` table, the error
line(s), ``stack depth`` and the statistics line — must be byte-identical.
"""

from __future__ import annotations

import re

import pytest
from kernel_support import comparable_log, require_kernel

from ebpfvm.asm import assemble
from verifier.api import verify

STRAIGHT_ALU = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r4, %r2
and %r4, 0xff
lsh %r4, 2
mov32 %r5, -1
arsh %r3, 1
mov %r0, %r4
add %r0, %r5
exit
"""

PACKET_OUTSIDE = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
ldxb %r0, [%r2+0]
exit
"""

STACK_PARTIAL = """
mov %r0, 0
stw [%r10-4], 7
mov %r2, %r10
add %r2, -4
ldxw %r0, [%r2+0]
exit
"""

STACK_SPILL_BRANCH = """
mov %r0, 1
mov %r2, %r10
add %r2, -8
stxdw [%r10-8], %r0
ldxw %r3, [%r1+0]
jgt %r3, 5, +1
mov %r0, 2
exit
"""

BRANCH_UNINIT = """
mov %r0, 1
ldxw %r3, [%r1+0]
jgt %r3, 5, +1
mov %r0, %r4
exit
"""

SECOND_PATH_UNINIT = """
mov %r0, 1
ldxw %r3, [%r1+0]
jgt %r3, 5, +2
mov %r0, 2
exit
mov %r0, %r4
exit
"""

STRAIGHT_UNINIT = """
mov %r1, 3
mov %r0, %r7
exit
"""

NO_R0 = """
mov %r2, 1
exit
"""

UNREACHABLE = """
mov %r0, 1
ldxw %r3, [%r1+0]
ldxw %r4, [%r1+4]
jgt %r3, 5, +4
jgt %r4, 7, +2
mov %r0, 2
exit
mov %r0, %r9
exit
mov %r0, 3
exit
"""

LOOP_UNREACHABLE = """
mov %r0, 0
ja -2
exit
"""

NO_EXIT = """
mov %r0, 0
"""

NESTED_THIRD_PATH = """
mov %r0, 1
ldxw %r3, [%r1+0]
ldxw %r4, [%r1+4]
jgt %r3, 5, +3
jgt %r4, 7, +1
exit
exit
jgt %r4, 9, +1
exit
mov %r0, %r9
exit
"""

# Three joins the kernel prunes: ``9: safe`` mid-path, ``from 7 to 9: safe``
# right after a pop, and the ``; R..`` state of the instruction before a
# pruned one left out.  No branch outcome is known, so no mark_precise lines.
PRUNED_JOINS = """
ldxw %r2, [%r1+0]
ldxw %r3, [%r1+4]
mov %r0, 0
mov %r4, 1
mov %r5, 2
jgt %r2, 5, +1
mov %r4, 3
jgt %r3, 7, +1
mov %r5, 4
mov %r6, 0
mov %r7, 0
ldxw %r8, [%r1+8]
jgt %r8, 9, +1
mov %r6, 1
mov %r0, 0
exit
"""

CASES = [
    ("pruned-joins-l2", PRUNED_JOINS, "socket_filter", 2, ()),
    ("pruned-joins-l1", PRUNED_JOINS, "socket_filter", 1, ()),
    # (id, source, prog type, level, normalisations)
    ("unreachable-l1", UNREACHABLE, "socket_filter", 1, ()),
    ("unreachable-l2", UNREACHABLE, "socket_filter", 2, ()),
    ("loop-unreachable-l1", LOOP_UNREACHABLE, "socket_filter", 1, ()),
    ("loop-unreachable-l2", LOOP_UNREACHABLE, "socket_filter", 2, ()),
    ("no-exit-l1", NO_EXIT, "socket_filter", 1, ()),
    ("no-exit-l2", NO_EXIT, "socket_filter", 2, ()),
    ("alu-l1", STRAIGHT_ALU, "xdp", 1, ()),
    ("alu-l2", STRAIGHT_ALU, "xdp", 2, ()),
    ("pkt-outside-l1", PACKET_OUTSIDE, "xdp", 1, ()),
    ("pkt-outside-l2", PACKET_OUTSIDE, "xdp", 2, ()),
    ("stack-partial-l1", STACK_PARTIAL, "xdp", 1, ()),
    ("stack-partial-l2", STACK_PARTIAL, "xdp", 2, ("stack_liveness",)),
    ("uninit-l1", STRAIGHT_UNINIT, "socket_filter", 1, ()),
    ("uninit-l2", STRAIGHT_UNINIT, "socket_filter", 2, ()),
    ("no-r0-l1", NO_R0, "socket_filter", 1, ()),
    ("no-r0-l2", NO_R0, "socket_filter", 2, ()),
    ("spill-branch-l1", STACK_SPILL_BRANCH, "socket_filter", 1, ()),
    ("spill-branch-l2", STACK_SPILL_BRANCH, "socket_filter", 2, ("stack_liveness",)),
    ("branch-uninit-l1", BRANCH_UNINIT, "socket_filter", 1, ()),
    ("branch-uninit-l2", BRANCH_UNINIT, "socket_filter", 2, ()),
    ("second-path-l1", SECOND_PATH_UNINIT, "socket_filter", 1, ()),
    ("second-path-l2", SECOND_PATH_UNINIT, "socket_filter", 2, ()),
    ("nested-third-path-l1", NESTED_THIRD_PATH, "socket_filter", 1, ()),
    ("nested-third-path-l2", NESTED_THIRD_PATH, "socket_filter", 2, ()),
]


def _normalise(log: str, how: tuple[str, ...]) -> str:
    log = re.sub(r"verification time \d+ usec", "verification time N usec", log)
    if "stack_liveness" in how:
        log = "".join(line for line in log.splitlines(keepends=True)
                      if not re.match(r"\(\d+\) (frame \d+ insn \d+ [+]|live stack update)", line))
    return log


def _kernel_log(program, prog_type: str, level: int) -> str:
    from ebpfvm.kernel import load_program
    try:
        return load_program(program.to_bytes(), prog_type, log_level=level).log
    except Exception as exc:  # KernelVerifierError carries the log
        log = getattr(exc, "log", None)
        if log is None:
            raise
        return log


@pytest.mark.parametrize("source,prog_type,level,how", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_log_matches_kernel(source, prog_type, level, how):
    require_kernel()
    program = assemble(source)
    kernel = _kernel_log(program, prog_type, level)
    ours = verify(program, prog_type=prog_type, log_level=level).log
    assert _normalise(ours, how) == _normalise(kernel, how)


def test_packet_beyond_end_range():
    """After ``if r4 > pkt_end`` (taken) r4 is BEYOND_PKT_END: ``r=0xfffffffffffffffe``."""
    require_kernel()
    program = assemble("""
        ldxw %r2, [%r1+0]
        ldxw %r3, [%r1+4]
        mov %r4, %r2
        add %r4, 14
        jgt %r4, %r3, +2
        ldxb %r0, [%r2+12]
        exit
        mov %r0, 0
        exit
    """)
    kernel = _normalise(_kernel_log(program, "xdp", 2), ())
    ours = _normalise(verify(program, prog_type="xdp", log_level=2).log, ())
    assert "R4=pkt(off=14,r=0xfffffffffffffffe)" in kernel
    assert ours == kernel


def test_level0_log_is_error_and_stats_only():
    program = assemble(BRANCH_UNINIT)
    log = verify(program, prog_type="socket_filter").log
    assert log.splitlines()[0] == "R4 !read_ok"
    assert len(log.splitlines()) == 2


def test_format_reg_pointer_kinds():
    from verifier.log import format_reg
    from verifier.state import Reg, RegType, pointer

    class FakeMap:
        name, key_size, value_size = "counts", 4, 8

    maps = (FakeMap(),)
    assert format_reg(pointer(RegType.PTR_TO_CTX)) == "ctx()"
    assert format_reg(pointer(RegType.PTR_TO_STACK, off=-8)) == "fp-8"
    assert format_reg(pointer(RegType.PTR_TO_PACKET, range=14)) == "pkt(r=14)"
    assert format_reg(pointer(RegType.PTR_TO_PACKET_END)) == "pkt_end()"
    assert format_reg(pointer(RegType.CONST_PTR_TO_MAP, map=0), maps) == "map_ptr(map=counts,ks=4,vs=8)"
    assert format_reg(pointer(RegType.PTR_TO_MAP_VALUE, map=0), maps) == "map_value(map=counts,ks=4,vs=8)"
    assert isinstance(Reg, type)


MAP_LOOKUP_UNCHECKED = """
mov %r6, 9
stxw [%r10-4], %r6
lddw %r1, map_fd 0
mov %r2, %r10
add %r2, -4
call 1
ldxdw %r0, [%r0+0]
exit
"""


def _map_address(log: str) -> str:
    """Map loads: the kernel's address and our ``map[fd:N]`` both become ``MAP``."""
    return comparable_log(log)


@pytest.mark.parametrize("level", [1, 2])
def test_map_lookup_log_matches_kernel(level):
    """``map_ptr(map=counts,ks=4,vs=8)``, ``map_value_or_null(id=1,...)``,
    helper-call liveness (r1, r2 read; r0-r5 written), ``mmmm????`` slots."""
    require_kernel()
    from ebpfvm.kernel import (
        KernelVerifierError,
        create_map,
        load_program,
        relocate_map_indices,
    )
    from ebpfvm.maps.definition import MapDefinition
    from ebpfvm.program import Program
    program = Program(assemble(MAP_LOOKUP_UNCHECKED).instructions, prog_type="socket_filter",
                      maps=(MapDefinition("counts", "array", 4, 8, 4),))
    kmap = create_map("array", 4, 8, 4, name="counts")
    try:
        code = relocate_map_indices(program.to_bytes(), [getattr(kmap, "fd", kmap)])
        try:
            kernel = load_program(code, "socket_filter", log_level=level).log
        except KernelVerifierError as exc:
            kernel = exc.log
    finally:
        close = getattr(kmap, "close", None)
        if close:
            close()
    ours = verify(program, prog_type="socket_filter", log_level=level).log
    how = ()
    ours, kernel = _map_address(_normalise(ours, how)), _map_address(_normalise(kernel, how))
    assert "(18) r1 = MAP" in ours and "(18) r1 = MAP" in kernel
    assert ours == kernel


SPILLS_AND_ALU = """
stxdw [%r10-8], %r1
ldxw %r2, [%r1+0]
stxdw [%r10-16], %r2
stxw [%r10-20], %r2
sth [%r10-22], 5
ldxdw %r3, [%r10-8]
ldxdw %r4, [%r10-16]
neg %r4
mov32 %r5, %r4
be16 %r5
add32 %r5, 3
xor %r5, %r4
mov %r0, 0
exit
"""


def test_spills_level1_matches_kernel():
    require_kernel()
    program = assemble(SPILLS_AND_ALU)
    ours = verify(program, prog_type="socket_filter", log_level=1).log
    assert _normalise(ours, ()) == _normalise(_kernel_log(program, "socket_filter", 1), ())


def test_spilled_scalar_id():
    """Spilling an unknown scalar gives it an id linking the register and its
    stack copy (``scalar(id=1,...)``); with the stack-liveness lines dropped
    the level-2 logs agree: pointer spills ``fp-8=ctx()``, partial slots
    ``mmmm????``/``mmmmmm??``, ``stack depth 24``, neg/be16/alu32 bounds."""
    require_kernel()
    program = assemble(SPILLS_AND_ALU)
    kernel = _normalise(_kernel_log(program, "socket_filter", 2), ("stack_liveness",))
    ours = _normalise(verify(program, prog_type="socket_filter", log_level=2).log, ("stack_liveness",))
    assert "scalar(id=1," in kernel
    assert ours == kernel
