"""The verifier's abstract machine state: registers, stack slots, frames.

A register is an immutable :class:`Reg` (its kind, a scalar value or a
pointer's fixed ``off`` plus variable ``var`` offset, and the ids the kernel
uses to link registers).  A frame holds eleven registers and a stack of
per-byte slot kinds; a :class:`State` is the stack of frames of one path plus
the references it holds.  States are copied when a path forks
(:meth:`State.copy` copies the containers, never the immutable registers), so
a copy costs a few small lists and dicts.

Names printed in messages are the kernel's ``reg_type_str`` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum

from .domains import ScalarBounds

MAX_BPF_STACK = 512
MAX_CALL_FRAMES = 8
BPF_REG_FP = 10


class RegType(Enum):
    """A register's kind; the value is the kernel's name in logs and messages."""

    NOT_INIT = "?"
    SCALAR = "scalar"
    PTR_TO_CTX = "ctx"
    CONST_PTR_TO_MAP = "map_ptr"
    PTR_TO_MAP_VALUE = "map_value"
    PTR_TO_MAP_VALUE_OR_NULL = "map_value_or_null"
    PTR_TO_MAP_KEY = "map_key"
    PTR_TO_STACK = "fp"
    PTR_TO_PACKET = "pkt"
    PTR_TO_PACKET_META = "pkt_meta"
    PTR_TO_PACKET_END = "pkt_end"
    PTR_TO_MEM = "mem"
    PTR_TO_MEM_OR_NULL = "mem_or_null"
    PTR_TO_RINGBUF_MEM = "ringbuf_mem"
    PTR_TO_RINGBUF_MEM_OR_NULL = "ringbuf_mem_or_null"
    PTR_TO_SOCK_COMMON = "sock_common"
    PTR_TO_SOCK_COMMON_OR_NULL = "sock_common_or_null"
    PTR_TO_FUNC = "func"

    def __str__(self) -> str:
        return self.value


# A maybe-NULL pointer and what it becomes once checked non-NULL.
OR_NULL_BASE = {
    RegType.PTR_TO_MAP_VALUE_OR_NULL: RegType.PTR_TO_MAP_VALUE,
    RegType.PTR_TO_MEM_OR_NULL: RegType.PTR_TO_MEM,
    RegType.PTR_TO_RINGBUF_MEM_OR_NULL: RegType.PTR_TO_RINGBUF_MEM,
    RegType.PTR_TO_SOCK_COMMON_OR_NULL: RegType.PTR_TO_SOCK_COMMON,
}
PACKET_TYPES = frozenset({RegType.PTR_TO_PACKET, RegType.PTR_TO_PACKET_META})


@dataclass(frozen=True, slots=True)
class Reg:
    """One register.  For a scalar ``var`` is its value; for a pointer the
    offset is ``off`` (a constant folded in) plus ``var`` (what is left
    variable).  ``id`` links copies for null checks and packet ranges;
    ``ref_obj_id`` names an acquired reference; ``range`` is the number of
    bytes past a packet pointer known to be inside the packet; ``map`` the
    map index of map pointers; ``mem_size`` the size of a PTR_TO_MEM region;
    ``frameno`` the frame a stack pointer points into."""

    type: RegType
    var: ScalarBounds = field(default_factory=ScalarBounds.unknown)
    off: int = 0
    id: int = 0
    ref_obj_id: int = 0
    range: int = 0
    map: int = -1
    mem_size: int = 0
    frameno: int = 0
    func: int = -1  # PTR_TO_FUNC: the pc of the subprogram it names
    # Scalars linked by ``r1 = r2; r1 += 5`` (the kernel's BPF_ADD_CONST id):
    # this register is ``delta`` more than the plain copies with its id.
    delta: int | None = None
    # Scalars: the stack slots (subprog, frameno, slot) the value was computed
    # from; a use that needs the exact value makes them precise
    # (verifier.callbacks.demand_precision).  Not part of equality.
    origin: frozenset = field(default=frozenset(), compare=False, repr=False)

    @property
    def is_scalar(self) -> bool:
        return self.type is RegType.SCALAR

    @property
    def is_pointer(self) -> bool:
        return self.type not in (RegType.SCALAR, RegType.NOT_INIT)

    @property
    def maybe_null(self) -> bool:
        return self.type in OR_NULL_BASE

    def is_const(self, value: int | None = None) -> bool:
        return self.is_scalar and self.var.is_const() and (value is None or self.var.value == value)

    def with_var(self, var: ScalarBounds) -> Reg:
        return replace(self, var=var)

    def format(self) -> str:
        """The kernel log's text for this register (simplified for pointers)."""
        if self.type is RegType.SCALAR:
            return self.var.format(id=self.id)
        parts = []
        if self.id:
            parts.append(f"id={self.id}")
        if self.ref_obj_id:
            parts.append(f"ref_obj_id={self.ref_obj_id}")
        if self.off:
            parts.append(f"off={self.off}")
        if self.type in PACKET_TYPES:
            parts.append(f"r={self.range}")
        if self.type is RegType.PTR_TO_STACK:
            return f"fp{self.off}" if self.var.is_const() and self.var.value == 0 else "fp(" + ",".join(parts) + ")"
        if not (self.var.is_const() and self.var.value == 0):
            parts.append(str(self.var)[len("scalar("):-1] if not self.var.is_const() else "")
        return f"{self.type}(" + ",".join(p for p in parts if p) + ")"


NOT_INIT = Reg(RegType.NOT_INIT)
ZERO_OFF = ScalarBounds.const(0)


def scalar(var: ScalarBounds | None = None) -> Reg:
    return Reg(RegType.SCALAR, var if var is not None else ScalarBounds.unknown())


def const(value: int) -> Reg:
    return Reg(RegType.SCALAR, ScalarBounds.const(value))


def fits_width(reg: Reg, size: int) -> bool:
    """Whether a scalar's value fits ``size`` bytes unsigned (the kernel's
    ``get_reg_width``): copies that narrow it keep their link only then."""
    return reg.var.umax < 1 << (8 * size)


def with_scalar_id(state: State, reg: Reg) -> Reg:
    """``assign_scalar_id_before_mov``: an unknown scalar about to be copied
    gets an id (once), so the copies stay linked: what a branch learns of one
    holds for all (``sync_linked_regs``).  Constants need no link."""
    if not reg.is_scalar:
        return reg
    if reg.delta is not None:  # a copy of an offset link starts a new link (only one += per link)
        reg = replace(reg, id=0, delta=None)
    if reg.id or reg.var.is_const():
        return reg
    return replace(reg, id=state.fresh_id())


def pointer(kind: RegType, **fields: object) -> Reg:
    return Reg(kind, ZERO_OFF, **fields)  # type: ignore[arg-type]


class Slot(Enum):
    """What one stack byte holds (the kernel's STACK_*)."""

    INVALID = "?"   # never written: reading it is an error
    MISC = "m"      # some scalar bytes
    ZERO = "0"      # known zero bytes
    SPILL = "r"     # part of a spilled register


@dataclass(slots=True)
class StackSlot:
    """An 8-byte stack slot: the kind of each byte (index 0 is the lowest
    address) and the register spilled into it, if any."""

    kinds: tuple[Slot, ...] = (Slot.INVALID,) * 8
    spilled: Reg | None = None


@dataclass(slots=True)
class Frame:
    """One function's frame: registers, stack slots by index (slot ``i``
    covers ``fp-8*(i+1)`` .. ``fp-8*i-1``), where it was called from."""

    regs: list[Reg]
    stack: dict[int, StackSlot]
    frameno: int = 0
    callsite: int = -1  # the call instruction that created this frame (-1: the entry function's)
    subprog: int = 0
    in_callback: bool = False  # a bpf_loop / for_each_map_elem callback: R0 must be in [0, 1]
    callback_depth: int = 0  # bpf_loop callbacks simulated from this frame's call site so far

    def copy(self) -> Frame:
        return Frame(list(self.regs), dict(self.stack), self.frameno, self.callsite, self.subprog,
                     self.in_callback, self.callback_depth)

    @property
    def stack_depth(self) -> int:
        """Bytes of stack in use, rounded up to 8 (what the combined-stack check sums)."""
        return 8 * (max(self.stack) + 1) if self.stack else 0

    def byte_kind(self, off: int) -> Slot:
        """The kind of stack byte at ``fp + off`` (``off`` negative)."""
        index, byte = (-off - 1) // 8, (-off - 1) % 8
        slot = self.stack.get(index)
        return slot.kinds[7 - byte] if slot else Slot.INVALID


@dataclass(slots=True)
class State:
    """One path's state: frames (innermost last), acquired references, and
    the counter handing out fresh ids."""

    frames: list[Frame]
    refs: tuple[int, ...] = ()
    next_id: list[int] = field(default_factory=lambda: [0])  # shared by copies: ids stay unique

    @property
    def frame(self) -> Frame:
        return self.frames[-1]

    @property
    def regs(self) -> list[Reg]:
        return self.frames[-1].regs

    def copy(self) -> State:
        return State([f.copy() for f in self.frames], self.refs, self.next_id)

    def fresh_id(self) -> int:
        self.next_id[0] += 1
        return self.next_id[0]

    def map_regs(self, fn) -> None:
        """Apply ``fn`` to every register and spilled register of every frame
        (used to propagate null checks and packet ranges by id)."""
        for f in self.frames:
            f.regs[:] = [fn(r) for r in f.regs]
            for i, slot in list(f.stack.items()):
                if slot.spilled is not None:
                    new = fn(slot.spilled)
                    if new is not slot.spilled:
                        f.stack[i] = StackSlot(slot.kinds, new)


def initial_state() -> State:
    """The entry state: r1 = ctx, r10 = frame pointer, the rest uninitialised."""
    regs = [NOT_INIT] * 11
    regs[1] = pointer(RegType.PTR_TO_CTX)
    regs[BPF_REG_FP] = pointer(RegType.PTR_TO_STACK)
    return State([Frame(regs, {})])


# --- equivalence for pruning ---------------------------------------------------------


class IdMap:
    """``check_ids``: a one-to-one mapping of old scalar ids to current ones
    (an id 0 gets a fresh temporary id on either side, as ``check_scalar_ids``)."""

    __slots__ = ("backward", "forward", "temp")

    def __init__(self) -> None:
        self.forward: dict = {}
        self.backward: dict = {}
        self.temp = 0

    def match_exact(self, old_id: int, cur_id: int) -> bool:
        """Pointer ids: both zero, or both set and mapped one-to-one."""
        if bool(old_id) != bool(cur_id):
            return False
        return not old_id or self.match(old_id, cur_id)

    def match(self, old_id: int, cur_id: int) -> bool:
        if not old_id:
            self.temp += 1
            old_id = ("tmp", self.temp)
        if not cur_id:
            self.temp += 1
            cur_id = ("tmp", self.temp)
        if old_id in self.forward:
            return self.forward[old_id] == cur_id
        if cur_id in self.backward:
            return False
        self.forward[old_id] = cur_id
        self.backward[cur_id] = old_id
        return True


def reg_within(old: Reg, cur: Reg, precise: bool = True, ids: IdMap | None = None) -> bool:
    """Whether every concrete value ``cur`` may hold is one ``old`` covers
    (``regsafe``).  A scalar the old path never needed exactly (not
    ``precise``) covers any scalar; a precise one needs range and tnum
    containment and, with ``ids``, links matching the old ones.  Maybe-NULL
    pointers need the same id (the kernel maps them)."""
    if old.type is RegType.NOT_INIT:
        return True  # dead (cleaned by liveness) or never written on the old path
    if old.type is not cur.type:
        return False
    if old.is_scalar:
        if not precise:
            return True
        if ids is not None and not ids.match(old.id, cur.id):
            return False
        if old.id and old.delta != cur.delta:  # offset links must agree (regsafe: BPF_ADD_CONST, off)
            return False
        return cur.var.is_subset_of(old.var)
    if (old.off, old.map, old.mem_size, old.frameno, old.ref_obj_id != 0) != \
            (cur.off, cur.map, cur.mem_size, cur.frameno, cur.ref_obj_id != 0):
        return False
    if old.type in PACKET_TYPES and cur.range < old.range:
        return False
    if old.maybe_null or old.type in PACKET_TYPES:  # the links a NULL check / range check follows
        if ids is None:
            if old.maybe_null and old.id != cur.id:
                return False
        elif not ids.match_exact(old.id, cur.id):
            return False
    return cur.var.is_subset_of(old.var)


def slot_within(old: StackSlot | None, cur: StackSlot | None, precise: bool = True,
                ids: IdMap | None = None) -> bool:
    old = old or StackSlot()
    cur = cur or StackSlot()
    for ok, ck in zip(old.kinds, cur.kinds):
        if ok is Slot.INVALID:
            continue
        if ok is Slot.MISC and ck in (Slot.MISC, Slot.ZERO):
            continue
        if ok is not ck:
            return False
    if old.spilled is not None:
        return cur.spilled is not None and reg_within(old.spilled, cur.spilled, precise, ids)
    return True


def state_within(old: State, cur: State, marks=None) -> bool:
    """``states_equal``: ``cur`` may be pruned because ``old`` (fully explored
    or being explored) covers it.  ``marks`` (a ``verifier.backtrack.Marks``)
    says which of old's scalars are precise; without it all are."""
    if len(old.frames) != len(cur.frames) or len(old.refs) != len(cur.refs):
        return False
    ids = IdMap() if marks is not None else None
    for depth, (of, cf) in enumerate(zip(old.frames, cur.frames)):
        if of.callsite != cf.callsite:
            return False
        if marks is None:
            if not all(reg_within(o, c) for o, c in zip(of.regs, cf.regs)):
                return False
        else:
            for r, (o, c) in enumerate(zip(of.regs, cf.regs)):
                if not reg_within(o, c, marks.reg(depth, r), ids):
                    return False
        for index in of.stack.keys() | cf.stack.keys():
            precise = marks is None or marks.slot(depth, index)
            if not slot_within(of.stack.get(index), cf.stack.get(index), precise, ids):
                return False
    return True


def state_key(state: State) -> tuple:
    """An exact, hashable image of ``state`` (for infinite-loop detection)."""
    frames = []
    for f in state.frames:
        stack = tuple(sorted((i, s.kinds, s.spilled) for i, s in f.stack.items()))
        frames.append((tuple(f.regs), stack, f.callsite))
    return tuple(frames), state.refs
