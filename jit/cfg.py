"""Basic blocks and subprogram entries, as the lowering sees them.

Leaders are computed once for the whole program (slot 0, every call target,
every jump target, and the slot after every jump, exit, local call and
legacy packet load: a block's instruction count is charged to the budget at
its entry, so nothing after a call may be charged before the callee runs), so a block is the same slot range in every function that reaches it.
Each subprogram entry becomes one LLVM function holding the blocks reachable
from it by jumps and fall-through; code reachable from two entries (which a
program the verifier has not seen may have) is simply lowered twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebpfvm.isa.forms import FORMS, Kind
from ebpfvm.isa.jump import CallKind
from ebpfvm.isa.load_store import LddwSource
from ebpfvm.isa.targets import slot_target
from ebpfvm.isa.validate import lddw_tails
from ebpfvm.program import Program

# Kinds after which control does not (only) fall through to the next slot.
_BRANCHING = {Kind.JA, Kind.JUMP, Kind.EXIT, Kind.LD_ABS, Kind.LD_IND}


@dataclass(frozen=True)
class Block:
    start: int
    slots: tuple[int, ...]  # instruction slots (an lddw is one slot: its head)
    successors: tuple[int, ...]  # leader slots; len(program) means "fell off the end"

    @property
    def length(self) -> int:
        return len(self.slots)


def _width(program: Program, pc: int) -> int:
    return 2 if FORMS[program[pc].opcode].kind is Kind.LDDW else 1


def _is_local_call(insn) -> bool:
    return FORMS[insn.opcode].kind is Kind.CALL and insn.src == CallKind.LOCAL


# bpf_tail_call, bpf_for_each_map_elem, bpf_loop end their block: what follows
# is charged to the budget only when it runs (after the target / the callbacks).
CONTROL_HELPERS = (12, 164, 181)


def _is_control_helper(insn) -> bool:
    return FORMS[insn.opcode].kind is Kind.CALL and insn.src == CallKind.HELPER and insn.imm in CONTROL_HELPERS


def call_targets(program: Program) -> list[int]:
    tails = lddw_tails(program.instructions)
    targets = set()
    for pc, insn in enumerate(program.instructions):
        if pc in tails:
            continue
        form = FORMS[insn.opcode]
        if form.kind is Kind.CALL and insn.src == CallKind.LOCAL:
            targets.add(slot_target(insn, pc))
    return sorted(targets | set(callback_targets(program)))


def callback_targets(program: Program) -> list[int]:
    """Subprograms whose address an lddw (src = BPF_PSEUDO_FUNC) loads:
    callbacks of bpf_loop / bpf_for_each_map_elem."""
    tails = lddw_tails(program.instructions)
    targets = set()
    for pc, insn in enumerate(program.instructions):
        if pc in tails or insn.opcode not in FORMS:
            continue
        if FORMS[insn.opcode].kind is Kind.LDDW and insn.src == LddwSource.FUNC:
            target = slot_target(insn, pc)
            if 0 <= target < len(program):
                targets.add(target)
    return sorted(targets)


def build_blocks(program: Program) -> dict[int, Block]:
    n = len(program)
    tails = lddw_tails(program.instructions)
    leaders = {0, *call_targets(program)}
    for pc, insn in enumerate(program.instructions):
        if pc in tails:
            continue
        kind = FORMS[insn.opcode].kind
        if kind in _BRANCHING or _is_local_call(insn) or _is_control_helper(insn):
            leaders.add(pc + 1)
            if kind in (Kind.JA, Kind.JUMP):
                leaders.add(slot_target(insn, pc))
    blocks: dict[int, Block] = {}
    for start in sorted(x for x in leaders if x < n):
        slots = []
        pc = start
        successors: tuple[int, ...] = ()
        while True:
            slots.append(pc)
            insn = program[pc]
            kind = FORMS[insn.opcode].kind
            nxt = pc + _width(program, pc)
            if kind is Kind.EXIT:
                successors = ()
                break
            if kind is Kind.JA:
                successors = (slot_target(insn, pc),)
                break
            if kind is Kind.JUMP:
                successors = (slot_target(insn, pc), nxt)
                break
            if kind in (Kind.LD_ABS, Kind.LD_IND) or nxt >= n or nxt in leaders:
                successors = (nxt,)
                break
            pc = nxt
        blocks[start] = Block(start, tuple(slots), successors)
    return blocks


def reachable(blocks: dict[int, Block], entry: int, n: int) -> list[int]:
    """Leaders reachable from ``entry`` (in slot order)."""
    seen = {entry}
    work = [entry]
    while work:
        for succ in blocks[work.pop()].successors:
            if succ < n and succ not in seen:
                seen.add(succ)
                work.append(succ)
    return sorted(seen)
