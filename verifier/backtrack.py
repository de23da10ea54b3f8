"""Scalar precision by backtracking, as the kernel's ``mark_chain_precision``.

A checkpoint's scalar is *precise* when some path explored below the
checkpoint used its exact value (pointer arithmetic, a branch whose outcome
the value decided, a helper's size argument, the program's return value...).
An old checkpoint's imprecise scalar matches any scalar when pruning
(``regsafe``: ``if (!rold->precise) return true``); a precise one needs
range and tnum containment.

How marks get there: every path keeps the *history* of the instructions it
ran since its last checkpoint (each checkpoint keeps the history that led to
it from its parent).  A use that needs a register exact starts a backward
walk (:func:`mark_precise`): through the history, an instruction that
computed a tracked register from others tracks those instead (``r1 = r2``
tracks r2, ``r1 += r2`` both, a fill from the stack the slot, a spill the
register spilled); one that computed it from nothing (a constant, a helper's
result, a load from memory) stops tracking it.  What is still tracked when
the walk reaches a checkpoint is marked precise there, and the walk goes on
into the checkpoint's own history, until nothing is left to track or it
reaches a checkpoint that had those marks already.  A path pruned against
an old checkpoint inherits the old one's marks the same way
(``propagate_precision``).  Anything the walk cannot follow (atomics on a
tracked value, a callback frame) marks every scalar of every checkpoint up
the chain precise, as the kernel's ``mark_all_scalars_precise`` does.

Precise marks only grow, and a checkpoint prunes only when finished (every
path below it explored), so its marks are complete by then.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .liveness import helper_arg_counter
from .state import RegType, State

# history entry kinds
PLAIN, STACK_ACCESS, JUMP_LINKS, EXIT_CALLBACK = 0, 1, 2, 3


@dataclass(slots=True)
class Marks:
    """Precise registers and spilled-scalar slots, per frame index."""

    regs: list[set[int]] = field(default_factory=list)
    slots: list[set[int]] = field(default_factory=list)
    everything: bool = False

    def frame(self, depth: int) -> tuple[set[int], set[int]]:
        while len(self.regs) <= depth:
            self.regs.append(set())
            self.slots.append(set())
        return self.regs[depth], self.slots[depth]

    def empty(self) -> bool:
        return not any(self.regs) and not any(self.slots)

    def reg(self, depth: int, regno: int) -> bool:
        return self.everything or (depth < len(self.regs) and regno in self.regs[depth])

    def slot(self, depth: int, index: int) -> bool:
        return self.everything or (depth < len(self.slots) and index in self.slots[depth])


class Untraceable(Exception):
    """The backward walk met an instruction it cannot follow."""


def _step_back(entry: tuple, insns, track: Marks) -> None:
    """Undo one history entry on the tracked set ``track``."""
    pc, depth, kind, extra = entry
    insn = insns[pc]
    code = insn.opcode
    cls = code & 0x07
    regs = track.frame(depth)[0]
    dst, src = insn.dst, insn.src
    if cls in (0x04, 0x07):
        op = code & 0xF0
        if dst not in regs:
            return
        if op == 0xB0:  # mov: the value came from src, or from nothing
            regs.discard(dst)
            if code & 0x08:
                regs.add(src)
        elif op not in (0x80, 0xD0) and code & 0x08:
            regs.add(src)
        return
    if cls == 0x01:  # LDX: from a stack slot, or from memory (nothing to track)
        if dst in regs:
            regs.discard(dst)
            if kind == STACK_ACCESS:
                frameno, index = extra
                track.frame(frameno)[1].add(index)
        return
    if cls in (0x02, 0x03):  # ST / STX
        if cls == 0x03 and code & 0xE0 == 0xC0:  # atomics
            imm = insn.imm & 0xFFFF_FFFF
            if imm == 0x110:  # store-release: a plain store
                pass
            elif imm == 0x100:  # load-acquire: a plain load
                if dst in regs:
                    regs.discard(dst)
                    if kind == STACK_ACCESS:
                        track.frame(extra[0])[1].add(extra[1])
                return
            else:
                if src in regs or (imm == 0xF1 and 0 in regs) or \
                        (kind == STACK_ACCESS and extra[1] in track.frame(extra[0])[1]):
                    raise Untraceable
                return
        if kind == STACK_ACCESS:
            frameno, index = extra
            fslots = track.frame(frameno)[1]
            if index in fslots:
                fslots.discard(index)
                if cls == 0x03:
                    regs.add(src)
        return
    if cls == 0x00:  # lddw / LD_ABS / LD_IND: constants or packet bytes
        if code == 0x18:
            regs.discard(dst)
        else:
            regs.difference_update(range(6))
        return
    op = code & 0xF0
    if op == 0x80:  # call
        inner_regs, inner_slots = track.frame(depth + 1)
        if insn.src == 1:  # into a subprogram: its r1-r5 are the caller's
            regs.difference_update(range(6))
            regs.update(r for r in inner_regs if 1 <= r <= 5)
            inner_regs.clear()
            inner_slots.clear()
            return
        if inner_regs or inner_slots:  # a callback's frame
            raise Untraceable
        regs.difference_update(range(6))  # a helper's result, clobbered arguments
        return
    if op == 0x90:  # exit from a callee at ``depth`` back into the caller
        if kind == EXIT_CALLBACK:
            return  # back to the call instruction with the caller's registers as they were
        caller_regs = track.frame(depth - 1)[0]
        returned = 0 in caller_regs
        caller_regs.difference_update(range(6))  # r0 is the callee's, r1-r5 were clobbered
        if returned:
            regs.add(0)
        return
    if kind == JUMP_LINKS:  # a comparison refined every scalar sharing an id
        for group in extra:
            if any(track.frame(d)[0 if what == "r" else 1].__contains__(i) for d, what, i in group):
                for d, what, i in group:
                    track.frame(d)[0 if what == "r" else 1].add(i)
    if op not in (0x00, 0xE0) and code & 0x08 and (dst in regs or src in regs):
        regs.add(dst)  # dst <cond> src: each one's bounds came from the other's
        regs.add(src)


def _apply(cp, track: Marks) -> bool:
    """Mark what ``track`` holds precise in checkpoint ``cp``; drop from
    ``track`` what needs no further walk (not a scalar there, or already
    precise).  True when something is left to track."""
    marks: Marks = cp.precise
    if marks.everything:
        track.regs.clear()
        track.slots.clear()
        return False
    frames = cp.state.frames
    for depth in range(len(track.regs)):
        regs, slots = track.regs[depth], track.slots[depth]
        if depth >= len(frames):
            regs.clear()
            slots.clear()
            continue
        frame = frames[depth]
        mregs, mslots = marks.frame(depth)
        for r in list(regs):
            if r >= 10 or frame.regs[r].type is not RegType.SCALAR or r in mregs:
                regs.discard(r)
            else:
                mregs.add(r)
        for i in list(slots):
            slot = frame.stack.get(i)
            if slot is None or slot.spilled is None or not slot.spilled.is_scalar or i in mslots:
                slots.discard(i)
            else:
                mslots.add(i)
    return not track.empty()


def mark_everything(cp) -> None:
    while cp is not None and not cp.precise.everything:
        cp.precise.everything = True
        cp = cp.parent


_QUICK: dict[int, tuple] = {}


def _quick_table(insns) -> list:
    """Per instruction: the one register it writes when that is all that can
    matter to the walk (-1: nothing can), None when it needs the full step."""
    cached = _QUICK.get(id(insns))
    if cached is not None and cached[0] is insns:
        return cached[1]
    table: list[int | None] = []
    for insn in insns:
        code = insn.opcode
        cls = code & 0x07
        plain_store = cls == 0x02 or (cls == 0x03 and code & 0xE0 != 0xC0)
        plain_jump = cls in (0x05, 0x06) and code & 0xF0 not in (0x80, 0x90) and not code & 0x08
        if cls in (0x04, 0x07, 0x01) or code == 0x18:
            table.append(insn.dst)
        elif plain_store or plain_jump:
            table.append(-1)
        else:
            table.append(None)
    if len(_QUICK) > 64:
        _QUICK.clear()
    _QUICK[id(insns)] = (insns, table)
    return table


def mark_precise(history: list, cp, insns, track: Marks) -> None:
    """Walk back from the end of ``history`` (the path since checkpoint
    ``cp``) marking what ``track`` holds precise in every checkpoint whose
    values it came from."""
    quick = _quick_table(insns)
    tracked = track.regs
    try:
        while True:
            for entry in reversed(history):
                only = quick[entry[0]]
                if only is not None and entry[2] == PLAIN and \
                        (only < 0 or entry[1] >= len(tracked) or only not in tracked[entry[1]]):
                    continue  # it wrote nothing being tracked
                _step_back(entry, insns, track)
            if cp is None or not _apply(cp, track):
                return
            history, cp = cp.history, cp.parent
    except Untraceable:
        mark_everything(cp)


def linked_groups(state: State, regnos: tuple[int, ...]) -> tuple:
    """For a conditional jump: for each scalar operand with an id, every
    register and spilled slot (in any frame) sharing it."""
    groups = []
    for regno in regnos:
        reg = state.regs[regno]
        if not reg.is_scalar or not reg.id:
            continue
        group = []
        for depth, frame in enumerate(state.frames):
            for r, other in enumerate(frame.regs):
                if other.is_scalar and other.id == reg.id:
                    group.append((depth, "r", r))
            for index, slot in frame.stack.items():
                if slot.spilled is not None and slot.spilled.is_scalar and slot.spilled.id == reg.id:
                    group.append((depth, "s", index))
        if len(group) > 1:
            groups.append(tuple(group))
    return tuple(groups)


def inherit(old_marks: Marks, old: State, history: list, cp, insns) -> None:
    """``propagate_precision``: the path pruned against ``old`` needs exact
    what ``old`` had precise."""
    track = Marks()
    for depth, frame in enumerate(old.frames):
        regs, slots = track.frame(depth)
        for r in range(10):
            if frame.regs[r].type is RegType.SCALAR and old_marks.reg(depth, r):
                regs.add(r)
        for index, slot in frame.stack.items():
            if slot.spilled is not None and slot.spilled.is_scalar and old_marks.slot(depth, index):
                slots.add(index)
    if not track.empty():
        mark_precise(history, cp, insns, track)


class Demands:
    """The uses that need exact values, found around each instruction the
    path runs, and the path's history entry for it."""

    def __init__(self, env) -> None:
        from ebpfvm.helpers import default_registry
        self.env = env
        self.insns = env.program.instructions
        self.helper_args = helper_arg_counter(env.ptype)
        self.registry = default_registry()
        from .checks import return_range
        self.return_checked = return_range(env) is not None

    def before(self, state: State, pc: int) -> tuple:
        """(history kind, its data, registers needed exact, slots needed
        exact) from the state before instruction ``pc`` runs."""
        insn = self.insns[pc]
        code = insn.opcode
        cls = code & 0x07
        regs = state.regs
        need: set[int] = set()
        slots: list[tuple[int, int]] = []
        kind, extra = PLAIN, None
        if cls in (0x04, 0x07):
            op = code & 0xF0
            if code & 0x08 and op not in (0xB0, 0x80, 0xD0):  # pointer +/- scalar: the offset must be exact
                d, s = regs[insn.dst], regs[insn.src]
                if d.is_pointer and s.is_scalar:
                    need.add(insn.src)
                elif s.is_pointer and d.is_scalar:
                    need.add(insn.dst)
        elif cls in (0x01, 0x02, 0x03):
            base = regs[insn.src] if cls == 0x01 else regs[insn.dst]
            if base.type is RegType.PTR_TO_STACK and base.var.is_const():
                lo = base.off + base.var.value + insn.off
                kind, extra = STACK_ACCESS, (base.frameno, (-lo - 1) // 8)
                if cls == 0x03 and code & 0xE0 == 0x60:
                    size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
                    # a store that does not spill keeps only "zero or not" (STACK_ZERO)
                    if regs[insn.src].is_scalar and not (lo % 8 == 0 and (size == 8 or self.env.privileged)):
                        need.add(insn.src)
        elif cls in (0x05, 0x06):
            op = code & 0xF0
            if op == 0x80:
                if insn.src == 0 and not code & 0x08:
                    self._helper_args(state, insn.imm, need, slots)
            elif op == 0x90:
                main_exit = len(state.frames) == 1 and not state.frames[0].subprog  # (not a global function's)
                if state.frame.in_callback or (main_exit and self.return_checked):
                    need.add(0)  # the return value is range-checked
                if state.frame.in_callback:
                    kind = EXIT_CALLBACK
            elif op not in (0x00, 0xE0):
                operands = (insn.dst, insn.src) if code & 0x08 else (insn.dst,)
                groups = linked_groups(state, operands)
                if groups:
                    kind, extra = JUMP_LINKS, groups
                if code & 0x08:  # a scalar compared with a pointer (a NULL check by register)
                    d, s = regs[insn.dst], regs[insn.src]
                    if d.is_pointer != s.is_pointer:
                        need.add(insn.src if s.is_scalar else insn.dst)
        return kind, extra, need, slots

    def _helper_args(self, state: State, fid: int, need: set[int], slots: list) -> None:
        """Scalar arguments (sizes, flags, loop bounds, indexes: needed
        exact, conservatively all of them) and map keys on the stack."""
        from ebpfvm.helpers.prototype import ArgKind
        nargs = self.helper_args(fid)
        helper = self.registry.get(fid)
        kinds = helper.proto.args if helper is not None else ()
        regs = state.regs
        for r in range(1, (nargs if nargs is not None else 5) + 1):
            reg = regs[r]
            if reg.is_scalar:
                need.add(r)
            elif reg.type is RegType.PTR_TO_STACK and reg.var.is_const() and r - 1 < len(kinds) \
                    and kinds[r - 1] is ArgKind.PTR_TO_MAP_KEY:
                size = 8
                m = regs[1]
                maps = self.env.maps
                if m.type is RegType.CONST_PTR_TO_MAP and 0 <= m.map < len(maps):
                    size = getattr(maps[m.map], "key_size", 8) or 8
                lo = reg.off + reg.var.value
                for addr in range(lo, lo + size):
                    index = (-addr - 1) // 8
                    if (reg.frameno, index) not in slots:
                        slots.append((reg.frameno, index))

    def after(self, state: State, pc: int, depth: int, before: tuple, successors: list, history: list,
              cp) -> None:
        """Mark what instruction ``pc`` needed exact, then record it."""
        kind, extra, need, slots = before
        insn = self.insns[pc]
        code = insn.opcode
        if code & 0x07 in (0x05, 0x06) and code & 0xF0 not in (0x00, 0x80, 0x90, 0xE0) and len(successors) == 1:
            need.add(insn.dst)  # a branch whose outcome the values decided
            if code & 0x08:
                need.add(insn.src)
        if need or slots:
            track = Marks()
            regs, _ = track.frame(depth)
            regs.update(need)
            for frameno, index in slots:
                track.frame(frameno)[1].add(index)
            mark_precise(history, cp, self.insns, track)
        history.append((pc, depth, kind, extra))
