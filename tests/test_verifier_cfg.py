"""``ebpfvm.verifier.cfg``: edges, subprograms, the kernel's DFS, blocks, loops."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ebpfvm import Program, assemble
from ebpfvm.isa import Instruction
from ebpfvm.verifier.cfg import (ControlFlowGraph, Edge, EdgeKind, Stop, Subprogram, depth_first, edges,
                                 local_edges, subprogram_starts, subprograms)

from strategies import valid_programs
from test_verifier_structure import structural_programs

# ISA-valid programs (targets on instruction boundaries), and programs with
# the structural mistakes (jumps out of range, into lddw tails, across
# subprograms): the graph must be sound for both.
PROGRAMS = st.one_of(valid_programs(), structural_programs())

FT, JUMP, CALL = EdgeKind.FALLTHROUGH, EdgeKind.JUMP, EdgeKind.CALL
EXIT = Instruction(0x95)
MOV0 = Instruction(0xB7)


def prog(*insns: Instruction) -> Program:
    return Program(insns)


# --- edges -------------------------------------------------------------------------


def test_edges_of_each_kind():
    p = prog(
        MOV0,                                # 0: falls through
        Instruction(0x15, 1, 0, 2, 0),       # 1: jeq r1, 0, +2
        Instruction(0x18, 0, 0, 0, 1),       # 2: lddw (two slots)
        Instruction(0),                      # 3
        Instruction(0x85, 0, 1, 0, 3),       # 4: call local +3 -> 8
        Instruction(0x85, 0, 0, 0, 5),       # 5: helper call
        Instruction(0x06, 0, 0, 0, -7),      # 6: gotol -7 -> 0
        Instruction(0x18, 1, 4, 0, 0),       # 7: lddw r1, func +0 -> 8 ... (second slot is 8)
        EXIT,
    )
    assert edges(p, 0) == (Edge(0, 1, FT),)
    assert edges(p, 1) == (Edge(1, 2, FT), Edge(1, 4, JUMP))
    assert edges(p, 2) == (Edge(2, 4, FT),)
    assert edges(p, 4) == (Edge(4, 5, FT), Edge(4, 8, CALL))
    assert local_edges(p, 4) == (Edge(4, 5, FT),)
    assert edges(p, 5) == (Edge(5, 6, FT),)
    assert edges(p, 6) == (Edge(6, 0, JUMP),)
    assert edges(p, 7) == (Edge(7, 9, FT), Edge(7, 8, CALL))
    assert edges(p, 8) == ()
    assert edges(prog(Instruction(0x0D, 1)), 0) == ()  # gotox: no static edges


def test_subprograms_follow_add_subprog():
    p = assemble("""
        call local f
        lddw %r1, func g
        exit
    f:  exit
    g:  mov %r0, 0
        exit
    """)
    assert subprogram_starts(p) == (0, 4, 5)
    assert subprograms(p) == (Subprogram(0, 0, 4), Subprogram(1, 4, 5), Subprogram(2, 5, 7))
    assert 4 in subprograms(p)[1] and 5 not in subprograms(p)[1]
    assert subprogram_starts(prog(Instruction(0x85, 0, 1, 0, 100), EXIT)) == (0,)  # out of range: left out


# --- the kernel's DFS ----------------------------------------------------------------


def test_dfs_order_is_the_kernels():
    p = prog(MOV0,
             Instruction(0x15, 1, 0, 2, 0),  # 1: jeq r1, 0, +2 -> 4
             Instruction(0xB7, 0, 0, 0, 1),  # 2
             Instruction(0x05, 0, 0, 1, 0),  # 3: ja +1 -> 5
             Instruction(0xB7, 0, 0, 0, 2),  # 4
             EXIT)                           # 5
    dfs = depth_first(p)
    assert dfs.preorder == (0, 1, 2, 3, 5, 4)
    assert dfs.postorder == (5, 3, 2, 4, 1, 0)
    assert dfs.back_edges == () and dfs.stop is None


def test_dfs_back_edges_and_stops():
    loop = prog(MOV0, Instruction(0x07, 0, 0, 0, 1), Instruction(0xA5, 0, 0, -2, 4), EXIT)
    dfs = depth_first(loop)
    assert dfs.back_edges == (Edge(2, 1, JUMP),) and dfs.explored == {0, 1, 2, 3}
    stopped = depth_first(loop, stop_at_back_edge=True)
    assert (stopped.stop, stopped.stop_reason) == (Edge(2, 1, JUMP), Stop.BACK_EDGE)
    off_end = prog(MOV0, Instruction(0x15, 1, 0, 5, 0), EXIT)
    assert depth_first(off_end).out_of_range == (Edge(1, 7, JUMP),)
    assert depth_first(off_end, stop_at_out_of_range=True).stop_reason is Stop.OUT_OF_RANGE


def test_dfs_walks_into_callees_and_marks_lddw_tails_it_lands_on():
    p = prog(Instruction(0x85, 0, 1, 0, 1), EXIT, MOV0, EXIT)
    assert depth_first(p).explored == {0, 1, 2, 3}
    into_tail = prog(Instruction(0x15, 1, 0, 1, 0), Instruction(0x18), Instruction(0), EXIT)
    dfs = depth_first(into_tail)
    assert dfs.state[2] != 0 and 2 in dfs.explored


# --- the graph ---------------------------------------------------------------------------


def test_blocks_of_a_diamond_with_a_loop():
    p = assemble("""
        mov %r0, 0
    top:
        jeq %r1, 0, left
        add %r0, 1
        ja join
    left:
        add %r0, 2
    join:
        jlt %r0, 10, top
        exit
    """)
    cfg = ControlFlowGraph(p)
    assert sorted(cfg.blocks) == [0, 1, 2, 4, 5, 6]
    assert cfg.blocks[0].pcs == (0,) and cfg.blocks[2].pcs == (2, 3)
    assert cfg.blocks[1].successors == (2, 4)
    assert set(cfg.blocks[5].predecessors) == {2, 4}
    assert cfg.blocks[5].successors == (6, 1)
    assert set(cfg.blocks[1].predecessors) == {0, 5}
    assert cfg.back_edges == {(5, 1)} and cfg.loop_heads == {1}
    assert cfg.strongly_connected_components() == (frozenset({1, 2, 3, 4, 5}),)
    assert cfg.block_of(3).start == 2
    assert cfg.predecessors(5) == (3, 4) or set(cfg.predecessors(5)) == {3, 4}


def test_calls_stay_inside_blocks_and_callees_get_their_own():
    p = assemble("""
        mov %r1, 1
        call local f
        add %r0, 1
        exit
    f:  mov %r0, %r1
        exit
    """)
    cfg = ControlFlowGraph(p)
    assert cfg.blocks[0].pcs == (0, 1, 2, 3) and cfg.blocks[0].calls == (4,)
    assert cfg.blocks[4].subprogram == 1 and cfg.blocks[4].pcs == (4, 5)
    assert cfg.callers(4) == (1,)
    assert cfg.successors(1) == (2,) and cfg.successors(1, calls=True) == (2, 4)
    assert cfg.subprogram_of(5).index == 1
    assert cfg.postorder(0) == (3, 2, 1, 0) and cfg.postorder(1) == (5, 4)


def test_unreachable_code_has_no_block():
    p = prog(MOV0, EXIT, MOV0, EXIT)
    cfg = ControlFlowGraph(p)
    assert cfg.reachable == {0, 1} and sorted(cfg.blocks) == [0]


def test_self_loop_is_a_component():
    cfg = ControlFlowGraph(prog(MOV0, Instruction(0x05, 0, 0, -1, 0)))
    assert cfg.back_edges == {(1, 1)}
    assert cfg.strongly_connected_components() == (frozenset({1}),)


def test_jump_into_an_lddw_tail_makes_it_a_leader():
    p = prog(Instruction(0x15, 1, 0, 2, 0), MOV0, Instruction(0x18), Instruction(0), EXIT)
    cfg = ControlFlowGraph(p)
    assert 3 in cfg.blocks  # the tail, entered by the jump
    assert cfg.blocks[1].pcs == (1, 2) and cfg.blocks[1].successors == (4,)
    assert cfg.blocks[3].successors == (4,) and set(cfg.blocks[4].predecessors) == {1, 3}


def test_edges_out_of_the_program_are_collected():
    cfg = ControlFlowGraph(prog(MOV0, MOV0))
    assert cfg.out_of_range == (Edge(1, 2, FT),)
    assert cfg.successors(1) == ()


# --- properties ------------------------------------------------------------------------


@given(program=PROGRAMS)
def test_blocks_partition_the_reachable_instructions(program):
    cfg = ControlFlowGraph(program)
    seen: list[int] = []
    for start, block in cfg.blocks.items():
        assert block.start == start == block.pcs[0]
        seen.extend(block.pcs)
        for a, b in zip(block.pcs, block.pcs[1:]):  # straight-line inside
            assert cfg.edges(a) == (Edge(a, b, FT),)
        assert block.subprogram == cfg.subprogram_of(start).index
    assert sorted(seen) == sorted(cfg.reachable)  # each reachable instruction exactly once


@given(program=PROGRAMS)
def test_every_edge_goes_to_a_block_start(program):
    cfg = ControlFlowGraph(program)
    for block in cfg.blocks.values():
        for pc in block.pcs[:-1]:
            assert all(e.kind is CALL or e.target in block.pcs for e in cfg.edges(pc, calls=True))
        for pc in block.pcs:
            for e in cfg.edges(pc, calls=True):
                if e.kind is CALL or pc == block.last:
                    assert e.target in cfg.blocks
        assert set(block.successors) == {e.target for e in cfg.edges(block.last)}
        for succ in block.successors:
            assert block.start in cfg.blocks[succ].predecessors
        for pred in block.predecessors:
            assert block.start in cfg.blocks[pred].successors


def _reached_from(cfg: ControlFlowGraph, start: int, *, calls: bool = True) -> set[int]:
    seen, todo = {start}, [start]
    while todo:
        for w in cfg.successors(todo.pop(), calls=calls):
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


@given(program=PROGRAMS)
def test_dfs_orders_cover_the_reachable_set(program):
    cfg = ControlFlowGraph(program)
    dfs = cfg.dfs
    assert dfs.preorder[0] == 0 and len(set(dfs.preorder)) == len(dfs.preorder)
    assert sorted(dfs.preorder) == sorted(dfs.postorder) == sorted(cfg.reachable)
    assert dfs.postorder[-1] == 0
    for source, target in cfg.back_edges:  # a back edge closes a cycle (through calls, maybe)
        assert source in _reached_from(cfg, target)
    for component in cfg.strongly_connected_components():
        for pc in component:
            assert component <= _reached_from(cfg, pc, calls=False)
    for sub in cfg.subprograms:
        if sub.start in cfg.reachable:
            order = cfg.postorder(sub)
            assert order[-1] == sub.start and len(set(order)) == len(order)
