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


# bpf_tail_call, bpf_for_each_map_elem, bpf_loop end their block: what follows
# is charged to the budget only when it runs (after the target / the callbacks).
CONTROL_HELPERS = (12, 164, 181)

# Per-opcode facts, so the scans below hash small ints instead of enum members
# (their Python-level __hash__ made block building a visible part of compile time).
_KIND = {opcode: form.kind for opcode, form in FORMS.items()}
_ENDS_BLOCK = frozenset(opcode for opcode, kind in _KIND.items() if kind in _BRANCHING)
_CALLS = frozenset(opcode for opcode, kind in _KIND.items() if kind is Kind.CALL)
_LDDW = frozenset(opcode for opcode, kind in _KIND.items() if kind is Kind.LDDW)
_JUMPS = frozenset(opcode for opcode, kind in _KIND.items() if kind in (Kind.JA, Kind.JUMP))


def instruction_heads(program: Program) -> list[int]:
    """Slots that start an instruction (every slot but lddw tails)."""
    tails = lddw_tails(program.instructions)
    return [pc for pc in range(len(program)) if pc not in tails] if tails else list(range(len(program)))


def call_targets(program: Program, heads: list[int] | None = None) -> list[int]:
    """Subprogram entries: local call targets and callbacks."""
    insns = program.instructions
    targets = {slot_target(insns[pc], pc) for pc in (instruction_heads(program) if heads is None else heads)
               if insns[pc].opcode in _CALLS and insns[pc].src == CallKind.LOCAL}
    return sorted(targets | set(callback_targets(program, heads)))


def callback_targets(program: Program, heads: list[int] | None = None) -> list[int]:
    """Subprograms whose address an lddw (src = BPF_PSEUDO_FUNC) loads:
    callbacks of bpf_loop / bpf_for_each_map_elem."""
    insns = program.instructions
    targets = set()
    for pc in instruction_heads(program) if heads is None else heads:
        insn = insns[pc]
        if insn.opcode in _LDDW and insn.src == LddwSource.FUNC:
            target = slot_target(insn, pc)
            if 0 <= target < len(program):
                targets.add(target)
    return sorted(targets)


def build_blocks(program: Program, heads: list[int] | None = None) -> dict[int, Block]:
    n = len(program)
    insns = program.instructions
    if heads is None:
        heads = instruction_heads(program)
    leaders = {0, *call_targets(program, heads)}
    for pc in heads:
        insn = insns[pc]
        opcode = insn.opcode
        if opcode in _ENDS_BLOCK:
            leaders.add(pc + 1)
            if opcode in _JUMPS:
                leaders.add(slot_target(insn, pc))
        elif opcode in _CALLS and (insn.src == CallKind.LOCAL
                                   or (insn.src == CallKind.HELPER and insn.imm in CONTROL_HELPERS)):
            leaders.add(pc + 1)
    blocks: dict[int, Block] = {}
    for start in sorted(x for x in leaders if x < n):
        slots = []
        pc = start
        successors: tuple[int, ...] = ()
        while True:
            slots.append(pc)
            insn = insns[pc]
            kind = _KIND[insn.opcode]
            nxt = pc + (2 if insn.opcode in _LDDW else 1)
            if kind is Kind.EXIT:
                successors = ()
                break
            if kind is Kind.JA:
                successors = (slot_target(insn, pc),)
                break
            if kind is Kind.JUMP:
                successors = (slot_target(insn, pc), nxt)
                break
            if kind is Kind.LD_ABS or kind is Kind.LD_IND or nxt >= n or nxt in leaders:
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
