"""Static register liveness, as Linux 6.18's ``compute_live_registers``.

For every instruction: the set of registers r0-r9 whose value may still be
read on some path from it before being overwritten (its *live-before* set,
a bitmask, bit ``i`` for ``ri``).  The kernel prints this table at log
level 2 (``Live regs before insn:``) and, when a checkpoint is finished,
turns its dead registers into NOT_INIT (``clean_func_state``) so they match
anything when pruning.

The analysis is intraprocedural, as the kernel's: a call only falls through
to its return point (``verifier.cfg.local_edges``); it reads the argument
registers (a helper's declared arguments, r1-r5 for anything else) and
overwrites r0-r5; ``exit`` reads r0.  LD_ABS/LD_IND may leave the program
through an implicit exit, so they read every register.  The frame pointer
r10 is never tracked.

Pure: it knows instructions and the CFG, nothing of abstract states.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ebpfvm.isa.instruction import Instruction

from .cfg import _insns, is_ldimm64, local_edges

ALL_REGS = (1 << 10) - 1        # r0-r9
CALLER_SAVED = (1 << 6) - 1     # r0-r5
ARG_REGS = CALLER_SAVED & ~1    # r1-r5
BPF_FETCH = 0x01
BPF_XCHG = 0xE0 | BPF_FETCH
BPF_CMPXCHG = 0xF0 | BPF_FETCH
BPF_LOAD_ACQ = 0x100
BPF_STORE_REL = 0x110

# helper id -> number of argument registers it reads, or None when the
# helper is unknown or not allowed here (the kernel then assumes r1-r5)
HelperArgs = Callable[[int], "int | None"]


def _bit(regno: int) -> int:
    return 1 << regno if regno < 10 else 0


def use_def(insn: Instruction, helper_args: HelperArgs | None = None) -> tuple[int, int]:
    """(registers read, registers written) by one instruction, as bitmasks."""
    code = insn.opcode
    cls = code & 0x07
    dst, src = _bit(insn.dst), _bit(insn.src)
    if cls in (0x04, 0x07):  # ALU, ALU64
        op = code & 0xF0
        x = bool(code & 0x08)
        if op == 0xB0:  # mov
            return (src if x else 0), dst
        if op in (0x80, 0xD0):  # neg, end: the source field is not a register
            return dst, dst
        return dst | (src if x else 0), dst
    if cls == 0x01:  # LDX
        return src, dst
    if cls == 0x02:  # ST
        return dst, 0
    if cls == 0x03:  # STX
        if code & 0xE0 != 0xC0:
            return dst | src, 0
        imm = insn.imm & 0xFFFF_FFFF
        if imm == BPF_LOAD_ACQ:
            return src, dst
        if imm == BPF_STORE_REL:
            return dst | src, 0
        if imm == BPF_CMPXCHG:
            return dst | src | 1, 1
        if imm & BPF_FETCH:  # fetch ops and xchg write the old value to src
            return dst | src, src
        return dst | src, 0
    if cls == 0x00:  # LD
        if is_ldimm64(insn):
            return 0, dst
        return ALL_REGS, CALLER_SAVED  # LD_ABS / LD_IND
    op = code & 0xF0  # JMP, JMP32
    if op == 0x00 or op == 0xE0:  # ja, may_goto
        return 0, 0
    if op == 0x90:  # exit
        return 1, 0
    if op == 0x80:  # call
        nargs = None
        if cls == 0x05 and insn.src == 0 and not code & 0x08 and helper_args is not None:
            nargs = helper_args(insn.imm)
        use = ((1 << (nargs + 1)) - 2) if nargs is not None else ARG_REGS
        return use, CALLER_SAVED
    return dst | (src if code & 0x08 else 0), 0


def live_regs_before(program: object, helper_args: HelperArgs | None = None) -> list[int]:
    """The live-before bitmask of every instruction slot (0 for the second
    slot of an lddw and for slots no edge reaches)."""
    insns: Sequence[Instruction] = _insns(program)
    n = len(insns)
    heads = _instruction_slots(insns)
    effects = {pc: use_def(insns[pc], helper_args) for pc in heads}
    succ = {pc: [e.target for e in local_edges(insns, pc) if 0 <= e.target < n] for pc in heads}
    live = [0] * n
    changed = True
    while changed:  # backward: converges in a few sweeps over the reversed order
        changed = False
        for pc in reversed(heads):
            use, defs = effects[pc]
            out = 0
            for s in succ[pc]:
                out |= live[s]
            new = use | (out & ~defs)
            if new != live[pc]:
                live[pc] = new
                changed = True
    return live


def _instruction_slots(insns: Sequence[Instruction]) -> list[int]:
    slots, pc = [], 0
    while pc < len(insns):
        slots.append(pc)
        pc += 2 if is_ldimm64(insns[pc]) else 1
    return slots


def helper_arg_counter(prog_type_info: object | None) -> HelperArgs:
    """``get_call_summary`` for helpers: the number of declared arguments of
    a helper the program type allows, None otherwise."""
    from ebpfvm.helpers import default_registry
    from ebpfvm.helpers.prototype import ArgKind
    registry = default_registry()

    def count(fid: int) -> int | None:
        if prog_type_info is not None and not prog_type_info.allows_helper(fid):
            return None
        helper = registry.get(fid)
        if helper is None:
            return None
        n = 0
        for kind in helper.proto.args:
            if kind is ArgKind.DONTCARE:
                break
            n += 1
        return n

    return count


def format_mask(mask: int) -> str:
    """``.1.345....``: the kernel's column per register r0-r9."""
    return "".join(str(r) if mask >> r & 1 else "." for r in range(10))


# --- stack slots ----------------------------------------------------------------------

ALL_SLOTS = (1 << 64) - 1  # the 64 eight-byte slots of a 512-byte frame


def slot_mask(lo: int, size: int) -> int:
    """The slots (bit ``i``: ``fp-8*(i+1)`` .. ``fp-8*i-1``) bytes ``lo`` ..
    ``lo + size - 1`` (offsets from the frame pointer) touch."""
    mask = 0
    for addr in range(lo, lo + size):
        index = (-addr - 1) // 8
        if 0 <= index < 64:
            mask |= 1 << index
    return mask


class StackLiveness:
    """Which stack slots of a frame may still be read, per instruction (the
    role of 6.18's ``kernel/bpf/liveness.c``).

    Reads are recorded as paths run them (:meth:`read`): a load, an atomic,
    a helper given a stack pointer (all slots of that frame); a read of
    another frame's slot through a pointer counts at that frame's pending
    call instruction.  Writes that surely overwrite a whole slot are static:
    an 8-byte store through ``r10`` at an aligned offset.  The live-before
    slots then follow by the same backward dataflow as registers, per
    subprogram.  Only checkpoints whose every path has been explored are
    cleaned with it, so every read their paths make has been recorded."""

    def __init__(self, program: object) -> None:
        insns: Sequence[Instruction] = _insns(program)
        n = len(insns)
        self.heads = _instruction_slots(insns)
        self.succ = {pc: [e.target for e in local_edges(insns, pc) if 0 <= e.target < n] for pc in self.heads}
        self.kills = {}
        for pc in self.heads:
            insn = insns[pc]
            if insn.opcode in (0x7B, 0x7A) and insn.dst == 10 and insn.off % 8 == 0 and -512 <= insn.off < 0:
                self.kills[pc] = slot_mask(insn.off, 8)
        self.reads: dict[int, int] = {}
        self._live: list[int] = [0] * n
        self._dirty = False

    def read(self, pc: int, mask: int) -> None:
        old = self.reads.get(pc, 0)
        if mask & ~old:
            self.reads[pc] = old | mask
            self._dirty = True

    def live_before(self, pc: int) -> int:
        if self._dirty:
            self._solve()
        return self._live[pc] if 0 <= pc < len(self._live) else ALL_SLOTS

    def _solve(self) -> None:
        live, reads, kills, succ = self._live, self.reads, self.kills, self.succ
        changed = True
        while changed:
            changed = False
            for pc in reversed(self.heads):
                out = 0
                for s in succ[pc]:
                    out |= live[s]
                new = reads.get(pc, 0) | (out & ~kills.get(pc, 0))
                if new != live[pc]:
                    live[pc] = new
                    changed = True
        self._dirty = False
