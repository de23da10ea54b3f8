"""The control-flow graph the kernel's verifier works on.

Edges are those of ``visit_insn`` in ``kernel/bpf/verifier.c`` (Linux 6.18):

* every instruction outside the JMP/JMP32 classes falls through to the next
  slot (two slots on for an lddw);
* ``exit`` has no successor;
* a call falls through to the return point; a local call (``src == 1``) also
  has a CALL edge to the callee's first instruction, and so does
  ``lddw rX, func`` (``src == 4``, the address of a callback);
* ``ja``/``gotol`` has one JUMP edge; every other jump (the conditional ones
  and ``may_goto``) falls through and has a JUMP edge.

Targets are slot indices: ``pc + 1 + off`` (``imm`` for ``gotol``, calls and
lddw func).  The graph is *interprocedural* for reachability, as
``check_cfg`` is (it walks into callees through CALL edges), and
*intraprocedural* for blocks, successors and loops, as the kernel's later
passes are (``bpf_insn_successors``: a call only falls through).

``depth_first`` reproduces ``check_cfg``'s iterative DFS exactly — the same
stack discipline, edge order and edge labelling — so that discovery order,
back edges and the first offending edge are the kernel's.
``ControlFlowGraph`` packages the results for the later layers: subprogram
ranges, reachable instructions, basic blocks with successors and
predecessors, back edges (loops), strongly connected components and the
per-subprogram postorder of ``compute_postorder``.

The graph tolerates malformed programs (edges leaving the program are
recorded in ``out_of_range`` and otherwise ignored); deciding whether the
program is acceptable is ``verifier.structure``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Sequence

from ebpfvm.isa.instruction import Instruction
from ebpfvm.isa.jump import JmpOp
from ebpfvm.isa.load_store import LDDW_OPCODE, LddwSource
from ebpfvm.isa.opcode import CLASS_MASK, OPERATION_MASK, SOURCE_MASK, InsnClass

PSEUDO_CALL = 1  # BPF_PSEUDO_CALL: src of a bpf-to-bpf call
CALL_OPCODE = InsnClass.JMP | JmpOp.CALL  # 0x85
GOTOL_OPCODE = InsnClass.JMP32 | JmpOp.JA  # 0x06: the offset is in imm


class EdgeKind(Enum):
    FALLTHROUGH = "fallthrough"  # to the next instruction (after a call: the return point)
    JUMP = "jump"  # the target of ja / gotol / a conditional jump
    CALL = "call"  # a local call or lddw func to the callee's first instruction


@dataclass(frozen=True, slots=True)
class Edge:
    source: int
    target: int
    kind: EdgeKind


# --- one instruction ------------------------------------------------------------


def _insns(program: object) -> Sequence[Instruction]:
    return getattr(program, "instructions", program)  # a Program or a plain sequence


def is_ldimm64(insn: Instruction) -> bool:
    return insn.opcode == LDDW_OPCODE


def is_pseudo_call(insn: Instruction) -> bool:
    """``call local``: ``bpf_pseudo_call`` (opcode 0x85, src 1)."""
    return insn.opcode == CALL_OPCODE and insn.src == PSEUDO_CALL


def is_pseudo_func(insn: Instruction) -> bool:
    """``lddw rX, func``: ``bpf_pseudo_func`` (opcode 0x18, src 4)."""
    return insn.opcode == LDDW_OPCODE and insn.src == LddwSource.FUNC


def is_jump_class(opcode: int) -> bool:
    return opcode & CLASS_MASK in (InsnClass.JMP, InsnClass.JMP32)


def jump_offset(insn: Instruction) -> int:
    """``bpf_jmp_offset``: ``imm`` for gotol, ``off`` otherwise."""
    return insn.imm if insn.opcode == GOTOL_OPCODE else insn.off


def insn_size(insn: Instruction) -> int:
    return 2 if is_ldimm64(insn) else 1


def edges(program: object, pc: int) -> tuple[Edge, ...]:
    """The edges ``visit_insn`` follows out of ``pc``, in its order (the first
    is labelled FALLTHROUGH by the kernel's DFS, the second BRANCH).  Targets
    may lie outside the program."""
    insn = _insns(program)[pc]
    code = insn.opcode
    if is_pseudo_func(insn):
        return Edge(pc, pc + 2, EdgeKind.FALLTHROUGH), Edge(pc, pc + insn.imm + 1, EdgeKind.CALL)
    if not is_jump_class(code):
        return (Edge(pc, pc + insn_size(insn), EdgeKind.FALLTHROUGH),)
    op = code & OPERATION_MASK
    if op == JmpOp.EXIT:
        return ()
    if op == JmpOp.CALL:
        if insn.src == PSEUDO_CALL:
            return Edge(pc, pc + 1, EdgeKind.FALLTHROUGH), Edge(pc, pc + insn.imm + 1, EdgeKind.CALL)
        return (Edge(pc, pc + 1, EdgeKind.FALLTHROUGH),)
    if op == JmpOp.JA:
        if code & SOURCE_MASK:  # gotox (JA|X): not an instruction of 6.18
            return ()
        return (Edge(pc, pc + jump_offset(insn) + 1, EdgeKind.JUMP),)
    return Edge(pc, pc + 1, EdgeKind.FALLTHROUGH), Edge(pc, pc + insn.off + 1, EdgeKind.JUMP)


def local_edges(program: object, pc: int) -> tuple[Edge, ...]:
    """``bpf_insn_successors``: the edges of ``pc`` inside its subprogram
    (a call only falls through to its return point)."""
    return tuple(e for e in edges(program, pc) if e.kind is not EdgeKind.CALL)


# --- subprograms --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subprogram:
    """Subprogram ``index``: slots ``start`` up to (not including) ``end``."""

    index: int
    start: int
    end: int

    def __contains__(self, pc: object) -> bool:
        return isinstance(pc, int) and self.start <= pc < self.end

    @property
    def slots(self) -> range:
        return range(self.start, self.end)


def subprogram_starts(program: object) -> tuple[int, ...]:
    """Where subprograms start, as ``add_subprog_and_kfunc`` finds them: 0,
    the target of every local call and of every ``lddw func``, sorted.  Every
    slot is looked at (the kernel scans before validating lddw pairs); targets
    outside the program are left out (``verifier.structure`` reports them)."""
    insns = _insns(program)
    starts = {0}
    for pc, insn in enumerate(insns):
        if is_pseudo_call(insn) or is_pseudo_func(insn):
            target = pc + insn.imm + 1
            if 0 <= target < len(insns):
                starts.add(target)
    return tuple(sorted(starts))


def subprograms(program: object) -> tuple[Subprogram, ...]:
    insns = _insns(program)
    starts = subprogram_starts(insns)
    ends = starts[1:] + (len(insns),)
    return tuple(Subprogram(i, s, e) for i, (s, e) in enumerate(zip(starts, ends)))


# --- the kernel's DFS ----------------------------------------------------------------

DISCOVERED = 0x10
EXPLORED = 0x20
_LABEL_FALLTHROUGH = 1
_LABEL_BRANCH = 2


class Stop(Enum):
    OUT_OF_RANGE = "out of range"
    BACK_EDGE = "back edge"


@dataclass(frozen=True)
class DfsResult:
    """What ``check_cfg``'s walk saw.  ``preorder``: instructions in discovery
    order; ``postorder``: in the order they were finished; ``back_edges``: the
    edges to an instruction still on the stack, in the order met; ``stop``:
    the edge the walk stopped at, and why (None when it ran to the end)."""

    preorder: tuple[int, ...]
    postorder: tuple[int, ...]
    back_edges: tuple[Edge, ...]
    out_of_range: tuple[Edge, ...]
    stop: Edge | None = None
    stop_reason: Stop | None = None
    state: tuple[int, ...] = field(default=(), repr=False)

    @property
    def explored(self) -> frozenset[int]:
        return frozenset(self.postorder)


def depth_first(program: object, roots: Iterable[int] = (0,), *, stop_at_back_edge: bool = False,
                stop_at_out_of_range: bool = False) -> DfsResult:
    """``check_cfg``'s iterative DFS from ``roots`` (the kernel: 0, then the
    exception callback if BTF names one).

    The kernel keeps a stack of instructions; the top one is "visited" again
    and again, each time pushing the first of its edges not yet labelled
    (``push_insn``): a tree edge pushes the target, an edge to an instruction
    on the stack is a back edge, an edge to a finished one a forward or cross
    edge.  Once no edge pushes anything the instruction is finished and
    popped.  A privileged (CAP_BPF) load lets back edges through without
    labelling them; an unprivileged one stops at the first
    (``stop_at_back_edge``).  Edges leaving the program stop the kernel
    (``stop_at_out_of_range``); otherwise they are skipped and collected."""
    insns = _insns(program)
    n = len(insns)
    state = [0] * n
    preorder: list[int] = []
    postorder: list[int] = []
    back: list[Edge] = []
    outside: list[Edge] = []

    def result(stop: Edge | None = None, reason: Stop | None = None) -> DfsResult:
        return DfsResult(tuple(preorder), tuple(postorder), tuple(back), tuple(outside), stop, reason,
                         tuple(state))

    for root in roots:
        if not 0 <= root < n or state[root] == EXPLORED:
            continue
        state[root] = DISCOVERED
        preorder.append(root)
        stack = [root]
        while stack:
            t = stack[-1]
            pushed = False
            for label, edge in zip((_LABEL_FALLTHROUGH, _LABEL_BRANCH), edges(insns, t)):
                if state[t] >= DISCOVERED | label:
                    continue  # this edge was labelled on an earlier visit
                w = edge.target
                if not 0 <= w < n:
                    outside.append(edge)
                    if stop_at_out_of_range:
                        return result(edge, Stop.OUT_OF_RANGE)
                    continue
                if state[w] == 0:  # tree edge
                    state[t] = DISCOVERED | label
                    state[w] = DISCOVERED
                    stack.append(w)
                    preorder.append(w)
                    pushed = True
                    break
                if state[w] & 0xF0 == DISCOVERED:  # back edge: left unlabelled
                    back.append(edge)
                    if stop_at_back_edge:
                        return result(edge, Stop.BACK_EDGE)
                else:  # forward or cross edge
                    state[t] = DISCOVERED | label
            if not pushed:
                state[t] = EXPLORED
                stack.pop()
                postorder.append(t)
    return result()


# --- the graph --------------------------------------------------------------------


@dataclass(frozen=True)
class BasicBlock:
    """Instructions ``pcs`` (first slots only: an lddw counts once) that run
    one after the other; only the last may branch, only the first may be
    entered from elsewhere.  ``successors``/``predecessors`` are block starts
    within the subprogram; ``calls`` the subprogram entries called from the
    block (local calls and ``lddw func``)."""

    start: int
    pcs: tuple[int, ...]
    subprogram: int
    successors: tuple[int, ...]
    predecessors: tuple[int, ...]
    calls: tuple[int, ...]

    @property
    def last(self) -> int:
        return self.pcs[-1]


class ControlFlowGraph:
    """The CFG of a program (a ``Program`` or a sequence of ``Instruction``).

    Attributes: ``subprograms``; ``dfs`` (the kernel's walk from insn 0);
    ``reachable`` (instructions that walk reaches, following calls);
    ``blocks`` (basic blocks over the reachable instructions, by start);
    ``back_edges`` ((source, target) pairs, the loops ``check_cfg`` sees);
    ``out_of_range`` (edges leaving the program from reachable code).
    """

    def __init__(self, program: object) -> None:
        self.insns: tuple[Instruction, ...] = tuple(_insns(program))
        self.subprograms: tuple[Subprogram, ...] = subprograms(self.insns)
        self.dfs: DfsResult = depth_first(self.insns)
        self.reachable: frozenset[int] = frozenset(self.dfs.preorder)
        self.back_edges: frozenset[tuple[int, int]] = frozenset((e.source, e.target) for e in self.dfs.back_edges)
        self.out_of_range: tuple[Edge, ...] = self.dfs.out_of_range
        self._succ: dict[int, tuple[Edge, ...]] = {}
        self._pred: dict[int, list[Edge]] = {pc: [] for pc in self.reachable}
        self._callers: dict[int, list[int]] = {}
        n = len(self.insns)
        for pc in sorted(self.reachable):
            out = tuple(e for e in edges(self.insns, pc) if 0 <= e.target < n)
            self._succ[pc] = out
            for e in out:
                if e.kind is EdgeKind.CALL:
                    self._callers.setdefault(e.target, []).append(pc)
                else:
                    self._pred[e.target].append(e)
        self.blocks: dict[int, BasicBlock] = self._build_blocks()
        self._block_of = {pc: b.start for b in self.blocks.values() for pc in b.pcs}

    # -- instructions ------------------------------------------------------------
    def edges(self, pc: int, *, calls: bool = False) -> tuple[Edge, ...]:
        """Edges out of reachable ``pc`` that stay in the program; CALL edges only with ``calls``."""
        out = self._succ.get(pc, ())
        return out if calls else tuple(e for e in out if e.kind is not EdgeKind.CALL)

    def successors(self, pc: int, *, calls: bool = False) -> tuple[int, ...]:
        return tuple(e.target for e in self.edges(pc, calls=calls))

    def predecessors(self, pc: int) -> tuple[int, ...]:
        """Reachable instructions with a FALLTHROUGH or JUMP edge to ``pc``."""
        return tuple(e.source for e in self._pred.get(pc, ()))

    def callers(self, entry: int) -> tuple[int, ...]:
        """Reachable instructions that call (or take the address of) ``entry``."""
        return tuple(self._callers.get(entry, ()))

    def subprogram_of(self, pc: int) -> Subprogram:
        """The subprogram whose range holds ``pc`` (``bpf_find_containing_subprog``)."""
        lo, hi = 0, len(self.subprograms) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self.subprograms[mid].start <= pc:
                lo = mid
            else:
                hi = mid - 1
        return self.subprograms[lo]

    def block_of(self, pc: int) -> BasicBlock:
        return self.blocks[self._block_of[pc]]

    # -- blocks ------------------------------------------------------------------
    def _is_leader(self, pc: int, entries: frozenset[int]) -> bool:
        if pc in entries:
            return True
        preds = self._pred.get(pc, [])
        if len(preds) != 1 or preds[0].kind is not EdgeKind.FALLTHROUGH:
            return True
        return len(self.edges(preds[0].source)) != 1

    def _build_blocks(self) -> dict[int, BasicBlock]:
        entries = frozenset({0} | {s.start for s in self.subprograms if s.start in self.reachable})
        leaders = sorted(pc for pc in self.reachable if self._is_leader(pc, entries))
        leader_set = frozenset(leaders)
        spans: dict[int, tuple[int, ...]] = {}
        for start in leaders:
            pcs = [start]
            while True:
                out = self.edges(pcs[-1])
                if len(out) != 1 or out[0].kind is not EdgeKind.FALLTHROUGH or out[0].target in leader_set:
                    break
                pcs.append(out[0].target)
            spans[start] = tuple(pcs)
        leader_of = {pc: start for start, pcs in spans.items() for pc in pcs}
        blocks: dict[int, BasicBlock] = {}
        for start, pcs in spans.items():
            succ = tuple(dict.fromkeys(self.successors(pcs[-1])))
            pred = tuple(dict.fromkeys(leader_of[p] for p in self.predecessors(start)))
            calls = tuple(dict.fromkeys(e.target for pc in pcs for e in self.edges(pc, calls=True)
                                        if e.kind is EdgeKind.CALL))
            blocks[start] = BasicBlock(start, pcs, self.subprogram_of(start).index, succ, pred, calls)
        return blocks

    # -- loops and orders ----------------------------------------------------------
    @property
    def loop_heads(self) -> frozenset[int]:
        """Targets of back edges."""
        return frozenset(w for _, w in self.back_edges)

    def postorder(self, subprogram: Subprogram | int) -> tuple[int, ...]:
        """``compute_postorder`` for one subprogram: the kernel's iterative walk
        from its start over local edges (every undiscovered successor is pushed
        at once), instructions listed when finished."""
        sub = self.subprograms[subprogram] if isinstance(subprogram, int) else subprogram
        n = len(self.insns)
        state: dict[int, int] = {}
        order: list[int] = []
        stack = [sub.start]
        while stack:
            top = stack[-1]
            state[top] = state.get(top, 0) | DISCOVERED
            if state[top] & EXPLORED:
                order.append(top)
                stack.pop()
                continue
            for e in local_edges(self.insns, top):
                w = e.target
                if 0 <= w < n and not state.get(w):
                    stack.append(w)
                    state[w] = DISCOVERED
            state[top] |= EXPLORED
        return tuple(order)

    def strongly_connected_components(self) -> tuple[frozenset[int], ...]:
        """Cyclic SCCs over local edges of the reachable instructions (what
        ``compute_scc`` numbers): components of two or more instructions, or
        one with an edge to itself.  Tarjan's algorithm, iteratively."""
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on_stack: set[int] = set()
        stack: list[int] = []
        found: list[frozenset[int]] = []
        counter = 0
        for root in sorted(self.reachable):
            if root in index:
                continue
            work = [(root, iter(self.successors(root)))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                v, it = work[-1]
                advanced = False
                for w in it:
                    if w not in index:
                        index[w] = low[w] = counter
                        counter += 1
                        stack.append(w)
                        on_stack.add(w)
                        work.append((w, iter(self.successors(w))))
                        advanced = True
                        break
                    if w in on_stack:
                        low[v] = min(low[v], index[w])
                if advanced:
                    continue
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    members = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        members.append(w)
                        if w == v:
                            break
                    if len(members) > 1 or v in self.successors(v):
                        found.append(frozenset(members))
        return tuple(found)
